//! `airssys-wasm run` on real Rust components (the testkit's wasm32-wasip2 guests): args
//! after `--`, grants from a manifest, exit codes, and limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{bin, code, stderr, stdout};

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Output;

use airssys_wasm_testkit::guests::guests_dir;

fn guest(name: &str) -> PathBuf {
    guests_dir().join("wasm").join(format!("{name}.wasm"))
}

const LIMITS: [&str; 6] = [
    "--memory",
    "16MiB",
    "--fuel",
    "2000000000",
    "--timeout",
    "10s",
];

fn run_guest(name: &str, args: &[&str]) -> Output {
    let g = guest(name);
    let mut argv = vec!["run", g.to_str().unwrap()];
    argv.extend(LIMITS);
    argv.push("--");
    argv.extend(args);
    bin().args(argv).output().unwrap()
}

/// A `Component.toml` in `dir` for guest `name`, with `extra` appended.
fn manifest(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let text = format!(
        "[component]\nname = \"{name}\"\npath = \"{}\"\n\n[limits]\nmemory = \"16MiB\"\n\
         fuel = 2_000_000_000\ntimeout = \"10s\"\n\n{extra}",
        guest(name).display()
    );
    let path = dir.join("Component.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_command_gets_the_args_after_the_double_dash_and_both_streams() {
    let o = run_guest("cli-hello", &["one", "--two"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "hello from a wasi:cli guest\narg[0] = cli-hello.wasm\narg[1] = one\narg[2] = --two\n"
    );
    assert_eq!(stderr(&o), "hello on stderr\n");
}

#[test]
fn the_guests_exit_status_is_the_process_exit_code() {
    let o = run_guest("cli-hello", &["--exit=3"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "hello on stderr\n",
        "a failing command is not an error of ours"
    );
}

#[test]
fn a_library_component_needs_invoke_and_the_error_lists_its_exports() {
    let o = run_guest("calc", &[]);
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    assert!(err.contains("no `wasi:cli/run`"), "{err}");
    assert!(err.contains("add: func(a: s32, b: s32) -> s32"), "{err}");

    let g = guest("calc");
    let mut args = vec!["run", g.to_str().unwrap()];
    args.extend(LIMITS);
    args.extend(["--invoke", r#"greet("wasi")"#]);
    let o = bin().args(args).output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "\"Hello, wasi!\"\n");
}

#[test]
fn env_is_what_the_manifest_grants_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(
        dir.path(),
        "env-print",
        "[capabilities]\nenv = [\"MODE=fast\", \"AIRSSYS_PASS\", \"AIRSSYS_UNSET\"]\n",
    );
    let o = bin()
        .args(["run", m.to_str().unwrap()])
        .env("AIRSSYS_PASS", "through")
        .env("AIRSSYS_HIDDEN", "must not leak")
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "AIRSSYS_PASS=through\nMODE=fast\ncount: 2\n");
}

#[test]
fn the_files_example_reads_but_cannot_write_or_escape() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/files");
    let example = example.to_str().unwrap();
    let o = bin()
        .args(["run", example, "--", "read", "/data/greeting.txt"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "ok: Hello from a file the manifest granted.\n\n"
    );

    let o = bin()
        .args(["run", example, "--", "write", "/data/new.txt", "x"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).starts_with("error: "), "{}", stdout(&o));
    // The refusal is audited, with the component and the path.
    let err = stderr(&o);
    assert!(err.contains("airssys_wasm::audit"), "{err}");
    assert!(err.contains("denied: open `new.txt`"), "{err}");
    assert!(err.contains("component=\"files\""), "{err}");

    let o = bin()
        .args(["run", example, "--", "read", "/data/../Component.toml"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).starts_with("error: "), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("denied: open `../Component.toml`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_manifest_connect_grant_lets_the_guest_reach_that_listener_only() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut line = String::new();
            let mut reader = BufReader::new(&stream);
            if reader.read_line(&mut line).is_ok() {
                let _ = (&stream).write_all(format!("echo: {}", line).as_bytes());
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(
        dir.path(),
        "tcp-connect",
        &format!("[capabilities.network]\nconnect = [\"{addr}\"]\n"),
    );
    let m = m.to_str().unwrap();
    let addr = addr.to_string();
    let o = bin()
        .args(["run", m, "--", "connect", &addr, "hello"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{} {}", stdout(&o), stderr(&o));
    assert_eq!(stdout(&o), "reply: echo: hello\n");

    // Without the grant (a bare component: nothing granted), the same connect fails.
    let o = run_guest("tcp-connect", &["connect", &addr, "hello"]);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).starts_with("error: "), "{}", stdout(&o));
}

#[test]
fn an_allocation_heavy_guest_under_16mib_exits_4_naming_the_memory_limit() {
    let o = run_guest("hostile", &["alloc-bomb"]);
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "hostile: alloc-bomb\n",
        "guest output is flushed"
    );
    let err = stderr(&o);
    let first = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    assert!(first.contains("memory limit of 16 MiB"), "{err}");
    assert!(first.contains("raise `memory`"), "{err}");
}

#[test]
fn hostile_commands_end_with_the_documented_codes() {
    for (mode, expected) in [("spin", 4), ("recurse", 1), ("panic", 1)] {
        let o = run_guest("hostile", &[mode]);
        assert_eq!(code(&o), expected, "{mode}: {}", stderr(&o));
        assert_eq!(stdout(&o), format!("hostile: {mode}\n"));
    }
}

#[test]
fn a_guest_asleep_in_the_host_is_ended_by_its_timeout_with_exit_4() {
    let g = guest("hostile");
    let o = bin()
        .args([
            "run",
            g.to_str().unwrap(),
            "--memory",
            "16MiB",
            "--fuel",
            "1000000",
        ])
        .args(["--timeout", "300ms", "--report", "--", "sleep"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    assert_eq!(stdout(&o), "hostile: sleep\n");
    let err = stderr(&o);
    assert!(err.contains("300ms") || err.contains("300 ms"), "{err}");
    // --report also reports a call that failed: its wall time covers the timeout.
    let report = err
        .lines()
        .find(|l| l.starts_with("report: "))
        .unwrap_or_else(|| panic!("no report in {err}"));
    let wall = report
        .split("wall time ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap_or_else(|| panic!("no wall time in {report}"));
    let ms: f64 = wall.strip_suffix("ms").map_or_else(
        || wall.strip_suffix('s').unwrap().parse::<f64>().unwrap() * 1000.0,
        |ms| ms.parse().unwrap(),
    );
    assert!(ms >= 300.0, "{report}");
}

#[test]
fn stdin_reaches_the_guest_only_when_the_manifest_inherits_it() {
    use std::process::Stdio;
    let feed = |args: &[&str]| {
        let mut child = bin()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"piped text")
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(
        dir.path(),
        "cli-hello",
        "[capabilities]\nstdin = \"inherit\"\n",
    );
    let o = feed(&["run", m.to_str().unwrap(), "--", "--stdin"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).ends_with("stdin: piped text\n"),
        "{}",
        stdout(&o)
    );

    let g = guest("cli-hello");
    let mut args = vec!["run", g.to_str().unwrap()];
    args.extend(LIMITS);
    args.extend(["--", "--stdin"]);
    let o = feed(&args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).ends_with("stdin: \n"), "{}", stdout(&o));
}

/// `airssys-wasm -W component-model-async run p3-tool.wasm EXTRA…`.
fn run_p3(extra: &[&str]) -> Output {
    let g = guest("p3-tool");
    bin()
        .args(["-W", "component-model-async", "run", g.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn a_wasi_0_3_command_runs_with_component_model_async_on() {
    let o = run_p3(&[LIMITS.as_slice(), &["--", "x", "y"]].concat());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "hello from WASI 0.3: p3-tool.wasm x y\n");
}

#[test]
fn an_async_export_is_invoked_and_one_that_never_resolves_times_out() {
    let o = run_p3(
        &[
            LIMITS.as_slice(),
            &["--invoke", "slow-double(21, 10)", "--report"],
        ]
        .concat(),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "42\n");
    assert!(stderr(&o).contains("wall time"), "{}", stderr(&o));

    let o = run_p3(&[
        "--memory",
        "16MiB",
        "--fuel",
        "1000000000",
        "--timeout",
        "300ms",
        "--invoke",
        "never()",
    ]);
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("exceeded its wall-clock timeout of 300ms"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn without_the_flag_a_wasi_0_3_component_is_refused_with_the_fix() {
    let g = guest("p3-tool");
    let o = bin()
        .args(["run", g.to_str().unwrap()])
        .args(LIMITS)
        .output()
        .unwrap();
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("component model async"), "{err}");
    assert!(err.contains("-W component-model-async"), "{err}");
    let o = bin()
        .args([
            "-W",
            "component-model-async",
            "inspect",
            g.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("slow-double: async func(x: u32, delay-ms: u32) -> u32"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn a_manifest_that_requires_the_proposal_runs_without_the_flag() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/wasi-p3");
    let o = bin()
        .args(["run", example.to_str().unwrap(), "--", "from", "toml"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "hello from WASI 0.3: wasi-p3 from toml\n");
    // The flag still wins: switched off, the component is refused with the fix.
    let o = bin()
        .args(["-W", "component-model-async=n", "validate"])
        .arg(&example)
        .output()
        .unwrap();
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("proposals = [\"component-model-async\"]"),
        "{}",
        stderr(&o)
    );
}
