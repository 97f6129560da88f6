//! WebAssembly 3.0 under the sandbox's limits: GC objects count against the memory
//! limit, fuel and the timeout stop endless GC and exception loops, and an exception
//! that escapes an export is a trap that poisons the instance.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use airssys_wasm_core::{ResourceLimits, WasmError};
use airssys_wasm_engine::{CompiledComponent, Density, Pooling, Sandbox, Val, WasmEngine};
use airssys_wasm_testkit as fx;
use common::{GROSS, MIB, compile, sandbox};

/// `export` of `c`, which never returns by itself, ends with the fuel error under a
/// small budget and with the timeout error (not before it) under unlimited fuel.
async fn stopped_by_fuel_and_by_the_timeout(c: &CompiledComponent, export: &str, memory: u64) {
    let mut i = c
        .instantiate(&sandbox(memory, 2_000_000, Duration::from_secs(30)))
        .await
        .unwrap();
    let t = Instant::now();
    let err = i.call(export, &[]).await.unwrap_err();
    assert!(t.elapsed() < GROSS);
    assert!(
        matches!(err, WasmError::FuelExhausted { .. }),
        "expected fuel exhaustion, got {err:?}"
    );

    let timeout = Duration::from_millis(300);
    let mut i = c
        .instantiate(&sandbox(memory, u64::MAX, timeout))
        .await
        .unwrap();
    let t = Instant::now();
    let err = i.call(export, &[]).await.unwrap_err();
    let took = t.elapsed();
    assert!(took >= timeout && took < GROSS, "{took:?}");
    assert!(
        matches!(err, WasmError::ComponentTimeout { .. }),
        "expected the timeout, got {err:?}"
    );
    // Whatever it allocated on the way stayed within the limit.
    assert!(i.memory_bytes() <= memory);
}

fn roomy() -> Sandbox {
    sandbox(64 * MIB, 100_000_000, Duration::from_secs(10))
}

#[tokio::test]
async fn gc_structs_are_allocated_linked_and_read_back() {
    let engine = WasmEngine::new().unwrap();
    let c = compile(&engine, "gc", fx::GC_ALLOC);
    let mut i = c.instantiate(&roomy()).await.unwrap();
    let ((sum,), report) = i
        .call_typed::<(u32,), (u64,)>("sum", (1000,))
        .await
        .unwrap();
    assert_eq!(sum, 1000 * 1001 / 2);
    // The GC heap is memory of the instance: the report's peak includes it.
    assert!(report.peak_memory_bytes > 0, "{report}");
    // And it can be called again: nothing of the first call's heap leaks into the result.
    let ((sum,), _) = i.call_typed::<(u32,), (u64,)>("sum", (10,)).await.unwrap();
    assert_eq!(sum, 55);
}

/// A guest that keeps every struct it allocates alive ends with the memory-limit error
/// (the GC heap grows through the instance's limiter), not with host memory growth.
async fn hoarding_hits_the_memory_limit(engine: &WasmEngine, limit: u64) {
    let c = compile(engine, "hoard", fx::GC_ALLOC);
    let mut i = c
        .instantiate(&sandbox(limit, u64::MAX, Duration::from_secs(30)))
        .await
        .unwrap();
    let t = Instant::now();
    let err = i.call("hoard", &[]).await.unwrap_err();
    assert!(t.elapsed() < GROSS, "{:?}", t.elapsed());
    match &err {
        WasmError::MemoryLimitExceeded {
            limit_bytes,
            requested_bytes,
            ..
        } => {
            assert_eq!(*limit_bytes, limit);
            assert!(*requested_bytes > limit, "{err:?}");
        }
        other => panic!("expected the memory limit, got {other:?}"),
    }
    assert!(err.is_limit_error());
    // What the instance holds never went past the limit.
    assert!(i.memory_bytes() <= limit, "{}", i.memory_bytes());
    assert!(i.poisoned().is_some());
}

#[tokio::test]
async fn a_guest_hoarding_gc_objects_hits_the_memory_limit() {
    let engine = WasmEngine::new().unwrap();
    hoarding_hits_the_memory_limit(&engine, 4 * MIB).await;
    // The engine carries on.
    let c = compile(&engine, "gc", fx::GC_ALLOC);
    let mut i = c.instantiate(&roomy()).await.unwrap();
    let ((sum,), _) = i.call_typed::<(u32,), (u64,)>("sum", (3,)).await.unwrap();
    assert_eq!(sum, 6);
}

#[tokio::test]
async fn the_gc_heap_is_bounded_under_the_pooling_allocator_too() {
    let limits = ResourceLimits::new(4 * MIB, u64::MAX, Duration::from_secs(30)).unwrap();
    let engine = WasmEngine::builder()
        .pooling(Pooling::for_limits(&limits, 4))
        .build()
        .unwrap();
    hoarding_hits_the_memory_limit(&engine, 4 * MIB).await;
}

#[tokio::test]
async fn gc_heaps_live_in_the_dense_layouts_slots_and_stay_bounded() {
    // GC heaps are memories of the instance: under the dense layout they take its
    // slots too (no guard region, explicit bounds checks), and grow through the limiter.
    let limits = ResourceLimits::new(4 * MIB, u64::MAX, Duration::from_secs(30)).unwrap();
    let engine = WasmEngine::builder()
        .density(Density::for_limits(&limits))
        .build()
        .unwrap();
    let c = compile(&engine, "gc", fx::GC_ALLOC);
    let mut i = c
        .instantiate(&sandbox(4 * MIB, 100_000_000, Duration::from_secs(10)))
        .await
        .unwrap();
    let ((sum,), _) = i
        .call_typed::<(u32,), (u64,)>("sum", (1000,))
        .await
        .unwrap();
    assert_eq!(sum, 1000 * 1001 / 2);
    hoarding_hits_the_memory_limit(&engine, 4 * MIB).await;
}

#[tokio::test]
async fn endless_gc_churn_is_stopped_by_fuel_and_by_the_timeout() {
    // The collector keeps up with the garbage: only fuel and the timeout can stop it.
    let engine = WasmEngine::new().unwrap();
    let c = compile(&engine, "churn", fx::GC_ALLOC);
    stopped_by_fuel_and_by_the_timeout(&c, "churn", 16 * MIB).await;
}

#[tokio::test]
async fn exceptions_are_thrown_and_caught_inside_the_guest() {
    let engine = WasmEngine::new().unwrap();
    let c = compile(&engine, "exceptions", fx::EXCEPTIONS);
    let mut i = c.instantiate(&roomy()).await.unwrap();
    let ((v,), _) = i
        .call_typed::<(i32,), (i32,)>("catch", (41,))
        .await
        .unwrap();
    assert_eq!(v, 42);
    let out = i.invoke("catch(1)").await.unwrap();
    assert_eq!(out.results, vec![Val::S32(2)]);
}

#[tokio::test]
async fn an_exception_escaping_an_export_is_a_trap_that_says_so_and_poisons() {
    let engine = WasmEngine::new().unwrap();
    let c = compile(&engine, "exceptions", fx::EXCEPTIONS);
    let mut i = c.instantiate(&roomy()).await.unwrap();
    let err = i.call("escape", &[]).await.unwrap_err();
    match &err {
        WasmError::ComponentTrapped { reason, .. } => {
            assert!(reason.contains("exception"), "{reason}");
            assert!(reason.contains("escaped"), "{reason}");
            assert!(reason.contains("`escape`"), "{reason}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert!(err.is_runtime_error());
    // Poisoned: a later call is refused, naming the exception as the cause.
    let later = i.call("catch", &[Val::S32(1)]).await.unwrap_err();
    match &later {
        WasmError::InstancePoisoned { cause, .. } => {
            assert!(cause.contains("exception"), "{cause}");
        }
        other => panic!("expected poisoning, got {other:?}"),
    }
    // Other instances of the component are unaffected.
    let mut fresh = c.instantiate(&roomy()).await.unwrap();
    let ((v,), _) = fresh
        .call_typed::<(i32,), (i32,)>("catch", (1,))
        .await
        .unwrap();
    assert_eq!(v, 2);
}

#[tokio::test]
async fn throwing_and_catching_forever_is_stopped_by_fuel_and_by_the_timeout() {
    let engine = WasmEngine::new().unwrap();
    let c = compile(&engine, "exceptions", fx::EXCEPTIONS);
    stopped_by_fuel_and_by_the_timeout(&c, "rethrow-forever", MIB).await;
}

#[tokio::test]
async fn an_exception_escaping_a_start_function_fails_instantiation_saying_so() {
    let engine = WasmEngine::new().unwrap();
    let wasm = wat::parse_str(
        r#"(component
            (core module $m
              (tag $oops)
              (func $start (throw $oops))
              (start $start))
            (core instance $i (instantiate $m)))"#,
    )
    .unwrap();
    let c = compile(&engine, "throws-at-start", &wasm);
    let err = c.instantiate(&roomy()).await.unwrap_err();
    match &err {
        WasmError::ComponentTrapped { reason, .. } => {
            assert!(reason.contains("exception escaped"), "{reason}");
            assert!(reason.contains("start function"), "{reason}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
}
