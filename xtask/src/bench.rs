//! `cargo xtask bench`: the criterion benchmarks run, and the results section of
//! `BENCHMARKS.md` rewritten with the medians, the airssys/raw ratios and the machine.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, bail};

use crate::{cargo, machine, today, workspace_root};

const START: &str = "<!-- results:start (written by `cargo xtask bench`) -->";
const END: &str = "<!-- results:end -->";

pub(crate) fn bench() -> anyhow::Result<()> {
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
