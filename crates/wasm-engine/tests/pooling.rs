//! The opt-in pooling allocator: sized from the limits, real guests run in it, the
//! limits still hold, and the pool bounds how many instances exist at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use airssys_wasm_core::{CapabilitySet, ResourceLimits, WasmError};
use airssys_wasm_engine::{CompiledComponent, Pooling, Sandbox, WasmEngine};
use airssys_wasm_testkit::{self as fx, guests};

fn compile(engine: &WasmEngine, name: &str, wasm: &[u8]) -> CompiledComponent {
    let c = wasmtime::component::Component::new(engine.wasmtime_engine(), wasm).unwrap();
    CompiledComponent::new(engine, name, c).unwrap()
}

fn limits() -> ResourceLimits {
    ResourceLimits::new(16 << 20, 1_000_000_000, Duration::from_secs(10)).unwrap()
}

fn pooled(max_instances: u32) -> WasmEngine {
    WasmEngine::builder()
        .pooling(Pooling::for_limits(&limits(), max_instances))
        .build()
        .unwrap()
}

#[tokio::test]
async fn real_guests_run_pooled_under_the_same_limits() {
    let engine = pooled(4);
    let calc = compile(&engine, "calc", guests::CALC);
    let mut i = calc.instantiate(&Sandbox::new(limits())).await.unwrap();
    assert_eq!(
        i.invoke("add(40, 2)")
            .await
            .unwrap()
            .results_wave()
            .unwrap(),
        ["42"]
    );
    let err = i.invoke("hoard(64)").await.unwrap_err();
    assert!(
        matches!(err, WasmError::MemoryLimitExceeded { .. }),
        "{err}"
    );

    let hello = compile(&engine, "cli-hello", guests::CLI_HELLO);
    let sandbox = Sandbox::new(limits())
        .with_args(["cli-hello"])
        .capture_output(4096);
    let mut h = hello.instantiate(&sandbox).await.unwrap();
    assert_eq!(h.run_command().await.unwrap().0, 0);
}

#[tokio::test]
async fn the_pool_bounds_live_instances_and_frees_slots_on_drop() {
    let engine = pooled(2);
    let hello = compile(&engine, "hello", fx::HELLO);
    let sandbox = Sandbox::new(limits());
    let a = hello.instantiate(&sandbox).await.unwrap();
    let _b = hello.instantiate(&sandbox).await.unwrap();
    let err = hello.instantiate(&sandbox).await.unwrap_err();
    assert!(
        matches!(&err, WasmError::PoolExhausted { resource, limit: 2, .. } if resource == "component instances"),
        "{err:?}"
    );
    assert!(
        err.is_limit_error() && err.to_string().contains("pool"),
        "{err}"
    );
    drop(a);
    let mut c = hello.instantiate(&sandbox).await.unwrap();
    let ((v,), _) = c.call_typed::<(), (i32,)>("hello", ()).await.unwrap();
    assert_eq!(v, 42);
}

#[test]
fn a_memory_larger_than_the_pooled_size_is_refused_at_compile_time() {
    let small = ResourceLimits::new(1 << 20, 1_000_000, Duration::from_secs(5)).unwrap();
    let engine = WasmEngine::builder()
        .pooling(Pooling::for_limits(&small, 2))
        .build()
        .unwrap();
    // Its initial memory (16 MiB) is over the 1 MiB the pool was sized for: Wasmtime
    // refuses it when compiling, before anything runs.
    let err = wasmtime::component::Component::new(engine.wasmtime_engine(), fx::BIG_INITIAL_MEMORY)
        .unwrap_err();
    assert!(format!("{err:#}").contains("pooling allocator"), "{err:#}");
}

#[tokio::test]
async fn a_wasi_0_3_guest_runs_pooled_with_component_model_async_on() {
    let engine = WasmEngine::builder()
        .pooling(Pooling::for_limits(&limits(), 4))
        .component_model_async(true)
        .build()
        .unwrap();
    let p3 = compile(&engine, "p3-tool", guests::P3_TOOL);
    for _ in 0..8 {
        // More instantiations than slots: each instance's slot is freed on drop.
        let mut i = p3.instantiate(&Sandbox::new(limits())).await.unwrap();
        let out = i.invoke("slow-double(21, 1)").await.unwrap();
        assert_eq!(out.results_wave().unwrap(), ["42"]);
    }
    let sandbox = Sandbox::new(limits())
        .with_capabilities(CapabilitySet::default())
        .with_args(["p3-tool", "pooled"])
        .capture_output(4096);
    let mut h = p3.instantiate(&sandbox).await.unwrap();
    assert_eq!(h.run_command().await.unwrap().0, 0);
    assert_eq!(
        h.captured_stdout().unwrap(),
        b"hello from WASI 0.3: p3-tool pooled\n"
    );
}

/// A component whose `bump` counts in linear memory and whose `probe` grows memory by a
/// page, returns what it finds there and leaves a 7 behind.
const REMEMBERS: &str = r#"
(component
  (core module $m
    (memory 1)
    (func (export "bump") (result i32)
      (i32.store (i32.const 16) (i32.add (i32.load (i32.const 16)) (i32.const 1)))
      (i32.load (i32.const 16)))
    (func (export "probe") (result i32) (local $old i32)
      (drop (memory.grow (i32.const 1)))
      (local.set $old (i32.load (i32.const 65544)))
      (i32.store (i32.const 65544) (i32.const 7))
      (local.get $old)))
  (core instance $i (instantiate $m))
  (func (export "bump") (result u32) (canon lift (core func $i "bump")))
  (func (export "probe") (result u32) (canon lift (core func $i "probe"))))
"#;

#[tokio::test]
async fn a_reused_slot_starts_from_fresh_memory() {
    // Freed slots are returned to the kernel in batches (Pooling::decommit_batch_size):
    // whether a slot is taken again before or after its batch is flushed, nothing of
    // the previous instance shows — in its initial memory or in pages it grew.
    for slots in [1, 4] {
        let engine = pooled(slots);
        let c = compile(&engine, "remembers", &wat::parse_str(REMEMBERS).unwrap());
        let sandbox = Sandbox::new(limits());
        for round in 0..50 {
            let mut i = c.instantiate(&sandbox).await.unwrap();
            for n in 1..=3u32 {
                let ((v,), _) = i.call_typed::<(), (u32,)>("bump", ()).await.unwrap();
                assert_eq!(v, n, "slots {slots}, round {round}");
            }
            let ((old,), _) = i.call_typed::<(), (u32,)>("probe", ()).await.unwrap();
            assert_eq!(old, 0, "slots {slots}, round {round}");
        }
    }
}
