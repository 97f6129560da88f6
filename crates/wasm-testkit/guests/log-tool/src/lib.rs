//! A library component that logs through `wasi:logging`: see `wit/log-tool.wit`.

wit_bindgen::generate!({
    world: "log-tool",
    path: "wit",
    // The vendored standard interface (wit-bindgen asks to be told to generate
    // bindings for WASI packages, which `wasi` crates usually provide).
    with: { "wasi:logging/logging@0.1.0-draft": generate },
});

use wasi::logging::logging::{Level, log};

struct LogTool;

impl Guest for LogTool {
    fn emit(level: String, context: String, message: String) {
        let level = match level.as_str() {
            "trace" => Level::Trace,
            "debug" => Level::Debug,
            "warn" => Level::Warn,
            "error" => Level::Error,
            "critical" => Level::Critical,
            _ => Level::Info,
        };
        log(level, &context, &message);
    }

    fn flood(n: u32) -> u32 {
        for i in 0..n {
            log(Level::Info, "flood", &format!("record {i}"));
        }
        n
    }

    fn shout(bytes: u32) {
        log(Level::Warn, "shout", &"!".repeat(bytes as usize));
    }

    fn spam(n: u32, bytes: u32) {
        let message = "!".repeat(bytes as usize);
        for _ in 0..n {
            log(Level::Warn, "spam", &message);
        }
    }
}

export!(LogTool);
