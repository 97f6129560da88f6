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
    Actor, ActorContext, ActorError, ActorGrants, ActorRef, ActorSystem, Backpressure, ChildSpec,
    ComponentActor, MailboxConfig, MessageEnvelope, Reply, SupervisorSpec,
};
use airssys_wasm_benches::runtime;
use airssys_wasm_core::ResourceLimits;
use airssys_wasm_engine::{CompiledComponent, Density, Sandbox, WasmEngine};
use airssys_wasm_testkit::guests::ACTOR_WORKER;

mod raw {
    #![allow(missing_docs)]
    wasmtime::component::bindgen!({
        world: "actor",
        path: "../crates/wasm-actor/wit",
        exports: { default: async },
    });
}

const PATIENCE: Duration = Duration::from_secs(60);

/// What `actor-worker` does for `count`, `get` and `echo`, in Rust.
#[derive(Default)]
struct Counter(u64);

impl Actor for Counter {
    async fn handle_message(
        &mut self,
        msg: &MessageEnvelope,
        _ctx: &mut ActorContext,
    ) -> Result<Option<Reply>, ActorError> {
        let text = msg.payload_text().unwrap_or("");
        let (cmd, rest) = text.split_once(' ').unwrap_or((text, ""));
        Ok(match cmd {
            "count" => {
                self.0 += 1;
                None
            }
            "get" => Some(Reply::text(self.0.to_string())),
            "echo" => Some(Reply::text(rest.to_owned())),
            _ => return Err(ActorError::new("unknown")),
        })
    }
}

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

    let wt = engine.wasmtime_engine();
    let mut linker: wasmtime::component::Linker<()> = wasmtime::component::Linker::new(wt);
    linker
        .define_unknown_imports_as_traps(compiled.wasmtime_component())
        .unwrap();
    let raw = rt.block_on(async {
        let mut store = wasmtime::Store::new(wt, ());
        store.set_fuel(u64::MAX).unwrap();
        store.fuel_async_yield_interval(Some(1_000_000)).unwrap();
        let actor =
            raw::Actor::instantiate_async(&mut store, compiled.wasmtime_component(), &linker)
                .await
                .unwrap();
        (store, actor)
    });
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
                    let env = raw::airssys::actor::types::Envelope {
                        kind: raw::airssys::actor::types::MessageKind::Request,
                        sender: None,
                        correlation_id: Some(1),
                        priority: raw::airssys::actor::types::Priority::Normal,
                        content_type: "text/plain".into(),
                        topic: None,
                        sent_at_ms: 0,
                    };
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
