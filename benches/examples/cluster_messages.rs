//! Messages between two processes through NATS, side by side in one run: the bare
//! server (raw `async-nats` clients: one-way publications counted by a subscriber,
//! request/reply to a responder — what `nats bench` measures), actors on two hosts of
//! a cluster (`airssys-wasm-cluster`: tells counted by a Rust actor, requests to it; a
//! durable mailbox's tells, each stored by JetStream before the next), and the same
//! actor in-process. Starts its own `nats-server` on 127.0.0.1 (installed by
//! `scripts/install-test-servers`) and a second process of itself that serves.
//! Prints a Markdown table, then the CPU time each process spent per message (this
//! process, the serving one, the server: its threads' `schedstat`, exact where wall
//! time on a shared 2-core VM wanders).
//!
//! `cargo run --release -p airssys-wasm-benches --example cluster_messages -- [M] [R]`
//! (M one-way messages, default 100,000; R round trips, default 5,000).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::io::BufRead;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use airssys_wasm_actor::{
    ActorAddress, ActorSystem, Backpressure, ChildSpec, MailboxConfig, MessageEnvelope,
    SupervisorSpec,
};
use airssys_wasm_benches::actors::Counter;
use airssys_wasm_cluster::{ClusterConfig, NatsCluster};
use airssys_wasm_testkit::nats::NatsServer;

const PATIENCE: Duration = Duration::from_secs(120);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rt = airssys_wasm_benches::runtime();
    if args.get(1).map(String::as_str) == Some("serve") {
        rt.block_on(serve(args[2].clone()));
        return;
    }
    let m: u64 = args.get(1).map_or(100_000, |a| a.parse().unwrap());
    let r: u32 = args.get(2).map_or(5_000, |a| a.parse().unwrap());
    rt.block_on(async move { tokio::spawn(run(m, r)).await.unwrap() });
}

/// A mailbox whose senders wait for room (a remote sender's messages then wait in
/// NATS's and the host's buffers, not dropped at a full mailbox).
fn blocking() -> MailboxConfig {
    MailboxConfig::new(1024, Backpressure::Block)
}

/// The other process: a host serving `counter` (plain) and `durable` (a durable
/// mailbox), and bare responders on `bare.*`.
async fn serve(url: String) {
    let system = ActorSystem::default();
    system
        .start(
            SupervisorSpec::new("root")
                .child(ChildSpec::actor("counter", Counter::default).mailbox(blocking()))
                .child(ChildSpec::actor("durable", Counter::default).mailbox(blocking())),
        )
        .await
        .unwrap();
    let config = ClusterConfig::new(url.clone())
        .cluster("bench")
        .host("server")
        .durable("durable");
    let _cluster = NatsCluster::join(config, &system).await.unwrap();
    // Room for a whole burst: a bare subscriber that falls behind loses messages (a
    // slow consumer), and the count below would never be reached.
    let client = async_nats::ConnectOptions::new()
        .subscription_capacity(1 << 20)
        .connect(url)
        .await
        .unwrap();
    let mut count = client.subscribe("bare.count").await.unwrap();
    let mut get = client.subscribe("bare.get").await.unwrap();
    let mut echo = client.subscribe("bare.echo").await.unwrap();
    client.flush().await.unwrap();
    let n = Arc::new(AtomicU64::new(0));
    let counted = n.clone();
    tokio::spawn(async move {
        while count.next().await.is_some() {
            counted.fetch_add(1, Ordering::Relaxed);
        }
    });
    let c = client.clone();
    tokio::spawn(async move {
        while let Some(msg) = echo.next().await {
            if let Some(reply) = msg.reply {
                c.publish(reply, msg.payload).await.unwrap();
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!("serving");
    while let Some(msg) = get.next().await {
        if let Some(reply) = msg.reply {
            let text = n.load(Ordering::Relaxed).to_string();
            client.publish(reply, text.into()).await.unwrap();
        }
    }
}

async fn run(m: u64, r: u32) {
    let server = NatsServer::start(&[]).expect("nats-server (scripts/install-test-servers)");
    let mut child = Serving(
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["serve", &server.url()])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let out = child.0.stdout.take().unwrap();
    let ready = std::io::BufReader::new(out)
        .lines()
        .map_while(Result::ok)
        .any(|l| l == "serving");
    assert!(ready);
    let cpu = Cpu([std::process::id(), child.0.id(), server.pid().unwrap()]);
    let mut rows = Vec::new();

    // Bare NATS.
    let bare = async_nats::connect(server.url()).await.unwrap();
    let before = cpu.now();
    let start = Instant::now();
    for _ in 0..m {
        bare.publish("bare.count", "count".into()).await.unwrap();
    }
    bare.flush().await.unwrap();
    counted(&bare, m).await;
    let bare_one_way = m as f64 / start.elapsed().as_secs_f64();
    rows.push(("one-way, bare NATS", cpu.per(before, m)));
    // The same with headers like ours (content type, sending host, when sent).
    let before = cpu.now();
    let start = Instant::now();
    for i in 0..m {
        let mut h = async_nats::HeaderMap::new();
        h.insert("Content-Type", "text/plain");
        h.insert("Airssys-Host", "client");
        h.insert("Airssys-Sent-At-Ms", i.to_string().as_str());
        bare.publish_with_headers("bare.count", h, "count".into())
            .await
            .unwrap();
    }
    bare.flush().await.unwrap();
    counted(&bare, 2 * m).await;
    let headed_one_way = m as f64 / start.elapsed().as_secs_f64();
    rows.push(("one-way, bare NATS with three headers", cpu.per(before, m)));
    let before = cpu.now();
    let start = Instant::now();
    for _ in 0..r {
        bare.request("bare.echo", "echo x".into()).await.unwrap();
    }
    let bare_rr = start.elapsed() / r;
    rows.push(("round trip, bare NATS", cpu.per(before, r.into())));

    // Actors on two hosts.
    let system = ActorSystem::default();
    system
        .start(
            SupervisorSpec::new("root")
                .child(ChildSpec::actor("local", Counter::default).mailbox(blocking())),
        )
        .await
        .unwrap();
    let config = ClusterConfig::new(server.url())
        .cluster("bench")
        .host("client");
    let cluster = NatsCluster::join(config, &system).await.unwrap();
    assert!(cluster.wait_for("counter", PATIENCE).await);
    assert!(cluster.wait_for("durable", PATIENCE).await);
    let counter = ActorAddress::named("counter").unwrap();
    let before = cpu.now();
    let start = Instant::now();
    for _ in 0..m {
        system
            .send(&counter, MessageEnvelope::text("count"))
            .await
            .unwrap();
    }
    let got = system
        .request(&counter, MessageEnvelope::text("get"), PATIENCE)
        .await
        .unwrap();
    assert_eq!(got.payload_text(), Some(m.to_string().as_str()));
    let one_way = m as f64 / start.elapsed().as_secs_f64();
    rows.push(("one-way, actors on two hosts", cpu.per(before, m)));
    let before = cpu.now();
    let start = Instant::now();
    for _ in 0..r {
        system
            .request(&counter, MessageEnvelope::text("echo x"), PATIENCE)
            .await
            .unwrap();
    }
    let rr = start.elapsed() / r;
    rows.push(("round trip, actors on two hosts", cpu.per(before, r.into())));

    // A durable mailbox: each tell stored by JetStream before `send` returns.
    let durable = ActorAddress::named("durable").unwrap();
    let d = m.min(20_000);
    let start = Instant::now();
    for _ in 0..d {
        system
            .send(&durable, MessageEnvelope::text("count"))
            .await
            .unwrap();
    }
    let stored = d as f64 / start.elapsed().as_secs_f64();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let got = system
            .request(&durable, MessageEnvelope::text("get"), PATIENCE)
            .await
            .unwrap();
        if got.payload_text() == Some(d.to_string().as_str()) {
            break;
        }
        assert!(Instant::now() < deadline, "durable messages lost");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let durable_handled = d as f64 / start.elapsed().as_secs_f64();

    // In-process, for scale.
    let local = ActorAddress::named("local").unwrap();
    let start = Instant::now();
    for _ in 0..m {
        system
            .send(&local, MessageEnvelope::text("count"))
            .await
            .unwrap();
    }
    system
        .request(&local, MessageEnvelope::text("get"), PATIENCE)
        .await
        .unwrap();
    let local_one_way = m as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for _ in 0..r {
        system
            .request(&local, MessageEnvelope::text("echo x"), PATIENCE)
            .await
            .unwrap();
    }
    let local_rr = start.elapsed() / r;

    println!(
        "| what | bare NATS (raw async-nats) | actors on two hosts | ours / bare | one process |"
    );
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| one-way messages/s ({m}, one sender, then a request that must count them all) | {bare_one_way:.0} ({headed_one_way:.0} with three headers like ours) | {one_way:.0} | {:.2}× the time ({:.2}× with headers) | {local_one_way:.0} |",
        bare_one_way / one_way,
        headed_one_way / one_way
    );
    println!(
        "| request/reply round trip ({r} in a row) | {:.1} µs | {:.1} µs | {:.2}× | {:.1} µs |",
        bare_rr.as_secs_f64() * 1e6,
        rr.as_secs_f64() * 1e6,
        rr.as_secs_f64() / bare_rr.as_secs_f64(),
        local_rr.as_secs_f64() * 1e6
    );
    println!(
        "| durable mailbox: tells stored by JetStream, one after another ({d}) | | {stored:.0}/s stored, {durable_handled:.0}/s handled | | |"
    );
    println!();
    println!(
        "| CPU µs per message | this process (sends) | the serving process | nats-server | all three |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (what, [a, b, c]) in rows {
        println!("| {what} | {a:.2} | {b:.2} | {c:.2} | {:.2} |", a + b + c);
    }
    cluster.leave().await;
    system.shutdown().await;
}

/// Waits until the bare subscriber in the serving process has counted `n`.
async fn counted(bare: &async_nats::Client, n: u64) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let got = bare.request("bare.get", "".into()).await.unwrap();
        if std::str::from_utf8(&got.payload).unwrap() == n.to_string() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the bare subscriber lost messages"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The serving process, killed when this one is done or fails.
struct Serving(std::process::Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The processes whose CPU time is counted: this one, the serving one, the server.
struct Cpu([u32; 3]);

impl Cpu {
    /// Each process's CPU time so far, in ns: the sum of its threads' `schedstat`.
    fn now(&self) -> [u64; 3] {
        self.0.map(|pid| {
            std::fs::read_dir(format!("/proc/{pid}/task"))
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
                .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
                .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .sum()
        })
    }

    /// µs of CPU per message since `before`, over `n` messages, for each process.
    fn per(&self, before: [u64; 3], n: u64) -> [f64; 3] {
        let now = self.now();
        [0, 1, 2].map(|i| now[i].saturating_sub(before[i]) as f64 / 1e3 / n as f64)
    }
}
