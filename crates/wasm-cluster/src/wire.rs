//! A message on the wire: the payload is the NATS message's body; everything about it
//! — content type, sender, priority, when it was sent, its remaining time to live, a
//! request's timeout, the host it came from — travels in headers. A reply carries its
//! outcome in `Airssys-Status`. What arrives is checked before it is believed: another
//! host's headers are bounded and parsed without trust.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::HeaderMap;
use bytes::Bytes;

use airssys_wasm_actor::{ActorAddress, MessageEnvelope, MessagePriority, Reply, RequestError};

const CONTENT_TYPE: &str = "Content-Type";
const SENDER: &str = "Airssys-Sender";
const PRIORITY: &str = "Airssys-Priority";
const SENT_AT: &str = "Airssys-Sent-At-Ms";
const TTL: &str = "Airssys-Ttl-Ms";
const TIMEOUT: &str = "Airssys-Timeout-Ms";
const ORIGIN: &str = "Airssys-Host";
const STATUS: &str = "Airssys-Status";

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

/// `env`'s headers, from host `origin`, with a request's `timeout`.
pub(crate) fn headers(env: &MessageEnvelope, origin: &str, timeout: Option<Duration>) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_TYPE, &*env.content_type);
    h.insert(ORIGIN, origin);
    if let Some(sender) = &env.sender {
        h.insert(SENDER, sender.to_string().as_str());
    }
    if env.priority != MessagePriority::Normal {
        h.insert(PRIORITY, priority_name(env.priority));
    }
    let sent_at = env
        .timestamp
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    h.insert(SENT_AT, sent_at.to_string().as_str());
    if let Some(ttl) = env.ttl {
        // What is left of it: the receiver counts from when it arrives.
        let waited = SystemTime::now()
            .duration_since(env.timestamp)
            .unwrap_or_default();
        h.insert(
            TTL,
            ttl.saturating_sub(waited).as_millis().to_string().as_str(),
        );
    }
    if let Some(t) = timeout {
        h.insert(TIMEOUT, t.as_millis().to_string().as_str());
    }
    h
}

/// A message from the wire, or why it is refused.
pub(crate) fn incoming(headers: Option<&HeaderMap>, payload: Bytes) -> Result<Incoming, String> {
    let get = |name: &str| headers.and_then(|h| h.get(name)).map(|v| v.as_str());
    let content_type = get(CONTENT_TYPE).unwrap_or("application/octet-stream");
    if content_type.len() > MAX_CONTENT_TYPE || content_type.chars().any(char::is_control) {
        return Err("a content type longer than 256 characters or with control characters".into());
    }
    let mut env = MessageEnvelope::new(content_type, payload);
    env.sender = get(SENDER).and_then(|s| ActorAddress::parse(s).ok());
    env.priority = get(PRIORITY).map_or(MessagePriority::Normal, priority_of);
    if let Some(ms) = get(SENT_AT).and_then(|v| v.parse::<u64>().ok()) {
        env.timestamp = UNIX_EPOCH + Duration::from_millis(ms);
    }
    env.ttl = get(TTL)
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_millis);
    let timeout = get(TIMEOUT)
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_millis);
    Ok(Incoming {
        env,
        timeout,
        origin: get(ORIGIN).map(str::to_owned),
    })
}

/// A request's answer on the wire.
pub(crate) fn answer(answer: &Result<Reply, RequestError>) -> (HeaderMap, Bytes) {
    let mut h = HeaderMap::new();
    match answer {
        Ok(reply) => {
            h.insert(STATUS, "ok");
            h.insert(CONTENT_TYPE, &*reply.content_type);
            (h, reply.payload.clone())
        }
        Err(e) => {
            let (status, reason) = match e {
                RequestError::Timeout { .. } => ("timeout", String::new()),
                RequestError::Failed { reason, .. } => ("failed", reason.clone()),
                RequestError::NoReply { .. } => ("no-reply", String::new()),
                RequestError::Undelivered { reason, .. } => ("undelivered", reason.clone()),
                other => ("undelivered", other.to_string()),
            };
            h.insert(STATUS, status);
            (h, Bytes::from(reason))
        }
    }
}

/// The answer to a request to `to` with `timeout`, from the wire.
pub(crate) fn reply(
    to: &str,
    timeout: Duration,
    headers: Option<&HeaderMap>,
    payload: Bytes,
) -> Result<Reply, RequestError> {
    let get = |name: &str| headers.and_then(|h| h.get(name)).map(|v| v.as_str());
    let reason = || {
        let text = String::from_utf8_lossy(&payload);
        airssys_wasm_core::text::escape(&text, 4096).into_owned()
    };
    let to = to.to_owned();
    match get(STATUS) {
        Some("ok") => {
            let ct = get(CONTENT_TYPE).unwrap_or("application/octet-stream");
            if ct.len() > MAX_CONTENT_TYPE || ct.chars().any(char::is_control) {
                return Err(RequestError::Undelivered {
                    to,
                    reason: "the reply's content type was malformed".into(),
                });
            }
            Ok(Reply::new(ct, payload))
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
        _ => Err(RequestError::Undelivered {
            to,
            reason: "the answer came from something that is not an airssys-wasm host".into(),
        }),
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
        let h = headers(&env, "host-a", Some(Duration::from_millis(1500)));
        let got = incoming(Some(&h), env.payload.clone()).unwrap();
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
    fn answers_keep_their_kind_and_bad_headers_are_refused() {
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
            let (h, body) = answer(&a);
            assert_eq!(reply("w", t, Some(&h), body), a);
        }
        assert!(matches!(
            reply("w", t, None, Bytes::new()),
            Err(RequestError::Undelivered { .. })
        ));
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, "x".repeat(300).as_str());
        assert!(incoming(Some(&h), Bytes::new()).is_err());
    }
}
