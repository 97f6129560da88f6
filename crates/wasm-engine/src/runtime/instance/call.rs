//! A [`ComponentInstance`]'s calls: by name with dynamic values, typed, through a
//! [`TypedExport`], a WAVE call expression, a command's `run` — each bounded
//! (`deadline.rs`), reported, and on failure classified (`failure.rs`) and poisoning.

use std::any::TypeId;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use wasmtime::Store;
use wasmtime::component::wasm_wave::untyped::UntypedFuncCall;
use wasmtime::component::{ComponentNamedList, Func, Lift, Lower, TypedFunc, Val};

use airssys_wasm_core::{WasmError, WasmResult};

use super::{
    CallOutcome, ComponentInstance, Exports, LINEAR_LOOKUP, NEXT_INSTANCE_ID, Resolved,
    TypedExport, first_line,
};
use crate::runtime::component::{CompiledComponent, ExportFunc};
use crate::runtime::deadline::{Deadline, Stopped, bounded};
use crate::runtime::failure::{Failure, Phase};
use crate::runtime::host::HostState;
use crate::runtime::sandbox::ExecutionReport;
use crate::runtime::types::{placeholder, render_func, render_type, val_matches};

impl ComponentInstance {
    /// Calls `export` with dynamic values. `export` is a function's name, or
    /// `interface#function` for a function in an exported interface.
    ///
    /// # Errors
    ///
    /// Usage errors ([`WasmError::ExportNotFound`], [`WasmError::InvalidArguments`]),
    /// which leave the instance usable; runtime errors (trap, fuel, timeout, memory),
    /// which poison it; [`WasmError::InstancePoisoned`] after an earlier failure.
    pub async fn call(&mut self, export: &str, args: &[Val]) -> WasmResult<CallOutcome> {
        let (func, count) = self.dynamic_func(export, args)?;
        let mut results = Vec::with_capacity(count);
        results.resize_with(count, placeholder);
        self.begin();
        let outcome = bounded(
            &mut self.backstop,
            func.call_async(&mut self.store, args, &mut results),
        )
        .await;
        let ((), report) = self.end(export, outcome)?;
        Ok(CallOutcome { results, report })
    }

    /// Calls `export` with dynamic values like [`call`](Self::call), writing the
    /// results into `results`, which must have exactly one slot per result (as
    /// Wasmtime's `Func::call`): the form of a dynamic call that allocates nothing, for
    /// hot paths. After an error the slots' contents are unspecified.
    ///
    /// # Errors
    ///
    /// As [`call`](Self::call); [`WasmError::InvalidArguments`] (which does not poison)
    /// when `results` has the wrong length.
    pub async fn call_into(
        &mut self,
        export: &str,
        args: &[Val],
        results: &mut [Val],
    ) -> WasmResult<ExecutionReport> {
        let (func, count) = self.dynamic_func(export, args)?;
        if results.len() != count {
            return Err(self.bad_results(export, count, results.len()));
        }
        self.begin();
        let outcome = bounded(
            &mut self.backstop,
            func.call_async(&mut self.store, args, results),
        )
        .await;
        let ((), report) = self.end(export, outcome)?;
        Ok(report)
    }

    /// `export`, ready for a dynamic call with `args`, and how many results it has.
    fn dynamic_func(&mut self, export: &str, args: &[Val]) -> WasmResult<(Func, usize)> {
        self.check_poison()?;
        let resolved = self
            .exports
            .lookup(&self.component, &mut self.store, export)?;
        check_args(&self.component, export, &resolved.info, args)?;
        Ok((resolved.func, resolved.info.ty.results().len()))
    }

    /// The error for a results slice of the wrong length.
    #[cold]
    fn bad_results(&self, export: &str, expected: usize, got: usize) -> WasmError {
        WasmError::InvalidArguments {
            component: self.component.name().to_owned(),
            export: export.to_owned(),
            reason: format!(
                "the results slice must have exactly one slot per result: expected \
                 {expected}, got {got}"
            ),
            signature: self.signature(export),
        }
    }

    /// Calls `export` with Rust-typed parameters and results, e.g.
    /// `call_typed::<(i32,), (i32,)>("double", (21,))`.
    ///
    /// # Errors
    ///
    /// As [`call`](Self::call); a type mismatch is [`WasmError::InvalidArguments`].
    pub async fn call_typed<P, R>(
        &mut self,
        export: &str,
        params: P,
    ) -> WasmResult<(R, ExecutionReport)>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        self.check_poison()?;
        let func = self.typed_func::<P, R>(export)?;
        self.begin();
        let outcome = bounded(&mut self.backstop, func.call_async(&mut self.store, params)).await;
        self.end(export, outcome)
    }

    /// Looks `export` up once and checks it against the Rust types `P` and `R`, for
    /// repeated calls with [`call_export`](Self::call_export).
    ///
    /// # Errors
    ///
    /// [`WasmError::ExportNotFound`], or [`WasmError::InvalidArguments`] when the types
    /// do not match the export's signature.
    pub fn typed_export<P, R>(&mut self, export: &str) -> WasmResult<TypedExport<P, R>>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        let func = self.typed_func(export)?;
        if self.id == 0 {
            self.id = NEXT_INSTANCE_ID.fetch_add(1, Ordering::Relaxed);
        }
        Ok(TypedExport {
            func,
            export: export.to_owned(),
            instance: self.id,
        })
    }

    /// `export`, checked against the Rust types `P` and `R` — by Wasmtime, unless
    /// these types passed for this export before: the last ones in this instance, or
    /// the first ones in any instance of the component (so a new instance's first call
    /// skips the check too).
    fn typed_func<P, R>(&mut self, export: &str) -> WasmResult<TypedFunc<P, R>>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        let resolved = self
            .exports
            .lookup(&self.component, &mut self.store, export)?;
        // Lifetimes erased: `(&'a str,)` and `(&'static str,)` are one type to
        // Wasmtime's type check and lowering, as trait implementations cannot tell
        // lifetimes apart.
        let types = (typeid::of::<P>(), TypeId::of::<R>());
        if resolved.checked == Some(types) || resolved.info.checked.get() == Some(&types) {
            // SAFETY: `new_unchecked` requires that `P` and `R` match the function's
            // type. `Func::typed::<P, R>` below accepted the same types up to lifetimes
            // for this export, either of this very `Func` or of the same export
            // (`ExportFunc::index`) of another instance of this component: an export's
            // type is the component's, the same in every instance, and never changes.
            // (Resource types in it are too: imported ones are the linker's, one per
            // engine, through the component's one `InstancePre`; Wasmtime's check
            // accepts a guest-defined one as `ResourceAny` only, in any instance.)
            resolved.checked = Some(types);
            return Ok(unsafe { TypedFunc::new_unchecked(resolved.func) });
        }
        match resolved.func.typed::<P, R>(&self.store) {
            Ok(typed) => {
                resolved.checked = Some(types);
                // Only the first pair of types is kept for the component; an instance
                // remembers the last it met.
                let _ = resolved.info.checked.set(types);
                Ok(typed)
            }
            Err(e) => Err(wrong_types(&self.component, export, &resolved.info, &e)),
        }
    }

    /// Calls through a handle from [`typed_export`](Self::typed_export) on this
    /// instance: same limits, report and poisoning as [`call`](Self::call), without the
    /// lookup.
    ///
    /// # Errors
    ///
    /// As [`call`](Self::call); [`WasmError::InvalidArguments`] for a handle from
    /// another instance.
    pub async fn call_export<P, R>(
        &mut self,
        export: &TypedExport<P, R>,
        params: P,
    ) -> WasmResult<(R, ExecutionReport)>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        self.check_poison()?;
        if export.instance != self.id {
            return Err(self.foreign_handle(&export.export));
        }
        self.begin();
        let outcome = bounded(
            &mut self.backstop,
            export.func.call_async(&mut self.store, params),
        )
        .await;
        self.end(&export.export, outcome)
    }

    /// The error for a [`TypedExport`] of another instance.
    #[cold]
    fn foreign_handle(&self, export: &str) -> WasmError {
        WasmError::InvalidArguments {
            component: self.component.name().to_owned(),
            export: export.to_owned(),
            reason: "this handle belongs to another instance; get one from this instance \
                     with typed_export"
                .into(),
            signature: self.signature(export),
        }
    }

    /// `export`'s signature, for a message.
    fn signature(&self, export: &str) -> String {
        self.component
            .export_func(export)
            .map_or_else(|| "unknown".into(), |f| render_func(&f.ty))
    }

    /// Arms the store for one call: fresh fuel, deadline and peak.
    #[inline(always)]
    fn begin(&mut self) {
        Deadline::begin(&mut self.store);
    }

    /// Ends a call: its report, and its outcome as a result (poisoning on failure). (A
    /// denied growth the guest coped with is not an error; the next call's `begin`
    /// forgets it.)
    #[inline(always)]
    fn end<T>(
        &mut self,
        export: &str,
        outcome: Result<wasmtime::Result<T>, Stopped>,
    ) -> WasmResult<(T, ExecutionReport)> {
        let report = Deadline::report(&self.store);
        self.last_report = report;
        if report.log_records_dropped > 0 {
            crate::capabilities::logging::summarise_dropped(
                self.component.name(),
                report.log_records_dropped,
            );
        }
        match outcome {
            Ok(Ok(value)) => Ok((value, report)),
            Ok(Err(e)) => Err(self.fail(export, Failure::Wasmtime(e))),
            Err(stopped) => Err(self.fail(export, stopped.into())),
        }
    }

    /// Parses a call in WAVE syntax — `double(21)`, `greet("you")`, `noop()` or just
    /// `noop`; a function in an exported interface by its listed name,
    /// `my:pkg/math#add(1, 2)` — checks it against the export's signature and makes it.
    ///
    /// # Errors
    ///
    /// [`WasmError::InvalidArguments`] when the text does not parse or does not fit the
    /// signature; otherwise as [`call`](Self::call).
    pub async fn invoke(&mut self, call: &str) -> WasmResult<CallOutcome> {
        let text = call.trim();
        // The name is split off here: WAVE's grammar has no `iface#func` names.
        let (name, arguments) = match text.find('(') {
            Some(at) => (text[..at].trim_end(), &text[at..]),
            None => (text, "()"),
        };
        let wave = format!("f{arguments}");
        let parsed = UntypedFuncCall::parse(&wave).map_err(|e| WasmError::InvalidArguments {
            component: self.component.name().to_owned(),
            export: name.to_owned(),
            reason: format!(
                "`{call}` is not a call in WAVE syntax (e.g. `double(21)`): the \
                     arguments `{arguments}` do not parse: {e}"
            ),
            signature: self.signature(name),
        })?;
        let info = Arc::clone(
            &self
                .exports
                .lookup(&self.component, &mut self.store, name)?
                .info,
        );
        let args = parsed
            .to_wasm_params::<Val>(info.params.iter())
            .map_err(|e| WasmError::InvalidArguments {
                component: self.component.name().to_owned(),
                export: name.to_owned(),
                reason: format!("the arguments do not fit: {e}"),
                signature: render_func(&info.ty),
            })?;
        self.call(name, &args).await
    }

    /// Runs a command component's `wasi:cli/run` entry point, as `wasmtime run` does,
    /// and returns its exit code: 0 for `Ok`, 1 for `Err`, or the code the guest passed
    /// to `exit`.
    ///
    /// # Errors
    ///
    /// [`WasmError::ExportNotFound`] when the component is not a command (the message
    /// lists what it exports instead); otherwise as [`call`](Self::call).
    pub async fn run_command(&mut self) -> WasmResult<(i32, ExecutionReport)> {
        let Some(export) = self.component.command_export().map(str::to_owned) else {
            return Err(WasmError::ExportNotFound {
                component: self.component.name().to_owned(),
                export: "wasi:cli/run".into(),
                available: self.component.export_signatures(),
            });
        };
        match self.call(&export, &[]).await {
            Ok(outcome) => {
                let code = match outcome.results.first() {
                    Some(Val::Result(Err(_))) => 1,
                    _ => 0,
                };
                Ok((code, outcome.report))
            }
            Err(WasmError::Exited { code, .. }) => Ok((code, self.last_report)),
            Err(e) => Err(e),
        }
    }

    #[inline(always)]
    fn check_poison(&self) -> WasmResult<()> {
        match self.poisoned() {
            Some(cause) => Err(self.poisoned_error(cause)),
            None => Ok(()),
        }
    }

    #[cold]
    #[inline(never)]
    fn poisoned_error(&self, cause: &str) -> WasmError {
        WasmError::InstancePoisoned {
            component: self.component.name().to_owned(),
            cause: cause.to_owned(),
        }
    }

    /// The error for a failed call; poisons the instance.
    #[cold]
    #[inline(never)]
    fn fail(&mut self, export: &str, failure: Failure) -> WasmError {
        let component = &self.component;
        let err = failure.classify(
            &mut self.store,
            component.name(),
            |i| component.host_function(i),
            self.last_report.fuel_consumed,
            Phase::Call(export),
        );
        self.poisoned = Some(first_line(&err.to_string()));
        err
    }
}

impl Exports {
    /// What this instance has learnt of the export called `export` (and what
    /// `component` knows of it), learning it on first use.
    fn lookup(
        &mut self,
        component: &CompiledComponent,
        store: &mut Store<HostState>,
        export: &str,
    ) -> WasmResult<&mut Resolved> {
        let found = if self.resolved.len() <= LINEAR_LOOKUP {
            self.resolved.iter().position(|r| *r.info.name == *export)
        } else {
            self.by_name.get(export).copied()
        };
        if let Some(at) = found {
            return Ok(&mut self.resolved[at]);
        }
        let info = component
            .export_func(export)
            .ok_or_else(|| not_found(component, export))?;
        let func = self
            .instance
            .get_func(&mut *store, info.index)
            .ok_or_else(|| not_found(component, export))?;
        if self.resolved.len() == LINEAR_LOOKUP {
            let names = self.resolved.iter().map(|r| r.info.name.clone());
            self.by_name = names.zip(0..).collect();
        }
        if self.resolved.len() >= LINEAR_LOOKUP {
            self.by_name.insert(info.name.clone(), self.resolved.len());
        }
        Ok(self.resolved.push_mut(Resolved {
            info,
            func,
            checked: None,
        }))
    }
}

/// The error for Rust types that do not match an export (not generic, and out of the
/// way of the generic code of every typed call).
#[cold]
#[inline(never)]
fn wrong_types(
    component: &CompiledComponent,
    export: &str,
    info: &ExportFunc,
    e: &wasmtime::Error,
) -> WasmError {
    WasmError::InvalidArguments {
        component: component.name().to_owned(),
        export: export.to_owned(),
        reason: format!("the Rust types do not match the export: {e}"),
        signature: render_func(&info.ty),
    }
}

#[cold]
fn not_found(component: &CompiledComponent, export: &str) -> WasmError {
    WasmError::ExportNotFound {
        component: component.name().to_owned(),
        export: export.to_owned(),
        available: component.export_signatures(),
    }
}

/// Checks dynamic arguments against the export's parameters, for a message that names
/// the argument (Wasmtime would refuse them too, less helpfully).
fn check_args(
    component: &CompiledComponent,
    export: &str,
    info: &ExportFunc,
    args: &[Val],
) -> WasmResult<()> {
    if info.params.len() == args.len()
        && args
            .iter()
            .zip(info.params.iter())
            .all(|(arg, t)| val_matches(arg, t))
    {
        return Ok(());
    }
    Err(bad_args(component, export, info, args))
}

#[cold]
fn bad_args(
    component: &CompiledComponent,
    export: &str,
    info: &ExportFunc,
    args: &[Val],
) -> WasmError {
    let reason = if info.params.len() == args.len() {
        args.iter()
            .zip(info.ty.params())
            .enumerate()
            .find(|(_, (arg, (_, t)))| !val_matches(arg, t))
            .map(|(i, (arg, (name, t)))| {
                format!(
                    "argument {} (`{name}`) must be {}, got {arg:?}",
                    i + 1,
                    render_type(&t)
                )
            })
            .unwrap_or_default()
    } else {
        format!(
            "expected {} argument(s), got {}",
            info.params.len(),
            args.len()
        )
    };
    WasmError::InvalidArguments {
        component: component.name().to_owned(),
        export: export.to_owned(),
        reason,
        signature: render_func(&info.ty),
    }
}
