//! The `airssys-wasm` binary: exit codes, messages, manifests, flag overrides, and
//! that no input makes it panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{code, stderr, stdout};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use airssys_wasm_testkit as fx;

/// The binary, with its artifact cache in the test's target directory rather than the
/// user's (and the rest of the environment kept: these tests run as a user would).
fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_airssys-wasm"));
    c.env(
        "XDG_CACHE_HOME",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("xdg-cache"),
    );
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn fixture(name: &str) -> String {
    fx::fixtures_dir()
        .join(format!("{name}.wat"))
        .display()
        .to_string()
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello")
}

const LIMITS: [&str; 6] = ["--memory", "1MiB", "--fuel", "1000000", "--timeout", "1s"];

fn run_fixture(name: &str, call: &str) -> Output {
    let f = fixture(name);
    let mut args = vec!["run", f.as_str()];
    args.extend(LIMITS);
    args.extend(["--invoke", call]);
    run(&args)
}

#[test]
fn double_21_prints_42() {
    let o = run_fixture("hello", "double(21)");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "42\n");
}

#[test]
fn strings_and_wasm_files_work() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("greet.wasm");
    std::fs::write(&wasm, fx::GREET).unwrap();
    let w = wasm.display().to_string();
    let mut args = vec!["run", w.as_str()];
    args.extend(LIMITS);
    args.extend(["--invoke", r#"greet("you")"#]);
    let o = run(&args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "\"Hello, you!\"\n");
}

#[test]
fn a_run_without_a_memory_limit_is_refused_naming_it() {
    let f = fixture("hello");
    let o = run(&[
        "run",
        &f,
        "--fuel",
        "10",
        "--timeout",
        "1s",
        "--invoke",
        "hello()",
    ]);
    assert_eq!(code(&o), 2);
    let e = stderr(&o);
    assert!(e.starts_with("error: "), "{e}");
    assert!(
        e.contains("no memory given") && e.contains("--memory 4MiB"),
        "{e}"
    );
    assert!(stdout(&o).is_empty());
}

#[test]
fn bad_limit_values_are_usage_errors() {
    let f = fixture("hello");
    let bad_cases: [&[&str]; 4] = [
        &["--memory", "lots", "--fuel", "1", "--timeout", "1s"],
        &["--memory", "1KiB", "--fuel", "1", "--timeout", "1s"],
        &["--memory", "1MiB", "--fuel=-1", "--timeout", "1s"],
        &["--memory", "1MiB", "--fuel", "1", "--timeout", "forever"],
    ];
    for bad in bad_cases {
        let mut args = vec!["run", f.as_str()];
        args.extend(bad.iter().copied());
        args.extend(["--invoke", "hello()"]);
        let o = run(&args);
        assert_eq!(code(&o), 2, "{bad:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("invalid resource limits"),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn limits_exit_4_with_a_one_line_message_first() {
    let cases = [
        (
            "infinite_loop",
            "spin()",
            vec!["--fuel", "10000"],
            "ran out of fuel",
        ),
        (
            "infinite_loop",
            "spin()",
            vec!["--fuel", "18446744073709551615", "--timeout", "100ms"],
            "wall-clock timeout of 100ms",
        ),
        (
            "memory_bomb",
            "bomb()",
            vec![],
            "exceeded its memory limit of 1 MiB",
        ),
    ];
    for (name, call, extra, needle) in cases {
        let f = fixture(name);
        let mut args = vec!["run", f.as_str()];
        args.extend(LIMITS);
        args.extend(extra);
        args.extend(["--invoke", call]);
        let o = run(&args);
        assert_eq!(code(&o), 4, "{name}: {}", stderr(&o));
        let first = stderr(&o).lines().next().unwrap_or_default().to_owned();
        assert!(
            first.starts_with("error: ") && first.contains(needle),
            "{first}"
        );
        assert!(first.contains("in [limits] of Component.toml"), "{first}");
    }
}

#[test]
fn traps_exit_1_with_details_after() {
    for (name, call, needle) in [
        ("unreachable", "boom()", "unreachable"),
        ("div_by_zero", "divide(1, 0)", "divide by zero"),
        ("recursion", "recurse()", "stack overflow"),
        ("out_of_bounds", "load(100000)", "out-of-bounds"),
    ] {
        let o = run_fixture(name, call);
        assert_eq!(code(&o), 1, "{name}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.lines().next().unwrap().contains(needle), "{e}");
    }
    let e = stderr(&run_fixture("unreachable", "boom()"));
    assert!(e.contains("guest backtrace:"), "{e}");
}

#[test]
fn usage_errors_exit_2() {
    let o = run_fixture("hello", "nope()");
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("double: func(x: s32) -> s32"),
        "{}",
        stderr(&o)
    );
    let o = run_fixture("hello", "double(\"x\")");
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let o = run_fixture("hello", "double(1, 2)");
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let o = run(&["run"]);
    assert_eq!(code(&o), 2);
    let o = run(&["frobnicate"]);
    assert_eq!(code(&o), 2);
    // Neither --invoke nor wasi:cli/run: the exports are listed.
    let f = fixture("hello");
    let mut args = vec!["run", f.as_str()];
    args.extend(LIMITS);
    let o = run(&args);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--invoke") && stderr(&o).contains("hello: func() -> s32"));
}

#[test]
fn validate_exit_codes() {
    let o = run(&["validate", &fixture("hello")]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).starts_with("valid: "));
    let o = run(&["validate", &fixture("core_module")]);
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains("wasm-tools component new"),
        "{}",
        stderr(&o)
    );
    let o = run(&["validate", "no/such/file.wasm"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"\0asm\x0d\x00\x01\x00\xff\xff").unwrap();
    let o = run(&["validate", &junk.display().to_string()]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
}

#[test]
fn unsatisfied_imports_exit_3() {
    let o = run_fixture("host_import", "hello()");
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    // Every import the CLI does not provide, by name; not the WASI ones it does
    // (wasi:http's outgoing handler is linked for every component since issue 19).
    let err = stderr(&o);
    assert!(
        err.contains("`example:host/log` is imported, but this host does not provide it")
            && !err.contains("wasi:http/outgoing-handler")
            && !err.contains("wasi:random"),
        "{err}"
    );
}

#[test]
fn the_example_runs_from_its_directory_or_manifest() {
    let ex = example();
    let o = run(&["run", &ex.display().to_string(), "--invoke", "double(21)"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "42\n");
    let manifest = ex.join("Component.toml").display().to_string();
    let o = run(&["run", &manifest, "--invoke", "greet(\"x\")", "--report"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "\"Hello, x!\"\n");
    let e = stderr(&o);
    assert!(
        e.contains("report: fuel ") && e.contains("peak memory 64 KiB of 1 MiB"),
        "{e}"
    );
    let o = run(&["validate", &ex.display().to_string()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("valid: hello (memory 1 MiB"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn flags_override_the_manifest() {
    let ex = example().display().to_string();
    let o = run(&["run", &ex, "--invoke", "double(21)", "--fuel", "1"]);
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    assert!(stderr(&o).contains("budget of 1 units"), "{}", stderr(&o));
    let o = run(&["run", &ex, "--invoke", "double(21)", "--memory", "lots"]);
    assert_eq!(code(&o), 2);
}

fn write_manifest(dir: &Path, text: &str) -> String {
    std::fs::write(dir.join("c.wasm"), fx::HELLO).unwrap();
    let path = dir.join("Component.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn manifest_errors_exit_2_component_errors_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let m = write_manifest(
        dir.path(),
        "[component]\nname = \"c\"\npath = \"c.wasm\"\n[limits]\nfuel = 1\ntimeout = \"1s\"\n",
    );
    for cmd in ["validate", "run", "inspect"] {
        let o = run(&[cmd, &m]);
        assert_eq!(code(&o), 2, "{cmd}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains("Component.toml:4:1: [limits] has no `memory`"),
            "{e}"
        );
    }
    // A valid manifest that points at something that is not a component.
    std::fs::write(
        dir.path().join("Component.toml"),
        "[component]\nname = \"c\"\npath = \"bad.wasm\"\n[limits]\nmemory = \"1MiB\"\nfuel = 1\ntimeout = \"1s\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("bad.wasm"), fx::CORE_MODULE).unwrap();
    let o = run(&["validate", &m]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let o = run(&["run", dir.path().to_str().unwrap(), "--invoke", "hello()"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
}

#[test]
fn inspect_prints_imports_and_exports() {
    let o = run(&["inspect", &fixture("host_import")]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    // Each import marked with who provides it.
    assert!(
        out.contains(
            "imports:\n  example:host/log#log: func(msg: string)  [NOT provided by this host]"
        ),
        "{out}"
    );
    assert!(
        out.contains("wasi:random/random@0.2.0#get-random-u64: func() -> u64  [provided: WASI]"),
        "{out}"
    );
    assert!(out.contains("exports:\n  hello: func() -> s32"), "{out}");
    let o = run(&["inspect", &fixture("types")]);
    let out = stdout(&o);
    assert!(out.contains("maybe: func(x: option<u32>) -> u32"), "{out}");
    assert!(out.contains("scale: func(x: f64, k: f32) -> f64"), "{out}");
}

/// `inspect` shows the configuration keys, and which host variable each `{ env = … }`
/// key reads — names only, never a value.
#[test]
fn inspect_lists_config_keys_and_the_variables_they_read() {
    let dir = tempfile::tempdir().unwrap();
    let m = write_manifest(
        dir.path(),
        &format!(
            "[component]\nname = \"cfg\"\npath = \"{}\"\n[limits]\nmemory = \"1MiB\"\n\
             fuel = 1000\ntimeout = \"1s\"\n[capabilities.http]\n\
             outbound = [\"https://api.example.com\"]\n[config]\nmode = \"fast\"\n\
             token = {{ env = \"CFG_TEST_TOKEN\" }}\n",
            fixture("host_import")
        ),
    );
    let o = bin()
        .args(["inspect", &m])
        .env("CFG_TEST_TOKEN", "s3cret-value")
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("  config: mode, token (from $CFG_TEST_TOKEN)\n"),
        "{out}"
    );
    assert!(
        !out.contains("s3cret-value") && !out.contains("fast"),
        "{out}"
    );
    assert!(
        out.contains("http outbound [https://api.example.com"),
        "{out}"
    );
    assert!(!out.contains("not linked"), "{out}");
}

/// A cache directory that others can write, or that another user owns, holds native
/// code this process would run: refused with a clear error (exit 2).
#[cfg(unix)]
#[test]
fn an_untrustworthy_cache_directory_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().join("shared");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let f = fixture("hello");
    let mut args = vec!["run", f.as_str(), "--cache-dir", dir.to_str().unwrap()];
    args.extend(LIMITS);
    args.extend(["--invoke", "double(21)"]);
    let o = run(&args);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("is writable by anyone (mode 777)"), "{err}");
    assert!(err.contains("chmod go-w"), "{err}");
    // Made private, it is used.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let o = run(&args);
    assert_eq!(
        (code(&o), stdout(&o).as_str()),
        (0, "42\n"),
        "{}",
        stderr(&o)
    );
    // Owned by another user (as root, the tests can make one so).
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let other = cache.path().join("theirs");
        std::fs::create_dir(&other).unwrap();
        std::os::unix::fs::chown(&other, Some(65534), Some(65534)).unwrap();
        let mut args = vec!["run", f.as_str(), "--cache-dir", other.to_str().unwrap()];
        args.extend(LIMITS);
        args.extend(["--invoke", "double(21)"]);
        let o = run(&args);
        assert_eq!(code(&o), 2, "{}", stderr(&o));
        assert!(
            stderr(&o).contains("belongs to user 65534"),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn help_documents_exit_codes() {
    let o = run(&["run", "--help"]);
    assert_eq!(code(&o), 0);
    let out = stdout(&o);
    for needle in ["Exit codes:", "4  a resource limit", "--memory", "--invoke"] {
        assert!(out.contains(needle), "{needle}: {out}");
    }
}

#[test]
fn no_input_makes_it_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut inputs: Vec<(String, Vec<u8>)> = vec![
        ("empty.wasm".into(), vec![]),
        ("text.wasm".into(), b"hello".to_vec()),
        (
            "half.wasm".into(),
            fx::HELLO[..fx::HELLO.len() / 2].to_vec(),
        ),
        ("bad.wat".into(), b"(component (oops".to_vec()),
        ("Component.toml".into(), b"[component\nname=".to_vec()),
        ("binary.toml".into(), vec![0xff, 0xfe, 0x00, 0x01]),
    ];
    for (i, f) in fx::ALL.iter().enumerate() {
        let mut bytes = f.wasm.to_vec();
        let at = (i * 7919) % bytes.len();
        bytes[at] ^= 0xa5;
        inputs.push((format!("mutant{i}.wasm"), bytes));
    }
    // A truncated precompiled artifact, and a foreign ELF file, behind the flag that
    // accepts precompiled files.
    let artifact = wasmtime::Engine::default()
        .precompile_component(fx::HELLO)
        .unwrap();
    inputs.push((
        "truncated.cwasm".into(),
        artifact[..artifact.len() / 2].to_vec(),
    ));
    inputs.push((
        "foreign.cwasm".into(),
        std::fs::read(env!("CARGO_BIN_EXE_airssys-wasm")).unwrap()[..4096].to_vec(),
    ));
    let out = dir.path().join("out.cwasm");
    let out = out.display().to_string();
    for (name, bytes) in inputs {
        let path = dir.path().join(&name);
        std::fs::write(&path, &bytes).unwrap();
        let p = path.display().to_string();
        let run_with = |flag: &'static str| {
            let mut v = vec!["run", p.as_str(), flag];
            v.extend(LIMITS);
            v.extend(["--invoke", "hello()"]);
            v
        };
        for cmd in [
            vec!["validate", p.as_str()],
            vec!["inspect", p.as_str()],
            vec!["compile", p.as_str(), "-o", out.as_str()],
            run_with("--report"),
            run_with("--allow-precompiled"),
        ] {
            let o = run(&cmd);
            let c = code(&o);
            assert!((0..=4).contains(&c), "{cmd:?} exited {c}: {}", stderr(&o));
        }
    }
}

#[test]
fn wasm_3_exceptions_and_gc_run_by_default() {
    let o = run_fixture("exceptions", "catch(41)");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "42\n");
    let o = run_fixture("gc_alloc", "sum(4)");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "10\n");
    let f = fixture("exceptions");
    let o = run(&["validate", &f]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn an_escaped_exception_exits_1_saying_so() {
    let o = run_fixture("exceptions", "escape()");
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let first = stderr(&o).lines().next().unwrap_or_default().to_owned();
    assert!(
        first.contains("uncaught Wasm exception escaped the export `escape`"),
        "{first}"
    );
}

#[test]
fn gc_objects_count_against_the_memory_limit_exit_4() {
    let f = fixture("gc_alloc");
    let o = run(&[
        "run",
        &f,
        "--memory",
        "4MiB",
        "--fuel",
        "100000000000",
        "--timeout",
        "20s",
        "--invoke",
        "hoard()",
    ]);
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("exceeded its memory limit of 4 MiB"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn threads_are_refused_at_validation_naming_the_feature_exit_3() {
    let f = fixture("shared_memory");
    for args in [
        vec!["validate", f.as_str()],
        [
            vec!["run", f.as_str()],
            LIMITS.to_vec(),
            vec!["--invoke", "hello()"],
        ]
        .concat(),
    ] {
        let o = run(&args);
        assert_eq!(code(&o), 3, "{}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains("threads"), "{err}");
        assert!(err.contains("never enables"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn an_unknown_or_malformed_proposal_flag_is_a_usage_error() {
    let f = fixture("hello");
    let o = run(&["-W", "component-model-maps", "validate", &f]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("unknown proposal `component-model-maps`"),
        "{err}"
    );
    assert!(err.contains("component-model-async"), "{err}");
    let o = run(&["-W", "threads", "validate", &f]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("is never enabled"), "{}", stderr(&o));
    let o = run(&["validate", &f, "-W", "component-model-map=maybe"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("is not y or n"), "{}", stderr(&o));
    let o = run(&["validate", &f, "-W", "component-model-map=y"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

/// A copy of examples/hello whose manifest pins `sha256` (when given), and its file.
fn pinned_hello(sha256: Option<&str>) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(example().join("hello.wat"), dir.path().join("hello.wat")).unwrap();
    let pin = sha256
        .map(|h| format!("sha256 = \"{h}\"\n"))
        .unwrap_or_default();
    std::fs::write(
        dir.path().join("Component.toml"),
        format!(
            "[component]\nname = \"hello\"\npath = \"hello.wat\"\n{pin}\n[limits]\nmemory = \"1MiB\"\nfuel = 1_000_000\ntimeout = \"1s\"\n"
        ),
    )
    .unwrap();
    let file = dir.path().join("hello.wat");
    (dir, file)
}

#[test]
fn a_pinned_digest_is_checked_before_compiling_or_using_the_cache() {
    let digest =
        airssys_wasm_loader::sha256_hex(&std::fs::read(example().join("hello.wat")).unwrap());
    // inspect prints the digest to pin.
    let (unpinned, _) = pinned_hello(None);
    let o = run(&["inspect", &unpinned.path().display().to_string()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("  sha256: {digest}\n")),
        "{}",
        stdout(&o)
    );

    let (dir, file) = pinned_hello(Some(&digest.to_uppercase()));
    let d = dir.path().display().to_string();
    let o = run(&["run", &d, "--invoke", "double(21)"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "42\n");
    let o = run(&["inspect", &d]);
    assert!(
        stdout(&o).contains(&format!("  sha256: {digest} (pinned by the manifest)")),
        "{}",
        stdout(&o)
    );

    // The file changes after it was compiled and cached: refused, both digests named,
    // by run, validate and compile alike.
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("i32.const 2", "i32.const 3")).unwrap();
    let changed = airssys_wasm_loader::sha256_hex(&std::fs::read(&file).unwrap());
    for args in [
        vec!["run", d.as_str(), "--invoke", "double(21)"],
        vec!["validate", d.as_str()],
        vec!["compile", d.as_str(), "-o", "/dev/null"],
    ] {
        let o = run(&args);
        assert_eq!(code(&o), 3, "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(&format!(
                "has SHA-256 {changed}, but its manifest pins {digest}"
            )),
            "{args:?}: {err}"
        );
        assert!(stdout(&o).is_empty(), "{args:?}: {}", stdout(&o));
    }
}

/// The `log-tool` guest in a directory with a manifest granting `wasi:logging` (or
/// not).
fn log_tool(granted: bool) -> tempfile::TempDir {
    let grant = if granted {
        "[capabilities]\ninterfaces = [\"wasi:logging/logging\"]\n"
    } else {
        ""
    };
    with_manifest("log-tool", fx::guests::LOG_TOOL, grant)
}

#[test]
fn guest_logs_show_on_stderr_with_the_component_name_from_info_up() {
    let dir = log_tool(true);
    let d = dir.path().display().to_string();
    let emit = |level: &str, extra: &[&str]| {
        let call = format!("emit(\"{level}\", \"boot\", \"a {level} record\")");
        let mut args = vec!["run", d.as_str(), "--invoke", call.as_str()];
        args.extend(extra);
        run(&args)
    };
    let o = emit("info", &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stderr(&o), "[log-tool] INFO boot: a info record\n");
    assert_eq!(stdout(&o), "");
    let o = emit("critical", &[]);
    assert_eq!(stderr(&o), "[log-tool] CRITICAL boot: a critical record\n");
    // Below info: hidden unless asked for; `off` hides everything.
    assert_eq!(stderr(&emit("debug", &[])), "");
    assert_eq!(
        stderr(&emit("debug", &["--log-level", "debug"])),
        "[log-tool] DEBUG boot: a debug record\n"
    );
    assert_eq!(stderr(&emit("error", &["--log-level", "off"])), "");
    // A flood: the bound, then one summary line.
    let o = run(&["run", d.as_str(), "--invoke", "flood(1500)"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1001, "{}", &err[err.len() - 200..]);
    assert!(
        err.ends_with(
            "[log-tool] WARN 500 log record(s) of this call were dropped: a call may emit at most \
             1000 records and 262144 bytes\n"
        ),
        "{}",
        &err[err.len() - 200..]
    );
}

#[test]
fn logging_needs_its_grant() {
    let dir = log_tool(false);
    let o = run(&[
        "run",
        &dir.path().display().to_string(),
        "--invoke",
        "flood(1)",
    ]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("`wasi:logging/logging@0.1.0-draft` is imported, but not granted"),
        "{}",
        stderr(&o)
    );
    let o = run(&["inspect", &dir.path().display().to_string()]);
    assert!(
        stdout(&o).contains("[provided: built-in wasi:logging/logging@0.1.0-draft, if granted]"),
        "{}",
        stdout(&o)
    );
}

/// A guest in a directory with a manifest holding `extra` (e.g. a `[config]` table).
fn with_manifest(name: &str, wasm: &[u8], extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(format!("{name}.wasm")), wasm).unwrap();
    std::fs::write(
        dir.path().join("Component.toml"),
        format!(
            "[component]\nname = \"{name}\"\npath = \"{name}.wasm\"\n[limits]\nmemory = \"4MiB\"\nfuel = 100_000_000\ntimeout = \"2s\"\n{extra}"
        ),
    )
    .unwrap();
    dir
}

#[test]
fn config_comes_from_the_manifest_the_environment_and_the_flags() {
    const VAR: &str = "AIRSSYS_CLI_TEST_TOKEN";
    let config = format!("[config]\ngreeting = \"hello\"\napi_token = {{ env = \"{VAR}\" }}\n");
    for (name, wasm) in [
        ("config-tool", fx::guests::CONFIG_TOOL),
        ("config-spin", fx::guests::CONFIG_SPIN),
    ] {
        let dir = with_manifest(name, wasm, &config);
        let d = dir.path().display().to_string();
        let get = |key: &str, extra: &[&str]| {
            let call = format!("get(\"{key}\")");
            let mut c = bin();
            c.args(["run", d.as_str(), "--invoke", call.as_str()])
                .args(extra)
                .env(VAR, "s3cret");
            c.output().unwrap()
        };
        let o = get("greeting", &[]);
        assert_eq!(code(&o), 0, "{name}: {}", stderr(&o));
        assert_eq!(stdout(&o), "ok(some(\"hello\"))\n", "{name}");
        assert_eq!(
            stdout(&get("api_token", &[])),
            "ok(some(\"s3cret\"))\n",
            "{name}"
        );
        assert_eq!(stdout(&get("absent", &[])), "ok(none)\n", "{name}");
        let o = get("greeting", &["--config", "greeting=hi", "--config", "x=y"]);
        assert_eq!(stdout(&o), "ok(some(\"hi\"))\n", "{name}");

        // The variable unset: a configuration error at start, naming key and variable —
        // unless the flag gives the value.
        let o = run(&[
            "run",
            d.as_str(),
            "--config",
            "api_token=from-flag",
            "--invoke",
            "get(\"api_token\")",
        ]);
        assert_eq!(
            stdout(&o),
            "ok(some(\"from-flag\"))\n",
            "{name}: {}",
            stderr(&o)
        );
        let o = run(&["run", d.as_str(), "--invoke", "get(\"greeting\")"]);
        assert_eq!(code(&o), 2, "{name}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains("Component.toml:10:13")
                && err.contains("`api_token` is read from the environment variable `AIRSSYS_CLI_TEST_TOKEN`, which is not set"),
            "{name}: {err}"
        );
    }
}

#[test]
fn config_without_a_table_needs_a_flag_and_never_leaks_into_the_environment() {
    // No [config]: not granted, with the fix.
    let dir = with_manifest("config-tool", fx::guests::CONFIG_TOOL, "");
    let d = dir.path().display().to_string();
    let o = run(&["run", &d, "--invoke", "get(\"greeting\")"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("a [config] table"), "{}", stderr(&o));
    // A flag gives the configuration (and the grant) for one run.
    let o = run(&[
        "run",
        &d,
        "--config",
        "greeting=hi",
        "--invoke",
        "get(\"greeting\")",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "ok(some(\"hi\"))\n");
    let o = run(&["run", &d, "--config", "=x", "--invoke", "get(\"greeting\")"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));

    // A variable a [config] value reads is not in the guest's environment.
    let dir = with_manifest(
        "env-print",
        fx::guests::ENV_PRINT,
        "[config]\napi_token = { env = \"AIRSSYS_CLI_TEST_SECRET\" }\n",
    );
    let o = bin()
        .args([
            "run",
            &dir.path().display().to_string(),
            "--",
            "AIRSSYS_CLI_TEST_SECRET",
        ])
        .env("AIRSSYS_CLI_TEST_SECRET", "s3cret")
        .output()
        .unwrap();
    assert!(
        stdout(&o).contains("AIRSSYS_CLI_TEST_SECRET is not set") && !stdout(&o).contains("s3cret"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn a_refused_connect_is_counted_and_logged_with_what_was_asked() {
    let dir = with_manifest(
        "tcp-connect",
        fx::guests::TCP_CONNECT,
        "[capabilities.network]\nconnect = [\"127.0.0.1:1\"]\n",
    );
    let o = run(&[
        "run",
        &dir.path().display().to_string(),
        "--report",
        "--",
        "connect",
        "127.0.0.1:9",
        "hi",
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("airssys_wasm::audit")
            && err.contains("denied: network.connect to 127.0.0.1:9 is not granted")
            && err.contains("component=\"tcp-connect\""),
        "{err}"
    );
    assert!(err.contains("1 capability use(s) denied"), "{err}");
    // No escape codes when stderr is not a terminal.
    assert!(!err.contains('\u{1b}'), "{err}");
}
