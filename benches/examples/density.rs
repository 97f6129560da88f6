//! How many live instances one process holds, and what each costs: N instances of the
//! testkit's `calc` component (a Rust `wasm32-wasip2` library, 8 MiB memory limit),
//! each made and called once (`bump`, its own counter), all held; then each called
//! again (each counter must say 2: no cross-talk), then all dropped. Prints one line
//! of `key=value` pairs: how many were reached and why it stopped, resident memory,
//! address space, mappings and time per instance, and the resident memory left once
//! they are dropped. `cargo xtask density` runs it in each mode and writes the table.
//!
//! `cargo run --release -p airssys-wasm-benches --example density -- N \
//!     [airssys|airssys-dense|raw|raw-small|raw-malloc|raw-pooling]`
//!
//! - `airssys`: `WasmEngine::new()` (the default layout);
//! - `airssys-dense`: `WasmEngine::builder().density(Density::for_limits(..))`;
//! - `raw`: raw Wasmtime's default configuration (plus the component model and
//!   async), a `Store` per instance with a WASI context: what an embedder holding
//!   instances writes first;
//! - `raw-small`, `raw-malloc`, `raw-pooling`: the same with the other
//!   candidates — reservations sized from the memory limit, malloc-backed memories,
//!   the pooling allocator sized to N.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::time::{Duration, Instant};

use airssys_wasm_benches::RawWasi;
use airssys_wasm_core::{CapabilitySet, ResourceLimits};
use airssys_wasm_engine::{CompiledComponent, Density, Sandbox, WasmEngine};
use wasmtime::component::{Component, Linker, TypedFunc};
use wasmtime::{Config, Engine, Store};

const MEMORY: u64 = 8 << 20;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args[1].parse().unwrap();
    let mode = args.get(2).map_or("airssys", String::as_str).to_owned();
    let bytes = airssys_wasm_testkit::guests::CALC;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let line = rt.block_on(async {
        match mode.as_str() {
            "raw" => raw(bytes, n, Config::new()).await,
            "raw-small" => raw(bytes, n, small()).await,
            "raw-malloc" => raw(bytes, n, malloc()).await,
            "raw-pooling" => raw(bytes, n, pooling(n)).await,
            "airssys" => airssys(bytes, n, false).await,
            "airssys-dense" => airssys(bytes, n, true).await,
            other => panic!("unknown mode {other}"),
        }
    });
    println!("mode={mode} n={n} {line}");
}

/// Bytes the allocator has handed out and not had back (`mallinfo2`): the host side.
fn heap() -> u64 {
    // SAFETY: `mallinfo2` has no preconditions.
    unsafe { libc::mallinfo2() }.uordblks as u64
}

/// The process's page tables (bytes): kernel memory beside the resident set.
fn page_tables() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmPTE:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

/// The process's resident memory, address space (bytes) and mappings.
fn usage() -> (u64, u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
            * 1024
    };
    let maps = std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count() as u64;
    (field("VmRSS:"), field("VmSize:"), maps)
}

/// Holds instances while `make` makes them (stopping at its first error), calls each
/// again through `again` (which returns the counter), and reports.
struct Tally {
    before: (u64, u64, u64),
    started: Instant,
    rusage: (f64, f64, i64),
    page_tables: u64,
    heap: u64,
}

/// CPU seconds (user, system) and minor page faults so far.
fn rusage() -> (f64, f64, i64) {
    // SAFETY: `getrusage` writes the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(ru.ru_utime), secs(ru.ru_stime), ru.ru_minflt)
}

impl Tally {
    fn start() -> Self {
        Self {
            before: usage(),
            started: Instant::now(),
            rusage: rusage(),
            page_tables: page_tables(),
            heap: heap(),
        }
    }

    fn line(&self, reached: usize, elapsed: Duration, stop: &str, after_drop: u64) -> String {
        // What the allocator keeps of the freed host-side structures, given back.
        // SAFETY: `malloc_trim` has no preconditions.
        unsafe { libc::malloc_trim(0) };
        let after_trim = usage().0;
        let (rss, vsz, maps) = usage_at_peak();
        let (user, sys, faults) = *RUSAGE_AT_PEAK.lock().unwrap();
        let each = |v: f64| v * 1e6 / reached.max(1) as f64;
        let per = |now: u64, before: u64| now.saturating_sub(before) as f64 / reached.max(1) as f64;
        format!(
            "reached={reached} us_per_instance={:.1} user_us={:.1} sys_us={:.1} \
             faults_per_instance={:.2} rss_kib_per_instance={:.2} heap_kib_per_instance={:.2} \
             pte_kib_per_instance={:.2} \
             vsz_mib_per_instance={:.2} maps_per_instance={:.3} maps_total={maps} \
             rss_mib_after_drop={:.1} rss_mib_after_trim={:.1} rss_mib_before={:.1} \
             stop=\"{stop}\"",
            elapsed.as_secs_f64() * 1e6 / reached.max(1) as f64,
            each(user - self.rusage.0),
            each(sys - self.rusage.1),
            (faults - self.rusage.2) as f64 / reached.max(1) as f64,
            per(rss, self.before.0) / 1024.0,
            per(*HEAP_AT_PEAK.lock().unwrap(), self.heap) / 1024.0,
            per(*PTE_AT_PEAK.lock().unwrap(), self.page_tables) / 1024.0,
            per(vsz, self.before.1) / (1 << 20) as f64,
            per(maps, self.before.2),
            after_drop as f64 / (1 << 20) as f64,
            after_trim as f64 / (1 << 20) as f64,
            self.before.0 as f64 / (1 << 20) as f64,
        )
    }
}

static PEAK: std::sync::Mutex<(u64, u64, u64)> = std::sync::Mutex::new((0, 0, 0));

static RUSAGE_AT_PEAK: std::sync::Mutex<(f64, f64, i64)> = std::sync::Mutex::new((0.0, 0.0, 0));

static PTE_AT_PEAK: std::sync::Mutex<u64> = std::sync::Mutex::new(0);
static HEAP_AT_PEAK: std::sync::Mutex<u64> = std::sync::Mutex::new(0);

fn record_peak() {
    *HEAP_AT_PEAK.lock().unwrap() = heap();
    *PTE_AT_PEAK.lock().unwrap() = page_tables();
    *PEAK.lock().unwrap() = usage();
    *RUSAGE_AT_PEAK.lock().unwrap() = rusage();
}

fn usage_at_peak() -> (u64, u64, u64) {
    *PEAK.lock().unwrap()
}

fn limits() -> ResourceLimits {
    ResourceLimits::new(MEMORY, 1_000_000, Duration::from_secs(5)).unwrap()
}

async fn airssys(bytes: &[u8], n: usize, dense: bool) -> String {
    // Compiled on one thread: outside the figures either way, and under callgrind
    // (`cargo xtask density --instructions`) parallel compilation's spinning would make
    // the totals differ from run to run by more than the instances cost.
    let engine = if dense {
        WasmEngine::builder()
            .parallel_compilation(false)
            .density(Density::for_limits(&limits()).with_warm_stacks(
                std::env::var("DENSITY_WARM_STACKS").map_or(64, |v| v.parse().unwrap()),
            ))
            .build()
            .unwrap()
    } else {
        WasmEngine::builder()
            .parallel_compilation(false)
            .build()
            .unwrap()
    };
    let component = CompiledComponent::new(
        &engine,
        "calc",
        Component::new(engine.wasmtime_engine(), bytes).unwrap(),
    )
    .unwrap();
    let sandbox = Sandbox::new(limits()).with_capabilities(CapabilitySet::default());
    // One instance made and dropped first: what every instance shares (code, the
    // linker, caches) is not counted per instance.
    drop(component.instantiate(&sandbox).await.unwrap());
    let tally = Tally::start();
    let mut held = Vec::with_capacity(n);
    let mut stop = String::from("none");
    for _ in 0..n {
        let mut instance = match component.instantiate(&sandbox).await {
            Ok(i) => i,
            Err(e) => {
                stop = e.to_string().replace('"', "'");
                break;
            }
        };
        match instance.call_typed::<(), (u64,)>("bump", ()).await {
            Ok(((1,), _)) => held.push(instance),
            Ok(((other,), _)) => panic!("a fresh instance's counter said {other}"),
            Err(e) => {
                stop = e.to_string().replace('"', "'");
                break;
            }
        }
    }
    let elapsed = tally.started.elapsed();
    record_peak();
    let reached = held.len();
    for instance in &mut held {
        let ((count,), _) = instance.call_typed::<(), (u64,)>("bump", ()).await.unwrap();
        assert_eq!(count, 2, "each instance counts its own calls");
    }
    drop(held);
    let after = usage().0;
    tally.line(reached, elapsed, &stop, after)
}

/// Reservations sized from the memory limit: no guard, no room for growth, no image;
/// each memory still its own mapping.
fn small() -> Config {
    let mut config = Config::new();
    config
        .memory_reservation(MEMORY)
        .memory_guard_size(0)
        .memory_reservation_for_growth(0)
        .guard_before_linear_memory(false)
        .memory_init_cow(false);
    config
}

/// Malloc-backed memories: without signals-based traps, reservation, guard or image,
/// Wasmtime allocates a memory on the heap (and zeroes its initial size).
fn malloc() -> Config {
    let mut config = Config::new();
    config
        .signals_based_traps(false)
        .memory_reservation(0)
        .memory_guard_size(0)
        .memory_reservation_for_growth(0)
        .memory_init_cow(false);
    config
}

/// Wasmtime's pooling allocator sized for `n` instances of the memory limit.
fn pooling(n: usize) -> Config {
    let n = u32::try_from(n).unwrap();
    let mut p = wasmtime::PoolingAllocationConfig::default();
    p.total_component_instances(n)
        .total_core_instances(n.saturating_mul(4))
        .total_memories(n)
        .total_tables(n.saturating_mul(4))
        .total_stacks(n)
        .max_memory_size(MEMORY as usize);
    let mut config = Config::new();
    config
        .memory_reservation(MEMORY)
        .memory_guard_size(0)
        .allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(p));
    config
}

async fn raw(bytes: &[u8], n: usize, mut config: Config) -> String {
    config
        .wasm_component_model(true)
        .parallel_compilation(false);
    let engine = match Engine::new(&config) {
        Ok(e) => e,
        Err(e) => {
            let stop = format!("{e:#}").replace('"', "'");
            return format!("reached=0 stop=\"engine: {stop}\"");
        }
    };
    let component = Component::new(&engine, bytes).unwrap();
    let mut linker = Linker::<RawWasi>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    let pre = linker.instantiate_pre(&component).unwrap();
    let make = || async {
        let mut store = Store::new(&engine, RawWasi::new(()));
        let instance = pre.instantiate_async(&mut store).await?;
        let bump: TypedFunc<(), (u64,)> = instance.get_typed_func(&mut store, "bump")?;
        let (count,) = bump.call_async(&mut store, ()).await?;
        Ok::<_, wasmtime::Error>((store, bump, count))
    };
    drop(make().await.unwrap());
    let tally = Tally::start();
    let mut held = Vec::with_capacity(n);
    let mut stop = String::from("none");
    for _ in 0..n {
        match make().await {
            Ok((store, bump, 1)) => held.push((store, bump)),
            Ok((_, _, other)) => panic!("a fresh instance's counter said {other}"),
            Err(e) => {
                stop = format!("{e:#}").replace('"', "'");
                break;
            }
        }
    }
    let elapsed = tally.started.elapsed();
    record_peak();
    let reached = held.len();
    for (store, bump) in &mut held {
        let (count,) = bump.call_async(&mut *store, ()).await.unwrap();
        assert_eq!(count, 2, "each instance counts its own calls");
    }
    drop(held);
    let after = usage().0;
    tally.line(reached, elapsed, &stop, after)
}
