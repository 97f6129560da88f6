//! [`Sandbox`] (what an instance is allowed) and [`ExecutionReport`] (what a call used).

use std::sync::Arc;
use std::time::Duration;

use airssys_wasm_core::error::fmt_bytes;
use airssys_wasm_core::{CapabilitySet, ResourceLimits};

/// How many outgoing HTTP requests one instance may have in flight by default
/// ([`Sandbox::max_outgoing_requests`]).
pub const DEFAULT_MAX_OUTGOING_REQUESTS: usize = 16;

/// The limits, capabilities and arguments one instance runs with.
///
/// Capabilities start at [`CapabilitySet::deny_all`]: an embedder grants explicitly.
///
/// ```
/// use std::time::Duration;
/// use airssys_wasm_core::{CapabilitySet, ResourceLimits};
/// use airssys_wasm_engine::Sandbox;
///
/// let limits = ResourceLimits::new(1 << 20, 1_000_000, Duration::from_secs(1))?;
/// let sandbox = Sandbox::new(limits)
///     .with_capabilities(CapabilitySet::default())
///     .with_args(["prog", "--verbose"]);
/// assert_eq!(sandbox.args().len(), 2);
/// # Ok::<(), airssys_wasm_core::WasmError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Sandbox {
    limits: ResourceLimits,
    capabilities: Arc<CapabilitySet>,
    config: Option<Arc<dyn crate::ConfigSource>>,
    keyvalue: Option<Arc<dyn crate::capabilities::keyvalue::KeyValueBackend>>,
    args: Vec<String>,
    capture: Option<usize>,
    stdin: Option<Vec<u8>>,
    wall_time: bool,
    refuse_private: bool,
    log_output: bool,
    outgoing_requests: usize,
}

impl Sandbox {
    /// A sandbox with these limits and no capabilities at all.
    pub fn new(limits: ResourceLimits) -> Self {
        Self {
            limits,
            capabilities: Arc::new(CapabilitySet::deny_all()),
            config: None,
            keyvalue: None,
            args: Vec::new(),
            capture: None,
            stdin: None,
            wall_time: false,
            refuse_private: false,
            log_output: false,
            outgoing_requests: DEFAULT_MAX_OUTGOING_REQUESTS,
        }
    }

    /// Measures every call's (and the instantiation's) wall-clock time into
    /// [`ExecutionReport::wall_time`]. Off by default: it reads the clock twice per
    /// call (~50 ns on a KVM guest, a fifth of a call into an export that does nothing;
    /// see BENCHMARKS.md), which nothing else on a call's path needs; the timeout is
    /// enforced either way.
    #[must_use]
    pub fn measure_wall_time(mut self, on: bool) -> Self {
        self.wall_time = on;
        self
    }

    /// Whether calls' wall-clock time is measured.
    pub fn measures_wall_time(&self) -> bool {
        self.wall_time
    }

    /// Grants these capabilities (replacing the previous set).
    #[must_use]
    pub fn with_capabilities(mut self, capabilities: CapabilitySet) -> Self {
        self.capabilities = Arc::new(capabilities);
        self
    }

    /// The program arguments a WASI guest sees (`args[0]` is conventionally its name).
    #[must_use]
    pub fn with_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Keeps what the guest writes to a **granted** stdout or stderr in memory instead of
    /// passing it to the host's, up to `max_bytes` per stream (a write beyond that fails
    /// in the guest, so a chatty guest cannot grow the host's memory). Read it with
    /// [`ComponentInstance::captured_stdout`](crate::ComponentInstance::captured_stdout).
    /// A stream the capabilities set to null stays null.
    #[must_use]
    pub fn capture_output(mut self, max_bytes: usize) -> Self {
        self.capture = Some(max_bytes);
        self
    }

    /// Sends what the guest writes to a **granted** stdout or stderr to the host's log
    /// instead of the host's streams: one record per line at
    /// [`GUEST_LOG_TARGET`](crate::GUEST_LOG_TARGET), with the component's name and the
    /// stream as its context, escaped (no control characters reach the log), lines cut
    /// at 4 KiB and at most 64 KiB per stream of one instance. What a server wants, whose
    /// own stderr carries its access log. [`capture_output`](Self::capture_output)
    /// takes precedence; a stream the capabilities set to null stays null.
    #[must_use]
    pub fn log_output(mut self, on: bool) -> Self {
        self.log_output = on;
        self
    }

    /// Whether granted output goes to the log ([`log_output`](Self::log_output)).
    pub fn logs_output(&self) -> bool {
        self.log_output
    }

    /// Feeds these bytes to a **granted** stdin instead of the host's stdin. A stdin the
    /// capabilities set to null stays null.
    #[must_use]
    pub fn with_stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// The bytes a granted stdin reads, when set with [`with_stdin`](Self::with_stdin).
    pub fn stdin_bytes(&self) -> Option<&[u8]> {
        self.stdin.as_deref()
    }

    /// The per-stream capacity when output is captured.
    pub fn captured_output_capacity(&self) -> Option<usize> {
        self.capture
    }

    /// The limits.
    pub fn limits(&self) -> &ResourceLimits {
        &self.limits
    }

    /// The capabilities.
    pub fn capabilities(&self) -> &CapabilitySet {
        &self.capabilities
    }

    /// The configuration the built-in `wasi:config/store` reads: a map
    /// (`BTreeMap<String, String>`, e.g. a manifest's `[config]` table) or the
    /// embedder's own [`ConfigSource`](crate::ConfigSource). Importing `wasi:config`
    /// still needs its grant (`wasi:config/store` in
    /// [`CapabilitySet::interfaces`](airssys_wasm_core::CapabilitySet::interfaces); a
    /// manifest's `[config]` table grants it).
    #[must_use]
    pub fn with_config(mut self, source: Arc<dyn crate::ConfigSource>) -> Self {
        self.config = Some(source);
        self
    }

    /// The configuration source, if there is one.
    pub fn config(&self) -> Option<&Arc<dyn crate::ConfigSource>> {
        self.config.as_ref()
    }

    /// Where the built-in `wasi:keyvalue` keeps buckets: an embedded database (the
    /// `airssys-wasm-keyvalue` crate's SQLite or Redis backends), memory
    /// ([`MemoryBackend`](crate::capabilities::keyvalue::MemoryBackend)), or the embedder's own. What
    /// a component may open is still its grant
    /// ([`CapabilitySet::keyvalue`](airssys_wasm_core::CapabilitySet::keyvalue));
    /// without a backend, a granted `open` fails with `no-such-store`.
    #[must_use]
    pub fn with_keyvalue(
        mut self,
        backend: Arc<dyn crate::capabilities::keyvalue::KeyValueBackend>,
    ) -> Self {
        self.keyvalue = Some(backend);
        self
    }

    /// Refuses every destination that is not a globally routable unicast address
    /// ([`is_globally_routable`](airssys_wasm_core::address::is_globally_routable):
    /// loopback, private, link-local with the cloud metadata services, shared,
    /// multicast, documentation, benchmarking, reserved, and the IPv6 forms that reach
    /// IPv4 — mapped, compatible, NAT64, 6to4, Teredo), for outgoing HTTP requests
    /// (checked after DNS: the addresses checked are the addresses connected to) and
    /// for `wasi:sockets` connects alike, even when the component's grant names the
    /// host: an operator's guard against a grant like `https://*.example.com` reaching
    /// the internal network through a name that resolves inside it. A refusal is
    /// `destination-IP-prohibited` (HTTP) or `access-denied` (sockets) for the guest and
    /// an audited denial. Off by default.
    #[must_use]
    pub fn refuse_private_addresses(mut self, on: bool) -> Self {
        self.refuse_private = on;
        self
    }

    /// At most `n` outgoing HTTP requests of one instance in flight at once (each from
    /// its send until its connection is done: a socket, buffers, a task); past it, a
    /// request fails with `connection-limit-reached`. Default
    /// [`DEFAULT_MAX_OUTGOING_REQUESTS`].
    #[must_use]
    pub fn max_outgoing_requests(mut self, n: usize) -> Self {
        self.outgoing_requests = n;
        self
    }

    /// The bound on an instance's outgoing requests in flight.
    pub fn outgoing_requests(&self) -> usize {
        self.outgoing_requests
    }

    /// Whether outgoing requests to private addresses are refused.
    pub fn refuses_private_addresses(&self) -> bool {
        self.refuse_private
    }

    /// The key-value backend, if there is one.
    pub fn keyvalue(&self) -> Option<&Arc<dyn crate::capabilities::keyvalue::KeyValueBackend>> {
        self.keyvalue.as_ref()
    }

    /// The capabilities, shared (each instance keeps a reference for its host code).
    pub(crate) fn shared_capabilities(&self) -> &Arc<CapabilitySet> {
        &self.capabilities
    }

    /// The program arguments.
    pub fn args(&self) -> &[String] {
        &self.args
    }
}

/// What one call (or the instantiation) used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecutionReport {
    /// Fuel consumed.
    pub fuel_consumed: u64,
    /// The fuel budget it ran under.
    pub fuel_limit: u64,
    /// Wall-clock time from entering the guest to getting control back, when the
    /// sandbox measures it ([`Sandbox::measure_wall_time`]).
    pub wall_time: Option<Duration>,
    /// The largest total of the instance's linear memories during the call.
    pub peak_memory_bytes: u64,
    /// The memory limit it ran under.
    pub memory_limit_bytes: u64,
    /// Log records (`wasi:logging`) the call made past the bound of
    /// [`MAX_LOG_RECORDS_PER_CALL`](crate::MAX_LOG_RECORDS_PER_CALL): counted, not
    /// emitted.
    pub log_records_dropped: u64,
    /// Capability uses the call was refused (a connect outside the allowlist, a bucket
    /// not granted, a write past a bucket's `max_bytes`, …), each
    /// also logged to [`AUDIT_TARGET`](crate::AUDIT_TARGET) with the component's name and
    /// what it asked for.
    pub capability_denials: u64,
}

impl std::fmt::Display for ExecutionReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "fuel {} of {}, ", self.fuel_consumed, self.fuel_limit)?;
        if let Some(t) = self.wall_time {
            write!(f, "wall time {t:.3?}, ")?;
        }
        write!(
            f,
            "peak memory {} of {}",
            fmt_bytes(self.peak_memory_bytes),
            fmt_bytes(self.memory_limit_bytes)
        )?;
        if self.capability_denials > 0 {
            write!(f, ", {} capability use(s) denied", self.capability_denials)?;
        }
        if self.log_records_dropped > 0 {
            write!(f, ", {} log record(s) dropped", self.log_records_dropped)?;
        }
        Ok(())
    }
}
