//! airssys-wasm against raw Wasmtime doing the same work, group by group, so that
//! every figure is also a ratio. Run with `cargo bench -p airssys-wasm-benches` or
//! `cargo xtask bench` (which also refreshes BENCHMARKS.md).
//!
//! "The same work": the raw variant uses an engine with the same configuration (fuel
//! metering and epoch interruption on) and, like any embedder that wants the same
//! guarantees, sets fuel and an epoch deadline before each call. What it does not do
//! is what airssys-wasm adds: the limiter, the WASI context, the report, poisoning.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use wasmtime::component::{Component, Linker, TypedFunc};
use wasmtime::{Config, Engine, OptLevel, Store};

use airssys_wasm_core::ResourceLimits;
use airssys_wasm_engine::{Sandbox, WasmEngine};
use airssys_wasm_loader::ComponentLoader;
use airssys_wasm_testkit as fx;

const FUEL: u64 = 10_000_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn sandbox() -> Sandbox {
    Sandbox::new(ResourceLimits::new(4 << 20, FUEL, Duration::from_secs(5)).unwrap())
}

/// A raw Wasmtime engine configured like `WasmEngine::new()`.
fn raw_engine() -> Engine {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .cranelift_opt_level(OptLevel::Speed)
        .consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(1 << 20)
        .async_stack_size(2 << 20);
    Engine::new(&config).unwrap()
}

fn raw_store(engine: &Engine) -> Store<()> {
    let mut store = Store::new(engine, ());
    store.set_fuel(FUEL).unwrap();
    store.set_epoch_deadline(1_000);
    store
}

fn cold_start_from_bytes(c: &mut Criterion) {
    let rt = runtime();
    let engine = WasmEngine::new().unwrap();
    let loader = ComponentLoader::new(&engine);
    let raw = raw_engine();
    let mut g = c.benchmark_group("cold_start_from_bytes/hello");
    g.bench_function("airssys", |b| {
        b.to_async(&rt).iter(|| async {
            let component = loader.load_from_bytes(fx::HELLO).await.unwrap();
            let mut i = component.instantiate(&sandbox()).await.unwrap();
            let ((v,), _) = i.call_typed::<(), (i32,)>("hello", ()).await.unwrap();
            assert_eq!(v, 42);
        });
    });
    g.bench_function("raw_wasmtime", |b| {
        b.to_async(&rt).iter(|| async {
            let component = Component::new(&raw, fx::HELLO).unwrap();
            let linker = Linker::<()>::new(&raw);
            let mut store = raw_store(&raw);
            let instance = linker
                .instantiate_async(&mut store, &component)
                .await
                .unwrap();
            let f: TypedFunc<(), (i32,)> = instance.get_typed_func(&mut store, "hello").unwrap();
            let (v,) = f.call_async(&mut store, ()).await.unwrap();
            assert_eq!(v, 42);
        });
    });
    g.finish();
}

fn warm_instantiate_and_call(c: &mut Criterion) {
    let rt = runtime();
    let engine = WasmEngine::new().unwrap();
    let component = rt
        .block_on(ComponentLoader::new(&engine).load_from_bytes(fx::HELLO))
        .unwrap();
    let raw = raw_engine();
    let raw_component = Component::new(&raw, fx::HELLO).unwrap();
    let raw_pre = Linker::<()>::new(&raw)
        .instantiate_pre(&raw_component)
        .unwrap();
    let mut g = c.benchmark_group("instantiate_and_call/hello");
    g.bench_function("airssys", |b| {
        b.to_async(&rt).iter(|| async {
            let mut i = component.instantiate(&sandbox()).await.unwrap();
            let ((v,), _) = i.call_typed::<(), (i32,)>("hello", ()).await.unwrap();
            assert_eq!(v, 42);
        });
    });
    g.bench_function("raw_wasmtime", |b| {
        b.to_async(&rt).iter(|| async {
            let mut store = raw_store(&raw);
            let instance = raw_pre.instantiate_async(&mut store).await.unwrap();
            let f: TypedFunc<(), (i32,)> = instance.get_typed_func(&mut store, "hello").unwrap();
            let (v,) = f.call_async(&mut store, ()).await.unwrap();
            assert_eq!(v, 42);
        });
    });
    g.finish();
}

fn call_overhead(c: &mut Criterion) {
    let rt = runtime();
    let engine = WasmEngine::new().unwrap();
    let loader = ComponentLoader::new(&engine);
    let hello = rt.block_on(loader.load_from_bytes(fx::HELLO)).unwrap();
    let greet = rt.block_on(loader.load_from_bytes(fx::GREET)).unwrap();
    let mut hello_i = rt.block_on(hello.instantiate(&sandbox())).unwrap();
    let mut greet_i = rt.block_on(greet.instantiate(&sandbox())).unwrap();

    let raw = raw_engine();
    let linker = Linker::<()>::new(&raw);
    let raw_hello = Component::new(&raw, fx::HELLO).unwrap();
    let raw_greet = Component::new(&raw, fx::GREET).unwrap();
    let mut hs = raw_store(&raw);
    let hi = rt
        .block_on(linker.instantiate_async(&mut hs, &raw_hello))
        .unwrap();
    let raw_double: TypedFunc<(i32,), (i32,)> = hi.get_typed_func(&mut hs, "double").unwrap();
    let raw_double_dyn = hi.get_func(&mut hs, "double").unwrap();
    let mut gs = raw_store(&raw);
    let gi = rt
        .block_on(linker.instantiate_async(&mut gs, &raw_greet))
        .unwrap();
    let raw_greet_f: TypedFunc<(&str,), (String,)> = gi.get_typed_func(&mut gs, "greet").unwrap();

    let mut g = c.benchmark_group("call/typed_double");
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
            hs.set_epoch_deadline(1_000);
            let (v,) = rt.block_on(raw_double.call_async(&mut hs, (21,))).unwrap();
            assert_eq!(v, 42);
        });
    });
    g.finish();

    let mut g = c.benchmark_group("call/dynamic_double");
    g.bench_function("airssys", |b| {
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
            hs.set_epoch_deadline(1_000);
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
                .block_on(greet_i.call_typed::<(&str,), (String,)>("greet", ("bench",)))
                .unwrap();
            assert_eq!(s.len(), 13);
        });
    });
    g.bench_function("raw_wasmtime", |b| {
        b.iter(|| {
            gs.set_fuel(FUEL).unwrap();
            gs.set_epoch_deadline(1_000);
            let (s,) = rt
                .block_on(raw_greet_f.call_async(&mut gs, ("bench",)))
                .unwrap();
            assert_eq!(s.len(), 13);
        });
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = cold_start_from_bytes, warm_instantiate_and_call, call_overhead
}
criterion_main!(benches);
