//! What the actor benchmarks share (`benches/actors.rs`, `examples/actor_messages.rs`,
//! `examples/actor_calls.rs`): a Rust actor doing what the testkit's `actor-worker`
//! does, and raw Wasmtime's bindings of the actor world, to call the same component's
//! `handle` export directly (the floor every figure is set against).

use airssys_wasm_actor::{Actor, ActorContext, ActorError, MessageEnvelope, Reply};
use airssys_wasm_engine::{CompiledComponent, WasmEngine};

/// Raw Wasmtime's bindings of the world `airssys:actor/actor@0.1.0`.
#[allow(missing_docs)]
pub mod raw {
    wasmtime::component::bindgen!({
        world: "actor",
        path: "../crates/wasm-actor/wit",
        exports: { default: async },
    });
}

use raw::airssys::actor::types::{Envelope, MessageKind, Priority};

/// A Rust actor doing what `actor-worker` does for `count` (no reply to a tell), `get`
/// and `echo TEXT`.
#[derive(Debug, Default)]
pub struct Counter(pub u64);

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

/// An envelope of `kind` as the raw side passes it (`text/plain`, no sender).
pub fn raw_envelope(kind: MessageKind) -> Envelope {
    Envelope {
        kind,
        sender: None,
        correlation_id: (kind == MessageKind::Request).then_some(1),
        priority: Priority::Normal,
        content_type: "text/plain".into(),
        topic: None,
        sent_at_ms: 0,
    }
}

/// `component` pre-instantiated on raw Wasmtime (same engine), its imports traps
/// (the benchmarked messages make none).
///
/// # Panics
///
/// When linking fails.
pub fn raw_pre(engine: &WasmEngine, component: &CompiledComponent) -> raw::ActorPre<()> {
    let wt = engine.wasmtime_engine();
    let mut linker: wasmtime::component::Linker<()> = wasmtime::component::Linker::new(wt);
    #[allow(clippy::expect_used)]
    {
        linker
            .define_unknown_imports_as_traps(component.wasmtime_component())
            .expect("the actor's imports");
        raw::ActorPre::new(
            linker
                .instantiate_pre(component.wasmtime_component())
                .expect("the actor links"),
        )
        .expect("the actor's exports")
    }
}

/// A raw instance of `pre` in a fresh store: fuel on and unbounded, a fuel yield
/// interval.
///
/// # Panics
///
/// When instantiation fails.
pub async fn raw_instance(pre: &raw::ActorPre<()>) -> (wasmtime::Store<()>, raw::Actor) {
    let mut store = wasmtime::Store::new(pre.engine(), ());
    #[allow(clippy::expect_used)]
    {
        store.set_fuel(u64::MAX).expect("fuel is on");
        store
            .fuel_async_yield_interval(Some(1_000_000))
            .expect("fuel is on");
        let actor = pre
            .instantiate_async(&mut store)
            .await
            .expect("the actor instantiates");
        (store, actor)
    }
}

/// What a spawn is on raw Wasmtime: a raw instance of `pre` whose `init` was called.
///
/// # Panics
///
/// When instantiation or `init` fails.
pub async fn raw_spawn(pre: &raw::ActorPre<()>) -> (wasmtime::Store<()>, raw::Actor) {
    let (mut store, actor) = raw_instance(pre).await;
    #[allow(clippy::expect_used)]
    actor
        .airssys_actor_handler()
        .call_init(&mut store)
        .await
        .expect("init runs")
        .expect("init succeeds");
    (store, actor)
}
