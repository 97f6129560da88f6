//! `cargo xtask cpu [--runs N] [--rounds K] [--instructions]`: the CPU suite (the
//! testkit's `cpu-suite`, one Rust source; and two JavaScript workloads, `js-loop` and
//! `js-fib`, the testkit's `cpu-js` on componentize-js's interpreter) built natively
//! and run beside its committed component under raw Wasmtime unmetered, with epochs only, with fuel only, with both,
//! and under airssys-wasm in each of its interruption modes
//! (`benches/examples/cpu_suite.rs`). Each cell is the best of K processes, each timing
//! N runs of the workload inside the program (so neither process start nor compilation
//! is in it). Prints the table with the ratios to unmetered Wasmtime and to native, and
//! writes it into `BENCHMARKS.md` between the `cpu` markers. Two more columns run the
//! component as a user would: `wasmtime run` (the Wasmtime CLI, its defaults:
//! unmetered) and `airssys-wasm run` (its default engine, with limits), both with a
//! warm compiled-artifact cache; the guest's own timing is read as before.
//!
//! With `--instructions`, also the instructions per run of the Rust workloads, counted
//! by callgrind (the difference between 3 runs and 1, halved: so start-up is not in
//! it), which hold still on a noisy machine; written between the `cpu-instructions` markers. Each mode's
//! component is compiled once under valgrind (whose CPU lacks some of the host's
//! features, so code compiled outside it would not load) and kept in
//! `target/cpu-suite-valgrind/`; for the times, in `target/cpu-suite-cache/`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::{WASMTIME_CLI, build_cli, cargo, install_tool, machine, today, workspace_root};

const WORKLOADS: [&str; 8] = [
    "loop", "fib", "sha256", "sort", "json", "regex", "js-loop", "js-fib",
];

/// Whether `workload` is the JavaScript suite's (no native build: its checksums are
/// compared with unmetered Wasmtime's instead).
fn is_js(workload: &str) -> bool {
    workload.starts_with("js-")
}
const MODES: [(&str, &str); 8] = [
    ("raw", "Wasmtime, unmetered"),
    ("raw-bounds-checked", "unmetered, bounds checks"),
    ("raw-epochs", "epochs only"),
    ("raw-fuel", "fuel only"),
    ("raw-fuel-epochs", "fuel and epochs"),
    ("airssys", "airssys-wasm (fuel yields, default)"),
    ("airssys-epochs", "airssys-wasm, epochs"),
    ("airssys-dense", "airssys-wasm, dense layout"),
];
const START: &str = "<!-- cpu:start (written by `cargo xtask cpu`) -->";
const END: &str = "<!-- cpu:end -->";
const INSTRUCTIONS_START: &str =
    "<!-- cpu-instructions:start (written by `cargo xtask cpu --instructions`) -->";
const INSTRUCTIONS_END: &str = "<!-- cpu-instructions:end -->";

pub(crate) fn cpu(args: &[String]) -> anyhow::Result<()> {
    let mut runs = 10u32;
    let mut rounds = 3u32;
    let mut instructions = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => runs = it.next().context("--runs N")?.parse()?,
            "--rounds" => rounds = it.next().context("--rounds K")?.parse()?,
            "--instructions" => instructions = true,
            other => bail!(
                "unknown argument `{other}`: cargo xtask cpu [--runs N] [--rounds K] \
                 [--instructions]"
            ),
        }
    }
    let native = build_native()?;
    let example = crate::build_example("cpu_suite")?;
    let cli = build_cli()?;
    let wasmtime = install_tool(WASMTIME_CLI, "wasmtime", &[])?;
    let wasm = airssys_wasm_testkit::guests::guests_dir().join("wasm/cpu-suite.wasm");
    let xdg = workspace_root().join("target/cpu-suite-xdg");
    if instructions {
        let table = count_instructions(&native, &example)?;
        let report = render_instructions(&table);
        println!("{report}");
        write_report(&report, INSTRUCTIONS_START, INSTRUCTIONS_END)?;
    }
    // Compiled once per mode and kept (not timed either way).
    let cache = workspace_root().join("target/cpu-suite-cache");
    let mut table = Table::new();
    for workload in WORKLOADS {
        let mut row = Vec::new();
        let mut checksum = None;
        if !is_js(workload) {
            let best = best_of(rounds, || run(Command::new(&native), workload, runs))?;
            eprintln!("{workload:>7} native {:>12.0} ns", best.0);
            row.push(("native".to_owned(), best.0));
            checksum = Some(best.1);
        }
        let wasm = if is_js(workload) {
            airssys_wasm_testkit::guests::cpu_js()
        } else {
            wasm.clone()
        };
        // One cell: the best of `rounds`, its checksum the same as every other cell's.
        let mut cell = |column: &str, rounds: u32, command: &dyn Fn() -> Command| {
            let (ns, sum) = best_of(rounds, || run(command(), workload, runs))?;
            let expected = checksum.get_or_insert_with(|| sum.clone());
            if sum != *expected {
                bail!("{workload} under {column} computed {sum}, elsewhere {expected}");
            }
            eprintln!("{workload:>7} {column:>16} {ns:>12.0} ns");
            row.push((column.to_owned(), ns));
            Ok(())
        };
        for (mode, _) in MODES {
            cell(mode, rounds, &|| {
                let mut c = Command::new(&example);
                c.arg(mode).env("CPU_SUITE_CACHE", &cache);
                c
            })?;
        }
        // As a user runs it: each CLI with its compiled-artifact cache warm (the first
        // round fills it; only the best round counts).
        cell("wasmtime-run", rounds + 1, &|| {
            let mut c = Command::new(&wasmtime);
            c.args(["run", "-C", "cache=y"])
                .arg(&wasm)
                .env("XDG_CACHE_HOME", &xdg);
            c
        })?;
        cell("airssys-run", rounds + 1, &|| {
            let mut c = Command::new(&cli);
            c.arg("run")
                .arg(&wasm)
                .args(["--memory", "256MiB", "--fuel", "100000000000000"])
                .args(["--timeout", "600s", "--cache-dir"])
                .arg(xdg.join("airssys-wasm"))
                .arg("--");
            c
        })?;
        table.insert(workload, row);
    }
    let report = render(&table, runs, rounds);
    println!("{report}");
    write_report(&report, START, END)
}

/// Instructions per run of each workload natively and in each mode, by callgrind.
fn count_instructions(native: &Path, example: &Path) -> anyhow::Result<Table> {
    let cache = workspace_root().join("target/cpu-suite-valgrind");
    for (mode, _) in MODES {
        // Compiles the mode's component into the cache, unless it is there already.
        eprintln!("the suite for {mode}, compiled under valgrind");
        let mut c = Command::new("valgrind");
        c.args(["--tool=none", "-q"]).arg(example).arg(mode);
        c.env("CPU_SUITE_CACHE", &cache);
        run(c, "fib", 0)?;
    }
    let mut table = Table::new();
    // Not the JavaScript rows: compiling their 12 MiB engine under valgrind takes
    // minutes per mode.
    for workload in WORKLOADS.into_iter().filter(|w| !is_js(w)) {
        let mut row = Vec::new();
        let per_run = |program: &Path, mode: Option<&str>| -> anyhow::Result<f64> {
            let count = |runs: u32| -> anyhow::Result<u64> {
                let mut c = Command::new("valgrind");
                c.args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
                    .arg(program)
                    .args(mode)
                    .args([workload, &runs.to_string()])
                    .env("CPU_SUITE_CACHE", &cache);
                let out = c.output().context("running valgrind")?;
                if !out.status.success() {
                    bail!(
                        "{workload} under callgrind failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                let err = String::from_utf8_lossy(&out.stderr);
                err.lines()
                    .find_map(|l| l.split("Collected : ").nth(1))
                    .context("callgrind printed no total")?
                    .trim()
                    .parse()
                    .context("callgrind's total")
            };
            let (one, three) = (count(1)?, count(3)?);
            #[allow(clippy::cast_precision_loss)] // instruction counts well below 2^52
            Ok(three.saturating_sub(one) as f64 / 2.0)
        };
        if !is_js(workload) {
            let n = per_run(native, None)?;
            eprintln!("{workload:>7} native {n:>14.0} instructions");
            row.push(("native".to_owned(), n));
        }
        for (mode, _) in MODES {
            let n = per_run(example, Some(mode))?;
            eprintln!("{workload:>7} {mode:>15} {n:>14.0} instructions");
            row.push((mode.to_owned(), n));
        }
        table.insert(workload, row);
    }
    Ok(table)
}

fn render_instructions(table: &Table) -> String {
    let mut out = format!(
        "Instructions per run (`cargo xtask cpu --instructions`, callgrind), {}: in \
         parentheses the ratio to unmetered Wasmtime, and for unmetered Wasmtime the ratio \
         to native. The same counts on every run of the same binaries.\n\n",
        today()
    );
    rows(&mut out, table, millions, false);
    out
}

fn millions(n: f64) -> String {
    if n.is_nan() {
        return "—".into();
    }
    format!("{:.1} M", n / 1e6)
}

/// A ratio, or a dash where one side has no figure (the JavaScript rows' native).
fn ratio(r: f64) -> String {
    if r.is_nan() {
        "—".into()
    } else {
        format!("{r:.2}")
    }
}

/// The best (lowest) time of `rounds` runs, with the checksum they printed.
fn best_of(
    rounds: u32,
    mut f: impl FnMut() -> anyhow::Result<(f64, String)>,
) -> anyhow::Result<(f64, String)> {
    let mut best: Option<(f64, String)> = None;
    for _ in 0..rounds.max(1) {
        let (ns, sum) = f()?;
        if best.as_ref().is_none_or(|(b, _)| ns < *b) {
            best = Some((ns, sum));
        }
    }
    best.context("no round ran")
}

/// Runs `command WORKLOAD RUNS` and reads `WORKLOAD RUNS <ns> <checksum>` from it.
fn run(mut command: Command, workload: &str, runs: u32) -> anyhow::Result<(f64, String)> {
    let out = command
        .args([workload, &runs.to_string()])
        .output()
        .context("running the CPU suite")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "{workload} failed ({}): {text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let line = text.lines().last().unwrap_or_default();
    let fields: Vec<&str> = line.split_whitespace().collect();
    match fields.as_slice() {
        [w, _, ns, sum] if *w == workload => Ok((ns.parse()?, (*sum).to_owned())),
        _ => bail!("unexpected output of {workload}: {line}"),
    }
}

/// The suite built for this machine, from the same source and profile as its
/// component.
fn build_native() -> anyhow::Result<PathBuf> {
    let dir = airssys_wasm_testkit::guests::guests_dir();
    let target_dir = workspace_root().join("target/guests-native");
    let status = cargo()
        .current_dir(&dir)
        .args(["build", "--release", "--locked", "-p", "cpu-suite"])
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .context("building the CPU suite natively")?;
    if !status.success() {
        bail!("building the CPU suite natively failed");
    }
    Ok(target_dir.join("release/cpu-suite"))
}

/// `benches/examples/cpu_suite.rs`, in the workspace's one release profile.
fn render(table: &Table, runs: u32, rounds: u32) -> String {
    let mut out = format!(
        "CPU suite (`cargo xtask cpu`), {}, {}: time per run of each workload, the best \
         of {rounds} processes of {runs} runs; in parentheses the ratio to unmetered \
         Wasmtime, for unmetered Wasmtime the ratio to native, and for `airssys-wasm \
         run` the ratio to `wasmtime run`.\n\n",
        today(),
        machine()
    );
    rows(&mut out, table, fmt, true);
    out
}

/// What was measured: per workload, (column, figure) pairs.
type Table = BTreeMap<&'static str, Vec<(String, f64)>>;

/// The table's header and rows, each figure shown by `show` with its ratio; with `clis`,
/// the two CLI columns too.
fn rows(out: &mut String, table: &Table, show: fn(f64) -> String, clis: bool) {
    let _ = write!(out, "| workload | native |");
    for (_, name) in MODES {
        let _ = write!(out, " {name} |");
    }
    let extra = if clis {
        let _ = write!(out, " `wasmtime run` | `airssys-wasm run` |");
        2
    } else {
        0
    };
    let _ = writeln!(out);
    let _ = writeln!(out, "|---|---:|{}", "---:|".repeat(MODES.len() + extra));
    for workload in WORKLOADS {
        let Some(row) = table.get(workload) else {
            continue;
        };
        let at = |m: &str| {
            row.iter()
                .find(|(n, _)| n == m)
                .map_or(f64::NAN, |(_, v)| *v)
        };
        let (native, raw) = (at("native"), at("raw"));
        let _ = write!(out, "| {workload} | {} |", show(native));
        for (mode, _) in MODES {
            let v = at(mode);
            let r = if mode == "raw" { v / native } else { v / raw };
            let _ = write!(out, " {} ({}) |", show(v), ratio(r));
        }
        if clis {
            let (wasmtime, ours) = (at("wasmtime-run"), at("airssys-run"));
            let _ = write!(
                out,
                " {} | {} ({}) |",
                show(wasmtime),
                show(ours),
                ratio(ours / wasmtime)
            );
        }
        let _ = writeln!(out);
    }
}

fn fmt(ns: f64) -> String {
    if ns.is_nan() {
        "—".into()
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.1} µs", ns / 1e3)
    }
}

pub(crate) fn write_report(report: &str, start: &str, end: &str) -> anyhow::Result<()> {
    let path: &Path = &workspace_root().join("BENCHMARKS.md");
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let (Some(a), Some(b)) = (text.find(start), text.find(end)) else {
        bail!("BENCHMARKS.md has no markers {start} … {end}");
    };
    let updated = format!("{}{start}\n{report}{}", &text[..a], &text[b..]);
    std::fs::write(path, updated).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_show_each_figure_with_its_ratio_and_dashes_where_there_is_none() {
        let mut table = Table::new();
        let mut loop_row = vec![("native".to_owned(), 1e6), ("raw".to_owned(), 2e6)];
        loop_row.extend(MODES.iter().skip(1).map(|(m, _)| ((*m).to_owned(), 3e6)));
        loop_row.push(("wasmtime-run".to_owned(), 2e6));
        loop_row.push(("airssys-run".to_owned(), 4e6));
        table.insert("loop", loop_row);
        table.insert("js-fib", vec![("raw".to_owned(), 5e6)]);
        let mut out = String::new();
        rows(&mut out, &table, fmt, true);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        assert!(lines[0].ends_with("| `wasmtime run` | `airssys-wasm run` |"));
        assert_eq!(lines[1].matches("---:").count(), MODES.len() + 3);
        assert!(
            lines[2].starts_with("| loop | 1.00 ms | 2.00 ms (2.00) | 3.00 ms (1.50) |"),
            "{}",
            lines[2]
        );
        assert!(
            lines[2].ends_with("| 2.00 ms | 4.00 ms (2.00) |"),
            "{}",
            lines[2]
        );
        assert!(
            lines[3].starts_with("| js-fib | — | 5.00 ms (—) | — (—) |"),
            "{}",
            lines[3]
        );
    }
}
