//! Making a [`ComponentInstance`] from a [`CompiledComponent`] under a [`Sandbox`]: the
//! interface grants checked against the component's linking, a store set up under the
//! sandbox's limits and grants with the embedder's state, and the instantiation
//! bounded like a call. (`CompiledComponent`'s methods that make an instance are here,
//! beside the instance they make, as Wasmtime keeps `Component`'s type queries in
//! `types.rs`: so the component does not depend on its instances.)

use std::any::{Any, TypeId};

use wasmtime::Store;
use wasmtime_wasi::WasiCtxBuilder;

use airssys_wasm_core::WasmResult;

use super::ComponentInstance;
use crate::capabilities::wasi::{Granted, grant, grants_nothing};
use crate::runtime::component::CompiledComponent;
use crate::runtime::deadline::{Backstop, Deadline, bounded};
use crate::runtime::failure::{Failure, Phase};
use crate::runtime::host::HostState;
use crate::runtime::sandbox::Sandbox;

impl CompiledComponent {
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
        if let Some(density) = self.engine().density() {
            density.check(self.name(), sandbox.limits())?;
        }
        let linked = self.linked()?;
        linked.check_interfaces(
            self.engine().registered(),
            self.name(),
            sandbox,
            TypeId::of::<()>(),
            "()",
        )?;
        linked.instance_pre(self.name()).map(|_| ())
    }

    async fn instantiate_boxed(
        &self,
        sandbox: &Sandbox,
        state: Box<dyn Any + Send>,
        state_type: TypeId,
        state_name: &str,
    ) -> WasmResult<ComponentInstance> {
        let engine = self.engine();
        if let Some(density) = engine.density() {
            density.check(self.name(), sandbox.limits())?;
        }
        let linked = self.linked()?;
        linked.check_interfaces(
            engine.registered(),
            self.name(),
            sandbox,
            state_type,
            state_name,
        )?;
        let pre = linked.instance_pre(self.name())?;
        // In a block: the builder is not kept in this future across the await. A
        // sandbox granting nothing of WASI gets its context if and when the guest
        // reaches WASI.
        let mut store = {
            let mut wasi = (!grants_nothing(sandbox)).then(WasiCtxBuilder::new);
            let granted = match wasi.as_mut() {
                Some(b) => grant(b, sandbox, self.shared_name())?,
                None => Granted::default(),
            };
            Store::new(
                engine.wasmtime_engine(),
                HostState::new(
                    sandbox,
                    self.shared_name(),
                    wasi.as_mut(),
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
        Deadline::interrupt(&mut store, engine);
        Deadline::begin(&mut store);
        let mut backstop = Backstop::new(sandbox.limits(), engine);
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
        Err(failure.classify(
            &mut store,
            self.name(),
            |i| self.host_function(i),
            report.fuel_consumed,
            Phase::Instantiate,
        ))
    }
}
