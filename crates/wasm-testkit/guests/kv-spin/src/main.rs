//! A `wasi:cli` command over `wasi:keyvalue@0.2.0-draft2`, Spin's version (see
//! `wit/kv-spin.wit`). Every command opens BUCKET first:
//!
//! - `get BUCKET KEY` prints `value: TEXT` or `absent`; `set BUCKET KEY VALUE` prints `ok`.
//! - `list BUCKET` pages through the keys (the cursor is a string here) and prints
//!   `keys: a,b,c` (sorted).
//! - `incr BUCKET KEY DELTA` (signed) prints `value: N`.
//! - `get-many BUCKET K...` prints `K=V` or `K absent` per key.
//! - `cas-incr BUCKET KEY TIMES` adds 1 to a decimal value TIMES times by
//!   compare-and-swap (retrying with the fresh handle a failed swap returns), prints
//!   `value: N, retries: R`.
//!
//! - `cas-hoard BUCKET KEY N` (hostile) opens N compare-and-swap handles on KEY and
//!   keeps them all, printing `held: H` (and `error: …` for the one that failed).
//! - `set-big BUCKET KEY BYTES` sets KEY to BYTES bytes of `x`.
//! - `set-many-empty BUCKET N` (hostile) sets N distinct keys to empty values in one
//!   `set-many`.
//! - `key-of BUCKET BYTES` sets a key BYTES long.
//!
//! Failures print `error: …` and exit with failure.

use std::process::ExitCode;

wit_bindgen::generate!({ world: "kv-spin", path: "wit", generate_all });

use wasi::keyvalue::{atomics, batch, store};

fn text(e: store::Error) -> String {
    match e {
        store::Error::NoSuchStore => "no-such-store".into(),
        store::Error::AccessDenied => "access-denied".into(),
        store::Error::Other(m) => format!("other: {m}"),
    }
}

fn arg(args: &[String], i: usize, what: &str) -> Result<String, String> {
    args.get(i).cloned().ok_or_else(|| format!("missing {what}"))
}

fn number(value: Option<&[u8]>) -> Result<i64, String> {
    match value {
        None => Ok(0),
        Some(v) => String::from_utf8_lossy(v)
            .parse()
            .map_err(|e| format!("not a number: {e}")),
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let command = arg(args, 1, "command")?;
    let bucket = store::open(&arg(args, 2, "bucket")?).map_err(text)?;
    match command.as_str() {
        "get" => match bucket.get(&arg(args, 3, "key")?).map_err(text)? {
            Some(v) => println!("value: {}", String::from_utf8_lossy(&v)),
            None => println!("absent"),
        },
        "set" => {
            let value = arg(args, 4, "value")?;
            bucket
                .set(&arg(args, 3, "key")?, value.as_bytes())
                .map_err(text)?;
            println!("ok");
        }
        "list" => {
            let mut keys = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let page = bucket.list_keys(cursor.as_deref()).map_err(text)?;
                keys.extend(page.keys);
                match page.cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            keys.sort();
            println!("keys: {}", keys.join(","));
        }
        "incr" => {
            let delta: i64 = arg(args, 4, "delta")?
                .parse()
                .map_err(|e| format!("delta: {e}"))?;
            let value = atomics::increment(&bucket, &arg(args, 3, "key")?, delta).map_err(text)?;
            println!("value: {value}");
        }
        "get-many" => {
            for (k, v) in batch::get_many(&bucket, &args[3..]).map_err(text)? {
                match v {
                    Some(v) => println!("{k}={}", String::from_utf8_lossy(&v)),
                    None => println!("{k} absent"),
                }
            }
        }
        "cas-incr" => {
            let key = arg(args, 3, "key")?;
            let times: u32 = arg(args, 4, "times")?
                .parse()
                .map_err(|e| format!("times: {e}"))?;
            let mut retries = 0;
            let mut last = 0;
            for _ in 0..times {
                let mut cas = atomics::Cas::new(&bucket, &key).map_err(text)?;
                loop {
                    let next = number(cas.current().map_err(text)?.as_deref())? + 1;
                    match atomics::swap(cas, next.to_string().as_bytes()) {
                        Ok(()) => {
                            last = next;
                            break;
                        }
                        Err(atomics::CasError::CasFailed(fresh)) => {
                            retries += 1;
                            cas = fresh;
                        }
                        Err(atomics::CasError::StoreError(e)) => return Err(text(e)),
                    }
                }
            }
            println!("value: {last}, retries: {retries}");
        }
        "cas-hoard" => {
            let key = arg(args, 3, "key")?;
            let n: u32 = arg(args, 4, "count")?
                .parse()
                .map_err(|e| format!("count: {e}"))?;
            let mut held = Vec::new();
            let mut failed = None;
            for _ in 0..n {
                match atomics::Cas::new(&bucket, &key) {
                    Ok(cas) => held.push(cas),
                    Err(e) => {
                        failed = Some(text(e));
                        break;
                    }
                }
            }
            println!("held: {}", held.len());
            if let Some(e) = failed {
                return Err(e);
            }
        }
        "set-big" => {
            let bytes: usize = arg(args, 4, "bytes")?
                .parse()
                .map_err(|e| format!("bytes: {e}"))?;
            bucket
                .set(&arg(args, 3, "key")?, &vec![b'x'; bytes])
                .map_err(text)?;
            println!("ok");
        }
        "set-many-empty" => {
            let n: u32 = arg(args, 3, "count")?
                .parse()
                .map_err(|e| format!("count: {e}"))?;
            let pairs: Vec<(String, Vec<u8>)> = (0..n).map(|i| (format!("e{i}"), Vec::new())).collect();
            batch::set_many(&bucket, &pairs).map_err(text)?;
            println!("ok");
        }
        "key-of" => {
            let bytes: usize = arg(args, 3, "bytes")?
                .parse()
                .map_err(|e| format!("bytes: {e}"))?;
            bucket.set(&"k".repeat(bytes), b"v").map_err(text)?;
            println!("ok");
        }
        other => return Err(format!("unknown command `{other}`")),
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
