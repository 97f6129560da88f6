//! HTTP (`wasi:http` 0.2): outgoing requests under the component's
//! `[capabilities.http]` grant ([`outbound`]), with the fields and outgoing bodies a
//! guest keeps charged to its host-memory budget ([`charges`]), and serving incoming requests with a
//! fresh instance each ([`HttpHandler`]).

mod access_log;
mod body;
pub(crate) mod charges;
mod handler;
pub(crate) mod outbound;

pub use access_log::{ACCESS_LOG_TARGET, Handled};
pub use body::ResponseBody;
pub use handler::{HttpHandler, HttpLimits};

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

/// One interface of `wasi:http` 0.2: its name (`wasi:` + this + `@0.2.x`) and how it
/// is linked (given the view of the charges).
type Interface<T> = (
    &'static str,
    fn(&mut Linker<T>, charges::Getter<T>) -> wasmtime::Result<()>,
);

/// The interfaces of `wasi:http` 0.2 this host links for every component, as
/// `wasmtime-wasi-http`'s `add_only_http_to_linker_async` links them: the outgoing side.
fn interfaces<T: WasiHttpView + 'static>() -> [Interface<T>; 2] {
    use wasmtime_wasi_http::WasiHttp;
    use wasmtime_wasi_http::p2::bindings::{LinkOptions, http};
    [
        ("http/outgoing-handler", |l, _| {
            http::outgoing_handler::add_to_linker::<T, WasiHttp>(l, T::http)
        }),
        // With the functions that build or grow what the host keeps charged over it.
        ("http/types", |l, charged| {
            let options = LinkOptions::default();
            http::types::add_to_linker::<T, WasiHttp>(l, &(&options).into(), T::http)?;
            l.allow_shadowing(true);
            let added = charges::add_to_linker(l, charged);
            l.allow_shadowing(false);
            added
        }),
    ]
}

/// Links the outgoing side of `wasi:http` 0.2 ([`interfaces`]), the charged functions
/// reaching the charges through `charged`.
pub(crate) fn add_to_linker<T: WasiHttpView + 'static>(
    linker: &mut Linker<T>,
    charged: charges::Getter<T>,
) -> Result<(), String> {
    for (name, add) in interfaces::<T>() {
        add(linker, charged).map_err(|e| format!("linking wasi:{name}@0.2 failed: {e:#}"))?;
    }
    Ok(())
}

/// Whether this host links `path` (`http/types`) of `wasi:http` at `version` (what
/// follows the `@`).
pub(crate) fn links(path: &str, version: &str) -> bool {
    // The table names the interfaces whatever they are linked on: here, on a store
    // data that cannot exist.
    enum Names {}
    impl WasiHttpView for Names {
        fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
            match *self {}
        }
    }
    version.starts_with("0.2.") && interfaces::<Names>().iter().any(|(n, _)| *n == path)
}
