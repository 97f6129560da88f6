//! N instantiations of the testkit's `hello` fixture, each followed by one typed call
//! `double(21)` — or, with `call`, one instance and N calls — for an instruction count
//! (`valgrind --tool=callgrind`): the count at two values of N, taken apart, is what
//! one instantiation and call (or one call) costs, free of the wall clock's noise.
//! `raw` does the same on raw Wasmtime configured as the engine is (fuel, a yield
//! interval, a fresh `Store` and fuel per instance, as any embedder with the same
//! guarantees would), so the two counts make a ratio.
//!
//! `cargo run --release -p airssys-wasm-benches --example instantiate_calls -- N \
//!     [airssys|airssys-dense|raw] [instantiate|call]`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use airssys_wasm_benches::raw_config;
use airssys_wasm_core::ResourceLimits;
use airssys_wasm_engine::{
    CompiledComponent, DEFAULT_FUEL_YIELD_INTERVAL, Density, Sandbox, WasmEngine,
};
use wasmtime::component::{Component, Linker, TypedFunc};
use wasmtime::{Engine, Store};

const FUEL: u64 = 1_000_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u32 = args[1].parse().unwrap();
    let raw = args.get(2).is_some_and(|a| a == "raw");
    let dense = args.get(2).is_some_and(|a| a == "airssys-dense");
    let calls_only = args.get(3).is_some_and(|a| a == "call");
    let wat = std::fs::read(airssys_wasm_testkit::fixtures_dir().join("hello.wat")).unwrap();
    let bytes = wat::parse_bytes(&wat).unwrap().into_owned();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        if raw {
            raw_wasmtime(&bytes, n, calls_only).await;
        } else {
            airssys(&bytes, n, calls_only, dense).await;
        }
    });
}

async fn airssys(bytes: &[u8], n: u32, calls_only: bool, dense: bool) {
    let engine = if dense {
        WasmEngine::builder()
            .density(Density::new(1 << 20))
            .build()
            .unwrap()
    } else {
        WasmEngine::new().unwrap()
    };
    let component = CompiledComponent::new(
        &engine,
        "hello",
        Component::new(engine.wasmtime_engine(), bytes).unwrap(),
    )
    .unwrap();
    // Nothing granted, as the raw store has no WASI context: the instance's is made
    // only if the guest reaches WASI (`hello` does not).
    let sandbox = Sandbox::new(ResourceLimits::new(1 << 20, FUEL, Duration::from_secs(5)).unwrap());
    if calls_only {
        let mut i = component.instantiate(&sandbox).await.unwrap();
        let double = i.typed_export::<(i32,), (i32,)>("double").unwrap();
        for _ in 0..n {
            let ((out,), _) = i.call_export(&double, (21,)).await.unwrap();
            assert_eq!(out, 42);
        }
        return;
    }
    for _ in 0..n {
        let mut i = component.instantiate(&sandbox).await.unwrap();
        let ((out,), _) = i
            .call_typed::<(i32,), (i32,)>("double", (21,))
            .await
            .unwrap();
        assert_eq!(out, 42);
    }
}

async fn raw_wasmtime(bytes: &[u8], n: u32, calls_only: bool) {
    let engine = Engine::new(&raw_config()).unwrap();
    let component = Component::new(&engine, bytes).unwrap();
    let pre = Linker::<()>::new(&engine)
        .instantiate_pre(&component)
        .unwrap();
    let store = || {
        let mut store = Store::new(&engine, ());
        store.set_fuel(FUEL).unwrap();
        store
            .fuel_async_yield_interval(Some(DEFAULT_FUEL_YIELD_INTERVAL))
            .unwrap();
        store
    };
    if calls_only {
        let mut s = store();
        let instance = pre.instantiate_async(&mut s).await.unwrap();
        let double: TypedFunc<(i32,), (i32,)> = instance.get_typed_func(&mut s, "double").unwrap();
        for _ in 0..n {
            s.set_fuel(FUEL).unwrap();
            let (out,) = double.call_async(&mut s, (21,)).await.unwrap();
            assert_eq!(out, 42);
        }
        return;
    }
    for _ in 0..n {
        let mut s = store();
        let instance = pre.instantiate_async(&mut s).await.unwrap();
        let double: TypedFunc<(i32,), (i32,)> = instance.get_typed_func(&mut s, "double").unwrap();
        let (out,) = double.call_async(&mut s, (21,)).await.unwrap();
        assert_eq!(out, 42);
    }
}
