//! HTTP (`wasi:http` 0.2): outgoing requests under the component's
//! `[capabilities.http]` grant ([`outbound`]), with the fields and outgoing bodies a
//! guest keeps charged to its host-memory budget ([`charges`]), and serving incoming requests with a
//! fresh instance each ([`HttpHandler`]).

pub(crate) mod charges;
mod handler;
pub(crate) mod outbound;

pub use handler::{ACCESS_LOG_TARGET, Handled, HttpHandler, HttpLimits, ResponseBody};

use std::sync::{Arc, Mutex};

use wasmtime::component::Linker;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpView};

use crate::capabilities::audit::Trail;
use crate::runtime::sandbox::Sandbox;
use outbound::Outbound;

/// The `wasi:http` part of an instance's store.
pub(crate) struct HttpState {
    pub(crate) ctx: WasiHttpCtx,
    pub(crate) outbound: Outbound,
    /// The fields values and outgoing bodies charged to the host-memory budget.
    pub(crate) charges: charges::Charges,
}

impl HttpState {
    /// The `wasi:http` state of a new instance of `component` under `sandbox`: its
    /// outgoing requests under the grant and the operator's policy, refusals kept in
    /// `net_audit` (shared with WASI's socket check).
    pub(crate) fn new(
        component: &Arc<str>,
        sandbox: &Sandbox,
        net_audit: Option<Arc<Mutex<Trail>>>,
    ) -> Self {
        Self {
            ctx: context(sandbox.limits()),
            outbound: Outbound::new(
                Arc::clone(component),
                Arc::clone(sandbox.shared_capabilities()),
                sandbox.limits().timeout(),
                sandbox.refuses_private_addresses(),
                net_audit,
                sandbox.outgoing_requests(),
            ),
            charges: charges::Charges::default(),
        }
    }
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

/// Links `wasmtime-wasi-http`'s `wasi:http/types` and `outgoing-handler` (0.2), and over
/// them the functions whose host memory is charged, reached through `charged`.
pub(crate) fn add_to_linker<T: WasiHttpView + 'static>(
    linker: &mut Linker<T>,
    charged: charges::Getter<T>,
) -> Result<(), String> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
        .map_err(|e| format!("linking wasi:http failed: {e}"))?;
    linker.allow_shadowing(true);
    let added = charges::add_to_linker(linker, charged);
    linker.allow_shadowing(false);
    added.map_err(|e| format!("linking the charged wasi:http fields failed: {e}"))
}
