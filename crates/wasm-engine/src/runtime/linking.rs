//! Linking: a compiled component's imports checked once against the engine's linker
//! (WASI and the registered host interfaces) into a [`Linked`] — Wasmtime's
//! `InstancePre` and what the component imports beyond WASI — which the component
//! keeps for every instantiation; each instantiation's interface grants are checked
//! against it. Who provides an import ([`Provider`]) and which WASI interfaces the
//! engine links are here too.

use std::any::TypeId;

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, InstancePre, Linker};

use airssys_wasm_core::interface::split_name;
use airssys_wasm_core::{InterfaceDenial, WasmError, WasmResult};

use crate::capabilities::host_interface::Registered;
use crate::capabilities::links_wasi;
use crate::runtime::host::HostState;
use crate::runtime::sandbox::Sandbox;

/// A component linked against its engine: the type-checked pre-instantiation (or why
/// the linker does not satisfy its imports — linking is deterministic, so that is kept
/// too), and the imports beyond WASI with the host interface that provides each.
pub(crate) struct Linked {
    pre: Result<InstancePre<HostState>, String>,
    host_imports: Vec<HostImport>,
}

/// What linking needs of the engine.
pub(crate) struct LinkerParts<'a> {
    pub(crate) linker: &'a Linker<HostState>,
    pub(crate) registered: &'a [Registered],
    /// Whether WASI 0.3 is linked (component-model async is on).
    pub(crate) p3: bool,
}

impl Linked {
    /// Type-checks `component`'s imports against the linker and lists those beyond WASI.
    pub(crate) fn new(parts: &LinkerParts<'_>, component: &Component) -> Self {
        let pre = parts
            .linker
            .instantiate_pre(component)
            .map_err(|e| unsatisfied_imports(parts, component, &e));
        Self {
            pre,
            host_imports: host_imports(parts, component),
        }
    }

    /// The pre-instantiation every instance starts from.
    ///
    /// # Errors
    ///
    /// [`WasmError::ComponentInstantiationFailed`] when the linker does not satisfy
    /// the imports, naming those this host does not provide.
    pub(crate) fn instance_pre(&self, component: &str) -> WasmResult<&InstancePre<HostState>> {
        self.pre
            .as_ref()
            .map_err(|reason| WasmError::ComponentInstantiationFailed {
                component: component.to_owned(),
                reason: reason.clone(),
                source: None,
            })
    }
    /// Checks the component's imports beyond WASI against the sandbox's interface
    /// grants and what the engine provides, and every grant against what the engine
    /// provides; and that host code of the imported interfaces accepts `state`.
    pub(crate) fn check_interfaces(
        &self,
        registered: &[Registered],
        component: &str,
        sandbox: &Sandbox,
        state: TypeId,
        state_name: &str,
    ) -> WasmResult<()> {
        let imports = &self.host_imports;
        let grants = &sandbox.capabilities().interfaces;
        if imports.is_empty() && grants.is_empty() {
            return Ok(());
        }
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
                    target: crate::capabilities::audit::AUDIT_TARGET,
                    component,
                    capability = "interface",
                    requested = %d.interface,
                    "denied: {d}"
                );
            }
            return Err(WasmError::InterfacesDenied {
                component: component.to_owned(),
                denied,
            });
        }
        if let Some(r) = imports
            .iter()
            .filter_map(|i| i.provider.and_then(|p| registered.get(p)))
            .find(|r| !r.accepts_state(state))
        {
            return Err(WasmError::ComponentInstantiationFailed {
                component: component.to_owned(),
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
    pub(crate) fn host_function(&self, registered: &[Registered], index: u16) -> String {
        let Some(r) = registered.get(usize::from(index)) else {
            return "unknown".into();
        };
        let import = self
            .host_imports
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
}

/// Why the linker does not satisfy `component`'s imports, naming those this host does
/// not provide at all.
fn unsatisfied_imports(
    parts: &LinkerParts<'_>,
    component: &Component,
    e: &wasmtime::Error,
) -> String {
    let engine = parts.linker.engine();
    let p3 = parts.p3;
    let foreign: Vec<_> = component
        .component_type()
        .imports(engine)
        .map(|(n, _)| n)
        .filter(|n| !links_wasi(n, p3))
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
    format!(
        "unsatisfied import: {e}.{listed} This host provides the {versions} and nothing \
         else; build the component against those interfaces only"
    )
}

/// What `component` imports beyond WASI, each with the host interface that provides
/// it (listed once).
fn host_imports(parts: &LinkerParts<'_>, component: &Component) -> Vec<HostImport> {
    let engine = parts.linker.engine();
    component
        .component_type()
        .imports(engine)
        .filter(|(name, _)| !links_wasi(name, parts.p3))
        .map(|(full, item)| {
            let (name, version) = split_name(full).unwrap_or((full, None));
            let version = version.and_then(|v| semver::Version::parse(v).ok());
            let provider = parts
                .registered
                .iter()
                .position(|r| r.satisfies(name, version.as_ref()));
            let functions = match &item.ty {
                ComponentItem::ComponentInstance(i) => i
                    .exports(engine)
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

impl Provider {
    /// Who provides `import` (`ns:pkg/iface@version`, or an item in it, `…#func`):
    /// WASI, or one of `registered`.
    pub(crate) fn of(import: &str, registered: &[Registered], p3: bool) -> Self {
        let interface = import.split_once('#').map_or(import, |(i, _)| i);
        if links_wasi(interface, p3) {
            return Provider::Wasi;
        }
        let (name, version) = split_name(interface).unwrap_or((interface, None));
        let version = version.and_then(|v| semver::Version::parse(v).ok());
        registered
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
