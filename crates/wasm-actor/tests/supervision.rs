//! Rust actors under supervision: the strategies × policies matrix, restart intensity
//! and escalation, backoff, error actions, panics, and what happens to messages —
//! mailboxes that survive restarts, dead letters, priorities, time to live, the
//! backpressure strategies, and a draining shutdown in reverse start order.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, broadcast};

use airssys_wasm_actor::{
    Actor, ActorContext, ActorError, ActorSystem, Backpressure, ChildSpec, DeadLetterReason,
    ErrorAction, ExitReason, FailureKind, MailboxConfig, MessageEnvelope, MessagePriority, Reply,
    RequestError, RestartBackoff, RestartPolicy, SendError, SupervisionStrategy, SupervisorEvent,
    SupervisorSpec,
};

/// A bound on waiting for something that must happen (a hang guard, not a timing test).
const PATIENCE: Duration = Duration::from_secs(20);

/// What the probes of one test share.
#[derive(Default)]
struct Shared {
    starts: Mutex<HashMap<String, u64>>,
    handled: Mutex<Vec<String>>,
    stopped: Mutex<Vec<String>>,
    gate: Notify,
}

impl Shared {
    fn starts(&self, name: &str) -> u64 {
        self.starts.lock().unwrap().get(name).copied().unwrap_or(0)
    }
}

/// A Rust actor driven by text: `ping`, `crash`, `stop`, `resume`, `escalate`, `panic`,
/// `wait` (until the test opens the gate); anything else is recorded.
struct Probe {
    name: String,
    shared: Arc<Shared>,
    next_action: ErrorAction,
}

impl Actor for Probe {
    async fn pre_start(&mut self, _ctx: &mut ActorContext) -> Result<(), ActorError> {
        *self
            .shared
            .starts
            .lock()
            .unwrap()
            .entry(self.name.clone())
            .or_default() += 1;
        Ok(())
    }

    async fn handle_message(
        &mut self,
        msg: &MessageEnvelope,
        _ctx: &mut ActorContext,
    ) -> Result<Option<Reply>, ActorError> {
        let text = msg.payload_text().unwrap_or("").to_owned();
        self.next_action = ErrorAction::Restart;
        match text.as_str() {
            "ping" => return Ok(Some(Reply::text("pong"))),
            "crash" => return Err(ActorError::new("crashed on purpose")),
            "stop" | "resume" | "escalate" => {
                self.next_action = match text.as_str() {
                    "stop" => ErrorAction::Stop,
                    "resume" => ErrorAction::Resume,
                    _ => ErrorAction::Escalate,
                };
                return Err(ActorError::new(text));
            }
            "panic" => panic!("a probe panicked"),
            "wait" => self.shared.gate.notified().await,
            _ => {}
        }
        self.shared.handled.lock().unwrap().push(text);
        Ok(None)
    }

    async fn post_stop(&mut self, _ctx: &mut ActorContext) {
        self.shared.stopped.lock().unwrap().push(self.name.clone());
    }

    fn on_error(&mut self, _error: &ActorError, _ctx: &mut ActorContext) -> ErrorAction {
        self.next_action
    }
}

fn probe(name: &str, shared: &Arc<Shared>) -> ChildSpec {
    let shared = shared.clone();
    let n = name.to_owned();
    ChildSpec::actor(name, move || Probe {
        name: n.clone(),
        shared: shared.clone(),
        next_action: ErrorAction::Restart,
    })
}

fn text(t: &str) -> MessageEnvelope {
    MessageEnvelope::text(t)
}

async fn tell(system: &ActorSystem, to: &str, t: &str) {
    system.lookup(to).unwrap().tell(text(t)).await.unwrap();
}

/// Waits for the first event `pick` accepts.
async fn wait_for<T>(
    events: &mut broadcast::Receiver<SupervisorEvent>,
    mut pick: impl FnMut(&SupervisorEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let event = events.recv().await.expect("events");
            if let Some(t) = pick(&event) {
                return t;
            }
        }
    })
    .await
    .expect("the event never came")
}

/// Waits until `w`'s mailbox is empty.
async fn drained(w: &airssys_wasm_actor::ActorRef) {
    tokio::time::timeout(PATIENCE, async {
        while w.mailbox_len() > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the mailbox never emptied");
}

fn started(e: &SupervisorEvent) -> Option<String> {
    match e {
        SupervisorEvent::Started { child, .. } => Some(child.clone()),
        _ => None,
    }
}

async fn three(strategy: SupervisionStrategy) -> (ActorSystem, Arc<Shared>) {
    let shared = Arc::new(Shared::default());
    let system = ActorSystem::default();
    system
        .start(
            SupervisorSpec::new("root")
                .strategy(strategy)
                .backoff(RestartBackoff::none())
                .child(probe("a", &shared))
                .child(probe("b", &shared))
                .child(probe("c", &shared)),
        )
        .await
        .unwrap();
    (system, shared)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_strategy_restarts_the_children_it_names() {
    for (strategy, expect) in [
        (SupervisionStrategy::OneForOne, [1, 2, 1]),
        (SupervisionStrategy::OneForAll, [2, 2, 2]),
        (SupervisionStrategy::RestForOne, [1, 2, 2]),
    ] {
        let (system, shared) = three(strategy).await;
        let mut events = system.events();
        tell(&system, "b", "crash").await;
        let restarted: usize = expect.iter().filter(|n| **n == 2).count();
        for _ in 0..restarted {
            wait_for(&mut events, started).await;
        }
        let got = ["a", "b", "c"].map(|n| shared.starts(n));
        assert_eq!(got, expect, "{strategy:?}");
        // Every child answers after the restart.
        for n in ["a", "b", "c"] {
            let r = system
                .lookup(n)
                .unwrap()
                .request(text("ping"), PATIENCE)
                .await
                .unwrap();
            assert_eq!(r.payload_text(), Some("pong"));
        }
        system.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_policies_decide_after_failures_and_normal_stops() {
    // (policy, message, restarted?)
    let cases = [
        (RestartPolicy::Permanent, "crash", true),
        (RestartPolicy::Permanent, "stop", true),
        (RestartPolicy::Transient, "crash", true),
        (RestartPolicy::Transient, "stop", false),
        (RestartPolicy::Temporary, "crash", false),
        (RestartPolicy::Temporary, "stop", false),
    ];
    for (policy, msg, restarted) in cases {
        let shared = Arc::new(Shared::default());
        let system = ActorSystem::default();
        system
            .start(
                SupervisorSpec::new("root")
                    .backoff(RestartBackoff::none())
                    .child(probe("w", &shared).restart(policy)),
            )
            .await
            .unwrap();
        let mut events = system.events();
        tell(&system, "w", msg).await;
        let restart = wait_for(&mut events, |e| match e {
            SupervisorEvent::Exited {
                restart, reason, ..
            } => Some((*restart, reason.clone())),
            _ => None,
        })
        .await;
        assert_eq!(restart.0, restarted, "{policy:?} after {msg}");
        let failed =
            matches!(restart.1, ExitReason::Failed(ref f) if f.kind == FailureKind::HandlerError);
        assert_eq!(
            failed,
            msg == "crash",
            "{policy:?} after {msg}: {:?}",
            restart.1
        );
        if restarted {
            wait_for(&mut events, started).await;
            assert_eq!(shared.starts("w"), 2);
            assert!(system.lookup("w").is_some());
        } else {
            assert!(
                system.lookup("w").is_none(),
                "a child not restarted gives up its name"
            );
            let err = system
                .send(
                    &airssys_wasm_actor::ActorAddress::named("w").unwrap(),
                    text("ping"),
                )
                .await
                .unwrap_err();
            assert!(matches!(err, SendError::NotFound(_)), "{err:?}");
        }
        system.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_restarts_escalate_to_the_parent_which_restarts_the_subtree() {
    let shared = Arc::new(Shared::default());
    let system = ActorSystem::default();
    let inner = SupervisorSpec::new("inner")
        .intensity(2, Duration::from_secs(60))
        .backoff(RestartBackoff::none())
        .child(probe("x", &shared));
    system
        .start(
            SupervisorSpec::new("root")
                .intensity(5, Duration::from_secs(60))
                .backoff(RestartBackoff::none())
                .child(probe("before", &shared))
                .child(ChildSpec::supervisor(inner)),
        )
        .await
        .unwrap();
    let mut events = system.events();
    for _ in 0..3 {
        tell(&system, "x", "crash").await;
        wait_for(&mut events, |e| match e {
            SupervisorEvent::Exited { child, .. } if child == "x" => Some(()),
            _ => None,
        })
        .await;
    }
    let reason = wait_for(&mut events, |e| match e {
        SupervisorEvent::Escalated { supervisor, reason } if &**supervisor == "inner" => {
            Some(reason.clone())
        }
        _ => None,
    })
    .await;
    assert!(reason.contains("more than 2 restarts"), "{reason}");
    let exit = wait_for(&mut events, |e| match e {
        SupervisorEvent::Exited {
            supervisor,
            child,
            reason,
            restart,
        } if &**supervisor == "root" => Some((child.clone(), reason.clone(), *restart)),
        _ => None,
    })
    .await;
    assert_eq!(exit.0, "inner");
    assert!(matches!(exit.1, ExitReason::Failed(ref f) if f.kind == FailureKind::Escalated));
    assert!(exit.2);
    // The parent restarted the subtree: x runs again (4th start), `before` untouched.
    let x = wait_for(&mut events, started).await;
    assert_eq!(x, "x");
    assert_eq!(shared.starts("x"), 4);
    assert_eq!(shared.starts("before"), 1);
    let r = system
        .lookup("x")
        .unwrap()
        .request(text("ping"), PATIENCE)
        .await
        .unwrap();
    assert_eq!(r.payload_text(), Some("pong"));
    assert!(system.terminated().is_none());
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_giving_up_ends_the_system_and_escalate_skips_the_intensity() {
    let shared = Arc::new(Shared::default());
    let system = ActorSystem::default();
    system
        .start(
            SupervisorSpec::new("root")
                .intensity(10, Duration::from_secs(60))
                .child(probe("w", &shared)),
        )
        .await
        .unwrap();
    tell(&system, "w", "escalate").await;
    let reason = tokio::time::timeout(PATIENCE, system.wait_terminated())
        .await
        .unwrap();
    assert!(reason.contains("asked to escalate"), "{reason}");
    assert_eq!(shared.starts("w"), 1, "no restart after an escalation");
    assert!(system.terminated().is_some());
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_back_off_exponentially_within_a_window() {
    let shared = Arc::new(Shared::default());
    let system = ActorSystem::default();
    system
        .start(
            SupervisorSpec::new("root")
                .intensity(10, Duration::from_secs(60))
                .backoff(RestartBackoff {
                    initial: Duration::from_millis(5),
                    max: Duration::from_millis(12),
                })
                .child(probe("w", &shared)),
        )
        .await
        .unwrap();
    let mut events = system.events();
    let mut delays = Vec::new();
    for _ in 0..4 {
        tell(&system, "w", "crash").await;
        delays.push(
            wait_for(&mut events, |e| match e {
                SupervisorEvent::Restarting {
                    delay,
                    restarts_in_window,
                    ..
                } => Some((*restarts_in_window, delay.as_millis())),
                _ => None,
            })
            .await,
        );
        wait_for(&mut events, started).await;
    }
    assert_eq!(delays, [(1, 0), (2, 5), (3, 10), (4, 12)]);
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_keeps_the_instance_and_a_panic_is_a_failure_like_any_other() {
    let shared = Arc::new(Shared::default());
    let system = ActorSystem::default();
    system
        .start(
            SupervisorSpec::new("root")
                .backoff(RestartBackoff::none())
                .child(probe("w", &shared)),
        )
        .await
        .unwrap();
    let w = system.lookup("w").unwrap();
    let mut events = system.events();
    w.tell(text("resume")).await.unwrap();
    w.tell(text("after-resume")).await.unwrap();
    assert_eq!(
        w.request(text("ping"), PATIENCE)
            .await
            .unwrap()
            .payload_text(),
        Some("pong")
    );
    assert_eq!(shared.starts("w"), 1);
    assert_eq!(*shared.handled.lock().unwrap(), ["after-resume"]);
    assert_eq!(system.dead_letters().count(), 1);

    let err = w.request(text("panic"), PATIENCE).await.unwrap_err();
    assert!(
        matches!(err, RequestError::Failed { ref reason, .. } if reason.contains("a probe panicked")),
        "{err:?}"
    );
    let reason = wait_for(&mut events, |e| match e {
        SupervisorEvent::Exited { reason, .. } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(
        matches!(reason, ExitReason::Failed(ref f) if f.kind == FailureKind::Panicked),
        "{reason:?}"
    );
    wait_for(&mut events, started).await;
    assert_eq!(shared.starts("w"), 2);
    let letters = system.dead_letters().recent();
    assert!(
        matches!(&letters[1].reason, DeadLetterReason::HandlerFailed(why) if why.contains("panic"))
    );
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mailbox_survives_a_restart_and_only_the_message_in_hand_is_lost() {
    let shared = Arc::new(Shared::default());
    let system = ActorSystem::default();
    system
        .start(
            SupervisorSpec::new("root")
                .backoff(RestartBackoff::none())
                .child(probe("w", &shared)),
        )
        .await
        .unwrap();
    let w = system.lookup("w").unwrap();
    w.tell(text("wait")).await.unwrap();
    w.tell(text("crash")).await.unwrap();
    for i in 0..100 {
        w.tell(text(&format!("m{i}"))).await.unwrap();
    }
    // The request waits behind everything else, through the restart.
    let pending = tokio::spawn({
        let w = w.clone();
        async move { w.request(text("ping"), PATIENCE).await }
    });
    shared.gate.notify_one();
    assert_eq!(pending.await.unwrap().unwrap().payload_text(), Some("pong"));
    let handled = shared.handled.lock().unwrap().clone();
    let want: Vec<String> = std::iter::once("wait".to_owned())
        .chain((0..100).map(|i| format!("m{i}")))
        .collect();
    assert_eq!(handled, want);
    assert_eq!(shared.starts("w"), 2);
    assert_eq!(
        system.dead_letters().count(),
        1,
        "only the crashing message"
    );
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priorities_order_the_mailbox_and_expired_messages_are_dead_letters() {
    let shared = Arc::new(Shared::default());
    let system = ActorSystem::default();
    system
        .start(SupervisorSpec::new("root").child(probe("w", &shared)))
        .await
        .unwrap();
    let w = system.lookup("w").unwrap();
    w.tell(text("wait")).await.unwrap();
    drained(&w).await;
    for (t, p) in [
        ("low", MessagePriority::Low),
        ("normal", MessagePriority::Normal),
        ("critical", MessagePriority::Critical),
        ("high", MessagePriority::High),
    ] {
        w.tell(text(t).with_priority(p)).await.unwrap();
    }
    w.tell(text("expired").with_ttl(Duration::from_millis(1)))
        .await
        .unwrap();
    let expired_request = tokio::spawn({
        let w = w.clone();
        async move {
            w.request(text("ping").with_ttl(Duration::from_millis(1)), PATIENCE)
                .await
        }
    });
    // Both wait in the mailbox longer than their time to live.
    tokio::time::sleep(Duration::from_millis(30)).await;
    shared.gate.notify_one();
    let err = expired_request.await.unwrap().unwrap_err();
    assert!(
        matches!(err, RequestError::Undelivered { ref reason, .. } if reason.contains("time to live")),
        "{err:?}"
    );
    w.request(text("ping"), PATIENCE).await.unwrap();
    assert_eq!(
        *shared.handled.lock().unwrap(),
        ["wait", "critical", "high", "normal", "low"]
    );
    let letters = system.dead_letters().recent();
    assert_eq!(letters.len(), 2);
    assert!(
        letters
            .iter()
            .all(|l| l.reason == DeadLetterReason::Expired)
    );
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_mailbox_refuses_drops_or_blocks_by_its_strategy() {
    for strategy in [Backpressure::Error, Backpressure::Drop, Backpressure::Block] {
        let shared = Arc::new(Shared::default());
        let system = ActorSystem::default();
        system
            .start(
                SupervisorSpec::new("root")
                    .child(probe("w", &shared).mailbox(MailboxConfig::new(2, strategy))),
            )
            .await
            .unwrap();
        let w = system.lookup("w").unwrap();
        w.tell(text("wait")).await.unwrap();
        // The actor holds "wait" once it has taken it out of the mailbox.
        drained(&w).await;
        w.tell(text("one")).await.unwrap();
        w.tell(text("two")).await.unwrap();
        match strategy {
            Backpressure::Error => {
                let err = w.tell(text("three")).await.unwrap_err();
                assert!(matches!(err, SendError::MailboxFull(_)), "{err:?}");
                assert_eq!(system.dead_letters().count(), 1);
            }
            Backpressure::Drop => {
                w.tell(text("three")).await.unwrap();
                assert_eq!(system.dead_letters().count(), 1);
                assert_eq!(
                    system.dead_letters().recent()[0].reason,
                    DeadLetterReason::MailboxFull
                );
            }
            Backpressure::Block => {
                let blocked = tokio::spawn({
                    let w = w.clone();
                    async move { w.tell(text("three")).await }
                });
                assert!(w.try_tell(text("four")).is_err(), "try_tell does not wait");
                shared.gate.notify_one();
                blocked.await.unwrap().unwrap();
            }
        }
        if strategy != Backpressure::Block {
            shared.gate.notify_one();
        }
        drained(&w).await;
        w.request(text("ping"), PATIENCE).await.unwrap();
        let handled = shared.handled.lock().unwrap().clone();
        let want: &[&str] = match strategy {
            Backpressure::Block => &["wait", "one", "two", "three"],
            _ => &["wait", "one", "two"],
        };
        assert_eq!(handled, want, "{strategy:?}");
        system.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_mailboxes_in_reverse_start_order() {
    let shared = Arc::new(Shared::default());
    let system = ActorSystem::default();
    let inner = SupervisorSpec::new("inner").child(probe("c", &shared));
    system
        .start(
            SupervisorSpec::new("root")
                .child(probe("a", &shared))
                .child(probe("b", &shared))
                .child(ChildSpec::supervisor(inner)),
        )
        .await
        .unwrap();
    let counter = Arc::new(AtomicU64::new(0));
    for n in ["a", "b", "c"] {
        for i in 0..50 {
            tell(&system, n, &format!("{n}{i}")).await;
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
    system.shutdown().await;
    assert_eq!(
        shared.handled.lock().unwrap().len() as u64,
        counter.load(Ordering::Relaxed)
    );
    assert_eq!(*shared.stopped.lock().unwrap(), ["c", "b", "a"]);
    assert_eq!(system.dead_letters().count(), 0);
    assert_eq!(system.actor_count(), 0);
    assert!(system.lookup("a").is_none());
}

#[tokio::test]
async fn a_bad_tree_is_refused_before_anything_starts() {
    let shared = Arc::new(Shared::default());
    let system = ActorSystem::default();
    let err = system
        .start(
            SupervisorSpec::new("root")
                .child(probe("a", &shared))
                .child(ChildSpec::supervisor(
                    SupervisorSpec::new("sub").child(probe("a", &shared)),
                )),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`a` is used twice"), "{err}");
    let err = system
        .start(SupervisorSpec::new("root").child(probe("no spaces", &shared)))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot name an actor"), "{err}");
    assert_eq!(shared.starts("a"), 0, "nothing started");
    assert_eq!(system.actor_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_address_goes_round_robin_to_its_live_members() {
    let shared = Arc::new(Shared::default());
    let system = ActorSystem::default();
    system
        .start(
            SupervisorSpec::new("root")
                .child(probe("p-1", &shared))
                .child(probe("p-2", &shared).restart(RestartPolicy::Temporary))
                .child(probe("p-3", &shared)),
        )
        .await
        .unwrap();
    let members: Vec<String> = ["p-1", "p-2", "p-3"].map(String::from).to_vec();
    system.register_pool("p", &members).unwrap();
    assert!(
        system.register_pool("p-1", &members).is_err(),
        "an actor's name"
    );
    let pool = airssys_wasm_actor::ActorAddress::named("p").unwrap();
    for i in 0..6 {
        system.send(&pool, text(&format!("m{i}"))).await.unwrap();
    }
    for n in ["p-1", "p-2", "p-3"] {
        system
            .lookup(n)
            .unwrap()
            .request(text("ping"), PATIENCE)
            .await
            .unwrap();
    }
    assert_eq!(shared.handled.lock().unwrap().len(), 6);
    let mut events = system.events();
    tell(&system, "p-2", "stop").await;
    wait_for(&mut events, |e| {
        matches!(e, SupervisorEvent::Exited { .. }).then_some(())
    })
    .await;
    for i in 0..4 {
        system.send(&pool, text(&format!("n{i}"))).await.unwrap();
    }
    for n in ["p-1", "p-3"] {
        system
            .lookup(n)
            .unwrap()
            .request(text("ping"), PATIENCE)
            .await
            .unwrap();
    }
    assert_eq!(
        shared.handled.lock().unwrap().len(),
        10,
        "the stopped member is skipped"
    );
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_sibling_stopped_by_one_for_all_is_not_started_again() {
    let shared = Arc::new(Shared::default());
    let system = ActorSystem::default();
    system
        .start(
            SupervisorSpec::new("root")
                .strategy(SupervisionStrategy::OneForAll)
                .backoff(RestartBackoff::none())
                .child(probe("a", &shared))
                .child(probe("b", &shared).restart(RestartPolicy::Temporary))
                .child(probe("c", &shared)),
        )
        .await
        .unwrap();
    let mut events = system.events();
    tell(&system, "a", "crash").await;
    for _ in 0..2 {
        wait_for(&mut events, started).await;
    }
    system
        .lookup("c")
        .unwrap()
        .request(text("ping"), PATIENCE)
        .await
        .unwrap();
    assert_eq!(["a", "b", "c"].map(|n| shared.starts(n)), [2, 1, 2]);
    assert!(system.lookup("b").is_none(), "the temporary child is gone");
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_does_not_wait_for_a_restart_backoff() {
    let shared = Arc::new(Shared::default());
    let system = ActorSystem::default();
    system
        .start(
            SupervisorSpec::new("root")
                .intensity(10, Duration::from_secs(3600))
                .backoff(RestartBackoff {
                    initial: Duration::from_secs(3600),
                    max: Duration::from_secs(3600),
                })
                .child(probe("w", &shared)),
        )
        .await
        .unwrap();
    let mut events = system.events();
    tell(&system, "w", "crash").await;
    wait_for(&mut events, started).await;
    tell(&system, "w", "crash").await;
    // The second restart in the window waits an hour.
    let delay = wait_for(&mut events, |e| match e {
        SupervisorEvent::Restarting { delay, .. } if *delay > Duration::ZERO => Some(*delay),
        _ => None,
    })
    .await;
    assert_eq!(delay, Duration::from_secs(3600));
    tokio::time::timeout(PATIENCE, system.shutdown())
        .await
        .expect("the shutdown waited for the backoff");
    assert_eq!(shared.starts("w"), 2, "not restarted after the shutdown");
    assert!(system.lookup("w").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_constructor_that_panics_is_a_failed_start_not_a_dead_supervisor() {
    // At the system's start: refused, with the panic's words.
    let system = ActorSystem::default();
    let err = system
        .start(
            SupervisorSpec::new("root").child(ChildSpec::actor("w", || -> Probe {
                panic!("no constructor today")
            })),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no constructor today"), "{err}");

    // At a restart: the second construction panics, the supervisor takes that as a failed
    // start and restarts again; the third instance answers.
    let shared = Arc::new(Shared::default());
    let made = Arc::new(AtomicU64::new(0));
    let (s, m) = (shared.clone(), made.clone());
    let system = ActorSystem::default();
    system
        .start(
            SupervisorSpec::new("root")
                .backoff(RestartBackoff::none())
                .child(ChildSpec::actor("w", move || {
                    assert_ne!(
                        m.fetch_add(1, Ordering::SeqCst),
                        1,
                        "the second construction"
                    );
                    Probe {
                        name: "w".into(),
                        shared: s.clone(),
                        next_action: ErrorAction::Restart,
                    }
                })),
        )
        .await
        .unwrap();
    let mut events = system.events();
    tell(&system, "w", "crash").await;
    let failed_start = wait_for(&mut events, |e| match e {
        SupervisorEvent::Exited {
            reason: ExitReason::Failed(f),
            ..
        } if f.kind == FailureKind::Panicked => Some(f.message.clone()),
        _ => None,
    })
    .await;
    assert!(
        failed_start.contains("the second construction"),
        "{failed_start}"
    );
    let w = system.lookup("w").unwrap();
    let pong = w.request(text("ping"), PATIENCE).await.unwrap();
    assert_eq!(pong.payload_text(), Some("pong"));
    assert_eq!(made.load(Ordering::SeqCst), 3);
    assert_eq!(shared.starts("w"), 2);
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actor_started_in_a_running_system_is_supervised_and_stops_on_demand() {
    let shared = Arc::new(Shared::default());
    let system = ActorSystem::default();
    assert!(
        system.start_child(probe("late", &shared)).is_err(),
        "no tree yet"
    );
    system
        .start(
            SupervisorSpec::new("root")
                .backoff(RestartBackoff::none())
                .child(probe("a", &shared)),
        )
        .await
        .unwrap();
    system.start_child(probe("late", &shared)).unwrap();
    assert!(matches!(
        system.start_child(probe("late", &shared)),
        Err(airssys_wasm_actor::ActorSystemError::DuplicateName { .. })
    ));
    let late = system.lookup("late").unwrap();
    assert_eq!(
        late.request(text("ping"), PATIENCE)
            .await
            .unwrap()
            .payload_text(),
        Some("pong")
    );
    // Supervised like the others: a crash restarts it (permanent by default).
    let mut events = system.events();
    late.tell(text("crash")).await.unwrap();
    wait_for(&mut events, |e| started(e).filter(|c| c == "late")).await;
    assert_eq!(shared.starts("late"), 2);
    // Stopped on demand: drained, its name free again.
    late.tell(text("kept")).await.unwrap();
    assert!(system.stop_child("late").await);
    assert!(shared.handled.lock().unwrap().contains(&"kept".to_owned()));
    assert!(system.lookup("late").is_none());
    assert!(!system.stop_child("late").await);
    system.start_child(probe("late", &shared)).unwrap();
    system.shutdown().await;
}

/// An actor whose start asks `ask` for `ping` and waits for the answer.
struct Asker {
    ask: &'static str,
    answers: Arc<Mutex<Vec<String>>>,
}

impl Actor for Asker {
    async fn pre_start(&mut self, ctx: &mut ActorContext) -> Result<(), ActorError> {
        let to = airssys_wasm_actor::ActorAddress::named(self.ask).unwrap();
        let reply = ctx
            .request(&to, text("ping"), PATIENCE)
            .await
            .map_err(|e| ActorError::new(e.to_string()))?;
        let answer = reply.payload_text().unwrap_or("").to_owned();
        self.answers.lock().unwrap().push(answer);
        Ok(())
    }

    async fn handle_message(
        &mut self,
        _msg: &MessageEnvelope,
        _ctx: &mut ActorContext,
    ) -> Result<Option<Reply>, ActorError> {
        Ok(None)
    }
}

// One thread: a start that waited on a sibling whose task is not running yet could
// never be answered.
#[tokio::test(flavor = "current_thread")]
async fn a_start_that_waits_on_an_earlier_sibling_is_answered_at_start_and_on_restarts() {
    let shared = Arc::new(Shared::default());
    let answers = Arc::new(Mutex::new(Vec::new()));
    let asker = |ask: &'static str| {
        let answers = answers.clone();
        move || Asker {
            ask,
            answers: answers.clone(),
        }
    };
    let system = ActorSystem::default();
    tokio::time::timeout(
        PATIENCE,
        system.start(
            SupervisorSpec::new("root")
                .strategy(SupervisionStrategy::OneForAll)
                .child(probe("a", &shared))
                .child(ChildSpec::actor("b", asker("a")))
                .child(ChildSpec::supervisor(
                    SupervisorSpec::new("sub").child(ChildSpec::actor("c", asker("a"))),
                )),
        ),
    )
    .await
    .expect("the start never ended")
    .unwrap();
    assert_eq!(*answers.lock().unwrap(), ["pong", "pong"]);
    let mut events = system.events();
    // a's failure restarts all three, in order: b and c ask the new a.
    tell(&system, "a", "crash").await;
    wait_for(&mut events, |e| match e {
        SupervisorEvent::Started { child, .. } if child == "c" => Some(()),
        _ => None,
    })
    .await;
    assert_eq!(shared.starts("a"), 2);
    assert_eq!(*answers.lock().unwrap(), ["pong"; 4]);
    system.shutdown().await;
}
