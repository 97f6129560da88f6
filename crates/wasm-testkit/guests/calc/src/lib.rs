//! A library component built with `wit-bindgen`: see `wit/calc.wit`.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

/// This instance's counter (`bump`).
static COUNTER: AtomicU64 = AtomicU64::new(0);

wit_bindgen::generate!({
    world: "calc",
    path: "wit",
});

struct Calc;

impl Guest for Calc {
    fn add(a: i32, b: i32) -> i32 {
        a.wrapping_add(b)
    }

    fn greet(name: String) -> String {
        format!("Hello, {name}!")
    }

    fn sum(values: Vec<u32>) -> u64 {
        values.iter().map(|&v| u64::from(v)).sum()
    }

    fn fib(n: u32) -> u64 {
        let (mut a, mut b) = (0u64, 1u64);
        for _ in 0..n {
            (a, b) = (b, black_box(a.wrapping_add(b)));
        }
        a
    }

    fn hoard(mib: u32) -> u64 {
        let chunks: Vec<Vec<u8>> = (0..mib).map(|_| black_box(vec![0xA5; 1 << 20])).collect();
        chunks.iter().map(|c| c.len() as u64).sum()
    }

    fn bump() -> u64 {
        COUNTER.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn spin() {
        let mut n: u64 = 0;
        loop {
            n = black_box(n.wrapping_add(1));
        }
    }
}

export!(Calc);
