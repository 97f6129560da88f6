//! `airssys-wasm serve` over real sockets on 127.0.0.1: the server runs as its own
//! process (`--listen 127.0.0.1:0`, the address read from its stderr), driven by a real
//! HTTP/1.1 client (hyper, keep-alive) and, for what a client should not send, by raw
//! TCP. Guests: the testkit's Rust handlers (proxy world only, the rest of WASI, hostile)
//! and its JavaScript one (componentize-js).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{LIMITS, bin};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use airssys_wasm_testkit::guests::{guests_dir, http_js};
use airssys_wasm_testkit::http::{Connection, Upstream, get};

fn guest(name: &str) -> PathBuf {
    guests_dir().join("wasm").join(format!("{name}.wasm"))
}

/// How long a reply may take in these tests (a gross ceiling; most take milliseconds).
const REPLY: Duration = Duration::from_secs(30);

/// A running `airssys-wasm serve`; killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Serves `component` with `flags` (limits included) on a free port of 127.0.0.1.
    fn start(component: &Path, flags: &[&str]) -> Self {
        let mut child = bin()
            .arg("serve")
            .arg(component)
            .args(["--listen", "127.0.0.1:0"])
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line
                    .split_once(" on http://")
                    .and_then(|(_, rest)| rest.split('/').next())
                    .and_then(|a| a.parse::<SocketAddr>().ok())
                {
                    let _ = tx.send(addr);
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        // Compiling a component (the JavaScript one holds an engine) takes a while.
        let Ok(addr) = rx.recv_timeout(Duration::from_secs(180)) else {
            let _ = child.kill();
            panic!("serve did not start:\n{}", log.lock().unwrap());
        };
        Self { child, addr, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits (up to a gross ceiling) until the log holds `needle`; the log.
    fn wait_for_log(&self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                start.elapsed() < REPLY,
                "no {needle:?} in the server log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (up to a gross ceiling) until `n` log lines hold `needle` (a line is
    /// written when its response is done, a moment after the client has it); those
    /// lines, and fails if more turn up.
    fn wait_for_lines(&self, needle: &str, n: usize) -> Vec<String> {
        let start = Instant::now();
        loop {
            let lines: Vec<String> = self
                .log()
                .lines()
                .filter(|l| l.contains(needle))
                .map(str::to_owned)
                .collect();
            assert!(
                lines.len() <= n,
                "{} lines with {needle:?}:\n{}",
                lines.len(),
                self.log()
            );
            if lines.len() == n {
                return lines;
            }
            assert!(
                start.elapsed() < REPLY,
                "{} lines with {needle:?}, not {n}:\n{}",
                lines.len(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` (`TERM`, `INT`) to the server.
    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (up to a gross ceiling) for the server to exit; its exit code and log.
    fn exit(mut self) -> (i32, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return (status.code().expect("killed by a signal"), self.log());
            }
            assert!(
                start.elapsed() < REPLY,
                "serve did not exit:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The limits every server here runs with, followed by `extra`.
fn flags<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut f = LIMITS.to_vec();
    f.extend_from_slice(extra);
    f
}

/// Sends raw bytes on a new connection and reads until the server closes it or
/// `REPLY` passes; what came back.
fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(REPLY)).unwrap();
    stream.write_all(bytes).unwrap();
    let mut reply = Vec::new();
    // A reset after the reply (the server closing with unread input) ends it too.
    let _ = stream.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn keep_alive_serves_many_requests_on_one_connection() {
    let server = Server::start(&guest("http-hello"), &flags(&[]));
    let mut c = Connection::open(server.addr).await.unwrap();
    for i in 0..20 {
        let reply = c.send("GET", "/", b"", REPLY).await.unwrap();
        assert_eq!(reply.status, 200, "request {i}");
        assert_eq!(reply.body, "hello from a wasi:http component\n");
        let body = format!("body {i}");
        let reply = c
            .send("POST", "/echo", body.as_bytes(), REPLY)
            .await
            .unwrap();
        assert_eq!((reply.status, reply.body), (200, body));
        // A handler counting in a global sees 1 every time: each request gets a fresh
        // instance, with nothing of the last one's state.
        let reply = c.send("GET", "/count", b"", REPLY).await.unwrap();
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (200, "count 1\n"),
            "request {i}"
        );
    }
    // One access-log line per request, each a fresh instance's (its own fuel).
    server.wait_for_lines("GET / 200", 20);
    server.wait_for_lines("POST /echo 200", 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn each_request_is_one_access_log_line_with_its_measures() {
    let server = Server::start(&guest("http-hostile"), &flags(&[]));
    let reply = get(server.addr, "/ok?x=1", REPLY).await.unwrap();
    assert_eq!((reply.status, reply.body.as_str()), (200, "ok\n"));
    // The path without its query (which may carry tokens).
    let log = server.wait_for_log("GET /ok 200");
    let line = log.lines().find(|l| l.contains("GET /ok 200")).unwrap();
    assert!(!line.contains("x=1"), "{line}");
    assert!(line.contains("airssys_wasm::access"), "{line}");
    assert!(line.contains("component=http-hostile.wasm"), "{line}");
    assert!(line.contains("status=200"), "{line}");
    for field in ["ms=", "fuel=", "peak_memory="] {
        let value = line
            .split(field)
            .nth(1)
            .and_then(|v| v.split_whitespace().next())
            .unwrap_or_else(|| panic!("no {field} in {line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{field}{value}"));
        assert!(value > 0.0, "{field}{value} in {line}");
    }
}

/// A `Component.toml` in `dir` for the testkit guest `name`, which grants it nothing
/// but its output streams (the default); with `extra` appended.
fn manifest_for(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let text = format!(
        "[component]\nname = \"{name}\"\npath = \"{}\"\n\n[limits]\nmemory = \"16MiB\"\n\
         fuel = 1_000_000_000\ntimeout = \"10s\"\n\n{extra}",
        guest(name).display()
    );
    let path = dir.join("Component.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trap_is_a_generic_500_and_its_detail_stays_in_the_server_log() {
    // The manifest grants stderr (as every manifest does unless it says null): the
    // guest's panic message goes to the log, marked as the component's.
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&manifest_for(dir.path(), "http-hostile", ""), &[]);
    let mut c = Connection::open(server.addr).await.unwrap();
    for path in ["/panic", "/no-response", "/error"] {
        let reply = c.send("GET", path, b"", REPLY).await.unwrap();
        assert_eq!(reply.status, 500, "{path}");
        assert!(!reply.body.contains("secret"), "{path}: {}", reply.body);
        assert!(!reply.body.contains("panicked"), "{path}: {}", reply.body);
        // The server and the connection carry on.
        let reply = c.send("GET", "/ok", b"", REPLY).await.unwrap();
        assert_eq!((reply.status, reply.body.as_str()), (200, "ok\n"), "{path}");
    }
    let log = server.wait_for_log("GET /error 500");
    let panic = log.lines().find(|l| l.contains("GET /panic 500")).unwrap();
    assert!(panic.contains("WARN"), "{panic}");
    let detail = log
        .lines()
        .find(|l| l.contains("secret-guest-detail"))
        .unwrap_or_else(|| panic!("no panic message in the log:\n{log}"));
    assert!(
        detail.starts_with("[http-hostile] INFO stderr: "),
        "guest output must be marked as the component's: {detail}"
    );
}

/// A component served without a manifest is granted no output: what a client makes
/// it write (a panic message here) never reaches the operator's streams.
#[tokio::test(flavor = "multi_thread")]
async fn a_bare_components_output_is_discarded() {
    let server = Server::start(&guest("http-hostile"), &flags(&[]));
    let mut c = Connection::open(server.addr).await.unwrap();
    let reply = c.send("GET", "/panic", b"", REPLY).await.unwrap();
    assert_eq!(reply.status, 500);
    let log = server.wait_for_log("GET /panic 500");
    assert!(!log.contains("secret-guest-detail"), "{log}");
    assert!(!log.contains("panicked at"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_limit_is_500_or_503_and_the_log_names_it() {
    let server = Server::start(
        &guest("http-hostile"),
        &[
            "--memory",
            "16MiB",
            "--fuel",
            "200000000",
            "--timeout",
            "1s",
        ],
    );
    let mut c = Connection::open(server.addr).await.unwrap();
    for (path, status, limit) in [
        ("/loop", 500, "limit=\"fuel\""),
        ("/alloc", 500, "limit=\"memory\""),
        ("/sleep", 503, "limit=\"timeout\""),
    ] {
        let reply = c.send("GET", path, b"", REPLY).await.unwrap();
        assert_eq!(reply.status, status, "{path}: {}", reply.body);
        let line = server.wait_for_log(&format!("GET {path} {status}"));
        let line = line
            .lines()
            .find(|l| l.contains(&format!("GET {path} {status}")))
            .unwrap();
        assert!(line.contains(limit), "{line}");
        let reply = c.send("GET", "/ok", b"", REPLY).await.unwrap();
        assert_eq!(reply.status, 200, "after {path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_concurrency_and_the_queue_a_request_gets_503_at_once() {
    let server = Server::start(
        &guest("http-hostile"),
        &flags(&[
            "--max-concurrency",
            "1",
            "--max-queue",
            "1",
            "--queue-timeout",
            "20s",
        ]),
    );
    let addr = server.addr;
    let requests: Vec<_> = (0..4)
        .map(|_| tokio::spawn(async move { get(addr, "/sleep?ms=1500", REPLY).await }))
        .collect();
    let mut statuses = Vec::new();
    for r in requests {
        let reply = r.await.unwrap().unwrap();
        if reply.status == 200 {
            assert_eq!(reply.body, "woke up\n");
        }
        statuses.push(reply.status);
    }
    statuses.sort_unstable();
    // One runs, one waits for it, the other two are turned away.
    assert_eq!(statuses, [200, 200, 503, 503]);
    server.wait_for_lines("GET /sleep 503", 2);
    // And the server is whole afterwards.
    assert_eq!(get(addr, "/ok", REPLY).await.unwrap().status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn request_bodies_past_the_bound_are_refused() {
    let server = Server::start(
        &guest("http-hello"),
        &flags(&["--max-request-body", "1KiB"]),
    );
    let mut c = Connection::open(server.addr).await.unwrap();
    let reply = c.send("POST", "/echo", &[b'a'; 1024], REPLY).await.unwrap();
    assert_eq!((reply.status, reply.body.len()), (200, 1024));
    // Announced too large (Content-Length): 413 before any instance.
    let reply = c.send("POST", "/echo", &[b'a'; 4096], REPLY).await.unwrap();
    assert_eq!(reply.status, 413);
    // Streamed past the bound (chunked): read before any instance is taken (it is
    // within the buffered 64 KiB), so 413 too, without an instance.
    let chunk = "a".repeat(1500);
    let request = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: \
         close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    let reply = raw(server.addr, request.as_bytes());
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(!reply.contains(&chunk), "{reply}");
    assert_eq!(get(server.addr, "/", REPLY).await.unwrap().status, 200);
}

#[test]
fn bad_input_gets_a_clear_status_or_a_closed_connection() {
    let server = Server::start(&guest("http-hello"), &flags(&["--header-timeout", "1s"]));
    // Not HTTP at all.
    let reply = raw(server.addr, b"NONSENSE\r\n\r\n");
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply:?}");
    // A header flood: past the 64 KiB head bound.
    let mut flood = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..4000 {
        flood.extend_from_slice(format!("X-Flood-{i}: {}\r\n", "f".repeat(20)).as_bytes());
    }
    flood.extend_from_slice(b"\r\n");
    let reply = raw(server.addr, &flood);
    assert!(reply.starts_with("HTTP/1.1 431"), "{reply:?}");
    // A client that never finishes its headers is cut off after --header-timeout.
    let start = Instant::now();
    let reply = raw(server.addr, b"GET / HTTP/1.1\r\nHost: x\r\n");
    let waited = start.elapsed();
    assert!(!reply.contains("200"), "{reply:?}");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(20),
        "{waited:?}"
    );
    // None of it disturbed the server.
    let reply = raw(
        server.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply:?}");
    assert!(
        reply.contains("hello from a wasi:http component\n"),
        "{reply:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_leaving_mid_response_frees_the_instance() {
    let server = Server::start(
        &guest("http-hostile"),
        &flags(&["--max-concurrency", "1", "--timeout", "30s"]),
    );
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    stream.set_read_timeout(Some(REPLY)).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    while got < 256 * 1024 {
        got += stream.read(&mut buf).unwrap();
    }
    drop(stream);
    // The guest's writes fail, its call ends long before the 30 s timeout, and the
    // one instance slot is free again.
    let start = Instant::now();
    server.wait_for_log("GET /stream 200");
    assert!(start.elapsed() < Duration::from_secs(20));
    let reply = get(server.addr, "/ok", REPLY).await.unwrap();
    assert_eq!((reply.status, reply.body.as_str()), (200, "ok\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_the_requests_in_flight_then_exits_0() {
    let server = Server::start(&guest("http-hostile"), &flags(&["--grace", "20s"]));
    let addr = server.addr;
    let in_flight = tokio::spawn(async move { get(addr, "/sleep?ms=3000", REPLY).await });
    // Let the request reach its instance, then ask the server to stop.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    server.signal("TERM");
    server.wait_for_log("SIGTERM: not accepting new connections");
    assert!(TcpStream::connect(addr).is_err(), "still accepting");
    let reply = in_flight.await.unwrap().unwrap();
    assert_eq!((reply.status, reply.body.as_str()), (200, "woke up\n"));
    let (code, log) = tokio::task::spawn_blocking(move || server.exit())
        .await
        .unwrap();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("every request in flight finished"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn when_the_grace_period_runs_out_serve_exits_1() {
    let server = Server::start(
        &guest("http-hostile"),
        &flags(&["--grace", "300ms", "--timeout", "60s"]),
    );
    let addr = server.addr;
    let in_flight = tokio::spawn(async move { get(addr, "/sleep?ms=50000", REPLY).await });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    server.signal("INT");
    let (code, log) = tokio::task::spawn_blocking(move || server.exit())
        .await
        .unwrap();
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("SIGINT"), "{log}");
    assert!(log.contains("grace period (300ms) ran out"), "{log}");
    // The client is not left hanging: its connection is gone.
    assert!(in_flight.await.unwrap().is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_handler_importing_the_rest_of_wasi_serves() {
    let server = Server::start(&guest("http-std"), &flags(&[]));
    let reply = get(server.addr, "/", REPLY).await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body.contains("from std"), "{}", reply.body);
    assert!(reply.body.contains("clock ok: true"), "{}", reply.body);
}

/// A `Component.toml` in `dir` for the JavaScript handler, with `extra` appended.
fn js_manifest(dir: &Path, extra: &str) -> PathBuf {
    let text = format!(
        "[component]\nname = \"http-js\"\npath = \"{}\"\n\n[limits]\nmemory = \"256MiB\"\n\
         fuel = 20_000_000_000\ntimeout = \"10s\"\n\n{extra}",
        http_js().display()
    );
    let path = dir.join("Component.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn a_javascript_handler_serves_and_fetches_only_what_it_is_granted() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = js_manifest(
        dir.path(),
        &format!(
            "[capabilities.http]\noutbound = [\"http://127.0.0.1:{}\"]\n",
            upstream.addr().port()
        ),
    );
    let server = Server::start(&manifest, &["--max-concurrency", "4"]);
    let mut c = Connection::open(server.addr).await.unwrap();

    let reply = c.send("GET", "/hi", b"", REPLY).await.unwrap();
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "hello from javascript: GET /hi\n")
    );
    let reply = c.send("POST", "/echo", b"from js", REPLY).await.unwrap();
    assert_eq!((reply.status, reply.body.as_str()), (200, "from js"));

    // Granted: the upstream answers.
    let path = format!("/fetch?url={}", upstream.url("/hello"));
    let reply = c.send("GET", &path, b"", REPLY).await.unwrap();
    assert_eq!((reply.status, reply.body.as_str()), (200, "status 200\nhi"));
    assert_eq!(upstream.requests(), 1);
    // Not granted (another port): refused host-side, never sent.
    let other = Upstream::start().await;
    let path = format!("/fetch?url={}", other.url("/hello"));
    let reply = c.send("GET", &path, b"", REPLY).await.unwrap();
    assert_eq!(reply.status, 200);
    assert!(reply.body.starts_with("error"), "{}", reply.body);
    assert_eq!(other.requests(), 0);
    server.wait_for_log("denials=1");

    // A JavaScript exception is a generic 500; its message stays in the log.
    let reply = c.send("GET", "/throw", b"", REPLY).await.unwrap();
    assert_eq!(reply.status, 500);
    assert!(!reply.body.contains("secret"), "{}", reply.body);
    server.wait_for_log("GET /throw 500");
    assert!(server.log().contains("secret-guest-detail"));
    let reply = c.send("GET", "/", b"", REPLY).await.unwrap();
    assert_eq!(reply.status, 200);
}

/// Raises this process's open-file limit to its hard limit (the test holds a thousand
/// sockets); the limit now.
fn raise_open_files() -> u64 {
    // SAFETY: a zeroed rlimit is valid for getrlimit to fill in; both calls get valid
    // pointers.
    unsafe {
        let mut l: libc::rlimit = std::mem::zeroed();
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut l), 0);
        l.rlim_cur = l.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
        l.rlim_cur
    }
}

/// The slow clients: with four instances and a queue of four, eight clients
/// that send their headers and 2 bytes of a declared 10 KB body, and a thousand idle
/// connections, do not stop `GET /` from being answered 200 (it used to get 503 for as
/// long as they held their sockets); the stalled ones get 408 after the body timeout.
#[tokio::test(flavor = "multi_thread")]
async fn slow_and_idle_clients_cannot_starve_the_server() {
    let idle_wanted: usize = if raise_open_files() > 2_500 {
        1_000
    } else {
        200
    };
    let server = Server::start(
        &guest("http-hello"),
        &flags(&[
            "--max-concurrency",
            "4",
            "--max-queue",
            "4",
            "--body-timeout",
            "2s",
        ]),
    );
    let mut stalled = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\nab")
            .unwrap();
        stalled.push(s);
    }
    let mut idle = Vec::new();
    for _ in 0..idle_wanted {
        idle.push(TcpStream::connect(server.addr).unwrap());
    }
    let started = Instant::now();
    let reply = get(server.addr, "/", REPLY).await.unwrap();
    eprintln!(
        "GET / beside 8 stalled bodies and {idle_wanted} idle connections: {} in {:?}",
        reply.status,
        started.elapsed()
    );
    assert_eq!(reply.status, 200);
    // Each stalled client is answered 408 once it has paused for the body timeout.
    for mut s in stalled {
        s.set_read_timeout(Some(REPLY)).unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap();
        let head = String::from_utf8_lossy(&buf[..n]);
        assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    }
    server.wait_for_lines("POST /echo 408", 8);
    drop(idle);
}

/// `--log-format json`: every line of the access log is one JSON object, with the
/// request's fields.
#[tokio::test(flavor = "multi_thread")]
async fn the_access_log_can_be_json() {
    let server = Server::start(&guest("http-hello"), &flags(&["--log-format", "json"]));
    assert_eq!(get(server.addr, "/", REPLY).await.unwrap().status, 200);
    let lines = server.wait_for_lines("airssys_wasm::access", 1);
    let line: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(line["target"], "airssys_wasm::access");
    assert_eq!(line["fields"]["status"], 200);
    assert_eq!(line["fields"]["component"], "http-hello.wasm");
}

/// An idle keep-alive connection — after a request, or before any — is closed after
/// `--header-timeout`: idle sockets cannot pile up.
#[test]
fn idle_connections_are_closed_after_the_header_timeout() {
    let server = Server::start(&guest("http-hello"), &flags(&["--header-timeout", "1s"]));
    for first in [&b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..], b""] {
        let mut stream = TcpStream::connect(server.addr).unwrap();
        stream.write_all(first).unwrap();
        // Well past the header timeout, well before the test's ceiling.
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        let mut got = Vec::new();
        let closed = loop {
            let mut buf = [0u8; 4096];
            match stream.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
                Err(_) => break false,
            }
        };
        assert!(closed, "an idle connection stayed open");
        if !first.is_empty() {
            assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
        }
    }
}
