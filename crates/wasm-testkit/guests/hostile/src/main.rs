//! Misbehaves on purpose, as its first argument says:
//!
//! ```text
//! hostile alloc-bomb   allocates (and touches) 1 MiB after 1 MiB, forever
//! hostile spin         loops forever without calling the host
//! hostile recurse      recurses without bound
//! hostile panic        panics
//! hostile sleep        sleeps for a day, blocked in the host (WASI poll), where epoch
//!                      interruption cannot reach it
//! ```

use std::hint::black_box;
use std::time::Duration;

fn recurse(depth: u64) -> u64 {
    // A frame that can't be optimized away, and a call that isn't a tail call.
    let frame = black_box([depth; 16]);
    if black_box(depth) == u64::MAX {
        return 0; // never: the stack runs out long before
    }
    recurse(depth + 1).wrapping_add(frame[(depth % 16) as usize])
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    println!("hostile: {mode}");
    match mode.as_str() {
        "alloc-bomb" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(black_box(vec![0xA5; 1 << 20]));
            }
        }
        "spin" => {
            let mut n: u64 = 0;
            loop {
                n = black_box(n.wrapping_add(1));
            }
        }
        "recurse" => {
            println!("{}", recurse(0));
        }
        "panic" => panic!("the guest panicked on purpose"),
        "sleep" => {
            std::thread::sleep(Duration::from_secs(24 * 3600));
            println!("woke up");
        }
        _ => {
            eprintln!("usage: hostile alloc-bomb | spin | recurse | panic | sleep");
            std::process::exit(2);
        }
    }
}
