//! `cargo xtask compat`: the testkit's `wasi:keyvalue` and `wasi:config` guests under
//! `wasmtime run -S keyvalue` / `-S config` and under `airssys-wasm run` with the
//! equivalent manifest; fails when any prints differently.

use std::process::Command;

use anyhow::{Context as _, bail};

use crate::{WASMTIME_CLI, build_cli, install_tool, workspace_root};

/// Runs the testkit's `wasi:keyvalue` and `wasi:config` guests under `wasmtime run -S
/// keyvalue` / `-S config` and under `airssys-wasm run` with the equivalent manifest or
/// flags, and checks that each prints the same. Installs the Wasmtime CLI into
/// `target/tools` first (`cargo install`, once).
pub(crate) fn compat() -> anyhow::Result<()> {
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
