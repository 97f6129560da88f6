//! WASI 0.2 and 0.3, from `wasmtime-wasi`: what a component's grants make of its WASI
//! context (`grant.rs`; stdout and stderr to the log in `output.rs`), and the parts
//! where `wasmtime-wasi` refuses what was not granted, as it implements them, with
//! those refusals audited (counted in the call's
//! [`ExecutionReport::capability_denials`](crate::ExecutionReport::capability_denials),
//! kept and logged to [`AUDIT_TARGET`](crate::AUDIT_TARGET) with the component and what
//! was asked):
//!
//! - `wasi:filesystem/types`: a path that leaves its preopened directory (`..`, an
//!   absolute symlink), a write into a read-only one. (A path outside every preopened
//!   directory never reaches the host: the guest's libc finds no directory to resolve
//!   it against and fails by itself.)
//! - `wasi:sockets/tcp-create-socket` (0.3: `wasi:sockets/types`'s
//!   `tcp-socket.create`): a TCP socket without a network grant (a connect
//!   outside the allowlist is refused, and audited, by the socket check in `grant.rs`).
//! - `wasi:sockets/ip-name-lookup`: a name lookup without `dns = true`.
//!
//! Every function forwards to `wasmtime-wasi`'s own implementation; this layer only
//! looks at what comes back. It is linked over `wasmtime-wasi`'s (linker shadowing):
//! WASI 0.2's in [`p2`], WASI 0.3's in [`p3`].

use wasmtime::component::{HasData, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use airssys_wasm_core::CapabilitySet;

use crate::capabilities::audit::Trail;

mod grant;
mod interfaces;
pub(crate) mod output;
mod p2;
mod p3;

pub(crate) use grant::{Captured, Granted, grant, granting_nothing, grants_nothing};

/// The store's WASI context and table, apart from the rest of the store's data, so
/// that the audit can borrow its trail beside them.
pub(crate) struct Split<'a> {
    pub(crate) ctx: &'a mut WasiCtx,
    pub(crate) table: &'a mut ResourceTable,
}

impl WasiView for Split<'_> {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: self.ctx,
            table: self.table,
        }
    }
}

/// `wasmtime-wasi`, what the instance was granted, and where refusals are kept.
pub(crate) struct AuditedWasi<'a> {
    pub(crate) wasi: Split<'a>,
    pub(crate) component: &'a str,
    pub(crate) capabilities: &'a CapabilitySet,
    pub(crate) audit: &'a mut Trail,
}

/// The store's view of the audited interfaces.
pub(crate) type Getter<T> = fn(&mut T) -> AuditedWasi<'_>;

/// The [`HasData`] of [`AuditedWasi`].
pub(crate) struct HasAuditedWasi;

impl HasData for HasAuditedWasi {
    type Data<'a> = AuditedWasi<'a>;
}

/// Links WASI 0.2 and, with `p3` (component-model async on), WASI 0.3: every
/// interface of [`interfaces`], the audited ones reached through `audited`.
pub(crate) fn add_to_linker<T: WasiView + 'static>(
    linker: &mut Linker<T>,
    audited: Getter<T>,
    p3: bool,
) -> Result<(), String> {
    let p2 = interfaces::p2::<T>().into_iter().map(|i| ("0.2", i));
    let p3 = interfaces::p3::<T>()
        .into_iter()
        .filter(|_| p3)
        .map(|i| ("0.3", i));
    for (version, (name, add)) in p2.chain(p3) {
        add(linker, audited).map_err(|e| format!("linking wasi:{name}@{version} failed: {e:#}"))?;
    }
    Ok(())
}

/// Whether this host links `path` (`cli/environment`) of WASI 0.2, or with `p3` of
/// WASI 0.3 (`version`: what follows the `@`).
pub(crate) fn links(path: &str, version: &str, p3: bool) -> bool {
    // The tables name the interfaces whatever they are linked on: here, on a store
    // data that cannot exist.
    enum Names {}
    impl WasiView for Names {
        fn ctx(&mut self) -> WasiCtxView<'_> {
            match *self {}
        }
    }
    (version.starts_with("0.2.") && interfaces::p2::<Names>().iter().any(|(n, _)| *n == path))
        || (p3
            && version.starts_with("0.3.")
            && interfaces::p3::<Names>().iter().any(|(n, _)| *n == path))
}

impl AuditedWasi<'_> {
    /// Counts, keeps and logs one refused filesystem operation (`code`: the WASI
    /// error code's name).
    #[cold]
    fn denied(&mut self, operation: &str, path: &str, code: &str) {
        self.audit.deny(
            self.component,
            "filesystem",
            path,
            format!(
                "{operation} `{path}` (relative to a preopened directory): {code}; outside the \
                 granted directories, or not writable there (see [[capabilities.filesystem]])"
            ),
        );
    }

    /// Counts, keeps and logs a TCP socket refused for want of any network grant.
    #[cold]
    fn tcp_denied(&mut self) {
        self.audit.deny(
            self.component,
            "network.tcp",
            "a TCP socket",
            "the component has no network grant (add [capabilities.network] with the \
             addresses it may connect to)"
                .into(),
        );
    }

    /// Counts, keeps and logs a name lookup refused for want of `dns = true`.
    #[cold]
    fn dns_denied(&mut self, name: &str) {
        self.audit.deny(
            self.component,
            "network.dns",
            name,
            format!(
                "looking up `{name}` is not granted (add dns = true under \
                 [capabilities.network])"
            ),
        );
    }
}
