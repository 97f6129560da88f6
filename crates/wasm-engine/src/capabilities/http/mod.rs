//! HTTP (`wasi:http` 0.2): outgoing requests under the component's
//! `[capabilities.http]` grant ([`outbound`]), with the fields and outgoing bodies a
//! guest keeps charged to its host-memory budget ([`charges`]), and serving incoming requests with a
//! fresh instance each ([`HttpHandler`]).

pub(crate) mod charges;
mod handler;
pub(crate) mod outbound;

pub use handler::{ACCESS_LOG_TARGET, Handled, HttpHandler, HttpLimits, ResponseBody};

use wasmtime_wasi_http::WasiHttpCtx;

use outbound::Outbound;

/// The `wasi:http` part of an instance's store.
pub(crate) struct HttpState {
    pub(crate) ctx: WasiHttpCtx,
    pub(crate) outbound: Outbound,
    /// The fields values and outgoing bodies charged to the host-memory budget.
    pub(crate) charges: charges::Charges,
}

/// The largest `wasi:http` fields (headers) value one instance may build: Wasmtime's
/// 128 KiB, or a sixteenth of the host-memory budget when that is less.
pub(crate) const MAX_FIELDS_BYTES: u64 = 128 * 1024;

/// The most one write to an outgoing body's stream may carry (Wasmtime's default is
/// 1 MiB). With the one write `wasmtime-wasi-http` buffers beside the one in hand, an
/// outgoing body holds at most twice this in the host until it is sent
/// ([`charges::BODY_RESERVATION`]).
pub(crate) const OUTGOING_BODY_CHUNK: usize = 64 * 1024;

/// The `wasi:http` context of an instance under `limits`.
pub(crate) fn context(limits: &airssys_wasm_core::ResourceLimits) -> WasiHttpCtx {
    let mut ctx = WasiHttpCtx::new();
    let bound = MAX_FIELDS_BYTES.min(limits.host_memory_bytes() / 16);
    ctx.set_field_size_limit(usize::try_from(bound).unwrap_or(usize::MAX));
    ctx
}
