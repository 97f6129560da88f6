//! A `wasi:cli` command over `wasi:keyvalue@0.2.0-draft` (see `wit/kv-tool.wit`), the
//! same calls under airssys-wasm and under `wasmtime run -S keyvalue`. Every command
//! opens BUCKET first (`""` and `default` are the component's own bucket):
//!
//! - `get BUCKET KEY` prints `value: TEXT` or `absent`; `exists BUCKET KEY` prints
//!   `true` or `false`; `set BUCKET KEY VALUE` and `delete BUCKET KEY` print `ok`.
//! - `list BUCKET` pages through the keys and prints `keys: a,b,c` (sorted).
//! - `incr BUCKET KEY DELTA [TIMES]` increments TIMES times (default 1), prints
//!   `value: N` (the last result).
//! - `incr-after BUCKET GATE KEY DELTA TIMES` prints `waiting`, waits until key GATE
//!   exists (a start barrier for processes that must overlap), then increments as
//!   `incr` does.
//! - `set-many BUCKET K=V...`, `get-many BUCKET K...` (prints `K=V` or `K absent` per
//!   key), `delete-many BUCKET K...`: one batch call each.
//! - `fill BUCKET PREFIX SIZE COUNT` sets COUNT keys `PREFIX<i>` of SIZE bytes, printing
//!   `ack <i>` after each acknowledged write.
//! - `set-then-trap BUCKET KEY VALUE` and `set-then-spin BUCKET KEY VALUE` write, then
//!   trap or spin until the call's timeout.
//! - `bench-get|bench-set|bench-incr BUCKET N` do N operations on one key, quietly.
//! - `open-many BUCKET N` opens BUCKET N times and prints `opened: X, denied: Y`.
//!
//! Failures print `error: access-denied`, `error: no-such-store` or `error: other: …`
//! and exit with failure.

use std::io::Write;
use std::process::ExitCode;

wit_bindgen::generate!({ world: "kv-tool", path: "wit", generate_all });

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

fn number(args: &[String], i: usize, what: &str) -> Result<u64, String> {
    arg(args, i, what)?
        .parse()
        .map_err(|e| format!("{what} is not a number: {e}"))
}

fn run(args: &[String]) -> Result<(), String> {
    let command = arg(args, 1, "command")?;
    if command == "open-many" {
        let (mut opened, mut denied) = (0, 0);
        for _ in 0..number(args, 3, "count")? {
            match store::open(&arg(args, 2, "bucket")?) {
                Ok(_) => opened += 1,
                Err(store::Error::AccessDenied) => denied += 1,
                Err(e) => return Err(text(e)),
            }
        }
        println!("opened: {opened}, denied: {denied}");
        return Ok(());
    }
    let bucket = store::open(&arg(args, 2, "bucket")?).map_err(text)?;
    let mut out = std::io::stdout();
    match command.as_str() {
        "get" => match bucket.get(&arg(args, 3, "key")?).map_err(text)? {
            Some(v) => println!("value: {}", String::from_utf8_lossy(&v)),
            None => println!("absent"),
        },
        "exists" => println!("{}", bucket.exists(&arg(args, 3, "key")?).map_err(text)?),
        "set" => {
            let value = arg(args, 4, "value")?;
            bucket
                .set(&arg(args, 3, "key")?, value.as_bytes())
                .map_err(text)?;
            println!("ok");
        }
        "delete" => {
            bucket.delete(&arg(args, 3, "key")?).map_err(text)?;
            println!("ok");
        }
        "list" => {
            let mut keys = Vec::new();
            let mut cursor = None;
            loop {
                let page = bucket.list_keys(cursor).map_err(text)?;
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
            let key = arg(args, 3, "key")?;
            let delta = number(args, 4, "delta")?;
            let times = if args.len() > 5 { number(args, 5, "times")? } else { 1 };
            let mut value = 0;
            for _ in 0..times {
                value = atomics::increment(&bucket, &key, delta).map_err(text)?;
            }
            println!("value: {value}");
        }
        "incr-after" => {
            let gate = arg(args, 3, "gate")?;
            let key = arg(args, 4, "key")?;
            let delta = number(args, 5, "delta")?;
            let times = number(args, 6, "times")?;
            println!("waiting");
            let _ = std::io::stdout().flush();
            while !bucket.exists(&gate).map_err(text)? {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            let mut value = 0;
            for _ in 0..times {
                value = atomics::increment(&bucket, &key, delta).map_err(text)?;
            }
            println!("value: {value}");
        }
        "set-many" => {
            let mut pairs = Vec::new();
            for kv in &args[3..] {
                let (k, v) = kv.split_once('=').ok_or("write pairs as K=V")?;
                pairs.push((k.to_owned(), v.as_bytes().to_vec()));
            }
            batch::set_many(&bucket, &pairs).map_err(text)?;
            println!("ok");
        }
        "get-many" => {
            let keys = args[3..].to_vec();
            for (k, v) in keys.iter().zip(batch::get_many(&bucket, &keys).map_err(text)?) {
                match v {
                    Some((_, v)) => println!("{k}={}", String::from_utf8_lossy(&v)),
                    None => println!("{k} absent"),
                }
            }
        }
        "delete-many" => {
            batch::delete_many(&bucket, &args[3..]).map_err(text)?;
            println!("ok");
        }
        "fill" => {
            let prefix = arg(args, 3, "prefix")?;
            let size = usize::try_from(number(args, 4, "size")?).map_err(|e| e.to_string())?;
            let count = number(args, 5, "count")?;
            let value = vec![b'x'; size];
            for i in 0..count {
                bucket.set(&format!("{prefix}{i}"), &value).map_err(text)?;
                // Printed only once the write returned: every `ack` is a stored key.
                let _ = writeln!(out, "ack {i}");
                let _ = out.flush();
            }
        }
        "set-then-trap" | "set-then-spin" => {
            let value = arg(args, 4, "value")?;
            bucket
                .set(&arg(args, 3, "key")?, value.as_bytes())
                .map_err(text)?;
            println!("ok");
            if command == "set-then-trap" {
                std::process::abort();
            }
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "bench-get" | "bench-set" | "bench-incr" => {
            let n = number(args, 3, "count")?;
            let value = [7u8; 16];
            for _ in 0..n {
                match command.as_str() {
                    "bench-get" => drop(bucket.get("bench").map_err(text)?),
                    "bench-set" => bucket.set("bench", &value).map_err(text)?,
                    _ => drop(atomics::increment(&bucket, "bench-counter", 1).map_err(text)?),
                }
            }
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
