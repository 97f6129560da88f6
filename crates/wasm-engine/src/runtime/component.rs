//! [`CompiledComponent`]: a compiled component, shareable, instantiable many times —
//! what it exports and imports, and its linking, done once (`linking.rs`). Making an
//! instance of it (`instantiate`, the store under a sandbox) is in
//! `instance/instantiate.rs`, beside the instance it makes.

use std::any::TypeId;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::component::{Component, ComponentExportIndex, Type};

use airssys_wasm_core::{WasmError, WasmResult};

use crate::runtime::engine::WasmEngine;
use crate::runtime::linking::Linked;
use crate::runtime::types::{ItemInfo, describe_items};

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
    name: Arc<str>,
    component: Component,
    engine: WasmEngine,
    /// Linked against the engine, on the first instantiation.
    linked: OnceLock<Linked>,
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
                name: Arc::from(name.into()),
                component,
                engine: engine.clone(),
                linked: OnceLock::new(),
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

    /// The name, shared (each instance's host code sees it).
    pub(crate) fn shared_name(&self) -> &Arc<str> {
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

    /// Its linking against the engine (`linking.rs`), done on the first use and kept
    /// for every instantiation.
    ///
    /// # Errors
    ///
    /// [`WasmError::EngineInitialization`] when the engine's linker cannot be built.
    pub(crate) fn linked(&self) -> WasmResult<&Linked> {
        if let Some(linked) = self.inner.linked.get() {
            return Ok(linked);
        }
        let parts = self.inner.engine.linker_parts()?;
        let linked = Linked::new(&parts, &self.inner.component);
        Ok(self.inner.linked.get_or_init(|| linked))
    }

    /// The host function a guest waiting in the host interface registered at `index`
    /// is in, for messages (see [`Linked::host_function`]).
    pub(crate) fn host_function(&self, index: u16) -> String {
        self.inner.linked.get().map_or_else(
            || "unknown".to_owned(),
            |linked| linked.host_function(self.inner.engine.registered(), index),
        )
    }
}
