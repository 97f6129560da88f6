//! Linking: how a [`CompiledComponent`] becomes a [`ComponentInstance`] — its imports
//! type-checked once against the engine's linker (WASI today; what the host provides
//! is listed here), a store set up under the sandbox's limits and grants, and the
//! instantiation bounded like a call.

use std::time::Instant;

use wasmtime::component::InstancePre;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;

use airssys_wasm_core::{WasmError, WasmResult};

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
             wasi:random and wasi:sockets (`@0.2.x`, `@0.3.x`; wasi:io in 0.2)"
        } else {
            "WASI 0.2 interfaces of wasi:cli, wasi:clocks, wasi:filesystem, wasi:io, \
             wasi:random and wasi:sockets (`@0.2.x`; WASI 0.3 needs component-model async: \
             `-W component-model-async`)"
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
        let engine = self.engine();
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
                self.name(),
                report.fuel_consumed,
                Phase::Instantiate,
            )),
            None => Err(Failure::AsyncTimeout.classify(
                &mut store,
                self.name(),
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
