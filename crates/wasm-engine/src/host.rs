//! The data every store carries: the limiter, the WASI context built from the
//! instance's capabilities, and the wall-clock deadline of the current call.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use airssys_wasm_core::{CapabilitySet, DirAccess, StdioMode, WasmError, WasmResult};

use crate::limiter::InstanceLimiter;

/// The data of one store (one component instance).
pub struct HostState {
    pub(crate) limiter: InstanceLimiter,
    wasi: WasiCtx,
    table: ResourceTable,
    /// When the current call (or instantiation) started: taken when the call begins if
    /// its wall time is measured, else at its first epoch tick (at most one tick late;
    /// see the epoch callback).
    pub(crate) started: Option<Instant>,
    /// How long a call may run.
    pub(crate) timeout: Duration,
    /// Whether reports carry the wall-clock time.
    pub(crate) measure_wall_time: bool,
    /// Set by the epoch callback when it stopped the guest for the deadline.
    pub(crate) timed_out: bool,
    /// Captured stdout and stderr, when the sandbox asked for capture.
    pub(crate) captured: Option<Captured>,
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
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl HostState {
    pub(crate) fn new(
        limiter: InstanceLimiter,
        wasi: WasiCtx,
        captured: Option<Captured>,
        timeout: Duration,
        measure_wall_time: bool,
    ) -> Self {
        Self {
            limiter,
            wasi,
            table: ResourceTable::new(),
            started: None,
            timeout,
            measure_wall_time,
            timed_out: false,
            captured,
        }
    }
}

/// Builds the WASI context granting exactly `caps` (and `args`): nothing of the host's
/// environment, files or network unless named. Clocks and random are always there.
/// With `capture`, granted stdout/stderr go to memory pipes of that capacity instead;
/// with `stdin`, a granted stdin reads those bytes.
pub(crate) fn wasi_context(
    caps: &CapabilitySet,
    args: &[String],
    capture: Option<usize>,
    stdin: Option<&[u8]>,
) -> WasmResult<(WasiCtx, Option<Captured>)> {
    let mut b = WasiCtxBuilder::new();
    b.args(args);
    let captured = capture.map(|capacity| Captured {
        stdout: MemoryOutputPipe::new(capacity),
        stderr: MemoryOutputPipe::new(capacity),
    });
    match (&captured, caps.stdout == StdioMode::Inherit) {
        (_, false) => {}
        (Some(c), true) => {
            b.stdout(c.stdout.clone());
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
    match &caps.network {
        None => {
            b.allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false);
        }
        Some(net) => {
            let net = net.clone();
            b.allow_tcp(true)
                .allow_udp(false)
                .allow_ip_name_lookup(net.dns)
                .socket_addr_check(move |addr: SocketAddr, usage: SocketAddrUse| {
                    let allowed = match usage {
                        SocketAddrUse::TcpConnect => net.allows_connect(&addr),
                        // The implicit bind before a connect uses the wildcard address
                        // and port 0; an explicit bind (a server) is not granted.
                        SocketAddrUse::TcpBind => addr.ip().is_unspecified() && addr.port() == 0,
                        _ => false,
                    };
                    Box::pin(async move { allowed })
                });
        }
    }
    Ok((b.build(), captured))
}
