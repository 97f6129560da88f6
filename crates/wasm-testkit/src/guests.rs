//! Real guest components: Rust programs under `guests/`, built for `wasm32-wasip2` by
//! `cargo xtask fixtures` and committed as `guests/wasm/<name>.wasm`, so tests never need
//! the target. [`SOURCES_DIGEST`] records which sources the committed binaries were built
//! from; a test fails when the sources change without a rebuild.

use std::path::{Path, PathBuf};

/// One prebuilt guest component.
#[derive(Debug, Clone, Copy)]
pub struct Guest {
    /// The crate name, which is also the file stem (`cli-hello` → `wasm/cli-hello.wasm`).
    pub name: &'static str,
    /// What it does and how to drive it.
    pub about: &'static str,
    /// The component binary.
    pub wasm: &'static [u8],
}

macro_rules! guest {
    ($(#[doc = $doc:literal])* $konst:ident, $name:literal) => {
        $(#[doc = $doc])*
        pub const $konst: &[u8] =
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/guests/wasm/", $name, ".wasm"));
    };
}

guest!(
    /// `wasi:cli` command, the CPU suite: `WORKLOAD RUNS` (`loop`, `fib`, `sha256`,
    /// `sort`, `json`, `regex`) runs the workload once, then RUNS times, and prints
    /// `WORKLOAD RUNS <ns per run> <checksum>`; the same source builds natively, for the
    /// comparison (`cargo xtask cpu`).
    CPU_SUITE,
    "cpu-suite"
);
guest!(
    /// `wasi:cli` command: prints `hello from a wasi:cli guest`, then `arg[i] = …` for each
    /// argument (argument 0 is the program name) to stdout and `hello on stderr` to stderr;
    /// exits with failure when given `--exit=N` with N ≠ 0 (WASI 0.2 carries only
    /// success or failure).
    CLI_HELLO,
    "cli-hello"
);
guest!(
    /// `wasi:cli` command: `read PATH`, `write PATH TEXT`, `ls PATH`; prints `ok: …` or
    /// `error: …` (and fails).
    FS_TOOL,
    "fs-tool"
);
guest!(
    /// `wasi:cli` command: without arguments prints every variable it sees as
    /// `NAME=VALUE` and `count: N`; with `NAME` prints `NAME=VALUE` or `NAME is not set`
    /// (and fails).
    ENV_PRINT,
    "env-print"
);
guest!(
    /// `wasi:cli` command: `connect IP:PORT MESSAGE` sends a line and prints
    /// `reply: <line>`; `lookup HOST` prints `resolved: <ips>`; failures print `error: …`
    /// (and fail).
    TCP_CONNECT,
    "tcp-connect"
);
guest!(
    /// `wasi:cli` command that misbehaves as its first argument says: `alloc-bomb`,
    /// `spin`, `recurse`, `panic`.
    HOSTILE,
    "hostile"
);
guest!(
    /// Library component built with `wit-bindgen` (`guests/calc/wit/calc.wit`): exports
    /// `add(s32, s32) -> s32`, `greet(string) -> string`, `sum(list<u32>) -> u64`,
    /// `fib(u32) -> u64`, `hoard(mib: u32) -> u64` (allocates), `spin()` (never returns),
    /// `bump() -> u64` (adds one to the instance's own counter).
    CALC,
    "calc"
);

guest!(
    /// WASI 0.3 component (component-model async; built with the `wasip3` crate,
    /// `guests/p3-tool/wit/p3-tool.wit`): its async `wasi:cli/run@0.3.0` prints
    /// `hello from WASI 0.3: <arguments>` through a WASI 0.3 stdout stream; async exports
    /// `slow-double(x: u32, delay-ms: u32) -> u32` (waits on the WASI 0.3 clock), `never()`
    /// (waits for ever) and `spin()` (loops for ever). Needs an engine with
    /// component-model async on.
    P3_TOOL,
    "p3-tool"
);

guest!(
    /// Library component built with `wit-bindgen` that calls host interfaces
    /// (`guests/host-calls/wit/host-calls.wit`, package `test:host@1.0.0`): imports
    /// `math` (`add`, `echo`), `slow` (`wait`), `faults` (`fail`, `panic`, `burn`) and
    /// `state` (`tenant`, `bump`, resource `counter`); exports one function per import
    /// that calls it, plus `count(start, times)` and `hoard-counters(n)`, which makes
    /// `n` counters and keeps them all.
    HOST_CALLS,
    "host-calls"
);

guest!(
    /// An actor (world `airssys:actor/actor@0.1.0`, `crates/wasm-actor/wit`) built with
    /// `wit-bindgen`, driven by `text/plain` commands: `echo`, `self`, `count`, `get`,
    /// `last`, `send`, `ask`, `publish`, `subscribe`, `spawn`, `work N` (→ `done N` to
    /// `collector`), `token HOPS N` (a ring of `ring-I`), and `trap`, `fail`, `spin`,
    /// `hoard MIB`; see `guests/actor-worker/src/lib.rs`.
    ACTOR_WORKER,
    "actor-worker"
);

guest!(
    /// Library component built with `wit-bindgen` that logs through the standard
    /// `wasi:logging/logging@0.1.0-draft` (`guests/log-tool/wit`): exports
    /// `emit(level, context, message)`, `flood(n)` (n `info` records) and `shout(bytes)`
    /// (one `warn` record that long).
    LOG_TOOL,
    "log-tool"
);

guest!(
    /// Library component built with `wit-bindgen` that reads its configuration through
    /// the standard `wasi:config/store@0.2.0-rc.1` (Wasmtime's version,
    /// `guests/config-tool/wit`): exports `get(key) -> result<option<string>, string>`
    /// and `all() -> result<list<tuple<string, string>>, string>` (sorted).
    CONFIG_TOOL,
    "config-tool"
);
guest!(
    /// The same as [`CONFIG_TOOL`] built against `wasi:config/store@0.2.0-draft-2024-09-27`
    /// (Spin's version, `guests/config-spin/wit`).
    CONFIG_SPIN,
    "config-spin"
);

guest!(
    /// `wasi:cli` command over the standard `wasi:keyvalue@0.2.0-draft` (`store`,
    /// `atomics`, `batch`; Wasmtime's version, `guests/kv-tool/wit`): `get`, `set`,
    /// `delete`, `exists`, `list`, `incr BUCKET KEY DELTA [TIMES]`, `incr-after BUCKET
    /// GATE KEY DELTA TIMES` (waits for key GATE first: a start barrier), `set-many`,
    /// `get-many`, `delete-many`, `fill BUCKET PREFIX SIZE COUNT` (prints `ack <i>` after
    /// each write), `set-then-trap`, `set-then-spin`, `bench-get|set|incr BUCKET N`; see
    /// `guests/kv-tool/src/main.rs`.
    KV_TOOL,
    "kv-tool"
);

guest!(
    /// `wasi:cli` command over Spin's `wasi:keyvalue@0.2.0-draft2` (`guests/kv-spin/wit`):
    /// `get`, `set`, `list` (string cursors), `incr BUCKET KEY DELTA` (signed),
    /// `get-many`, `cas-incr BUCKET KEY TIMES` (compare-and-swap, retried with the fresh
    /// handle a failed swap returns; prints `value: N, retries: R`), and the hostile
    /// `cas-hoard BUCKET KEY N` (holds N compare-and-swap handles), `set-big BUCKET KEY
    /// BYTES`, `set-many-empty BUCKET N`, `key-of BUCKET BYTES`.
    KV_SPIN,
    "kv-spin"
);

guest!(
    /// `wasi:http/incoming-handler` importing the HTTP proxy world only (Rust,
    /// `wasip2`): `/` answers `hello from a wasi:http component`, `/echo` the request
    /// body, `/count` `count N` from a global (1 when every request has a fresh
    /// instance).
    HTTP_HELLO,
    "http-hello"
);

guest!(
    /// `wasi:http/incoming-handler` that also imports the rest of WASI through Rust's
    /// `std` (environment, wall clock, stderr): `/` answers `GREETING from std; env
    /// vars: N; clock ok: true`.
    HTTP_STD,
    "http-std"
);

guest!(
    /// `wasi:http/incoming-handler` making outgoing requests: `/fetch?url=URL` answers
    /// `status N` and the body, or `error CODE`; `&read=count` answers `read N bytes`
    /// (`, then error CODE`); `&connect_ms=N`, `&between_ms=N` set request options.
    HTTP_FETCH,
    "http-fetch"
);

guest!(
    /// `wasi:http/incoming-handler` that misbehaves by path: `/loop`, `/panic`,
    /// `/alloc`, `/stream` (an endless body), `/sleep` (an hour in the host),
    /// `/no-response`, `/error`; anything else `200 ok`.
    HTTP_HOSTILE,
    "http-hostile"
);

/// Every guest, sorted by name.
pub const GUESTS: &[Guest] = &[
    Guest {
        name: "actor-worker",
        about: "an airssys:actor actor driven by text commands (messaging, traps, spins)",
        wasm: ACTOR_WORKER,
    },
    Guest {
        name: "calc",
        about: "library component: add, greet, sum, fib, hoard, spin",
        wasm: CALC,
    },
    Guest {
        name: "cli-hello",
        about: "wasi:cli hello that prints its arguments",
        wasm: CLI_HELLO,
    },
    Guest {
        name: "config-spin",
        about: "library component reading wasi:config/store@0.2.0-draft-2024-09-27 (Spin's)",
        wasm: CONFIG_SPIN,
    },
    Guest {
        name: "config-tool",
        about: "library component reading wasi:config/store@0.2.0-rc.1 (Wasmtime's)",
        wasm: CONFIG_TOOL,
    },
    Guest {
        name: "cpu-suite",
        about: "wasi:cli CPU workloads (loop, fib, sha256, sort, json, regex), timed inside",
        wasm: CPU_SUITE,
    },
    Guest {
        name: "env-print",
        about: "wasi:cli environment printer",
        wasm: ENV_PRINT,
    },
    Guest {
        name: "fs-tool",
        about: "wasi:cli file reader, writer and lister",
        wasm: FS_TOOL,
    },
    Guest {
        name: "host-calls",
        about: "library component calling host interfaces test:host/{math,slow,faults,state}",
        wasm: HOST_CALLS,
    },
    Guest {
        name: "hostile",
        about: "wasi:cli allocation bomb, spin loop, runaway recursion, panic",
        wasm: HOSTILE,
    },
    Guest {
        name: "http-fetch",
        about: "wasi:http handler making outgoing requests (/fetch?url=URL)",
        wasm: HTTP_FETCH,
    },
    Guest {
        name: "http-hello",
        about: "wasi:http handler importing the proxy world only: /, /echo",
        wasm: HTTP_HELLO,
    },
    Guest {
        name: "http-hostile",
        about: "wasi:http handler: /loop, /panic, /alloc, /stream, /sleep, /no-response",
        wasm: HTTP_HOSTILE,
    },
    Guest {
        name: "http-std",
        about: "wasi:http handler using Rust std (imports the rest of WASI)",
        wasm: HTTP_STD,
    },
    Guest {
        name: "kv-spin",
        about: "wasi:cli command over wasi:keyvalue@0.2.0-draft2 (Spin's; compare-and-swap)",
        wasm: KV_SPIN,
    },
    Guest {
        name: "kv-tool",
        about: "wasi:cli command over wasi:keyvalue@0.2.0-draft (store, atomics, batch)",
        wasm: KV_TOOL,
    },
    Guest {
        name: "log-tool",
        about: "library component logging through wasi:logging",
        wasm: LOG_TOOL,
    },
    Guest {
        name: "p3-tool",
        about: "WASI 0.3 command and async exports: slow-double, never, spin",
        wasm: P3_TOOL,
    },
    Guest {
        name: "tcp-connect",
        about: "wasi:cli TCP client and name resolver",
        wasm: TCP_CONNECT,
    },
];

/// The digest of the guest sources the committed binaries were built from, as written
/// by `cargo xtask fixtures` into `guests/wasm/SOURCES`.
pub const SOURCES_DIGEST: &str = include_str!("../guests/wasm/SOURCES");

/// The guest called `name`, if there is one.
pub fn guest(name: &str) -> Option<&'static Guest> {
    GUESTS.iter().find(|g| g.name == name)
}

/// The guest workspace (`crates/wasm-testkit/guests`).
pub fn guests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("guests")
}

/// The JavaScript guests (`crates/wasm-testkit/js-guests`): sources under `<name>/`,
/// components built by componentize-js (`cargo xtask fixtures`) and committed under
/// `wasm/`, with the digest of their sources in `wasm/SOURCES`. They are files, not
/// constants like [`GUESTS`]: each holds a JavaScript engine (about 12 MiB), which
/// every test binary would otherwise carry.
pub fn js_guests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("js-guests")
}

/// The JavaScript `wasi:http/incoming-handler` (componentize-js, through the `fetch`
/// event; it imports the rest of WASI as a JavaScript engine does): `/` answers
/// `hello from javascript: METHOD PATH`, `/echo` the request body, `/fetch?url=U` an
/// outgoing GET of `U` (`status N` and the body, or `error …`), `/throw` throws (500),
/// `/loop` spins forever.
pub fn http_js() -> PathBuf {
    js_guests_dir().join("wasm/http-js.wasm")
}

/// The files [`http_js`] is built from, relative to [`js_guests_dir`], sorted.
///
/// # Errors
///
/// Any I/O error listing its WIT.
pub fn http_js_inputs() -> std::io::Result<Vec<String>> {
    js_inputs("http-js", "handler.js")
}

/// The files of the JavaScript guest in `dir` (its build script, its `source`, its WIT
/// world and dependencies), relative to [`js_guests_dir`], sorted.
fn js_inputs(dir: &str, source: &str) -> std::io::Result<Vec<String>> {
    let mut inputs = vec![
        format!("{dir}/build.mjs"),
        format!("{dir}/{source}"),
        format!("{dir}/wit/world.wit"),
    ];
    for entry in std::fs::read_dir(js_guests_dir().join(dir).join("wit/deps"))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        inputs.push(format!("{dir}/wit/deps/{name}"));
    }
    inputs.sort();
    Ok(inputs)
}

/// The JavaScript CPU suite, a `wasi:cli` command (componentize-js, HTTP switched off):
/// `js-loop` and `js-fib`, run and printed as [`CPU_SUITE`]'s workloads are
/// (`WORKLOAD RUNS <ns per run> <checksum>`), for the interpreter rows of `cargo xtask
/// cpu`.
pub fn cpu_js() -> PathBuf {
    js_guests_dir().join("wasm/cpu-js.wasm")
}

/// The JavaScript actor (componentize-js; world `airssys:actor/actor@0.1.0`): text
/// commands like `actor-worker`'s — `echo`, `self`, `count`, `get`, `send`, `ask`,
/// `last`, `throw` (see `js-guests/actor-js/actor.js`).
pub fn actor_js() -> PathBuf {
    js_guests_dir().join("wasm/actor-js.wasm")
}

/// The files [`actor_js`] is built from, relative to [`js_guests_dir`], sorted.
///
/// # Errors
///
/// Any I/O error listing its WIT.
pub fn actor_js_inputs() -> std::io::Result<Vec<String>> {
    js_inputs("actor-js", "actor.js")
}

/// The files [`cpu_js`] is built from, relative to [`js_guests_dir`], sorted.
///
/// # Errors
///
/// Any I/O error listing its WIT.
pub fn cpu_js_inputs() -> std::io::Result<Vec<String>> {
    js_inputs("cpu-js", "suite.js")
}

/// A digest of every source file of the guest workspace (`Cargo.toml`, `Cargo.lock`,
/// `*.rs`, `*.wit`, by relative path and content; FNV-1a, 64 bits), in the form kept in
/// `guests/wasm/SOURCES`.
///
/// # Errors
///
/// Any I/O error reading the sources.
pub fn sources_digest(dir: &Path) -> std::io::Result<String> {
    let mut files = Vec::new();
    collect_sources(dir, dir, &mut files)?;
    files.sort();
    // WIT the guests build against from outside their workspace (one copy in the tree).
    files.extend(OUTSIDE_SOURCES.iter().map(|s| (*s).to_owned()));
    files_digest(dir, &files)
}

/// Sources of the guests outside `guests/`, relative to it: the actor WIT, which
/// `actor-worker` builds against where `airssys-wasm-actor` keeps it.
const OUTSIDE_SOURCES: &[&str] = &["../../wasm-actor/wit/actor.wit"];

/// The digest of the files `files` (paths relative to `root`) by path and content,
/// line endings ignored (FNV-1a, 64 bits): `fnv1a64:<hex> files:<count>`.
///
/// # Errors
///
/// Any I/O error reading a file.
pub fn files_digest(root: &Path, files: &[String]) -> std::io::Result<String> {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for rel in files {
        feed(rel.as_bytes());
        feed(&[0]);
        let text = std::fs::read(root.join(rel))?;
        // Line endings do not change what is built.
        let text: Vec<u8> = text.into_iter().filter(|&b| b != b'\r').collect();
        feed(&text);
        feed(&[0]);
    }
    Ok(format!("fnv1a64:{hash:016x} files:{}\n", files.len()))
}

fn collect_sources(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if name != "wasm" && name != "target" && !name.starts_with('.') {
                collect_sources(root, &path, out)?;
            }
        } else if (name == "Cargo.toml"
            || name == "Cargo.lock"
            || path.extension().is_some_and(|x| x == "rs" || x == "wit"))
            && let Ok(rel) = path.strip_prefix(root)
        {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_javascript_handler_is_built_from_its_current_sources() {
        let stamp = std::fs::read_to_string(js_guests_dir().join("wasm/SOURCES")).unwrap();
        let digest = files_digest(&js_guests_dir(), &http_js_inputs().unwrap()).unwrap();
        assert!(
            stamp.starts_with(digest.trim_end()),
            "js-guests/http-js changed since http-js.wasm was built: run `cargo xtask \
             fixtures` (stamp {stamp}, sources {digest})"
        );
        let wasm = std::fs::read(http_js()).unwrap();
        assert_eq!(&wasm[..8], b"\0asm\x0d\x00\x01\x00");
    }

    #[test]
    fn the_javascript_cpu_suite_is_built_from_its_current_sources() {
        let stamp = std::fs::read_to_string(js_guests_dir().join("wasm/cpu-js.SOURCES")).unwrap();
        let digest = files_digest(&js_guests_dir(), &cpu_js_inputs().unwrap()).unwrap();
        assert!(
            stamp.starts_with(digest.trim_end()),
            "js-guests/cpu-js changed since cpu-js.wasm was built: run `cargo xtask \
             fixtures` (stamp {stamp}, sources {digest})"
        );
        let wasm = std::fs::read(cpu_js()).unwrap();
        assert_eq!(&wasm[..8], b"\0asm\x0d\x00\x01\x00");
    }

    #[test]
    fn every_guest_is_a_committed_component() {
        let on_disk: Vec<String> = std::fs::read_dir(guests_dir().join("wasm"))
            .unwrap()
            .filter_map(|e| {
                let p = e.unwrap().path();
                (p.extension()? == "wasm").then(|| p.file_stem()?.to_str().map(str::to_owned))?
            })
            .collect();
        assert_eq!(on_disk.len(), GUESTS.len(), "{on_disk:?}");
        for g in GUESTS {
            assert!(
                on_disk.iter().any(|n| n == g.name),
                "{} not in wasm/",
                g.name
            );
            assert!(
                guests_dir().join(g.name).join("Cargo.toml").is_file(),
                "{}",
                g.name
            );
            // A component (layer 1), not a core module.
            assert_eq!(&g.wasm[..8], b"\0asm\x0d\x00\x01\x00", "{}", g.name);
        }
        assert!(GUESTS.windows(2).all(|w| w[0].name < w[1].name));
        assert_eq!(guest("calc").map(|g| g.wasm), Some(CALC));
        assert!(guest("nope").is_none());
    }

    #[test]
    fn committed_guests_were_built_from_the_current_sources() {
        let now = sources_digest(&guests_dir()).unwrap();
        assert_eq!(
            now, SOURCES_DIGEST,
            "the guest sources changed since the committed .wasm files were built: \
             run `cargo xtask fixtures` and commit guests/wasm/"
        );
    }
}
