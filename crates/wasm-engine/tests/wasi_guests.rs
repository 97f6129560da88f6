//! Real components built by `cargo build --target wasm32-wasip2` (the testkit's Rust
//! guests) run through the engine with different grants: what each guest could and
//! could not do, and that the sandbox limits still hold for them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use airssys_wasm_core::{
    Capability, CapabilitySet, ConnectRule, DirAccess, DirGrant, EnvGrant, ResourceLimits,
    StdioMode, WasmError,
};
use airssys_wasm_engine::{CompiledComponent, Interruption, Optimization, Sandbox, WasmEngine};
use airssys_wasm_testkit::guests::{self, GUESTS};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const MIB: u64 = 1 << 20;
const GROSS: Duration = Duration::from_secs(20);

/// The guests that need component-model async (WASI 0.3), which `WasmEngine::new()`
/// leaves off: they run on an engine that turns it on, the others on the default one.
const ASYNC_GUESTS: &[&str] = &["p3-tool"];

/// Two engines, and every guest compiled once on its engine for the whole test binary.
fn compiled(name: &str) -> CompiledComponent {
    type Compiled = HashMap<&'static str, CompiledComponent>;
    static DEFAULT: OnceLock<Compiled> = OnceLock::new();
    static ASYNC: OnceLock<Compiled> = OnceLock::new();
    let needs_async = ASYNC_GUESTS.contains(&name);
    let all = (if needs_async { &ASYNC } else { &DEFAULT }).get_or_init(|| {
        let engine = WasmEngine::builder()
            .component_model_async(needs_async)
            .build()
            .unwrap();
        GUESTS
            .iter()
            .filter(|g| ASYNC_GUESTS.contains(&g.name) == needs_async)
            .map(|g| {
                let c =
                    wasmtime::component::Component::new(engine.wasmtime_engine(), g.wasm).unwrap();
                (g.name, CompiledComponent::new(&engine, g.name, c).unwrap())
            })
            .collect()
    });
    all[name].clone()
}

fn limits(memory: u64, fuel: u64, timeout: Duration) -> ResourceLimits {
    ResourceLimits::new(memory, fuel, timeout).unwrap()
}

fn roomy() -> ResourceLimits {
    limits(64 * MIB, 5_000_000_000, Duration::from_secs(10))
}

/// What a command guest printed and how it ended.
#[derive(Debug)]
struct Run {
    code: Result<i32, WasmError>,
    stdout: String,
    stderr: String,
    /// Capability uses the run was refused.
    denials: u64,
    /// Their audit trail.
    records: Vec<airssys_wasm_engine::Denial>,
}

async fn run_with(guest: &str, caps: CapabilitySet, args: &[&str], limits: ResourceLimits) -> Run {
    let mut argv = vec![guest];
    argv.extend_from_slice(args);
    let sandbox = Sandbox::new(limits)
        .with_capabilities(caps)
        .with_args(argv)
        .capture_output(1 << 20);
    let mut instance = compiled(guest).instantiate(&sandbox).await.unwrap();
    let code = instance.run_command().await.map(|(code, _)| code);
    let text = |b: Option<Vec<u8>>| String::from_utf8(b.unwrap()).unwrap();
    Run {
        code,
        stdout: text(instance.captured_stdout()),
        stderr: text(instance.captured_stderr()),
        denials: instance.last_report().capability_denials,
        records: instance.last_denials(),
    }
}

async fn run(guest: &str, caps: CapabilitySet, args: &[&str]) -> Run {
    run_with(guest, caps, args, roomy()).await
}

fn stdio() -> CapabilitySet {
    CapabilitySet::default()
}

fn with(grants: impl IntoIterator<Item = Capability>) -> CapabilitySet {
    let mut caps = stdio();
    for g in grants {
        caps.grant(g);
    }
    caps
}

// ---------------------------------------------------------------- wasi:cli

#[tokio::test]
async fn a_command_sees_its_args_and_writes_both_streams() {
    let r = run("cli-hello", stdio(), &["one", "two words"]).await;
    assert_eq!(r.code.unwrap(), 0);
    assert_eq!(
        r.stdout,
        "hello from a wasi:cli guest\narg[0] = cli-hello\narg[1] = one\narg[2] = two words\n"
    );
    assert_eq!(r.stderr, "hello on stderr\n");
}

#[tokio::test]
async fn a_failing_command_reports_failure_as_exit_code_1() {
    // WASI 0.2's exit carries success or failure only, as with `wasmtime run`.
    let r = run("cli-hello", stdio(), &["--exit=3"]).await;
    assert_eq!(r.code.unwrap(), 1);
}

#[tokio::test]
async fn stdout_and_stderr_not_granted_go_nowhere() {
    let r = run("cli-hello", CapabilitySet::deny_all(), &["x"]).await;
    assert_eq!(
        r.code.unwrap(),
        0,
        "a guest must not fail because it is muted"
    );
    assert_eq!(r.stdout, "");
    assert_eq!(r.stderr, "");
}

#[tokio::test]
async fn a_library_component_without_wasi_cli_run_is_not_a_command() {
    let sandbox = Sandbox::new(roomy());
    let mut i = compiled("calc").instantiate(&sandbox).await.unwrap();
    let err = i.run_command().await.unwrap_err();
    assert!(matches!(err, WasmError::ExportNotFound { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("greet: func(name: string) -> string"), "{msg}");
}

#[tokio::test]
async fn stdin_is_readable_only_when_granted() {
    let run_stdin = |caps: CapabilitySet| async move {
        let sandbox = Sandbox::new(roomy())
            .with_capabilities(caps)
            .with_args(["cli-hello", "--stdin"])
            .with_stdin(b"fed by the host".to_vec())
            .capture_output(1 << 20);
        let mut i = compiled("cli-hello").instantiate(&sandbox).await.unwrap();
        assert_eq!(i.run_command().await.unwrap().0, 0);
        String::from_utf8(i.captured_stdout().unwrap()).unwrap()
    };
    let out = run_stdin(with([Capability::Stdin(StdioMode::Inherit)])).await;
    assert!(out.ends_with("stdin: fed by the host\n"), "{out}");
    let out = run_stdin(stdio()).await;
    assert!(
        out.ends_with("stdin: \n"),
        "a null stdin reads as empty: {out}"
    );
}

// ---------------------------------------------------------------- env

#[tokio::test]
async fn no_host_variable_leaks_without_a_grant() {
    assert!(
        std::env::var_os("PATH").is_some(),
        "the test needs PATH set on the host"
    );
    let r = run("env-print", stdio(), &[]).await;
    assert_eq!(r.stdout, "count: 0\n");
    let r = run("env-print", stdio(), &["PATH"]).await;
    assert_eq!(r.stdout, "PATH is not set\n");
    assert_eq!(r.code.unwrap(), 1);
}

#[tokio::test]
async fn granted_variables_pass_through_or_are_set() {
    let host_path = std::env::var("PATH").unwrap();
    let caps = with([
        Capability::Env(EnvGrant {
            name: "PATH".into(),
            value: None,
        }),
        Capability::Env(EnvGrant {
            name: "MODE".into(),
            value: Some("fast".into()),
        }),
        Capability::Env(EnvGrant {
            name: "AIRSSYS_SURELY_UNSET_ON_THE_HOST".into(),
            value: None,
        }),
    ]);
    let r = run("env-print", caps, &[]).await;
    assert_eq!(r.stdout, format!("MODE=fast\nPATH={host_path}\ncount: 2\n"));
}

// ---------------------------------------------------------------- filesystem

/// `tmp/outside.txt`, `tmp/data/hello.txt`, `tmp/data/escape -> ../outside.txt`.
fn tree() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("outside.txt"), "secret").unwrap();
    std::fs::create_dir(tmp.path().join("data")).unwrap();
    std::fs::write(tmp.path().join("data/hello.txt"), "hello file").unwrap();
    std::os::unix::fs::symlink("../outside.txt", tmp.path().join("data/escape")).unwrap();
    tmp
}

fn dir(host: &Path, access: DirAccess) -> CapabilitySet {
    with([Capability::Filesystem(DirGrant {
        host: host.to_owned(),
        guest: "/data".into(),
        access,
    })])
}

#[tokio::test]
async fn without_a_grant_no_file_can_be_read() {
    let tmp = tree();
    for path in [
        "/data/hello.txt",
        "hello.txt",
        "/outside.txt",
        "/etc/passwd",
    ] {
        let r = run("fs-tool", stdio(), &["read", path]).await;
        assert!(r.stdout.starts_with("error: "), "{path}: {}", r.stdout);
        assert_eq!(r.code.unwrap(), 1);
    }
    drop(tmp);
}

#[tokio::test]
async fn read_only_can_read_and_list_but_not_write() {
    let tmp = tree();
    let data = tmp.path().join("data");
    let ro = || dir(&data, DirAccess::ReadOnly);

    let r = run("fs-tool", ro(), &["read", "/data/hello.txt"]).await;
    assert_eq!(r.stdout, "ok: hello file\n");
    let r = run("fs-tool", ro(), &["ls", "/data"]).await;
    assert_eq!(r.stdout, "ok: escape hello.txt\n");

    let r = run("fs-tool", ro(), &["write", "/data/new.txt", "x"]).await;
    assert!(r.stdout.starts_with("error: "), "{}", r.stdout);
    // Refused by the host, so counted (and audited).
    assert_eq!(r.denials, 1, "{r:?}");
    let r = run(
        "fs-tool",
        ro(),
        &["write", "/data/hello.txt", "overwritten"],
    )
    .await;
    assert!(r.stdout.starts_with("error: "), "{}", r.stdout);
    assert!(!data.join("new.txt").exists());
    assert_eq!(
        std::fs::read_to_string(data.join("hello.txt")).unwrap(),
        "hello file"
    );
}

#[tokio::test]
async fn read_write_can_write() {
    let tmp = tree();
    let data = tmp.path().join("data");
    let r = run(
        "fs-tool",
        dir(&data, DirAccess::ReadWrite),
        &["write", "/data/new.txt", "written by the guest"],
    )
    .await;
    assert_eq!(r.stdout, "ok: wrote 20 bytes\n");
    assert_eq!(
        std::fs::read_to_string(data.join("new.txt")).unwrap(),
        "written by the guest"
    );
}

#[tokio::test]
async fn nothing_outside_the_preopen_is_reachable() {
    let tmp = tree();
    let data = tmp.path().join("data");
    // Each refusal the host sees is counted (and audited); a path outside every
    // preopen fails in the guest's libc without asking the host.
    for (path, refusals) in [
        ("/data/../outside.txt", 1),
        ("/data/../../../../etc/passwd", 1),
        ("/data/escape", 1),
        ("/outside.txt", 0),
    ] {
        let r = run("fs-tool", dir(&data, DirAccess::ReadWrite), &["read", path]).await;
        assert!(r.stdout.starts_with("error: "), "{path}: {}", r.stdout);
        assert!(!r.stdout.contains("secret"), "{path}: {}", r.stdout);
        assert_eq!(r.denials, refusals, "{path}: {r:?}");
        assert_eq!(r.records.len() as u64, refusals, "{path}: {r:?}");
        if let Some(d) = r.records.first() {
            // The path as the host saw it: relative to the preopened directory.
            assert_eq!(d.capability, "filesystem");
            let relative = path.trim_start_matches("/data/");
            assert_eq!(d.requested, relative, "{d}");
        }
    }
    let r = run(
        "fs-tool",
        dir(&data, DirAccess::ReadWrite),
        &["write", "/data/../planted.txt", "x"],
    )
    .await;
    assert!(r.stdout.starts_with("error: "), "{}", r.stdout);
    assert!(!tmp.path().join("planted.txt").exists());
}

// ---------------------------------------------------------------- network

/// A one-line echo server on 127.0.0.1, started by the test.
async fn echo_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut line = String::new();
                if BufReader::new(read).read_line(&mut line).await.is_ok() {
                    let _ = write
                        .write_all(format!("echo: {}\n", line.trim_end()).as_bytes())
                        .await;
                }
            });
        }
    });
    addr
}

fn connect_to(rule: &str) -> Capability {
    Capability::Connect(ConnectRule::parse(rule).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_without_a_network_grant_fails() {
    let addr = echo_server().await;
    let r = run(
        "tcp-connect",
        stdio(),
        &["connect", &addr.to_string(), "hi"],
    )
    .await;
    assert!(r.stdout.starts_with("error: "), "{}", r.stdout);
    assert_eq!(r.code.as_ref().ok(), Some(&1));
    // Refused at the socket, for want of any network grant: counted and kept.
    assert_eq!(r.denials, 1, "{r:?}");
    assert_eq!(r.records[0].capability, "network.tcp");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_to_an_allowed_address_succeeds() {
    let addr = echo_server().await;
    for rule in [addr.to_string(), "127.0.0.1:*".to_owned()] {
        let caps = with([connect_to(&rule)]);
        let r = run("tcp-connect", caps, &["connect", &addr.to_string(), "ping"]).await;
        assert_eq!(r.stdout, "reply: echo: ping\n", "{rule}");
        assert_eq!(r.code.as_ref().unwrap(), &0);
        assert_eq!(r.denials, 0);
    }
}

/// The operator's policy on private addresses covers `wasi:sockets` too: a connect the
/// manifest grants is refused (and audited) when it goes to loopback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusing_private_addresses_covers_socket_connects() {
    let addr = echo_server().await;
    let mut argv = vec!["tcp-connect"];
    let target = addr.to_string();
    argv.extend_from_slice(&["connect", &target, "hi"]);
    let sandbox = Sandbox::new(roomy())
        .with_capabilities(with([connect_to("127.0.0.1:*")]))
        .with_args(argv)
        .capture_output(1 << 20)
        .refuse_private_addresses(true);
    let mut instance = compiled("tcp-connect").instantiate(&sandbox).await.unwrap();
    let code = instance.run_command().await.map(|(code, _)| code);
    let stdout = String::from_utf8(instance.captured_stdout().unwrap()).unwrap();
    assert!(stdout.starts_with("error: "), "{stdout}");
    assert_eq!(code.unwrap(), 1);
    let records = instance.last_denials();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].capability, "network.connect");
    assert!(
        records[0]
            .reason
            .contains("not a globally routable address"),
        "{}",
        records[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_outside_the_allowlist_fails() {
    let addr = echo_server().await;
    let other = echo_server().await;
    let caps = with([connect_to(&other.to_string())]);
    let r = run("tcp-connect", caps, &["connect", &addr.to_string(), "hi"]).await;
    assert!(r.stdout.starts_with("error: "), "{}", r.stdout);
    // Counted in the report, kept in the trail (and logged to the audit target).
    assert_eq!(r.denials, 1, "{}", r.stdout);
    assert_eq!(r.records.len(), 1);
    assert_eq!(r.records[0].capability, "network.connect");
    assert_eq!(r.records[0].requested, addr.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn name_lookups_need_dns() {
    let r = run(
        "tcp-connect",
        with([connect_to("127.0.0.1:*")]),
        &["lookup", "localhost"],
    )
    .await;
    assert!(r.stdout.starts_with("error: "), "{}", r.stdout);
    assert_eq!(r.denials, 1, "{r:?}");
    assert_eq!(
        (r.records[0].capability, r.records[0].requested.as_str()),
        ("network.dns", "localhost")
    );
    let r = run(
        "tcp-connect",
        with([Capability::Dns]),
        &["lookup", "localhost"],
    )
    .await;
    assert!(r.stdout.starts_with("resolved: "), "{}", r.stdout);
    assert!(
        r.stdout.contains("127.0.0.1") || r.stdout.contains("::1"),
        "{}",
        r.stdout
    );
    assert_eq!(r.denials, 0);
}

// ---------------------------------------------------------------- limits

#[tokio::test]
async fn an_allocation_bomb_hits_the_memory_limit() {
    let r = run_with(
        "hostile",
        stdio(),
        &["alloc-bomb"],
        limits(16 * MIB, 5_000_000_000, Duration::from_secs(10)),
    )
    .await;
    match r.code {
        Err(WasmError::MemoryLimitExceeded {
            limit_bytes,
            requested_bytes,
            ..
        }) => {
            assert_eq!(limit_bytes, 16 * MIB);
            assert!(requested_bytes > 16 * MIB, "{requested_bytes}");
        }
        other => panic!("expected the memory limit, got {other:?}"),
    }
    assert!(r.stderr.contains("memory allocation of"), "{}", r.stderr);
}

#[tokio::test]
async fn a_spinning_command_is_stopped_by_fuel_or_by_time() {
    let r = run_with(
        "hostile",
        stdio(),
        &["spin"],
        limits(16 * MIB, 50_000_000, Duration::from_secs(10)),
    )
    .await;
    assert!(
        matches!(
            r.code,
            Err(WasmError::FuelExhausted {
                fuel_limit: 50_000_000,
                ..
            })
        ),
        "{:?}",
        r.code
    );

    let started = Instant::now();
    let r = run_with(
        "hostile",
        stdio(),
        &["spin"],
        limits(16 * MIB, u64::MAX, Duration::from_millis(300)),
    )
    .await;
    assert!(
        matches!(
            r.code,
            Err(WasmError::ComponentTimeout {
                max_execution_ms: 300,
                ..
            })
        ),
        "{:?}",
        r.code
    );
    assert!(started.elapsed() < GROSS);
}

#[tokio::test]
async fn a_guest_blocked_in_the_host_is_ended_by_the_async_bound() {
    // `sleep` waits for a day in a WASI poll, in the host, where epoch interruption
    // does not reach: only the async-side bound (the timeout plus a margin) ends it.
    let timeout = Duration::from_millis(200);
    let sandbox = Sandbox::new(limits(16 * MIB, u64::MAX, timeout))
        .with_capabilities(stdio())
        .with_args(["hostile", "sleep"])
        .capture_output(1 << 20)
        .measure_wall_time(true);
    let mut instance = compiled("hostile").instantiate(&sandbox).await.unwrap();
    let started = Instant::now();
    let err = instance.run_command().await.unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(
            err,
            WasmError::ComponentTimeout {
                max_execution_ms: 200,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(took >= timeout, "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(instance.last_report().wall_time.unwrap() >= timeout);
    assert!(instance.poisoned().is_some());
    let stdout = String::from_utf8(instance.captured_stdout().unwrap()).unwrap();
    assert_eq!(stdout, "hostile: sleep\n");
    // The engine and the component carry on.
    let r = run("cli-hello", stdio(), &[]).await;
    assert_eq!(r.code.unwrap(), 0);
}

#[tokio::test]
async fn runaway_recursion_traps_and_says_why() {
    let r = run("hostile", stdio(), &["recurse"]).await;
    let Err(WasmError::ComponentTrapped {
        reason, backtrace, ..
    }) = r.code
    else {
        panic!("expected a trap, got {:?}", r.code);
    };
    // Rust keeps its stack in linear memory: overflowing it is an out-of-bounds access.
    assert!(reason.contains("out-of-bounds memory access"), "{reason}");
    assert!(reason.contains("unbounded recursion"), "{reason}");
    assert!(backtrace.unwrap().contains("recurse"));
}

#[tokio::test]
async fn a_panic_traps_after_printing_its_message() {
    let r = run("hostile", stdio(), &["panic"]).await;
    let Err(WasmError::ComponentTrapped { reason, .. }) = r.code else {
        panic!("expected a trap, got {:?}", r.code);
    };
    assert!(reason.starts_with("unreachable"), "{reason}");
    assert!(
        r.stderr.contains("the guest panicked on purpose"),
        "{}",
        r.stderr
    );
}

// ---------------------------------------------------------------- a wit-bindgen library

#[tokio::test]
async fn a_wit_bindgen_library_is_called_with_typed_and_dynamic_values() {
    let mut i = compiled("calc")
        .instantiate(&Sandbox::new(roomy()))
        .await
        .unwrap();
    let ((sum,), _) = i
        .call_typed::<(i32, i32), (i32,)>("add", (40, 2))
        .await
        .unwrap();
    assert_eq!(sum, 42);
    let ((greeting,), _) = i
        .call_typed::<(&str,), (String,)>("greet", ("airssys",))
        .await
        .unwrap();
    assert_eq!(greeting, "Hello, airssys!");
    let ((total,), _) = i
        .call_typed::<(Vec<u32>,), (u64,)>("sum", ((1..=100).collect(),))
        .await
        .unwrap();
    assert_eq!(total, 5050);
    let outcome = i.invoke("fib(90)").await.unwrap();
    assert_eq!(outcome.results_wave().unwrap(), ["2880067194370816120"]);
}

#[tokio::test]
async fn a_library_guest_is_held_to_its_limits_and_the_others_carry_on() {
    let component = compiled("calc");
    let tight = Sandbox::new(limits(16 * MIB, 1_000_000_000, Duration::from_secs(10)));
    let mut i = component.instantiate(&tight).await.unwrap();
    let err = i.invoke("hoard(64)").await.unwrap_err();
    assert!(
        matches!(err, WasmError::MemoryLimitExceeded { .. }),
        "{err}"
    );
    let err = i.invoke("add(1, 2)").await.unwrap_err();
    assert!(matches!(err, WasmError::InstancePoisoned { .. }), "{err}");

    let mut j = component.instantiate(&tight).await.unwrap();
    let outcome = j.invoke("hoard(4)").await.unwrap();
    assert_eq!(outcome.results_wave().unwrap(), [(4 * MIB).to_string()]);
    let err = j.invoke("spin()").await.unwrap_err();
    assert!(matches!(err, WasmError::FuelExhausted { .. }), "{err}");

    let mut k = component.instantiate(&tight).await.unwrap();
    assert_eq!(
        k.invoke("add(1, 2)").await.unwrap().results_wave().unwrap(),
        ["3"]
    );
}

// ---------------------------------------------------------------- WASI 0.3

#[tokio::test]
async fn a_wasi_0_3_command_runs_and_writes_through_a_stream() {
    let r = run("p3-tool", stdio(), &["one", "two"]).await;
    assert_eq!(*r.code.as_ref().unwrap(), 0, "{r:?}");
    assert_eq!(r.stdout, "hello from WASI 0.3: p3-tool one two\n");
}

#[tokio::test]
async fn wasi_0_3_streams_get_the_same_grants_as_wasi_0_2() {
    // Without a stdout grant, the WASI 0.3 stdout stream goes nowhere, as 0.2's does.
    let r = run("p3-tool", CapabilitySet::deny_all(), &["secret"]).await;
    assert_eq!(*r.code.as_ref().unwrap(), 0, "{r:?}");
    assert_eq!(r.stdout, "");
}

/// WASI 0.3's filesystem is granted and refused as 0.2's is, and each refusal the host
/// sees is counted and kept in the audit trail the same way.
#[tokio::test]
async fn wasi_0_3_filesystem_refusals_are_audited_like_wasi_0_2() {
    let tmp = tree();
    let data = tmp.path().join("data");
    let rw = || dir(&data, DirAccess::ReadWrite);

    let r = run("p3-tool", rw(), &["read", "/data/hello.txt"]).await;
    assert_eq!(r.stdout, "ok: hello file\n", "{r:?}");
    assert_eq!(r.denials, 0);

    for path in ["/data/../outside.txt", "/data/escape"] {
        let r = run("p3-tool", rw(), &["read", path]).await;
        assert!(r.stdout.starts_with("error: "), "{path}: {r:?}");
        assert!(!r.stdout.contains("secret"), "{path}: {r:?}");
        assert_eq!(r.code.as_ref().ok(), Some(&1), "{path}: {r:?}");
        assert_eq!(r.denials, 1, "{path}: {r:?}");
        let d = &r.records[0];
        assert_eq!(d.capability, "filesystem", "{d}");
        assert_eq!(d.requested, path.trim_start_matches("/data/"), "{d}");
        assert!(d.reason.starts_with("open `"), "{d}");
    }

    // A write into a read-only directory: refused when the file is opened, audited.
    let ro = dir(&data, DirAccess::ReadOnly);
    let r = run("p3-tool", ro, &["write", "/data/new.txt", "x"]).await;
    assert!(r.stdout.starts_with("error: "), "{r:?}");
    assert_eq!(r.denials, 1, "{r:?}");
    assert_eq!(r.records[0].requested, "new.txt");
    assert!(!data.join("new.txt").exists());

    let r = run("p3-tool", rw(), &["write", "/data/new.txt", "written"]).await;
    assert_eq!(r.stdout, "ok: wrote 7 bytes\n", "{r:?}");
    assert_eq!(
        std::fs::read_to_string(data.join("new.txt")).unwrap(),
        "written"
    );
}

/// WASI 0.3's sockets: a TCP socket without a network grant and a name lookup without
/// `dns = true` are refused and audited as in WASI 0.2; granted, they work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasi_0_3_socket_refusals_are_audited_like_wasi_0_2() {
    let addr = echo_server().await;
    let target = addr.to_string();

    let r = run("p3-tool", stdio(), &["connect", &target]).await;
    assert!(r.stdout.starts_with("error: "), "{r:?}");
    assert_eq!(r.denials, 1, "{r:?}");
    assert_eq!(r.records[0].capability, "network.tcp");

    let r = run(
        "p3-tool",
        with([connect_to(&target)]),
        &["connect", &target],
    )
    .await;
    assert_eq!(r.stdout, format!("ok: connected to {target}\n"), "{r:?}");
    assert_eq!(r.denials, 0);

    // Outside the allowlist: the socket check shared by both versions refuses it.
    let other = echo_server().await;
    let r = run(
        "p3-tool",
        with([connect_to(&other.to_string())]),
        &["connect", &target],
    )
    .await;
    assert!(r.stdout.starts_with("error: "), "{r:?}");
    assert_eq!(r.records.len(), 1, "{r:?}");
    assert_eq!(
        (r.records[0].capability, r.records[0].requested.as_str()),
        ("network.connect", target.as_str())
    );

    let r = run("p3-tool", stdio(), &["lookup", "localhost"]).await;
    assert!(r.stdout.starts_with("error: "), "{r:?}");
    assert_eq!(r.denials, 1, "{r:?}");
    assert_eq!(
        (r.records[0].capability, r.records[0].requested.as_str()),
        ("network.dns", "localhost")
    );
    let r = run("p3-tool", with([Capability::Dns]), &["lookup", "localhost"]).await;
    assert!(r.stdout.starts_with("ok: "), "{r:?}");
    assert_eq!(r.denials, 0);
}

#[tokio::test]
async fn async_exports_are_called_and_wait_in_the_host() {
    let sandbox = Sandbox::new(roomy()).measure_wall_time(true);
    let mut i = compiled("p3-tool").instantiate(&sandbox).await.unwrap();
    let ((v,), report) = i
        .call_typed::<(u32, u32), (u32,)>("slow-double", (21, 30))
        .await
        .unwrap();
    assert_eq!(v, 42);
    assert!(
        report.wall_time.unwrap() >= Duration::from_millis(30),
        "{report}"
    );
    // By WAVE too, as the CLI's --invoke does; the instance stays usable.
    let out = i.invoke("slow-double(5, 0)").await.unwrap();
    assert_eq!(out.results_wave().unwrap(), ["10"]);
}

#[tokio::test]
async fn an_async_task_that_never_resolves_is_ended_by_the_timeout_and_poisons() {
    let component = compiled("p3-tool");
    let timeout = Duration::from_millis(300);
    let mut i = component
        .instantiate(&Sandbox::new(limits(16 * MIB, 1_000_000_000, timeout)))
        .await
        .unwrap();
    let t = Instant::now();
    let err = i.invoke("never()").await.unwrap_err();
    let took = t.elapsed();
    assert!(
        matches!(
            err,
            WasmError::ComponentTimeout {
                max_execution_ms: 300,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(took >= timeout && took < GROSS, "{took:?}");
    // Poisoned like any timed-out instance; a new one works.
    let later = i.invoke("slow-double(1, 0)").await.unwrap_err();
    assert!(
        matches!(later, WasmError::InstancePoisoned { .. }),
        "{later}"
    );
    let mut j = component.instantiate(&Sandbox::new(roomy())).await.unwrap();
    let out = j.invoke("slow-double(2, 0)").await.unwrap();
    assert_eq!(out.results_wave().unwrap(), ["4"]);
}

#[tokio::test]
async fn an_async_task_that_spins_is_stopped_by_fuel_and_by_the_timeout() {
    let component = compiled("p3-tool");
    let mut i = component
        .instantiate(&Sandbox::new(limits(
            16 * MIB,
            50_000_000,
            Duration::from_secs(30),
        )))
        .await
        .unwrap();
    let err = i.invoke("spin()").await.unwrap_err();
    assert!(matches!(err, WasmError::FuelExhausted { .. }), "{err:?}");

    let timeout = Duration::from_millis(300);
    let mut i = component
        .instantiate(&Sandbox::new(limits(16 * MIB, u64::MAX, timeout)))
        .await
        .unwrap();
    let t = Instant::now();
    let err = i.invoke("spin()").await.unwrap_err();
    assert!(matches!(err, WasmError::ComponentTimeout { .. }), "{err:?}");
    assert!(t.elapsed() >= timeout && t.elapsed() < GROSS);
}

#[tokio::test]
async fn the_default_engine_refuses_a_wasi_0_3_component_naming_the_feature() {
    let engine = WasmEngine::new().unwrap();
    let err =
        wasmtime::component::Component::new(engine.wasmtime_engine(), guests::P3_TOOL).unwrap_err();
    assert!(
        format!("{err:#}").contains("component model async"),
        "{err:#}"
    );
}

/// What `cpu-suite WORKLOAD 0` printed and the fuel its run took, on `component`.
async fn cpu_suite_fuel(component: &CompiledComponent, workload: &str) -> (String, u64) {
    let sandbox = Sandbox::new(roomy())
        .with_capabilities(stdio())
        .with_args(["cpu-suite", workload, "0"])
        .capture_output(1 << 16);
    let mut instance = component.instantiate(&sandbox).await.unwrap();
    let (code, report) = instance.run_command().await.unwrap();
    assert_eq!(code, 0, "{workload}");
    let out = String::from_utf8(instance.captured_stdout().unwrap()).unwrap();
    (out, report.fuel_consumed)
}

#[tokio::test]
async fn fuel_is_deterministic_across_runs_interruptions_and_generated_code() {
    // The same work consumes the same fuel: on a fresh instance, with either way of
    // interrupting the guest (different machine code: epoch checks or not), and at
    // another optimisation level (different machine code again: fuel is counted in
    // WebAssembly operators, not in what the compiler made of them — which is why it
    // is the same on every machine).
    let other = |b: airssys_wasm_engine::WasmEngineBuilder| {
        let engine = b.build().unwrap();
        let c = wasmtime::component::Component::new(engine.wasmtime_engine(), guests::CPU_SUITE)
            .unwrap();
        CompiledComponent::new(&engine, "cpu-suite", c).unwrap()
    };
    let engines = [
        ("default", compiled("cpu-suite")),
        (
            "epochs",
            other(WasmEngine::builder().interruption(Interruption::Epochs)),
        ),
        (
            "unoptimised",
            other(WasmEngine::builder().optimization(Optimization::None)),
        ),
    ];
    // Not `regex`: the regex crate builds its automata with Rust's `HashMap`, whose
    // hash keys std draws from `wasi:random` — another input on every run (its fuel
    // varies by a few hundred units in ~143 million).
    for workload in ["loop", "fib", "sha256", "sort", "json"] {
        let (out, fuel) = cpu_suite_fuel(&engines[0].1, workload).await;
        assert!(out.starts_with(&format!("{workload} 0 0 ")), "{out}");
        assert!(fuel > 1_000_000, "{workload}: {fuel}");
        assert_eq!(
            cpu_suite_fuel(&engines[0].1, workload).await,
            (out.clone(), fuel),
            "{workload}, again"
        );
        for (name, component) in &engines[1..] {
            assert_eq!(
                cpu_suite_fuel(component, workload).await,
                (out.clone(), fuel),
                "{workload}, {name}"
            );
        }
    }
}

#[test]
fn every_guest_is_exercised_here() {
    for g in GUESTS {
        assert!(
            include_str!("wasi_guests.rs").contains(&format!("\"{}\"", g.name))
                || include_str!("host_interfaces.rs").contains(&format!("\"{}\"", g.name))
                || include_str!("logging.rs").contains(&format!("\"{}\"", g.name))
                || include_str!("config.rs").contains(&format!("\"{}\"", g.name))
                || include_str!("http.rs").contains(&format!("\"{}\"", g.name))
                || include_str!("../../wasm-keyvalue/tests/keyvalue.rs")
                    .contains(&format!("\"{}\"", g.name))
                || include_str!("../../wasm-actor/tests/components.rs")
                    .contains(&format!("\"{}\"", g.name)),
            "guest {} has no test",
            g.name
        );
    }
    assert!(guests::guest("calc").is_some());
}
