//! The data every store carries: a record of the call's bookkeeping (the limiter and
//! the limits, the deadline, the host interface the guest is in), what every
//! capability shares (the component's name and grants, the resource table, the audit
//! trail, the host-memory budget, the embedder's state), and each capability's own
//! state — with the getters that make each capability's view of it. Every getter of a
//! built-in capability's view goes through [`HostState::builtin`], which forgets the
//! embedder's host interface the guest entered last: a failure or a timeout inside a
//! built-in is never blamed on the embedder's function.

use std::any::Any;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use airssys_wasm_core::{CapabilitySet, ResourceLimits};

use crate::capabilities::audit::{Denial, Trail, lock};
use crate::capabilities::config::{ConfigSource, ConfigView};
use crate::capabilities::http::HttpState;
use crate::capabilities::http::charges::Charged;
use crate::capabilities::keyvalue::{KeyValueBackend, KeyValueView};
use crate::capabilities::logging::{LogBudget, LoggingView};
use crate::capabilities::wasi::{AuditedWasi, Captured, Split};
use crate::runtime::host_memory::HostMemory;
use crate::runtime::limiter::InstanceLimiter;
use crate::runtime::sandbox::Sandbox;

/// The data of one store (one component instance). Host code reaches its parts
/// through a [`HostCtx`](crate::HostCtx).
pub struct HostState {
    /// The limiter, which also keeps the instance's limits: the store's one copy of
    /// them (in its one allocation, rather than in every future and value an instance
    /// is moved through).
    pub(crate) limiter: InstanceLimiter,
    /// The WASI context; none yet when the sandbox grants nothing of WASI (made the
    /// first time the guest reaches WASI: `grant::grants_nothing`).
    wasi: Option<WasiCtx>,
    pub(crate) table: ResourceTable,
    /// When the current call (or instantiation) started: taken when the call begins if
    /// its wall time is measured (or it may use HTTP or key-value), else, with epochs, at
    /// its first tick (at most one tick late; see the epoch callback).
    pub(crate) started: Option<Instant>,
    /// Whether reports carry the wall-clock time.
    pub(crate) measure_wall_time: bool,
    /// Whether every call reads the clock when it begins: when its wall time is
    /// measured, or when it may send HTTP requests or use key-value stores (whose
    /// operations are cut to what is left of the call).
    pub(crate) clock_calls: bool,
    /// Set by the epoch callback when it stopped the guest for the deadline.
    pub(crate) timed_out: bool,
    /// Whether the engine interrupts running guests by epochs (then each call sets
    /// its epoch deadline).
    pub(crate) epochs: bool,
    /// Captured stdout and stderr, when the sandbox asked for capture.
    pub(crate) captured: Option<Captured>,
    /// The embedder's state for this instance (`()` when it gave none).
    state: Box<dyn Any + Send>,
    component: Arc<str>,
    capabilities: Arc<CapabilitySet>,
    /// The host interface (its index on the engine) the guest entered last, unless it
    /// called into WASI since: while a call is blocked in the host, the function it
    /// waits in. Cleared when a call begins.
    pub(crate) host_call: Option<u16>,
    /// The current call's log records (the built-in `wasi:logging`).
    pub(crate) log: LogBudget,
    /// The instance's configuration (the built-in `wasi:config`).
    config: Option<Arc<dyn ConfigSource>>,
    /// `wasi:http`: its context, and the outgoing side, which also keeps the network
    /// uses refused during the current call (shared with the checks that run outside
    /// the store: WASI's socket check, the address check after DNS).
    pub(crate) http: HttpState,
    /// Where the instance's key-value buckets are (the built-in `wasi:keyvalue`).
    keyvalue: Option<Arc<dyn KeyValueBackend>>,
    /// Key-value and file uses refused during the current call (kept in the store:
    /// they are refused by host code on it).
    audit: Trail,
    /// What host code holds for the instance between calls, against its budget.
    pub(crate) host_memory: HostMemory,
}

/// The parts of a [`HostState`] host code borrows at once.
pub(crate) struct Parts<'a> {
    pub(crate) state: &'a mut (dyn Any + Send),
    pub(crate) component: &'a str,
    pub(crate) capabilities: &'a CapabilitySet,
    pub(crate) table: &'a mut ResourceTable,
    pub(crate) audit: &'a mut Trail,
}

impl std::fmt::Debug for HostState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostState")
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

impl HostState {
    /// Where every built-in capability's view starts: a call into one of them is not
    /// the embedder's, so the host interface the guest entered last is forgotten
    /// (WASI's and `wasi:http`'s views do the same in their getters below).
    #[inline]
    fn builtin(&mut self) -> &mut Self {
        self.host_call = None;
        self
    }

    /// `wasi:logging`'s view.
    pub(crate) fn logging(&mut self) -> LoggingView<'_> {
        let s = self.builtin();
        LoggingView {
            budget: &mut s.log,
            component: &s.component,
        }
    }

    /// `wasi:config`'s view.
    pub(crate) fn config(&mut self) -> ConfigView<'_> {
        let s = self.builtin();
        ConfigView {
            source: s.config.as_deref(),
        }
    }

    /// `wasi:keyvalue`'s view.
    pub(crate) fn keyvalue(&mut self) -> KeyValueView<'_> {
        let s = self.builtin();
        KeyValueView {
            grant: s.capabilities.keyvalue.as_ref(),
            backend: s.keyvalue.as_ref(),
            component: &s.component,
            table: &mut s.table,
            audit: &mut s.audit,
            host_memory: &mut s.host_memory,
            started: &mut s.started,
            timeout: s.limiter.limits().timeout(),
            memory_bytes: s.limiter.limits().memory_bytes(),
        }
    }

    /// The audited WASI interfaces' view: `wasmtime-wasi`'s, with the grants and the
    /// audit trail beside it.
    pub(crate) fn audited_wasi(&mut self) -> AuditedWasi<'_> {
        let s = self.builtin();
        AuditedWasi {
            wasi: Split {
                ctx: wasi_ctx(&mut s.wasi),
                table: &mut s.table,
            },
            component: &s.component,
            capabilities: &s.capabilities,
            audit: &mut s.audit,
        }
    }

    /// The view of the charged `wasi:http` functions (each entered through
    /// [`WasiHttpView`](wasmtime_wasi_http::WasiHttpView) first).
    pub(crate) fn charged(&mut self) -> Charged<'_> {
        let s = self.builtin();
        Charged {
            charges: &mut s.http.charges,
            host_memory: &mut s.host_memory,
            table: &mut s.table,
        }
    }
}

/// The WASI context, made now if the instance has not reached WASI before.
#[inline]
fn wasi_ctx(wasi: &mut Option<WasiCtx>) -> &mut WasiCtx {
    wasi.get_or_insert_with(crate::capabilities::wasi::granting_nothing)
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        // Every WASI host function starts here: the guest left the embedder's.
        self.host_call = None;
        WasiCtxView {
            ctx: wasi_ctx(&mut self.wasi),
            table: &mut self.table,
        }
    }
}

impl wasmtime_wasi_http::WasiHttpView for HostState {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        // The guest left the embedder's host functions.
        self.host_call = None;
        // What is left of the call bounds an outgoing request.
        self.http.outbound.started = self.started;
        wasmtime_wasi_http::WasiHttpCtxView {
            ctx: &mut self.http.ctx,
            table: &mut self.table,
            hooks: &mut self.http.outbound,
        }
    }
}

impl HostState {
    /// The limits the instance runs under.
    #[inline]
    pub(crate) fn limits(&self) -> &ResourceLimits {
        self.limiter.limits()
    }

    /// The data of a new instance of `component` under `sandbox`, with the WASI
    /// context configured in `wasi` (by [`grant`]; `None` when the sandbox grants
    /// nothing of WASI, whose context is made on first use) and the embedder's
    /// `state`. The context is built here, in place: a `WasiCtx` is ~270 bytes, and
    /// every move of it (through a `Result`, into a constructor) would be a copy on
    /// each instantiation.
    #[inline(always)]
    pub(crate) fn new(
        sandbox: &Sandbox,
        component: &Arc<str>,
        wasi: Option<&mut WasiCtxBuilder>,
        captured: Option<Captured>,
        state: Box<dyn Any + Send>,
        net_audit: Option<Arc<Mutex<Trail>>>,
    ) -> Self {
        let mut table = ResourceTable::new();
        table.set_max_capacity(
            usize::try_from(sandbox.limits().max_host_resources()).unwrap_or(usize::MAX),
        );
        Self {
            limiter: InstanceLimiter::new(sandbox.limits()),
            wasi: wasi.map(WasiCtxBuilder::build),
            table,
            started: None,
            measure_wall_time: sandbox.measures_wall_time(),
            clock_calls: sandbox.measures_wall_time()
                || sandbox.capabilities().http.is_some()
                || sandbox.capabilities().keyvalue.is_some(),
            timed_out: false,
            epochs: false,
            captured,
            state,
            component: Arc::clone(component),
            capabilities: Arc::clone(sandbox.shared_capabilities()),
            host_call: None,
            log: LogBudget::default(),
            config: sandbox.config().cloned(),
            http: HttpState::new(component, sandbox, net_audit),
            keyvalue: sandbox.keyvalue().cloned(),
            audit: Trail::default(),
            host_memory: HostMemory::new(sandbox.limits().host_memory_bytes()),
        }
    }

    /// The refusals of the current (or last) call, network ones included, in order.
    pub(crate) fn denials(&self) -> Vec<Denial> {
        let mut all = self.audit.records.clone();
        if let Some(net) = &self.http.outbound.trail {
            all.extend(lock(net).records.iter().cloned());
        }
        all.sort_by_key(|d| d.at);
        all
    }

    /// How many uses the current (or last) call was refused.
    #[inline]
    pub(crate) fn denial_count(&self) -> u64 {
        self.audit.count
            + self
                .http
                .outbound
                .trail
                .as_ref()
                .map_or(0, |n| lock(n).count)
    }

    /// Forgets the last call's refusals.
    #[inline]
    pub(crate) fn clear_denials(&mut self) {
        if self.audit.count > 0 {
            self.audit.clear();
        }
        if let Some(net) = &self.http.outbound.trail {
            lock(net).clear();
        }
    }

    /// The parts host code borrows.
    #[inline]
    pub(crate) fn parts(&mut self) -> Parts<'_> {
        Parts {
            state: &mut *self.state,
            component: &self.component,
            capabilities: &self.capabilities,
            table: &mut self.table,
            audit: &mut self.audit,
        }
    }

    /// The embedder's state of this instance, if it has type `S`.
    pub fn state<S: 'static>(&mut self) -> Option<&mut S> {
        self.state.downcast_mut()
    }

    /// The component's name.
    pub fn component(&self) -> &str {
        &self.component
    }
}
