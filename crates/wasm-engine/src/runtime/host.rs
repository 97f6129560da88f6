//! The data every store carries: the limits and the limiter, the WASI context built
//! from the instance's capabilities, the embedder's state for host interfaces, and the
//! wall-clock deadline of the current call.

use std::any::Any;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use airssys_wasm_core::{
    CapabilitySet, DirAccess, ResourceLimits, StdioMode, WasmError, WasmResult,
};

use crate::capabilities::audit::Trail;
use crate::runtime::limiter::InstanceLimiter;
use crate::runtime::sandbox::Sandbox;

/// The data of one store (one component instance). Host code reaches its parts
/// through a [`HostCtx`](crate::HostCtx).
pub struct HostState {
    /// The limiter, which also keeps the instance's limits: the store's one copy of
    /// them (in its one allocation, rather than in every future and value an instance
    /// is moved through).
    pub(crate) limiter: InstanceLimiter,
    wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    /// When the current call (or instantiation) started: taken when the call begins if
    /// its wall time is measured, else at its first epoch tick (at most one tick late;
    /// see the epoch callback).
    pub(crate) started: Option<Instant>,
    /// Whether reports carry the wall-clock time.
    pub(crate) measure_wall_time: bool,
    /// Whether every call reads the clock when it begins: when its wall time is
    /// measured, or when it may send HTTP requests (whose timeouts are cut to what is
    /// left of the call).
    pub(crate) clock_calls: bool,
    /// Set by the epoch callback when it stopped the guest for the deadline.
    pub(crate) timed_out: bool,
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
    pub(crate) log: crate::capabilities::logging::LogBudget,
    /// The instance's configuration (the built-in `wasi:config`).
    config: Option<Arc<dyn crate::ConfigSource>>,
    /// `wasi:http`: its context, and the outgoing side, which also keeps the network
    /// uses refused during the current call (shared with the checks that run outside
    /// the store: WASI's socket check, the address check after DNS).
    pub(crate) http: crate::capabilities::http::HttpState,
    /// Where the instance's key-value buckets are (the built-in `wasi:keyvalue`).
    pub(crate) keyvalue: Option<Arc<dyn crate::capabilities::keyvalue::KeyValueBackend>>,
    /// Key-value and file uses refused during the current call (kept in the store:
    /// they are refused by host code on it).
    pub(crate) audit: Trail,
    /// What host code holds for the instance between calls, against its budget.
    pub(crate) host_memory: crate::runtime::host_memory::HostMemory,
}

/// The parts of a [`HostState`] the audited WASI interfaces borrow at once.
pub(crate) struct AuditParts<'a> {
    pub(crate) ctx: &'a mut WasiCtx,
    pub(crate) table: &'a mut ResourceTable,
    pub(crate) component: &'a str,
    pub(crate) capabilities: &'a CapabilitySet,
    pub(crate) audit: &'a mut Trail,
}

/// The parts of a [`HostState`] host code borrows at once.
pub(crate) struct Parts<'a> {
    pub(crate) state: &'a mut (dyn Any + Send),
    pub(crate) component: &'a str,
    pub(crate) capabilities: &'a CapabilitySet,
    pub(crate) table: &'a mut ResourceTable,
}

/// What [`grant`] set up beside the WASI context: the capture pipes, and the trail of
/// refused network uses.
pub(crate) struct Granted {
    pub(crate) captured: Option<Captured>,
    pub(crate) net_audit: Option<Arc<Mutex<Trail>>>,
}

/// In-memory stdout and stderr of one instance.
#[derive(Debug, Clone)]
pub(crate) struct Captured {
    pub(crate) stdout: MemoryOutputPipe,
    pub(crate) stderr: MemoryOutputPipe,
}

impl std::fmt::Debug for HostState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostState")
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

impl HostState {
    /// The getter every built-in interface (`wasi:logging`, `wasi:config`,
    /// `wasi:keyvalue`) is linked through: a call into one of them is not the
    /// embedder's, so the host interface the guest entered last is forgotten here, once
    /// for all of their functions — a failure or timeout inside a built-in is never
    /// blamed on the embedder's function. (WASI's and `wasi:http`'s views do the same in
    /// their getters below.)
    pub(crate) fn builtin(&mut self) -> &mut Self {
        self.host_call = None;
        self
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        // Every WASI host function starts here: the guest left the embedder's.
        self.host_call = None;
        WasiCtxView {
            ctx: &mut self.wasi,
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
    /// context configured in `wasi` (by [`grant`]) and the embedder's `state`. The
    /// context is built here, in place: a `WasiCtx` is ~270 bytes, and every move of
    /// it (through a `Result`, into a constructor) would be a copy on each
    /// instantiation.
    #[inline(always)]
    pub(crate) fn new(
        sandbox: &Sandbox,
        component: &Arc<str>,
        wasi: &mut WasiCtxBuilder,
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
            wasi: wasi.build(),
            table,
            started: None,
            measure_wall_time: sandbox.measures_wall_time(),
            clock_calls: sandbox.measures_wall_time() || sandbox.capabilities().http.is_some(),
            timed_out: false,
            captured,
            state,
            component: Arc::clone(component),
            capabilities: Arc::clone(sandbox.shared_capabilities()),
            host_call: None,
            log: crate::capabilities::logging::LogBudget::default(),
            config: sandbox.config().cloned(),
            http: crate::capabilities::http::HttpState {
                ctx: crate::capabilities::http::context(sandbox.limits()),
                outbound: crate::capabilities::http::outbound::Outbound::new(
                    Arc::clone(component),
                    Arc::clone(sandbox.shared_capabilities()),
                    sandbox.limits().timeout(),
                    sandbox.refuses_private_addresses(),
                    net_audit,
                    sandbox.outgoing_requests(),
                ),
                charges: crate::capabilities::http::charges::Charges::default(),
            },
            keyvalue: sandbox.keyvalue().cloned(),
            audit: Trail::default(),
            host_memory: crate::runtime::host_memory::HostMemory::new(
                sandbox.limits().host_memory_bytes(),
            ),
        }
    }

    /// The instance's configuration source, if it has one.
    pub(crate) fn config(&self) -> Option<&dyn crate::ConfigSource> {
        self.config.as_deref()
    }

    /// The instance's resource table.
    pub(crate) fn table_mut(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// What the audited WASI interfaces borrow side by side.
    pub(crate) fn audit_parts(&mut self) -> AuditParts<'_> {
        AuditParts {
            ctx: &mut self.wasi,
            table: &mut self.table,
            component: &self.component,
            capabilities: &self.capabilities,
            audit: &mut self.audit,
        }
    }

    /// Counts, keeps and logs one refused use by host code on the store.
    #[cold]
    pub(crate) fn deny(&mut self, capability: &'static str, requested: &str, reason: String) {
        self.audit
            .deny(&self.component, capability, requested, reason);
    }

    /// The refusals of the current (or last) call, network ones included, in order.
    pub(crate) fn denials(&self) -> Vec<crate::capabilities::audit::Denial> {
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

    /// Everything the instance was granted.
    pub(crate) fn capabilities(&self) -> &CapabilitySet {
        &self.capabilities
    }

    /// The parts host code borrows.
    #[inline]
    pub(crate) fn parts(&mut self) -> Parts<'_> {
        Parts {
            state: &mut *self.state,
            component: &self.component,
            capabilities: &self.capabilities,
            table: &mut self.table,
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

/// Configures `b` to grant exactly what `sandbox` does: its capabilities and
/// arguments, nothing of the host's environment, files or network unless named.
/// Clocks and random are always there. When the sandbox captures output, granted
/// stdout/stderr go to memory pipes (returned); with its stdin bytes, a granted stdin
/// reads those.
///
/// # Errors
///
/// [`WasmError::CapabilityDenied`] when a granted directory cannot be opened.
pub(crate) fn grant(
    b: &mut WasiCtxBuilder,
    sandbox: &Sandbox,
    component: &Arc<str>,
) -> WasmResult<Granted> {
    let caps = sandbox.capabilities();
    let stdin = sandbox.stdin_bytes();
    b.args(sandbox.args());
    let captured = sandbox.captured_output_capacity().map(|capacity| Captured {
        stdout: MemoryOutputPipe::new(capacity),
        stderr: MemoryOutputPipe::new(capacity),
    });
    let logged =
        |stream| crate::capabilities::guest_output::GuestOutput::new(Arc::clone(component), stream);
    match (&captured, caps.stdout == StdioMode::Inherit) {
        (_, false) => {}
        (Some(c), true) => {
            b.stdout(c.stdout.clone());
        }
        (None, true) if sandbox.logs_output() => {
            b.stdout(logged("stdout"));
        }
        (None, true) => {
            b.inherit_stdout();
        }
    }
    match (&captured, caps.stderr == StdioMode::Inherit) {
        (_, false) => {}
        (Some(c), true) => {
            b.stderr(c.stderr.clone());
        }
        (None, true) if sandbox.logs_output() => {
            b.stderr(logged("stderr"));
        }
        (None, true) => {
            b.inherit_stderr();
        }
    }
    if caps.stdin == StdioMode::Inherit {
        match stdin {
            Some(bytes) => {
                b.stdin(MemoryInputPipe::new(bytes.to_vec()));
            }
            None => {
                b.inherit_stdin();
            }
        }
    }
    for e in &caps.env {
        match &e.value {
            Some(v) => {
                b.env(&e.name, v);
            }
            None => {
                // Pass the host's value through only when it is set (and is text).
                if let Ok(v) = std::env::var(&e.name) {
                    b.env(&e.name, v);
                }
            }
        }
    }
    for d in &caps.filesystem {
        let perms = match d.access {
            DirAccess::ReadOnly => FsPerms::ReadOnly,
            DirAccess::ReadWrite => FsPerms::ReadWrite,
        };
        b.preopened_dir(&d.host, &d.guest, perms)
            .map_err(|e| WasmError::CapabilityDenied {
                capability: format!(
                    "filesystem {} -> {} ({})",
                    d.host.display(),
                    d.guest,
                    d.access.as_str()
                ),
                reason: format!("the host directory cannot be opened: {e}"),
            })?;
    }
    let mut audited = None;
    match &caps.network {
        None => {
            b.allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false);
        }
        Some(net) => {
            let net = net.clone();
            let trail = Arc::new(Mutex::new(Trail::default()));
            audited = Some(Arc::clone(&trail));
            let component = Arc::clone(component);
            let refuse_private = sandbox.refuses_private_addresses();
            b.allow_tcp(true)
                .allow_udp(false)
                .allow_ip_name_lookup(net.dns)
                .socket_addr_check(move |addr: SocketAddr, usage: SocketAddrUse| {
                    let allowed = match usage {
                        // The operator's policy over the grant: only globally routable
                        // destinations, whatever the manifest allows.
                        SocketAddrUse::TcpConnect
                            if refuse_private
                                && !airssys_wasm_core::address::is_globally_routable(addr.ip()) =>
                        {
                            refused_private(&component, &trail, addr);
                            return Box::pin(async { false });
                        }
                        SocketAddrUse::TcpConnect => net.allows_connect(&addr),
                        // The implicit bind before a connect uses the wildcard address
                        // and port 0; an explicit bind (a server) is not granted.
                        SocketAddrUse::TcpBind => addr.ip().is_unspecified() && addr.port() == 0,
                        _ => false,
                    };
                    if !allowed {
                        denied(&component, &trail, usage, addr);
                    }
                    Box::pin(async move { allowed })
                });
        }
    }
    Ok(Granted {
        captured,
        net_audit: audited,
    })
}

/// Counts, keeps and logs a refused socket use: which component asked for what.
#[cold]
fn denied(component: &str, trail: &Mutex<Trail>, usage: SocketAddrUse, addr: SocketAddr) {
    let what = match usage {
        SocketAddrUse::TcpConnect => "network.connect",
        SocketAddrUse::TcpBind => "network.bind",
        _ => "network.udp",
    };
    lock(trail).deny(
        component,
        what,
        &addr.to_string(),
        format!("{what} to {addr} is not granted (add it to [capabilities.network] connect)"),
    );
}

/// Counts, keeps and logs a connect refused by the operator's policy on private
/// addresses.
#[cold]
fn refused_private(component: &str, trail: &Mutex<Trail>, addr: SocketAddr) {
    lock(trail).deny(
        component,
        "network.connect",
        &addr.to_string(),
        format!(
            "{addr} is not a globally routable address, which this host refuses to reach (the \
             operator's setting), whatever the manifest grants"
        ),
    );
}

use crate::capabilities::http::outbound::lock;
