//! The key-value store through the CLI: the `kv-tool` guest (standard
//! `wasi:keyvalue`) run by real `airssys-wasm` processes on one data directory —
//! persistence, processes writing at once, a process killed with SIGKILL mid-write, the
//! audit of refusals, and bad data directories and runtime configurations.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{bin, code, stderr, stdout};

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use airssys_wasm_testkit::guests;

/// `kv-tool` with a manifest granting `buckets`, 1 MiB each.
fn kv_tool(buckets: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("kv-tool.wasm"), guests::KV_TOOL).unwrap();
    let kv = if buckets.is_empty() {
        String::new()
    } else {
        format!("[capabilities.keyvalue]\nbuckets = [{buckets}]\nmax_bytes = \"1MiB\"\n")
    };
    std::fs::write(
        dir.path().join("Component.toml"),
        format!(
            "[component]\nname = \"kv-tool\"\npath = \"kv-tool.wasm\"\n[limits]\nmemory = \"16MiB\"\n\
             fuel = 1_000_000_000_000\ntimeout = \"60s\"\n{kv}"
        ),
    )
    .unwrap();
    dir
}

fn kv(component: &Path, data: &Path, args: &[&str]) -> Command {
    let mut c = bin();
    c.arg("run")
        .arg(component)
        .arg("--no-cache")
        .arg("--data-dir")
        .arg(data)
        .arg("--")
        .args(args);
    c
}

fn run(component: &Path, data: &Path, args: &[&str]) -> Output {
    kv(component, data, args).output().unwrap()
}

/// As [`run`], with `--report` (what the call used, and its refusals, on stderr).
fn run_reported(component: &Path, data: &Path, args: &[&str]) -> Output {
    bin()
        .arg("run")
        .arg(component)
        .args(["--no-cache", "--report", "--data-dir"])
        .arg(data)
        .arg("--")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn data_persists_across_runs_in_the_data_directory() {
    let c = kv_tool("\"default\"");
    let data = tempfile::tempdir().unwrap();
    let o = run(c.path(), data.path(), &["set", "", "greeting", "hello"]);
    assert_eq!(
        (code(&o), stdout(&o).as_str()),
        (0, "ok\n"),
        "{}",
        stderr(&o)
    );
    let o = run(c.path(), data.path(), &["get", "default", "greeting"]);
    assert_eq!(stdout(&o), "value: hello\n", "{}", stderr(&o));
    assert!(
        data.path()
            .join("keyvalue/component.kv-tool.sqlite")
            .is_file()
    );
}

#[test]
fn the_data_directory_defaults_to_the_xdg_data_home() {
    let c = kv_tool("\"default\"");
    let home = tempfile::tempdir().unwrap();
    let o = bin()
        .arg("run")
        .arg(c.path())
        .args(["--no-cache", "--", "set", "", "k", "v"])
        .env("XDG_DATA_HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        home.path()
            .join("airssys-wasm/keyvalue/component.kv-tool.sqlite")
            .is_file()
    );
    // Nothing is created for a component without the grant.
    let none = kv_tool("");
    let empty = tempfile::tempdir().unwrap();
    let o = run(none.path(), &empty.path().join("d"), &["get", "", "k"]);
    assert_eq!(stdout(&o), "error: access-denied\n");
    assert!(!empty.path().join("d").exists());
}

#[test]
fn refusals_are_audited_and_reported() {
    let c = kv_tool("\"default\"");
    let data = tempfile::tempdir().unwrap();
    let o = run_reported(c.path(), data.path(), &["get", "secrets", "k"]);
    assert_eq!(stdout(&o), "error: access-denied\n");
    let err = stderr(&o);
    assert!(err.contains("airssys_wasm::audit"), "{err}");
    assert!(err.contains("bucket `secrets` is not granted"), "{err}");
    assert!(err.contains("kv-tool"), "{err}");
    assert!(err.contains("1 capability use(s) denied"), "{err}");
    // A write past max_bytes: the guest gets the error, the audit names the bound.
    let o = run(c.path(), data.path(), &["fill", "", "k", "600000", "2"]);
    assert!(
        stdout(&o).contains("ack 0\nerror: other: quota exceeded"),
        "{}",
        stdout(&o)
    );
    assert!(stderr(&o).contains("keyvalue.max_bytes"), "{}", stderr(&o));
}

#[test]
fn processes_incrementing_at_once_sum_exactly() {
    const PROCESSES: usize = 8;
    const EACH: u64 = 100;
    let c = kv_tool("\"default\", \"counters\"");
    let data = tempfile::tempdir().unwrap();
    let mut children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            kv(
                c.path(),
                data.path(),
                &["incr-after", "counters", "go", "n", "1", &EACH.to_string()],
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    // A start barrier: every process is running its guest, waiting for `go`, before
    // any increments — so that they really overlap.
    let mut outputs = Vec::new();
    for child in &mut children {
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line, "waiting\n");
        outputs.push(out);
    }
    let o = run(c.path(), data.path(), &["set", "counters", "go", "1"]);
    assert_eq!(stdout(&o), "ok\n", "{}", stderr(&o));
    for (child, mut out) in children.into_iter().zip(outputs) {
        let o = child.wait_with_output().unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
        assert_eq!(code(&o), 0, "{rest}{}", stderr(&o));
        assert!(rest.starts_with("value: "), "{rest}");
    }
    let o = run(c.path(), data.path(), &["get", "counters", "n"]);
    assert_eq!(stdout(&o), format!("value: {}\n", PROCESSES as u64 * EACH));
}

#[test]
fn a_process_killed_mid_write_keeps_every_acknowledged_write() {
    let c = kv_tool("\"default\"");
    let data = tempfile::tempdir().unwrap();
    let mut child = kv(c.path(), data.path(), &["fill", "", "key", "64", "1000000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = Vec::new();
    // Kill it well into its writes.
    for line in lines.by_ref() {
        let line = line.unwrap();
        acked.push(line);
        if acked.len() == 500 {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    // What it acknowledged before dying, still in the pipe.
    acked.extend(lines.map_while(Result::ok));
    child.wait().unwrap();
    assert!(acked.len() >= 500);
    let db =
        rusqlite::Connection::open(data.path().join("keyvalue/component.kv-tool.sqlite")).unwrap();
    let mut check = db
        .prepare("SELECT length(value) FROM kv WHERE key = ?1")
        .unwrap();
    for line in &acked {
        let i = line.strip_prefix("ack ").expect(line);
        let len: i64 = check
            .query_row([format!("key{i}")], |r| r.get(0))
            .unwrap_or_else(|e| panic!("acknowledged key{i} is missing: {e}"));
        assert_eq!(len, 64);
    }
    drop(check);
    drop(db);
    // And the store opens and works after the kill.
    let o = run(c.path(), data.path(), &["incr", "", "after", "1"]);
    assert_eq!(stdout(&o), "value: 1\n", "{}", stderr(&o));
}

#[test]
fn a_bad_data_directory_exits_2_naming_it() {
    let c = kv_tool("\"default\"");
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let o = run(c.path(), &file, &["get", "", "k"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot be created"), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
    // A bucket file that is not a database: refused at start, left as it was.
    let data = tmp.path().join("data");
    std::fs::create_dir_all(data.join("keyvalue")).unwrap();
    let db = data.join("keyvalue/component.kv-tool.sqlite");
    std::fs::write(&db, vec![7u8; 4096]).unwrap();
    let o = run(c.path(), &data, &["set", "", "k", "v"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("component.kv-tool.sqlite"), "{err}");
    assert!(
        err.contains("is not a readable key-value database"),
        "{err}"
    );
    assert_eq!(std::fs::read(&db).unwrap(), vec![7u8; 4096]);
}

#[test]
fn a_bad_runtime_configuration_exits_2_with_line_and_column() {
    let c = kv_tool("\"default\"");
    let tmp = tempfile::tempdir().unwrap();
    let rt = tmp.path().join("runtime.toml");
    std::fs::write(
        &rt,
        "[keyvalue.default]\ntype = \"redis\"\nurl = \"http://x\"\n",
    )
    .unwrap();
    let o = bin()
        .arg("run")
        .arg(c.path())
        .args(["--no-cache", "--runtime-config"])
        .arg(&rt)
        .arg("--data-dir")
        .arg(tmp.path())
        .args(["--", "get", "", "k"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("runtime.toml:1:1"), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a Redis URL"), "{}", stderr(&o));
}

#[test]
fn a_guest_looping_on_a_refusal_cannot_flood_the_audit_log() {
    let c = kv_tool("\"default\"");
    let data = tempfile::tempdir().unwrap();
    let o = run_reported(c.path(), data.path(), &["open-many", "secrets", "150"]);
    assert_eq!(stdout(&o), "opened: 0, denied: 150\n");
    let err = stderr(&o);
    let logged = err.lines().filter(|l| l.contains("denied: bucket")).count();
    assert_eq!(logged, 100, "{err}");
    assert!(err.contains("the rest are counted"), "{err}");
    // Every refusal is still counted.
    assert!(err.contains("150 capability use(s) denied"), "{err}");
}

/// The process's peak resident memory, in bytes, once `child` has exited (its own,
/// not that of the other tests' children), and its exit status.
#[cfg(target_os = "linux")]
fn wait_with_peak_rss(child: std::process::Child) -> (i32, u64) {
    let pid = i32::try_from(child.id()).unwrap();
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet waited for; both pointers are valid.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4 failed");
    std::mem::forget(child);
    let kib = u64::try_from(usage.ru_maxrss).unwrap();
    (libc::WEXITSTATUS(status), kib * 1024)
}

/// The hoarder: a guest under a 16 MiB memory limit holding 1,000
/// compare-and-swap handles on a 1 MiB value once drove the process to ~1 GiB. Each
/// handle is now charged to the instance's host-memory budget: the guest gets an error
/// after a few, and the whole process stays under 160 MiB.
#[cfg(target_os = "linux")]
#[test]
fn a_cas_hoarder_cannot_grow_the_host() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("kv-spin.wasm"), guests::KV_SPIN).unwrap();
    std::fs::write(
        dir.path().join("Component.toml"),
        "[component]\nname = \"hoarder\"\npath = \"kv-spin.wasm\"\n[limits]\nmemory = \"16MiB\"\n\
         fuel = 1_000_000_000_000\ntimeout = \"60s\"\n[capabilities.keyvalue]\n\
         buckets = [\"default\"]\nmax_bytes = \"64MiB\"\n",
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let o = run(dir.path(), data.path(), &["set-big", "", "big", "1048576"]);
    assert_eq!(stdout(&o), "ok\n", "{}", stderr(&o));
    let child = kv(dir.path(), data.path(), &["cas-hoard", "", "big", "1000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (status, peak) = wait_with_peak_rss(child);
    assert_eq!(status, 1, "the hoarder should have been refused");
    assert!(peak < 160 << 20, "peak RSS {} MiB", peak >> 20);
    eprintln!("cas hoarder: peak RSS {} MiB", peak >> 20);
}

/// "The component's own" bucket is keyed by the component's name: a second component
/// file of the same name on the same data directory shares it, and is warned about.
#[test]
fn a_second_component_file_of_the_same_name_is_warned_about() {
    let first = kv_tool("\"default\"");
    let second = kv_tool("\"default\"");
    let data = tempfile::tempdir().unwrap();
    let o = run(first.path(), data.path(), &["set", "", "k", "mine"]);
    assert_eq!(stdout(&o), "ok\n", "{}", stderr(&o));
    assert!(!stderr(&o).contains("used first"), "{}", stderr(&o));
    // The same file again: no warning.
    let o = run(first.path(), data.path(), &["get", "", "k"]);
    assert!(!stderr(&o).contains("used first"), "{}", stderr(&o));
    // Another file named `kv-tool`: it shares the bucket (as documented), and is told.
    let o = run(second.path(), data.path(), &["get", "", "k"]);
    assert_eq!(stdout(&o), "value: mine\n");
    let err = stderr(&o);
    assert!(err.contains("used first on this data directory"), "{err}");
    assert!(
        err.contains(
            &first
                .path()
                .join("kv-tool.wasm")
                .canonicalize()
                .unwrap()
                .display()
                .to_string()
        ),
        "{err}"
    );
}
