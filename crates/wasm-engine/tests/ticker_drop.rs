//! Dropping the last engine handle stops the epoch ticker at once. In a test binary of
//! its own (see `ticker.rs`).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use airssys_wasm_core::ResourceLimits;
use airssys_wasm_engine::{CompiledComponent, Interruption, Sandbox, WasmEngine};

#[tokio::test]
async fn dropping_the_engine_does_not_wait_for_a_tick() {
    // With a ten-second tick, a stop signal lost before the ticker first waits would
    // hold the last drop for ten seconds; it must be immediate. Repeated, because
    // whether the ticker thread has started waiting at drop time is a race.
    for _ in 0..20 {
        let engine = WasmEngine::builder()
            .interruption(Interruption::Epochs)
            .epoch_tick(Duration::from_secs(10))
            .build()
            .unwrap();
        let c = wasmtime::component::Component::new(
            engine.wasmtime_engine(),
            airssys_wasm_testkit::HELLO,
        )
        .unwrap();
        let component = CompiledComponent::new(&engine, "hello", c).unwrap();
        let limits = ResourceLimits::new(1 << 20, 1_000, Duration::from_secs(1)).unwrap();
        let instance = component.instantiate(&Sandbox::new(limits)).await.unwrap();
        let started = std::time::Instant::now();
        drop((instance, component, engine));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the last drop waited {:?}",
            started.elapsed()
        );
    }
}
