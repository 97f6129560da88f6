//! Criterion benchmarks of airssys-wasm; see `benches/`. What the benchmark files
//! share: the raw Wasmtime configuration they compare against, a raw embedder's store
//! data, and the runtime.

pub mod actors;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// What a raw embedder's store holds to run WASI guests, and its own `data`.
pub struct RawWasi<T = ()> {
    /// The WASI context (nothing granted).
    pub ctx: WasiCtx,
    /// The resource table.
    pub table: ResourceTable,
    /// The embedder's own per-instance data.
    pub data: T,
}

impl<T> RawWasi<T> {
    /// A fresh WASI context and table, with `data`.
    pub fn new(data: T) -> Self {
        Self {
            ctx: WasiCtxBuilder::new().build(),
            table: ResourceTable::new(),
            data,
        }
    }
}

impl<T: Send> WasiView for RawWasi<T> {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// The raw Wasmtime configuration every `raw_wasmtime` variant uses: the same as
/// `WasmEngine::new()` (fuel metering on, epoch interruption off — a store sets a fuel
/// yield interval instead —, a 1 MiB wasm stack, component-model async off).
pub fn raw_config() -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config
        .wasm_component_model(true)
        .cranelift_opt_level(wasmtime::OptLevel::Speed)
        .consume_fuel(true)
        .epoch_interruption(false)
        .max_wasm_stack(1 << 20)
        .async_stack_size(2 << 20)
        // Wasmtime 50 turns component-model async on by default; `WasmEngine::new()`
        // leaves it off (it slows every call), so the raw engine does too.
        .concurrency_support(false);
    config
}

/// The runtime every benchmark runs on: tokio, two workers (the CI machine's cores).
///
/// # Panics
///
/// When tokio cannot start.
#[allow(clippy::expect_used)]
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::env::var("WORKERS").map_or(2, |w| w.parse().unwrap_or(2)))
        .enable_all()
        .build()
        .expect("a tokio runtime")
}
