//! A plugin in Rust: counts the words of its input, logs, emits one event per distinct
//! word and one summary, and keeps a running total in a host counter.

wit_bindgen::generate!({
    world: "plugin",
    path: "../../wit",
});

use acme::plugins::counters::Counter;
use acme::plugins::events::{Event, emit};
use acme::plugins::log::{Level, log};

struct Stats;

impl Guest for Stats {
    fn run(input: String) -> String {
        let words: Vec<&str> = input
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        log(Level::Debug, &format!("counting {} bytes", input.len()));
        let mut distinct: Vec<&str> = words.clone();
        distinct.sort_unstable();
        distinct.dedup();
        for w in &distinct {
            let n = words.iter().filter(|x| *x == w).count();
            let event = Event {
                kind: "word".into(),
                attributes: vec![("word".into(), (*w).into())],
                value: Some(n as i64),
            };
            if let Err(rejected) = emit(&event) {
                log(Level::Warn, &format!("the host rejected an event: {rejected:?}"));
            }
        }
        let total = Counter::new("words").add(words.len() as i64);
        let summary = Event {
            kind: "word-count".into(),
            attributes: vec![("language".into(), "rust".into())],
            value: Some(words.len() as i64),
        };
        let seq = emit(&summary).unwrap_or_default();
        log(Level::Info, &format!("{} words, {} distinct", words.len(), distinct.len()));
        format!(
            "{} words ({} distinct); {total} counted so far; summary is event #{seq}",
            words.len(),
            distinct.len()
        )
    }
}

export!(Stats);
