//! The CPU suite's component (the testkit's `cpu-suite`; for the `js-*` workloads, the
//! JavaScript suite `cpu-js`) run once under one mode, for
//! `cargo xtask cpu`: raw Wasmtime unmetered, with epoch interruption only, with fuel
//! only, with both (each with its own engine, as the modes change the machine code), and
//! airssys-wasm as `WasmEngine::new()` runs it (fuel, timeouts through fuel yields) and
//! with `Interruption::Epochs` (fuel and epochs), and with the dense layout
//! (`airssys-dense`: `Density`, explicit bounds checks). The guest times its
//! own workload and prints `WORKLOAD RUNS <ns per run> <checksum>`; compilation is done
//! before, outside the figure.
//!
//! `cargo run --release -p airssys-wasm-benches --example cpu_suite -- \
//!     raw|raw-bounds-checked|raw-bounds-checked-no-spectre|raw-epochs|raw-fuel|raw-fuel-epochs|airssys|airssys-epochs| \
//!     airssys-dense \
//!     WORKLOAD RUNS`
//!
//! With `CPU_SUITE_CACHE=DIR`, each mode's compiled component is kept in `DIR/MODE-HASH.cwasm`
//! and loaded from there by later runs: under callgrind (`cargo xtask cpu
//! --instructions`) compiling would otherwise take minutes per run.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr
)]

use std::time::Duration;

use airssys_wasm_core::{CapabilitySet, ResourceLimits};
use airssys_wasm_engine::{CompiledComponent, Density, Interruption, Sandbox, WasmEngine};
use airssys_wasm_testkit::guests::CPU_SUITE;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{WasiCtxBuilder, WasiCtxView, WasiView};

/// How often the epoch ticks in the raw modes that interrupt by epochs: the engine's
/// default tick.
const TICK: Duration = airssys_wasm_engine::DEFAULT_EPOCH_TICK;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, mode, workload, runs] = args.as_slice() else {
        eprintln!(
            "usage: cpu_suite raw|raw-bounds-checked|raw-bounds-checked-no-spectre|raw-epochs|raw-fuel|raw-fuel-epochs|airssys|\
             airssys-epochs|airssys-dense WORKLOAD RUNS"
        );
        std::process::exit(2);
    };
    let guest_args = ["cpu-suite", workload.as_str(), runs.as_str()];
    // The `js-*` workloads are the JavaScript suite's (componentize-js).
    let suite: Vec<u8> = if workload.starts_with("js-") {
        std::fs::read(airssys_wasm_testkit::guests::cpu_js()).unwrap()
    } else {
        CPU_SUITE.to_vec()
    };
    let suite = suite.as_slice();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ok = rt.block_on(async {
        match mode.as_str() {
            "raw" => raw(false, false, suite, &guest_args).await,
            "raw-bounds-checked" => raw_bounds_checked(suite, &guest_args, true).await,
            "raw-bounds-checked-no-spectre" => raw_bounds_checked(suite, &guest_args, false).await,
            "raw-epochs" => raw(false, true, suite, &guest_args).await,
            "raw-fuel" => raw(true, false, suite, &guest_args).await,
            "raw-fuel-epochs" => raw(true, true, suite, &guest_args).await,
            "airssys" => airssys(Interruption::FuelYields, false, suite, &guest_args).await,
            "airssys-epochs" => airssys(Interruption::Epochs, false, suite, &guest_args).await,
            "airssys-dense" => airssys(Interruption::FuelYields, true, suite, &guest_args).await,
            other => {
                eprintln!("unknown mode `{other}`");
                false
            }
        }
    });
    std::process::exit(if ok { 0 } else { 1 });
}

struct Raw {
    ctx: wasmtime_wasi::WasiCtx,
    table: wasmtime::component::ResourceTable,
}

impl WasiView for Raw {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// Raw Wasmtime as an embedder sets it up for a command: its defaults (Cranelift at
/// `Speed`), async, with fuel and epoch interruption as asked; fuel never runs out, and
/// the epoch's callback lets the call carry on at every tick, as the engine's does.
async fn raw(fuel: bool, epochs: bool, suite: &[u8], args: &[&str]) -> bool {
    let mode = match (fuel, epochs) {
        (false, false) => "raw",
        (false, true) => "raw-epochs",
        (true, false) => "raw-fuel",
        (true, true) => "raw-fuel-epochs",
    };
    raw_with(Config::new(), mode, fuel, epochs, suite, args).await
}

/// Raw Wasmtime unmetered, with linear memory reserved as the density issue would: no
/// more than the memory limit (256 MiB here), no guard region — so every memory access
/// carries an explicit bounds check, whose price this mode shows. Without `spectre`,
/// Cranelift's Spectre mitigation of those checks (a conditional move of the address
/// to null) is off: what the mitigation costs on top of the checks.
async fn raw_bounds_checked(suite: &[u8], args: &[&str], spectre: bool) -> bool {
    let mut config = Config::new();
    config
        .memory_reservation(256 << 20)
        .memory_guard_size(0)
        .memory_reservation_for_growth(0);
    let mode = if spectre {
        "raw-bounds-checked"
    } else {
        // SAFETY: a Cranelift setting Wasmtime knows; it changes only the code emitted
        // for bounds checks (measurement only: the mitigation stays on in the engine).
        unsafe {
            config.cranelift_flag_set("enable_heap_access_spectre_mitigation", "false");
        }
        "raw-bounds-checked-no-spectre"
    };
    raw_with(config, mode, false, false, suite, args).await
}

async fn raw_with(
    mut config: Config,
    mode: &str,
    fuel: bool,
    epochs: bool,
    suite: &[u8],
    args: &[&str],
) -> bool {
    config
        .wasm_component_model(true)
        .consume_fuel(fuel)
        .epoch_interruption(epochs)
        .max_wasm_stack(1 << 20)
        .concurrency_support(false);
    let engine = Engine::new(&config).unwrap();
    let component = compiled(&engine, mode, suite);
    let mut linker = Linker::<Raw>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    let pre = linker.instantiate_pre(&component).unwrap();
    let ctx = WasiCtxBuilder::new()
        .args(args)
        .inherit_stdout()
        .inherit_stderr()
        .build();
    let mut store = Store::new(
        &engine,
        Raw {
            ctx,
            table: wasmtime::component::ResourceTable::new(),
        },
    );
    if fuel {
        store.set_fuel(u64::MAX).unwrap();
    }
    let ticker = epochs.then(|| {
        store.epoch_deadline_callback(|_| Ok(wasmtime::UpdateDeadline::Yield(1)));
        store.set_epoch_deadline(1);
        let engine = engine.clone();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(TICK);
                engine.increment_epoch();
            }
        })
    });
    drop(ticker);
    let command = CommandPre::new(pre)
        .unwrap()
        .instantiate_async(&mut store)
        .await
        .unwrap();
    command
        .wasi_cli_run()
        .call_run(&mut store)
        .await
        .unwrap()
        .is_ok()
}

/// airssys-wasm: `WasmEngine::new()` (fuel, timeouts through fuel yields), or with
/// epochs, or with the dense layout (`Density`: explicit bounds checks); the call
/// bounded by the limits (generous here: the workloads are long).
async fn airssys(interruption: Interruption, dense: bool, suite: &[u8], args: &[&str]) -> bool {
    let limits = ResourceLimits::new(256 << 20, u64::MAX / 2, Duration::from_secs(600)).unwrap();
    let mut builder = WasmEngine::builder().interruption(interruption);
    if dense {
        builder = builder.density(Density::for_limits(&limits));
    }
    let engine = builder.build().unwrap();
    let mode = match (interruption, dense) {
        (_, true) => "airssys-dense",
        (Interruption::Epochs, _) => "airssys-epochs",
        _ => "airssys",
    };
    let component = compiled(engine.wasmtime_engine(), mode, suite);
    let component = CompiledComponent::new(&engine, "cpu-suite", component).unwrap();
    let sandbox = Sandbox::new(limits)
        .with_capabilities(CapabilitySet::default())
        .with_args(args.iter().copied());
    let mut instance = component.instantiate(&sandbox).await.unwrap();
    match instance.run_command().await {
        Ok((code, _)) => code == 0,
        Err(e) => {
            eprintln!("{e}");
            false
        }
    }
}

/// `suite` compiled for `engine`: from `$CPU_SUITE_CACHE/MODE-HASH.cwasm` when that
/// variable is set (compiled and written there the first time), else compiled now.
fn compiled(engine: &Engine, mode: &str, suite: &[u8]) -> Component {
    let Some(dir) = std::env::var_os("CPU_SUITE_CACHE") else {
        return Component::new(engine, suite).unwrap();
    };
    // Named by the component's hash too: a rebuilt suite is compiled again.
    let hash = {
        use std::hash::{Hash as _, Hasher as _};
        let mut h = std::hash::DefaultHasher::new();
        suite.hash(&mut h);
        h.finish()
    };
    let path = std::path::Path::new(&dir).join(format!("{mode}-{hash:016x}.cwasm"));
    if !path.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        let bytes = engine.precompile_component(suite).unwrap();
        std::fs::write(&path, bytes).unwrap();
    }
    // SAFETY: written above by this program for an engine of the same configuration
    // (the mode names it); Wasmtime checks the configuration matches on load.
    unsafe { Component::deserialize_file(engine, &path) }.unwrap()
}
