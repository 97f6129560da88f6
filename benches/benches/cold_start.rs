//! airssys-wasm against raw Wasmtime doing the same work, group by group, so that
//! every figure is also a ratio. Run with `cargo bench -p airssys-wasm-benches` or
//! `cargo xtask bench` (which also refreshes BENCHMARKS.md).
//!
//! "The same work": the raw variant uses an engine with the same configuration (fuel
//! metering on, epoch interruption off) and, like any embedder that wants the same
//! guarantees, sets fuel before each call and a fuel yield interval on each store; for guests that import
//! WASI it links `wasmtime-wasi` and builds a `WasiCtx` per instance, as airssys does.
//! What it does not do is what airssys-wasm adds: the limiter, capabilities, the
//! report, poisoning. Groups with other variants say what they compare in
//! BENCHMARKS.md.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use wasmtime::component::{Component, InstancePre, Linker, TypedFunc};
use wasmtime::{Config, Engine, OptLevel, PoolingAllocationConfig, Store};
use wasmtime_wasi::p2::bindings::CommandPre;

use airssys_wasm_benches::{RawWasi, raw_config, runtime};
use airssys_wasm_core::ResourceLimits;
use airssys_wasm_engine::{CompiledComponent, Density, Pooling, Sandbox, WasmEngine};
use airssys_wasm_loader::{
    CacheConfig, CacheOutcome, ComponentLoader, LoadOptions, Loaded, Source,
};
use airssys_wasm_testkit::{self as fx, guests};

const FUEL: u64 = 10_000_000;
const CPU_FUEL: u64 = 100_000_000_000;
const FIB_N: u32 = 1_000_000;
const CONCURRENT: usize = 64;

fn limits() -> ResourceLimits {
    ResourceLimits::new(16 << 20, FUEL, Duration::from_secs(5)).unwrap()
}

fn sandbox() -> Sandbox {
    Sandbox::new(limits())
}

/// The sandbox the per-iteration instantiations share: like the raw variants' engine
/// configuration, it is set up once, not per instance (an embedder keeps one per
/// kind of guest).
static SANDBOX: std::sync::LazyLock<Sandbox> = std::sync::LazyLock::new(sandbox);

/// A raw Wasmtime engine configured like `WasmEngine::new()`.
fn raw_engine() -> Engine {
    Engine::new(&raw_config()).unwrap()
}

fn raw_store(engine: &Engine) -> Store<RawWasi> {
    let mut store = Store::new(engine, RawWasi::new(()));
    store.set_fuel(FUEL).unwrap();
    // As the engine does: a running guest yields for its timeout every interval.
    store
        .fuel_async_yield_interval(Some(airssys_wasm_engine::DEFAULT_FUEL_YIELD_INTERVAL))
        .unwrap();
    store
}

fn raw_linker(engine: &Engine) -> Linker<RawWasi> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    linker
}

async fn airssys_first_call(c: &CompiledComponent, export: &str) -> i32 {
    let mut i = c.instantiate(&SANDBOX).await.unwrap();
    let ((v,), _) = i
        .call_typed::<(i32, i32), (i32,)>(export, (40, 2))
        .await
        .unwrap();
    v
}

async fn airssys_hello(c: &CompiledComponent) -> i32 {
    let mut i = c.instantiate(&SANDBOX).await.unwrap();
    let ((v,), _) = i.call_typed::<(), (i32,)>("hello", ()).await.unwrap();
    v
}

async fn raw_hello(pre: &InstancePre<RawWasi>, engine: &Engine) -> i32 {
    let mut store = raw_store(engine);
    let instance = pre.instantiate_async(&mut store).await.unwrap();
    let f: TypedFunc<(), (i32,)> = instance.get_typed_func(&mut store, "hello").unwrap();
    f.call_async(&mut store, ()).await.unwrap().0
}

async fn raw_add(pre: &InstancePre<RawWasi>, engine: &Engine) -> i32 {
    let mut store = raw_store(engine);
    let instance = pre.instantiate_async(&mut store).await.unwrap();
    let f: TypedFunc<(i32, i32), (i32,)> = instance.get_typed_func(&mut store, "add").unwrap();
    f.call_async(&mut store, (40, 2)).await.unwrap().0
}

fn cold_start_from_bytes(c: &mut Criterion) {
    let rt = runtime();
    let engine = WasmEngine::new().unwrap();
    let loader = ComponentLoader::new(&engine);
    let raw = raw_engine();
    let linker = raw_linker(&raw);

    let mut g = c.benchmark_group("cold_start_from_bytes/hello");
    g.bench_function("airssys", |b| {
        b.to_async(&rt).iter(|| async {
            let component = loader.load_from_bytes(fx::HELLO).await.unwrap();
            assert_eq!(airssys_hello(&component).await, 42);
        });
    });
    g.bench_function("raw_wasmtime", |b| {
        b.to_async(&rt).iter(|| async {
            let component = Component::new(&raw, fx::HELLO).unwrap();
            let pre = linker.instantiate_pre(&component).unwrap();
            assert_eq!(raw_hello(&pre, &raw).await, 42);
        });
    });
    g.finish();

    let mut g = c.benchmark_group("cold_start_from_bytes/rust_calc");
    g.sample_size(20);
    g.bench_function("airssys", |b| {
        b.to_async(&rt).iter(|| async {
            let component = loader.load_from_bytes(guests::CALC).await.unwrap();
            assert_eq!(airssys_first_call(&component, "add").await, 42);
        });
    });
    g.bench_function("raw_wasmtime", |b| {
        b.to_async(&rt).iter(|| async {
            let component = Component::new(&raw, guests::CALC).unwrap();
            let pre = linker.instantiate_pre(&component).unwrap();
            assert_eq!(raw_add(&pre, &raw).await, 42);
        });
    });
    g.finish();
}

/// A cache directory as a run some time ago would have left it: `bytes` in a file an
/// hour old, compiled into the cache; the entry put a minute back (past the racy window,
/// short of the hourly LRU refresh) and the file loaded once more, so that the entry was
/// verified and its stamp recorded. Every later load is a hit that trusts the stamp:
/// the steady state of a component run again and again.
struct WarmCache {
    loader: ComponentLoader,
    wasm: PathBuf,
    dir: tempfile::TempDir,
}

fn warm_cache(rt: &tokio::runtime::Runtime, engine: &WasmEngine, bytes: &[u8]) -> WarmCache {
    let dir = tempfile::tempdir().unwrap();
    let loader =
        ComponentLoader::new(engine).with_cache(CacheConfig::new(dir.path().join("cache")));
    let wasm = dir.path().join("component.wasm");
    std::fs::write(&wasm, bytes).unwrap();
    set_age(&wasm, Duration::from_secs(3600));
    let (_, o) = rt
        .block_on(loader.load(Source::File(&wasm), &LoadOptions::new()))
        .map(Loaded::into_parts)
        .unwrap();
    assert_eq!(o, CacheOutcome::Miss);
    for entry in std::fs::read_dir(dir.path().join("cache")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "cwasm") {
            set_age(&path, Duration::from_secs(60));
        }
    }
    let (_, o) = rt
        .block_on(loader.load(Source::File(&wasm), &LoadOptions::new()))
        .map(Loaded::into_parts)
        .unwrap();
    assert_eq!(o, CacheOutcome::Hit);
    WarmCache { loader, wasm, dir }
}

impl WarmCache {
    /// The component, from a cache hit.
    async fn load(&self) -> CompiledComponent {
        let (component, o) = self
            .loader
            .load(Source::File(&self.wasm), &LoadOptions::new())
            .await
            .map(Loaded::into_parts)
            .unwrap();
        debug_assert_eq!(o, CacheOutcome::Hit);
        component
    }
}

/// What [`precompiled`] wrote, as raw Wasmtime loads it.
fn deserialized(raw: &Engine, cwasm: &Path) -> Component {
    // SAFETY: written by `precompiled` with this engine.
    unsafe { Component::deserialize_file(raw, cwasm) }.unwrap()
}

/// Sets a file's modification time `age` back.
fn set_age(path: &Path, age: Duration) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::now() - age)
        .unwrap();
}

/// Raw Wasmtime's side of a cached cold start: `bytes` precompiled into a file that
/// `Component::deserialize_file` trusts blindly.
fn precompiled(raw: &Engine, warm: &WarmCache, bytes: &[u8]) -> PathBuf {
    let cwasm = warm.dir.path().join("component.cwasm");
    std::fs::write(&cwasm, raw.precompile_component(bytes).unwrap()).unwrap();
    cwasm
}

fn cold_start_cached(c: &mut Criterion) {
    let rt = runtime();
    let engine = WasmEngine::new().unwrap();
    let raw = raw_engine();
    let linker = raw_linker(&raw);

    // A library component: file -> instantiate -> `add(40, 2)`.
    let warm = warm_cache(&rt, &engine, guests::CALC);
    let cwasm = precompiled(&raw, &warm, guests::CALC);
    let mut g = c.benchmark_group("cold_start_cached/rust_calc");
    // Longer than the other groups: the two variants run one after the other, and on a
    // shared two-core VM drift over a few seconds moved this ~100 µs group's ratio by
    // up to 0.03 between runs; a longer window averages more of it out.
    g.measurement_time(Duration::from_secs(8));
    g.bench_function("airssys", |b| {
        b.to_async(&rt).iter(|| async {
            let component = warm.load().await;
            assert_eq!(airssys_first_call(&component, "add").await, 42);
        });
    });
    g.bench_function("raw_wasmtime", |b| {
        b.to_async(&rt).iter(|| async {
            let component = deserialized(&raw, &cwasm);
            let pre = linker.instantiate_pre(&component).unwrap();
            assert_eq!(raw_add(&pre, &raw).await, 42);
        });
    });
    g.finish();

    // A command of ~100 KB (the size the cold-start target names): file ->
    // instantiate -> `wasi:cli/run` (arguments read, lines printed to a null stdout).
    let warm = warm_cache(&rt, &engine, guests::CLI_HELLO);
    let cwasm = precompiled(&raw, &warm, guests::CLI_HELLO);
    let mut g = c.benchmark_group("cold_start_cached/rust_cli_hello");
    g.measurement_time(Duration::from_secs(8));
    g.bench_function("airssys", |b| {
        b.to_async(&rt).iter(|| async {
            let component = warm.load().await;
            let mut i = component.instantiate(&SANDBOX).await.unwrap();
            assert_eq!(i.run_command().await.unwrap().0, 0);
        });
    });
    g.bench_function("raw_wasmtime", |b| {
        b.to_async(&rt).iter(|| async {
            let component = deserialized(&raw, &cwasm);
            let pre = CommandPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
            let mut store = raw_store(&raw);
            let command = pre.instantiate_async(&mut store).await.unwrap();
            let run = command.wasi_cli_run().call_run(&mut store).await.unwrap();
            assert_eq!(run, Ok(()));
        });
    });
    g.finish();
}

/// What the metadata fast path saves on a large component: a cache hit found by the
/// file's metadata against one found by reading and hashing the file.
fn cache_hit_paths(c: &mut Criterion) {
    let rt = runtime();
    let engine = WasmEngine::new().unwrap();
    // 8 MiB of data in a data segment: a large file that compiles quickly.
    let big = format!(
        r#"(component (core module $m (memory 129) (data (i32.const 0) "{}")
              (func (export "hello") (result i32) i32.const 42))
            (core instance $i (instantiate $m))
            (func (export "hello") (result s32) (canon lift (core func $i "hello"))))"#,
        "a".repeat(8 << 20)
    );
    let warm = warm_cache(&rt, &engine, &wat::parse_str(&big).unwrap());

    let mut g = c.benchmark_group("cache_hit/8MiB_component");
    g.bench_function("metadata_fast_path", |b| {
        b.to_async(&rt).iter(|| async {
            let (_, o) = warm
                .loader
                .load(Source::File(&warm.wasm), &LoadOptions::new())
                .await
                .map(Loaded::into_parts)
                .unwrap();
            assert_eq!(o, CacheOutcome::Hit);
        });
    });
    g.bench_function("read_and_hash", |b| {
        b.to_async(&rt).iter(|| async {
            let bytes = tokio::fs::read(&warm.wasm).await.unwrap();
            let (_, o) = warm
                .loader
                .load(Source::Bytes(&bytes), &LoadOptions::named("big"))
                .await
                .map(Loaded::into_parts)
                .unwrap();
            assert_eq!(o, CacheOutcome::Hit);
        });
    });
    g.finish();
}

fn instantiate_and_call(c: &mut Criterion) {
    let rt = runtime();
    // The default layout, the pooling allocator, and the dense layout (against raw
    // Wasmtime reserving as little and compiling the same bounds checks, each memory
    // its own mapping).
    for suffix in ["", "_pooled", "_dense"] {
        let (pooled, dense) = (suffix == "_pooled", suffix == "_dense");
        let engine = if pooled {
            WasmEngine::builder()
                .pooling(Pooling::for_limits(&limits(), 256))
                .build()
                .unwrap()
        } else if dense {
            WasmEngine::builder()
                .density(Density::for_limits(&limits()))
                .build()
                .unwrap()
        } else {
            WasmEngine::new().unwrap()
        };
        let loader = ComponentLoader::new(&engine);
        let hello = rt.block_on(loader.load_from_bytes(fx::HELLO)).unwrap();
        let calc = rt.block_on(loader.load_from_bytes(guests::CALC)).unwrap();

        let mut config = raw_config();
        if pooled {
            let mut p = PoolingAllocationConfig::default();
            p.total_component_instances(256)
                .total_core_instances(256 * 20)
                .total_memories(256 * 4)
                .total_tables(256 * 10)
                .total_stacks(256)
                .max_memory_size(16 << 20)
                // As `Pooling` does.
                .decommit_batch_size(16);
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(p));
        }
        if dense {
            config
                .memory_reservation(16 << 20)
                .memory_guard_size(0)
                .memory_reservation_for_growth(0)
                .guard_before_linear_memory(false)
                .memory_init_cow(false);
        }
        let raw = Engine::new(&config).unwrap();
        let linker = raw_linker(&raw);
        let raw_hello_pre = linker
            .instantiate_pre(&Component::new(&raw, fx::HELLO).unwrap())
            .unwrap();
        let raw_calc_pre = linker
            .instantiate_pre(&Component::new(&raw, guests::CALC).unwrap())
            .unwrap();

        let mut g = c.benchmark_group(format!("instantiate_and_call{suffix}/hello"));
        g.bench_function("airssys", |b| {
            b.to_async(&rt)
                .iter(|| async { assert_eq!(airssys_hello(&hello).await, 42) });
        });
        g.bench_function("raw_wasmtime", |b| {
            b.to_async(&rt)
                .iter(|| async { assert_eq!(raw_hello(&raw_hello_pre, &raw).await, 42) });
        });
        if suffix.is_empty() {
            // What a WASI 0.2 component pays on engines with component-model async on
            // (`WasmEngineBuilder::component_model_async(true)`; Wasmtime's default).
            let (hello_async, raw_async, raw_async_pre) = async_engines(&rt);
            g.bench_function("airssys_cm_async", |b| {
                b.to_async(&rt)
                    .iter(|| async { assert_eq!(airssys_hello(&hello_async).await, 42) });
            });
            g.bench_function("raw_wasmtime_cm_async", |b| {
                b.to_async(&rt)
                    .iter(|| async { assert_eq!(raw_hello(&raw_async_pre, &raw_async).await, 42) });
            });
        }
        g.finish();

        let mut g = c.benchmark_group(format!("instantiate_and_call{suffix}/rust_calc"));
        g.bench_function("airssys", |b| {
            b.to_async(&rt)
                .iter(|| async { assert_eq!(airssys_first_call(&calc, "add").await, 42) });
        });
        g.bench_function("raw_wasmtime", |b| {
            b.to_async(&rt)
                .iter(|| async { assert_eq!(raw_add(&raw_calc_pre, &raw).await, 42) });
        });
        g.finish();
    }
}

/// The hello fixture on an airssys engine and on a raw Wasmtime engine that both have
/// component-model async (and so Wasmtime's concurrency support) on.
fn async_engines(
    rt: &tokio::runtime::Runtime,
) -> (CompiledComponent, Engine, InstancePre<RawWasi>) {
    let engine = WasmEngine::builder()
        .component_model_async(true)
        .build()
        .unwrap();
    let hello = rt
        .block_on(ComponentLoader::new(&engine).load_from_bytes(fx::HELLO))
        .unwrap();
    let mut config = raw_config();
    config
        .concurrency_support(true)
        .wasm_component_model_async(true);
    let raw = Engine::new(&config).unwrap();
    let pre = raw_linker(&raw)
        .instantiate_pre(&Component::new(&raw, fx::HELLO).unwrap())
        .unwrap();
    (hello, raw, pre)
}

fn call_overhead(c: &mut Criterion) {
    let rt = runtime();
    let engine = WasmEngine::new().unwrap();
    let loader = ComponentLoader::new(&engine);
    let hello = rt.block_on(loader.load_from_bytes(fx::HELLO)).unwrap();
    let greet = rt.block_on(loader.load_from_bytes(fx::GREET)).unwrap();
    let mut hello_i = rt.block_on(hello.instantiate(&sandbox())).unwrap();
    let mut greet_i = rt.block_on(greet.instantiate(&sandbox())).unwrap();
    let double = hello_i.typed_export::<(i32,), (i32,)>("double").unwrap();
    let mut timed_i = rt
        .block_on(hello.instantiate(&sandbox().measure_wall_time(true)))
        .unwrap();
    let timed_double = timed_i.typed_export::<(i32,), (i32,)>("double").unwrap();
    let greet_h = greet_i.typed_export::<(&str,), (String,)>("greet").unwrap();

    let raw = raw_engine();
    let linker = raw_linker(&raw);
    let raw_hello = Component::new(&raw, fx::HELLO).unwrap();
    let raw_greet = Component::new(&raw, fx::GREET).unwrap();
    let mut hs = raw_store(&raw);
    let hi = rt
        .block_on(linker.instantiate_async(&mut hs, &raw_hello))
        .unwrap();
    let raw_double: TypedFunc<(i32,), (i32,)> = hi.get_typed_func(&mut hs, "double").unwrap();
    let mut gs = raw_store(&raw);
    let gi = rt
        .block_on(linker.instantiate_async(&mut gs, &raw_greet))
        .unwrap();
    let raw_greet_f: TypedFunc<(&str,), (String,)> = gi.get_typed_func(&mut gs, "greet").unwrap();

    let mut g = c.benchmark_group("call/typed_double");
    g.bench_function("airssys", |b| {
        b.iter(|| {
            let ((v,), _) = rt.block_on(hello_i.call_export(&double, (21,))).unwrap();
            assert_eq!(v, 42);
        });
    });
    g.bench_function("raw_wasmtime", |b| {
        b.iter(|| {
            hs.set_fuel(FUEL).unwrap();
            let (v,) = rt.block_on(raw_double.call_async(&mut hs, (21,))).unwrap();
            assert_eq!(v, 42);
        });
    });
    // Both on engines with component-model async on (see `async_engines`).
    let (hello_async, raw_async, raw_async_pre) = async_engines(&rt);
    let mut async_i = rt.block_on(hello_async.instantiate(&sandbox())).unwrap();
    let async_double = async_i.typed_export::<(i32,), (i32,)>("double").unwrap();
    g.bench_function("airssys_cm_async", |b| {
        b.iter(|| {
            let ((v,), _) = rt
                .block_on(async_i.call_export(&async_double, (21,)))
                .unwrap();
            assert_eq!(v, 42);
        });
    });
    let mut async_s = raw_store(&raw_async);
    let async_raw_i = rt
        .block_on(raw_async_pre.instantiate_async(&mut async_s))
        .unwrap();
    let async_raw_double: TypedFunc<(i32,), (i32,)> =
        async_raw_i.get_typed_func(&mut async_s, "double").unwrap();
    g.bench_function("raw_wasmtime_cm_async", |b| {
        b.iter(|| {
            async_s.set_fuel(FUEL).unwrap();
            let (v,) = rt
                .block_on(async_raw_double.call_async(&mut async_s, (21,)))
                .unwrap();
            assert_eq!(v, 42);
        });
    });
    // The opt-in wall time of the report (`Sandbox::measure_wall_time`).
    g.bench_function("airssys_wall_time", |b| {
        b.iter(|| {
            let ((v,), r) = rt
                .block_on(timed_i.call_export(&timed_double, (21,)))
                .unwrap();
            assert_eq!(v, 42);
            assert!(r.wall_time.is_some());
        });
    });
    g.finish();

    let mut g = c.benchmark_group("call/typed_double_by_name");
    g.bench_function("airssys", |b| {
        b.iter(|| {
            let ((v,), _) = rt
                .block_on(hello_i.call_typed::<(i32,), (i32,)>("double", (21,)))
                .unwrap();
            assert_eq!(v, 42);
        });
    });
    g.bench_function("raw_wasmtime", |b| {
        b.iter(|| {
            hs.set_fuel(FUEL).unwrap();
            let f: TypedFunc<(i32,), (i32,)> = hi.get_typed_func(&mut hs, "double").unwrap();
            let (v,) = rt.block_on(f.call_async(&mut hs, (21,))).unwrap();
            assert_eq!(v, 42);
        });
    });
    g.finish();

    let mut g = c.benchmark_group("call/dynamic_double");
    // Results into the caller's slice, as the raw variant does.
    g.bench_function("airssys", |b| {
        b.iter(|| {
            let mut results = [wasmtime::component::Val::Bool(false)];
            rt.block_on(hello_i.call_into(
                "double",
                &[wasmtime::component::Val::S32(21)],
                &mut results,
            ))
            .unwrap();
            assert_eq!(results[0], wasmtime::component::Val::S32(42));
        });
    });
    // `call`, which returns the results in a `Vec` (one allocation).
    g.bench_function("airssys_vec", |b| {
        b.iter(|| {
            let out = rt
                .block_on(hello_i.call("double", &[wasmtime::component::Val::S32(21)]))
                .unwrap();
            assert_eq!(out.results.len(), 1);
        });
    });
    g.bench_function("raw_wasmtime", |b| {
        b.iter(|| {
            hs.set_fuel(FUEL).unwrap();
            // By name, as `call` takes a name.
            let raw_double_dyn = hi.get_func(&mut hs, "double").unwrap();
            let mut results = [wasmtime::component::Val::Bool(false)];
            rt.block_on(raw_double_dyn.call_async(
                &mut hs,
                &[wasmtime::component::Val::S32(21)],
                &mut results,
            ))
            .unwrap();
        });
    });
    g.finish();

    let mut g = c.benchmark_group("call/string_round_trip");
    g.bench_function("airssys", |b| {
        b.iter(|| {
            let ((s,), _) = rt
                .block_on(greet_i.call_export(&greet_h, ("bench",)))
                .unwrap();
            assert_eq!(s.len(), 13);
        });
    });
    g.bench_function("raw_wasmtime", |b| {
        b.iter(|| {
            gs.set_fuel(FUEL).unwrap();
            let (s,) = rt
                .block_on(raw_greet_f.call_async(&mut gs, ("bench",)))
                .unwrap();
            assert_eq!(s.len(), 13);
        });
    });
    g.finish();
}

/// `CONCURRENT` tasks, each instantiating the Rust guest and calling it once, on a
/// two-worker runtime: time for the whole batch.
fn concurrent_instances(c: &mut Criterion) {
    let rt = runtime();
    let engine = WasmEngine::new().unwrap();
    let calc = rt
        .block_on(ComponentLoader::new(&engine).load_from_bytes(guests::CALC))
        .unwrap();
    let raw = raw_engine();
    let pre = raw_linker(&raw)
        .instantiate_pre(&Component::new(&raw, guests::CALC).unwrap())
        .unwrap();

    let mut g = c.benchmark_group(format!("concurrent/{CONCURRENT}_instances_rust_calc"));
    g.bench_function("airssys", |b| {
        b.to_async(&rt).iter(|| async {
            let tasks: Vec<_> = (0..CONCURRENT)
                .map(|_| {
                    let calc = calc.clone();
                    tokio::spawn(async move { airssys_first_call(&calc, "add").await })
                })
                .collect();
            for t in tasks {
                assert_eq!(t.await.unwrap(), 42);
            }
        });
    });
    g.bench_function("raw_wasmtime", |b| {
        b.to_async(&rt).iter(|| async {
            let tasks: Vec<_> = (0..CONCURRENT)
                .map(|_| {
                    let (pre, raw) = (pre.clone(), raw.clone());
                    tokio::spawn(async move { raw_add(&pre, &raw).await })
                })
                .collect();
            for t in tasks {
                assert_eq!(t.await.unwrap(), 42);
            }
        });
    });
    g.finish();
}

fn native_fib(n: u32) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        (a, b) = (b, black_box(a.wrapping_add(b)));
    }
    a
}

/// CPU-bound guest work (`fib(1_000_000)` in the Rust guest): airssys, and raw Wasmtime
/// with the same configuration (fuel, yields every interval); raw Wasmtime unmetered
/// (`raw_unmetered`: the price of the CPU limits), and native Rust.
fn cpu_bound(c: &mut Criterion) {
    let rt = runtime();
    let engine = WasmEngine::new().unwrap();
    let calc = rt
        .block_on(ComponentLoader::new(&engine).load_from_bytes(guests::CALC))
        .unwrap();
    let cpu =
        Sandbox::new(ResourceLimits::new(16 << 20, CPU_FUEL, Duration::from_secs(60)).unwrap());
    let mut i = rt.block_on(calc.instantiate(&cpu)).unwrap();
    let fib = i.typed_export::<(u32,), (u64,)>("fib").unwrap();
    let expected = native_fib(FIB_N);

    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .cranelift_opt_level(OptLevel::Speed)
        .concurrency_support(false);
    let raw = Engine::new(&config).unwrap();
    let mut linker = Linker::new(&raw);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    let mut store = Store::new(&raw, RawWasi::new(()));
    let instance = rt
        .block_on(
            linker.instantiate_async(&mut store, &Component::new(&raw, guests::CALC).unwrap()),
        )
        .unwrap();
    let raw_fib: TypedFunc<(u32,), (u64,)> = instance.get_typed_func(&mut store, "fib").unwrap();

    // The same work on raw Wasmtime with our configuration (fuel, yields).
    let same = raw_engine();
    let mut same_store = raw_store(&same);
    let same_instance = rt
        .block_on(raw_linker(&same).instantiate_async(
            &mut same_store,
            &Component::new(&same, guests::CALC).unwrap(),
        ))
        .unwrap();
    let same_fib: TypedFunc<(u32,), (u64,)> = same_instance
        .get_typed_func(&mut same_store, "fib")
        .unwrap();

    let mut g = c.benchmark_group("cpu/fib_1e6");
    g.sample_size(20);
    g.bench_function("airssys", |b| {
        b.iter(|| {
            let ((v,), _) = rt.block_on(i.call_export(&fib, (FIB_N,))).unwrap();
            assert_eq!(v, expected);
        });
    });
    g.bench_function("raw_unmetered", |b| {
        b.iter(|| {
            let (v,) = rt
                .block_on(raw_fib.call_async(&mut store, (FIB_N,)))
                .unwrap();
            assert_eq!(v, expected);
        });
    });
    g.bench_function("raw_wasmtime", |b| {
        b.iter(|| {
            same_store.set_fuel(CPU_FUEL).unwrap();
            let (v,) = rt
                .block_on(same_fib.call_async(&mut same_store, (FIB_N,)))
                .unwrap();
            assert_eq!(v, expected);
        });
    });
    g.bench_function("native", |b| {
        b.iter(|| assert_eq!(native_fib(black_box(FIB_N)), expected));
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = cold_start_from_bytes, cold_start_cached, cache_hit_paths, instantiate_and_call,
        call_overhead, concurrent_instances, cpu_bound
}
criterion_main!(benches);
