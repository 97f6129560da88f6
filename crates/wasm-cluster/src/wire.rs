//! A message on the wire: one NATS body, a small frame before the payload —
//! `\0aw1`, the length of what follows (two bytes, big-endian), then `key=value` lines
//! about the message (content type `ct`, sender `s`, priority `p`, when it was sent `t`,
//! its remaining time to live `ttl`, a request's timeout `to`, the host it came from `h`;
//! a reply's outcome `st`) — then the payload, untouched. No NATS headers: on this VM
//! three headers made a bare publication three times dearer (BENCHMARKS.md). A body
//! without the frame (a plain NATS client's) is a payload of
//! `application/octet-stream`. What arrives is checked before it is believed: another
//! host's frame is bounded and parsed without trust.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};

use airssys_wasm_actor::{ActorAddress, MessageEnvelope, MessagePriority, Reply, RequestError};

const MAGIC: &[u8; 4] = b"\0aw1";

/// The longest content type believed (longer ones are refused).
const MAX_CONTENT_TYPE: usize = 256;

/// A message as it arrived.
pub(crate) struct Incoming {
    pub(crate) env: MessageEnvelope,
    /// A request's timeout, as its sender set it.
    pub(crate) timeout: Option<Duration>,
    /// The host it came from.
    pub(crate) origin: Option<String>,
}

/// `meta` lines, then `payload`, as one body.
fn frame(meta: &str, payload: &Bytes) -> Bytes {
    // Lines are short and few (a content type, an address, numbers): within u16.
    let len = u16::try_from(meta.len()).unwrap_or(u16::MAX);
    let meta = &meta.as_bytes()[..usize::from(len)];
    let mut body = BytesMut::with_capacity(MAGIC.len() + 2 + meta.len() + payload.len());
    body.put_slice(MAGIC);
    body.put_u16(len);
    body.put_slice(meta);
    body.put_slice(payload);
    body.freeze()
}

/// The `key=value` lines and the payload of a body, or why it is refused; `None` for a
/// body without the frame.
fn unframe(body: &Bytes) -> Result<Option<(String, Bytes)>, String> {
    if body.len() < MAGIC.len() + 2 || &body[..MAGIC.len()] != MAGIC {
        return Ok(None);
    }
    let len = usize::from(u16::from_be_bytes([body[4], body[5]]));
    let end = MAGIC.len() + 2 + len;
    if end > body.len() {
        return Err("a frame longer than its message".into());
    }
    let meta = std::str::from_utf8(&body[MAGIC.len() + 2..end])
        .map_err(|_| "a frame that is not UTF-8".to_owned())?
        .to_owned();
    Ok(Some((meta, body.slice(end..))))
}

fn get<'a>(meta: &'a str, key: &str) -> Option<&'a str> {
    meta.lines()
        .find_map(|l| l.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
}

fn put(meta: &mut String, key: &str, value: impl std::fmt::Display) {
    use std::fmt::Write;
    let _ = writeln!(meta, "{key}={value}");
}

/// `env` as a body, from host `origin`, with a request's `timeout`.
pub(crate) fn message(env: &MessageEnvelope, origin: &str, timeout: Option<Duration>) -> Bytes {
    let mut meta = String::with_capacity(96);
    // Values never hold a newline: content types are checked (and refused with
    // control characters on arrival), addresses and host names are tokens.
    if !env.content_type.contains(['\n', '\r']) {
        put(&mut meta, "ct", &env.content_type);
    }
    put(&mut meta, "h", origin);
    if let Some(sender) = &env.sender {
        put(&mut meta, "s", sender);
    }
    if env.priority != MessagePriority::Normal {
        put(&mut meta, "p", priority_name(env.priority));
    }
    let sent_at = env
        .timestamp
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    put(&mut meta, "t", sent_at);
    if let Some(ttl) = env.ttl {
        // What is left of it: the receiver counts from when it arrives.
        let waited = SystemTime::now()
            .duration_since(env.timestamp)
            .unwrap_or_default();
        put(&mut meta, "ttl", ttl.saturating_sub(waited).as_millis());
    }
    if let Some(t) = timeout {
        put(&mut meta, "to", t.as_millis());
    }
    frame(&meta, &env.payload)
}

/// A message from the wire, or why it is refused.
pub(crate) fn incoming(body: Bytes) -> Result<Incoming, String> {
    let Some((meta, payload)) = unframe(&body)? else {
        return Ok(Incoming {
            env: MessageEnvelope::new("application/octet-stream", body),
            timeout: None,
            origin: None,
        });
    };
    let content_type = get(&meta, "ct").unwrap_or("application/octet-stream");
    if content_type.len() > MAX_CONTENT_TYPE || content_type.chars().any(char::is_control) {
        return Err("a content type longer than 256 characters or with control characters".into());
    }
    let mut env = MessageEnvelope::new(content_type, payload);
    env.sender = get(&meta, "s").and_then(|s| ActorAddress::parse(s).ok());
    env.priority = get(&meta, "p").map_or(MessagePriority::Normal, priority_of);
    if let Some(ms) = get(&meta, "t").and_then(|v| v.parse::<u64>().ok()) {
        env.timestamp = UNIX_EPOCH + Duration::from_millis(ms);
    }
    env.ttl = get(&meta, "ttl")
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_millis);
    let timeout = get(&meta, "to")
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_millis);
    Ok(Incoming {
        env,
        timeout,
        origin: get(&meta, "h").map(str::to_owned),
    })
}

/// A request's answer on the wire.
pub(crate) fn answer(answer: &Result<Reply, RequestError>) -> Bytes {
    let mut meta = String::with_capacity(48);
    match answer {
        Ok(reply) => {
            put(&mut meta, "st", "ok");
            if !reply.content_type.contains(['\n', '\r']) {
                put(&mut meta, "ct", &reply.content_type);
            }
            frame(&meta, &reply.payload)
        }
        Err(e) => {
            let (status, reason) = match e {
                RequestError::Timeout { .. } => ("timeout", String::new()),
                RequestError::Failed { reason, .. } => ("failed", reason.clone()),
                RequestError::NoReply { .. } => ("no-reply", String::new()),
                RequestError::Undelivered { reason, .. } => ("undelivered", reason.clone()),
                other => ("undelivered", other.to_string()),
            };
            put(&mut meta, "st", status);
            frame(&meta, &Bytes::from(reason))
        }
    }
}

/// The answer to a request to `to` with `timeout`, from the wire.
pub(crate) fn reply(to: &str, timeout: Duration, body: Bytes) -> Result<Reply, RequestError> {
    let to = to.to_owned();
    let not_ours = |to: String| RequestError::Undelivered {
        to,
        reason: "the answer came from something that is not an airssys-wasm host".into(),
    };
    let Ok(Some((meta, payload))) = unframe(&body) else {
        return Err(not_ours(to));
    };
    let reason = || {
        let text = String::from_utf8_lossy(&payload);
        airssys_wasm_core::text::escape(&text, 4096).into_owned()
    };
    match get(&meta, "st") {
        Some("ok") => {
            let ct = get(&meta, "ct").unwrap_or("application/octet-stream");
            if ct.len() > MAX_CONTENT_TYPE || ct.chars().any(char::is_control) {
                return Err(RequestError::Undelivered {
                    to,
                    reason: "the reply's content type was malformed".into(),
                });
            }
            Ok(Reply::new(ct, payload.clone()))
        }
        Some("timeout") => Err(RequestError::Timeout { to, timeout }),
        Some("failed") => Err(RequestError::Failed {
            to,
            reason: reason(),
        }),
        Some("no-reply") => Err(RequestError::NoReply { to }),
        Some("undelivered") => Err(RequestError::Undelivered {
            to,
            reason: reason(),
        }),
        _ => Err(not_ours(to)),
    }
}

fn priority_name(p: MessagePriority) -> &'static str {
    match p {
        MessagePriority::Low => "low",
        MessagePriority::Normal => "normal",
        MessagePriority::High => "high",
        MessagePriority::Critical => "critical",
    }
}

fn priority_of(name: &str) -> MessagePriority {
    match name {
        "low" => MessagePriority::Low,
        "high" => MessagePriority::High,
        "critical" => MessagePriority::Critical,
        _ => MessagePriority::Normal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_crosses_the_wire_whole() {
        let env = MessageEnvelope::new("application/json", Bytes::from_static(b"{}"))
            .with_priority(MessagePriority::High)
            .with_ttl(Duration::from_secs(60))
            .with_sender(ActorAddress::named("router").unwrap());
        let body = message(&env, "host-a", Some(Duration::from_millis(1500)));
        let got = incoming(body).unwrap();
        assert_eq!(&*got.env.content_type, "application/json");
        assert_eq!(got.env.priority, MessagePriority::High);
        assert_eq!(got.env.sender, env.sender);
        assert!(
            got.env
                .ttl
                .is_some_and(|t| t <= Duration::from_secs(60) && t > Duration::from_secs(50))
        );
        assert_eq!(got.timeout, Some(Duration::from_millis(1500)));
        assert_eq!(got.origin.as_deref(), Some("host-a"));
        assert_eq!(&got.env.payload[..], b"{}");
    }

    #[test]
    fn answers_keep_their_kind_and_bad_frames_are_refused() {
        let t = Duration::from_secs(1);
        for a in [
            Ok(Reply::text("pong")),
            Err(RequestError::Timeout {
                to: "w".into(),
                timeout: t,
            }),
            Err(RequestError::Failed {
                to: "w".into(),
                reason: "trap".into(),
            }),
            Err(RequestError::NoReply { to: "w".into() }),
            Err(RequestError::Undelivered {
                to: "w".into(),
                reason: "full".into(),
            }),
        ] {
            assert_eq!(reply("w", t, answer(&a)), a);
        }
        assert!(matches!(
            reply("w", t, Bytes::from_static(b"hello")),
            Err(RequestError::Undelivered { .. })
        ));
        // A plain client's body is a payload; a frame that lies about its length or
        // carries a content type with a control character is refused.
        let plain = incoming(Bytes::from_static(b"just bytes")).unwrap();
        assert_eq!(&*plain.env.content_type, "application/octet-stream");
        assert_eq!(&plain.env.payload[..], b"just bytes");
        assert!(incoming(Bytes::from_static(b"\0aw1\xff\xffct=x")).is_err());
        let bad = frame("ct=a\u{7}b\n", &Bytes::new());
        assert!(incoming(bad).is_err());
        let long = frame(&format!("ct={}\n", "x".repeat(300)), &Bytes::new());
        assert!(incoming(long).is_err());
    }
}
