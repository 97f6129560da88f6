//! `[actor]`: what a component that runs as an actor (`airssys-wasm-actor`) may do and
//! how its mailbox behaves — `mailbox` (capacity), `mailbox_bytes`, `backpressure` (`block`, `drop`,
//! `error`), and the patterns of `send`, `publish`, `subscribe` and `spawn` (nothing
//! granted by default), each checked at its line and column.

use std::ops::Range;

use toml::de::DeTable;

use airssys_wasm_core::actor::{ActorGrants, Backpressure, Pattern};

use crate::doc::{Doc, PResult};

/// The largest mailbox a manifest may ask for.
pub const MAX_MAILBOX: u64 = 1_000_000;

const KEYS: &[&str] = &[
    "mailbox",
    "mailbox_bytes",
    "backpressure",
    "send",
    "publish",
    "subscribe",
    "spawn",
];

/// `[actor]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ActorSection {
    /// What the actor may do.
    pub grants: ActorGrants,
    /// Its mailbox's capacity (`mailbox`), when given.
    pub mailbox: Option<u64>,
    /// The payload bytes its mailbox holds (`mailbox_bytes`), when given.
    pub mailbox_bytes: Option<u64>,
    /// What its full mailbox does (`backpressure`), when given.
    pub backpressure: Option<Backpressure>,
}

pub(crate) fn read(doc: &Doc<'_>, _span: Range<usize>, t: &DeTable<'_>) -> PResult<ActorSection> {
    const T: &str = "actor";
    doc.check_keys(t, KEYS, Some(T))?;
    let mailbox = match Doc::get(t, "mailbox") {
        None => None,
        Some(v) => {
            let n = match v.get_ref() {
                toml::de::DeValue::Integer(i) => {
                    doc.unsigned(v.span(), "actor.mailbox", i.as_str(), i.radix())?
                }
                other => {
                    return Err(doc.wrong_type(
                        v.span(),
                        "actor.mailbox",
                        "a number of messages",
                        other,
                    ));
                }
            };
            if n == 0 || n > MAX_MAILBOX {
                return Err(doc.invalid(
                    v.span(),
                    "actor.mailbox",
                    format!("a mailbox holds 1 to {MAX_MAILBOX} messages, not {n}"),
                    Some("mailbox = 1000".into()),
                ));
            }
            Some(n)
        }
    };
    let mailbox_bytes = match Doc::get(t, "mailbox_bytes") {
        None => None,
        Some(v) => {
            let n = doc.size(v, "actor.mailbox_bytes", "16MiB")?;
            if n == 0 {
                return Err(doc.invalid(
                    v.span(),
                    "actor.mailbox_bytes",
                    "a mailbox must hold at least one byte".into(),
                    Some("mailbox_bytes = \"16MiB\"".into()),
                ));
            }
            Some(n)
        }
    };
    let backpressure = match Doc::get(t, "backpressure") {
        None => None,
        Some(v) => {
            let s = doc.string(v, "actor.backpressure")?;
            Some(Backpressure::parse(s).ok_or_else(|| {
                doc.invalid(
                    v.span(),
                    "actor.backpressure",
                    format!("`{s}` is not a backpressure strategy"),
                    Some(
                        "use \"block\" (the sender waits), \"drop\" (a dead letter) or \"error\" \
                         (the sender is told)"
                            .into(),
                    ),
                )
            })?)
        }
    };
    let patterns = |key: &str, what: &str| {
        doc.strings(
            t,
            key,
            &format!("actor.{key}"),
            |s, _| {
                Pattern::parse(s).map_err(|e| {
                    (
                        e,
                        Some(format!(
                            "{what}: a name (`router`), a prefix (`worker-*`) or `*`"
                        )),
                    )
                })
            },
            |earlier, p| {
                earlier.contains(p).then(|| {
                    (
                        format!("`{}` is granted twice", p.as_str()),
                        "keep one entry per pattern".into(),
                    )
                })
            },
        )
    };
    let mut grants = ActorGrants::none();
    grants.send = patterns("send", "the actors it may message")?;
    grants.publish = patterns("publish", "the topics it may publish to")?;
    grants.subscribe = patterns("subscribe", "the topics it may subscribe to")?;
    grants.spawn = patterns("spawn", "the components it may start")?;
    Ok(ActorSection {
        grants,
        mailbox,
        mailbox_bytes,
        backpressure,
    })
}

/// `[actor]` as TOML values, for writing back.
pub(crate) fn write(a: &ActorSection) -> toml::Table {
    let mut t = toml::Table::new();
    if let Some(n) = a.mailbox {
        t.insert(
            "mailbox".into(),
            toml::Value::Integer(i64::try_from(n).unwrap_or(i64::MAX)),
        );
    }
    if let Some(n) = a.mailbox_bytes {
        t.insert(
            "mailbox_bytes".into(),
            toml::Value::String(airssys_wasm_core::units::format_memory_size(n)),
        );
    }
    if let Some(b) = a.backpressure {
        t.insert(
            "backpressure".into(),
            toml::Value::String(b.as_str().into()),
        );
    }
    for (key, list) in [
        ("send", &a.grants.send),
        ("publish", &a.grants.publish),
        ("subscribe", &a.grants.subscribe),
        ("spawn", &a.grants.spawn),
    ] {
        if !list.is_empty() {
            t.insert(
                key.into(),
                toml::Value::Array(
                    list.iter()
                        .map(|p| toml::Value::String(p.as_str().into()))
                        .collect(),
                ),
            );
        }
    }
    t
}
