//! [`DeadLetters`]: every message that was not handled — refused by a full mailbox,
//! sent to no one, expired, left in a stopped actor's mailbox, or being handled when
//! its actor failed — counted, logged (target [`DEAD_LETTER_TARGET`]) and the latest
//! kept. Never silent.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use crate::message::{MessageEnvelope, MessageKind, RequestError};

/// The `tracing` target of dead letters.
pub const DEAD_LETTER_TARGET: &str = "airssys_wasm::dead_letters";

/// How many dead letters are kept for [`DeadLetters::recent`].
pub const RECENT_DEAD_LETTERS: usize = 256;

/// At most this many dead letters a second are logged one by one; the rest are counted
/// (and logged as a sum once a second), so that a flood cannot flood the log.
pub const DEAD_LETTER_LOG_RATE: u64 = 100;

/// Why a message became a dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeadLetterReason {
    /// No actor has the address.
    NotFound,
    /// The mailbox was full (strategy `drop`, or a publish).
    MailboxFull,
    /// The actor was stopping or stopped.
    Closed,
    /// Its time to live ran out in the mailbox.
    Expired,
    /// The actor failed while handling it (the failure).
    HandlerFailed(String),
    /// Left in the mailbox when the actor stopped for good.
    Stopped,
}

impl std::fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotFound => f.write_str("no actor has this address"),
            Self::MailboxFull => f.write_str("the mailbox was full"),
            Self::Closed => f.write_str("the actor was stopping or stopped"),
            Self::Expired => f.write_str("its time to live ran out in the mailbox"),
            Self::HandlerFailed(why) => write!(f, "the actor failed while handling it: {why}"),
            Self::Stopped => f.write_str("left in the mailbox when the actor stopped"),
        }
    }
}

/// One dead letter (without its payload).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DeadLetter {
    /// When.
    pub at: SystemTime,
    /// Its address.
    pub to: String,
    /// Its sender.
    pub from: Option<String>,
    /// Its content type.
    pub content_type: String,
    /// Its size.
    pub payload_bytes: usize,
    /// What it was.
    pub kind: MessageKind,
    /// Why it was not handled.
    pub reason: DeadLetterReason,
}

/// The dead letters of a system.
#[derive(Debug, Default)]
pub struct DeadLetters {
    count: AtomicU64,
    recent: Mutex<VecDeque<DeadLetter>>,
    logged: Mutex<(u64, u64)>,
}

impl DeadLetters {
    /// How many there have been.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The latest (at most [`RECENT_DEAD_LETTERS`]), oldest first.
    pub fn recent(&self) -> Vec<DeadLetter> {
        lock(&self.recent).iter().cloned().collect()
    }

    /// Records `env` as a dead letter; a request among them is answered with an error.
    pub(crate) fn record(&self, to: &str, mut env: MessageEnvelope, reason: DeadLetterReason) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let letter = DeadLetter {
            at: SystemTime::now(),
            to: to.to_owned(),
            from: env.sender.as_ref().map(ToString::to_string),
            content_type: env.content_type.to_string(),
            payload_bytes: env.payload.len(),
            kind: env.kind,
            reason,
        };
        if let Some(reply_to) = env.reply_to.take() {
            let to = reply_to.to().to_owned();
            let answer = match &letter.reason {
                DeadLetterReason::HandlerFailed(why) => RequestError::Failed {
                    to,
                    reason: why.clone(),
                },
                other => RequestError::Undelivered {
                    to,
                    reason: other.to_string(),
                },
            };
            reply_to.answer(Err(answer));
        }
        self.log(&letter);
        let mut recent = lock(&self.recent);
        if recent.len() == RECENT_DEAD_LETTERS {
            recent.pop_front();
        }
        recent.push_back(letter);
    }

    fn log(&self, letter: &DeadLetter) {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut logged = lock(&self.logged);
        let (second, in_second) = &mut *logged;
        if *second != now {
            if *in_second > DEAD_LETTER_LOG_RATE {
                tracing::warn!(
                    target: DEAD_LETTER_TARGET,
                    "{} more dead letters in the last second were counted, not logged",
                    *in_second - DEAD_LETTER_LOG_RATE
                );
            }
            *second = now;
            *in_second = 0;
        }
        *in_second += 1;
        if *in_second <= DEAD_LETTER_LOG_RATE {
            tracing::warn!(
                target: DEAD_LETTER_TARGET,
                to = %letter.to,
                from = letter.from.as_deref().unwrap_or("-"),
                content_type = %airssys_wasm_core::text::escape(&letter.content_type, 64),
                bytes = letter.payload_bytes,
                "dead letter: {}",
                letter.reason
            );
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
