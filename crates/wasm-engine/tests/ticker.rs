//! The epoch ticker thread stops when the last engine handle drops. In a test binary of
//! its own so that no other test's engine starts a ticker meanwhile.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use airssys_wasm_core::ResourceLimits;
use airssys_wasm_engine::{CompiledComponent, Interruption, Sandbox, WasmEngine};

fn ticker_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .is_ok_and(|c| c.trim() == "airssys-wasm-ep")
                })
                .count()
        })
        .unwrap_or(0)
}

/// The ticker count once it settles: a new thread names itself from inside, so it can
/// show the parent's name for a moment after it is spawned.
fn settled_ticker_threads(expected: usize) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let n = ticker_threads();
        if n == expected || std::time::Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[tokio::test]
async fn ticker_lives_exactly_as_long_as_the_engine_and_its_instances() {
    assert_eq!(ticker_threads(), 0);
    let engine = WasmEngine::builder()
        .interruption(Interruption::Epochs)
        .build()
        .unwrap();
    assert_eq!(ticker_threads(), 0, "the ticker starts lazily");

    let c =
        wasmtime::component::Component::new(engine.wasmtime_engine(), airssys_wasm_testkit::HELLO)
            .unwrap();
    let component = CompiledComponent::new(&engine, "hello", c).unwrap();
    let limits = ResourceLimits::new(1 << 20, 1_000, Duration::from_secs(1)).unwrap();
    let mut instance = component.instantiate(&Sandbox::new(limits)).await.unwrap();
    assert_eq!(settled_ticker_threads(1), 1);

    // The instance keeps the ticker (and so its timeout) alive without the engine handle.
    drop(engine);
    drop(component);
    assert_eq!(settled_ticker_threads(1), 1);
    instance.call("hello", &[]).await.unwrap();

    drop(instance);
    assert_eq!(
        ticker_threads(),
        0,
        "the ticker thread must stop with the last handle"
    );
}
