//! The actors of the order pipeline, one component in three roles (its configuration's
//! `role`):
//!
//! - `router`: `order ID ITEM QTY` goes on to the worker pool (`worker`);
//! - `worker`: checks an order and tells the `ledger` (`done ID ITEM QTY`); an order of
//!   `poison` makes it trap — its supervisor restarts it, the order goes to the dead
//!   letters, nothing else is lost;
//! - `ledger`: counts orders and units per item in the key-value store (so the totals
//!   survive restarts and runs); `report` answers `orders=N ITEM=UNITS …`.

use std::cell::RefCell;

wit_bindgen::generate!({
    world: "orders",
    path: "../wit",
    generate_all,
});

use airssys::actor::messaging;
use airssys::actor::types::{Envelope, MessageKind, Priority, Reply};
use exports::airssys::actor::handler::Guest;
use wasi::keyvalue::{atomics, store};

thread_local! {
    static ROLE: RefCell<String> = RefCell::default();
}

struct Orders;

impl Guest for Orders {
    fn init() -> Result<(), String> {
        let role = wasi::config::store::get("role")
            .map_err(|e| format!("reading the configuration: {e:?}"))?
            .ok_or("the configuration has no `role` (router, worker or ledger)")?;
        if !matches!(role.as_str(), "router" | "worker" | "ledger") {
            return Err(format!("unknown role `{role}`"));
        }
        ROLE.with_borrow_mut(|r| *r = role);
        Ok(())
    }

    fn handle(envelope: Envelope, payload: Vec<u8>) -> Result<Option<Reply>, String> {
        let text = String::from_utf8_lossy(&payload).into_owned();
        let words: Vec<&str> = text.split_whitespace().collect();
        let role = ROLE.with_borrow(Clone::clone);
        let reply = match (role.as_str(), words.as_slice()) {
            ("router", ["order", id, _item, _qty]) => {
                send("worker", &text)?;
                format!("routed {id}")
            }
            ("worker", ["order", id, item, qty]) => {
                if *item == "poison" {
                    panic!("order {id} is poisoned");
                }
                let qty: u64 = qty.parse().map_err(|_| format!("bad quantity `{qty}`"))?;
                send("ledger", &format!("done {id} {item} {qty}"))?;
                format!("checked {id}")
            }
            ("ledger", ["done", _id, item, qty]) => {
                let qty: u64 = qty.parse().map_err(|_| format!("bad quantity `{qty}`"))?;
                let bucket = store::open("default").map_err(|e| format!("{e:?}"))?;
                atomics::increment(&bucket, "orders", 1).map_err(|e| format!("{e:?}"))?;
                atomics::increment(&bucket, &format!("units.{item}"), qty)
                    .map_err(|e| format!("{e:?}"))?;
                String::new()
            }
            ("ledger", ["report"]) => report()?,
            _ => return Err(format!("a {role} does not understand `{text}`")),
        };
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

fn send(to: &str, text: &str) -> Result<(), String> {
    messaging::send(to, "text/plain", text.as_bytes(), Priority::Normal)
        .map_err(|e| format!("sending to {to}: {e:?}"))
}

/// `orders=N` and the units of each item, sorted.
fn report() -> Result<String, String> {
    let bucket = store::open("default").map_err(|e| format!("{e:?}"))?;
    let number = |key: &str| -> Result<u64, String> {
        let value = bucket.get(key).map_err(|e| format!("{e:?}"))?;
        // Counters are decimal text (what `atomics::increment` writes).
        Ok(value
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|t| t.parse().ok())
            .unwrap_or(0))
    };
    let mut keys = Vec::new();
    let mut cursor = None;
    loop {
        let page = bucket.list_keys(cursor).map_err(|e| format!("{e:?}"))?;
        keys.extend(page.keys);
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    keys.sort();
    let mut out = format!("orders={}", number("orders")?);
    for key in keys.iter().filter(|k| k.starts_with("units.")) {
        out += &format!(" {}={}", &key["units.".len()..], number(key)?);
    }
    Ok(out)
}

export!(Orders);
