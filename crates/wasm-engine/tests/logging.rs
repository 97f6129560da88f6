//! The built-in `wasi:logging`: granted records go to `tracing` with the component's
//! name, level and context; a call's records are bounded and the excess summarised.
//! The guest is the testkit's `log-tool` (Rust, `wit-bindgen`, the standard WIT).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use airssys_wasm_core::{CapabilitySet, InterfaceGrant, WasmError};
use airssys_wasm_engine::{
    GUEST_LOG_TARGET, MAX_LOG_BYTES_PER_CALL, MAX_LOG_CONTEXT_CHARS, MAX_LOG_MESSAGE_BYTES,
    MAX_LOG_RECORDS_PER_CALL, Provider, WasmEngine,
};
use airssys_wasm_testkit::guests::LOG_TOOL;
use common::{MIB, compile, sandbox};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// One record as `tracing` got it.
#[derive(Debug, Clone, Default)]
struct Record {
    target: String,
    level: String,
    fields: Vec<(String, String)>,
}

impl Record {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Visit for Record {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.fields
            .push((field.name().to_owned(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.fields
            .push((field.name().to_owned(), value.to_owned()));
    }
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Record>>>);

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut r = Record {
            target: event.metadata().target().to_owned(),
            level: event.metadata().level().to_string(),
            ..Record::default()
        };
        event.record(&mut r);
        self.0.lock().unwrap().push(r);
    }
}

fn granted() -> airssys_wasm_engine::Sandbox {
    let mut caps = CapabilitySet::deny_all();
    caps.interfaces
        .push(InterfaceGrant::parse("wasi:logging/logging").unwrap());
    sandbox(16 * MIB, 100_000_000, Duration::from_secs(10)).with_capabilities(caps)
}

/// Runs `f` with `capture` as the thread's subscriber (a current-thread runtime keeps
/// the guest's calls on this thread).
fn captured<T>(f: impl AsyncFnOnce() -> T) -> (T, Vec<Record>) {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let out = tracing::subscriber::with_default(subscriber, || rt.block_on(f()));
    let records = capture.0.lock().unwrap().clone();
    let guest = records
        .into_iter()
        .filter(|r| r.target == GUEST_LOG_TARGET)
        .collect();
    (out, guest)
}

#[test]
fn records_go_to_tracing_with_the_component_level_and_context() {
    let engine = WasmEngine::new().unwrap();
    let c = compile(&engine, "log-tool", LOG_TOOL);
    let ((), records) = captured(async || {
        let mut i = c.instantiate(&granted()).await.unwrap();
        for (level, message) in [
            ("trace", "t"),
            ("debug", "d"),
            ("info", "hello"),
            ("warn", "careful"),
            ("error", "bad"),
            ("critical", "worse"),
        ] {
            i.call_typed::<(&str, &str, &str), ()>("emit", (level, "ctx", message))
                .await
                .unwrap();
        }
    });
    let seen: Vec<_> = records
        .iter()
        .map(|r| (r.level.as_str(), r.field("message").unwrap_or_default()))
        .collect();
    assert_eq!(
        seen,
        [
            ("TRACE", "t"),
            ("DEBUG", "d"),
            ("INFO", "hello"),
            ("WARN", "careful"),
            ("ERROR", "bad"),
            ("ERROR", "worse")
        ]
    );
    for r in &records {
        assert_eq!(r.field("component"), Some("log-tool"), "{r:?}");
        assert_eq!(r.field("context"), Some("ctx"), "{r:?}");
    }
    assert_eq!(records[5].field("critical"), Some("true"));
}

#[test]
fn a_flood_is_bounded_per_call_counted_and_summarised() {
    let engine = WasmEngine::new().unwrap();
    let c = compile(&engine, "log-tool", LOG_TOOL);
    let n = MAX_LOG_RECORDS_PER_CALL * 20;
    let (reports, records) = captured(async || {
        let mut i = c.instantiate(&granted()).await.unwrap();
        let ((made,), flood) = i.call_typed::<(u32,), (u32,)>("flood", (n,)).await.unwrap();
        assert_eq!(made, n);
        // The next call has a fresh budget.
        let ((), next) = i.call_typed::<(u32,), ()>("shout", (10,)).await.unwrap();
        (flood, next)
    });
    let (flood, next) = reports;
    assert_eq!(
        flood.log_records_dropped,
        u64::from(n - MAX_LOG_RECORDS_PER_CALL)
    );
    assert_eq!(next.log_records_dropped, 0);
    let emitted = records
        .iter()
        .filter(|r| r.field("context") == Some("flood"))
        .count();
    assert_eq!(emitted, MAX_LOG_RECORDS_PER_CALL as usize);
    let summary: Vec<_> = records
        .iter()
        .filter(|r| r.field("dropped").is_some())
        .collect();
    assert_eq!(summary.len(), 1, "{summary:?}");
    assert_eq!(summary[0].level, "WARN");
    assert_eq!(
        summary[0].field("dropped"),
        Some(u64::from(n - MAX_LOG_RECORDS_PER_CALL).to_string().as_str())
    );
    assert!(records.iter().any(|r| r.field("context") == Some("shout")));
}

#[test]
fn a_huge_message_is_cut() {
    let engine = WasmEngine::new().unwrap();
    let c = compile(&engine, "log-tool", LOG_TOOL);
    let ((), records) = captured(async || {
        let mut i = c.instantiate(&granted()).await.unwrap();
        i.call_typed::<(u32,), ()>("shout", (1 << 20,))
            .await
            .unwrap();
    });
    let message = records[0].field("message").unwrap();
    assert!(
        message.len() < MAX_LOG_MESSAGE_BYTES + 64,
        "{}",
        message.len()
    );
    assert!(
        message.ends_with("bytes cut)"),
        "{}",
        &message[message.len() - 30..]
    );
}

/// The issue's forger: a context and a message with a newline, a fake timestamp and
/// target, and a terminal escape (OSC title) reach the log escaped, on one line.
#[test]
fn a_forged_line_or_escape_sequence_is_escaped() {
    let engine = WasmEngine::new().unwrap();
    let c = compile(&engine, "log-tool", LOG_TOOL);
    let forged =
        "x\n2026-12-07T00:00:00.000000Z  INFO airssys_wasm::access: GET / 200\x1b]0;owned\x07\r";
    let ((), records) = captured(async || {
        let mut i = c.instantiate(&granted()).await.unwrap();
        i.call_typed::<(&str, &str, &str), ()>("emit", ("info", forged, forged))
            .await
            .unwrap();
    });
    assert_eq!(records.len(), 1);
    for field in ["context", "message"] {
        let v = records[0].field(field).unwrap();
        assert!(
            !v.chars().any(char::is_control),
            "{field} carries a control character: {v:?}"
        );
        assert!(v.starts_with("x\\n2026"), "{field}: {v}");
        assert!(v.contains("\\u{1b}]0;owned\\u{7}\\r"), "{field}: {v}");
    }
}

/// A context is bounded like a message (a 1 MB context once printed 1,000,024 bytes),
/// and so is what all of a call's records add up to.
#[test]
fn a_huge_context_and_a_calls_total_are_bounded() {
    let engine = WasmEngine::new().unwrap();
    let c = compile(&engine, "log-tool", LOG_TOOL);
    let huge = "c".repeat(1 << 20);
    let (report, records) = captured(async || {
        let mut i = c.instantiate(&granted()).await.unwrap();
        let ((), _) = i
            .call_typed::<(&str, &str, &str), ()>("emit", ("info", &huge, "m"))
            .await
            .unwrap();
        // 1,000 records of 4,000 bytes would be ~4 MB: the call's total stops them.
        let ((), report) = i
            .call_typed::<(u32, u32), ()>("spam", (1_000, 4_000))
            .await
            .unwrap();
        report
    });
    let context = records[0].field("context").unwrap();
    assert!(
        context.chars().count() < MAX_LOG_CONTEXT_CHARS + 32,
        "{}",
        context.len()
    );
    assert!(
        context.ends_with("(1048576 bytes)"),
        "{}",
        &context[context.len() - 40..]
    );
    let spam: u64 = records
        .iter()
        .filter(|r| r.field("context") == Some("spam"))
        .map(|r| r.field("message").unwrap().len() as u64 + 4)
        .sum();
    assert!(spam <= MAX_LOG_BYTES_PER_CALL, "{spam}");
    let emitted = MAX_LOG_BYTES_PER_CALL / 4_004;
    assert_eq!(spam / 4_004, emitted);
    assert_eq!(report.log_records_dropped, 1_000 - emitted);
}

#[tokio::test]
async fn logging_is_denied_unless_granted_and_inspect_calls_it_built_in() {
    let engine = WasmEngine::new().unwrap();
    let c = compile(&engine, "log-tool", LOG_TOOL);
    let err = c
        .instantiate(&sandbox(16 * MIB, 1_000_000, Duration::from_secs(1)))
        .await
        .unwrap_err();
    let WasmError::InterfacesDenied { denied, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0].interface, "wasi:logging/logging@0.1.0-draft");
    assert!(err.to_string().contains("not granted"), "{err}");
    assert_eq!(
        engine.provider("wasi:logging/logging@0.1.0-draft#log"),
        Provider::BuiltIn("wasi:logging/logging@0.1.0-draft".into())
    );
    assert!(
        engine
            .host_interfaces()
            .any(|i| i == "wasi:logging/logging@0.1.0-draft")
    );
}
