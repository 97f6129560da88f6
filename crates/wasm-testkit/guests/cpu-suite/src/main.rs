//! The CPU suite: one source, built natively and as a `wasm32-wasip2` command, so that
//! what a runtime (and its CPU limits) adds to CPU-bound code is measured against
//! native code from the same compiler.
//!
//! `cpu-suite WORKLOAD RUNS` runs WORKLOAD once to warm up, then RUNS times, and prints
//! `WORKLOAD RUNS <nanoseconds per run> <checksum>` (with RUNS 0, the warm-up only, no
//! clock read, and 0 for the time): timed inside the program (a
//! guest reads WASI's monotonic clock), so that neither process start nor compilation
//! is in the figure, and the checksum shows every runtime computed the same thing.
//!
//! Workloads, each a few milliseconds natively:
//! - `loop`: a tight integer loop (a linear congruential chain, 10 million steps);
//! - `fib`: recursive calls (`fib(27)`, ~630,000 calls);
//! - `sha256`: SHA-256 over 1 MiB;
//! - `sort`: sorting 500,000 pseudo-random `u64`s;
//! - `json`: a 2,000-record document serialised with serde_json and parsed back;
//! - `regex`: counting e-mail-like words in 1 MiB of text with the `regex` crate.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(workload), Some(runs)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: cpu-suite loop|fib|sha256|sort|json|regex RUNS");
        return ExitCode::from(2);
    };
    let Ok(runs) = runs.parse::<u32>() else {
        eprintln!("RUNS must be a number");
        return ExitCode::from(2);
    };
    let work: fn() -> u64 = match workload.as_str() {
        "loop" => tight_loop,
        "fib" => || fib(black_box(27)),
        "sha256" => sha256,
        "sort" => sort,
        "json" => json,
        "regex" => regex_count,
        other => {
            eprintln!("unknown workload `{other}`");
            return ExitCode::from(2);
        }
    };
    let checksum = work();
    if runs == 0 {
        // The warm-up run alone, without reading a clock: what it computes, and the
        // fuel it takes, are the same on every run and machine.
        println!("{workload} 0 0 {checksum}");
        return ExitCode::SUCCESS;
    }
    let start = Instant::now();
    for _ in 0..runs {
        if work() != checksum {
            eprintln!("{workload}: a run computed something else");
            return ExitCode::from(1);
        }
    }
    let ns = start.elapsed().as_nanos() / u128::from(runs.max(1));
    println!("{workload} {runs} {ns} {checksum}");
    ExitCode::SUCCESS
}

/// xorshift64: the suite's deterministic pseudo-random numbers.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn tight_loop() -> u64 {
    let mut x = black_box(1u64);
    for i in 0..black_box(10_000_000u64) {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i);
    }
    x
}

fn fib(n: u64) -> u64 {
    if n < 2 { n } else { fib(n - 1) + fib(n - 2) }
}

fn sha256() -> u64 {
    use sha2::Digest as _;
    let mut state = 0x5eed;
    let data: Vec<u8> = (0..1 << 20).map(|_| xorshift(&mut state) as u8).collect();
    let digest = sha2::Sha256::digest(black_box(&data));
    u64::from_le_bytes(digest[..8].try_into().unwrap_or_default())
}

fn sort() -> u64 {
    let mut state = 0x5eed;
    let mut v: Vec<u64> = (0..500_000).map(|_| xorshift(&mut state)).collect();
    v.sort_unstable();
    v[0] ^ v[v.len() / 2] ^ v[v.len() - 1]
}

fn json() -> u64 {
    let mut state = 0x5eed;
    let records: Vec<serde_json::Value> = (0..2_000)
        .map(|i| {
            let n = xorshift(&mut state);
            serde_json::json!({
                "id": i,
                "name": format!("user-{n:x}"),
                "score": (n % 10_000) as f64 / 100.0,
                "tags": ["a", "bb", "ccc"],
                "active": n % 2 == 0,
            })
        })
        .collect();
    let text = serde_json::to_string(&serde_json::Value::Array(records)).unwrap_or_default();
    let parsed: serde_json::Value = serde_json::from_str(black_box(&text)).unwrap_or_default();
    let count = parsed.as_array().map_or(0, Vec::len) as u64;
    count ^ text.len() as u64
}

fn regex_count() -> u64 {
    let mut state = 0x5eed;
    let mut text = String::with_capacity(1 << 20);
    while text.len() < 1 << 20 {
        let n = xorshift(&mut state);
        if n % 17 == 0 {
            text.push_str(&format!("user{}@example.com ", n % 1000));
        } else {
            text.push_str(&format!("word{} ", n % 10_000));
        }
    }
    let re = regex::Regex::new(r"\b\w+@\w+\.com\b").expect("a valid pattern");
    re.find_iter(black_box(&text)).count() as u64
}
