//! A library component that calls host interfaces: see `wit/host-calls.wit`.

wit_bindgen::generate!({
    world: "host-calls",
    path: "wit",
});

use test::host::{faults, math, slow, state};

struct HostCalls;

impl Guest for HostCalls {
    fn add(a: u32, b: u32) -> u32 {
        math::add(a, b)
    }

    fn echo(text: String) -> String {
        math::echo(&text)
    }

    fn wait(ms: u32) -> u32 {
        slow::wait(ms);
        1
    }

    fn fail(message: String) {
        faults::fail(&message);
    }

    fn panic(message: String) {
        faults::panic(&message);
    }

    fn burn(fuel: u64) {
        faults::burn(fuel);
    }

    fn tenant() -> String {
        state::tenant()
    }

    fn bump(n: u32) -> u64 {
        state::bump(n)
    }

    fn count(start: u32, times: u32) -> u32 {
        let counter = state::Counter::new(start);
        let mut last = start;
        for _ in 0..times {
            last = counter.increment();
        }
        last
    }

    fn hoard_counters(n: u32) -> u32 {
        let mut made = 0;
        for i in 0..n {
            // Kept alive on purpose: the host holds every one.
            std::mem::forget(state::Counter::new(i));
            made += 1;
        }
        made
    }
}

export!(HostCalls);
