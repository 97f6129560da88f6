//! The dense layout (`WasmEngineBuilder::density`): tens of thousands of live
//! instances, each with its own state and no mapping of its own; memory given back on
//! drop and reused zeroed; memory bounds exact although the slots are readable beyond
//! them; fiber stacks shared out under concurrency; and the kernel's limits, met by the
//! default layout, reported as what they are while the process carries on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use airssys_wasm_core::{ResourceLimits, WasmError};
use airssys_wasm_engine::{
    CompiledComponent, ComponentInstance, Density, Pooling, Sandbox, WasmEngine,
};
use airssys_wasm_testkit::guests;

const MIB: u64 = 1 << 20;

fn compile(engine: &WasmEngine, name: &str, wasm: &[u8]) -> CompiledComponent {
    let c = wasmtime::component::Component::new(engine.wasmtime_engine(), wasm).unwrap();
    CompiledComponent::new(engine, name, c).unwrap()
}

fn limits(memory: u64) -> ResourceLimits {
    ResourceLimits::new(memory, 1_000_000_000, Duration::from_secs(30)).unwrap()
}

fn dense(memory: u64) -> WasmEngine {
    WasmEngine::builder()
        .density(Density::for_limits(&limits(memory)))
        .build()
        .unwrap()
}

/// Resident bytes and mappings of this process.
fn usage() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024;
    let maps = std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count() as u64;
    (rss, maps)
}

async fn bump(i: &mut ComponentInstance) -> u64 {
    i.call_typed::<(), (u64,)>("bump", ()).await.unwrap().0.0
}

#[tokio::test(flavor = "current_thread")]
async fn twenty_thousand_live_instances_keep_their_own_counters_and_give_memory_back() {
    const N: usize = 20_000;
    let engine = dense(8 * MIB);
    let calc = compile(&engine, "calc", guests::CALC);
    let sandbox = Sandbox::new(limits(8 * MIB));
    drop(calc.instantiate(&sandbox).await.unwrap());
    let (rss0, maps0) = usage();

    let mut held = Vec::with_capacity(N);
    for _ in 0..N {
        let mut i = calc.instantiate(&sandbox).await.unwrap();
        assert_eq!(bump(&mut i).await, 1);
        held.push(i);
    }
    let (rss1, maps1) = usage();
    // Saturating: tests beside this one (the concurrent calls') map and unmap too, so
    // the count may even have fallen.
    let added = maps1.saturating_sub(maps0);
    // Default layout: ~7 mappings each, 140,000 in all, past vm.max_map_count.
    assert!(added < 1_000, "{N} live instances added {} mappings", added);
    // Each counts only its own calls: instance i is called i % 3 more times.
    for (n, i) in held.iter_mut().enumerate() {
        for _ in 0..n % 3 {
            bump(i).await;
        }
    }
    for (n, i) in held.iter_mut().enumerate() {
        assert_eq!(bump(i).await, 2 + (n % 3) as u64, "instance {n}");
    }
    drop(held);

    // The same number again reuses what the first gave back: each memory is zero
    // again (a fresh counter says 1, not a predecessor's 3 or 4), and the process
    // does not grow by another round's worth.
    let mut held = Vec::with_capacity(N);
    for _ in 0..N {
        let mut i = calc.instantiate(&sandbox).await.unwrap();
        assert_eq!(
            bump(&mut i).await,
            1,
            "a reused memory slot kept old contents"
        );
        held.push(i);
    }
    let (rss2, _) = usage();
    let round = rss1.saturating_sub(rss0);
    assert!(
        rss2.saturating_sub(rss0) <= round + round / 4,
        "second round grew the process to {} MiB over the start, the first to {} MiB",
        rss2.saturating_sub(rss0) / MIB,
        round / MIB
    );
}

/// A component whose one-page memory the caller can read, write and grow.
const PEEK_POKE: &str = r#"(component
  (core module $m
    (memory 1)
    (func (export "peek") (param i32) (result i32) local.get 0 i32.load8_u)
    (func (export "poke") (param i32 i32) local.get 0 local.get 1 i32.store8)
    (func (export "grow") (result i32) i32.const 1 memory.grow))
  (core instance $i (instantiate $m))
  (func (export "peek") (param "at" u32) (result u32) (canon lift (core func $i "peek")))
  (func (export "poke") (param "at" u32) (param "value" u32) (canon lift (core func $i "poke")))
  (func (export "grow") (result s32) (canon lift (core func $i "grow"))))"#;

/// The byte at `at` of `i`'s memory, or the call's error.
async fn peek(i: &mut ComponentInstance, at: u32) -> Result<u32, WasmError> {
    i.call_typed::<(u32,), (u32,)>("peek", (at,))
        .await
        .map(|((v,), _)| v)
}

/// `memory.grow` by one page: the old size in pages, or -1.
async fn grow(i: &mut ComponentInstance) -> Result<i32, WasmError> {
    i.call_typed::<(), (i32,)>("grow", ())
        .await
        .map(|((v,), _)| v)
}

#[tokio::test]
async fn bounds_are_the_memory_size_not_the_slot_and_neighbours_are_apart() {
    let engine = dense(MIB);
    let wasm = wat::parse_str(PEEK_POKE).unwrap();
    let c = compile(&engine, "peek-poke", &wasm);
    let sandbox = Sandbox::new(limits(MIB));
    let mut a = c.instantiate(&sandbox).await.unwrap();
    let mut b = c.instantiate(&sandbox).await.unwrap();
    a.call_typed::<(u32, u32), ()>("poke", (65_535, 7))
        .await
        .unwrap();
    assert_eq!(peek(&mut a, 65_535).await.unwrap(), 7);
    assert_eq!(peek(&mut b, 65_535).await.unwrap(), 0);
    // One byte past the memory's size: the slot is readable there, the guest is not.
    let err = peek(&mut b, 65_536).await.unwrap_err();
    assert!(
        err.is_trap() && err.to_string().contains("out of bounds"),
        "{err}"
    );
    let err = a
        .call_typed::<(u32, u32), ()>("poke", (70_000, 1))
        .await
        .unwrap_err();
    assert!(err.is_trap(), "{err}");
    // Grown, the next page is there, and zero.
    let mut c2 = c.instantiate(&sandbox).await.unwrap();
    assert_eq!(grow(&mut c2).await.unwrap(), 1);
    assert_eq!(peek(&mut c2, 65_536).await.unwrap(), 0);
    let err = peek(&mut c2, 131_072).await.unwrap_err();
    assert!(err.is_trap(), "{err}");
    // Up to the memory limit (16 pages of 1 MiB), and no further: the slot's end.
    let mut d = c.instantiate(&sandbox).await.unwrap();
    for _ in 1..16 {
        assert!(grow(&mut d).await.unwrap() > 0);
    }
    let err = grow(&mut d).await;
    assert!(
        matches!(err, Ok(-1) | Err(WasmError::MemoryLimitExceeded { .. })),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_suspended_mid_guest_share_out_stacks_safely() {
    // 300 instances, each computing while others are suspended at fuel yields: more
    // than the warm stacks (8 here), so stacks go cold and warm while others run.
    let engine = WasmEngine::builder()
        .density(Density::for_limits(&limits(8 * MIB)).with_warm_stacks(8))
        .fuel_yield_interval(10_000)
        .build()
        .unwrap();
    let calc = compile(&engine, "calc", guests::CALC);
    let sandbox = Sandbox::new(limits(8 * MIB));
    let mut tasks = Vec::new();
    for n in 0..300u32 {
        let calc = calc.clone();
        let sandbox = sandbox.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = calc.instantiate(&sandbox).await.unwrap();
            let mut last = 0;
            for round in 0..3 {
                let ((v,), _) = i
                    .call_typed::<(u32,), (u64,)>("fib", (50_000 + n + round,))
                    .await
                    .unwrap();
                last = v;
            }
            assert_eq!(bump(&mut i).await, 1);
            (n, last)
        }));
    }
    for t in tasks {
        let (n, got) = t.await.unwrap();
        assert_eq!(got, fib(50_002 + n), "instance {n}");
    }
}

fn fib(n: u32) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        (a, b) = (b, a.wrapping_add(b));
    }
    a
}

#[tokio::test]
async fn a_memory_limit_larger_than_the_slot_is_refused_with_the_fix() {
    let engine = dense(8 * MIB);
    let calc = compile(&engine, "calc", guests::CALC);
    let err = calc
        .instantiate(&Sandbox::new(limits(16 * MIB)))
        .await
        .expect_err("refused");
    assert!(matches!(err, WasmError::InvalidLimits { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("calc") && text.contains("dense memory slots of 8388608"),
        "{text}"
    );
    let err = WasmEngine::builder()
        .density(Density::new(8 * MIB))
        .pooling(Pooling::for_limits(&limits(8 * MIB), 4))
        .build()
        .expect_err("one or the other");
    assert!(err.to_string().contains("choose one"), "{err}");
    let err = WasmEngine::builder()
        .density(Density::new(8 * MIB).with_warm_stacks(u32::MAX))
        .build()
        .expect_err("more warm stacks than mappings");
    assert!(err.to_string().contains("vm.max_map_count"), "{err}");
}

/// Instantiates `calc` on the default layout until refused (within 64), holding every
/// instance; the refusal must be `ResourceLimitExceeded` naming the dense layout as the
/// fix. Returns what it names and its limit, and the instances held.
async fn instantiate_until_refused(
    calc: &CompiledComponent,
    sandbox: &Sandbox,
) -> (String, u64, Vec<ComponentInstance>) {
    let mut held = Vec::new();
    let err = loop {
        match calc.instantiate(sandbox).await {
            Ok(i) => held.push(i),
            Err(e) => break e,
        }
        assert!(held.len() < 64, "{} instances and not refused", held.len());
    };
    let WasmError::ResourceLimitExceeded {
        resource, limit, ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert!(resource.contains("WasmEngineBuilder::density"), "{err}");
    (resource.clone(), *limit, held)
}

/// Runs the ignored test `name` alone in a child process (a limit it sets is the
/// process's) and fails with its output unless it passed.
fn run_child(name: &str) {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args(["--ignored", "--exact", name, "--nocapture"])
        .env("AIRSSYS_DENSITY_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// With `ulimit -v` at 48 GiB, the default layout (4 GiB and more reserved per memory)
/// runs out of address space after a few instances: the error says which limit and
/// what to do, and the process carries on — it instantiates again once some are
/// dropped.
#[test]
fn out_of_address_space_is_a_resource_limit_naming_it_and_the_process_carries_on() {
    run_child("address_space_child");
}

/// With the process's mappings a few short of `vm.max_map_count` (a region split into
/// thousands by alternating protections), the default layout's next instances meet the
/// bound: the error names `vm.max_map_count` and the fix, and once the region is gone
/// the process instantiates again.
#[test]
fn out_of_mappings_is_a_resource_limit_naming_vm_max_map_count_and_the_process_carries_on() {
    run_child("mappings_child");
}

#[test]
#[ignore = "the child of out_of_mappings_is_a_resource_limit_naming_vm_max_map_count_and_the_process_carries_on"]
fn mappings_child() {
    assert_eq!(std::env::var("AIRSSYS_DENSITY_CHILD").as_deref(), Ok("1"));
    let max: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let engine = WasmEngine::new().unwrap();
        let calc = compile(&engine, "calc", guests::CALC);
        let sandbox = Sandbox::new(limits(8 * MIB));
        drop(calc.instantiate(&sandbox).await.unwrap());
        // Every other page of a reserved region made accessible: two mappings each,
        // up to 40 short of the bound.
        let page = 4096;
        let (_, held) = usage();
        let splits = (max - held as usize - 40) / 2;
        let len = (2 * splits + 1) * page;
        // SAFETY: a fresh private mapping, then protection changes within it only.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        for k in 0..splits {
            let at = base as usize + (2 * k + 1) * page;
            // SAFETY: a page of the region above.
            let rc = unsafe { libc::mprotect(at as *mut libc::c_void, page, libc::PROT_READ) };
            assert_eq!(rc, 0, "split {k} of {splits}");
        }
        let (resource, limit, _held) = instantiate_until_refused(&calc, &sandbox).await;
        assert!(resource.contains("vm.max_map_count"), "{resource}");
        assert_eq!(limit, max as u64);
        // SAFETY: the region is ours and nothing uses it.
        unsafe { libc::munmap(base, len) };
        let mut again = calc.instantiate(&sandbox).await.unwrap();
        assert_eq!(bump(&mut again).await, 1);
    });
}

#[test]
#[ignore = "the child of out_of_address_space_is_a_resource_limit_naming_it_and_the_process_carries_on"]
fn address_space_child() {
    assert_eq!(std::env::var("AIRSSYS_DENSITY_CHILD").as_deref(), Ok("1"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let engine = WasmEngine::new().unwrap();
        let calc = compile(&engine, "calc", guests::CALC);
        let sandbox = Sandbox::new(limits(8 * MIB));
        let limit = libc::rlimit {
            rlim_cur: 48 << 30,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: `setrlimit` reads the struct it is given.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) }, 0);
        let (resource, limit, mut held) = instantiate_until_refused(&calc, &sandbox).await;
        assert!(resource.starts_with("address space"), "{resource}");
        assert_eq!(limit, 48 << 30);
        assert!(!held.is_empty());
        held.truncate(held.len() / 2);
        let mut again = calc.instantiate(&sandbox).await.unwrap();
        assert_eq!(bump(&mut again).await, 1);
    });
}
