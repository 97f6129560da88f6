//! Component actors (the testkit's `actor-worker`, a Rust guest built with wit-bindgen):
//! replies, messaging Rust actors, requests answered as later messages, grants and their
//! audit, publish and subscribe, spawning, failures told apart (trap, fuel, timeout,
//! memory) and restarted with fresh memory, a crash under load that loses exactly the
//! poison messages, escalation instead of a restart loop, and a ring of 10,000 actors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::{Notify, broadcast};

use airssys_wasm_actor::{
    Actor, ActorAddress, ActorContext, ActorError, ActorGrants, ActorSystem, ActorSystemError,
    ChildSpec, ComponentActor, DeadLetterReason, ExitReason, FailureKind, MessageEnvelope, Reply,
    RestartBackoff, SupervisorEvent, SupervisorSpec,
};
use airssys_wasm_core::ResourceLimits;
use airssys_wasm_engine::{CompiledComponent, Density, Sandbox, WasmEngine};
use airssys_wasm_testkit::guests::{ACTOR_WORKER, CALC};

const PATIENCE: Duration = Duration::from_secs(60);
const MIB: u64 = 1 << 20;

fn limits(fuel: u64, timeout: Duration) -> ResourceLimits {
    ResourceLimits::new(16 * MIB, fuel, timeout).unwrap()
}

fn normal() -> ResourceLimits {
    limits(100_000_000, Duration::from_secs(10))
}

/// One engine (dense: the ring needs 10,000 live instances) and the compiled worker,
/// shared by the tests of this binary.
fn compiled() -> &'static (WasmEngine, CompiledComponent) {
    static C: OnceLock<(WasmEngine, CompiledComponent)> = OnceLock::new();
    C.get_or_init(|| {
        let engine = airssys_wasm_actor::register(WasmEngine::builder())
            .density(Density::for_limits(&normal()))
            .build()
            .unwrap();
        let component =
            wasmtime::component::Component::new(engine.wasmtime_engine(), ACTOR_WORKER).unwrap();
        let component = CompiledComponent::new(&engine, "actor-worker", component).unwrap();
        (engine, component)
    })
}

fn worker(limits: ResourceLimits, grants: ActorGrants) -> ComponentActor {
    ComponentActor::new(compiled().1.clone(), Sandbox::new(limits), grants).unwrap()
}

fn text(t: &str) -> MessageEnvelope {
    MessageEnvelope::text(t)
}

fn addr(a: &str) -> ActorAddress {
    ActorAddress::parse(a).unwrap()
}

async fn ask(system: &ActorSystem, to: &str, t: &str) -> String {
    let reply = system.request(&addr(to), text(t), PATIENCE).await.unwrap();
    reply.payload_text().unwrap().to_owned()
}

/// A message as the inbox keeps it: its sender and its text.
type Got = (Option<String>, String);

/// A Rust actor that records what it is sent.
#[derive(Clone, Default)]
struct Inbox {
    got: Arc<Mutex<Vec<Got>>>,
    more: Arc<Notify>,
}

impl Inbox {
    fn spec(&self, name: &str) -> ChildSpec {
        let me = self.clone();
        ChildSpec::actor(name, move || Collector(me.clone()))
    }

    async fn wait_for(&self, n: usize) -> Vec<Got> {
        tokio::time::timeout(PATIENCE, async {
            loop {
                let more = self.more.notified();
                {
                    let got = self.got.lock().unwrap();
                    if got.len() >= n {
                        return got.clone();
                    }
                }
                more.await;
            }
        })
        .await
        .expect("the messages never came")
    }
}

struct Collector(Inbox);

impl Actor for Collector {
    async fn handle_message(
        &mut self,
        msg: &MessageEnvelope,
        _ctx: &mut ActorContext,
    ) -> Result<Option<Reply>, ActorError> {
        let text = msg.payload_text().unwrap_or("").to_owned();
        if text == "hold" {
            // Never answers in time: the request times out.
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        self.0
            .got
            .lock()
            .unwrap()
            .push((msg.sender.as_ref().map(ToString::to_string), text));
        self.0.more.notify_waiters();
        Ok(None)
    }
}

async fn wait_for<T>(
    events: &mut broadcast::Receiver<SupervisorEvent>,
    mut pick: impl FnMut(&SupervisorEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(PATIENCE, async {
        loop {
            if let Some(t) = pick(&events.recv().await.expect("events")) {
                return t;
            }
        }
    })
    .await
    .expect("the event never came")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_actor_replies_and_messages_rust_actors() {
    let inbox = Inbox::default();
    let system = ActorSystem::default();
    let grants = ActorGrants::none().allow_send("collector").unwrap();
    system
        .start(
            SupervisorSpec::new("root")
                .child(inbox.spec("collector"))
                .child(ChildSpec::component("worker", worker(normal(), grants))),
        )
        .await
        .unwrap();
    assert_eq!(ask(&system, "worker", "echo hello").await, "hello");
    assert_eq!(ask(&system, "worker", "self").await, "worker");
    assert_eq!(ask(&system, "worker", "send collector hi").await, "ok");
    let got = inbox.wait_for(1).await;
    assert_eq!(got, [(Some("worker".to_owned()), "hi".to_owned())]);
    let reply = ask(&system, "worker", "send nobody hi").await;
    assert!(reply.starts_with("error: denied"), "{reply}");
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_between_actors_come_back_as_later_messages() {
    let inbox = Inbox::default();
    let system = ActorSystem::default();
    let all = ActorGrants::all;
    system
        .start(
            SupervisorSpec::new("root")
                .backoff(RestartBackoff::none())
                .child(inbox.spec("collector"))
                .child(ChildSpec::component("a", worker(normal(), all())))
                .child(ChildSpec::component("b", worker(normal(), all()))),
        )
        .await
        .unwrap();
    // A reply.
    let asked = ask(&system, "a", "ask b echo over here").await;
    let id = asked.strip_prefix("ok asked ").unwrap().to_owned();
    let last = poll_last(&system, "a", |l| l.starts_with("reply")).await;
    assert_eq!(last, format!("reply {id} over here"));
    // The target fails while handling it: an error as a later message.
    let asked = ask(&system, "a", "ask b trap").await;
    let id = asked.strip_prefix("ok asked ").unwrap().to_owned();
    let last = poll_last(&system, "a", |l| l.starts_with("request-failed")).await;
    assert!(last.starts_with(&format!("request-failed {id} ")), "{last}");
    assert!(last.contains("trap"), "{last}");
    // No answer within the timeout (1 s in the guest).
    let asked = ask(&system, "a", "ask collector hold").await;
    let id = asked.strip_prefix("ok asked ").unwrap().to_owned();
    let last = poll_last(&system, "a", |l| l.contains(&format!(" {id} "))).await;
    assert!(
        last.starts_with(&format!(
            "request-failed {id} no reply from `collector` within"
        )),
        "{last}"
    );
    // Unknown target: told at once.
    assert!(
        ask(&system, "a", "ask nobody x")
            .await
            .starts_with("error: not-found")
    );
    system.shutdown().await;
}

/// Asks `to` for its `last` until `done` accepts it.
async fn poll_last(system: &ActorSystem, to: &str, done: impl Fn(&str) -> bool) -> String {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let last = ask(system, to, "last").await;
            if done(&last) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("never came")
}

#[test]
fn ungranted_calls_are_the_interfaces_error_and_are_audited() {
    let capture = Capture::default();
    let subscriber = {
        use tracing_subscriber::layer::SubscriberExt;
        tracing_subscriber::registry().with(capture.clone())
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        rt.block_on(async {
            let system = ActorSystem::default();
            let grants = ActorGrants::none()
                .allow_publish("news.*")
                .unwrap()
                .allow_subscribe("news.*")
                .unwrap();
            system
                .start(
                    SupervisorSpec::new("root")
                        .child(ChildSpec::component("w", worker(normal(), grants))),
                )
                .await
                .unwrap();
            for (cmd, ok) in [
                ("send w hello", false),
                ("publish sports.results 1-0", false),
                ("subscribe sports.results", false),
                ("spawn actor-worker", false),
                ("subscribe news.today", true),
                ("publish news.today hello", true),
            ] {
                let reply = ask(&system, "w", cmd).await;
                assert_eq!(reply.starts_with("ok"), ok, "{cmd}: {reply}");
                if !ok {
                    assert!(reply.starts_with("error: denied: `"), "{cmd}: {reply}");
                    assert!(reply.contains("is not granted"), "{reply}");
                }
            }
            // It subscribed to the topic it published to: its own message came back.
            assert_eq!(
                poll_last(&system, "w", |l| !l.is_empty()).await,
                "topic news.today hello"
            );
            system.shutdown().await;
        });
    });
    let audit: Vec<String> = capture
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(target, _)| target == airssys_wasm_engine::AUDIT_TARGET)
        .map(|(_, fields)| fields.clone())
        .collect();
    assert_eq!(audit.len(), 4, "{audit:#?}");
    for (grant, what) in [
        ("actor.send", "w"),
        ("actor.publish", "sports.results"),
        ("actor.subscribe", "sports.results"),
        ("actor.spawn", "actor-worker"),
    ] {
        assert!(
            audit.iter().any(|a| a.contains(grant) && a.contains(what)),
            "{grant} {what}: {audit:#?}"
        );
    }
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<(String, String)>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Fields(String);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                self.0 += &format!("{}={v:?} ", f.name());
            }
        }
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        self.0
            .lock()
            .unwrap()
            .push((event.metadata().target().to_owned(), fields.0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trap_fuel_timeout_and_memory_are_distinct_failures_and_restart_with_fresh_memory() {
    let system = ActorSystem::default();
    let none = ActorGrants::none;
    system
        .start(
            SupervisorSpec::new("root")
                .intensity(20, Duration::from_secs(60))
                .backoff(RestartBackoff::none())
                .child(ChildSpec::component("trap", worker(normal(), none())))
                .child(ChildSpec::component(
                    "fuel",
                    worker(limits(20_000_000, Duration::from_secs(30)), none()),
                ))
                .child(ChildSpec::component(
                    "timeout",
                    worker(limits(u64::MAX / 2, Duration::from_millis(300)), none()),
                ))
                .child(ChildSpec::component("memory", worker(normal(), none()))),
        )
        .await
        .unwrap();
    for (name, poison, kind) in [
        ("trap", "trap", FailureKind::Trap),
        ("fuel", "spin", FailureKind::FuelExhausted),
        ("timeout", "spin", FailureKind::Timeout),
        ("memory", "hoard 64", FailureKind::MemoryLimit),
    ] {
        let mut events = system.events();
        assert_eq!(ask(&system, name, "count").await, "1");
        assert_eq!(ask(&system, name, "count").await, "2");
        let err = system
            .request(&addr(name), text(poison), PATIENCE)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains(&format!("`{name}` failed")),
            "{err}"
        );
        let reason = wait_for(&mut events, |e| match e {
            SupervisorEvent::Exited { child, reason, .. } if child == name => Some(reason.clone()),
            _ => None,
        })
        .await;
        let ExitReason::Failed(failure) = reason else {
            panic!("{reason:?}")
        };
        assert_eq!(failure.kind, kind, "{name}: {failure}");
        // Restarted from the compiled component: fresh memory, the counter at zero.
        assert_eq!(ask(&system, name, "get").await, "0", "{name}");
        let letter = system.dead_letters().recent().pop().unwrap();
        assert_eq!(letter.to, name);
        assert!(
            matches!(letter.reason, DeadLetterReason::HandlerFailed(ref why) if why.starts_with(kind.as_str())),
            "{:?}",
            letter.reason
        );
    }
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_crashing_under_load_loses_exactly_the_poison_messages() {
    const N: u64 = 2000;
    let inbox = Inbox::default();
    let system = ActorSystem::default();
    let grants = ActorGrants::none().allow_send("collector").unwrap();
    system
        .start(
            SupervisorSpec::new("root")
                .intensity(100, Duration::from_secs(60))
                .backoff(RestartBackoff::none())
                .child(
                    inbox
                        .spec("collector")
                        .mailbox(airssys_wasm_actor::MailboxConfig::new(
                            N as usize,
                            airssys_wasm_actor::Backpressure::Block,
                        )),
                )
                .child(
                    ChildSpec::component("worker", worker(normal(), grants)).mailbox(
                        airssys_wasm_actor::MailboxConfig::new(
                            64,
                            airssys_wasm_actor::Backpressure::Block,
                        ),
                    ),
                ),
        )
        .await
        .unwrap();
    let worker = system.lookup("worker").unwrap();
    let poison = |i: u64| i % 200 == 199;
    let mut want = BTreeSet::new();
    for i in 0..N {
        if poison(i) {
            worker.tell(text("trap")).await.unwrap();
        } else {
            worker.tell(text(&format!("work {i}"))).await.unwrap();
            want.insert(format!("done {i}"));
        }
    }
    // Every message handled, and what each started: nothing waits or runs any more.
    tokio::time::timeout(PATIENCE, system.quiesce())
        .await
        .unwrap();
    let got = inbox.got.lock().unwrap().clone();
    assert_eq!(got.len(), want.len(), "each `done` exactly once");
    let got: BTreeSet<String> = got.into_iter().map(|(_, t)| t).collect();
    assert_eq!(got, want);
    let lost = N - want.len() as u64;
    assert_eq!(system.dead_letters().count(), lost);
    assert!(system.dead_letters().recent().iter().all(|l| {
        matches!(&l.reason, DeadLetterReason::HandlerFailed(why) if why.starts_with("trap"))
    }));
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actor_failing_on_every_message_ends_in_escalation_not_a_restart_loop() {
    let system = ActorSystem::default();
    let inner = SupervisorSpec::new("inner")
        .intensity(3, Duration::from_secs(60))
        .backoff(RestartBackoff::none())
        .child(ChildSpec::component(
            "w",
            worker(normal(), ActorGrants::none()),
        ));
    system
        .start(
            SupervisorSpec::new("root")
                .intensity(0, Duration::from_secs(60))
                .child(ChildSpec::supervisor(inner)),
        )
        .await
        .unwrap();
    let mut events = system.events();
    let w = system.lookup("w").unwrap();
    for _ in 0..20 {
        w.tell(text("fail")).await.unwrap();
    }
    let reason = tokio::time::timeout(PATIENCE, system.wait_terminated())
        .await
        .unwrap();
    assert!(reason.contains("more than 0 restarts"), "{reason}");
    let mut starts = 0;
    let mut escalated = Vec::new();
    while let Ok(e) = events.try_recv() {
        match e {
            SupervisorEvent::Started { .. } => starts += 1,
            SupervisorEvent::Escalated { supervisor, .. } => escalated.push(supervisor.to_string()),
            _ => {}
        }
    }
    assert_eq!(starts, 3, "three restarts, then escalation");
    assert_eq!(escalated, ["inner", "root"]);
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actors_spawn_registered_components_where_granted() {
    let system = ActorSystem::default();
    let grants = ActorGrants::none().allow_spawn("actor-*").unwrap();
    system.register_component("actor-worker", worker(normal(), ActorGrants::none()));
    system
        .start(
            SupervisorSpec::new("root")
                .child(ChildSpec::component("parent", worker(normal(), grants))),
        )
        .await
        .unwrap();
    let reply = ask(&system, "parent", "spawn actor-worker").await;
    let child = reply.strip_prefix("ok ").unwrap().to_owned();
    assert!(child.starts_with('$'), "{child}");
    assert_eq!(ask(&system, &child, "self").await, child);
    assert!(
        ask(&system, "parent", "spawn nothing-like-it")
            .await
            .starts_with("error: denied")
    );
    assert!(
        ask(&system, "parent", "spawn actor-unknown")
            .await
            .starts_with("error: not-found")
    );
    assert_eq!(system.actor_count(), 2);
    system.shutdown().await;
    assert_eq!(system.actor_count(), 0);
}

#[test]
fn a_component_that_is_not_an_actor_is_refused_before_anything_starts() {
    let (engine, _) = compiled();
    let calc = wasmtime::component::Component::new(engine.wasmtime_engine(), CALC).unwrap();
    let calc = CompiledComponent::new(engine, "calc", calc).unwrap();
    let err = ComponentActor::new(calc, Sandbox::new(normal()), ActorGrants::none()).unwrap_err();
    assert!(matches!(err, ActorSystemError::NotAnActor { .. }));
    let text = err.to_string();
    assert!(text.contains("component `calc` is not an actor"), "{text}");
    assert!(
        text.contains("airssys:actor/handler@0.1.0#handle"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_actors_pass_a_token_around_a_ring() {
    const N: usize = 10_000;
    const LAPS: usize = 2;
    let inbox = Inbox::default();
    let system = ActorSystem::default();
    let grants = ActorGrants::none()
        .allow_send("ring-*")
        .unwrap()
        .allow_send("collector")
        .unwrap();
    let actor = worker(normal(), grants);
    let mut ring = SupervisorSpec::new("ring");
    for i in 0..N {
        ring = ring.child(ChildSpec::component(&format!("ring-{i}"), actor.clone()));
    }
    system
        .start(
            SupervisorSpec::new("root")
                .child(inbox.spec("collector"))
                .child(ChildSpec::supervisor(ring)),
        )
        .await
        .unwrap();
    assert_eq!(system.actor_count(), N + 1);
    let hops = N * LAPS;
    system
        .send(&addr("ring-0"), text(&format!("token {hops} {N}")))
        .await
        .unwrap();
    let got = inbox.wait_for(1).await;
    // The last hop lands where it started, after LAPS laps.
    assert_eq!(got, [(Some("ring-0".to_owned()), "done".to_owned())]);
    assert_eq!(system.dead_letters().count(), 0);
    system.shutdown().await;
}
