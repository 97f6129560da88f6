//! Hosts of one cluster on a real `nats-server` (started by each test on 127.0.0.1,
//! from `scripts/install-test-servers`): messages and requests across hosts, local
//! messages staying local, a name nobody serves, a pool of one name on several hosts
//! (balanced, and answering on when one leaves or vanishes), publications reaching every
//! host, a component actor asking an actor on another host, a NATS restart, and refused
//! credentials. Each "host" is an actor system with its own NATS connection.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::StreamExt;

use airssys_wasm_actor::{
    Actor, ActorAddress, ActorContext, ActorError, ActorGrants, ActorSystem, ChildSpec,
    ComponentActor, MessageEnvelope, Reply, RequestError, SendError, SupervisorSpec, SystemLimits,
};
use airssys_wasm_cluster::{ClusterConfig, ClusterError, Credentials, NatsCluster};
use airssys_wasm_core::ResourceLimits;
use airssys_wasm_engine::{CompiledComponent, Sandbox, WasmEngine};
use airssys_wasm_testkit::guests::ACTOR_WORKER;
use airssys_wasm_testkit::nats::NatsServer;

/// A bound on waiting for what must happen (a hang guard, not a timing test).
const PATIENCE: Duration = Duration::from_secs(20);

/// Replies `TAG TEXT` to a request, counts tells, and with `topic` subscribes to it and
/// records what is published there.
struct Tagged {
    tag: String,
    topic: Option<String>,
    seen: Arc<Mutex<Vec<String>>>,
    count: u64,
}

impl Actor for Tagged {
    async fn pre_start(&mut self, ctx: &mut ActorContext) -> Result<(), ActorError> {
        if let Some(topic) = &self.topic {
            ctx.subscribe(topic)
                .map_err(|e| ActorError::new(e.to_string()))?;
        }
        Ok(())
    }

    async fn handle_message(
        &mut self,
        msg: &MessageEnvelope,
        ctx: &mut ActorContext,
    ) -> Result<Option<Reply>, ActorError> {
        let text = msg.payload_text().unwrap_or("").to_owned();
        // `back TEXT`: TEXT to whoever sent it.
        if let (Some(back), Some(sender)) = (text.strip_prefix("back "), &msg.sender) {
            ctx.send(sender, MessageEnvelope::text(back))
                .await
                .map_err(|e| ActorError::new(e.to_string()))?;
            return Ok(None);
        }
        if let Some(topic) = &msg.topic {
            self.seen.lock().unwrap().push(format!("{topic} {text}"));
            return Ok(None);
        }
        if text == "count" {
            self.count += 1;
            return Ok(None);
        }
        if text == "get" {
            return Ok(Some(Reply::text(self.count.to_string())));
        }
        if text == "silent" {
            return Ok(None);
        }
        if let Some(ms) = text.strip_prefix("sleep ") {
            let ms = ms.parse().map_err(|_| ActorError::new("sleep MS"))?;
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        Ok(Some(Reply::text(format!("{} {text}", self.tag))))
    }
}

fn tagged(name: &str, tag: &str, topic: Option<&str>, seen: &Arc<Mutex<Vec<String>>>) -> ChildSpec {
    let (tag, topic, seen) = (tag.to_owned(), topic.map(str::to_owned), seen.clone());
    ChildSpec::actor(name, move || Tagged {
        tag: tag.clone(),
        topic: topic.clone(),
        seen: seen.clone(),
        count: 0,
    })
}

/// A host: a system with `children`, joined to the cluster on `server`.
async fn host(
    server: &NatsServer,
    name: &str,
    children: Vec<ChildSpec>,
) -> (ActorSystem, NatsCluster) {
    host_of(ActorSystem::default(), server, name, children).await
}

/// `system` as a host with `children`.
async fn host_of(
    system: ActorSystem,
    server: &NatsServer,
    name: &str,
    children: Vec<ChildSpec>,
) -> (ActorSystem, NatsCluster) {
    let mut spec = SupervisorSpec::new("root");
    for c in children {
        spec = spec.child(c);
    }
    system.start(spec).await.unwrap();
    let config = ClusterConfig::new(server.url())
        .cluster("t")
        .host(name)
        .heartbeat(Duration::from_millis(200))
        // Heartbeats a loaded test machine delays by a second are not a host's death.
        .host_timeout(Duration::from_secs(2));
    let cluster = NatsCluster::join(config, &system).await.unwrap();
    (system, cluster)
}

fn addr(name: &str) -> ActorAddress {
    ActorAddress::named(name).unwrap()
}

/// Asks the actor at `to` (a name, `$N` or `$N@HOST`) with `text`.
async fn ask(system: &ActorSystem, to: &str, text: &str) -> Result<String, RequestError> {
    let reply = system
        .request(
            &ActorAddress::parse(to).unwrap(),
            MessageEnvelope::text(text),
            Duration::from_secs(5),
        )
        .await?;
    Ok(reply.payload_text().unwrap_or("").to_owned())
}

/// Each host leaves, then its system drains and stops.
async fn stop(hosts: &[(&ActorSystem, &NatsCluster)]) {
    for (system, cluster) in hosts {
        cluster.leave().await;
        system.shutdown().await;
    }
}

/// Waits until `done` holds (a hang guard of PATIENCE, not a timing test).
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    tokio::time::timeout(PATIENCE, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("never happened: {what}"));
}

/// Asks `to` with `text` until an answer satisfies `ok`; that answer.
async fn ask_until(
    system: &ActorSystem,
    to: &str,
    text: &str,
    ok: impl Fn(&str) -> bool,
    what: &str,
) -> String {
    tokio::time::timeout(PATIENCE, async {
        loop {
            if let Ok(a) = ask(system, to, text).await
                && ok(&a)
            {
                return a;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("never happened: {what}"))
}

/// How many messages a NATS body carries: a batch (`\0awB`, then frames each after its
/// four-byte length) its frames, anything else one.
fn messages_in(body: &[u8]) -> u64 {
    let Some(mut rest) = body.strip_prefix(b"\0awB") else {
        return 1;
    };
    let mut n = 0;
    while let Some((len, tail)) = rest.split_first_chunk::<4>() {
        let len = u32::from_be_bytes(*len) as usize;
        rest = tail.get(len..).expect("a whole frame");
        n += 1;
    }
    n
}

/// Counts the messages on the cluster's actor subjects, seen by a plain NATS client.
async fn observer(server: &NatsServer) -> Arc<AtomicU64> {
    let client = async_nats::connect(server.url()).await.unwrap();
    let mut sub = client.subscribe("airssys.t.actor.>").await.unwrap();
    client.flush().await.unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        let _client = client;
        while let Some(msg) = sub.next().await {
            count.fetch_add(messages_in(&msg.payload), Ordering::Relaxed);
        }
    });
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_message_each_other_and_local_messages_stay_local() {
    let Some(server) = NatsServer::start(&[]) else {
        return;
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let on_wire = observer(&server).await;
    let (a, ca) = host(&server, "a", vec![tagged("alice", "a", None, &seen)]).await;
    let (b, cb) = host(&server, "b", vec![tagged("bob", "b", None, &seen)]).await;
    assert!(cb.wait_for("alice", PATIENCE).await);
    assert!(ca.wait_for("bob", PATIENCE).await);
    assert_eq!(cb.hosts(), vec!["a".to_owned()]);

    // Tells across keep their order; a request after them sees them all.
    for _ in 0..200 {
        b.send(&addr("alice"), MessageEnvelope::text("count"))
            .await
            .unwrap();
    }
    assert_eq!(ask(&b, "alice", "get").await.unwrap(), "200");
    assert_eq!(ask(&a, "bob", "hi").await.unwrap(), "b hi");
    // 200 tells and 2 requests crossed NATS (the observer sees its copies a little
    // later than the hosts).
    until("202 messages on the wire", || {
        on_wire.load(Ordering::Relaxed) >= 202
    })
    .await;
    let crossed = on_wire.load(Ordering::Relaxed);
    assert_eq!(crossed, 202, "200 tells and 2 requests, nothing else");

    // Local messages stay local: nothing more on the wire.
    for _ in 0..100 {
        a.send(&addr("alice"), MessageEnvelope::text("count"))
            .await
            .unwrap();
    }
    assert_eq!(ask(&a, "alice", "get").await.unwrap(), "300");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(on_wire.load(Ordering::Relaxed), crossed);

    // A name no host serves is refused at once, as within one process.
    let err = b
        .send(&addr("nobody"), MessageEnvelope::text("x"))
        .await
        .unwrap_err();
    assert_eq!(err, SendError::NotFound("nobody".into()));
    assert!(matches!(
        ask(&b, "nobody", "x").await,
        Err(RequestError::Undelivered { .. })
    ));

    // A request's timeout holds across hosts; a target that gives no reply says so.
    let slow = b
        .request(
            &addr("alice"),
            MessageEnvelope::text("sleep 1000"),
            Duration::from_millis(200),
        )
        .await;
    assert!(
        matches!(slow, Err(RequestError::Timeout { ref to, timeout }) if to == "alice" && timeout == Duration::from_millis(200)),
        "{slow:?}"
    );
    assert_eq!(
        ask(&b, "alice", "silent").await,
        Err(RequestError::NoReply { to: "alice".into() })
    );
    stop(&[(&a, &ca), (&b, &cb)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_on_several_hosts_is_balanced_and_answers_on_when_one_goes() {
    let Some(server) = NatsServer::start(&[]) else {
        return;
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (a, ca) = host(&server, "a", vec![tagged("worker", "a", None, &seen)]).await;
    let mut b = HostProcess::start(&server, "b");
    let (d, cd) = host(&server, "d", vec![tagged("worker", "d", None, &seen)]).await;
    let (client, cc) = host(&server, "client", vec![]).await;
    assert!(cc.wait_for("worker", PATIENCE).await);
    until("three hosts known", || cc.hosts().len() >= 3).await;

    let tally = |n: usize, phase: &'static str| {
        let client = client.clone();
        async move {
            let mut by: HashMap<String, u32> = HashMap::new();
            for i in 0..n {
                let answer = ask(&client, "worker", &i.to_string())
                    .await
                    .unwrap_or_else(|e| panic!("{phase}, request {i}: {e:?} (so far {by:?})"));
                let (tag, echoed) = answer.split_once(' ').unwrap();
                assert_eq!(echoed, i.to_string());
                *by.entry(tag.to_owned()).or_default() += 1;
            }
            by
        }
    };
    let by = tally(300, "all three up").await;
    assert_eq!(by.len(), 3, "every host answered some: {by:?}");
    assert!(
        by.contains_key("b"),
        "the host in its own process answered: {by:?}"
    );

    // One host leaves in order (SIGTERM): every request is still answered, by the others.
    ca.leave().await;
    a.shutdown().await;
    let by = tally(100, "after one left").await;
    assert!(
        !by.contains_key("a") && by.values().sum::<u32>() == 100,
        "{by:?}"
    );

    // One is killed (SIGKILL: no goodbye): NATS drops its subscription once it sees
    // the connection gone — a request it handed the dead host meanwhile is lost (at most
    // once: it times out) — and from then on the rest answer every request.
    b.kill();
    let short = |text: &'static str| {
        let client = client.clone();
        async move {
            client
                .request(
                    &addr("worker"),
                    MessageEnvelope::text(text),
                    Duration::from_millis(500),
                )
                .await
        }
    };
    tokio::time::timeout(PATIENCE, async {
        let mut in_a_row = 0;
        while in_a_row < 10 {
            in_a_row = if short("probe").await.is_ok() {
                in_a_row + 1
            } else {
                0
            };
        }
    })
    .await
    .expect("the others never answered after the kill");
    let by = tally(100, "after one was killed").await;
    assert_eq!(by.keys().collect::<Vec<_>>(), vec!["d"], "{by:?}");
    // And the client notices it is gone once its heartbeats stop.
    until("the killed host noticed as gone", || {
        cc.hosts() == vec!["d".to_owned()]
    })
    .await;

    stop(&[(&d, &cd), (&client, &cc)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publications_reach_subscribers_on_every_host_once_and_no_other_host() {
    let Some(server) = NatsServer::start(&[]) else {
        return;
    };
    let seen_a = Arc::new(Mutex::new(Vec::new()));
    let seen_b = Arc::new(Mutex::new(Vec::new()));
    let (a, ca) = host(&server, "a", vec![tagged("ra", "a", Some("news"), &seen_a)]).await;
    let (b, cb) = host(&server, "b", vec![tagged("rb", "b", Some("news"), &seen_b)]).await;
    assert!(ca.wait_for("rb", PATIENCE).await);
    assert!(cb.wait_for("ra", PATIENCE).await);
    // Each host takes the topics its actors subscribe to, and no other.
    until("both hosts take `news`", || {
        ca.topics() == ["news"] && cb.topics() == ["news"]
    })
    .await;
    for i in 0..5 {
        // One local subscriber is counted; the other host's is reached over NATS.
        let reached = a
            .publish("news", MessageEnvelope::text(format!("n{i}")))
            .unwrap();
        assert_eq!(reached, 1);
    }
    b.publish("sport", MessageEnvelope::text("ignored"))
        .unwrap();
    let want: Vec<String> = (0..5).map(|i| format!("news n{i}")).collect();
    until("five publications on the other host", || {
        seen_b.lock().unwrap().len() >= 5
    })
    .await;
    a.quiesce().await;
    b.quiesce().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        *seen_a.lock().unwrap(),
        want,
        "once each on the publishing host"
    );
    assert_eq!(
        *seen_b.lock().unwrap(),
        want,
        "once each, in order, on the other host"
    );
    // Its last subscriber gone, a host stops taking the topic.
    assert!(b.stop_child("rb").await);
    until("b no longer takes `news`", || cb.topics().is_empty()).await;
    assert_eq!(ca.topics(), ["news"]);
    stop(&[(&a, &ca), (&b, &cb)]).await;
}

fn compiled() -> &'static (WasmEngine, CompiledComponent) {
    static C: OnceLock<(WasmEngine, CompiledComponent)> = OnceLock::new();
    C.get_or_init(|| {
        let engine = airssys_wasm_actor::register(WasmEngine::builder())
            .build()
            .unwrap();
        let component =
            wasmtime::component::Component::new(engine.wasmtime_engine(), ACTOR_WORKER).unwrap();
        let component = CompiledComponent::new(&engine, "actor-worker", component).unwrap();
        (engine, component)
    })
}

/// The testkit's `actor-worker` as a component actor granted everything.
fn worker() -> ComponentActor {
    let limits = ResourceLimits::new(16 << 20, 100_000_000, Duration::from_secs(10)).unwrap();
    ComponentActor::new(
        compiled().1.clone(),
        Sandbox::new(limits),
        ActorGrants::all(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_actor_reaches_an_actor_on_another_host() {
    let Some(server) = NatsServer::start(&[]) else {
        return;
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let worker = worker();
    let (a, ca) = host(&server, "a", vec![ChildSpec::component("w", worker)]).await;
    let (b, cb) = host(&server, "b", vec![tagged("far", "b", None, &seen)]).await;
    assert!(ca.wait_for("far", PATIENCE).await);
    // The guest's `send` and `request` reach the other host; the reply comes back to the
    // guest as a later message, as within one process.
    assert_eq!(ask(&a, "w", "send far count").await.unwrap(), "ok");
    let asked = ask(&a, "w", "ask far hello").await.unwrap();
    let id = asked.strip_prefix("ok asked ").expect("a correlation id");
    let want = format!("reply {id} b hello");
    ask_until(
        &a,
        "w",
        "last",
        |l| l == want,
        "the reply reached the guest",
    )
    .await;
    assert_eq!(ask(&a, "far", "get").await.unwrap(), "1");
    // And the other way: a request from host b to the component on host a.
    assert_eq!(ask(&b, "w", "echo across").await.unwrap(), "across");
    stop(&[(&a, &ca), (&b, &cb)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_actors_are_reached_across_hosts_by_their_hosts_name_never_another() {
    let Some(server) = NatsServer::start(&[]) else {
        return;
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let worker = worker();
    // The same number of actors on each host: their spawned children number alike.
    let (a, ca) = host(
        &server,
        "a",
        vec![
            ChildSpec::component("wa", worker.clone()),
            tagged("near", "a", None, &seen),
        ],
    )
    .await;
    let (b, cb) = host(
        &server,
        "b",
        vec![
            ChildSpec::component("wb", worker.clone()),
            tagged("far", "b", None, &seen),
        ],
    )
    .await;
    for system in [&a, &b] {
        system.register_component("worker", worker.clone());
    }
    assert!(ca.wait_for("far", PATIENCE).await);
    assert!(cb.wait_for("wa", PATIENCE).await);
    // One spawned child on each host, with the same number: the case where a bare `$N`
    // from another host would reach the wrong actor.
    let on_a = ask(&a, "wa", "spawn worker").await.unwrap();
    let on_b = ask(&b, "wb", "spawn worker").await.unwrap();
    let child = on_a
        .strip_prefix("ok ")
        .expect("a spawned address")
        .to_owned();
    assert!(child.starts_with('$'), "{child}");
    assert_eq!(on_b, on_a, "both hosts numbered their first child alike");

    // a's child tells `far` on b; `far` answers the sender: it reaches a's child.
    assert_eq!(ask(&a, &child, "send far back count").await.unwrap(), "ok");
    let far_side = format!("{child}@a");
    ask_until(
        &a,
        &child,
        "get",
        |n| n == "1",
        "far's answer reached a's child",
    )
    .await;
    // A component on b writes the address as it is known there; requests go too.
    assert_eq!(
        ask(&b, "wb", &format!("send {far_side} count"))
            .await
            .unwrap(),
        "ok"
    );
    assert_eq!(
        ask_until(
            &b,
            &far_side,
            "get",
            |n| n == "2",
            "b's tell reached a's child"
        )
        .await,
        "2"
    );
    // b's own child of that number saw none of it; a bare `$N` on b is b's.
    assert_eq!(ask(&b, &child, "get").await.unwrap(), "0");
    // A host that is not in the cluster, or a number its host does not hold: refused.
    assert!(ask(&b, &format!("{child}@nowhere"), "get").await.is_err());
    assert!(ask(&b, "$999@a", "get").await.is_err());
    stop(&[(&a, &ca), (&b, &cb)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_from_another_host_waits_no_longer_than_the_serving_systems_bound() {
    let Some(server) = NatsServer::start(&[]) else {
        return;
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut limits = SystemLimits::default();
    limits.max_request_timeout = Duration::from_secs(1);
    let (a, ca) = host_of(
        ActorSystem::new(limits),
        &server,
        "a",
        vec![tagged("slow", "a", None, &seen)],
    )
    .await;
    let (b, cb) = host(&server, "b", vec![]).await;
    assert!(cb.wait_for("slow", PATIENCE).await);
    // Within a's bound a request is answered.
    assert_eq!(ask(&b, "slow", "sleep 1").await.unwrap(), "a sleep 1");
    // b asks with 5 s; a allows its actors' requests 1 s: the request times out on
    // a's bound, although the actor would have answered within b's.
    assert!(matches!(
        ask(&b, "slow", "sleep 4000").await,
        Err(RequestError::Timeout { .. })
    ));
    stop(&[(&a, &ca), (&b, &cb)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_carry_on_after_nats_restarts() {
    let Some(mut server) = NatsServer::start(&[]) else {
        return;
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (a, ca) = host(&server, "a", vec![tagged("alice", "a", None, &seen)]).await;
    let (b, cb) = host(&server, "b", vec![]).await;
    assert!(cb.wait_for("alice", PATIENCE).await);
    assert_eq!(ask(&b, "alice", "1").await.unwrap(), "a 1");
    server.kill();
    // While NATS is down a request fails (it does not hang past its timeout).
    assert!(ask(&b, "alice", "2").await.is_err());
    server.restart();
    // The clients reconnect and resubscribe by themselves; requests are answered again.
    let answered = ask_until(&b, "alice", "3", |_| true, "answered after the restart").await;
    assert_eq!(answered, "a 3");
    stop(&[(&a, &ca), (&b, &cb)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_are_a_clear_error_that_shows_none() {
    let Some(server) = NatsServer::start(&["--user", "app", "--pass", "s3cret-pass"]) else {
        return;
    };
    let system = ActorSystem::default();
    let wrong = ClusterConfig::new(server.url()).credentials(Credentials::UserPassword {
        user: "app".into(),
        password: "wrong-pass".into(),
    });
    let err = NatsCluster::join(wrong, &system).await.unwrap_err();
    assert!(matches!(err, ClusterError::Credentials { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("credentials") && !text.contains("wrong-pass"),
        "{text}"
    );
    // In the URL too: redacted in the error.
    let in_url = server.url().replace("nats://", "nats://app:wrong-pass@");
    let err = NatsCluster::join(ClusterConfig::new(in_url), &system)
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("wrong-pass"), "{err}");
    assert!(!format!("{:?}", ClusterConfig::new("nats://u:pw@h:1")).contains("pw"));
    // The right ones join.
    let right = ClusterConfig::new(server.url()).credentials(Credentials::UserPassword {
        user: "app".into(),
        password: "s3cret-pass".into(),
    });
    let cluster = NatsCluster::join(right, &system).await.unwrap();
    cluster.leave().await;
    // No server at all: a clear error too.
    let nowhere = ClusterConfig::new("nats://127.0.0.1:1");
    let err = NatsCluster::join(nowhere, &system).await.unwrap_err();
    assert!(matches!(err, ClusterError::Connect { .. }), "{err:?}");
}

/// A host in a process of its own: this test binary again, running only `host_process`
/// with the server and its name in the environment. Killed (SIGKILL) when dropped.
struct HostProcess(std::process::Child);

impl HostProcess {
    /// A host serving `worker`.
    fn start(server: &NatsServer, name: &str) -> Self {
        Self::start_with(server, name, None)
    }

    /// A host serving `worker`, and ready to run the singleton `boss` (which answers
    /// with the host's name).
    fn start_singleton(server: &NatsServer, name: &str) -> Self {
        Self::spawn(server, name, None, true)
    }

    /// With `durable`: a host serving the durable mailbox `counter`, whose actor writes
    /// each message it handles (its id, payload and when) to that file as it handles
    /// it, taking `delay` over each.
    fn start_with(
        server: &NatsServer,
        name: &str,
        durable: Option<(&std::path::Path, Duration)>,
    ) -> Self {
        Self::spawn(server, name, durable, false)
    }

    fn spawn(
        server: &NatsServer,
        name: &str,
        durable: Option<(&std::path::Path, Duration)>,
        singleton: bool,
    ) -> Self {
        use std::io::BufRead;
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        if singleton {
            cmd.env("AIRSSYS_TEST_HOST_SINGLETON", "1");
        }
        if let Some((file, delay)) = durable {
            cmd.env("AIRSSYS_TEST_HOST_DURABLE", file)
                .env("AIRSSYS_TEST_HOST_DELAY_MS", delay.as_millis().to_string());
        }
        let mut child = cmd
            .args(["host_process", "--exact", "--nocapture", "--test-threads=1"])
            .env("AIRSSYS_TEST_HOST_NATS", server.url())
            .env("AIRSSYS_TEST_HOST_NAME", name)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let ready = std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            // libtest prints the test's name on the same line first.
            .any(|l| l.ends_with("host ready"));
        assert!(ready, "the host process never became ready");
        Self(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Not a test of its own: the body of a [`HostProcess`] (returns at once unless started
/// as one). Serves `worker` as the host named in the environment, for at most two
/// minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_process() {
    let Ok(url) = std::env::var("AIRSSYS_TEST_HOST_NATS") else {
        return;
    };
    let name = std::env::var("AIRSSYS_TEST_HOST_NAME").unwrap();
    let durable = std::env::var_os("AIRSSYS_TEST_HOST_DURABLE");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let system = ActorSystem::default();
    let child = match &durable {
        Some(file) => {
            let file = std::path::PathBuf::from(file);
            let delay = std::env::var("AIRSSYS_TEST_HOST_DELAY_MS")
                .ok()
                .and_then(|d| d.parse().ok())
                .map_or(Duration::ZERO, Duration::from_millis);
            ChildSpec::actor("counter", move || Recorder(file.clone(), delay))
        }
        None => tagged("worker", &name, None, &seen),
    };
    system
        .start(SupervisorSpec::new("root").child(child))
        .await
        .unwrap();
    let mut config = ClusterConfig::new(url)
        .cluster("t")
        .host(&name)
        .heartbeat(Duration::from_millis(200))
        // Heartbeats a loaded test machine delays by a second are not a host's death.
        .host_timeout(Duration::from_secs(2));
    if durable.is_some() {
        config = config.durable("counter").ack_wait(Duration::from_secs(2));
    }
    if std::env::var_os("AIRSSYS_TEST_HOST_SINGLETON").is_some() {
        config = config.singleton(tagged("boss", &name, None, &seen));
    }
    let _cluster = NatsCluster::join(config, &system).await.unwrap();
    // Served once its subscription is in place: its first heartbeat lists the name.
    tokio::time::sleep(Duration::from_millis(300)).await;
    println!("host ready");
    tokio::time::sleep(Duration::from_secs(120)).await;
}

/// Writes each message it handles to its file (`ID PAYLOAD UNIX_MS`), one `write` each:
/// what a SIGKILL cannot take back once the handler returned; takes its delay over each.
struct Recorder(std::path::PathBuf, Duration);

impl Actor for Recorder {
    async fn handle_message(
        &mut self,
        msg: &MessageEnvelope,
        _ctx: &mut ActorContext,
    ) -> Result<Option<Reply>, ActorError> {
        use std::io::Write;
        tokio::time::sleep(self.1).await;
        let line = format!(
            "{} {} {}\n",
            msg.message_id.unwrap_or(0),
            msg.payload_text().unwrap_or(""),
            unix_ms()
        );
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.0)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .map_err(|e| ActorError::new(e.to_string()))?;
        Ok(None)
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// What the recorders wrote: payload → how many times handled, the ids seen, and how
/// many were handled at or after `after` (unix ms).
fn handled(files: &[std::path::PathBuf], after: u64) -> (HashMap<u32, u32>, usize, usize) {
    let mut by_payload: HashMap<u32, u32> = HashMap::new();
    let mut ids = std::collections::HashSet::new();
    let mut late = 0;
    for f in files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for line in text.lines() {
            let mut parts = line.split(' ');
            let (Some(id), Some(payload), Some(at)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if let (Ok(p), Ok(at)) = (payload.parse::<u32>(), at.parse::<u64>()) {
                *by_payload.entry(p).or_default() += 1;
                ids.insert(id.to_owned());
                late += usize::from(at >= after);
            }
        }
    }
    (by_payload, ids.len(), late)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_mailboxes_lose_no_acknowledged_message_when_a_host_is_killed() {
    const N: u32 = 3_000;
    let Some(server) = NatsServer::start(&[]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<std::path::PathBuf> = ["b", "c", "d"]
        .iter()
        .map(|h| dir.path().join(format!("{h}.log")))
        .collect();
    // `b` is slow (20 ms a message): messages pile up in its hands; `c` and `d` are fast.
    let mut hosts: Vec<HostProcess> = ["b", "c", "d"]
        .iter()
        .zip(&files)
        .map(|(h, f)| {
            let delay = if *h == "b" { 20 } else { 0 };
            HostProcess::start_with(&server, h, Some((f, Duration::from_millis(delay))))
        })
        .collect();
    let (client, cc) = host(&server, "client", vec![]).await;
    until("three hosts known", || cc.hosts().len() >= 3).await;

    // Under load, one of the three is killed (SIGKILL) with messages in hand.
    let mut acked = Vec::new();
    let mut refused = 0u32;
    let mut killed_at = u64::MAX;
    for i in 0..N {
        if i == N / 3 {
            hosts[0].kill();
            killed_at = unix_ms();
        }
        match client
            .send(&addr("counter"), MessageEnvelope::text(i.to_string()))
            .await
        {
            Ok(()) => acked.push(i),
            Err(_) => refused += 1,
        }
    }
    assert_eq!(refused, 0, "the stream stored every message");
    // Every acknowledged message is handled, on some host: those the killed one had in
    // hand again, after the ack wait.
    // What was still in the killed host's hands comes back after the ack wait (2 s).
    let redelivered_from = killed_at + 1_500;
    let (by_payload, ids, late) = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let (by_payload, ids, late) = handled(&files, redelivered_from);
            if acked.iter().all(|i| by_payload.contains_key(i)) {
                return (by_payload, ids, late);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        let (by_payload, _, _) = handled(&files, 0);
        let lost: Vec<_> = acked
            .iter()
            .filter(|i| !by_payload.contains_key(i))
            .take(20)
            .collect();
        panic!("acknowledged messages never handled: {lost:?}…")
    });
    let duplicates: u32 = by_payload.values().map(|n| n - 1).sum();
    assert_eq!(
        ids, N as usize,
        "one id per message, the same on a redelivery"
    );
    let on_killed = handled(&files[..1], 0).0.len();
    assert!(
        on_killed > 0,
        "the killed host had handled some before it died"
    );
    assert!(
        late > 0,
        "what the killed host had in hand was handed to the others after the ack wait"
    );
    eprintln!(
        "{N} acknowledged, all handled; {on_killed} by the killed host before it died, \
         {late} by the others after the ack wait (redelivered), {duplicates} twice"
    );
    cc.leave().await;
    client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_singleton_runs_on_one_host_and_moves_when_that_host_is_killed() {
    let Some(server) = NatsServer::start(&[]) else {
        return;
    };
    let mut hosts: HashMap<String, HostProcess> = ["b", "c"]
        .iter()
        .map(|h| ((*h).to_owned(), HostProcess::start_singleton(&server, h)))
        .collect();
    let (client, cc) = host(&server, "client", vec![]).await;
    assert!(cc.wait_for("boss", PATIENCE).await);
    let holder = |answers: &[String]| -> Vec<String> {
        let mut tags: Vec<String> = answers
            .iter()
            .map(|a| a.split_once(' ').unwrap().0.to_owned())
            .collect();
        tags.sort();
        tags.dedup();
        tags
    };
    let mut answers = Vec::new();
    for i in 0..20 {
        answers.push(ask(&client, "boss", &i.to_string()).await.unwrap());
    }
    let first = holder(&answers);
    assert_eq!(first.len(), 1, "one host runs it: {answers:?}");
    let other = if first[0] == "b" { "c" } else { "b" };
    // The holder is killed (SIGKILL): its key expires, the other host takes it over.
    hosts.get_mut(&first[0]).unwrap().kill();
    let moved = ask_until(
        &client,
        "boss",
        "x",
        |a| a.starts_with(other),
        "the singleton moved",
    )
    .await;
    assert_eq!(moved, format!("{other} x"));
    let mut answers = Vec::new();
    for i in 0..20 {
        answers.push(ask(&client, "boss", &i.to_string()).await.unwrap());
    }
    assert_eq!(holder(&answers), vec![other.to_owned()]);
    cc.leave().await;
    client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_singleton_holder_that_leaves_hands_it_over() {
    let Some(server) = NatsServer::start(&[]) else {
        return;
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let join = |name: &'static str| {
        let seen = seen.clone();
        let url = server.url();
        async move {
            let system = ActorSystem::default();
            system.start(SupervisorSpec::new("root")).await.unwrap();
            let config = ClusterConfig::new(url)
                .cluster("t")
                .host(name)
                .heartbeat(Duration::from_millis(200))
                // Heartbeats a loaded test machine delays by a second are not a host's death.
                .host_timeout(Duration::from_secs(2))
                .singleton(tagged("boss", name, None, &seen));
            let cluster = NatsCluster::join(config, &system).await.unwrap();
            (system, cluster)
        }
    };
    let (a, ca) = join("a").await;
    let (b, cb) = join("b").await;
    let (client, cc) = host(&server, "client", vec![]).await;
    assert!(cc.wait_for("boss", PATIENCE).await);
    let first = ask(&client, "boss", "x").await.unwrap();
    let (holder, other, other_system) = if first.starts_with("a ") {
        ((&a, &ca), "b", &b)
    } else {
        ((&b, &cb), "a", &a)
    };
    // Exactly one runs it.
    assert!(holder.0.lookup("boss").is_some() && other_system.lookup("boss").is_none());
    holder.1.leave().await;
    assert!(holder.0.lookup("boss").is_none(), "stopped on leaving");
    let moved = ask_until(
        &client,
        "boss",
        "y",
        |a| a.starts_with(other),
        "the singleton moved",
    )
    .await;
    assert_eq!(moved, format!("{other} y"));
    for (s, c) in [(&a, &ca), (&b, &cb), (&client, &cc)] {
        c.leave().await;
        s.shutdown().await;
    }
}
