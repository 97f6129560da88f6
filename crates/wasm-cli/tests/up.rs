//! `airssys-wasm up`: the order-pipeline example end to end (a poisoned order restarts
//! one worker and loses nothing else; the totals persist in the key-value store), a
//! graceful stop on SIGTERM that drains every mailbox, and a bad system file or a
//! component that is not an actor refused before anything starts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use common::{bin, code, stderr, stdout};

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/actors")
}

/// `up --once --request ledger=report` on the example with `data` as its data directory:
/// the ledger's totals, as kept in its key-value store.
fn report(data: &std::path::Path) -> String {
    let out = bin()
        .arg("up")
        .arg(example())
        .arg("--data-dir")
        .arg(data)
        .args(["--once", "--request", "ledger=report"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    stdout(&out).trim().to_owned()
}

fn order(i: u32, item: &str, qty: u32) -> String {
    format!("router=order {i} {item} {qty}")
}

/// `--send router=order I ITEM QTY` for each order, numbered from 0.
fn send_orders(cmd: &mut std::process::Command, orders: &[(&str, u32)]) {
    for (i, (item, qty)) in orders.iter().enumerate() {
        cmd.arg("--send").arg(order(i as u32, item, *qty));
    }
}

#[test]
fn the_example_pipeline_survives_a_poisoned_order_and_keeps_its_totals() {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = bin();
    cmd.arg("up")
        .arg(example())
        .arg("--data-dir")
        .arg(data.path())
        .arg("--once");
    send_orders(
        &mut cmd,
        &[("apple", 3), ("pear", 1), ("poison", 1), ("apple", 2)],
    );
    let out = cmd.args(["--request", "ledger=report"]).output().unwrap();
    let log = stderr(&out);
    assert_eq!(code(&out), 0, "{log}");
    assert_eq!(stdout(&out).trim(), "orders=3 apple=5 pear=1", "{log}");
    assert!(
        log.contains("up: orders (5 actor(s) under 2 supervisor(s)"),
        "{log}"
    );
    assert!(
        log.contains("dead letter: the actor failed while handling it: trap"),
        "{log}"
    );
    assert!(
        log.contains("actor failed") && log.contains("reason=\"trap\""),
        "{log}"
    );
    assert!(log.contains("stopped; 1 dead letter(s)"), "{log}");
    // Another run reads the same totals: they are in the key-value store.
    assert_eq!(report(data.path()), "orders=3 apple=5 pear=1");
}

#[test]
fn sigterm_drains_every_mailbox_in_reverse_start_order() {
    const N: u32 = 300;
    let data = tempfile::tempdir().unwrap();
    let mut cmd = bin();
    cmd.arg("up")
        .arg(example())
        .arg("--data-dir")
        .arg(data.path());
    for i in 0..N {
        cmd.arg("--send").arg(order(i, "apple", 1));
    }
    // At once: most orders are still in mailboxes (or not yet sent).
    let (code, log) = Background::start(cmd, "up: ").terminate();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("SIGTERM: stopping; each actor drains its mailbox"),
        "{log}"
    );
    assert!(log.contains("stopped; 0 dead letter(s)"), "{log}");
    assert_eq!(report(data.path()), format!("orders={N} apple={N}"));
}

#[test]
fn a_bad_system_file_is_refused_at_its_line_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let system = dir.path().join("System.toml");
    let worker = example().join("worker");
    std::fs::write(
        &system,
        format!(
            "[[supervisor]]\nname = \"root\"\n\n[[supervisor]]\nname = \"a\"\nparent = \"b\"\n\n\
             [[supervisor]]\nname = \"b\"\nparent = \"a\"\n\n[[actor]]\nname = \"w\"\ncomponent = {:?}\n",
            worker.display().to_string()
        ),
    )
    .unwrap();
    let out = bin().arg("up").arg(&system).arg("--once").output().unwrap();
    let log = stderr(&out);
    assert_eq!(code(&out), 2, "{log}");
    assert!(log.contains("System.toml:4:1"), "{log}");
    assert!(
        log.contains("the supervisors form a cycle: a → b → a"),
        "{log}"
    );
    assert!(!log.contains("up: "), "{log}");
}

#[test]
fn a_component_that_is_not_an_actor_is_refused_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("calc")).unwrap();
    std::fs::write(
        dir.path().join("calc/calc.wasm"),
        airssys_wasm_testkit::guests::CALC,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("calc/Component.toml"),
        "[component]\nname = \"calc\"\npath = \"calc.wasm\"\n\n[limits]\nmemory = \"4MiB\"\nfuel = 1_000_000\ntimeout = \"1s\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("System.toml"),
        "[[actor]]\nname = \"calc\"\ncomponent = \"calc\"\n",
    )
    .unwrap();
    let out = bin()
        .arg("up")
        .arg(dir.path())
        .arg("--once")
        .arg("--no-cache")
        .output()
        .unwrap();
    let log = stderr(&out);
    assert_eq!(code(&out), 3, "{log}");
    assert!(log.contains("System.toml:1:1: "), "{log}");
    assert!(log.contains("component `calc` is not an actor"), "{log}");
    assert!(log.contains("airssys:actor/handler@0.1.0#handle"), "{log}");
    assert!(!log.contains("up: "), "{log}");
}

/// An `up` running in the background, its stderr collected; SIGTERM stops it.
struct Background {
    child: std::process::Child,
    log: Arc<Mutex<String>>,
}

impl Background {
    /// Starts `cmd` and waits until its stderr has a line starting with `ready`.
    fn start(mut cmd: std::process::Command, ready: &'static str) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let err = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if line.starts_with(ready) {
                    let _ = tx.send(());
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        if rx.recv_timeout(Duration::from_secs(120)).is_err() {
            let _ = child.kill();
            panic!("up did not start:\n{}", log.lock().unwrap());
        }
        Self { child, log }
    }

    /// SIGTERM, then its exit code and log.
    fn terminate(mut self) -> (Option<i32>, String) {
        let status = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let status = self.child.wait().unwrap();
        let log = self.log.lock().unwrap().clone();
        (status.code(), log)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The example's pipeline split over two hosts on one NATS: the ledger on one (as the
/// cluster's singleton), the router and the workers on the other. The workers' tells and
/// the request for the report cross NATS; a third host without actors asks for the
/// report too; the ledger's host stops gracefully on SIGTERM.
#[test]
fn the_pipeline_runs_across_two_hosts_over_nats() {
    let Some(server) = airssys_wasm_testkit::nats::NatsServer::start(&[]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let component = |c: &str| format!("{:?}", example().join(c).display().to_string());
    let cluster = |host: &str| {
        format!(
            "[cluster]\nnats = {{ env = \"TEST_NATS_URL\" }}\nname = \"orders\"\nhost = \"{host}\"\nheartbeat = \"200ms\"\n"
        )
    };
    let books = dir.path().join("books.toml");
    std::fs::write(
        &books,
        format!(
            "{}\n[[actor]]\nname = \"ledger\"\ncomponent = {}\nsingleton = true\n",
            cluster("books"),
            component("ledger")
        ),
    )
    .unwrap();
    let front = dir.path().join("front.toml");
    std::fs::write(
        &front,
        format!(
            "{}\n[[actor]]\nname = \"worker\"\ncomponent = {}\npool = 2\n\n[[actor]]\nname = \"router\"\ncomponent = {}\n",
            cluster("front"),
            component("worker"),
            component("router")
        ),
    )
    .unwrap();
    let mut cmd = bin();
    cmd.arg("up")
        .arg(&books)
        .arg("--data-dir")
        .arg(data.path())
        .env("TEST_NATS_URL", server.url());
    let ledger = Background::start(cmd, "up: ");

    let mut cmd = bin();
    cmd.arg("up")
        .arg(&front)
        .arg("--data-dir")
        .arg(data.path())
        .arg("--once")
        .env("TEST_NATS_URL", server.url());
    send_orders(&mut cmd, &[("apple", 3), ("pear", 1), ("apple", 2)]);
    let out = cmd.args(["--request", "ledger=report"]).output().unwrap();
    let log = stderr(&out);
    assert_eq!(code(&out), 0, "{log}");
    assert!(log.contains("joined the cluster as host `front`"), "{log}");
    assert_eq!(stdout(&out).trim(), "orders=3 apple=5 pear=1", "{log}");

    // A host without actors (a file with only `[cluster]`): a client of the others.
    let desk = dir.path().join("desk.toml");
    std::fs::write(&desk, cluster("desk")).unwrap();
    let out = bin()
        .arg("up")
        .arg(&desk)
        .args(["--once", "--request", "ledger=report"])
        .env("TEST_NATS_URL", server.url())
        .output()
        .unwrap();
    let log = stderr(&out);
    assert_eq!(code(&out), 0, "{log}");
    assert_eq!(stdout(&out).trim(), "orders=3 apple=5 pear=1", "{log}");

    let (code, log) = ledger.terminate();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("joined the cluster as host `books`"), "{log}");
    assert!(log.contains("stopped; 0 dead letter(s)"), "{log}");
}

/// Refused credentials and a server that is not there: exit 2 at start, with the
/// system file's line, and the password never shown.
#[test]
fn a_cluster_that_cannot_be_joined_is_refused_at_start() {
    let Some(server) =
        airssys_wasm_testkit::nats::NatsServer::start(&["--user", "app", "--pass", "right-one"])
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let system = dir.path().join("System.toml");
    std::fs::write(
        &system,
        format!(
            "[[actor]]\nname = \"ledger\"\ncomponent = {:?}\n\n[cluster]\nnats = {:?}\nuser = \"app\"\npassword = {{ env = \"TEST_NATS_PASSWORD\" }}\n",
            example().join("ledger").display().to_string(),
            server.url()
        ),
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let run = |password: Option<&str>| {
        let mut cmd = bin();
        cmd.arg("up")
            .arg(&system)
            .arg("--data-dir")
            .arg(data.path())
            .arg("--once");
        match password {
            Some(p) => cmd.env("TEST_NATS_PASSWORD", p),
            None => cmd.env_remove("TEST_NATS_PASSWORD"),
        };
        cmd.output().unwrap()
    };
    let out = run(Some("wrong-one"));
    let log = stderr(&out);
    assert_eq!(code(&out), 2, "{log}");
    assert!(log.contains("System.toml:5:1"), "{log}");
    assert!(log.contains("refused this host's credentials"), "{log}");
    assert!(!log.contains("wrong-one"), "{log}");
    let out = run(None);
    let log = stderr(&out);
    assert_eq!(code(&out), 2, "{log}");
    assert!(log.contains("`TEST_NATS_PASSWORD` is not set"), "{log}");
    let out = run(Some("right-one"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// One HTTP/1.1 exchange on a fresh connection (the server closes it after the
/// response: `Connection: close`): the whole response, head and body.
fn exchange(addr: &str, request: &[u8]) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

fn http(addr: &str, method: &str, path: &str, body: &str) -> String {
    exchange(
        addr,
        format!(
            "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
}

/// `[http]` routes into the example's actors: a request's body goes to the route's
/// actor as a request and its reply comes back; a path without a route, a method the
/// route does not take, a body past the bound, a body that never finishes arriving
/// and an actor failing on the request each get their status — the actor's words
/// stay in the log — and SIGTERM stops accepting, then drains.
#[test]
fn http_routes_reach_actors_and_bad_requests_get_their_status() {
    let dir = tempfile::tempdir().unwrap();
    let ex = example().canonicalize().unwrap();
    let system = format!(
        "[[actor]]\nname = \"ledger\"\ncomponent = \"{e}/ledger\"\n\n[[actor]]\nname = \"worker\"\ncomponent = \"{e}/worker\"\npool = 2\n\n[[actor]]\nname = \"router\"\ncomponent = \"{e}/router\"\n\n[http]\nlisten = \"127.0.0.1:0\"\nmax_body = \"1KiB\"\nheader_timeout = \"1s\"\n\n[[http.route]]\npath = \"/orders\"\nactor = \"router\"\n\n[[http.route]]\npath = \"/report\"\nactor = \"ledger\"\nmethods = [\"POST\", \"PUT\"]\n",
        e = ex.display()
    );
    std::fs::write(dir.path().join("System.toml"), system).unwrap();
    let mut cmd = bin();
    cmd.arg("up")
        .arg(dir.path())
        .arg("--data-dir")
        .arg(dir.path().join("data"));
    let up = Background::start(cmd, "up: HTTP routes on http://");
    let addr = loop {
        let log = up.log.lock().unwrap().clone();
        if let Some(rest) = log.split("up: HTTP routes on http://").nth(1) {
            break rest.split('/').next().unwrap().to_owned();
        }
        drop(log);
        std::thread::sleep(Duration::from_millis(10));
    };

    let r = http(&addr, "POST", "/orders", "order 1 apple 3");
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(r.ends_with("\r\n\r\nrouted 1"), "{r}");
    // The order reaches the ledger through a worker, as a tell: asked until it has.
    let mut report = String::new();
    for _ in 0..200 {
        report = http(&addr, "PUT", "/report?fresh=1", "report");
        if report.ends_with("orders=1 apple=3") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(report.starts_with("HTTP/1.1 200 OK\r\n"), "{report}");
    assert!(report.ends_with("orders=1 apple=3"), "{report}");

    let r = http(&addr, "GET", "/orders", "");
    assert!(r.starts_with("HTTP/1.1 405 "), "{r}");
    assert!(r.contains("\r\nallow: POST\r\n"), "{r}");
    let r = http(&addr, "POST", "/nowhere", "x");
    assert!(r.starts_with("HTTP/1.1 404 "), "{r}");
    let r = http(&addr, "POST", "/orders", &"x".repeat(2000));
    assert!(r.starts_with("HTTP/1.1 413 "), "{r}");
    // A chunked body past the bound, which declares no length.
    let mut chunked = b"POST /orders HTTP/1.1\r\nHost: t\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..3 {
        chunked.extend_from_slice(format!("200\r\n{}\r\n", "y".repeat(512)).as_bytes());
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let r = exchange(&addr, &chunked);
    assert!(r.starts_with("HTTP/1.1 413 "), "{r}");
    // A body that stops arriving: 408 after the header timeout, the connection freed.
    let r = exchange(
        &addr,
        b"POST /orders HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 100\r\n\r\norder 2",
    );
    assert!(r.starts_with("HTTP/1.1 408 "), "{r}");
    let r = http(&addr, "POST", "/orders", "bogus secret-words");
    assert!(r.starts_with("HTTP/1.1 500 "), "{r}");
    assert!(!r.contains("secret-words"), "{r}");

    let (code, log) = up.terminate();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("does not understand `bogus secret-words`"),
        "{log}"
    );
    assert!(log.contains("stopped; 1 dead letter(s)"), "{log}");
}
