//! `cargo xtask density [N] [--instructions]`: the density example
//! (`benches/examples/density.rs`) in each mode — raw Wasmtime's defaults,
//! `WasmEngine::new()`, the dense layout — each in a process of its own holding up to
//! N live instances of the testkit's `calc` component; the table of where each stopped,
//! resident memory, address space, mappings, time and CPU per instance goes into
//! BENCHMARKS.md. With `--instructions`, the instructions one instance costs (made,
//! called twice, dropped) by `valgrind --tool=callgrind` at two sizes, the difference
//! divided: free of the wall clock's noise, not of the kernel's work (page faults and
//! system calls are not counted).

use std::collections::BTreeMap;
use std::process::Command;

use anyhow::{Context as _, bail};

const START: &str = "<!-- density:start (written by `cargo xtask density`) -->";
const END: &str = "<!-- density:end -->";

/// The example's modes, with their column names.
const MODES: &[(&str, &str)] = &[
    ("raw", "raw Wasmtime, default config"),
    ("airssys", "airssys-wasm, default layout"),
    ("airssys-dense", "airssys-wasm, dense layout"),
];

pub(crate) fn density(args: &[String]) -> anyhow::Result<()> {
    let mut n = 100_000usize;
    let mut instructions = false;
    for a in args {
        match a.as_str() {
            "--instructions" => instructions = true,
            other => {
                n = other.parse().with_context(|| {
                    format!("`{other}`: cargo xtask density [N] [--instructions]")
                })?;
            }
        }
    }
    let example = crate::build_example("density")?;
    let mut rows = Vec::new();
    for (mode, name) in MODES {
        let out = Command::new(&example)
            .args([n.to_string(), (*mode).to_owned()])
            .output()
            .with_context(|| format!("running {}", example.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let Some(line) = stdout.lines().find(|l| l.starts_with("mode=")) else {
            bail!(
                "{mode} printed no result ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        };
        eprintln!("{line}");
        let mut fields = parse(line);
        if instructions {
            let per = instructions_per_instance(&example, mode)?;
            fields.insert("instructions".into(), per.to_string());
        }
        rows.push((*name, fields));
    }
    let report = render(n, &rows);
    println!("{report}");
    crate::cpu::write_report(&report, START, END)
}

/// `key=value` pairs; a value in double quotes may hold spaces.
fn parse(line: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = line;
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().to_owned();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            quoted.split_once('"').unwrap_or((quoted, ""))
        } else {
            after.split_once(' ').unwrap_or((after, ""))
        };
        out.insert(key, value.to_owned());
        rest = next;
    }
    out
}

/// Instructions per instance: callgrind's totals at two sizes, differenced.
fn instructions_per_instance(example: &std::path::Path, mode: &str) -> anyhow::Result<u64> {
    // Small: under valgrind the default layout cannot reserve more than ~30 memories
    // of 4 GiB.
    const SIZES: (u64, u64) = (10, 25);
    let total = |n: u64| -> anyhow::Result<u64> {
        let out = Command::new("valgrind")
            .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
            .arg(example)
            .args([n.to_string(), mode.to_owned()])
            .output()
            .context("running valgrind (apt-get install valgrind)")?;
        let err = String::from_utf8_lossy(&out.stderr);
        let refs = err
            .lines()
            .find_map(|l| {
                l.split_once("refs:")
                    .map(|(_, v)| v.trim().replace(',', ""))
            })
            .with_context(|| format!("no instruction count from callgrind: {err}"))?;
        Ok(refs.parse()?)
    };
    let (a, b) = (total(SIZES.0)?, total(SIZES.1)?);
    Ok(b.saturating_sub(a) / (SIZES.1 - SIZES.0))
}

fn render(n: usize, rows: &[(&str, BTreeMap<String, String>)]) -> String {
    let get =
        |f: &BTreeMap<String, String>, k: &str| f.get(k).cloned().unwrap_or_else(|| "–".into());
    let mut out = format!(
        "N = {n} live instances of `calc` (Rust `wasm32-wasip2`, {} KiB), 8 MiB memory \
         limit, each made and called once, all held, then each called again (its own \
         counter says 2) and all dropped; one process per row, on this machine \
         (`vm.max_map_count` = {}).\n\n\
         | | reached | stopped by | µs / instance (user + sys) | RSS KiB / instance | \
         page tables KiB / instance | address space MiB / instance | mappings / instance | \
         mappings in all | RSS MiB left after drop |{}\n\
         |---|---:|---|---:|---:|---:|---:|---:|---:|---:|{}\n",
        airssys_wasm_testkit::guests::CALC.len() / 1024,
        std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .map_or_else(|_| "?".into(), |s| s.trim().to_owned()),
        if rows.iter().any(|(_, f)| f.contains_key("instructions")) {
            " instructions / instance |"
        } else {
            ""
        },
        if rows.iter().any(|(_, f)| f.contains_key("instructions")) {
            "---:|"
        } else {
            ""
        },
    );
    for (name, f) in rows {
        let stop = get(f, "stop");
        let stop = if stop == "none" {
            "—".to_owned()
        } else if stop.contains("vm.max_map_count") {
            "`ResourceLimitExceeded`: `vm.max_map_count`".to_owned()
        } else if stop.contains("exceeded its address space") {
            "`ResourceLimitExceeded`: address space".to_owned()
        } else if stop.contains("Cannot allocate memory") {
            "ENOMEM (\"Cannot allocate memory\")".to_owned()
        } else {
            format!("`{}`", stop.chars().take(80).collect::<String>())
        };
        out.push_str(&format!(
            "| {name} | {} | {stop} | {} ({} + {}) | {} | {} | {} | {} | {} | {} |{}\n",
            get(f, "reached"),
            get(f, "us_per_instance"),
            get(f, "user_us"),
            get(f, "sys_us"),
            get(f, "rss_kib_per_instance"),
            get(f, "pte_kib_per_instance"),
            get(f, "vsz_mib_per_instance"),
            get(f, "maps_per_instance"),
            get(f, "maps_total"),
            get(f, "rss_mib_after_drop"),
            f.get("instructions")
                .map_or_else(String::new, |i| format!(" {i} |")),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_line_parses_with_its_quoted_reason() {
        let f = parse("mode=raw n=5 reached=3 stop=\"component `calc` exceeded its memory\" x=1");
        assert_eq!(f["reached"], "3");
        assert_eq!(f["stop"], "component `calc` exceeded its memory");
        assert_eq!(f["x"], "1");
        let table = render(5, &[("raw", f)]);
        assert!(
            table.contains("| raw | 3 | `component `calc` exceeded its memory` |"),
            "{table}"
        );
    }
}
