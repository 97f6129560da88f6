//! A `wasi:http/incoming-handler` written as a Rust program usually is: it reads its
//! environment and the clock through `std`, and logs to stderr, so it imports the rest
//! of WASI (`wasi:cli/environment` and more) beside the proxy world, as Rust, JS and
//! Python runtimes do. `GET /` answers with the value of `GREETING` (or `hello`), the
//! number of environment variables and whether the wall clock is past 2020.

use std::time::{SystemTime, UNIX_EPOCH};

use wasip2::exports::http::incoming_handler::Guest;

include!("../../http-common/respond.rs");

struct Handler;

impl Guest for Handler {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let greeting = std::env::var("GREETING").unwrap_or_else(|_| "hello".into());
        let vars = std::env::vars().count();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        eprintln!("http-std: {}", path(&request));
        let text = format!("{greeting} from std; env vars: {vars}; clock ok: {}\n", now > 1_577_836_800);
        respond(out, 200, text.as_bytes());
    }
}

wasip2::http::proxy::export!(Handler);
