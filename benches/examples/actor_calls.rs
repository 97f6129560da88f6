//! N one-way messages (`count`) to one component actor (the testkit's `actor-worker`),
//! then one request (`get`, which must answer N) — or, with `raw`, N calls of the same
//! component's `handle` export on raw Wasmtime (one store, fuel on) — for an
//! instruction count (`valgrind --tool=callgrind`): counts at two values of N, taken
//! apart, are what one message costs, free of the wall clock's noise.
//!
//! With `spawn`, N component actors started under one supervisor; with `raw-spawn`, N
//! instantiations of the same component on raw Wasmtime (a fresh
//! store each, from one `InstancePre`) and a call of its `init`: the floor of a spawn.
//!
//! With `restart`, N failures instead (each restarts the actor), then one `get` — what
//! one restart costs: `HOW=trap` (a Rust `panic!`, the default), `HOW=unreachable` (a
//! trap without a panic), `HOW=fail` (`handle` returns `err`); `NULL_STDIO=1` sends the
//! guest's output nowhere.
//!
//! `cargo run --release -p airssys-wasm-benches --example actor_calls -- N [actor|raw|restart|spawn|raw-spawn]`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use airssys_wasm_actor::{
    ActorGrants, ActorSystem, Backpressure, ChildSpec, ComponentActor, MailboxConfig,
    MessageEnvelope, RestartBackoff, SupervisorSpec,
};
use airssys_wasm_benches::actors::raw::airssys::actor::types::MessageKind;
use airssys_wasm_benches::actors::{raw_envelope, raw_instance, raw_pre, raw_spawn};
use airssys_wasm_core::ResourceLimits;
use airssys_wasm_engine::{CompiledComponent, Density, Sandbox, WasmEngine};
use airssys_wasm_testkit::guests::ACTOR_WORKER;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args[1].parse().unwrap();
    let raw = args.get(2).is_some_and(|a| a == "raw");
    let restart = args.get(2).is_some_and(|a| a == "restart");
    let raw_spawn = args.get(2).is_some_and(|a| a == "raw-spawn");
    let spawn = args.get(2).is_some_and(|a| a == "spawn");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Spawns keep many instances live: the dense layout (as `up` uses), for both.
    let mut builder = WasmEngine::builder();
    if spawn || raw_spawn {
        builder = builder.density(Density::for_limits(&limits()));
    }
    let engine = airssys_wasm_actor::register(builder).build().unwrap();
    let c = wasmtime::component::Component::new(engine.wasmtime_engine(), ACTOR_WORKER).unwrap();
    let component = CompiledComponent::new(&engine, "actor-worker", c).unwrap();
    rt.block_on(async {
        if raw_spawn {
            raw_spawns(&engine, &component, n).await;
        } else if spawn {
            spawns(component, n).await;
        } else if raw {
            raw_calls(&engine, &component, n).await;
        } else {
            actor(component, n, restart).await;
        }
    });
}

fn limits() -> ResourceLimits {
    ResourceLimits::new(16 << 20, 100_000_000, Duration::from_secs(10)).unwrap()
}

async fn actor(component: CompiledComponent, n: u64, restart: bool) {
    let mut sandbox = Sandbox::new(limits());
    if std::env::var("NULL_STDIO").is_ok() {
        sandbox = sandbox.with_capabilities(airssys_wasm_core::CapabilitySet::deny_all());
    }
    let actor = ComponentActor::new(component, sandbox, ActorGrants::none())
        .unwrap()
        .with_mailbox(MailboxConfig::new(1024, Backpressure::Block));
    let system = ActorSystem::default();
    system
        .start(
            SupervisorSpec::new("root")
                .intensity(u32::MAX, Duration::from_secs(1))
                .backoff(RestartBackoff::none())
                .child(ChildSpec::component("w", actor)),
        )
        .await
        .unwrap();
    let w = system.lookup("w").unwrap();
    let message = if restart {
        std::env::var("HOW").unwrap_or_else(|_| "trap".into())
    } else {
        "count".to_owned()
    };
    for _ in 0..n {
        w.tell(MessageEnvelope::text(message.as_str()))
            .await
            .unwrap();
    }
    let got = w
        .request(MessageEnvelope::text("get"), Duration::from_secs(60))
        .await
        .unwrap();
    let want = if restart { 0 } else { n };
    assert_eq!(got.payload_text(), Some(want.to_string().as_str()));
    system.shutdown().await;
}

/// N component actors started under one supervisor (each instantiated, `init` called).
async fn spawns(component: CompiledComponent, n: u64) {
    let actor =
        ComponentActor::new(component, Sandbox::new(limits()), ActorGrants::none()).unwrap();
    let mut spec = SupervisorSpec::new("root");
    for i in 0..n {
        spec = spec.child(ChildSpec::component(&format!("w{i}"), actor.clone()));
    }
    let system = ActorSystem::default();
    system.start(spec).await.unwrap();
    system.shutdown().await;
}

async fn raw_calls(engine: &WasmEngine, component: &CompiledComponent, n: u64) {
    let (mut store, actor) = raw_instance(&raw_pre(engine, component)).await;
    let h = actor.airssys_actor_handler();
    let tell = raw_envelope(MessageKind::Tell);
    for _ in 0..n {
        let r = h
            .call_handle(&mut store, &tell, b"count")
            .await
            .unwrap()
            .unwrap();
        assert!(r.is_none());
    }
    let request = raw_envelope(MessageKind::Request);
    let got = h
        .call_handle(&mut store, &request, b"get")
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got.payload, n.to_string().into_bytes());
}

async fn raw_spawns(engine: &WasmEngine, component: &CompiledComponent, n: u64) {
    let pre = raw_pre(engine, component);
    for _ in 0..n {
        drop(raw_spawn(&pre).await);
    }
}
