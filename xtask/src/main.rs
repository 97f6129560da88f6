//! Project automation, run as `cargo xtask <task>`:
//!
//! - `cargo xtask fixtures [--out DIR] [--no-guests]` builds the Rust guest components of
//!   the testkit for `wasm32-wasip2` (adding the target with rustup when missing) into
//!   `crates/wasm-testkit/guests/wasm/`, where they are committed, then writes every
//!   fixture and guest as a `.wasm` file (default `target/fixtures/`), for use with other
//!   tools (`wasm-tools`, `wasmtime`). It also builds the plugins of
//!   `examples/plugin-host` (Rust with `wit-bindgen`; JavaScript with componentize-js,
//!   which it installs from the npm registry) into `examples/plugin-host/plugins/`.
//!   The JavaScript guests of the testkit (`crates/wasm-testkit/js-guests/`) are built
//!   with componentize-js too, into `js-guests/wasm/`. `--no-guests` skips building
//!   guests and plugins.
//! - `cargo xtask bench` runs the criterion benchmarks and rewrites the results section
//!   of `BENCHMARKS.md` with the medians, the airssys/raw ratios and the machine.
//! - `cargo xtask soak` runs the soak test (`crates/wasm-loader/tests/soak.rs`):
//!   thousands of good and hostile runs, resident memory and file descriptors checked.
//! - `cargo xtask fuzz [--seconds N] [TARGET...]` runs every fuzz target (or those named)
//!   for N seconds each (default 60) with cargo-fuzz on the nightly toolchain, seeded with
//!   the testkit's fixtures and guests; it fails when a target finds a crash.
//! - `cargo xtask compat` runs the testkit's `wasi:keyvalue` and `wasi:config` guests
//!   under `wasmtime run -S keyvalue` / `-S config` (Wasmtime CLI 50.0.1, installed into
//!   `target/tools` with `cargo install`) and under `airssys-wasm run` with the
//!   equivalent manifest, and fails when any prints differently.
//! - `cargo xtask load [--seconds N]` drives `airssys-wasm serve` and `wasmtime serve`
//!   with the load generator `oha` (both tools installed into `target/tools` with `cargo
//!   install`): requests/s, p50/p99 and server CPU per request for the hello handler, and
//!   a mixed run with hostile requests; writes the figures into `BENCHMARKS.md` (see
//!   `load.rs`).

#![allow(clippy::print_stdout)] // a task runner reports on stdout

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

mod load;

const USAGE: &str = "usage: cargo xtask fixtures [--out DIR] [--no-guests] | cargo xtask bench \
                     | cargo xtask soak | cargo xtask fuzz [--seconds N] [TARGET...] \
                     | cargo xtask compat | cargo xtask load [--seconds N]";
const START: &str = "<!-- results:start (written by `cargo xtask bench`) -->";
const END: &str = "<!-- results:end -->";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("fixtures") => fixtures(&args[1..]),
        Some("bench") => bench(),
        Some("soak") => soak(),
        Some("fuzz") => fuzz(&args[1..]),
        Some("compat") => compat(),
        Some("load") => load::load(&args[1..]),
        _ => bail!(USAGE),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_owned)
}

fn fixtures(args: &[String]) -> anyhow::Result<()> {
    let mut out = workspace_root().join("target/fixtures");
    let mut guests = true;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--out" => match it.next() {
                Some(dir) => out = PathBuf::from(dir),
                None => bail!(USAGE),
            },
            "--no-guests" => guests = false,
            _ => bail!(USAGE),
        }
    }
    if guests {
        build_guests()?;
        build_js_guests()?;
        build_plugins()?;
    }
    let mut written = airssys_wasm_testkit::write_all(&out)
        .with_context(|| format!("writing fixtures to {}", out.display()))?;
    // The guests as just built (this binary's embedded copies may predate the build).
    let built = airssys_wasm_testkit::guests::guests_dir().join("wasm");
    for g in airssys_wasm_testkit::guests::GUESTS {
        let from = built.join(format!("{}.wasm", g.name));
        let to = out.join(format!("{}.wasm", g.name));
        std::fs::copy(&from, &to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        written.push(to);
    }
    for path in &written {
        println!("{}", path.display());
    }
    eprintln!("wrote {} fixtures to {}", written.len(), out.display());
    Ok(())
}

const GUEST_TARGET: &str = "wasm32-wasip2";

/// Builds the Rust guests under `crates/wasm-testkit/guests` for `wasm32-wasip2`
/// (adding the target with rustup when it is missing) and copies them to
/// `guests/wasm/`, with the digest of the sources they came from.
fn build_guests() -> anyhow::Result<()> {
    let dir = airssys_wasm_testkit::guests::guests_dir();
    let built = build_wasm_workspace(&dir)?;
    let wasm = dir.join("wasm");
    std::fs::create_dir_all(&wasm)?;
    for g in airssys_wasm_testkit::guests::GUESTS {
        // A binary keeps its crate's name; a library (cdylib) gets underscores.
        let mut from = built.join(format!("{}.wasm", g.name));
        if !from.exists() {
            from = built.join(format!("{}.wasm", g.name.replace('-', "_")));
        }
        let to = wasm.join(format!("{}.wasm", g.name));
        std::fs::copy(&from, &to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        eprintln!(
            "built {} ({} KiB)",
            to.display(),
            std::fs::metadata(&to)?.len() / 1024
        );
    }
    let digest = airssys_wasm_testkit::guests::sources_digest(&dir)
        .with_context(|| format!("hashing the sources under {}", dir.display()))?;
    std::fs::write(wasm.join("SOURCES"), digest)?;
    Ok(())
}

/// Builds the guest workspace at `dir` for `wasm32-wasip2` (adding the target with
/// rustup when it is missing); where the components are.
fn build_wasm_workspace(dir: &Path) -> anyhow::Result<PathBuf> {
    let root = workspace_root();
    let installed = Command::new("rustup")
        .current_dir(&root)
        .args(["target", "list", "--installed"])
        .output()
        .context("running rustup (needed to build the guests for wasm32-wasip2)")?;
    if !String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == GUEST_TARGET)
    {
        eprintln!("adding the {GUEST_TARGET} target with rustup");
        let status = Command::new("rustup")
            .current_dir(&root)
            .args(["target", "add", GUEST_TARGET])
            .status()
            .context("running rustup target add")?;
        if !status.success() {
            bail!("`rustup target add {GUEST_TARGET}` failed");
        }
    }
    let target_dir = root.join("target/guests");
    let status = cargo()
        .current_dir(dir)
        .args(["build", "--release", "--locked", "--target", GUEST_TARGET])
        .arg("--target-dir")
        .arg(&target_dir)
        // Only what the guest workspace says: no flags from the caller's environment.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .with_context(|| format!("building the guests in {}", dir.display()))?;
    if !status.success() {
        bail!(
            "building the guests in {} for {GUEST_TARGET} failed",
            dir.display()
        );
    }
    Ok(target_dir.join(GUEST_TARGET).join("release"))
}

/// The componentize-js release the JavaScript plugin is built with.
const COMPONENTIZE_JS: &str = "@bytecodealliance/componentize-js@0.23.0";

/// Builds the plugins of `examples/plugin-host`: the Rust ones (`plugins-src/`, a
/// guest workspace) and the JavaScript one (componentize-js, installed from the npm
/// registry into `target/componentize-js`), each to `plugins/<name>/plugin.wasm`.
fn build_plugins() -> anyhow::Result<()> {
    let root = workspace_root();
    let example = root.join("examples/plugin-host");
    let built = build_wasm_workspace(&example.join("plugins-src"))?;
    for (name, file) in [("rust-stats", "rust_stats.wasm"), ("greedy", "greedy.wasm")] {
        copy_component(&built.join(file), &example.join("plugins").join(name))?;
    }

    componentize_js(&Js {
        root: &example,
        inputs: &[
            "plugins-src/js-greeter/greeter.js",
            "plugins-src/js-greeter/build.mjs",
            "wit/plugins.wit",
        ],
        build: "plugins-src/js-greeter/build.mjs",
        source: "plugins-src/js-greeter/greeter.js",
        wit: "wit",
        world: "plugin",
        out: "plugins/js-greeter/plugin.wasm",
        stamp: "plugins/js-greeter/SOURCES",
    })
}

/// The JavaScript guests of the testkit (`crates/wasm-testkit/js-guests/`), built with
/// componentize-js into `js-guests/wasm/`: the HTTP handler `http-js`.
fn build_js_guests() -> anyhow::Result<()> {
    let root = airssys_wasm_testkit::guests::js_guests_dir();
    let inputs = airssys_wasm_testkit::guests::http_js_inputs()?;
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    componentize_js(&Js {
        root: &root,
        inputs: &inputs,
        build: "http-js/build.mjs",
        source: "http-js/handler.js",
        wit: "http-js/wit",
        world: "handler",
        out: "wasm/http-js.wasm",
        stamp: "wasm/SOURCES",
    })
}

/// One JavaScript component to build with componentize-js; paths relative to `root`.
struct Js<'a> {
    root: &'a Path,
    /// Every file the component is built from (digested into `stamp`).
    inputs: &'a [&'a str],
    /// The node script that calls componentize-js:
    /// `node BUILD <componentize.js> <source> <wit> <world> <out>`.
    build: &'a str,
    source: &'a str,
    wit: &'a str,
    world: &'a str,
    out: &'a str,
    stamp: &'a str,
}

/// Builds `js` with componentize-js (installed from the npm registry into
/// `target/componentize-js` when missing). componentize-js does not build reproducibly
/// (each build differs), so the component (about 12 MiB) is rebuilt only when what it is
/// built from changed: its inputs and the componentize-js release, digested into its
/// stamp file.
fn componentize_js(js: &Js<'_>) -> anyhow::Result<()> {
    let out = js.root.join(js.out);
    let stamp = js.root.join(js.stamp);
    let inputs: Vec<String> = js.inputs.iter().map(|s| (*s).to_owned()).collect();
    let digest = format!(
        "{} {COMPONENTIZE_JS}",
        airssys_wasm_testkit::guests::files_digest(js.root, &inputs)?.trim_end()
    );
    if out.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(digest.as_str()) {
        eprintln!("{} is up to date with its sources", out.display());
        return Ok(());
    }

    let tools = workspace_root().join("target/componentize-js");
    let package = tools.join("node_modules/@bytecodealliance/componentize-js");
    if !package.join("package.json").exists() {
        eprintln!("installing {COMPONENTIZE_JS} from the npm registry");
        std::fs::create_dir_all(&tools)?;
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&tools)
            .arg(COMPONENTIZE_JS)
            .status()
            .context(
                "running npm (Node.js 20 or later is needed to build the JavaScript guests)",
            )?;
        if !status.success() {
            bail!("`npm install {COMPONENTIZE_JS}` failed");
        }
    }
    let status = Command::new("node")
        .arg(js.root.join(js.build))
        .arg(package.join("src/componentize.js"))
        .arg(js.root.join(js.source))
        .arg(js.root.join(js.wit))
        .arg(js.world)
        .arg(&out)
        .status()
        .context("running node")?;
    if !status.success() {
        bail!(
            "componentizing {} failed",
            js.root.join(js.source).display()
        );
    }
    std::fs::write(&stamp, digest)?;
    Ok(())
}

fn copy_component(from: &Path, to_dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to_dir)?;
    let to = to_dir.join("plugin.wasm");
    std::fs::copy(from, &to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    eprintln!(
        "built {} ({} KiB)",
        to.display(),
        std::fs::metadata(&to)?.len() / 1024
    );
    Ok(())
}

fn bench() -> anyhow::Result<()> {
    let root = workspace_root();
    let started = std::time::SystemTime::now();
    let status = cargo()
        .current_dir(&root)
        .args(["bench", "--locked", "-p", "airssys-wasm-benches"])
        .status()
        .context("running cargo bench")?;
    if !status.success() {
        bail!("cargo bench failed");
    }
    let results = read_medians(&root.join("target/criterion"), started)?;
    let table = render(&results);
    let path = root.join("BENCHMARKS.md");
    let doc =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let (Some(a), Some(b)) = (doc.find(START), doc.find(END)) else {
        bail!("{} has no results markers", path.display());
    };
    let updated = format!("{}{START}\n{table}{}", &doc[..a], &doc[b..]);
    std::fs::write(&path, updated)?;
    println!("{table}");
    eprintln!("updated {}", path.display());
    Ok(())
}

/// group -> variant -> median in nanoseconds, from criterion's `new/estimates.json`
/// files written since `since` (older ones are from benchmarks that no longer exist).
fn read_medians(
    dir: &Path,
    since: std::time::SystemTime,
) -> anyhow::Result<BTreeMap<String, BTreeMap<String, f64>>> {
    let mut out: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.ends_with("new/estimates.json")
                && std::fs::metadata(&p)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t >= since)
            {
                let bench = std::fs::read_to_string(p.with_file_name("benchmark.json"))?;
                let bench: serde_json::Value = serde_json::from_str(&bench)?;
                let est: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p)?)?;
                let group = bench["group_id"].as_str().unwrap_or("?").to_owned();
                let func = bench["function_id"].as_str().unwrap_or("?").to_owned();
                let median = est["median"]["point_estimate"].as_f64().unwrap_or(f64::NAN);
                out.entry(group).or_default().insert(func, median);
            }
        }
    }
    Ok(out)
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.3} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn render(results: &BTreeMap<String, BTreeMap<String, f64>>) -> String {
    let machine = machine();
    let mut s = format!(
        "\nMachine: {machine}. Date: {}. Medians of criterion's samples.\n\n\
         | group | airssys | raw Wasmtime | ratio (airssys / raw) | other variants |\n\
         |---|---|---|---|---|\n",
        today()
    );
    for (group, variants) in results {
        let a = variants.get("airssys").copied();
        let r = variants.get("raw_wasmtime").copied();
        let ratio = match (a, r) {
            (Some(a), Some(r)) if r > 0.0 => format!("{:.2}", a / r),
            _ => "—".into(),
        };
        let others: Vec<String> = variants
            .iter()
            .filter(|(name, _)| *name != "airssys" && *name != "raw_wasmtime")
            .map(|(name, ns)| format!("{name}: {}", fmt_ns(*ns)))
            .collect();
        s.push_str(&format!(
            "| `{group}` | {} | {} | {ratio} | {} |\n",
            a.map_or("—".into(), fmt_ns),
            r.map_or("—".into(), fmt_ns),
            others.join(", ")
        ));
    }
    s
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    format!("{cpu}, {cores} cores, {}", std::env::consts::OS)
}

fn today() -> String {
    Command::new("date")
        .arg("+%Y-%m-%d")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(|| "unknown".into(), |d| d.trim().to_owned())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// The Wasmtime CLI the compatibility check and the load comparison run against.
const WASMTIME_CLI: &str = "wasmtime-cli@50.0.1";

/// Installs `krate` (`name@version`) with `cargo install --locked` into `target/tools`
/// unless its binary `bin` is there already; the binary's path.
fn install_tool(krate: &str, bin: &str, extra: &[&str]) -> anyhow::Result<PathBuf> {
    let tools = workspace_root().join("target/tools");
    let path = tools.join("bin").join(bin);
    if !path.is_file() {
        eprintln!(
            "installing {krate} into {} with cargo install",
            tools.display()
        );
        let status = cargo()
            .args(["install", "--locked", "--root"])
            .arg(&tools)
            .args(extra)
            .arg(krate)
            .status()
            .with_context(|| format!("installing {krate}"))?;
        if !status.success() {
            bail!("cargo install {krate} failed");
        }
    }
    Ok(path)
}

/// Builds the `airssys-wasm` binary (release profile, as the tests and benchmarks).
fn build_cli() -> anyhow::Result<PathBuf> {
    let root = workspace_root();
    let status = cargo()
        .current_dir(&root)
        .args(["build", "--release", "--locked", "-p", "airssys-wasm-cli"])
        .status()
        .context("building airssys-wasm")?;
    if !status.success() {
        bail!("building airssys-wasm failed");
    }
    Ok(root.join("target/release/airssys-wasm"))
}

/// Runs the testkit's `wasi:keyvalue` and `wasi:config` guests under `wasmtime run -S
/// keyvalue` / `-S config` and under `airssys-wasm run` with the equivalent manifest or
/// flags, and checks that each prints the same. Installs the Wasmtime CLI into
/// `target/tools` first (`cargo install`, once).
fn compat() -> anyhow::Result<()> {
    let root = workspace_root();
    let wasmtime = install_tool(WASMTIME_CLI, "wasmtime", &[])?;
    let airssys = build_cli()?;
    let guests = root.join("crates/wasm-testkit/guests/wasm");
    let work = tempfile::tempdir()?;
    let kv = work.path().join("kv");
    std::fs::create_dir_all(&kv)?;
    std::fs::copy(guests.join("kv-tool.wasm"), kv.join("kv-tool.wasm"))?;
    std::fs::write(
        kv.join("Component.toml"),
        "[component]\nname = \"kv-tool\"\npath = \"kv-tool.wasm\"\n\
         [limits]\nmemory = \"16MiB\"\nfuel = 1_000_000_000\ntimeout = \"10s\"\n\
         [capabilities.keyvalue]\nbuckets = [\"default\"]\nmax_bytes = \"1MiB\"\n",
    )?;
    let config_tool = guests.join("config-tool.wasm");
    let mut failures = 0;
    // Each run starts from an empty store on both sides (Wasmtime's keeps nothing).
    let kv_runs: [&[&str]; 5] = [
        &["get", "", "absent"],
        &["set", "", "k", "v"],
        &["incr", "", "n", "2", "5"],
        &["set-many", "", "a=1", "b=2"],
        &["exists", "", "k"],
    ];
    for (i, args) in kv_runs.iter().enumerate() {
        let ours = output(
            Command::new(&airssys)
                .arg("run")
                .arg(&kv)
                .arg("--data-dir")
                .arg(work.path().join(format!("data{i}")))
                .arg("--")
                .args(*args),
        )?;
        let theirs = output(
            Command::new(&wasmtime)
                .args(["run", "-S", "keyvalue"])
                .arg(kv.join("kv-tool.wasm"))
                .args(*args),
        )?;
        failures += compare(&format!("kv-tool {}", args.join(" ")), &ours, &theirs);
    }
    for call in ["get(\"greeting\")", "get(\"absent\")", "all()"] {
        let ours = output(
            Command::new(&airssys)
                .arg("run")
                .arg(&config_tool)
                .args([
                    "--memory",
                    "16MiB",
                    "--fuel",
                    "100000000",
                    "--timeout",
                    "5s",
                ])
                .args(["--config", "greeting=hello", "--invoke", call]),
        )?;
        let theirs = output(
            Command::new(&wasmtime)
                .args(["run", "-S", "config", "-S", "config-var=greeting=hello"])
                .args(["--invoke", call])
                .arg(&config_tool),
        )?;
        failures += compare(&format!("config-tool {call}"), &ours, &theirs);
    }
    if failures > 0 {
        bail!("{failures} run(s) differ between airssys-wasm and wasmtime");
    }
    println!("every run printed the same under airssys-wasm and {WASMTIME_CLI}");
    Ok(())
}

/// What a command printed on stdout, and whether it succeeded.
fn output(c: &mut Command) -> anyhow::Result<(bool, String)> {
    let o = c.output().with_context(|| format!("running {c:?}"))?;
    Ok((
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    ))
}

fn compare(what: &str, ours: &(bool, String), theirs: &(bool, String)) -> usize {
    if ours == theirs {
        println!("same   {what}: {}", ours.1.trim_end().replace('\n', " | "));
        0
    } else {
        println!("DIFFER {what}: airssys-wasm {ours:?}, wasmtime {theirs:?}");
        1
    }
}

fn soak() -> anyhow::Result<()> {
    let status = cargo()
        .current_dir(workspace_root())
        .args([
            "test",
            "--release",
            "--locked",
            "-p",
            "airssys-wasm-loader",
            "--test",
            "soak",
            "--",
            "--ignored",
            "--nocapture",
        ])
        .status()
        .context("running the soak test")?;
    if !status.success() {
        bail!("the soak test failed");
    }
    Ok(())
}

const FUZZ_TARGETS: &[&str] = &[
    "loader_bytes",
    "manifest_text",
    "invoke_wave",
    "instantiate_call",
];

fn fuzz(args: &[String]) -> anyhow::Result<()> {
    let mut seconds: u64 = 60;
    let mut targets: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .context("--seconds needs a number")?;
            }
            t if FUZZ_TARGETS.contains(&t) => targets.push(t.to_owned()),
            other => bail!("unknown fuzz target or flag `{other}`; targets: {FUZZ_TARGETS:?}"),
        }
    }
    if targets.is_empty() {
        targets = FUZZ_TARGETS.iter().map(|t| (*t).to_owned()).collect();
    }
    let root = workspace_root();
    let fuzz_dir = root.join("fuzz");
    for target in &targets {
        let corpus = root.join("target/fuzz-corpus").join(target);
        seed(target, &corpus)?;
        eprintln!("fuzzing {target} for {seconds} s");
        // `cargo +nightly`: rustup's proxy picks the toolchain, not this process's cargo.
        let status = Command::new("cargo")
            .current_dir(&fuzz_dir)
            .env_remove("RUSTUP_TOOLCHAIN")
            .env_remove("CARGO")
            .args(["+nightly", "fuzz", "run", "-O", target])
            .arg(&corpus)
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .args(["-timeout=20", "-rss_limit_mb=4096", "-print_final_stats=1"])
            .status()
            .context("running cargo fuzz (install it with `cargo install cargo-fuzz`)")?;
        if !status.success() {
            bail!("fuzz target {target} failed: see fuzz/artifacts/{target}/");
        }
    }
    Ok(())
}

/// Seeds a target's corpus with inputs worth mutating.
fn seed(target: &str, corpus: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(corpus)?;
    match target {
        "loader_bytes" | "instantiate_call" => {
            airssys_wasm_testkit::write_all(corpus)?;
            for g in airssys_wasm_testkit::guests::GUESTS {
                std::fs::write(corpus.join(format!("{}.wasm", g.name)), g.wasm)?;
            }
        }
        "manifest_text" => {
            let examples = workspace_root().join("examples");
            for entry in std::fs::read_dir(&examples)? {
                let manifest = entry?.path().join("Component.toml");
                if let (Ok(text), Some(name)) = (
                    std::fs::read(&manifest),
                    manifest.parent().and_then(Path::file_name),
                ) {
                    std::fs::write(corpus.join(name), text)?;
                }
            }
        }
        "invoke_wave" => {
            for (i, call) in [
                "pick(true, 1, 2)",
                "scale(1.5, 2.0)",
                "maybe(some(3))",
                "maybe(none)",
            ]
            .iter()
            .enumerate()
            {
                std::fs::write(corpus.join(format!("seed-{i}")), call)?;
            }
        }
        _ => {}
    }
    Ok(())
}
