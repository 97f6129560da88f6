//! [`CompiledComponent`]: a compiled component, shareable, instantiable many times.

use std::any::TypeId;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::Instant;

use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Type};
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;

use airssys_wasm_core::{WasmError, WasmResult};

use crate::deadline::{Backstop, Deadline, bounded};
use crate::engine::WasmEngine;
use crate::failure::{Failure, Phase};
use crate::host::{HostState, grant};
use crate::instance::ComponentInstance;
use crate::sandbox::Sandbox;
use crate::types::{ItemInfo, describe_items};

/// A compiled component: code ready to instantiate, cheap to clone, `Send + Sync`,
/// shared by any number of concurrent instances.
///
/// Made by `airssys_wasm_loader::ComponentLoader` (which validates and compiles), or
/// from a Wasmtime [`Component`] with [`CompiledComponent::new`].
#[derive(Clone)]
pub struct CompiledComponent {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    component: Component,
    engine: WasmEngine,
    pre: OnceLock<InstancePre<HostState>>,
    exports: OnceLock<Vec<ItemInfo>>,
    /// The exported functions called so far, by the name they were called by: each
    /// is resolved on its first call, so a run pays for the exports it uses only.
    funcs: RwLock<foldhash::HashMap<Box<str>, Arc<ExportFunc>>>,
    command: OnceLock<Option<String>>,
}

/// An exported function, resolved once per component so that a call by name costs
/// a new instance a hash lookup, not a walk of the component's exports.
pub(crate) struct ExportFunc {
    /// The name it is called by.
    pub(crate) name: Box<str>,
    /// Where it is in every instance.
    pub(crate) index: ComponentExportIndex,
    /// Its type, for messages (parameter names included).
    pub(crate) ty: ComponentFunc,
    /// Its parameters' types, for checking dynamic arguments.
    pub(crate) params: Box<[Type]>,
    /// The Rust parameter and result types (lifetimes erased) of the first typed call
    /// whose types Wasmtime checked against this export, in any instance: the export
    /// has the same type in every instance of the component, so a new instance's first
    /// call with these types needs no check.
    pub(crate) checked: OnceLock<(TypeId, TypeId)>,
}

impl std::fmt::Debug for CompiledComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledComponent")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

impl CompiledComponent {
    /// Wraps a component compiled with `engine`'s Wasmtime engine. `name` is used in
    /// every message about this component.
    ///
    /// # Errors
    ///
    /// [`WasmError::EngineInitialization`] if `component` was compiled by another engine.
    pub fn new(
        engine: &WasmEngine,
        name: impl Into<String>,
        component: Component,
    ) -> WasmResult<Self> {
        if !wasmtime::Engine::same(component.engine(), engine.wasmtime_engine()) {
            return Err(WasmError::EngineInitialization {
                reason: "the component was compiled by a different engine".into(),
                source: None,
            });
        }
        Ok(Self {
            inner: Arc::new(Inner {
                name: name.into(),
                component,
                engine: engine.clone(),
                pre: OnceLock::new(),
                exports: OnceLock::new(),
                funcs: RwLock::default(),
                command: OnceLock::new(),
            }),
        })
    }

    /// The name used in messages (file name, manifest name, or `<bytes>`).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The engine this component was compiled by.
    pub fn engine(&self) -> &WasmEngine {
        &self.inner.engine
    }

    /// The underlying Wasmtime component.
    pub fn wasmtime_component(&self) -> &Component {
        &self.inner.component
    }

    /// The exported items, functions of exported interfaces flattened as
    /// `interface#function`, WIT-like.
    pub fn exports(&self) -> &[ItemInfo] {
        self.inner.exports.get_or_init(|| {
            let engine = self.inner.engine.wasmtime_engine();
            let ty = self.inner.component.component_type();
            describe_items(engine, ty.exports(engine).map(|(n, e)| (n, e.ty)))
        })
    }

    /// The exported function called `name` (`func` or `interface#func`, as
    /// [`exports`](Self::exports) lists it), resolved on the first call by that name.
    pub(crate) fn export_func(&self, name: &str) -> Option<Arc<ExportFunc>> {
        let funcs = &self.inner.funcs;
        if let Some(found) = funcs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
        {
            return Some(Arc::clone(found));
        }
        let resolved = Arc::new(self.resolve_func(name)?);
        let mut funcs = funcs.write().unwrap_or_else(PoisonError::into_inner);
        let entry = funcs.entry(resolved.name.clone()).or_insert(resolved);
        Some(Arc::clone(entry))
    }

    /// Finds the function `name` names: a function exported by the component, or by
    /// an instance it exports (`interface#func`) — what [`exports`](Self::exports)
    /// lists as callable, found by index lookups instead of a walk of every export.
    fn resolve_func(&self, name: &str) -> Option<ExportFunc> {
        let component = &self.inner.component;
        let (item, index) = match name.split_once('#') {
            Some((iface, func)) => {
                let iface = component.get_export_index(None, iface)?;
                component.get_export(Some(&iface), func)?
            }
            None => component.get_export(None, name)?,
        };
        let ComponentItem::ComponentFunc(ty) = item else {
            return None;
        };
        let params = ty.params().map(|(_, t)| t).collect();
        Some(ExportFunc {
            name: name.into(),
            index,
            ty,
            params,
            checked: OnceLock::new(),
        })
    }

    /// The exported functions, as `name: signature` lines (used in error messages).
    pub fn export_signatures(&self) -> Vec<String> {
        self.exports()
            .iter()
            .filter(|e| e.is_func)
            .map(ToString::to_string)
            .collect()
    }

    /// The name of the `wasi:cli/run` entry point (`wasi:cli/run@0.2.x#run`, or WASI
    /// 0.3's `wasi:cli/run@0.3.x#run`) if the component is a command.
    pub fn command_export(&self) -> Option<&str> {
        self.inner
            .command
            .get_or_init(|| {
                let engine = self.inner.engine.wasmtime_engine();
                self.inner
                    .component
                    .component_type()
                    .exports(engine)
                    .map(|(name, _)| name)
                    // WASI 0.2's synchronous `run`, or WASI 0.3's async one (callable
                    // when component-model async is on: otherwise such a component does
                    // not validate).
                    .filter(|name| {
                        name.starts_with("wasi:cli/run@0.2") || name.starts_with("wasi:cli/run@0.3")
                    })
                    .map(|name| format!("{name}#run"))
                    .find(|run| self.export_func(run).is_some())
            })
            .as_deref()
    }

    /// The imported items, WIT-like.
    pub fn imports(&self) -> Vec<ItemInfo> {
        let engine = self.inner.engine.wasmtime_engine();
        let ty = self.inner.component.component_type();
        describe_items(engine, ty.imports(engine).map(|(n, e)| (n, e.ty)))
    }

    /// Type-checks the imports against the engine's linker once, and keeps the result
    /// for every later instantiation.
    fn instance_pre(&self) -> WasmResult<&InstancePre<HostState>> {
        if let Some(pre) = self.inner.pre.get() {
            return Ok(pre);
        }
        let linker = self.inner.engine.linker()?;
        let pre = linker
            .instantiate_pre(&self.inner.component)
            .map_err(|e| self.unsatisfied_imports(e))?;
        Ok(self.inner.pre.get_or_init(|| pre))
    }

    fn unsatisfied_imports(&self, e: wasmtime::Error) -> WasmError {
        let engine = self.inner.engine.wasmtime_engine();
        let ty = self.inner.component.component_type();
        let p3 = self
            .inner
            .engine
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
             wasi:random and wasi:sockets (`@0.2.x`, `@0.3.x`; wasi:io in 0.2)"
        } else {
            "WASI 0.2 interfaces of wasi:cli, wasi:clocks, wasi:filesystem, wasi:io, \
             wasi:random and wasi:sockets (`@0.2.x`; WASI 0.3 needs component-model async: \
             `-W component-model-async`)"
        };
        WasmError::ComponentInstantiationFailed {
            component: self.inner.name.clone(),
            reason: format!(
                "unsatisfied import: {e}.{listed} This host provides the {versions} and \
                 nothing else; build the component against those interfaces only"
            ),
            source: Some(e.into()),
        }
    }

    /// Creates a sandboxed instance under `sandbox`'s limits and capabilities.
    ///
    /// Instantiation runs start functions, so it is bounded like a call: the fuel budget,
    /// the timeout and the memory limit all apply.
    ///
    /// # Errors
    ///
    /// [`WasmError::ComponentInstantiationFailed`] for unsatisfied imports,
    /// [`WasmError::MemoryLimitExceeded`] when the initial memory is over the limit,
    /// [`WasmError::ResourceLimitExceeded`] for tables, [`WasmError::CapabilityDenied`]
    /// when a granted directory cannot be opened, and the call errors (trap, fuel,
    /// timeout) for a start function.
    pub async fn instantiate(&self, sandbox: &Sandbox) -> WasmResult<ComponentInstance> {
        let engine = &self.inner.engine;
        engine.ensure_ticker();
        let pre = self.instance_pre()?;
        // In a block: the builder is not kept in this future across the await.
        let mut store = {
            let mut wasi = WasiCtxBuilder::new();
            let captured = grant(&mut wasi, sandbox)?;
            Store::new(
                engine.wasmtime_engine(),
                HostState::new(sandbox, &mut wasi, captured),
            )
        };
        store.limiter(|s| &mut s.limiter);
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
        match outcome {
            // The instantiation's backstop, settled, bounds the instance's calls.
            Some(Ok(instance)) => Ok(ComponentInstance::new(
                self.clone(),
                store,
                instance,
                report,
                backstop,
            )),
            Some(Err(e)) => Err(Failure::Wasmtime(e).classify(
                &mut store,
                &self.inner.name,
                report.fuel_consumed,
                Phase::Instantiate,
            )),
            None => Err(Failure::AsyncTimeout.classify(
                &mut store,
                &self.inner.name,
                report.fuel_consumed,
                Phase::Instantiate,
            )),
        }
    }
}

/// The WASI 0.2 interfaces every instance is linked with (what `wasmtime-wasi`'s p2
/// `add_to_linker_async` defines); capabilities decide what they can reach.
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
fn provided_by_host(import: &str, p3: bool) -> bool {
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
        assert!(!provided_by_host("wasi:http/outgoing-handler@0.2.6", false));
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
