//! Messages: [`MessageEnvelope`] (a payload of bytes with its content type, priority,
//! sender, correlation id and time to live), the [`Reply`] to a request and why a
//! request got none ([`RequestError`]). Messages are bytes with a media type — as on a
//! wire — so Rust actors and components read the same messages, and an address can
//! later lead to another machine.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::address::ActorAddress;

/// The order a mailbox hands messages out in: higher first, first in first out within
/// one priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum MessagePriority {
    /// Background work.
    Low = 0,
    /// The default.
    #[default]
    Normal = 1,
    /// Ahead of normal traffic.
    High = 2,
    /// Ahead of everything else.
    Critical = 3,
}

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// Fire and forget.
    Tell,
    /// Expects a reply: what the handler returns goes back to the requester.
    Request,
    /// The reply to the receiver's own request (same correlation id).
    Reply,
    /// The receiver's request got no reply; the payload (`text/plain`) says why.
    RequestFailed,
}

/// A message: a payload of bytes and everything about it.
#[derive(Debug)]
pub struct MessageEnvelope {
    /// What it is.
    pub kind: MessageKind,
    /// Who sent it, when an actor did.
    pub sender: Option<ActorAddress>,
    /// Set on requests, replies and failed requests.
    pub correlation_id: Option<u64>,
    /// Its place in the mailbox.
    pub priority: MessagePriority,
    /// The payload's media type (`application/json`, `text/plain`, …).
    pub content_type: Arc<str>,
    /// The topic, when it was published.
    pub topic: Option<Arc<str>>,
    /// When it was sent.
    pub timestamp: SystemTime,
    /// How long it may wait in a mailbox; past that it goes to the dead letters.
    pub ttl: Option<Duration>,
    /// The payload.
    pub payload: Bytes,
    /// For a message from a durable mailbox (on another host, through NATS JetStream):
    /// its id in the store, the same when it is delivered again after a crash — what a
    /// handler deduplicates by. A component sees it as the envelope's `correlation-id`
    /// of a tell.
    pub message_id: Option<u64>,
    pub(crate) sent: Instant,
    pub(crate) reply_to: Option<ReplyTo>,
}

impl MessageEnvelope {
    /// A message to tell (fire and forget).
    pub fn new(content_type: impl Into<Arc<str>>, payload: impl Into<Bytes>) -> Self {
        Self {
            kind: MessageKind::Tell,
            sender: None,
            correlation_id: None,
            priority: MessagePriority::Normal,
            content_type: content_type.into(),
            topic: None,
            timestamp: SystemTime::now(),
            ttl: None,
            payload: payload.into(),
            message_id: None,
            sent: Instant::now(),
            reply_to: None,
        }
    }

    /// A `text/plain` message.
    pub fn text(text: impl Into<String>) -> Self {
        Self::new(text_plain(), Bytes::from(text.into()))
    }

    /// With another priority.
    #[must_use]
    pub fn with_priority(mut self, priority: MessagePriority) -> Self {
        self.priority = priority;
        self
    }

    /// With a time to live: a message still in the mailbox after `ttl` is not handled
    /// but goes to the dead letters (and a request gets an error).
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// With a sender's address (replies of a Rust caller do not need one).
    #[must_use]
    pub fn with_sender(mut self, sender: ActorAddress) -> Self {
        self.sender = Some(sender);
        self
    }

    /// The payload as text, when it is UTF-8.
    pub fn payload_text(&self) -> Option<&str> {
        std::str::from_utf8(&self.payload).ok()
    }

    /// Whether its time to live has run out.
    pub(crate) fn expired(&self) -> bool {
        self.ttl.is_some_and(|ttl| self.sent.elapsed() > ttl)
    }

    /// A copy without the reply handle (for dead letters and publishing).
    pub(crate) fn copy(&self) -> Self {
        Self {
            kind: self.kind,
            sender: self.sender.clone(),
            correlation_id: self.correlation_id,
            priority: self.priority,
            content_type: self.content_type.clone(),
            topic: self.topic.clone(),
            timestamp: self.timestamp,
            ttl: self.ttl,
            payload: self.payload.clone(),
            message_id: self.message_id,
            sent: self.sent,
            reply_to: None,
        }
    }
}

/// `text/plain`.
pub const TEXT_PLAIN: &str = "text/plain";

/// `text/plain`, shared (a content type per message would be an allocation each).
fn text_plain() -> Arc<str> {
    static SHARED: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| TEXT_PLAIN.into());
    SHARED.clone()
}

/// The reply to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The payload's media type.
    pub content_type: Arc<str>,
    /// The payload.
    pub payload: Bytes,
}

impl Reply {
    /// A reply.
    pub fn new(content_type: impl Into<Arc<str>>, payload: impl Into<Bytes>) -> Self {
        Self {
            content_type: content_type.into(),
            payload: payload.into(),
        }
    }

    /// A `text/plain` reply.
    pub fn text(text: impl Into<String>) -> Self {
        Self::new(text_plain(), Bytes::from(text.into()))
    }

    /// The payload as text, when it is UTF-8.
    pub fn payload_text(&self) -> Option<&str> {
        std::str::from_utf8(&self.payload).ok()
    }
}

/// Why a request got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// No reply within the timeout.
    #[error("no reply from `{to}` within {timeout:?}")]
    Timeout {
        /// The target.
        to: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The target failed while handling it (the reason, as its supervisor logs it).
    #[error("`{to}` failed while handling the request: {reason}")]
    Failed {
        /// The target.
        to: String,
        /// Why it failed.
        reason: String,
    },
    /// The request was not delivered or not handled (dead letter): why.
    #[error("the request to `{to}` was not handled: {reason}")]
    Undelivered {
        /// The target.
        to: String,
        /// Why (unknown address, full mailbox, stopped, expired).
        reason: String,
    },
    /// The target handled it and returned no reply.
    #[error("`{to}` handled the request and returned no reply")]
    NoReply {
        /// The target.
        to: String,
    },
}

/// Where the reply to a request goes: a Rust caller waiting on a channel, or an actor's
/// mailbox (as a later message). Dropped without a reply, it sends the requester an
/// error — a request is answered exactly once whatever happens to it.
#[derive(Debug)]
pub(crate) struct ReplyTo {
    target: Option<ReplyTarget>,
    to: String,
}

#[derive(Debug)]
enum ReplyTarget {
    Caller(oneshot::Sender<Result<Reply, RequestError>>),
    Actor(Arc<PendingRequest>),
}

/// Where an actor's answers to its own requests go: its cell (`cell.rs`), seen from
/// here only as this.
pub(crate) trait Requester: Send + Sync + std::fmt::Debug {
    /// A reply or failure to one of its requests, past its mailbox's bounds.
    fn deliver_reply(&self, env: MessageEnvelope);
    /// One request fewer is waiting for its answer.
    fn request_settled(&self);
}

/// A request an actor made and waits for as a message: answered once, by the reply,
/// by a failure or by its timer, whichever comes first.
#[derive(Debug)]
pub(crate) struct PendingRequest {
    pub(crate) requester: std::sync::Weak<dyn Requester>,
    pub(crate) correlation_id: u64,
    answered: AtomicBool,
    timer: std::sync::Mutex<Option<tokio::task::AbortHandle>>,
}

impl PendingRequest {
    pub(crate) fn new(requester: std::sync::Weak<dyn Requester>, correlation_id: u64) -> Self {
        Self {
            requester,
            correlation_id,
            answered: AtomicBool::new(false),
            timer: std::sync::Mutex::new(None),
        }
    }

    /// The task that answers with a timeout: stopped when another answer comes first,
    /// so that answered requests hold no timer.
    pub(crate) fn set_timer(&self, timer: tokio::task::AbortHandle) {
        if self.answered.load(Ordering::Acquire) {
            timer.abort();
            return;
        }
        *self.lock_timer() = Some(timer);
        if self.answered.load(Ordering::Acquire) {
            self.stop_timer();
        }
    }

    fn lock_timer(&self) -> std::sync::MutexGuard<'_, Option<tokio::task::AbortHandle>> {
        self.timer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn stop_timer(&self) {
        if let Some(timer) = self.lock_timer().take() {
            timer.abort();
        }
    }

    /// Delivers the answer unless one was delivered already; whether this one was.
    pub(crate) fn answer(&self, answer: Result<Reply, RequestError>) -> bool {
        if self.answered.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.stop_timer();
        let Some(cell) = self.requester.upgrade() else {
            return true;
        };
        cell.request_settled();
        let mut env = match answer {
            Ok(reply) => {
                let mut env = MessageEnvelope::new(reply.content_type, reply.payload);
                env.kind = MessageKind::Reply;
                env
            }
            Err(e) => {
                let mut env = MessageEnvelope::text(e.to_string());
                env.kind = MessageKind::RequestFailed;
                env
            }
        };
        env.correlation_id = Some(self.correlation_id);
        // Replies are not held back by the mailbox's bound: the requester's own bound
        // of pending requests bounds them.
        cell.deliver_reply(env);
        true
    }

    /// Marks it answered without delivering anything (the request was refused at
    /// once and the requester was told so).
    pub(crate) fn cancel(&self) {
        if !self.answered.swap(true, Ordering::AcqRel) {
            self.stop_timer();
            if let Some(cell) = self.requester.upgrade() {
                cell.request_settled();
            }
        }
    }
}

impl ReplyTo {
    pub(crate) fn caller(
        to: &ActorAddress,
        tx: oneshot::Sender<Result<Reply, RequestError>>,
    ) -> Self {
        Self {
            target: Some(ReplyTarget::Caller(tx)),
            to: to.to_string(),
        }
    }

    pub(crate) fn actor(to: &ActorAddress, pending: Arc<PendingRequest>) -> Self {
        Self {
            target: Some(ReplyTarget::Actor(pending)),
            to: to.to_string(),
        }
    }

    /// The address the request went to.
    pub(crate) fn to(&self) -> &str {
        &self.to
    }

    /// Answers the request.
    pub(crate) fn answer(mut self, answer: Result<Reply, RequestError>) {
        if let Some(target) = self.target.take() {
            match target {
                ReplyTarget::Caller(tx) => {
                    let _gone = tx.send(answer);
                }
                ReplyTarget::Actor(pending) => {
                    pending.answer(answer);
                }
            }
        }
    }

    /// Forgets the request without answering (it was refused and the requester told).
    pub(crate) fn forget(mut self) {
        if let Some(ReplyTarget::Actor(pending)) = self.target.take() {
            pending.cancel();
        }
    }
}

impl Drop for ReplyTo {
    fn drop(&mut self) {
        if self.target.is_some() {
            let to = std::mem::take(&mut self.to);
            let reason = "the request was dropped before it was handled".to_owned();
            ReplyTo {
                target: self.target.take(),
                to: to.clone(),
            }
            .answer(Err(RequestError::Undelivered { to, reason }));
        }
    }
}
