//! An actor (world `airssys:actor/actor@0.1.0`, the WIT in `crates/wasm-actor/wit`) driven
//! by `text/plain` commands, one per message:
//!
//! Replies go to requests only (a tell returns none).
//!
//! - `echo TEXT` replies TEXT; `self` replies its address; `count` adds one to the
//!   instance's counter and replies it; `get` replies it (a restart starts again at 0).
//! - `send TO TEXT`, `ask TO TEXT` (a request with a 1 s timeout: replies `asked ID`),
//!   `publish TOPIC TEXT`, `subscribe TOPIC`, `spawn COMPONENT`: reply `ok …` or
//!   `error: …` with the interface's error.
//! - `last` replies what the latest reply, failed request or published message it
//!   received was: `reply ID TEXT`, `request-failed ID TEXT`, `topic TOPIC TEXT`.
//! - `work N` sends `done N` to the actor `collector`; `token HOPS N` (on an actor named
//!   `ring-I`) sends `token HOPS-1 N` to `ring-(I+1 mod N)`, or `done` to `collector` at 0.
//! - Misbehaving: `trap` (a panic: a WebAssembly trap), `unreachable` (a trap without
//!   a panic message), `fail` (`handle` returns an error), `spin` (loops for ever), `hoard MIB` (allocates and keeps it).

use std::cell::RefCell;

wit_bindgen::generate!({
    world: "actor",
    path: "../../../wasm-actor/wit",
});

use airssys::actor::messaging;
use airssys::actor::types::{Envelope, MessageKind, Priority, Reply, SendError};
use exports::airssys::actor::handler::Guest;

#[derive(Default)]
struct State {
    count: u64,
    last: String,
    hoard: Vec<Vec<u8>>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::default();
}

struct Worker;

impl Guest for Worker {
    fn init() -> Result<(), String> {
        Ok(())
    }

    fn handle(envelope: Envelope, payload: Vec<u8>) -> Result<Option<Reply>, String> {
        let text = String::from_utf8_lossy(&payload).into_owned();
        match envelope.kind {
            MessageKind::Reply | MessageKind::RequestFailed => {
                let kind = if envelope.kind == MessageKind::Reply { "reply" } else { "request-failed" };
                let id = envelope.correlation_id.unwrap_or(0);
                STATE.with_borrow_mut(|s| s.last = format!("{kind} {id} {text}"));
                return Ok(None);
            }
            _ => {}
        }
        if let Some(topic) = &envelope.topic {
            STATE.with_borrow_mut(|s| s.last = format!("topic {topic} {text}"));
            return Ok(None);
        }
        let (command, rest) = text.split_once(' ').unwrap_or((text.as_str(), ""));
        let reply = match command {
            "echo" => rest.to_owned(),
            "self" => messaging::self_address(),
            "count" => STATE.with_borrow_mut(|s| {
                s.count += 1;
                s.count.to_string()
            }),
            "get" => STATE.with_borrow(|s| s.count.to_string()),
            "last" => STATE.with_borrow(|s| s.last.clone()),
            "send" => {
                let (to, body) = rest.split_once(' ').unwrap_or((rest, ""));
                outcome(messaging::send(to, "text/plain", body.as_bytes(), Priority::Normal).map(|()| String::new()))
            }
            "ask" => {
                let (to, body) = rest.split_once(' ').unwrap_or((rest, ""));
                outcome(messaging::request(to, "text/plain", body.as_bytes(), 1000).map(|id| format!("asked {id}")))
            }
            "publish" => {
                let (topic, body) = rest.split_once(' ').unwrap_or((rest, ""));
                outcome(messaging::publish(topic, "text/plain", body.as_bytes()).map(|n| n.to_string()))
            }
            "subscribe" => outcome(messaging::subscribe(rest).map(|()| String::new())),
            "spawn" => outcome(messaging::spawn(rest)),
            "work" => {
                let done = format!("done {rest}");
                outcome(messaging::send("collector", "text/plain", done.as_bytes(), Priority::Normal).map(|()| String::new()))
            }
            "token" => token(rest)?,
            "trap" => panic!("poison message"),
            // A trap without a panic's message (no output, no formatting).
            "unreachable" => core::arch::wasm32::unreachable(),
            "fail" => return Err("asked to fail".into()),
            "spin" => loop {
                std::hint::black_box(());
            },
            "hoard" => {
                let mib: usize = rest.parse().unwrap_or(1);
                STATE.with_borrow_mut(|s| s.hoard.push(vec![1u8; mib << 20]));
                "hoarded".into()
            }
            other => return Err(format!("unknown command `{other}`")),
        };
        // A reply goes back to a request; a tell has no one to read it.
        if envelope.kind != MessageKind::Request {
            return Ok(None);
        }
        Ok(Some(Reply {
            content_type: "text/plain".into(),
            payload: reply.into_bytes(),
        }))
    }

    fn stop() {}
}

/// `token HOPS N` on `ring-I`: on to `ring-(I+1 mod N)`, or `done` to `collector`.
fn token(rest: &str) -> Result<String, String> {
    let mut it = rest.split(' ').map(str::parse::<u64>);
    let (Some(Ok(hops)), Some(Ok(n))) = (it.next(), it.next()) else {
        return Err(format!("bad token `{rest}`"));
    };
    let me = messaging::self_address();
    let i: u64 = me
        .strip_prefix("ring-")
        .and_then(|i| i.parse().ok())
        .ok_or_else(|| format!("`{me}` is not in a ring"))?;
    let sent = if hops == 0 {
        messaging::send("collector", "text/plain", b"done", Priority::Normal)
    } else {
        let next = format!("ring-{}", (i + 1) % n.max(1));
        let token = format!("token {} {n}", hops - 1);
        messaging::send(&next, "text/plain", token.as_bytes(), Priority::Normal)
    };
    sent.map(|()| String::new()).map_err(|e| describe(&e))
}

fn outcome(r: Result<String, SendError>) -> String {
    match r {
        Ok(s) if s.is_empty() => "ok".into(),
        Ok(s) => format!("ok {s}"),
        Err(e) => format!("error: {}", describe(&e)),
    }
}

fn describe(e: &SendError) -> String {
    match e {
        SendError::Denied(s) => format!("denied: {s}"),
        SendError::NotFound(s) => format!("not-found: {s}"),
        SendError::MailboxFull(s) => format!("mailbox-full: {s}"),
        SendError::Closed(s) => format!("closed: {s}"),
        SendError::Invalid(s) => format!("invalid: {s}"),
    }
}

export!(Worker);
