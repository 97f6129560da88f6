//! [`ComponentInstance`]: one sandboxed instance — the type and what it tells
//! (here), how one is made from a compiled component under a sandbox
//! (`instantiate.rs`), and its calls (`call.rs`).

mod call;
mod instantiate;

use std::any::TypeId;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use wasmtime::Store;
use wasmtime::component::{Func, Instance, TypedFunc, Val};

use airssys_wasm_core::{ResourceLimits, WasmError, WasmResult};

use crate::runtime::component::{CompiledComponent, ExportFunc};
use crate::runtime::deadline::Backstop;
use crate::runtime::host::HostState;
use crate::runtime::sandbox::ExecutionReport;

/// The result of a dynamic call.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    /// The results (zero or one value for today's components).
    pub results: Vec<Val>,
    /// What the call used.
    pub report: ExecutionReport,
}

impl CallOutcome {
    /// The results in WAVE syntax (`42`, `"hello"`, `some(3)`), one per result.
    ///
    /// # Errors
    ///
    /// [`WasmError::Internal`] for values WAVE cannot express (resources).
    pub fn results_wave(&self) -> WasmResult<Vec<String>> {
        self.results
            .iter()
            .map(|v| {
                v.to_wave().map_err(|e| WasmError::Internal {
                    component: String::new(),
                    reason: format!("a result cannot be written as WAVE: {e}"),
                    source: None,
                })
            })
            .collect()
    }
}

/// One sandboxed instance of a component.
///
/// Every call gets the fuel budget afresh and the wall-clock timeout; memory is bounded
/// for the instance's whole life. A call that traps or hits a limit **poisons** the
/// instance: later calls fail with [`WasmError::InstancePoisoned`] (instantiate again);
/// the engine and the compiled component stay usable. A usage error (unknown export,
/// wrong arguments) does not poison. Neither may a call be abandoned: one whose future
/// is dropped before it finishes (a caller's own timeout, a `select!`) leaves the guest
/// midway, and poisons the instance too.
pub struct ComponentInstance {
    component: CompiledComponent,
    store: Store<HostState>,
    /// The instance's exports, as calls by name found them.
    exports: Exports,
    poisoned: Option<String>,
    instantiation: ExecutionReport,
    last_report: ExecutionReport,
    /// Tells this instance's [`TypedExport`]s from other instances': assigned when
    /// the first is made (0 until then; handles are never 0).
    id: u64,
    /// The async-side bound of every call.
    backstop: Backstop,
}

/// The Wasmtime instance, and what calls by name have learnt of its exports.
struct Exports {
    instance: Instance,
    /// In order of first use.
    resolved: Vec<Resolved>,
    /// Where in `resolved` each export is, once there are more than a linear search
    /// should go through (empty until then). A fixed hasher: an instance only hashes
    /// names it resolved, and seeding one per instance is a cost on every instantiation.
    by_name: std::collections::HashMap<Box<str>, usize, foldhash::fast::FixedState>,
}

/// How many exports an instance looks up by comparing names, before it indexes them:
/// most instances call a few exports, for which comparing is cheaper than hashing.
const LINEAR_LOOKUP: usize = 8;

/// One export of one instance, as calls by name found it.
struct Resolved {
    /// What the component knows of it.
    info: Arc<ExportFunc>,
    /// The export in this instance's store.
    func: Func,
    /// The Rust parameter and result types (lifetimes erased) of the last typed call
    /// whose types Wasmtime checked against this export. A call with the same types
    /// skips the check, which costs more than the rest of a call's bookkeeping.
    checked: Option<(TypeId, TypeId)>,
}

/// A typed handle on one export of one instance, from
/// [`ComponentInstance::typed_export`]: calls through it skip the name lookup and the
/// type check, which is what a hot path wants.
///
/// ```
/// # use std::time::Duration;
/// # use airssys_wasm_core::ResourceLimits;
/// # use airssys_wasm_engine::{CompiledComponent, Sandbox, WasmEngine};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), airssys_wasm_core::WasmError> {
/// # let engine = WasmEngine::new()?;
/// # let wat = r#"(component
/// #   (core module $m (func (export "double") (param i32) (result i32)
/// #     local.get 0 i32.const 2 i32.mul))
/// #   (core instance $i (instantiate $m))
/// #   (func (export "double") (param "x" s32) (result s32)
/// #     (canon lift (core func $i "double"))))"#;
/// # let bytes = wat::parse_str(wat).unwrap();
/// # let c = wasmtime::component::Component::new(engine.wasmtime_engine(), &bytes).unwrap();
/// # let component = CompiledComponent::new(&engine, "doc", c)?;
/// # let limits = ResourceLimits::new(1 << 20, 1_000_000, Duration::from_secs(1))?;
/// let mut instance = component.instantiate(&Sandbox::new(limits)).await?;
/// let double = instance.typed_export::<(i32,), (i32,)>("double")?;
/// for x in 0..3 {
///     let ((y,), _report) = instance.call_export(&double, (x,)).await?;
///     assert_eq!(y, 2 * x);
/// }
/// # Ok(())
/// # }
/// ```
pub struct TypedExport<P, R> {
    func: TypedFunc<P, R>,
    export: String,
    instance: u64,
}

impl<P, R> Clone for TypedExport<P, R> {
    fn clone(&self) -> Self {
        Self {
            func: self.func,
            export: self.export.clone(),
            instance: self.instance,
        }
    }
}

impl<P, R> std::fmt::Debug for TypedExport<P, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedExport")
            .field("export", &self.export)
            .finish_non_exhaustive()
    }
}

impl<P, R> TypedExport<P, R> {
    /// The export's name.
    pub fn export(&self) -> &str {
        &self.export
    }
}

static NEXT_INSTANCE_ID: AtomicU64 = AtomicU64::new(1);

impl std::fmt::Debug for ComponentInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentInstance")
            .field("component", &self.component.name())
            .field("limits", self.limits())
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl ComponentInstance {
    pub(crate) fn new(
        component: CompiledComponent,
        store: Store<HostState>,
        instance: Instance,
        instantiation: ExecutionReport,
        backstop: Backstop,
    ) -> Self {
        Self {
            component,
            store,
            exports: Exports {
                instance,
                resolved: Vec::new(),
                by_name: std::collections::HashMap::default(),
            },
            poisoned: None,
            instantiation,
            last_report: instantiation,
            id: 0,
            backstop,
        }
    }

    /// Its `wasi:http` view (the resource table and the HTTP context), where serving
    /// puts an incoming request and the outparam its response goes to.
    pub(crate) fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        wasmtime_wasi_http::WasiHttpView::http(self.store.data_mut())
    }

    /// The component this is an instance of.
    pub fn component(&self) -> &CompiledComponent {
        &self.component
    }

    /// The limits it runs under.
    pub fn limits(&self) -> &ResourceLimits {
        self.store.data().limits()
    }

    /// What instantiation (start functions, initial memory) used.
    pub fn instantiation_report(&self) -> &ExecutionReport {
        &self.instantiation
    }

    /// Bytes of all linear memories now.
    pub fn memory_bytes(&self) -> u64 {
        self.store.data().limiter.total()
    }

    /// What the last call (or the instantiation, before any call) used — also when it
    /// failed.
    pub fn last_report(&self) -> &ExecutionReport {
        &self.last_report
    }

    /// The capability uses the last call was refused, oldest first, each timestamped
    /// with what was asked and why it was refused: the audit trail of
    /// [`ExecutionReport::capability_denials`], whose count also includes those past
    /// the [`MAX_AUDIT_RECORDS_PER_CALL`](crate::MAX_AUDIT_RECORDS_PER_CALL) kept.
    pub fn last_denials(&self) -> Vec<crate::Denial> {
        self.store.data().denials()
    }

    /// The state the instance was given for its host interfaces
    /// ([`CompiledComponent::instantiate_with`]), if it has type `S`: what host code
    /// left there, for the embedder to read between or after calls.
    pub fn state<S: 'static>(&mut self) -> Option<&mut S> {
        self.store.data_mut().state()
    }

    /// What the guest has written to stdout so far, when the sandbox captured output
    /// ([`Sandbox::capture_output`](crate::Sandbox::capture_output)); `None` otherwise.
    pub fn captured_stdout(&self) -> Option<Vec<u8>> {
        let c = self.store.data().captured.as_ref()?;
        Some(c.stdout.contents().to_vec())
    }

    /// What the guest has written to stderr so far, when the sandbox captured output.
    pub fn captured_stderr(&self) -> Option<Vec<u8>> {
        let c = self.store.data().captured.as_ref()?;
        Some(c.stderr.contents().to_vec())
    }

    /// Why the instance is poisoned, if it is: the failure that poisoned it, or a call
    /// abandoned midway (still in flight although no one is polling it).
    #[inline]
    pub fn poisoned(&self) -> Option<&str> {
        match &self.poisoned {
            Some(cause) => Some(cause),
            None if self.backstop.in_flight => Some(ABANDONED),
            None => None,
        }
    }
}

/// Why an instance is poisoned whose last call was dropped before it finished.
const ABANDONED: &str = "an earlier call was cancelled before it finished (its future was \
                         dropped, e.g. by the caller's own timeout or select!), leaving the \
                         guest midway";

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).to_owned()
}
