//! HTTP (`wasi:http` 0.2): outgoing requests under the component's
//! `[capabilities.http]` grant ([`outbound`]), and serving incoming requests with a
//! fresh instance each ([`HttpHandler`]).

mod handler;
pub(crate) mod outbound;

pub use handler::{ACCESS_LOG_TARGET, Handled, HttpHandler, HttpLimits, ResponseBody};

use wasmtime_wasi_http::WasiHttpCtx;

use outbound::Outbound;

/// The `wasi:http` part of an instance's store.
pub(crate) struct HttpState {
    pub(crate) ctx: WasiHttpCtx,
    pub(crate) outbound: Outbound,
}
