//! The seed's loading scenarios, and bad input for every public entry point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use airssys_wasm_core::{ResourceLimits, WasmError};
use airssys_wasm_engine::{Sandbox, Val, WasmEngine};
use airssys_wasm_loader::{ComponentLoader, LoadOptions, Source};
use airssys_wasm_testkit as fx;
use proptest::prelude::*;

fn loader() -> ComponentLoader {
    ComponentLoader::new(&WasmEngine::new().unwrap())
}

#[tokio::test]
async fn load_valid_file_and_hello_executes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hello.wasm");
    std::fs::write(&path, fx::HELLO).unwrap();
    let component = loader().load_from_file(&path).await.unwrap();
    assert_eq!(component.name(), "hello.wasm");
    let limits = ResourceLimits::new(1 << 20, 1_000_000, Duration::from_secs(1)).unwrap();
    let mut i = component.instantiate(&Sandbox::new(limits)).await.unwrap();
    assert_eq!(
        i.call("hello", &[]).await.unwrap().results,
        vec![Val::S32(42)]
    );
}

#[tokio::test]
async fn load_wat_file() {
    let path = fx::fixtures_dir().join("hello.wat");
    let component = loader().load_from_file(&path).await.unwrap();
    assert!(
        component
            .export_signatures()
            .contains(&"hello: func() -> s32".to_owned())
    );
}

#[tokio::test]
async fn missing_file_is_a_load_error_naming_the_path() {
    let err = loader()
        .load_from_file("does/not/exist.wasm")
        .await
        .unwrap_err();
    assert!(
        matches!(err, WasmError::ComponentLoadFailed { .. }),
        "{err:?}"
    );
    assert!(err.is_load_error());
    let msg = err.to_string();
    assert!(
        msg.contains("does/not/exist.wasm") && msg.contains("no such file"),
        "{msg}"
    );
    let err = loader()
        .validate_file("does/not/exist.wasm")
        .await
        .unwrap_err();
    assert!(
        matches!(err, WasmError::ComponentLoadFailed { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_directory_is_not_a_component() {
    let dir = tempfile::tempdir().unwrap();
    let err = loader().load_from_file(dir.path()).await.unwrap_err();
    assert!(err.to_string().contains("directory"), "{err}");
}

#[tokio::test]
async fn valid_bytes_validate_and_load() {
    let l = loader();
    for f in fx::ALL
        .iter()
        .filter(|f| f.name != "core_module" && f.name != "shared_memory")
    {
        l.validate(f.wasm)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", f.name));
        l.validate(f.wat.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", f.name));
        l.load_from_bytes(f.wasm)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", f.name));
    }
}

#[tokio::test]
async fn a_component_needing_threads_is_refused_at_validation_naming_the_feature() {
    let l = loader();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shared.wasm");
    std::fs::write(&file, fx::SHARED_MEMORY).unwrap();
    let errors = [
        l.validate(fx::SHARED_MEMORY).await.unwrap_err(),
        l.load_from_bytes(fx::SHARED_MEMORY).await.unwrap_err(),
        l.load_from_file(&file).await.unwrap_err(),
    ];
    for err in errors {
        assert!(err.is_load_error(), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("threads"), "{msg}");
        assert!(msg.contains("never enables"), "{msg}");
    }
}

#[tokio::test]
async fn wasm_3_components_validate_and_load_by_default() {
    let l = loader();
    for wasm in [fx::GC_ALLOC, fx::EXCEPTIONS] {
        l.validate(wasm).await.unwrap();
        l.load_from_bytes(wasm).await.unwrap();
    }
}

#[tokio::test]
async fn invalid_bytes_are_rejected_by_every_entry_point() {
    let l = loader();
    let cases: &[(&str, &[u8])] = &[
        ("empty", b""),
        ("seed's bad magic", &[0x00, 0x61, 0x73, 0x6d]),
        ("garbage", b"\x7fELF\x02\x01\x01"),
        ("text that is not wat", b"hello world"),
        ("bad version", b"\0asm\x02\x00\x00\x00"),
        ("truncated component", &fx::HELLO[..fx::HELLO.len() / 2]),
        ("wat that does not parse", b"(component (func $f (oops)))"),
        (
            "invalid component",
            b"(component (core module $m (func (result i32))))",
        ),
    ];
    for (what, bytes) in cases {
        let e1 = l.validate(bytes).await.unwrap_err();
        let e2 = l.load_from_bytes(bytes).await.unwrap_err();
        let e3 = l
            .load(Source::Bytes(bytes), &LoadOptions::named("named"))
            .await
            .map(|l| l.component)
            .unwrap_err();
        for e in [&e1, &e2, &e3] {
            assert!(e.is_load_error(), "{what}: {e:?}");
        }
        assert!(e3.to_string().contains("`named`"), "{what}: {e3}");
    }
}

#[tokio::test]
async fn invalid_component_reports_the_validator_message() {
    let err = loader()
        .validate(b"(component (core module $m (func (result i32))))")
        .await
        .unwrap_err();
    assert!(
        matches!(err, WasmError::ComponentValidationFailed { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("type mismatch"), "{err}");
}

#[tokio::test]
async fn a_core_module_is_refused_with_what_to_do() {
    let l = loader();
    for err in [
        l.validate(fx::CORE_MODULE).await.unwrap_err(),
        l.load_from_bytes(fx::CORE_MODULE).await.unwrap_err(),
    ] {
        assert!(
            matches!(err, WasmError::ComponentValidationFailed { .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("core WebAssembly module, not a component"),
            "{msg}"
        );
        assert!(
            msg.contains("wasm-tools component new") && msg.contains("wasm32-wasip2"),
            "{msg}"
        );
    }
}

#[tokio::test]
async fn validation_agrees_with_compilation() {
    // The validator uses the engine's features: whatever validates compiles and
    // whatever compiles validates, on fixtures and on a feature the engine lacks.
    let l = loader();
    let threads = br#"(component (core module $m (memory 1 1 shared)))"#;
    assert!(l.validate(threads).await.is_err());
    assert!(l.load_from_bytes(threads).await.is_err());
    let multi_memory = fx::MULTI_MEMORY;
    assert!(l.validate(multi_memory).await.is_ok());
    assert!(l.load_from_bytes(multi_memory).await.is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_the_validator(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let l = loader();
        let r = l.validate_blocking("fuzz", &bytes);
        if let Err(e) = r {
            prop_assert!(e.is_load_error(), "{e:?}");
        }
    }

    #[test]
    fn mutated_components_never_panic_the_validator(
        which in 0..fx::ALL.len(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = fx::ALL[which].wasm.to_vec();
        for (at, v) in flips {
            let n = bytes.len();
            bytes[at % n] = v;
        }
        if let Err(e) = loader().validate_blocking("mutant", &bytes) {
            prop_assert!(e.is_load_error(), "{e:?}");
        }
    }
}

/// Other tasks keep running while a component compiles (about 30 ms for the Rust
/// guest): counts the ticks of a 1 ms interval task during a load.
async fn ticks_during_a_compile() -> u64 {
    let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = std::sync::Arc::clone(&ticks);
    let ticker = tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_millis(1));
        // After a stall, one tick, not a burst of the missed ones.
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            every.tick().await;
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    tokio::task::yield_now().await;
    let before = ticks.load(std::sync::atomic::Ordering::Relaxed);
    // On a worker thread, as a server's tasks are (not in `block_on`).
    tokio::spawn(async {
        loader()
            .load_from_bytes(airssys_wasm_testkit::guests::CALC)
            .await
            .unwrap()
    })
    .await
    .unwrap();
    let during = ticks.load(std::sync::atomic::Ordering::Relaxed) - before;
    ticker.abort();
    during
}

#[tokio::test(flavor = "current_thread")]
async fn compiling_does_not_stall_a_current_thread_runtime() {
    let during = ticks_during_a_compile().await;
    assert!(during >= 3, "only {during} ticks while compiling");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn compiling_does_not_stall_a_multi_thread_runtime() {
    let during = ticks_during_a_compile().await;
    assert!(during >= 3, "only {during} ticks while compiling");
}
