//! Soak: thousands of loads (through the artifact cache), instantiations and calls
//! mixing good and hostile guests on a multi-threaded runtime. Nothing may crash, every
//! result must be right, and resident memory and open file descriptors must stay flat.
//!
//! Ignored by default (it runs for a while): `cargo xtask soak`, or
//! `cargo test --release -p airssys-wasm-loader --test soak -- --ignored --nocapture`.
//! `AIRSSYS_SOAK_ROUNDS` sets the number of rounds (default 20 000; each round is one of
//! the scenarios below).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use airssys_wasm_core::{CapabilitySet, ResourceLimits, WasmError};
use airssys_wasm_engine::{CompiledComponent, Sandbox, WasmEngine};
use airssys_wasm_loader::{CacheConfig, ComponentLoader, LoadOptions, Source};
use airssys_wasm_testkit::{self as fx, guests};

const MIB: u64 = 1 << 20;

/// Resident set size in bytes, from `/proc/self/statm`.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

fn limits(memory: u64, fuel: u64, timeout: Duration) -> Sandbox {
    Sandbox::new(ResourceLimits::new(memory, fuel, timeout).unwrap())
}

struct Components {
    hello: CompiledComponent,
    calc: CompiledComponent,
    cli_hello: CompiledComponent,
    hostile: CompiledComponent,
    infinite_loop: CompiledComponent,
    memory_bomb: CompiledComponent,
    unreachable: CompiledComponent,
    recursion: CompiledComponent,
}

/// One scenario; returns what went wrong, if anything.
async fn scenario(round: usize, c: &Components, loader: &ComponentLoader) -> Result<(), String> {
    let roomy = || limits(64 * MIB, 1_000_000_000, Duration::from_secs(10));
    match round % 10 {
        0 => {
            let mut i = c
                .hello
                .instantiate(&roomy())
                .await
                .map_err(|e| e.to_string())?;
            let ((v,), _) = i
                .call_typed::<(i32,), (i32,)>("double", (21,))
                .await
                .map_err(|e| e.to_string())?;
            (v == 42).then_some(()).ok_or(format!("double(21) = {v}"))
        }
        1 => {
            let mut i = c
                .calc
                .instantiate(&roomy())
                .await
                .map_err(|e| e.to_string())?;
            let out = i
                .invoke("greet(\"soak\")")
                .await
                .map_err(|e| e.to_string())?;
            let got = out.results_wave().map_err(|e| e.to_string())?;
            (got == ["\"Hello, soak!\""])
                .then_some(())
                .ok_or(format!("{got:?}"))
        }
        2 => {
            let sandbox = roomy()
                .with_capabilities(CapabilitySet::default())
                .with_args(["cli-hello", "x"])
                .capture_output(4096);
            let mut i = c
                .cli_hello
                .instantiate(&sandbox)
                .await
                .map_err(|e| e.to_string())?;
            let (code, _) = i.run_command().await.map_err(|e| e.to_string())?;
            let out =
                String::from_utf8(i.captured_stdout().unwrap_or_default()).unwrap_or_default();
            (code == 0 && out.contains("arg[1] = x"))
                .then_some(())
                .ok_or(format!("{code} {out:?}"))
        }
        3 => {
            let mut i = c
                .infinite_loop
                .instantiate(&limits(MIB, 100_000, Duration::from_secs(10)))
                .await
                .map_err(|e| e.to_string())?;
            match i.call("spin", &[]).await {
                Err(WasmError::FuelExhausted { .. }) => Ok(()),
                other => Err(format!("spin with little fuel: {other:?}")),
            }
        }
        4 => {
            let mut i = c
                .infinite_loop
                .instantiate(&limits(MIB, u64::MAX, Duration::from_millis(20)))
                .await
                .map_err(|e| e.to_string())?;
            match i.call("spin", &[]).await {
                Err(WasmError::ComponentTimeout { .. }) => Ok(()),
                other => Err(format!("spin with a 20ms timeout: {other:?}")),
            }
        }
        5 => {
            let mut i = c
                .memory_bomb
                .instantiate(&limits(2 * MIB, 1_000_000_000, Duration::from_secs(10)))
                .await
                .map_err(|e| e.to_string())?;
            match i.call("bomb", &[]).await {
                Err(WasmError::MemoryLimitExceeded { .. }) => Ok(()),
                other => Err(format!("memory bomb: {other:?}")),
            }
        }
        6 => {
            let mut i = c
                .unreachable
                .instantiate(&roomy())
                .await
                .map_err(|e| e.to_string())?;
            match i.call("boom", &[]).await {
                Err(WasmError::ComponentTrapped { .. }) => {}
                other => return Err(format!("unreachable: {other:?}")),
            }
            match i.call("boom", &[]).await {
                Err(WasmError::InstancePoisoned { .. }) => Ok(()),
                other => Err(format!("poisoned instance: {other:?}")),
            }
        }
        7 => {
            let mut i = c
                .recursion
                .instantiate(&roomy())
                .await
                .map_err(|e| e.to_string())?;
            match i.call("recurse", &[]).await {
                Err(WasmError::ComponentTrapped { reason, .. })
                    if reason.contains("stack overflow") =>
                {
                    Ok(())
                }
                other => Err(format!("recursion: {other:?}")),
            }
        }
        8 => {
            let sandbox = limits(16 * MIB, 1_000_000_000, Duration::from_secs(10))
                .with_args(["hostile", "alloc-bomb"])
                .capture_output(4096);
            let mut i = c
                .hostile
                .instantiate(&sandbox)
                .await
                .map_err(|e| e.to_string())?;
            match i.run_command().await {
                Err(WasmError::MemoryLimitExceeded { .. }) => Ok(()),
                other => Err(format!("alloc bomb: {other:?}")),
            }
        }
        _ => {
            // Through the artifact cache: a hit, and a working component.
            let component = loader
                .load(Source::Bytes(fx::HELLO), &LoadOptions::named("hello"))
                .await
                .map(|l| l.component)
                .map_err(|e| e.to_string())?;
            let mut i = component
                .instantiate(&roomy())
                .await
                .map_err(|e| e.to_string())?;
            let ((v,), _) = i
                .call_typed::<(), (i32,)>("hello", ())
                .await
                .map_err(|e| e.to_string())?;
            (v == 42).then_some(()).ok_or(format!("hello() = {v}"))
        }
    }
}

#[test]
#[ignore = "long-running; run with `cargo xtask soak`"]
fn soak() {
    let rounds: usize = std::env::var("AIRSSYS_SOAK_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let engine = WasmEngine::new().unwrap();
    let loader = ComponentLoader::new(&engine).with_cache(CacheConfig::new(cache.path()));
    let load = |name: &str, wasm: &[u8]| {
        rt.block_on(loader.load(Source::Bytes(wasm), &LoadOptions::named(name)))
            .unwrap()
            .component
    };
    let c = Arc::new(Components {
        hello: load("hello", fx::HELLO),
        calc: load("calc", guests::CALC),
        cli_hello: load("cli-hello", guests::CLI_HELLO),
        hostile: load("hostile", guests::HOSTILE),
        infinite_loop: load("infinite_loop", fx::INFINITE_LOOP),
        memory_bomb: load("memory_bomb", fx::MEMORY_BOMB),
        unreachable: load("unreachable", fx::UNREACHABLE),
        recursion: load("recursion", fx::RECURSION),
    });

    let batch = 50;
    let started = Instant::now();
    let mut baseline = None;
    let mut done = 0;
    while done < rounds {
        let tasks: Vec<_> = (done..(done + batch).min(rounds))
            .map(|round| {
                let (c, loader) = (Arc::clone(&c), loader.clone());
                rt.spawn(async move { (round, scenario(round, &c, &loader).await) })
            })
            .collect();
        for t in tasks {
            let (round, result) = rt.block_on(t).expect("a scenario panicked");
            if let Err(e) = result {
                panic!("round {round} (scenario {}): {e}", round % 10);
            }
        }
        done = (done + batch).min(rounds);
        // The baseline is taken once everything is warm: after a tenth of the rounds.
        if baseline.is_none() && done >= rounds / 10 {
            baseline = Some((rss(), open_fds()));
        }
    }
    let (rss0, fds0) = baseline.unwrap_or((rss(), open_fds()));
    let (rss1, fds1) = (rss(), open_fds());
    let elapsed = started.elapsed();
    println!(
        "soak: {rounds} rounds in {elapsed:.1?} ({:.0} rounds/s); resident memory {} MiB -> {} MiB; \
         open fds {fds0} -> {fds1}",
        rounds as f64 / elapsed.as_secs_f64(),
        rss0 / MIB,
        rss1 / MIB
    );
    assert!(fds1 <= fds0 + 4, "file descriptors leak: {fds0} -> {fds1}");
    assert!(
        rss1 <= rss0 + rss0 / 4 + 32 * MIB,
        "resident memory grows: {} MiB -> {} MiB",
        rss0 / MIB,
        rss1 / MIB
    );
}
