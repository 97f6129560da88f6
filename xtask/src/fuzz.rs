//! `cargo xtask fuzz [--seconds N] [TARGET...]`: every fuzz target (or those named)
//! for N seconds with cargo-fuzz on the nightly toolchain, seeded with the testkit's
//! fixtures and guests.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::workspace_root;

const FUZZ_TARGETS: &[&str] = &[
    "loader_bytes",
    "manifest_text",
    "invoke_wave",
    "instantiate_call",
];

pub(crate) fn fuzz(args: &[String]) -> anyhow::Result<()> {
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
