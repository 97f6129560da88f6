//! A message on the wire: one NATS body, a small frame before the payload —
//! `\0aw1`, the length of what follows (two bytes, big-endian), then `key=value` lines
//! about the message (content type `ct`, sender `s` — a spawned one as `$N@HOST` —,
//! priority `p`, when it was sent `t`,
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

/// The content type of a payload that says none.
const OCTETS: &str = "application/octet-stream";

/// The longest content type believed (longer ones are refused).
const MAX_CONTENT_TYPE: usize = 256;

/// A message as it arrived.
pub(crate) struct Incoming {
    pub(crate) env: MessageEnvelope,
    /// A request's timeout, as its sender set it.
    pub(crate) timeout: Option<Duration>,
    /// The host it came from.
    pub(crate) origin: Option<Bytes>,
}

/// A body being written: the magic, room for the frame's length, `key=value` lines;
/// then [`Body::finish`] with the payload.
struct Body(BytesMut);

impl Body {
    fn new(payload: usize) -> Self {
        let mut body = BytesMut::with_capacity(MAGIC.len() + 2 + 96 + payload);
        body.put_slice(MAGIC);
        body.put_u16(0);
        Self(body)
    }

    /// A `key=value` line, its value in parts (no formatting machinery: it cost ~500
    /// instructions a line, most of a frame's cost; numbers through `itoa`).
    fn put(&mut self, key: &str, parts: &[&[u8]]) {
        self.0.put_slice(key.as_bytes());
        self.0.put_u8(b'=');
        for part in parts {
            self.0.put_slice(part);
        }
        self.0.put_u8(b'\n');
    }

    fn put_str(&mut self, key: &str, value: &str) {
        self.put(key, &[value.as_bytes()]);
    }

    fn put_number(&mut self, key: &str, value: u64) {
        self.put(key, &[itoa::Buffer::new().format(value).as_bytes()]);
    }

    /// The frame's length set, `payload` after it.
    fn finish(mut self, payload: &[u8]) -> Bytes {
        // Lines are short and few (a content type, an address, numbers): within u16.
        let start = MAGIC.len() + 2;
        let len = u16::try_from(self.0.len() - start).unwrap_or(u16::MAX);
        self.0.truncate(start + usize::from(len));
        self.0[MAGIC.len()..start].copy_from_slice(&len.to_be_bytes());
        self.0.put_slice(payload);
        self.0.freeze()
    }
}

fn has_newline(text: &str) -> bool {
    text.bytes().any(|b| b == b'\n' || b == b'\r')
}

fn millis_u64(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `meta` lines, then `payload`, as one body.
#[cfg(test)]
fn frame(meta: &str, payload: &Bytes) -> Bytes {
    let mut body = Body::new(meta.len() + payload.len());
    body.0.put_slice(meta.as_bytes());
    body.finish(payload)
}

/// The `key=value` lines and the payload of a body, or why it is refused; `None` for a
/// body without the frame.
fn unframe(body: &Bytes) -> Result<Option<(Meta<'_>, Bytes)>, String> {
    if body.len() < MAGIC.len() + 2 || &body[..MAGIC.len()] != MAGIC {
        return Ok(None);
    }
    let len = usize::from(u16::from_be_bytes([body[4], body[5]]));
    let end = MAGIC.len() + 2 + len;
    if end > body.len() {
        return Err("a frame longer than its message".into());
    }
    let meta = std::str::from_utf8(&body[MAGIC.len() + 2..end])
        .map_err(|_| "a frame that is not UTF-8".to_owned())?;
    Ok(Some((Meta::parse(meta), body.slice(end..))))
}

/// A frame's fields, read in one pass (the first of each key counts; unknown keys
/// are skipped: a newer host may send more).
#[derive(Default)]
struct Meta<'a> {
    ct: Option<&'a str>,
    h: Option<&'a str>,
    s: Option<&'a str>,
    p: Option<&'a str>,
    t: Option<&'a str>,
    ttl: Option<&'a str>,
    to: Option<&'a str>,
    st: Option<&'a str>,
}

impl<'a> Meta<'a> {
    fn parse(meta: &'a str) -> Self {
        let mut m = Self::default();
        for line in meta.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let field = match key {
                "ct" => &mut m.ct,
                "h" => &mut m.h,
                "s" => &mut m.s,
                "p" => &mut m.p,
                "t" => &mut m.t,
                "ttl" => &mut m.ttl,
                "to" => &mut m.to,
                "st" => &mut m.st,
                _ => continue,
            };
            field.get_or_insert(value);
        }
        m
    }
}

fn millis(value: Option<&str>) -> Option<Duration> {
    value
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_millis)
}

/// `env` as a body, from host `origin`, with a request's `timeout`.
pub(crate) fn message(env: &MessageEnvelope, origin: &str, timeout: Option<Duration>) -> Bytes {
    let mut body = Body::new(env.payload.len());
    // Values never hold a newline: content types are checked (and refused with
    // control characters on arrival), addresses and host names are tokens.
    if !has_newline(&env.content_type) {
        body.put_str("ct", &env.content_type);
    }
    body.put_str("h", origin);
    // A spawned actor's number means something only on its host: the others call it
    // `$N@HOST`.
    let spawned = match &env.sender {
        Some(ActorAddress::Anonymous(id)) => Some((*id, origin)),
        Some(ActorAddress::Remote { id, host }) => Some((*id, &**host)),
        Some(ActorAddress::Named(name)) => {
            body.put_str("s", name);
            None
        }
        None => None,
    };
    if let Some((id, host)) = spawned {
        let mut number = itoa::Buffer::new();
        body.put(
            "s",
            &[b"$", number.format(id).as_bytes(), b"@", host.as_bytes()],
        );
    }
    if env.priority != MessagePriority::Normal {
        body.put_str("p", priority_name(env.priority));
    }
    let sent_at = env.timestamp.duration_since(UNIX_EPOCH).unwrap_or_default();
    body.put_number("t", millis_u64(sent_at));
    if let Some(ttl) = env.ttl {
        // What is left of it: the receiver counts from when it arrives.
        let waited = SystemTime::now()
            .duration_since(env.timestamp)
            .unwrap_or_default();
        body.put_number("ttl", millis_u64(ttl.saturating_sub(waited)));
    }
    if let Some(t) = timeout {
        body.put_number("to", millis_u64(t));
    }
    body.finish(&env.payload)
}

/// A message from the wire, or why it is refused.
pub(crate) fn incoming(body: Bytes) -> Result<Incoming, String> {
    let Some((meta, payload)) = unframe(&body)? else {
        return Ok(Incoming {
            env: MessageEnvelope::new(OCTETS, body),
            timeout: None,
            origin: None,
        });
    };
    let content_type = meta.ct.unwrap_or(OCTETS);
    if content_type.len() > MAX_CONTENT_TYPE || content_type.chars().any(char::is_control) {
        return Err("a content type longer than 256 characters or with control characters".into());
    }
    let mut env = MessageEnvelope::new(content_type, payload);
    env.sender = meta.s.and_then(|s| ActorAddress::parse(s).ok());
    env.priority = meta.p.map_or(MessagePriority::Normal, priority_of);
    if let Some(t) = millis(meta.t) {
        env.timestamp = UNIX_EPOCH + t;
    }
    env.ttl = millis(meta.ttl);
    Ok(Incoming {
        env,
        timeout: millis(meta.to),
        // A view into the body, not a copy: only publications look at it.
        origin: meta.h.map(|h| body.slice_ref(h.as_bytes())),
    })
}

/// A request's answer on the wire.
pub(crate) fn answer(answer: &Result<Reply, RequestError>) -> Bytes {
    match answer {
        Ok(reply) => {
            let mut body = Body::new(reply.payload.len());
            body.put_str("st", "ok");
            if !has_newline(&reply.content_type) {
                body.put_str("ct", &reply.content_type);
            }
            body.finish(&reply.payload)
        }
        Err(e) => {
            let (status, reason) = match e {
                RequestError::Timeout { .. } => ("timeout", String::new()),
                RequestError::Failed { reason, .. } => ("failed", reason.clone()),
                RequestError::NoReply { .. } => ("no-reply", String::new()),
                RequestError::Undelivered { reason, .. } => ("undelivered", reason.clone()),
                other => ("undelivered", other.to_string()),
            };
            let mut body = Body::new(reason.len());
            body.put_str("st", status);
            body.finish(reason.as_bytes())
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
    match meta.st {
        Some("ok") => {
            let ct = meta.ct.unwrap_or(OCTETS);
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
        assert_eq!(got.origin.as_deref(), Some(&b"host-a"[..]));
        assert_eq!(&got.env.payload[..], b"{}");
    }

    #[test]
    fn a_spawned_sender_crosses_with_its_hosts_name() {
        let env = MessageEnvelope::text("hi").with_sender(ActorAddress::Anonymous(7));
        let got = incoming(message(&env, "host-a", None)).unwrap();
        assert_eq!(
            got.env.sender,
            Some(ActorAddress::Remote {
                id: 7,
                host: "host-a".into()
            })
        );
        // One already of another host keeps that host's name.
        let far = ActorAddress::parse("$3@host-c").unwrap();
        let env = MessageEnvelope::text("hi").with_sender(far.clone());
        let got = incoming(message(&env, "host-a", None)).unwrap();
        assert_eq!(got.env.sender, Some(far));
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
