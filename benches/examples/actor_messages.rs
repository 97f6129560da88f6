//! Actor messaging, measured side by side in one process: Rust actors, component actors
//! (the testkit's `actor-worker`) and raw Wasmtime calling the same component's `handle`
//! export in a loop (what one message costs without mailboxes, supervision or the
//! sandbox's bounds). Prints a Markdown table.
//!
//! - one-way: M small messages (`count`) to K actors from two sender tasks, on a
//!   two-worker runtime; then one `get` request each, whose replies must sum to M;
//! - request/reply: sequential round trips to one actor (`echo x`);
//! - spawn: starting K component actors under one supervisor (instantiation, `init`);
//! - restart: a trap to handling again (`get` after `trap`), per restart;
//! - idle: resident memory per live, idle component actor (dense engine).
//!
//! `cargo run --release -p airssys-wasm-benches --example actor_messages -- [M] [K]`
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use airssys_wasm_actor::{
    ActorGrants, ActorRef, ActorSystem, Backpressure, ChildSpec, ComponentActor, MailboxConfig,
    MessageEnvelope, RestartBackoff, SupervisorEvent, SupervisorSpec,
};
use airssys_wasm_benches::actors::raw::airssys::actor::types::MessageKind;
use airssys_wasm_benches::actors::{Counter, raw_envelope, raw_instance, raw_pre, raw_spawn};
use airssys_wasm_core::ResourceLimits;
use airssys_wasm_engine::{CompiledComponent, Density, Sandbox, WasmEngine};
use airssys_wasm_testkit::guests::ACTOR_WORKER;

const PATIENCE: Duration = Duration::from_secs(120);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let m: u64 = args.get(1).map_or(400_000, |a| a.parse().unwrap());
    let k: usize = args.get(2).map_or(1000, |a| a.parse().unwrap());
    let rt = airssys_wasm_benches::runtime();
    // On a worker, as an embedder's code runs (block_on's thread is not one).
    rt.block_on(async move { tokio::spawn(run(m, k)).await.unwrap() });
}

struct Setup {
    engine: WasmEngine,
    component: CompiledComponent,
    limits: ResourceLimits,
}

fn setup() -> Setup {
    let limits = ResourceLimits::new(16 << 20, 100_000_000, Duration::from_secs(10)).unwrap();
    let warm: u32 = std::env::var("WARM").map_or(64, |w| w.parse().unwrap());
    let builder = airssys_wasm_actor::register(WasmEngine::builder());
    let builder = if std::env::var("DEFAULT_LAYOUT").is_ok() {
        builder
    } else {
        builder.density(Density::for_limits(&limits).with_warm_stacks(warm))
    };
    let engine = builder.build().unwrap();
    let c = wasmtime::component::Component::new(engine.wasmtime_engine(), ACTOR_WORKER).unwrap();
    let component = CompiledComponent::new(&engine, "actor-worker", c).unwrap();
    Setup {
        engine,
        component,
        limits,
    }
}

fn component_actor(s: &Setup) -> ComponentActor {
    ComponentActor::new(
        s.component.clone(),
        Sandbox::new(s.limits.clone()),
        ActorGrants::none(),
    )
    .unwrap()
    .with_mailbox(MailboxConfig::new(1024, Backpressure::Block))
}

async fn system_of(k: usize, child: impl Fn(&str) -> ChildSpec) -> (ActorSystem, Vec<ActorRef>) {
    let system = ActorSystem::default();
    let mut root = SupervisorSpec::new("root");
    for i in 0..k {
        root = root.child(child(&format!("a{i}")));
    }
    system.start(root).await.unwrap();
    let refs = (0..k)
        .map(|i| system.lookup(&format!("a{i}")).unwrap())
        .collect();
    (system, refs)
}

/// M `count` messages over the actors from two senders; then the counts must sum to
/// M × `round` (the counters are kept from round to round).
async fn one_way(refs: &[ActorRef], m: u64, round: u64) -> Duration {
    let refs: Arc<Vec<ActorRef>> = Arc::new(refs.to_vec());
    let start = Instant::now();
    let mut senders = Vec::new();
    for s in 0..2u64 {
        let refs = refs.clone();
        senders.push(tokio::spawn(async move {
            let mut i = s as usize;
            for _ in 0..m / 2 {
                refs[i % refs.len()]
                    .tell(MessageEnvelope::text("count"))
                    .await
                    .unwrap();
                i += 2;
            }
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    let total = AtomicU64::new(0);
    for r in refs.iter() {
        let reply = r
            .request(MessageEnvelope::text("get"), PATIENCE)
            .await
            .unwrap();
        total.fetch_add(
            reply.payload_text().unwrap().parse::<u64>().unwrap(),
            Ordering::Relaxed,
        );
    }
    let elapsed = start.elapsed();
    assert_eq!(total.load(Ordering::Relaxed), m / 2 * 2 * round);
    elapsed
}

async fn round_trips(r: &ActorRef, n: u32) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        let reply = r
            .request(MessageEnvelope::text("echo x"), PATIENCE)
            .await
            .unwrap();
        assert_eq!(reply.payload_text(), Some("x"));
    }
    start.elapsed() / n
}

/// Raw Wasmtime: one store, the `handle` export called in a loop, the same message.
async fn raw_calls(s: &Setup, n: u32) -> Duration {
    let (mut store, actor) = raw_instance(&raw_pre(&s.engine, &s.component)).await;
    let h = actor.airssys_actor_handler();
    let env = raw_envelope(MessageKind::Request);
    let start = Instant::now();
    for _ in 0..n {
        let r = h
            .call_handle(&mut store, &env, b"echo x")
            .await
            .unwrap()
            .unwrap();
        assert!(r.is_some());
    }
    start.elapsed() / n
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn run(m: u64, k: usize) {
    let s = setup();
    println!("| what | Rust actors | component actors | raw Wasmtime call | component / Rust |");
    println!("|---|---|---|---|---|");

    // One-way throughput.
    let (rust, rust_refs) = system_of(k, |n| {
        ChildSpec::actor(n, Counter::default).mailbox(MailboxConfig::new(1024, Backpressure::Block))
    })
    .await;
    let (comp, comp_refs) = system_of(k, |n| ChildSpec::component(n, component_actor(&s))).await;
    let mut best = (Duration::MAX, Duration::MAX);
    for round in 1..=3 {
        best.0 = best.0.min(one_way(&rust_refs, m, round).await);
        best.1 = best.1.min(one_way(&comp_refs, m, round).await);
    }
    let per_s = |d: Duration| m as f64 / d.as_secs_f64();
    let raw = raw_calls(&s, 100_000).await;
    println!(
        "| one-way messages/s ({m} to {k} actors, 2 senders, 2 workers) | {:.0} | {:.0} | {:.0} (one core) | {:.2}× the time |",
        per_s(best.0),
        per_s(best.1),
        1.0 / raw.as_secs_f64(),
        best.1.as_secs_f64() / best.0.as_secs_f64()
    );

    // Request/reply.
    let mut rr = (Duration::MAX, Duration::MAX);
    for _ in 0..3 {
        rr.0 = rr.0.min(round_trips(&rust_refs[0], 20_000).await);
        rr.1 = rr.1.min(round_trips(&comp_refs[0], 20_000).await);
    }
    println!(
        "| request/reply round trip (`echo x`) | {:.2} µs | {:.2} µs | {:.2} µs (the call alone) | {:.2}× |",
        rr.0.as_secs_f64() * 1e6,
        rr.1.as_secs_f64() * 1e6,
        raw.as_secs_f64() * 1e6,
        rr.1.as_secs_f64() / rr.0.as_secs_f64()
    );
    rust.shutdown().await;
    comp.shutdown().await;

    // Spawn.
    let start = Instant::now();
    let (rust, _) = system_of(k, |n| ChildSpec::actor(n, Counter::default)).await;
    let rust_spawn = start.elapsed() / k as u32;
    rust.shutdown().await;
    let before = rss_kib();
    let start = Instant::now();
    let (comp, _) = system_of(k, |n| ChildSpec::component(n, component_actor(&s))).await;
    let comp_spawn = start.elapsed() / k as u32;
    let idle = (rss_kib().saturating_sub(before)) as f64 / k as f64;
    // The floor: K raw instances of the same component on the same engine, each in a
    // fresh store with its `init` called, all held.
    let pre = raw_pre(&s.engine, &s.component);
    let start = Instant::now();
    let mut held = Vec::with_capacity(k);
    for _ in 0..k {
        held.push(raw_spawn(&pre).await);
    }
    let raw_spawn_time = start.elapsed() / k as u32;
    drop(held);
    println!(
        "| spawn (start under a supervisor, {k} actors) | {:.2} µs | {:.2} µs | {:.2} µs (instantiate + `init`) | {:.0}× |",
        rust_spawn.as_secs_f64() * 1e6,
        comp_spawn.as_secs_f64() * 1e6,
        raw_spawn_time.as_secs_f64() * 1e6,
        comp_spawn.as_secs_f64() / rust_spawn.as_secs_f64()
    );
    println!(
        "| resident memory per idle component actor ({k} live, dense engine) | | {idle:.1} KiB | | |"
    );
    comp.shutdown().await;

    // Restart: trap → handling again.
    let system = ActorSystem::default();
    system
        .start(
            SupervisorSpec::new("root")
                .intensity(u32::MAX, Duration::from_secs(1))
                .backoff(RestartBackoff::none())
                .child(ChildSpec::component("w", component_actor(&s))),
        )
        .await
        .unwrap();
    let w = system.lookup("w").unwrap();
    let mut events = system.events();
    let n = 500u32;
    let start = Instant::now();
    for _ in 0..n {
        w.tell(MessageEnvelope::text("trap")).await.unwrap();
        loop {
            if let SupervisorEvent::Started { .. } = events.recv().await.unwrap() {
                break;
            }
        }
    }
    let restart = start.elapsed() / n;
    // The floor: the same trap on raw Wasmtime, then a fresh instance with `init` called.
    let trap = raw_envelope(MessageKind::Tell);
    let start = Instant::now();
    let (mut store, mut actor) = raw_spawn(&pre).await;
    for _ in 0..n {
        let trapped = actor
            .airssys_actor_handler()
            .call_handle(&mut store, &trap, b"trap")
            .await;
        assert!(trapped.is_err());
        (store, actor) = raw_spawn(&pre).await;
    }
    let raw_restart = start.elapsed() / n;
    println!(
        "| restart (trap → started again, {n} times) | | {:.1} µs | {:.1} µs (the trap, a new instance, `init`) | |",
        restart.as_secs_f64() * 1e6,
        raw_restart.as_secs_f64() * 1e6
    );
    system.shutdown().await;
}
