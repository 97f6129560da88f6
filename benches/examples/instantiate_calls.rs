//! N instantiations of the testkit's `hello` fixture, each followed by one typed call
//! `double(21)`, for an instruction count (`valgrind --tool=callgrind`): the count at
//! two values of N, taken apart, is what one instantiation and call costs, free of the
//! wall clock's noise.
//!
//! `cargo run --release -p airssys-wasm-benches --example instantiate_calls -- N`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use airssys_wasm_core::{CapabilitySet, ResourceLimits};
use airssys_wasm_engine::{CompiledComponent, Sandbox, WasmEngine};

fn main() {
    let n: u32 = std::env::args().nth(1).unwrap().parse().unwrap();
    let wat = std::fs::read(airssys_wasm_testkit::fixtures_dir().join("hello.wat")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let engine = WasmEngine::new().unwrap();
        let bytes = wat::parse_bytes(&wat).unwrap();
        let component = CompiledComponent::new(
            &engine,
            "hello",
            wasmtime::component::Component::new(engine.wasmtime_engine(), &*bytes).unwrap(),
        )
        .unwrap();
        let sandbox =
            Sandbox::new(ResourceLimits::new(1 << 20, 1_000_000, Duration::from_secs(5)).unwrap())
                .with_capabilities(CapabilitySet::default());
        for _ in 0..n {
            let mut i = component.instantiate(&sandbox).await.unwrap();
            let ((out,), _) = i
                .call_typed::<(i32,), (i32,)>("double", (21,))
                .await
                .unwrap();
            assert_eq!(out, 42);
        }
    });
}
