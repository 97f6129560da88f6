//! The load run's table: printed, and written into `BENCHMARKS.md` between the `load`
//! markers.

use std::fmt::Write as _;

use anyhow::bail;

use super::{
    CONCURRENCY, FUEL, Good, IDLE, Kind, LOAD_END, LOAD_START, MEMORY, MIXED_CONCURRENCY, OHA, Run,
    STALLED, SlowSeen, TIMEOUT,
};
use crate::proc::Rss;
use crate::{machine, today, workspace_root};

pub(super) fn render(
    rows: &[(Kind, u32, Run)],
    mixed: &[(Kind, Run, Rss, Option<Good>, SlowSeen)],
    seconds: u64,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Measured {} on {}: oha {} and the servers on one machine. Hello: {seconds} s per \
         concurrency and server, in two halves taken in turns (A B C C B A); the figures \
         are the halves' means.\n",
        today(),
        machine(),
        OHA.trim_start_matches("oha@")
    );
    let _ = writeln!(
        s,
        "`wasmtime serve` is Wasmtime's as shipped: it runs every request through its \
         component-model concurrency support, which `airssys-wasm serve` turns off for WASI \
         0.2 handlers; the comparison is of the two servers as a user gets them, not of \
         the same code path.\n"
    );
    let _ = writeln!(
        s,
        "Hello handler (`http-hello`), limits {MEMORY}, {FUEL} fuel, {TIMEOUT} per request:\n"
    );
    let _ = writeln!(
        s,
        "| connections | server | req/s | p50 / p99 | server CPU per request | airssys-wasm: \
         req/s ratio, p99 ratio, CPU ratio |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for c in CONCURRENCY {
        let ours = rows.iter().find(|r| r.0 == Kind::Airssys && r.1 == c);
        for (kind, _, run) in rows.iter().filter(|r| r.1 == c) {
            let versus = match (ours, *kind) {
                (Some((_, _, a)), Kind::Wasmtime | Kind::WasmtimeBatched) => format!(
                    "{:.2}×, {:.2}×, {}",
                    a.rps / run.rps,
                    a.p99_ms / run.p99_ms,
                    match (a.cpu_us, run.cpu_us) {
                        (Some(x), Some(y)) => format!("{:.2}×", x / y),
                        _ => "-".to_owned(),
                    }
                ),
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "| {c} | {} | {:.0} | {:.2} / {:.2} ms | {} | {versus} |",
                kind.name(),
                run.rps,
                run.p50_ms,
                run.p99_ms,
                run.cpu_us
                    .map_or_else(|| "-".to_owned(), |us| format!("{us:.0} µs")),
            );
        }
    }
    let _ = writeln!(
        s,
        "\nMixed run (`http-hostile`, {MIXED_CONCURRENCY} connections, {seconds} s per server \
         in two halves taken in turns, one request in ten to /panic, /loop, /alloc, \
         /no-response or /error; beside the load, {STALLED} clients stalled mid-body and \
         {IDLE} idle connections, reopened when closed):\n"
    );
    let _ = writeln!(
        s,
        "| server | req/s | p50 / p99 | statuses | transport errors | good requests failed | \
         resident memory | server CPU per request | slow clients |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for (kind, run, rss, good, slow) in mixed {
        let good = good.map_or_else(
            || "(no access log)".to_owned(),
            |g| format!("{} of {}", g.failed, g.total),
        );
        let statuses: Vec<String> = run
            .statuses
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let errors: u64 = run.errors.values().sum();
        let _ = writeln!(
            s,
            "| {} | {:.0} | {:.2} / {:.2} ms | {} | {errors} | {good} | {rss} | {} | {slow} |",
            kind.name(),
            run.rps,
            run.p50_ms,
            run.p99_ms,
            statuses.join(", "),
            run.cpu_us
                .map_or_else(|| "-".to_owned(), |us| format!("{us:.0} µs"))
        );
    }
    s
}

pub(super) fn write_report(report: &str) -> anyhow::Result<()> {
    let path = workspace_root().join("BENCHMARKS.md");
    let text = std::fs::read_to_string(&path)?;
    let (Some(a), Some(b)) = (text.find(LOAD_START), text.find(LOAD_END)) else {
        bail!("BENCHMARKS.md has no {LOAD_START} … {LOAD_END} section");
    };
    let new = format!("{}{LOAD_START}\n{report}{}", &text[..a], &text[b..]);
    std::fs::write(&path, new)?;
    eprintln!("wrote the results into {}", path.display());
    Ok(())
}
