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

/// What the process holds and has spent, at one moment.
#[derive(Clone, Copy)]
struct Snapshot {
    /// Resident memory, address space (`VmSize`) and page tables (`VmPTE`), bytes.
    rss: u64,
    vsz: u64,
    page_tables: u64,
    /// Mappings (lines of `/proc/self/maps`).
    maps: u64,
    /// Bytes the allocator has handed out and not had back (`mallinfo2`): the host side.
    heap: u64,
    /// CPU seconds, user and system, and minor page faults so far.
    user: f64,
    sys: f64,
    faults: i64,
}

impl Snapshot {
    fn now() -> Self {
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
        // SAFETY: `getrusage` writes the struct it is given; `mallinfo2` has no
        // preconditions.
        let (ru, heap) = unsafe {
            let mut ru: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_SELF, &mut ru);
            (ru, libc::mallinfo2().uordblks as u64)
        };
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Self {
            rss: field("VmRSS:"),
            vsz: field("VmSize:"),
            page_tables: field("VmPTE:"),
            maps: mappings(),
            heap,
            user: secs(ru.ru_utime),
            sys: secs(ru.ru_stime),
            faults: ru.ru_minflt,
        }
    }
}

/// Lines of `/proc/self/maps`, read through a small buffer: at the mapping bound a
/// buffer the size of the file (which `malloc` maps) could not be had.
fn mappings() -> u64 {
    use std::io::Read as _;
    let mut file = std::fs::File::open("/proc/self/maps").unwrap();
    let mut buf = [0u8; 4096];
    let mut lines = 0;
    loop {
        match file.read(&mut buf).unwrap() {
            0 => return lines,
            n => lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64,
        }
    }
}

/// The figures of a run: what the process held and spent from `before` to `peak`
/// (all `reached` instances held), what it kept after dropping them, and why it
/// stopped.
struct Tally {
    before: Snapshot,
    started: Instant,
}

impl Tally {
    fn start() -> Self {
        Self {
            before: Snapshot::now(),
            started: Instant::now(),
        }
    }

    fn line(&self, reached: usize, elapsed: Duration, stop: &str, peak: Snapshot) -> String {
        let after_drop = Snapshot::now().rss;
        // What the allocator keeps of the freed host-side structures, given back.
        // SAFETY: `malloc_trim` has no preconditions.
        unsafe { libc::malloc_trim(0) };
        let after_trim = Snapshot::now().rss;
        let (before, n) = (self.before, reached.max(1) as f64);
        let per = |now: u64, before: u64| now.saturating_sub(before) as f64 / n;
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        format!(
            "reached={reached} us_per_instance={:.1} user_us={:.1} sys_us={:.1} \
             faults_per_instance={:.2} rss_kib_per_instance={:.2} heap_kib_per_instance={:.2} \
             pte_kib_per_instance={:.2} \
             vsz_mib_per_instance={:.2} maps_per_instance={:.3} maps_total={} \
             rss_mib_after_drop={:.1} rss_mib_after_trim={:.1} rss_mib_before={:.1} \
             stop=\"{stop}\"",
            elapsed.as_secs_f64() * 1e6 / n,
            (peak.user - before.user) * 1e6 / n,
            (peak.sys - before.sys) * 1e6 / n,
            (peak.faults - before.faults) as f64 / n,
            per(peak.rss, before.rss) / 1024.0,
            per(peak.heap, before.heap) / 1024.0,
            per(peak.page_tables, before.page_tables) / 1024.0,
            per(peak.vsz, before.vsz) / (1 << 20) as f64,
            per(peak.maps, before.maps),
            peak.maps,
            mib(after_drop),
            mib(after_trim),
            mib(before.rss),
        )
    }
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
    let peak = Snapshot::now();
    let reached = held.len();
    for instance in &mut held {
        let ((count,), _) = instance.call_typed::<(), (u64,)>("bump", ()).await.unwrap();
        assert_eq!(count, 2, "each instance counts its own calls");
    }
    drop(held);
    tally.line(reached, elapsed, &stop, peak)
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
    let peak = Snapshot::now();
    let reached = held.len();
    for (store, bump) in &mut held {
        let (count,) = bump.call_async(&mut *store, ()).await.unwrap();
        assert_eq!(count, 2, "each instance counts its own calls");
    }
    drop(held);
    tally.line(reached, elapsed, &stop, peak)
}
