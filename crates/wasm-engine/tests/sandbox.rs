//! Sandboxed execution: every hostile fixture is stopped by the right limit, with the
//! right error, in bounded time, and leaves the engine usable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use airssys_wasm_core::WasmError;
use airssys_wasm_engine::{Interruption, Sandbox, Val, WasmEngine};
use airssys_wasm_testkit as fx;
use common::{GROSS, MIB, PAGE, compile, sandbox};

fn roomy() -> Sandbox {
    sandbox(64 * MIB, 10_000_000, Duration::from_secs(5))
}

/// The engine still runs a well-behaved component correctly.
async fn still_healthy(engine: &WasmEngine) {
    let hello = compile(engine, "hello", fx::HELLO);
    let mut i = hello.instantiate(&roomy()).await.unwrap();
    let ((v,), _) = i.call_typed::<(), (i32,)>("hello", ()).await.unwrap();
    assert_eq!(v, 42);
}

#[tokio::test]
async fn hello_returns_42_typed_dynamic_and_wave() {
    let engine = WasmEngine::new().unwrap();
    let hello = compile(&engine, "hello", fx::HELLO);
    let mut i = hello.instantiate(&roomy()).await.unwrap();

    let ((v,), report) = i.call_typed::<(), (i32,)>("hello", ()).await.unwrap();
    assert_eq!(v, 42);
    assert!(
        report.fuel_consumed > 0 && report.fuel_consumed < 100,
        "{report}"
    );
    assert_eq!(report.fuel_limit, 10_000_000);

    let out = i.call("double", &[Val::S32(21)]).await.unwrap();
    assert_eq!(out.results, vec![Val::S32(42)]);

    let out = i.invoke("add(40, 2)").await.unwrap();
    assert_eq!(out.results_wave().unwrap(), ["42"]);
    let out = i.invoke("noop").await.unwrap();
    assert!(out.results.is_empty());
}

#[tokio::test]
async fn string_round_trip_and_post_return_keep_memory_flat() {
    let engine = WasmEngine::new().unwrap();
    let greet = compile(&engine, "greet", fx::GREET);
    let mut i = greet.instantiate(&roomy()).await.unwrap();
    let before = i.memory_bytes();
    for _ in 0..2_000 {
        let ((s,), _) = i
            .call_typed::<(&str,), (String,)>("greet", ("you",))
            .await
            .unwrap();
        assert_eq!(s, "Hello, you!");
    }
    assert_eq!(
        i.memory_bytes(),
        before,
        "post-return must reset the bump allocator"
    );
    let out = i.invoke(r#"greet("wave")"#).await.unwrap();
    assert_eq!(out.results_wave().unwrap(), [r#""Hello, wave!""#]);
}

#[tokio::test]
async fn several_value_types_round_trip() {
    let engine = WasmEngine::new().unwrap();
    let c = compile(&engine, "types", fx::TYPES);
    let mut i = c.instantiate(&roomy()).await.unwrap();
    let w = |o: airssys_wasm_engine::CallOutcome| o.results_wave().unwrap().join(",");
    assert_eq!(w(i.invoke("pick(true, 1, 2)").await.unwrap()), "1");
    assert_eq!(
        w(i.invoke("pick(false, 1, 18446744073709551615)")
            .await
            .unwrap()),
        "18446744073709551615"
    );
    assert_eq!(w(i.invoke("scale(1.5, 2.0)").await.unwrap()), "3");
    assert_eq!(w(i.invoke("maybe(some(7))").await.unwrap()), "7");
    assert_eq!(w(i.invoke("maybe(none)").await.unwrap()), "0");
}

#[tokio::test]
async fn infinite_loop_runs_out_of_fuel_naming_the_budget() {
    let engine = WasmEngine::new().unwrap();
    let c = compile(&engine, "spin", fx::INFINITE_LOOP);
    let mut i = c
        .instantiate(&sandbox(MIB, 50_000, Duration::from_secs(30)))
        .await
        .unwrap();
    let t = Instant::now();
    let err = i.call("spin", &[]).await.unwrap_err();
    assert!(t.elapsed() < GROSS);
    assert!(
        matches!(
            err,
            WasmError::FuelExhausted {
                fuel_limit: 50_000,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("50000"), "{err}");
    still_healthy(&engine).await;
}

#[tokio::test]
async fn infinite_loop_with_unlimited_fuel_is_stopped_by_the_timeout() {
    let engine = WasmEngine::new().unwrap();
    let c = compile(&engine, "spin", fx::INFINITE_LOOP);
    let timeout = Duration::from_millis(200);
    let mut i = c
        .instantiate(&sandbox(MIB, u64::MAX, timeout))
        .await
        .unwrap();
    let t = Instant::now();
    let err = i.call("spin", &[]).await.unwrap_err();
    let took = t.elapsed();
    match &err {
        WasmError::ComponentTimeout {
            max_execution_ms,
            fuel_consumed,
            ..
        } => {
            assert_eq!(*max_execution_ms, 200);
            // Either the fuel used, or unknown when the interrupted loop had not yet
            // flushed its fuel counter — never a misleading zero.
            assert_ne!(*fuel_consumed, Some(0));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    // Not before the timeout; within it plus two ticks (with a loose margin for a busy CI).
    assert!(took >= timeout, "{took:?}");
    assert!(took < timeout + Duration::from_secs(2), "{took:?}");
    still_healthy(&engine).await;
}

#[tokio::test(flavor = "current_thread")]
async fn both_interruptions_stop_a_loop_and_a_start_function_at_the_timeout_and_yield_meanwhile() {
    for mode in [Interruption::FuelYields, Interruption::Epochs] {
        let engine = WasmEngine::builder().interruption(mode).build().unwrap();
        assert!(!engine.ticker_running(), "{mode:?}");
        let timeout = Duration::from_millis(150);
        let spin = compile(&engine, "spin", fx::INFINITE_LOOP);
        let mut i = spin
            .instantiate(&sandbox(MIB, u64::MAX, timeout))
            .await
            .unwrap();
        // A sleeper on the same thread gets its turn while the guest spins.
        let start = Instant::now();
        let guest = async { (i.call("spin", &[]).await, start.elapsed()) };
        let other = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            start.elapsed()
        };
        let ((r, took), slept) = tokio::join!(guest, other);
        let err = r.unwrap_err();
        let WasmError::ComponentTimeout {
            in_host,
            fuel_consumed,
            ..
        } = &err
        else {
            panic!("{mode:?}: {err:?}")
        };
        assert_eq!(*in_host, None, "{mode:?}");
        assert_ne!(*fuel_consumed, Some(0), "{mode:?}");
        assert!(took >= timeout, "{mode:?}: {took:?}");
        assert!(took < GROSS, "{mode:?}: {took:?}");
        assert!(slept < timeout, "{mode:?}: the sleeper waited {slept:?}");
        // Only epochs need a ticker thread.
        assert_eq!(engine.ticker_running(), mode == Interruption::Epochs);

        let start_loop = compile(&engine, "start", fx::START_LOOP);
        let t = Instant::now();
        let err = start_loop
            .instantiate(&sandbox(MIB, u64::MAX, timeout))
            .await
            .unwrap_err();
        assert!(
            matches!(err, WasmError::ComponentTimeout { .. }),
            "{mode:?}: {err:?}"
        );
        assert!(t.elapsed() >= timeout && t.elapsed() < GROSS, "{mode:?}");
        still_healthy(&engine).await;
    }
}

#[tokio::test]
async fn wall_time_is_reported_only_when_the_sandbox_measures_it() {
    let engine = WasmEngine::new().unwrap();
    let hello = compile(&engine, "hello", fx::HELLO);
    let mut i = hello.instantiate(&roomy()).await.unwrap();
    assert_eq!(i.instantiation_report().wall_time, None);
    let ((_,), report) = i.call_typed::<(), (i32,)>("hello", ()).await.unwrap();
    assert_eq!(report.wall_time, None);
    assert!(!report.to_string().contains("wall time"), "{report}");

    let mut i = hello
        .instantiate(&roomy().measure_wall_time(true))
        .await
        .unwrap();
    assert!(i.instantiation_report().wall_time.is_some());
    let ((_,), report) = i.call_typed::<(), (i32,)>("hello", ()).await.unwrap();
    let quick = report.wall_time.unwrap();
    assert!(quick < Duration::from_secs(1), "{quick:?}");
    assert!(report.to_string().contains("wall time"), "{report}");

    // A call stopped by its timeout took at least the timeout, and the clock agrees
    // with the host's.
    let spin = compile(&engine, "spin", fx::INFINITE_LOOP);
    let timeout = Duration::from_millis(150);
    let mut i = spin
        .instantiate(&sandbox(MIB, u64::MAX, timeout).measure_wall_time(true))
        .await
        .unwrap();
    let t = Instant::now();
    i.call("spin", &[]).await.unwrap_err();
    let host = t.elapsed();
    let wall = i.last_report().wall_time.unwrap();
    assert!(wall >= timeout, "{wall:?}");
    assert!(wall <= host, "{wall:?} measured inside {host:?}");
    assert!(
        host - wall < Duration::from_millis(50),
        "{wall:?} vs {host:?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_busy_guest_does_not_starve_other_tasks_on_its_thread() {
    let engine = WasmEngine::new().unwrap();
    let c = compile(&engine, "spin", fx::INFINITE_LOOP);
    let mut i = c
        .instantiate(&sandbox(MIB, u64::MAX, Duration::from_millis(500)))
        .await
        .unwrap();
    let start = Instant::now();
    let guest = async {
        let r = i.call("spin", &[]).await;
        (r, start.elapsed())
    };
    let other = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        start.elapsed()
    };
    let ((r, guest_done), other_done) = tokio::join!(guest, other);
    assert!(matches!(r, Err(WasmError::ComponentTimeout { .. })));
    // The sleeper finished long before the guest was stopped: the guest yielded.
    assert!(other_done < Duration::from_millis(300), "{other_done:?}");
    assert!(guest_done >= Duration::from_millis(500));
}

#[tokio::test]
async fn memory_bomb_hits_the_memory_limit_with_limit_and_request() {
    let engine = WasmEngine::new().unwrap();
    let c = compile(&engine, "bomb", fx::MEMORY_BOMB);
    let mut i = c
        .instantiate(&sandbox(MIB, 100_000_000, Duration::from_secs(10)))
        .await
        .unwrap();
    let err = i.call("bomb", &[]).await.unwrap_err();
    match &err {
        WasmError::MemoryLimitExceeded {
            limit_bytes,
            requested_bytes,
            trap,
            ..
        } => {
            assert_eq!(*limit_bytes, MIB);
            assert_eq!(*requested_bytes, MIB + PAGE);
            assert!(trap.as_deref().unwrap().contains("unreachable"), "{trap:?}");
        }
        other => panic!("expected the memory limit, got {other:?}"),
    }
    assert!(err.is_limit_error());
    assert!(err.to_string().contains("raise `memory`"), "{err}");
    still_healthy(&engine).await;
}

#[tokio::test]
async fn denied_growth_returns_minus_one_and_is_not_an_error() {
    let engine = WasmEngine::new().unwrap();
    let c = compile(&engine, "bomb", fx::MEMORY_BOMB);
    let mut i = c
        .instantiate(&sandbox(4 * PAGE, 1_000_000, Duration::from_secs(5)))
        .await
        .unwrap();
    let out = i.call("grow", &[Val::U32(100)]).await.unwrap();
    assert_eq!(out.results, vec![Val::S32(-1)]);
    let out = i.call("grow", &[Val::U32(3)]).await.unwrap();
    assert_eq!(out.results, vec![Val::S32(1)], "previous size in pages");
    assert_eq!(out.report.peak_memory_bytes, 4 * PAGE);
    assert_eq!(i.memory_bytes(), 4 * PAGE);
    assert!(i.poisoned().is_none());
    let out = i.call("pages", &[]).await.unwrap();
    assert_eq!(out.results, vec![Val::U32(4)]);
}

#[tokio::test]
async fn initial_memory_over_the_limit_fails_instantiation_as_a_memory_error() {
    let engine = WasmEngine::new().unwrap();
    let c = compile(&engine, "big", fx::BIG_INITIAL_MEMORY);
    let err = c
        .instantiate(&sandbox(MIB, 1_000_000, Duration::from_secs(5)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            WasmError::MemoryLimitExceeded {
                limit_bytes: MIB,
                requested_bytes: 16_777_216,
                trap: None,
                ..
            }
        ),
        "{err:?}"
    );
    // With room it instantiates.
    let mut i = c
        .instantiate(&sandbox(32 * MIB, 1_000_000, Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(
        i.call("hello", &[]).await.unwrap().results,
        vec![Val::S32(1)]
    );
}

#[tokio::test]
async fn several_memories_count_together() {
    let engine = WasmEngine::new().unwrap();
    let c = compile(&engine, "multi", fx::MULTI_MEMORY);
    // 640 KiB each: one fits in 1 MiB, both do not.
    let err = c
        .instantiate(&sandbox(MIB, 1_000_000, Duration::from_secs(5)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            WasmError::MemoryLimitExceeded {
                limit_bytes: MIB,
                requested_bytes: 1_310_720,
                ..
            }
        ),
        "{err:?}"
    );
    let mut i = c
        .instantiate(&sandbox(2 * MIB, 1_000_000, Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(
        i.call("sizes", &[]).await.unwrap().results,
        vec![Val::U32(20)]
    );
    assert_eq!(i.memory_bytes(), 20 * PAGE);
}

#[tokio::test]
async fn huge_table_is_refused() {
    let engine = WasmEngine::new().unwrap();
    let c = compile(&engine, "table", fx::HUGE_TABLE);
    let err = c.instantiate(&roomy()).await.unwrap_err();
    match err {
        WasmError::ResourceLimitExceeded {
            resource,
            limit,
            requested,
            ..
        } => {
            assert_eq!(resource, "table elements");
            assert_eq!(limit, 100_000);
            assert_eq!(requested, 10_000_000);
        }
        other => panic!("expected a table limit, got {other:?}"),
    }
    still_healthy(&engine).await;
}

async fn trap_of(wasm: &[u8], export: &str, args: &[Val]) -> (String, Option<String>) {
    let engine = WasmEngine::new().unwrap();
    let c = compile(&engine, "hostile", wasm);
    let mut i = c.instantiate(&roomy()).await.unwrap();
    let t = Instant::now();
    let err = i.call(export, args).await.unwrap_err();
    assert!(t.elapsed() < GROSS);
    still_healthy(&engine).await;
    match err {
        WasmError::ComponentTrapped {
            reason, backtrace, ..
        } => (reason, backtrace),
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[tokio::test]
async fn unbounded_recursion_is_a_stack_overflow() {
    let (reason, _) = trap_of(fx::RECURSION, "recurse", &[]).await;
    assert!(reason.contains("stack overflow"), "{reason}");
}

#[tokio::test]
async fn unreachable_traps_with_words_and_a_backtrace() {
    let (reason, backtrace) = trap_of(fx::UNREACHABLE, "boom", &[]).await;
    assert!(reason.starts_with("unreachable"), "{reason}");
    assert!(backtrace.is_some(), "a guest backtrace is expected");
}

#[tokio::test]
async fn divide_by_zero_traps() {
    let (reason, _) = trap_of(fx::DIV_BY_ZERO, "divide", &[Val::S32(1), Val::S32(0)]).await;
    assert!(reason.contains("divide by zero"), "{reason}");
}

#[tokio::test]
async fn out_of_bounds_access_traps() {
    let (reason, _) = trap_of(fx::OUT_OF_BOUNDS, "load", &[Val::U32(70_000)]).await;
    assert!(reason.contains("out-of-bounds memory access"), "{reason}");
}

#[tokio::test]
async fn a_trapping_start_function_fails_instantiation() {
    let engine = WasmEngine::new().unwrap();
    let c = compile(&engine, "start", fx::START_TRAP);
    let err = c.instantiate(&roomy()).await.unwrap_err();
    assert!(
        matches!(&err, WasmError::ComponentTrapped { reason, .. } if reason.contains("unreachable")),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_endless_start_function_is_bounded_by_fuel_and_by_time() {
    let engine = WasmEngine::new().unwrap();
    let c = compile(&engine, "start", fx::START_LOOP);
    let err = c
        .instantiate(&sandbox(MIB, 100_000, Duration::from_secs(30)))
        .await
        .unwrap_err();
    assert!(matches!(err, WasmError::FuelExhausted { .. }), "{err:?}");
    let t = Instant::now();
    let err = c
        .instantiate(&sandbox(MIB, u64::MAX, Duration::from_millis(100)))
        .await
        .unwrap_err();
    assert!(matches!(err, WasmError::ComponentTimeout { .. }), "{err:?}");
    assert!(t.elapsed() < GROSS);
}

#[tokio::test]
async fn unsatisfied_imports_are_listed() {
    let engine = WasmEngine::new().unwrap();
    let c = compile(&engine, "needs-host", fx::HOST_IMPORT);
    let err = c.instantiate(&roomy()).await.unwrap_err();
    let WasmError::InterfacesDenied { denied, .. } = &err else {
        panic!("{err:?}")
    };
    // Every import this host does not provide, and nothing WASI provides (wasi:http's
    // outgoing handler included, since issue 19).
    assert_eq!(denied.len(), 1, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("`example:host/log` is imported, but this host does not provide it"),
        "{msg}"
    );
    assert!(!msg.contains("`wasi:http/outgoing-handler@0.2.0`"), "{msg}");
    assert!(
        !msg.contains("`wasi:random/random@0.2.0`"),
        "provided: {msg}"
    );
    assert!(msg.contains("needs-host"), "{msg}");
}

#[tokio::test]
async fn a_trap_poisons_the_instance_but_not_the_component() {
    let engine = WasmEngine::new().unwrap();
    let c = compile(&engine, "div", fx::DIV_BY_ZERO);
    let mut i = c.instantiate(&roomy()).await.unwrap();
    assert!(i.call("divide", &[Val::S32(1), Val::S32(0)]).await.is_err());
    assert!(i.poisoned().is_some());
    let err = i
        .call("divide", &[Val::S32(6), Val::S32(3)])
        .await
        .unwrap_err();
    assert!(matches!(err, WasmError::InstancePoisoned { .. }), "{err:?}");
    assert!(err.to_string().contains("instantiate the component again"));
    let mut fresh = c.instantiate(&roomy()).await.unwrap();
    let out = fresh
        .call("divide", &[Val::S32(6), Val::S32(3)])
        .await
        .unwrap();
    assert_eq!(out.results, vec![Val::S32(2)]);
}

#[tokio::test]
async fn usage_errors_list_exports_and_do_not_poison() {
    let engine = WasmEngine::new().unwrap();
    let c = compile(&engine, "hello", fx::HELLO);
    let mut i = c.instantiate(&roomy()).await.unwrap();

    let err = i.call("nope", &[]).await.unwrap_err();
    assert!(err.is_usage_error());
    let msg = err.to_string();
    assert!(msg.contains("double: func(x: s32) -> s32"), "{msg}");
    assert!(msg.contains("add: func(a: s32, b: s32) -> s32"), "{msg}");

    let err = i.call("double", &[]).await.unwrap_err();
    assert!(
        err.to_string().contains("expected 1 argument(s), got 0"),
        "{err}"
    );
    let err = i
        .call("double", &[Val::String("x".into())])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("must be s32"), "{err}");
    let err = i.invoke("double(\"x\")").await.unwrap_err();
    assert!(matches!(err, WasmError::InvalidArguments { .. }), "{err:?}");
    let err = i.invoke("double(21").await.unwrap_err();
    assert!(matches!(err, WasmError::InvalidArguments { .. }), "{err:?}");
    let err = i
        .call_typed::<(String,), (i32,)>("double", ("x".into(),))
        .await
        .unwrap_err();
    assert!(matches!(err, WasmError::InvalidArguments { .. }), "{err:?}");

    assert!(i.poisoned().is_none());
    assert_eq!(
        i.invoke("double(21)").await.unwrap().results,
        vec![Val::S32(42)]
    );
}

#[tokio::test]
async fn fuel_is_granted_afresh_for_every_call() {
    let engine = WasmEngine::new().unwrap();
    let c = compile(&engine, "hello", fx::HELLO);
    let mut probe = c.instantiate(&roomy()).await.unwrap();
    let per_call = probe.call("hello", &[]).await.unwrap().report.fuel_consumed;
    // A budget for two calls, used for fifty: works only if each call is refilled.
    let mut i = c
        .instantiate(&sandbox(MIB, per_call * 2, Duration::from_secs(5)))
        .await
        .unwrap();
    for _ in 0..50 {
        let out = i.call("hello", &[]).await.unwrap();
        assert_eq!(out.report.fuel_consumed, per_call);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_instances_good_and_hostile() {
    let engine = WasmEngine::new().unwrap();
    let good = compile(&engine, "hello", fx::HELLO);
    let hostile = [
        (compile(&engine, "spin", fx::INFINITE_LOOP), "spin"),
        (compile(&engine, "bomb", fx::MEMORY_BOMB), "bomb"),
        (compile(&engine, "recurse", fx::RECURSION), "recurse"),
        (compile(&engine, "boom", fx::UNREACHABLE), "boom"),
    ];
    let limits = sandbox(2 * MIB, 5_000_000, Duration::from_millis(500));
    let mut tasks = Vec::new();
    for n in 0..120i32 {
        let limits = limits.clone();
        if n % 3 == 0 {
            let (c, export) = hostile[(n as usize / 3) % hostile.len()].clone();
            tasks.push(tokio::spawn(async move {
                let mut i = c.instantiate(&limits).await.unwrap();
                let err = i.call(export, &[]).await.unwrap_err();
                assert!(err.is_runtime_error(), "{err:?}");
                None
            }));
        } else {
            let c = good.clone();
            tasks.push(tokio::spawn(async move {
                let mut i = c.instantiate(&limits).await.unwrap();
                let out = i.call("double", &[Val::S32(n)]).await.unwrap();
                assert_eq!(out.results, vec![Val::S32(2 * n)]);
                Some(n)
            }));
        }
    }
    let t = Instant::now();
    let mut good_done = 0;
    for task in tasks {
        if task.await.unwrap().is_some() {
            good_done += 1;
        }
    }
    assert_eq!(good_done, 80);
    assert!(t.elapsed() < Duration::from_secs(60));
}

#[tokio::test]
async fn typed_handles_call_without_lookup_and_refuse_other_instances() {
    let engine = WasmEngine::new().unwrap();
    let hello = compile(&engine, "hello", fx::HELLO);
    let mut a = hello.instantiate(&roomy()).await.unwrap();
    let mut b = hello.instantiate(&roomy()).await.unwrap();
    let double = a.typed_export::<(i32,), (i32,)>("double").unwrap();
    assert_eq!(double.export(), "double");
    for x in [0, 1, 21, -4] {
        let ((y,), report) = a.call_export(&double, (x,)).await.unwrap();
        assert_eq!(y, 2 * x);
        assert!(report.fuel_consumed > 0);
    }
    let err = b.call_export(&double, (1,)).await.unwrap_err();
    assert!(matches!(err, WasmError::InvalidArguments { .. }), "{err}");
    assert!(err.to_string().contains("another instance"), "{err}");
    assert!(b.poisoned().is_none(), "a usage error does not poison");

    let err = a.typed_export::<(String,), (i32,)>("double").unwrap_err();
    assert!(matches!(err, WasmError::InvalidArguments { .. }), "{err}");
    let err = a.typed_export::<(), ()>("nope").unwrap_err();
    assert!(matches!(err, WasmError::ExportNotFound { .. }), "{err}");
}

#[tokio::test]
async fn typed_calls_by_name_refuse_mismatched_types_also_after_a_match() {
    let engine = WasmEngine::new().unwrap();
    let hello = compile(&engine, "hello", fx::HELLO);
    let mut i = hello.instantiate(&roomy()).await.unwrap();
    for x in [3, -7] {
        let ((y,), _) = i
            .call_typed::<(i32,), (i32,)>("double", (x,))
            .await
            .unwrap();
        assert_eq!(y, 2 * x);
    }
    // Other parameter types, then other result types, for the export whose types
    // matched just before: each is checked, and refused.
    let err = i
        .call_typed::<(u32,), (i32,)>("double", (3,))
        .await
        .unwrap_err();
    assert!(matches!(err, WasmError::InvalidArguments { .. }), "{err}");
    let err = i
        .call_typed::<(i32,), (i64,)>("double", (3,))
        .await
        .unwrap_err();
    assert!(matches!(err, WasmError::InvalidArguments { .. }), "{err}");
    let err = i.typed_export::<(i32,), ()>("double").unwrap_err();
    assert!(err.to_string().contains("func(x: s32) -> s32"), "{err}");
    assert!(i.poisoned().is_none());
    let ((y,), _) = i
        .call_typed::<(i32,), (i32,)>("double", (21,))
        .await
        .unwrap();
    assert_eq!(y, 42);

    // Borrowed parameters of different lifetimes are one Rust type to the check.
    let greet = compile(&engine, "greet", fx::GREET);
    let mut g = greet.instantiate(&roomy()).await.unwrap();
    for k in 0..3 {
        let name = format!("guest {k}");
        let ((s,), _) = g
            .call_typed::<(&str,), (String,)>("greet", (name.as_str(),))
            .await
            .unwrap();
        assert_eq!(s, format!("Hello, guest {k}!"));
    }
    let err = g
        .call_typed::<(String,), (i32,)>("greet", ("x".into(),))
        .await
        .unwrap_err();
    assert!(matches!(err, WasmError::InvalidArguments { .. }), "{err}");
}

/// Types checked in one instance are trusted in the component's other instances (the
/// export's type is the component's), and only those types.
#[tokio::test]
async fn types_checked_in_one_instance_serve_new_instances_and_only_those_types() {
    let engine = WasmEngine::new().unwrap();
    let hello = compile(&engine, "hello", fx::HELLO);
    let mut first = hello.instantiate(&roomy()).await.unwrap();
    let ((y,), _) = first
        .call_typed::<(i32,), (i32,)>("double", (4,))
        .await
        .unwrap();
    assert_eq!(y, 8);

    for x in [5, -6] {
        let mut fresh = hello.instantiate(&roomy()).await.unwrap();
        let ((y,), _) = fresh
            .call_typed::<(i32,), (i32,)>("double", (x,))
            .await
            .unwrap();
        assert_eq!(y, 2 * x);
        let handle = fresh.typed_export::<(i32,), (i32,)>("double").unwrap();
        let ((y,), _) = fresh.call_export(&handle, (x + 1,)).await.unwrap();
        assert_eq!(y, 2 * (x + 1));
    }

    // A new instance whose first typed call has other types is checked, and refused;
    // neither the refusal nor the earlier match leaks into another export.
    let mut fresh = hello.instantiate(&roomy()).await.unwrap();
    let err = fresh
        .call_typed::<(u32,), (u32,)>("double", (3,))
        .await
        .unwrap_err();
    assert!(matches!(err, WasmError::InvalidArguments { .. }), "{err}");
    let err = fresh.typed_export::<(i32,), (i32,)>("hello").unwrap_err();
    assert!(matches!(err, WasmError::InvalidArguments { .. }), "{err}");
    assert!(fresh.poisoned().is_none());
    let ((y,), _) = fresh
        .call_typed::<(i32,), (i32,)>("double", (21,))
        .await
        .unwrap();
    assert_eq!(y, 42);
}

#[tokio::test]
async fn call_into_writes_the_callers_slots_and_refuses_a_wrong_number() {
    let engine = WasmEngine::new().unwrap();
    let hello = compile(&engine, "hello", fx::HELLO);
    let mut i = hello.instantiate(&roomy()).await.unwrap();

    let mut results = [Val::Bool(false)];
    let report = i
        .call_into("double", &[Val::S32(21)], &mut results)
        .await
        .unwrap();
    assert_eq!(results, [Val::S32(42)]);
    assert!(report.fuel_consumed > 0);
    assert_eq!(&report, i.last_report());
    i.call_into("noop", &[], &mut []).await.unwrap();

    for slots in [0, 2] {
        let mut results = vec![Val::Bool(false); slots];
        let err = i
            .call_into("double", &[Val::S32(21)], &mut results)
            .await
            .unwrap_err();
        assert!(err.is_usage_error(), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&format!("expected 1, got {slots}")), "{msg}");
        assert!(msg.contains("func(x: s32) -> s32"), "{msg}");
    }
    let err = i.call_into("nope", &[], &mut []).await.unwrap_err();
    assert!(matches!(err, WasmError::ExportNotFound { .. }), "{err}");
    let err = i.call_into("double", &[], &mut results).await.unwrap_err();
    assert!(
        err.to_string().contains("expected 1 argument(s), got 0"),
        "{err}"
    );
    assert!(i.poisoned().is_none(), "usage errors do not poison");

    // A trap through call_into poisons, as through call.
    let boom = compile(&engine, "boom", fx::UNREACHABLE);
    let mut b = boom.instantiate(&roomy()).await.unwrap();
    let err = b.call_into("boom", &[], &mut []).await.unwrap_err();
    assert!(err.is_runtime_error(), "{err:?}");
    assert!(b.poisoned().is_some());
    let err = b.call_into("boom", &[], &mut []).await.unwrap_err();
    assert!(matches!(err, WasmError::InstancePoisoned { .. }), "{err}");
}

/// A component exporting `k0`..`k{n-1}` (each returning its number) and an interface
/// `my:pkg/math` with `add` and `sub`.
fn many_exports(n: usize) -> Vec<u8> {
    let core: String = (0..n)
        .map(|k| format!(r#"(func (export "k{k}") (result i32) i32.const {k})"#))
        .collect();
    let lifted: String = (0..n)
        .map(|k| {
            format!(r#"(func (export "k{k}") (result s32) (canon lift (core func $i "k{k}")))"#)
        })
        .collect();
    wat::parse_str(format!(
        r#"(component
          (core module $m
            (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
            (func (export "sub") (param i32 i32) (result i32) local.get 0 local.get 1 i32.sub)
            {core})
          (core instance $i (instantiate $m))
          (func $add (param "a" s32) (param "b" s32) (result s32) (canon lift (core func $i "add")))
          (func $sub (param "a" s32) (param "b" s32) (result s32) (canon lift (core func $i "sub")))
          (instance $math (export "add" (func $add)) (export "sub" (func $sub)))
          (export "my:pkg/math" (instance $math))
          {lifted})"#
    ))
    .unwrap()
}

#[tokio::test]
async fn every_listed_function_is_callable_by_its_listed_name_and_nothing_else_is() {
    let engine = WasmEngine::new().unwrap();
    // More exports than an instance compares names for before it indexes them.
    let c = compile(&engine, "many", &many_exports(20));
    let funcs: Vec<String> = c
        .exports()
        .iter()
        .filter(|e| e.is_func)
        .map(|e| e.name.clone())
        .collect();
    assert_eq!(funcs.len(), 22, "{funcs:?}");
    assert!(funcs.contains(&"my:pkg/math#add".to_owned()), "{funcs:?}");

    let expected = |name: &str| -> i32 {
        match name {
            "my:pkg/math#add" => 7 + 2,
            "my:pkg/math#sub" => 7 - 2,
            k => k.trim_start_matches('k').parse().unwrap(),
        }
    };
    let args = |name: &str| -> Vec<Val> {
        if name.contains('#') {
            vec![Val::S32(7), Val::S32(2)]
        } else {
            Vec::new()
        }
    };
    // Two instances, each calling every export in two orders, by every kind of call:
    // each name reaches its own function, whichever was resolved first.
    for round in 0..2 {
        let mut i = c.instantiate(&roomy()).await.unwrap();
        let order: Vec<&String> = if round == 0 {
            funcs.iter().collect()
        } else {
            funcs.iter().rev().collect()
        };
        for name in order.iter().chain(order.iter().rev()) {
            let out = i.call(name, &args(name)).await.unwrap();
            assert_eq!(out.results, vec![Val::S32(expected(name))], "{name}");
            if !name.contains('#') {
                let ((v,), _) = i.call_typed::<(), (i32,)>(name, ()).await.unwrap();
                assert_eq!(v, expected(name), "{name}");
            }
        }
        let ((v,), _) = i
            .call_typed::<(i32, i32), (i32,)>("my:pkg/math#sub", (7, 2))
            .await
            .unwrap();
        assert_eq!(v, 5);
        let out = i.invoke("my:pkg/math#add(40, 2)").await.unwrap();
        assert_eq!(out.results, vec![Val::S32(42)]);

        // The interface itself, names inside it spelled wrong, and names that only
        // look qualified are not functions.
        for name in [
            "my:pkg/math",
            "my:pkg/math#",
            "my:pkg/math#mul",
            "my:pkg/other#add",
            "k3#add",
            "add",
            "k20",
        ] {
            let err = i.call(name, &[]).await.unwrap_err();
            assert!(
                matches!(err, WasmError::ExportNotFound { .. }),
                "{name}: {err}"
            );
            assert!(err.to_string().contains("my:pkg/math#add"), "{err}");
        }
        assert!(i.poisoned().is_none());
    }
    assert!(c.command_export().is_none());
}

/// A component with `spin()` (never returns; the guest keeps a counter in its memory
/// that it bumps each round) and `counter()`.
const SPIN_AND_COUNT: &str = r#"(component
  (core module $m
    (memory (export "mem") 1)
    (func (export "spin") (loop $l
      (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
      (br $l)))
    (func (export "counter") (result i32) (i32.load (i32.const 0))))
  (core instance $i (instantiate $m))
  (func (export "spin") (canon lift (core func $i "spin")))
  (func (export "counter") (result s32) (canon lift (core func $i "counter"))))"#;

#[tokio::test]
async fn a_call_the_caller_abandons_poisons_the_instance_and_nothing_else() {
    let engine = WasmEngine::new().unwrap();
    let c = compile(&engine, "spinner", &wat::parse_str(SPIN_AND_COUNT).unwrap());
    // Limits far away: only the caller stops this call.
    let limits = || sandbox(MIB, u64::MAX / 2, Duration::from_secs(3600));
    let mut i = c.instantiate(&limits()).await.unwrap();
    let ((v,), _) = i.call_typed::<(), (i32,)>("counter", ()).await.unwrap();
    assert_eq!(v, 0);
    assert!(i.poisoned().is_none());

    // The guest yields at every epoch tick, so the caller's own timeout can drop the
    // call midway, its counter half counted.
    let started = Instant::now();
    let abandoned = tokio::time::timeout(Duration::from_millis(30), i.call("spin", &[])).await;
    assert!(abandoned.is_err(), "spin() returned: {abandoned:?}");
    assert!(started.elapsed() < GROSS);

    // The instance says so at once, and refuses every kind of call with the reason.
    let cause = i.poisoned().expect("poisoned").to_owned();
    assert!(cause.contains("cancelled before it finished"), "{cause}");
    let err = i.call("counter", &[]).await.unwrap_err();
    assert!(matches!(err, WasmError::InstancePoisoned { .. }), "{err}");
    assert!(
        err.to_string().contains("cancelled before it finished"),
        "{err}"
    );
    assert!(err.to_string().contains("spinner"), "{err}");
    let err = i.call_typed::<(), (i32,)>("counter", ()).await.unwrap_err();
    assert!(matches!(err, WasmError::InstancePoisoned { .. }), "{err}");
    let err = i.invoke("counter()").await.unwrap_err();
    assert!(matches!(err, WasmError::InstancePoisoned { .. }), "{err}");

    // A handle made before the cancellation is refused too.
    let mut j = c.instantiate(&limits()).await.unwrap();
    let counter = j.typed_export::<(), (i32,)>("counter").unwrap();
    let spin = j.typed_export::<(), ()>("spin").unwrap();
    let abandoned = tokio::time::timeout(Duration::from_millis(30), j.call_export(&spin, ())).await;
    assert!(abandoned.is_err());
    let err = j.call_export(&counter, ()).await.unwrap_err();
    assert!(matches!(err, WasmError::InstancePoisoned { .. }), "{err}");

    // Another instance of the same component starts afresh and runs to the end.
    let mut k = c.instantiate(&limits()).await.unwrap();
    let ((v,), _) = k.call_typed::<(), (i32,)>("counter", ()).await.unwrap();
    assert_eq!(v, 0);
    assert!(k.poisoned().is_none());
    still_healthy(&engine).await;
}

#[tokio::test]
async fn a_call_that_ends_by_itself_leaves_the_instance_usable_however_it_ended() {
    let engine = WasmEngine::new().unwrap();
    let c = compile(&engine, "spinner", &wat::parse_str(SPIN_AND_COUNT).unwrap());
    let mut i = c.instantiate(&roomy()).await.unwrap();
    // Finished calls, and a usage error, are not mistaken for abandoned ones.
    for _ in 0..3 {
        i.call("counter", &[]).await.unwrap();
    }
    assert!(i.call("nope", &[]).await.is_err());
    assert!(i.poisoned().is_none());
    i.call("counter", &[]).await.unwrap();
    // A call the engine stops (here, out of fuel) poisons with its own reason.
    let mut j = c
        .instantiate(&sandbox(MIB, 10_000, Duration::from_secs(5)))
        .await
        .unwrap();
    let err = j.call("spin", &[]).await.unwrap_err();
    assert!(matches!(err, WasmError::FuelExhausted { .. }), "{err}");
    let cause = j.poisoned().expect("poisoned");
    assert!(!cause.contains("cancelled"), "{cause}");
}
