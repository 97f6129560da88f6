//! Linking: how a [`CompiledComponent`] becomes a [`ComponentInstance`] — its imports
//! checked against the sandbox's interface grants and type-checked once against the
//! engine's linker (WASI, which is listed here, and the registered host interfaces), a
//! store set up under the sandbox's limits and grants with the embedder's state, and
//! the instantiation bounded like a call.

use std::any::{Any, TypeId};
use std::time::Instant;

use wasmtime::component::InstancePre;
use wasmtime::component::types::ComponentItem;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;

use airssys_wasm_core::interface::split_name;
use airssys_wasm_core::{InterfaceDenial, WasmError, WasmResult};

use crate::component::CompiledComponent;
use crate::deadline::{Backstop, Deadline, bounded};
use crate::failure::{Failure, Phase};
use crate::host::{HostState, grant};
use crate::instance::ComponentInstance;
use crate::sandbox::Sandbox;

impl CompiledComponent {
    /// Type-checks the imports against the engine's linker once, and keeps the result
    /// for every later instantiation.
    fn instance_pre(&self) -> WasmResult<&InstancePre<HostState>> {
        if let Some(pre) = self.pre_cell().get() {
            return Ok(pre);
        }
        let linker = self.engine().linker()?;
        let pre = linker
            .instantiate_pre(self.wasmtime_component())
            .map_err(|e| self.unsatisfied_imports(e))?;
        Ok(self.pre_cell().get_or_init(|| pre))
    }

    fn unsatisfied_imports(&self, e: wasmtime::Error) -> WasmError {
        let engine = self.engine().wasmtime_engine();
        let ty = self.wasmtime_component().component_type();
        let p3 = self
            .engine()
            .proposal_enabled(crate::Proposal::ComponentModelAsync);
        let foreign: Vec<_> = ty
            .imports(engine)
            .map(|(n, _)| n)
            .filter(|n| !provided_by_host(n, p3))
            .map(|n| format!("`{n}`"))
            .collect();
        let listed = if foreign.is_empty() {
            String::new()
        } else {
            format!(
                " Imports this host does not provide: {}.",
                foreign.join(", ")
            )
        };
        let versions = if p3 {
            "WASI 0.2 and 0.3 interfaces of wasi:cli, wasi:clocks, wasi:filesystem, \
             wasi:random and wasi:sockets (`@0.2.x`, `@0.3.x`; wasi:io and wasi:http's \
             types and outgoing-handler in 0.2)"
        } else {
            "WASI 0.2 interfaces of wasi:cli, wasi:clocks, wasi:filesystem, wasi:io, \
             wasi:random, wasi:sockets and wasi:http's types and outgoing-handler \
             (`@0.2.x`; WASI 0.3 needs component-model async: `-W component-model-async`)"
        };
        WasmError::ComponentInstantiationFailed {
            component: self.name().to_owned(),
            reason: format!(
                "unsatisfied import: {e}.{listed} This host provides the {versions} and \
                 nothing else; build the component against those interfaces only"
            ),
            source: Some(e.into()),
        }
    }

    /// What the component imports beyond WASI, each with the host interface that
    /// provides it (listed once).
    fn host_imports(&self) -> &[HostImport] {
        self.host_imports_cell().get_or_init(|| {
            let engine = self.engine();
            let p3 = engine.proposal_enabled(crate::Proposal::ComponentModelAsync);
            let wasmtime_engine = engine.wasmtime_engine();
            let ty = self.wasmtime_component().component_type();
            ty.imports(wasmtime_engine)
                .filter(|(name, _)| !provided_by_host(name, p3))
                .map(|(full, item)| {
                    let (name, version) = split_name(full).unwrap_or((full, None));
                    let version = version.and_then(|v| semver::Version::parse(v).ok());
                    let provider = engine
                        .registered()
                        .iter()
                        .position(|r| r.satisfies(name, version.as_ref()));
                    let functions = match &item.ty {
                        ComponentItem::ComponentInstance(i) => i
                            .exports(wasmtime_engine)
                            .filter(|(_, e)| matches!(e.ty, ComponentItem::ComponentFunc(_)))
                            .map(|(f, _)| f.to_owned())
                            .collect(),
                        _ => Vec::new(),
                    };
                    HostImport {
                        full: full.to_owned(),
                        name: name.to_owned(),
                        version,
                        provider,
                        functions,
                    }
                })
                .collect()
        })
    }

    /// Checks the component's imports beyond WASI against the sandbox's interface
    /// grants and what the engine provides, and every grant against what the engine
    /// provides; and that host code of the imported interfaces accepts `state`.
    fn check_interfaces(
        &self,
        sandbox: &Sandbox,
        state: TypeId,
        state_name: &str,
    ) -> WasmResult<()> {
        let imports = self.host_imports();
        let grants = &sandbox.capabilities().interfaces;
        if imports.is_empty() && grants.is_empty() {
            return Ok(());
        }
        let registered = self.engine().registered();
        let mut denied = Vec::new();
        for import in imports {
            match import.provider.and_then(|p| registered.get(p)) {
                None => denied.push(InterfaceDenial {
                    interface: import.full.clone(),
                    problem: "is imported, but this host does not provide it".into(),
                    fix: format!(
                        "this host provides {} (and WASI); build the component against \
                         those, or run it on a host that registers it",
                        list(registered.iter().map(|r| r.full.as_str()))
                    ),
                }),
                Some(r)
                    if r.gated
                        && !grants
                            .iter()
                            .any(|g| g.allows_version(&import.name, import.version.as_ref())) =>
                {
                    denied.push(InterfaceDenial {
                        interface: import.full.clone(),
                        problem: "is imported, but not granted".into(),
                        fix: r.grant_hint.map_or_else(
                            || {
                                format!(
                                    "grant it with `interfaces = [\"{}\"]` under \
                                     [capabilities] in Component.toml \
                                     (CapabilitySet::interfaces for embedders)",
                                    import.full
                                )
                            },
                            str::to_owned,
                        ),
                    });
                }
                Some(_) => {}
            }
        }
        for g in grants {
            if !registered
                .iter()
                .any(|r| g.allows_version(&r.name, r.version.as_ref()))
            {
                denied.push(InterfaceDenial {
                    interface: g.to_string(),
                    problem: match &g.origin {
                        Some(at) => {
                            format!("is granted (at {at}), but this host does not provide it")
                        }
                        None => "is granted, but this host does not provide it".into(),
                    },
                    fix: format!(
                        "remove the grant, or correct it: this host provides {}",
                        list(registered.iter().map(|r| r.full.as_str()))
                    ),
                });
            }
        }
        if !denied.is_empty() {
            for d in &denied {
                tracing::warn!(
                    target: crate::audit::AUDIT_TARGET,
                    component = self.name(),
                    capability = "interface",
                    requested = %d.interface,
                    "denied: {d}"
                );
            }
            return Err(WasmError::InterfacesDenied {
                component: self.name().to_owned(),
                denied,
            });
        }
        if let Some(r) = imports
            .iter()
            .filter_map(|i| i.provider.and_then(|p| registered.get(p)))
            .find(|r| !r.accepts_state(state))
        {
            return Err(WasmError::ComponentInstantiationFailed {
                component: self.name().to_owned(),
                reason: format!(
                    "the host interface `{}` runs on instance state of type `{}`, but the \
                     instance was given `{state_name}`; pass that state to instantiate_with",
                    r.full, r.state_name
                ),
                source: None,
            });
        }
        Ok(())
    }

    /// The host function a guest waiting in the host interface registered at
    /// `index` is in, for messages: `interface#function` when the component imports
    /// one function of it, else the interface with the functions it imports.
    pub(crate) fn host_function(&self, index: u16) -> String {
        let Some(r) = self.engine().registered().get(usize::from(index)) else {
            return "unknown".into();
        };
        let import = self
            .host_imports()
            .iter()
            .find(|i| i.provider == Some(usize::from(index)));
        match import.map(|i| (i.full.as_str(), i.functions.as_slice())) {
            Some((full, [one])) => format!("`{full}#{one}`"),
            Some((full, many)) if !many.is_empty() => {
                format!(
                    "of `{full}` (one of {})",
                    list(many.iter().map(String::as_str))
                )
            }
            _ => format!("of `{}`", r.full),
        }
    }

    /// Creates a sandboxed instance under `sandbox`'s limits and capabilities, with no
    /// state for host interfaces (`()`): `instantiate_with(sandbox, ())`.
    ///
    /// Instantiation runs start functions, so it is bounded like a call: the fuel budget,
    /// the timeout and the memory limit all apply.
    ///
    /// # Errors
    ///
    /// As [`instantiate_with`](Self::instantiate_with).
    pub async fn instantiate(&self, sandbox: &Sandbox) -> WasmResult<ComponentInstance> {
        self.instantiate_boxed(sandbox, Box::new(()), TypeId::of::<()>(), "()")
            .await
    }

    /// Creates a sandboxed instance under `sandbox`'s limits and capabilities, whose
    /// host interfaces' code runs on `state` (reached through
    /// [`HostCtx::state`](crate::HostCtx::state)): the embedder's per-instance data,
    /// such as a tenant, a channel or a connection. Each instance has its own; two
    /// share nothing unless `S` itself shares (an `Arc`).
    ///
    /// # Errors
    ///
    /// [`WasmError::InterfacesDenied`] when the component imports host interfaces the
    /// sandbox does not grant or the engine does not provide, or is granted ones the
    /// engine does not provide (naming every one);
    /// [`WasmError::ComponentInstantiationFailed`] for other unsatisfied imports or
    /// when an imported interface's host code needs another state type;
    /// [`WasmError::MemoryLimitExceeded`] when the initial memory is over the limit,
    /// [`WasmError::ResourceLimitExceeded`] for tables, [`WasmError::CapabilityDenied`]
    /// when a granted directory cannot be opened, and the call errors (trap, fuel,
    /// timeout) for a start function.
    pub async fn instantiate_with<S: Send + 'static>(
        &self,
        sandbox: &Sandbox,
        state: S,
    ) -> WasmResult<ComponentInstance> {
        self.instantiate_boxed(
            sandbox,
            Box::new(state),
            TypeId::of::<S>(),
            std::any::type_name::<S>(),
        )
        .await
    }

    /// Checks now what every instantiation under `sandbox` (with no state) would
    /// check first: the interface grants, and the imports against the linker.
    pub(crate) fn prepare(&self, sandbox: &Sandbox) -> WasmResult<()> {
        self.check_interfaces(sandbox, TypeId::of::<()>(), "()")?;
        self.instance_pre().map(|_| ())
    }

    async fn instantiate_boxed(
        &self,
        sandbox: &Sandbox,
        state: Box<dyn Any + Send>,
        state_type: TypeId,
        state_name: &str,
    ) -> WasmResult<ComponentInstance> {
        let engine = self.engine();
        engine.ensure_ticker();
        self.check_interfaces(sandbox, state_type, state_name)?;
        let pre = self.instance_pre()?;
        // In a block: the builder is not kept in this future across the await.
        let mut store = {
            let mut wasi = WasiCtxBuilder::new();
            let granted = grant(&mut wasi, sandbox, self.shared_name())?;
            Store::new(
                engine.wasmtime_engine(),
                HostState::new(
                    sandbox,
                    self.shared_name(),
                    &mut wasi,
                    granted.captured,
                    state,
                    granted.net_audit,
                ),
            )
        };
        store.limiter(|s| &mut s.limiter);
        // What one call into the host may copy out of the guest: the host-memory
        // budget, not Wasmtime's 128 MiB whatever the limits.
        store.set_hostcall_fuel(
            usize::try_from(sandbox.limits().host_memory_bytes()).unwrap_or(usize::MAX),
        );
        store.epoch_deadline_callback(|mut cx| {
            let data = cx.data_mut();
            match data.started {
                // The first tick of this call: it began within the last tick. Counting
                // from now never stops a guest early, and keeps the clock off the path
                // of the calls that end before a tick (nearly all of them).
                None => data.started = Some(Instant::now()),
                Some(started) if started.elapsed() >= data.limits().timeout() => {
                    data.timed_out = true;
                    return Err(wasmtime::Error::new(Deadline));
                }
                Some(_) => {}
            }
            // Not yet due: let other tasks run, then check again next tick.
            Ok(UpdateDeadline::Yield(1))
        });

        Deadline::begin(&mut store);
        let mut backstop =
            Backstop::new(Deadline::hard_bound(sandbox.limits(), engine.epoch_tick()));
        let outcome = bounded(&mut backstop, pre.instantiate_async(&mut store)).await;
        let report = Deadline::report(&store);
        let failure = match outcome {
            // The instantiation's backstop, settled, bounds the instance's calls.
            Ok(Ok(instance)) => {
                return Ok(ComponentInstance::new(
                    self.clone(),
                    store,
                    instance,
                    report,
                    backstop,
                ));
            }
            Ok(Err(e)) => Failure::Wasmtime(e),
            Err(stopped) => stopped.into(),
        };
        Err(failure.classify(&mut store, self, report.fuel_consumed, Phase::Instantiate))
    }
}

/// Who provides an import to the components of an engine
/// ([`WasmEngine::provider`](crate::WasmEngine::provider)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Provider {
    /// WASI, linked into every instance; the capabilities decide what it reaches.
    Wasi,
    /// A host interface registered on the engine (as registered), granted per
    /// component.
    Host(String),
    /// An interface airssys-wasm provides itself (`wasi:logging`), granted per
    /// component like a host interface.
    BuiltIn(String),
    /// An interface airssys-wasm provides itself to every component, whose own grant
    /// decides what it reaches (`wasi:keyvalue`: the buckets of
    /// `[capabilities.keyvalue]`).
    Service(String),
    /// Nothing: a component importing it cannot be instantiated on this engine.
    None,
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Wasi => f.write_str("provided: WASI"),
            Self::Host(name) => write!(f, "provided: host interface {name}, if granted"),
            Self::BuiltIn(name) => write!(f, "provided: built-in {name}, if granted"),
            Self::Service(name) => write!(
                f,
                "provided: built-in {name}, reaching what the component is granted"
            ),
            Self::None => f.write_str("NOT provided by this host"),
        }
    }
}

impl crate::WasmEngine {
    /// Who provides the import `import` (`ns:pkg/iface@version`, or an item in it,
    /// `…#func`, as [`CompiledComponent::imports`] lists them).
    pub fn provider(&self, import: &str) -> Provider {
        let interface = import.split_once('#').map_or(import, |(i, _)| i);
        if provided_by_host(
            interface,
            self.proposal_enabled(crate::Proposal::ComponentModelAsync),
        ) {
            return Provider::Wasi;
        }
        let (name, version) = split_name(interface).unwrap_or((interface, None));
        let version = version.and_then(|v| semver::Version::parse(v).ok());
        self.registered()
            .iter()
            .find(|r| r.satisfies(name, version.as_ref()))
            .map_or(Provider::None, |r| {
                if !r.gated {
                    Provider::Service(r.full.clone())
                } else if r.builtin {
                    Provider::BuiltIn(r.full.clone())
                } else {
                    Provider::Host(r.full.clone())
                }
            })
    }
}

/// An import beyond WASI.
pub(crate) struct HostImport {
    /// As imported: `ns:pkg/iface@version` (or a bare name).
    full: String,
    /// Without the version, and the version.
    name: String,
    version: Option<semver::Version>,
    /// The registered host interface that provides it.
    provider: Option<usize>,
    /// The functions the component imports from it.
    functions: Vec<String>,
}

fn list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The WASI 0.2 interfaces every instance is linked with (what `wasmtime-wasi`'s p2
/// `add_to_linker_async` defines, and `wasi:http`'s types and outgoing handler);
/// capabilities decide what they can reach.
const PROVIDED_WASI: &[&str] = &[
    "cli/environment",
    "cli/exit",
    "cli/stdin",
    "cli/stdout",
    "cli/stderr",
    "cli/terminal-input",
    "cli/terminal-output",
    "cli/terminal-stdin",
    "cli/terminal-stdout",
    "cli/terminal-stderr",
    "clocks/monotonic-clock",
    "clocks/wall-clock",
    "filesystem/types",
    "filesystem/preopens",
    "http/types",
    "http/outgoing-handler",
    "io/error",
    "io/poll",
    "io/streams",
    "random/random",
    "random/insecure",
    "random/insecure-seed",
    "sockets/network",
    "sockets/instance-network",
    "sockets/udp",
    "sockets/udp-create-socket",
    "sockets/tcp",
    "sockets/tcp-create-socket",
    "sockets/ip-name-lookup",
];

/// The WASI 0.3 interfaces an engine with component-model async links besides
/// (`wasmtime-wasi`'s p3 `add_to_linker`).
const PROVIDED_WASI_P3: &[&str] = &[
    "cli/environment",
    "cli/exit",
    "cli/stdin",
    "cli/stdout",
    "cli/stderr",
    "cli/types",
    "cli/terminal-input",
    "cli/terminal-output",
    "cli/terminal-stdin",
    "cli/terminal-stdout",
    "cli/terminal-stderr",
    "clocks/types",
    "clocks/monotonic-clock",
    "clocks/system-clock",
    "filesystem/types",
    "filesystem/preopens",
    "random/random",
    "random/insecure",
    "random/insecure-seed",
    "sockets/types",
    "sockets/ip-name-lookup",
];

/// Whether the host links an import of this name: a WASI 0.2.x interface of
/// [`PROVIDED_WASI`], or with `p3` (component-model async on) a WASI 0.3.x one of
/// [`PROVIDED_WASI_P3`].
pub(crate) fn provided_by_host(import: &str, p3: bool) -> bool {
    let Some((path, version)) = import
        .strip_prefix("wasi:")
        .and_then(|rest| rest.split_once('@'))
    else {
        return false;
    };
    (version.starts_with("0.2.") && PROVIDED_WASI.contains(&path))
        || (p3 && version.starts_with("0.3.") && PROVIDED_WASI_P3.contains(&path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_wasi_0_2_interfaces_of_the_p2_set_count_as_provided() {
        assert!(provided_by_host("wasi:cli/environment@0.2.6", false));
        assert!(provided_by_host("wasi:sockets/tcp@0.2.0", false));
        assert!(provided_by_host("wasi:http/outgoing-handler@0.2.6", false));
        assert!(!provided_by_host("wasi:http/incoming-handler@0.2.6", false));
        assert!(!provided_by_host("wasi:cli/environment@0.3.0", false));
        assert!(provided_by_host("wasi:cli/environment@0.3.0", true));
        assert!(provided_by_host("wasi:clocks/monotonic-clock@0.3.0", true));
        assert!(!provided_by_host("wasi:io/poll@0.3.0", true));
        assert!(!provided_by_host("wasi:http/handler@0.3.0", true));
        assert!(!provided_by_host("wasi:cli/environment", true));
        assert!(!provided_by_host("wasi:keyvalue/store@0.2.0-draft", true));
        assert!(!provided_by_host("host:env/log", true));
        assert!(!provided_by_host("log", true));
    }
}
