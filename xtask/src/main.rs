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
//!   `load/`).
//! - `cargo xtask cpu [--runs N] [--rounds K]` runs the CPU suite natively and as a
//!   component under raw Wasmtime (unmetered, epochs, fuel, both) and airssys-wasm, and
//!   writes the table into `BENCHMARKS.md` (see `cpu.rs`).
//! - `cargo xtask density [N]` holds N live instances (default 100,000)
//!   on raw Wasmtime's defaults, `WasmEngine::new()` and the dense layout, and writes
//!   where each stops, resident memory, address space, mappings and time per instance
//!   into `BENCHMARKS.md` (see `density.rs`).

#![allow(clippy::print_stdout)] // a task runner reports on stdout

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

mod bench;
mod compat;
mod cpu;
mod density;
mod fixtures;
mod fuzz;
mod load;
mod proc;

const USAGE: &str = "usage: cargo xtask fixtures [--out DIR] [--no-guests] | cargo xtask bench \
                     | cargo xtask soak | cargo xtask fuzz [--seconds N] [TARGET...] \
                     | cargo xtask compat | cargo xtask load [--seconds N] \
                     | cargo xtask cpu [--runs N] [--rounds K] \
                     | cargo xtask density [N]";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("fixtures") => fixtures::fixtures(&args[1..]),
        Some("bench") => bench::bench(),
        Some("soak") => soak(),
        Some("fuzz") => fuzz::fuzz(&args[1..]),
        Some("compat") => compat::compat(),
        Some("load") => load::load(&args[1..]),
        Some("cpu") => cpu::cpu(&args[1..]),
        Some("density") => density::density(&args[1..]),
        _ => bail!(USAGE),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_owned)
}

/// Builds the benches' example `name` (release, locked) and returns its path.
fn build_example(name: &str) -> anyhow::Result<PathBuf> {
    let root = workspace_root();
    let status = cargo()
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "airssys-wasm-benches",
            "--example",
            name,
        ])
        .status()
        .with_context(|| format!("building the {name} example"))?;
    if !status.success() {
        bail!("building the {name} example failed");
    }
    Ok(root.join("target/release/examples").join(name))
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
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
