//! Actors side by side (see BENCHMARKS.md, "Actors"): a request/reply round trip to a
//! Rust actor, to a component actor (the testkit's `actor-worker`, `echo x`), and the
//! same component's `handle` export called on raw Wasmtime (no mailbox, no supervisor:
//! the floor); and 1,000 one-way messages (`count`) to one actor, then a `get`. Every
//! iteration runs on a runtime worker, as an embedder's code does (a `block_on` thread
//! would add two cross-thread wake-ups to each round trip).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

use airssys_wasm_actor::{
    ActorGrants, ActorRef, ActorSystem, Backpressure, ChildSpec, ComponentActor, MailboxConfig,
    MessageEnvelope, SupervisorSpec,
};
use airssys_wasm_benches::actors::raw::airssys::actor::types::MessageKind;
use airssys_wasm_benches::actors::{Counter, raw, raw_envelope, raw_instance, raw_pre};
use airssys_wasm_benches::runtime;
use airssys_wasm_core::ResourceLimits;
use airssys_wasm_engine::{CompiledComponent, Density, Sandbox, WasmEngine};
use airssys_wasm_testkit::guests::ACTOR_WORKER;

const PATIENCE: Duration = Duration::from_secs(60);

struct Fixture {
    rust: ActorRef,
    component: ActorRef,
    raw: Arc<tokio::sync::Mutex<(wasmtime::Store<()>, raw::Actor)>>,
    _system: ActorSystem,
}

fn fixture(rt: &tokio::runtime::Runtime) -> Fixture {
    let limits = ResourceLimits::new(16 << 20, 100_000_000, Duration::from_secs(10)).unwrap();
    let engine = airssys_wasm_actor::register(WasmEngine::builder())
        .density(Density::for_limits(&limits))
        .build()
        .unwrap();
    let c = wasmtime::component::Component::new(engine.wasmtime_engine(), ACTOR_WORKER).unwrap();
    let compiled = CompiledComponent::new(&engine, "actor-worker", c).unwrap();
    let mailbox = MailboxConfig::new(1024, Backpressure::Block);
    let actor = ComponentActor::new(compiled.clone(), Sandbox::new(limits), ActorGrants::none())
        .unwrap()
        .with_mailbox(mailbox);
    let system = ActorSystem::default();
    rt.block_on(
        system.start(
            SupervisorSpec::new("root")
                .child(ChildSpec::actor("rust", Counter::default).mailbox(mailbox))
                .child(ChildSpec::component("component", actor)),
        ),
    )
    .unwrap();

    let raw = rt.block_on(raw_instance(&raw_pre(&engine, &compiled)));
    Fixture {
        rust: system.lookup("rust").unwrap(),
        component: system.lookup("component").unwrap(),
        raw: Arc::new(tokio::sync::Mutex::new(raw)),
        _system: system,
    }
}

/// `iters` runs of `f` on a runtime worker; their time.
fn on_worker<F, Fut>(rt: &tokio::runtime::Runtime, iters: u64, f: F) -> Duration
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    rt.block_on(async move {
        tokio::spawn(async move {
            let start = Instant::now();
            for _ in 0..iters {
                f().await;
            }
            start.elapsed()
        })
        .await
        .unwrap()
    })
}

fn request_reply(c: &mut Criterion) {
    let rt = runtime();
    let f = fixture(&rt);
    let mut g = c.benchmark_group("actor_request_reply");
    for (name, actor) in [("rust", f.rust.clone()), ("component", f.component.clone())] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let actor = actor.clone();
                on_worker(&rt, iters, move || {
                    let actor = actor.clone();
                    async move {
                        let r = actor
                            .request(MessageEnvelope::text("echo x"), PATIENCE)
                            .await
                            .unwrap();
                        assert_eq!(r.payload_text(), Some("x"));
                    }
                })
            });
        });
    }
    g.bench_function("raw_wasmtime_call", |b| {
        b.iter_custom(|iters| {
            let raw = f.raw.clone();
            on_worker(&rt, iters, move || {
                let raw = raw.clone();
                async move {
                    let mut guard = raw.lock().await;
                    let (store, actor) = &mut *guard;
                    let env = raw_envelope(MessageKind::Request);
                    let r = actor
                        .airssys_actor_handler()
                        .call_handle(&mut *store, &env, b"echo x")
                        .await
                        .unwrap()
                        .unwrap();
                    assert!(r.is_some());
                }
            })
        });
    });
    g.finish();

    let mut g = c.benchmark_group("actor_tell_1000");
    g.sample_size(20);
    for (name, actor) in [("rust", f.rust.clone()), ("component", f.component.clone())] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let actor = actor.clone();
                on_worker(&rt, iters, move || {
                    let actor = actor.clone();
                    async move {
                        for _ in 0..1000 {
                            actor.tell(MessageEnvelope::text("count")).await.unwrap();
                        }
                        actor
                            .request(MessageEnvelope::text("get"), PATIENCE)
                            .await
                            .unwrap();
                    }
                })
            });
        });
    }
    g.finish();
}

criterion_group!(benches, request_reply);
criterion_main!(benches);
