//! The step from a component's WASI grants to its WASI context: arguments, the
//! environment variables named, stdio (inherited, captured in memory, or logged
//! line by line — `output.rs`), the preopened directories, and the network — nothing of
//! the host's unless named. A refused socket use is counted and audited here, by the
//! socket check `wasmtime-wasi` calls.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use airssys_wasm_core::{DirAccess, StdioMode, WasmError, WasmResult};

use super::output::GuestOutput;
use crate::capabilities::audit::Trail;
use crate::capabilities::audit::lock;
use crate::runtime::sandbox::Sandbox;

/// What [`grant`] set up beside the WASI context: the capture pipes, and the trail of
/// refused network uses.
#[derive(Default)]
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
    let logged = |stream| GuestOutput::new(Arc::clone(component), stream);
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
        None => deny_network(b),
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

/// No sockets and no name lookups.
fn deny_network(b: &mut WasiCtxBuilder) {
    b.allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
}

/// Whether `sandbox` grants nothing a WASI context holds: no arguments, environment,
/// directories, network or standard streams. Such an instance's context is made the
/// first time its guest reaches WASI ([`granting_nothing`], from `HostState`'s getters), not
/// when it is instantiated: most never do (a library component called through its
/// exports, an actor), and a context costs ~3,700 instructions to make and about a
/// kilobyte to keep. What it grants cannot fail, so nothing is deferred but the work.
pub(crate) fn grants_nothing(sandbox: &Sandbox) -> bool {
    let caps = sandbox.capabilities();
    sandbox.args().is_empty()
        && sandbox.captured_output_capacity().is_none()
        && caps.stdin != StdioMode::Inherit
        && caps.stdout != StdioMode::Inherit
        && caps.stderr != StdioMode::Inherit
        && caps.env.is_empty()
        && caps.filesystem.is_empty()
        && caps.network.is_none()
}

/// The WASI context of a sandbox that [grants nothing](grants_nothing): what
/// [`grant`] makes for it.
pub(crate) fn granting_nothing() -> WasiCtx {
    let mut b = WasiCtxBuilder::new();
    deny_network(&mut b);
    b.build()
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
