//! A WASI 0.3 component: `wasi:cli/run@0.3.0` (async) prints its arguments through a
//! WASI 0.3 stdout stream; async exports wait on WASI 0.3's clock. See `wit/p3-tool.wit`.

use std::hint::black_box;

use wasip3::clocks::monotonic_clock;

wit_bindgen::generate!({
    world: "p3-tool",
    path: "wit",
});

struct Tool;

impl Guest for Tool {
    async fn slow_double(x: u32, delay_ms: u32) -> u32 {
        monotonic_clock::wait_for(u64::from(delay_ms) * 1_000_000).await;
        x.wrapping_mul(2)
    }

    async fn never() {
        monotonic_clock::wait_for(u64::MAX).await;
    }

    async fn spin() {
        let mut n = 0u64;
        loop {
            n = black_box(n.wrapping_add(1));
        }
    }
}

export!(Tool);

impl wasip3::exports::cli::run::Guest for Tool {
    async fn run() -> Result<(), ()> {
        let args = wasip3::cli::environment::get_arguments();
        let line = format!("hello from WASI 0.3: {}\n", args.join(" "));
        let (mut tx, rx) = wasip3::wit_stream::new();
        // The host starts reading when the call is made; write, close, then wait for it.
        let written = wasip3::cli::stdout::write_via_stream(rx);
        let rest = tx.write_all(line.into_bytes()).await;
        drop(tx);
        written.await.map_err(drop)?;
        if rest.is_empty() { Ok(()) } else { Err(()) }
    }
}

wasip3::cli::command::export!(Tool);
