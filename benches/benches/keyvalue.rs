//! The key-value store: `get`, `set` and `increment` through a guest (the testkit's
//! `kv-tool`, 1,000 operations per run, instantiation included) on airssys's SQLite
//! store, against the same SQLite store used directly from Rust, and against Wasmtime's
//! own in-memory store (`wasmtime-wasi-keyvalue`, raw Wasmtime, the same guest) beside
//! airssys's in-memory one. Then two threads: two components on their own buckets (no
//! shared lock: about twice one thread's rate on two cores) against two instances of one
//! component on one bucket. See BENCHMARKS.md.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_keyvalue::{WasiKeyValue, WasiKeyValueCtx, WasiKeyValueCtxBuilder};

use airssys_wasm_benches::{raw_config, runtime};
use airssys_wasm_core::{CapabilitySet, KeyValueGrant, ResourceLimits};
use airssys_wasm_engine::keyvalue::{BucketId, Counter, KeyValueBackend, MemoryBackend};
use airssys_wasm_engine::{CompiledComponent, Sandbox, WasmEngine};
use airssys_wasm_keyvalue::SqliteBackend;
use airssys_wasm_testkit::guests::KV_TOOL;

/// Operations per run.
const N: u64 = 1_000;
const OPS: [(&str, &str); 3] = [
    ("get", "bench-get"),
    ("set", "bench-set"),
    ("incr", "bench-incr"),
];

fn sandbox(command: &str, store: &Arc<dyn KeyValueBackend>) -> Sandbox {
    let mut caps = CapabilitySet::deny_all();
    caps.keyvalue = Some(KeyValueGrant::new(["default"], 1 << 30).unwrap());
    let n = N.to_string();
    Sandbox::new(ResourceLimits::new(16 << 20, u64::MAX / 4, Duration::from_secs(60)).unwrap())
        .with_capabilities(caps)
        .with_keyvalue(Arc::clone(store))
        .with_args(["kv-tool", command, "", n.as_str()])
}

async fn airssys_run(component: &CompiledComponent, sandbox: &Sandbox) {
    let mut i = component.instantiate(sandbox).await.unwrap();
    assert_eq!(i.run_command().await.unwrap().0, 0);
}

/// Raw Wasmtime's store data: WASI (the guest's arguments) and Wasmtime's key-value
/// context.
struct Raw {
    wasi: WasiCtx,
    table: ResourceTable,
    kv: WasiKeyValueCtx,
}

impl WasiView for Raw {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

async fn raw_run(engine: &Engine, pre: &CommandPre<Raw>, command: &str) {
    let n = N.to_string();
    let mut store = Store::new(
        engine,
        Raw {
            wasi: WasiCtxBuilder::new()
                .args(&["kv-tool", command, "", n.as_str()])
                .build(),
            table: ResourceTable::new(),
            kv: WasiKeyValueCtxBuilder::new().build(),
        },
    );
    // As airssys does before a call: fuel, and a yield every interval.
    store.set_fuel(u64::MAX / 4).unwrap();
    store
        .fuel_async_yield_interval(Some(airssys_wasm_engine::DEFAULT_FUEL_YIELD_INTERVAL))
        .unwrap();
    let command = pre.instantiate_async(&mut store).await.unwrap();
    let run = command.wasi_cli_run().call_run(&mut store).await.unwrap();
    assert_eq!(run, Ok(()));
}

fn per_operation(c: &mut Criterion) {
    let rt = runtime();
    let engine = WasmEngine::new().unwrap();
    let component = CompiledComponent::new(
        &engine,
        "bench",
        Component::new(engine.wasmtime_engine(), KV_TOOL).unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite: Arc<dyn KeyValueBackend> = Arc::new(SqliteBackend::open(dir.path()).unwrap());
    let memory: Arc<dyn KeyValueBackend> = Arc::new(MemoryBackend::default());
    let bucket = rt
        .block_on(sqlite.open(&BucketId::component_default("bench")))
        .unwrap();

    let raw_engine = Engine::new(&raw_config()).unwrap();
    let mut linker: Linker<Raw> = Linker::new(&raw_engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    wasmtime_wasi_keyvalue::add_to_linker(&mut linker, |s: &mut Raw| {
        WasiKeyValue::new(&s.kv, &mut s.table)
    })
    .unwrap();
    let raw_component = Component::new(&raw_engine, KV_TOOL).unwrap();
    let pre = CommandPre::new(linker.instantiate_pre(&raw_component).unwrap()).unwrap();

    for (op, command) in OPS {
        let mut g = c.benchmark_group(format!("keyvalue/{op}"));
        g.throughput(Throughput::Elements(N));
        g.sample_size(20);
        g.measurement_time(Duration::from_secs(6));
        let on_sqlite = sandbox(command, &sqlite);
        g.bench_function("airssys_sqlite", |b| {
            b.to_async(&rt).iter(|| airssys_run(&component, &on_sqlite));
        });
        g.bench_function("sqlite_direct", |b| {
            b.to_async(&rt).iter(|| async {
                let value = [7u8; 16];
                for _ in 0..N {
                    match op {
                        "get" => drop(bucket.get("bench").await.unwrap()),
                        "set" => bucket.set("bench", &value, 1 << 30).await.unwrap(),
                        _ => drop(
                            bucket
                                .increment("bench-counter", 1, Counter::U64, 1 << 30)
                                .await
                                .unwrap(),
                        ),
                    }
                }
            });
        });
        let in_memory = sandbox(command, &memory);
        g.bench_function("airssys_memory", |b| {
            b.to_async(&rt).iter(|| airssys_run(&component, &in_memory));
        });
        g.bench_function("raw_wasmtime_memory", |b| {
            b.to_async(&rt).iter(|| raw_run(&raw_engine, &pre, command));
        });
        g.finish();
    }
}

/// Increments from two threads: on two components' own buckets (separate files and
/// locks) and on one bucket (one lock), against one thread.
fn two_threads(c: &mut Criterion) {
    let rt = runtime();
    let engine = WasmEngine::new().unwrap();
    let wasm = Component::new(engine.wasmtime_engine(), KV_TOOL).unwrap();
    let alpha = CompiledComponent::new(&engine, "alpha", wasm.clone()).unwrap();
    let beta = CompiledComponent::new(&engine, "beta", wasm).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite: Arc<dyn KeyValueBackend> = Arc::new(SqliteBackend::open(dir.path()).unwrap());
    let memory: Arc<dyn KeyValueBackend> = Arc::new(MemoryBackend::default());

    // SQLite, then memory (what two threads give where the store costs next to
    // nothing: the machine's and the runtime's own scaling).
    for (store_name, store) in [("sqlite", &sqlite), ("memory", &memory)] {
        let sandbox = sandbox("bench-incr", store);
        let mut g = c.benchmark_group(format!("keyvalue_threads_{store_name}/incr"));
        g.sample_size(20);
        g.measurement_time(Duration::from_secs(6));
        g.throughput(Throughput::Elements(N));
        g.bench_function("one_thread", |b| {
            b.to_async(&rt).iter(|| airssys_run(&alpha, &sandbox));
        });
        g.throughput(Throughput::Elements(2 * N));
        for (name, second) in [
            ("two_threads_two_components", &beta),
            ("two_threads_one_bucket", &alpha),
        ] {
            g.bench_function(name, |b| {
                b.to_async(&rt).iter(|| async {
                    let (a, s1) = (alpha.clone(), sandbox.clone());
                    let (b2, s2) = (second.clone(), sandbox.clone());
                    let one = tokio::spawn(async move { airssys_run(&a, &s1).await });
                    let two = tokio::spawn(async move { airssys_run(&b2, &s2).await });
                    one.await.unwrap();
                    two.await.unwrap();
                });
            });
        }
        g.finish();
    }
}

criterion_group!(benches, per_operation, two_threads);
criterion_main!(benches);
