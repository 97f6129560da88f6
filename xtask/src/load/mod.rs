//! `cargo xtask load [--seconds N]`: `airssys-wasm serve` against `wasmtime serve` under
//! a real HTTP load generator (`oha`), same component, same limits, both pooled, in one
//! run on 127.0.0.1.
//!
//! - The Rust hello handler (`http-hello`) at 1, 16 and 64 connections: requests/s and
//!   p50/p99 latency for each server, and the ratios.
//! - Every hello response must be 200 (any other status, or a transport error, fails
//!   the run: a server answering 503 fast is not a fast server).
//! - A mixed run (16 connections), in turns like the hello one: the hostile handler
//!   (`http-hostile`), where 10% of requests hit its hostile paths (a panic, an endless
//!   loop, a memory bomb, no response, an error code) and the rest `/ok`, while slow
//!   clients hold connections beside them (8 that send headers and 2 bytes of a 10 KB
//!   body, then stall; 200 idle ones; each reopened when the server closes it). For
//!   `airssys-wasm serve`, every `/ok` must have answered 200 (read from its access
//!   log, whose count of requests must match oha's: a run that logged none, or fewer
//!   than were answered, fails) and oha must report no transport error; the server's
//!   resident memory is sampled throughout and must stay flat (the last third of the
//!   run within 32 MiB of the first).
//! - `wasmtime serve` runs twice: pooled as it comes, and pooled with the one tuning
//!   ours applies (decommits batched by 16), so that the ratio is not only defaults.
//!
//! Results are printed and written into `BENCHMARKS.md` between the `load` markers.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::proc::{Rss, Sampler, cpu_ticks, ticks_per_second};
use crate::{WASMTIME_CLI, build_cli, install_tool};

mod report;

use report::{render, write_report};

/// The load generator, from crates.io (its default features: it does not build without
/// TLS, though every target here is plain HTTP on 127.0.0.1).
const OHA: &str = "oha@1.16.0";

/// The limits both servers run every request with.
const MEMORY: &str = "16MiB";
const MEMORY_BYTES: &str = "16777216";
const FUEL: &str = "100000000";
const TIMEOUT: &str = "5s";

/// Connections of the hello runs.
const CONCURRENCY: [u32; 3] = [1, 16, 64];
/// Connections of the mixed run.
const MIXED_CONCURRENCY: u32 = 16;
/// The mixed run's hostile paths.
const HOSTILE: [&str; 5] = ["panic", "loop", "alloc", "no-response", "error"];
/// Good paths per hostile one: 45 of 50 alternatives, so one request in ten is hostile.
/// (`oha --rand-regex-url` picks each alternative of a regex with the same chance once
/// it has merged equal ones: `ok|ok|panic` would be half `ok`, hence `ok00` … `ok44`,
/// which the hostile handler answers like `/ok`.)
const GOOD_PER_HOSTILE: usize = 9;

/// The regex of the mixed run's paths.
fn mixed_paths() -> String {
    let good = (0..HOSTILE.len() * GOOD_PER_HOSTILE).map(|i| format!("ok{i:02}"));
    let all: Vec<String> = good
        .chain(HOSTILE.iter().map(|h| (*h).to_owned()))
        .collect();
    format!("/({})", all.join("|"))
}
/// How much the server's resident memory may grow over the mixed run (after its
/// warm-up) before the run fails.
const RSS_GROWTH_LIMIT_KIB: u64 = 32 * 1024;

const LOAD_START: &str = "<!-- load:start (written by `cargo xtask load`) -->";
const LOAD_END: &str = "<!-- load:end -->";

pub(crate) fn load(args: &[String]) -> anyhow::Result<()> {
    let mut seconds = 10u64;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match (arg.as_str(), it.next()) {
            ("--seconds", Some(n)) => seconds = n.parse().context("--seconds N")?,
            _ => bail!("usage: cargo xtask load [--seconds N]"),
        }
    }
    let oha = install_tool(OHA, "oha", &[])?;
    let wasmtime = install_tool(WASMTIME_CLI, "wasmtime", &[])?;
    let airssys = build_cli()?;
    let guests = airssys_wasm_testkit::guests::guests_dir().join("wasm");
    let work = tempfile::tempdir()?;
    let tools = Tools {
        oha,
        airssys,
        wasmtime,
        work: work.path().to_owned(),
    };

    // The servers up at once (an idle one costs nothing), measured in turns — A B C C B
    // A, half the time each — so that a drift of the machine's speed during the run
    // weighs on all alike.
    let hello = guests.join("http-hello.wasm");
    let servers = [
        (Kind::Airssys, tools.start(Kind::Airssys, &hello, "hello")?),
        (
            Kind::Wasmtime,
            tools.start(Kind::Wasmtime, &hello, "hello")?,
        ),
        (
            Kind::WasmtimeBatched,
            tools.start(Kind::WasmtimeBatched, &hello, "hello")?,
        ),
    ];
    for (_, server) in &servers {
        tools.oha(server, "/", 4, 1, false)?; // warm-up
    }
    let half = (seconds / 2).max(1);
    let mut rows = Vec::new();
    for c in CONCURRENCY {
        let mut runs: [Vec<Run>; 3] = [Vec::new(), Vec::new(), Vec::new()];
        for i in [0, 1, 2, 2, 1, 0] {
            runs[i].push(tools.oha(&servers[i].1, "/", c, half, false)?);
        }
        for (i, (kind, _)) in servers.iter().enumerate() {
            let run = Run::mean(&runs[i]);
            eprintln!("{} hello c={c}: {run}", kind.name());
            rows.push((*kind, c, run));
        }
    }
    drop(servers);

    let hostile = guests.join("http-hostile.wasm");
    let kinds = [Kind::Airssys, Kind::Wasmtime, Kind::WasmtimeBatched];
    let mut servers = Vec::new();
    for kind in kinds {
        let server = tools.start(kind, &hostile, "mixed")?;
        tools.oha(&server, "/ok", 4, 1, false)?; // warm-up
        servers.push(server);
    }
    let mut turns: [Vec<Run>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    let mut samples: [Vec<u64>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    let mut logged: [Good; 3] = [Good::default(); 3];
    let mut slow_seen: [SlowSeen; 3] = [SlowSeen::default(); 3];
    for i in [0, 1, 2, 2, 1, 0] {
        let server = &servers[i];
        // The access log from here on: the warm-up's and other turns' requests are not
        // this turn's.
        let log_from = std::fs::metadata(&server.log)?.len();
        let sampler = Sampler::start(server.child.id());
        let slow = SlowClients::start(server.addr);
        let run = tools.oha(server, &mixed_paths(), MIXED_CONCURRENCY, half, true)?;
        slow_seen[i].add(slow.stop());
        samples[i].extend(sampler.stop());
        if kinds[i] == Kind::Airssys {
            logged[i].add(good_requests(&server.log, log_from)?);
        }
        turns[i].push(run);
    }
    drop(servers);
    let mut mixed = Vec::new();
    for (i, kind) in kinds.into_iter().enumerate() {
        let run = Run::mean(&turns[i]);
        let rss = Rss::of(&samples[i]);
        let good = (kind == Kind::Airssys).then_some(logged[i]);
        eprintln!(
            "{} mixed: {run}; rss {rss}; slow clients {}",
            kind.name(),
            slow_seen[i]
        );
        mixed.push((kind, run, rss, good, slow_seen[i]));
    }

    let report = render(&rows, &mixed, seconds);
    println!("{report}");
    write_report(&report)?;

    // The run's own verdicts: every hello request answered 200; in the mixed run the
    // good requests all served (and counted: none logged, or fewer logged than oha saw
    // answered, is a failure too), memory flat.
    let mut failures = Vec::new();
    for (kind, c, run) in &rows {
        let other: u64 = run
            .statuses
            .iter()
            .filter(|(status, _)| status.as_str() != "200")
            .map(|(_, n)| n)
            .sum();
        if other > 0 || !run.errors.is_empty() || run.total == 0 {
            failures.push(format!(
                "{} hello c={c}: statuses {:?}, errors {:?}",
                kind.name(),
                run.statuses,
                run.errors
            ));
        }
    }
    for (kind, run, rss, good, _) in &mixed {
        if *kind != Kind::Airssys {
            continue;
        }
        if !run.errors.is_empty() {
            failures.push(format!("transport errors: {:?}", run.errors));
        }
        if let Some(g) = good {
            let answered: u64 = run.statuses.values().sum();
            // Requests cut off by oha's end may still be logged: up to one a connection
            // a turn.
            let slack = u64::from(MIXED_CONCURRENCY) * 2;
            if g.total == 0 {
                failures.push("no good request was logged".to_owned());
            } else if g.lines < answered || g.lines > answered + slack {
                failures.push(format!(
                    "the access log has {} requests, oha saw {answered} answered",
                    g.lines
                ));
            }
            if g.failed > 0 {
                failures.push(format!("{} of {} good requests failed", g.failed, g.total));
            }
        }
        if rss.growth_kib() > RSS_GROWTH_LIMIT_KIB {
            failures.push(format!("resident memory grew: {rss}"));
        }
    }
    if !failures.is_empty() {
        bail!("the load run failed: {}", failures.join("; "));
    }
    Ok(())
}

/// Slow clients beside a load: 8 connections that send a request's headers and 2 bytes
/// of a declared 10 KB body, then nothing; 200 that connect and send nothing. Each is
/// reopened when the server closes it, until stopped.
struct SlowClients {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<SlowSeen>,
}

/// What the slow clients saw: connections the server closed, and 408 answers.
#[derive(Debug, Default, Clone, Copy)]
struct SlowSeen {
    closed: u64,
    timeouts_408: u64,
}

impl SlowSeen {
    fn add(&mut self, other: SlowSeen) {
        self.closed += other.closed;
        self.timeouts_408 += other.timeouts_408;
    }
}

impl std::fmt::Display for SlowSeen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} closed by the server, {} answered 408",
            self.closed, self.timeouts_408
        )
    }
}

const STALLED: usize = 8;
const IDLE: usize = 200;

impl SlowClients {
    fn start(addr: SocketAddr) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let open = |stalled: bool| -> Option<TcpStream> {
                let mut s = TcpStream::connect(addr).ok()?;
                if stalled {
                    std::io::Write::write_all(
                        &mut s,
                        b"POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\nab",
                    )
                    .ok()?;
                }
                s.set_nonblocking(true).ok()?;
                Some(s)
            };
            let mut seen = SlowSeen::default();
            let mut conns: Vec<(bool, Option<TcpStream>)> =
                (0..STALLED + IDLE).map(|i| (i < STALLED, None)).collect();
            while !flag.load(Ordering::Relaxed) {
                for (stalled, conn) in &mut conns {
                    match conn {
                        None => *conn = open(*stalled),
                        Some(s) => {
                            let mut buf = [0u8; 512];
                            match std::io::Read::read(s, &mut buf) {
                                Ok(0) => {
                                    seen.closed += 1;
                                    *conn = None;
                                }
                                Ok(n) => {
                                    if buf[..n].starts_with(b"HTTP/1.1 408") {
                                        seen.timeouts_408 += 1;
                                    }
                                }
                                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                                Err(_) => {
                                    seen.closed += 1;
                                    *conn = None;
                                }
                            }
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            seen
        });
        Self { stop, thread }
    }

    fn stop(self) -> SlowSeen {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Airssys,
    /// `wasmtime serve` pooled, as it comes.
    Wasmtime,
    /// `wasmtime serve` pooled with decommits batched by 16, as ours are
    /// (`Pooling::decommit_batch_size`): the same tuning on both sides.
    WasmtimeBatched,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Airssys => "airssys-wasm serve",
            Kind::Wasmtime => "wasmtime serve",
            Kind::WasmtimeBatched => "wasmtime serve (batched decommits)",
        }
    }
}

struct Tools {
    oha: PathBuf,
    airssys: PathBuf,
    wasmtime: PathBuf,
    work: PathBuf,
}

/// A server under load; killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    /// Where its stderr (the access log, for ours) goes.
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Tools {
    /// Starts `kind` serving `component` on a free port of 127.0.0.1, with the limits
    /// above, and waits until it accepts connections.
    fn start(&self, kind: Kind, component: &Path, label: &str) -> anyhow::Result<Server> {
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = self.work.join(format!("{label}-{kind:?}.log"));
        let mut command = match kind {
            Kind::Airssys => {
                let mut c = Command::new(&self.airssys);
                c.arg("serve")
                    .arg(component)
                    .args(["--listen", &addr.to_string()])
                    .args(["--memory", MEMORY, "--fuel", FUEL, "--timeout", TIMEOUT])
                    .arg("--no-cache");
                c
            }
            Kind::Wasmtime | Kind::WasmtimeBatched => {
                let mut c = Command::new(&self.wasmtime);
                c.arg("serve")
                    .args(["--addr", &addr.to_string()])
                    .args(["-O", "pooling-allocator=y"])
                    .args(["-W", &format!("max-memory-size={MEMORY_BYTES}")])
                    .args(["-W", &format!("fuel={FUEL}")])
                    .args(["-W", &format!("timeout={TIMEOUT}")])
                    // What a Rust std guest imports beyond the proxy world (ours links
                    // all of WASI 0.2 always).
                    .args(["-S", "cli=y"]);
                if kind == Kind::WasmtimeBatched {
                    c.args(["-O", "pooling-decommit-batch-size=16"]);
                }
                c.arg(component);
                c
            }
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {}", kind.name()))?;
        let server = Server { child, addr, log };
        let start = Instant::now();
        while TcpStream::connect(addr).is_err() {
            if start.elapsed() > Duration::from_secs(120) {
                bail!(
                    "{} did not listen on {addr}: {}",
                    kind.name(),
                    std::fs::read_to_string(&server.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }

    /// One oha run against `server` (`path` a regex when `regex`), waiting for the
    /// requests still in flight at the end.
    fn oha(
        &self,
        server: &Server,
        path: &str,
        connections: u32,
        seconds: u64,
        regex: bool,
    ) -> anyhow::Result<Run> {
        let url = format!("http://{}{path}", server.addr);
        let mut c = Command::new(&self.oha);
        c.args(["--no-tui", "--output-format", "json", "-w"])
            .args(["-z", &format!("{seconds}s")])
            .args(["-c", &connections.to_string()])
            // A gross ceiling: a request past it is an error, not a hang.
            .args(["-t", "30s"]);
        if regex {
            c.arg("--rand-regex-url");
        }
        let pid = server.child.id();
        let cpu_before = cpu_ticks(pid);
        let out = c.arg(&url).output().context("running oha")?;
        let cpu_after = cpu_ticks(pid);
        if !out.status.success() {
            bail!("oha failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let mut run = Run::parse(&out.stdout)?;
        if let (Some(a), Some(b)) = (cpu_before, cpu_after)
            && run.total > 0
        {
            run.cpu_us = Some((b - a) as f64 * 1e6 / ticks_per_second() / run.total as f64);
        }
        Ok(run)
    }
}

/// A free port on 127.0.0.1 (bound, then released for the server to take).
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// What one oha run measured.
#[derive(Debug, Clone)]
struct Run {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    total: u64,
    statuses: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
    /// The server's CPU time (user and system) per request, in µs: what a request
    /// costs, whatever the load generator took of the same two cores.
    cpu_us: Option<f64>,
}

impl Run {
    fn parse(json: &[u8]) -> anyhow::Result<Self> {
        let v: serde_json::Value = serde_json::from_slice(json).context("oha's JSON")?;
        let num = |p: &str| {
            v.pointer(p)
                .and_then(serde_json::Value::as_f64)
                .with_context(|| format!("no {p} in oha's JSON"))
        };
        let counts = |p: &str| -> BTreeMap<String, u64> {
            v.pointer(p)
                .and_then(serde_json::Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0)))
                        .collect()
                })
                .unwrap_or_default()
        };
        let statuses = counts("/statusCodeDistribution");
        let errors = counts("/errorDistribution");
        Ok(Self {
            rps: num("/summary/requestsPerSec")?,
            p50_ms: num("/metrics/latency_ms/p50")?,
            p99_ms: num("/metrics/latency_ms/p99")?,
            total: statuses.values().sum::<u64>() + errors.values().sum::<u64>(),
            statuses,
            errors,
            cpu_us: None,
        })
    }
}

impl Run {
    /// Runs of equal length as one: the means of the rates, latencies and CPU costs;
    /// the counts added up.
    fn mean(runs: &[Run]) -> Run {
        let n = runs.len().max(1) as f64;
        let mean = |f: fn(&Run) -> f64| runs.iter().map(f).sum::<f64>() / n;
        let add = |f: fn(&Run) -> &BTreeMap<String, u64>| {
            let mut all = BTreeMap::new();
            for r in runs {
                for (k, v) in f(r) {
                    *all.entry(k.clone()).or_insert(0) += v;
                }
            }
            all
        };
        let cpu: Vec<f64> = runs.iter().filter_map(|r| r.cpu_us).collect();
        Run {
            rps: mean(|r| r.rps),
            p50_ms: mean(|r| r.p50_ms),
            p99_ms: mean(|r| r.p99_ms),
            total: runs.iter().map(|r| r.total).sum(),
            statuses: add(|r| &r.statuses),
            errors: add(|r| &r.errors),
            cpu_us: (cpu.len() == runs.len())
                .then(|| cpu.iter().sum::<f64>() / cpu.len().max(1) as f64),
        }
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} requests, statuses {:?}",
            self.rps, self.p50_ms, self.p99_ms, self.total, self.statuses
        )?;
        if let Some(us) = self.cpu_us {
            write!(f, ", server CPU {us:.1} µs/request")?;
        }
        if !self.errors.is_empty() {
            write!(f, ", errors {:?}", self.errors)?;
        }
        Ok(())
    }
}

/// The good requests of a mixed run, from `airssys-wasm serve`'s access log.
#[derive(Debug, Clone, Copy, Default)]
struct Good {
    /// `GET /okNN` requests.
    total: u64,
    /// Of those, not answered 200.
    failed: u64,
    /// Every request of the load's (the slow clients' `POST /ok` excluded).
    lines: u64,
}

impl Good {
    fn add(&mut self, other: Good) {
        self.total += other.total;
        self.failed += other.failed;
        self.lines += other.lines;
    }
}

/// The `GET /okNN` lines of the access log past byte `from`: how many, and how many
/// did not answer 200.
fn good_requests(log: &Path, from: u64) -> anyhow::Result<Good> {
    let text = std::fs::read(log)?;
    let text = String::from_utf8_lossy(text.get(usize::try_from(from)?..).unwrap_or_default());
    let mut good = Good::default();
    for line in text.lines().filter(|l| l.contains("airssys_wasm::access")) {
        if line.contains(" GET /") {
            good.lines += 1;
        }
        let Some((_, rest)) = line.split_once("GET /ok") else {
            continue;
        };
        good.total += 1;
        // `GET /ok17 200 …`: the status follows the path.
        if rest.split_whitespace().nth(1) != Some("200") {
            good.failed += 1;
        }
    }
    Ok(good)
}
