//! `cargo xtask load [--seconds N]`: `airssys-wasm serve` against `wasmtime serve` under
//! a real HTTP load generator (`oha`), same component, same limits, both pooled, in one
//! run on 127.0.0.1.
//!
//! - The Rust hello handler (`http-hello`) at 1, 16 and 64 connections: requests/s and
//!   p50/p99 latency for each server, and the ratios.
//! - A mixed run (16 connections): the hostile handler (`http-hostile`), where 10% of
//!   requests hit its hostile paths (a panic, an endless loop, a memory bomb, no
//!   response, an error code) and the rest `/ok`. For `airssys-wasm serve`, every `/ok`
//!   must have answered 200 (read from its access log) and oha must report no transport
//!   error; the server's resident memory is sampled throughout and must stay flat.
//!
//! Results are printed and written into `BENCHMARKS.md` between the `load` markers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::{WASMTIME_CLI, build_cli, install_tool, machine, today, workspace_root};

/// The load generator, from crates.io; without TLS (every target is plain HTTP on
/// 127.0.0.1), which also spares it a C build.
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
/// The mixed run's paths: nine in ten `/ok`, one in ten one of the hostile paths
/// (`oha --rand-regex-url` picks each alternative with the same chance).
const MIXED_PATHS: &str = "(ok|ok|ok|ok|ok|ok|ok|ok|ok|(panic|loop|alloc|no-response|error))";
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
    let oha = install_tool(OHA, "oha", &["--no-default-features"])?;
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

    let hello = guests.join("http-hello.wasm");
    let mut rows = Vec::new();
    for kind in [Kind::Airssys, Kind::Wasmtime] {
        let server = tools.start(kind, &hello, "hello")?;
        tools.oha(&server, "/", 1, 1, false)?; // warm-up: the first compile is behind us
        for c in CONCURRENCY {
            let run = tools.oha(&server, "/", c, seconds, false)?;
            eprintln!("{} hello c={c}: {run}", kind.name());
            rows.push((kind, c, run));
        }
    }

    let hostile = guests.join("http-hostile.wasm");
    let mut mixed = Vec::new();
    for kind in [Kind::Airssys, Kind::Wasmtime] {
        let server = tools.start(kind, &hostile, "mixed")?;
        tools.oha(&server, "/ok", 4, 1, false)?;
        let sampler = Sampler::start(server.child.id());
        let path = format!("/{MIXED_PATHS}");
        let run = tools.oha(&server, &path, MIXED_CONCURRENCY, seconds, true)?;
        let rss = sampler.stop();
        let good = if kind == Kind::Airssys {
            Some(good_requests(&server.log)?)
        } else {
            None
        };
        eprintln!("{} mixed: {run}; rss {rss}", kind.name());
        mixed.push((kind, run, rss, good));
    }

    let report = render(&rows, &mixed, seconds);
    println!("{report}");
    write_report(&report)?;

    // The run's own verdicts: the good requests all served, memory flat.
    let mut failures = Vec::new();
    for (kind, run, rss, good) in &mixed {
        if *kind != Kind::Airssys {
            continue;
        }
        if !run.errors.is_empty() {
            failures.push(format!("transport errors: {:?}", run.errors));
        }
        if let Some(g) = good
            && g.failed > 0
        {
            failures.push(format!("{} of {} good requests failed", g.failed, g.total));
        }
        if rss.growth_kib() > RSS_GROWTH_LIMIT_KIB {
            failures.push(format!("resident memory grew: {rss}"));
        }
    }
    if !failures.is_empty() {
        bail!("the mixed run failed: {}", failures.join("; "));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Airssys,
    Wasmtime,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Airssys => "airssys-wasm serve",
            Kind::Wasmtime => "wasmtime serve",
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
            Kind::Wasmtime => {
                let mut c = Command::new(&self.wasmtime);
                c.arg("serve")
                    .args(["--addr", &addr.to_string()])
                    .args(["-O", "pooling-allocator=y"])
                    .args(["-W", &format!("max-memory-size={MEMORY_BYTES}")])
                    .args(["-W", &format!("fuel={FUEL}")])
                    .args(["-W", &format!("timeout={TIMEOUT}")])
                    // What a Rust std guest imports beyond the proxy world (ours links
                    // all of WASI 0.2 always).
                    .args(["-S", "cli=y"])
                    .arg(component);
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
        let out = c.arg(&url).output().context("running oha")?;
        if !out.status.success() {
            bail!("oha failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Run::parse(&out.stdout)
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
        })
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} requests, statuses {:?}",
            self.rps, self.p50_ms, self.p99_ms, self.total, self.statuses
        )?;
        if !self.errors.is_empty() {
            write!(f, ", errors {:?}", self.errors)?;
        }
        Ok(())
    }
}

/// The good requests of a mixed run, from `airssys-wasm serve`'s access log.
#[derive(Debug, Clone, Copy)]
struct Good {
    total: u64,
    failed: u64,
}

fn good_requests(log: &Path) -> anyhow::Result<Good> {
    let text = std::fs::read_to_string(log)?;
    let mut good = Good {
        total: 0,
        failed: 0,
    };
    for line in text.lines().filter(|l| l.contains("airssys_wasm::access")) {
        if line.contains("GET /ok ") {
            good.total += 1;
            if !line.contains("GET /ok 200") {
                good.failed += 1;
            }
        }
    }
    Ok(good)
}

/// Resident memory of a process, sampled every 100 ms on a thread of its own.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<u64>>,
}

/// The samples of a run, in KiB.
#[derive(Debug, Clone, Copy)]
struct Rss {
    first: u64,
    max: u64,
    last: u64,
}

impl Rss {
    fn growth_kib(self) -> u64 {
        self.last.saturating_sub(self.first)
    }
}

impl std::fmt::Display for Rss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1} → {:.1} MiB (peak {:.1})",
            self.first as f64 / 1024.0,
            self.last as f64 / 1024.0,
            self.max as f64 / 1024.0
        )
    }
}

impl Sampler {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                if let Some(kib) = rss_kib(pid) {
                    samples.push(kib);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            samples
        });
        Self { stop, thread }
    }

    fn stop(self) -> Rss {
        self.stop.store(true, Ordering::Relaxed);
        let samples = self.thread.join().unwrap_or_default();
        Rss {
            first: samples.first().copied().unwrap_or(0),
            max: samples.iter().copied().max().unwrap_or(0),
            last: samples.last().copied().unwrap_or(0),
        }
    }
}

/// `VmRSS` of `pid`, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn render(
    rows: &[(Kind, u32, Run)],
    mixed: &[(Kind, Run, Rss, Option<Good>)],
    seconds: u64,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Measured {} on {}: {seconds} s per run, oha {} and the servers on one machine.\n",
        today(),
        machine(),
        OHA.trim_start_matches("oha@")
    );
    let _ = writeln!(
        s,
        "Hello handler (`http-hello`), limits {MEMORY}, {FUEL} fuel, {TIMEOUT} per request:\n"
    );
    let _ = writeln!(
        s,
        "| connections | airssys req/s | wasmtime req/s | ratio | airssys p50 / p99 | \
         wasmtime p50 / p99 | p99 ratio |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for c in CONCURRENCY {
        let ours = rows.iter().find(|r| r.0 == Kind::Airssys && r.1 == c);
        let theirs = rows.iter().find(|r| r.0 == Kind::Wasmtime && r.1 == c);
        if let (Some((_, _, a)), Some((_, _, w))) = (ours, theirs) {
            let _ = writeln!(
                s,
                "| {c} | {:.0} | {:.0} | {:.2}× | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {:.2}× |",
                a.rps,
                w.rps,
                a.rps / w.rps,
                a.p50_ms,
                a.p99_ms,
                w.p50_ms,
                w.p99_ms,
                a.p99_ms / w.p99_ms
            );
        }
    }
    let _ = writeln!(
        s,
        "\nMixed run (`http-hostile`, {MIXED_CONCURRENCY} connections, one request in ten \
         to /panic, /loop, /alloc, /no-response or /error):\n"
    );
    let _ = writeln!(
        s,
        "| server | req/s | p50 / p99 | statuses | transport errors | good requests failed | \
         resident memory |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for (kind, run, rss, good) in mixed {
        let good = good.map_or_else(
            || "(no access log)".to_owned(),
            |g| format!("{} of {}", g.failed, g.total),
        );
        let statuses: Vec<String> = run
            .statuses
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let errors: u64 = run.errors.values().sum();
        let _ = writeln!(
            s,
            "| {} | {:.0} | {:.2} / {:.2} ms | {} | {errors} | {good} | {rss} |",
            kind.name(),
            run.rps,
            run.p50_ms,
            run.p99_ms,
            statuses.join(", ")
        );
    }
    s
}

fn write_report(report: &str) -> anyhow::Result<()> {
    let path = workspace_root().join("BENCHMARKS.md");
    let text = std::fs::read_to_string(&path)?;
    let (Some(a), Some(b)) = (text.find(LOAD_START), text.find(LOAD_END)) else {
        bail!("BENCHMARKS.md has no {LOAD_START} … {LOAD_END} section");
    };
    let new = format!("{}{LOAD_START}\n{report}{}", &text[..a], &text[b..]);
    std::fs::write(&path, new)?;
    eprintln!("wrote the results into {}", path.display());
    Ok(())
}
