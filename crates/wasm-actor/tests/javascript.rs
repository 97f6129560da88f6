//! A component actor in JavaScript (the testkit's `actor-js`, componentize-js): it
//! replies, keeps per-instance state, messages a Rust actor by grant (and is denied
//! without one), gets a request's reply as a later message, and what it throws is a
//! failure (a string: its `err`; an Error: a trap) that restarts it with fresh state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use airssys_wasm_actor::{
    Actor, ActorAddress, ActorContext, ActorError, ActorGrants, ActorSystem, ChildSpec,
    ComponentActor, ExitReason, FailureKind, MessageEnvelope, Reply, RestartBackoff,
    SupervisorEvent, SupervisorSpec,
};
use airssys_wasm_core::ResourceLimits;
use airssys_wasm_engine::{CompiledComponent, Sandbox, WasmEngine};

const PATIENCE: Duration = Duration::from_secs(60);

/// A message as `Rusty` keeps it: its sender and its text.
type Got = (Option<String>, String);

/// A Rust actor that records what it gets and answers `ping` with `pong`.
#[derive(Clone, Default)]
struct Rusty(Arc<Mutex<Vec<Got>>>);

impl Actor for Rusty {
    async fn handle_message(
        &mut self,
        msg: &MessageEnvelope,
        _ctx: &mut ActorContext,
    ) -> Result<Option<Reply>, ActorError> {
        let text = msg.payload_text().unwrap_or("").to_owned();
        let reply = (text == "ping").then(|| Reply::text("pong"));
        self.0
            .lock()
            .unwrap()
            .push((msg.sender.as_ref().map(ToString::to_string), text));
        Ok(reply)
    }
}

async fn ask(system: &ActorSystem, to: &str, text: &str) -> String {
    let reply = system
        .request(
            &ActorAddress::parse(to).unwrap(),
            MessageEnvelope::text(text),
            PATIENCE,
        )
        .await
        .unwrap();
    reply.payload_text().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_javascript_actor_lives_in_the_same_system_as_rust_actors() {
    let engine = airssys_wasm_actor::register(WasmEngine::builder())
        .build()
        .unwrap();
    let path = airssys_wasm_testkit::guests::actor_js();
    let component =
        wasmtime::component::Component::from_file(engine.wasmtime_engine(), &path).unwrap();
    let component = CompiledComponent::new(&engine, "actor-js", component).unwrap();
    // A JavaScript engine needs more than a Rust guest.
    let limits = ResourceLimits::new(64 << 20, 2_000_000_000, Duration::from_secs(10)).unwrap();
    let grants = ActorGrants::none().allow_send("rusty").unwrap();
    let actor = ComponentActor::new(component, Sandbox::new(limits), grants).unwrap();
    let rusty = Rusty::default();
    let system = ActorSystem::default();
    let r = rusty.clone();
    system
        .start(
            SupervisorSpec::new("root")
                .backoff(RestartBackoff::none())
                .child(ChildSpec::actor("rusty", move || r.clone()))
                .child(ChildSpec::component("js", actor)),
        )
        .await
        .unwrap();

    assert_eq!(
        ask(&system, "js", "echo hello from js").await,
        "hello from js"
    );
    assert_eq!(ask(&system, "js", "self").await, "js");
    assert_eq!(ask(&system, "js", "count").await, "1");
    assert_eq!(ask(&system, "js", "count").await, "2");
    assert_eq!(ask(&system, "js", "send rusty hi").await, "ok");
    let denied = ask(&system, "js", "send elsewhere hi").await;
    assert!(denied.starts_with("error: denied: "), "{denied}");
    // A request from JavaScript to the Rust actor: the reply comes back as a message.
    let asked = ask(&system, "js", "ask rusty ping").await;
    let id = asked.strip_prefix("asked ").unwrap().to_owned();
    let last = tokio::time::timeout(PATIENCE, async {
        loop {
            let last = ask(&system, "js", "last").await;
            if !last.is_empty() {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(last, format!("reply {id} pong"));
    system.quiesce().await;
    let got = rusty.0.lock().unwrap().clone();
    assert_eq!(
        got,
        [
            (Some("js".to_owned()), "hi".to_owned()),
            (Some("js".to_owned()), "ping".to_owned())
        ]
    );

    // A thrown string is the handler's error, a thrown Error a trap: both failures, and
    // each restart brings fresh state.
    for (command, kind, count) in [
        ("throw", FailureKind::HandlerError, "3"),
        ("crash", FailureKind::Trap, "1"),
    ] {
        assert_eq!(ask(&system, "js", "count").await, count);
        let mut events = system.events();
        let err = system
            .request(
                &ActorAddress::parse("js").unwrap(),
                MessageEnvelope::text(command),
                PATIENCE,
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("`js` failed"), "{err}");
        let reason = tokio::time::timeout(PATIENCE, async {
            loop {
                if let SupervisorEvent::Exited { reason, .. } = events.recv().await.unwrap() {
                    return reason;
                }
            }
        })
        .await
        .unwrap();
        assert!(
            matches!(&reason, ExitReason::Failed(f) if f.kind == kind),
            "{command}: {reason:?}"
        );
        assert_eq!(ask(&system, "js", "get").await, "0");
    }
    system.shutdown().await;
}
