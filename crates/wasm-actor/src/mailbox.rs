//! [`Mailbox`]: an actor's bounded queue of messages, by priority, with a
//! [`Backpressure`] strategy for when it is full. It belongs to the actor's address, not
//! to an instance: it survives restarts.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

pub use airssys_wasm_core::actor::Backpressure;

use crate::message::MessageEnvelope;

/// The capacity of a mailbox when none is given.
pub const DEFAULT_MAILBOX_CAPACITY: usize = 1024;

/// The payload bytes a mailbox holds when no other bound is given.
pub const DEFAULT_MAILBOX_BYTES: usize = 16 << 20;

/// A mailbox's size and strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MailboxConfig {
    /// The most messages it holds (replies to the actor's own requests aside, which
    /// its bound of pending requests bounds).
    pub capacity: usize,
    /// The most payload bytes it holds (a message alone in it may be larger: the
    /// system's bound on a message's size bounds that).
    pub max_bytes: usize,
    /// What happens when it is full.
    pub backpressure: Backpressure,
}

impl Default for MailboxConfig {
    fn default() -> Self {
        Self {
            capacity: DEFAULT_MAILBOX_CAPACITY,
            max_bytes: DEFAULT_MAILBOX_BYTES,
            backpressure: Backpressure::Error,
        }
    }
}

impl MailboxConfig {
    /// A mailbox of `capacity` messages (at least 1) with `backpressure`, holding at
    /// most [`DEFAULT_MAILBOX_BYTES`] of payloads.
    pub fn new(capacity: usize, backpressure: Backpressure) -> Self {
        Self {
            capacity: capacity.max(1),
            max_bytes: DEFAULT_MAILBOX_BYTES,
            backpressure,
        }
    }

    /// With at most `max_bytes` of payloads (at least 1).
    #[must_use]
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes.max(1);
        self
    }
}

/// Why a message was not put in a mailbox; the message comes back (by value: boxing it
/// would cost every refusal an allocation, and refusals are rare).
#[derive(Debug)]
pub(crate) enum Refused {
    /// Full, and the strategy is `Drop`: a dead letter.
    Dropped(MessageEnvelope),
    /// Full, and the strategy is `Error`: the sender is told.
    Full(MessageEnvelope),
    /// Full, and the strategy is `Block`: the sender may wait.
    WouldBlock(MessageEnvelope),
    /// Closed (stopping or stopped).
    Closed(MessageEnvelope),
}

#[derive(Debug, Default)]
struct Queues {
    by_priority: [VecDeque<MessageEnvelope>; 4],
    len: usize,
    bytes: usize,
    closed: bool,
    waiting_senders: usize,
}

/// Messages in a system's mailboxes or being handled: when none are, the system is
/// idle ([`ActorSystem::quiesce`](crate::ActorSystem::quiesce)).
#[derive(Debug, Default)]
pub(crate) struct Outstanding {
    count: AtomicUsize,
    idle: Notify,
}

impl Outstanding {
    fn add(&self, n: usize) {
        self.count.fetch_add(n, Ordering::AcqRel);
    }

    fn done(&self, n: usize) {
        if n > 0 && self.count.fetch_sub(n, Ordering::AcqRel) == n {
            self.idle.notify_waiters();
        }
    }

    /// Waits until no message is waiting or being handled.
    pub(crate) async fn idle(&self) {
        loop {
            let mut idle = pin!(self.idle.notified());
            idle.as_mut().enable();
            if self.count.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// A message taken out of a mailbox, until it has been handled (or dropped, also when
/// its instance is stopped where it was).
pub(crate) struct InHand(Arc<Outstanding>);

impl Drop for InHand {
    fn drop(&mut self) {
        self.0.done(1);
    }
}

/// A sender waiting for room, until it stops waiting (however it stops).
struct Waiting<'a>(&'a Mailbox);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.lock().waiting_senders -= 1;
    }
}

/// A bounded, prioritised, single-consumer queue.
#[derive(Debug)]
pub(crate) struct Mailbox {
    queues: Mutex<Queues>,
    ready: Notify,
    room: Notify,
    outstanding: Arc<Outstanding>,
    pub(crate) config: MailboxConfig,
}

impl Mailbox {
    pub(crate) fn new(config: MailboxConfig, outstanding: Arc<Outstanding>) -> Self {
        Self {
            queues: Mutex::new(Queues::default()),
            ready: Notify::new(),
            room: Notify::new(),
            outstanding,
            config,
        }
    }

    /// Marks a message taken out by `pop` as in hand, until the guard is dropped.
    pub(crate) fn in_hand(&self) -> InHand {
        InHand(self.outstanding.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queues> {
        self.queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Puts `env` in, unless full (`bypass_bound`: replies) or closed.
    #[allow(clippy::result_large_err)]
    pub(crate) fn try_push(&self, env: MessageEnvelope, bypass_bound: bool) -> Result<(), Refused> {
        let mut q = self.lock();
        if q.closed {
            return Err(Refused::Closed(env));
        }
        if !self.has_room(&q, env.payload.len()) && !bypass_bound {
            return Err(match self.config.backpressure {
                Backpressure::Drop => Refused::Dropped(env),
                Backpressure::Error => Refused::Full(env),
                Backpressure::Block => Refused::WouldBlock(env),
            });
        }
        q.bytes += env.payload.len();
        q.by_priority[env.priority as usize].push_back(env);
        q.len += 1;
        self.outstanding.add(1);
        drop(q);
        self.ready.notify_one();
        Ok(())
    }

    /// Puts `env` in, waiting for room when the strategy is `Block`.
    #[allow(clippy::result_large_err)]
    pub(crate) async fn push(&self, mut env: MessageEnvelope) -> Result<(), Refused> {
        loop {
            match self.try_push(env, false) {
                Err(Refused::WouldBlock(back)) => env = back,
                done => return done,
            }
            let mut room = pin!(self.room.notified());
            room.as_mut().enable();
            {
                let mut q = self.lock();
                if q.closed {
                    return Err(Refused::Closed(env));
                }
                if self.has_room(&q, env.payload.len()) {
                    continue;
                }
                q.waiting_senders += 1;
            }
            // Counted while waiting, also when the wait is abandoned (a guest's call
            // that timed out drops it).
            let _waiting = Waiting(self);
            room.await;
        }
    }

    /// Whether a message of `bytes` fits: under the capacity, and under the byte bound
    /// unless the mailbox is empty (a message alone always fits).
    fn has_room(&self, q: &Queues, bytes: usize) -> bool {
        q.len < self.config.capacity && (q.len == 0 || q.bytes + bytes <= self.config.max_bytes)
    }

    /// The next message by priority, waiting for one; `None` once closed and empty.
    pub(crate) async fn pop(&self) -> Option<MessageEnvelope> {
        loop {
            match self.try_pop() {
                Ok(next) => return next,
                Err(()) => self.ready.notified().await,
            }
        }
    }

    /// The next message by priority if there is one (`Ok(None)`: closed and empty;
    /// `Err(())`: empty, wait).
    pub(crate) fn try_pop(&self) -> Result<Option<MessageEnvelope>, ()> {
        let mut q = self.lock();
        if let Some(env) = take_next(&mut q) {
            let wake = q.waiting_senders > 0;
            drop(q);
            if wake {
                self.room.notify_one();
            }
            return Ok(Some(env));
        }
        if q.closed { Ok(None) } else { Err(()) }
    }

    /// Messages waiting.
    pub(crate) fn len(&self) -> usize {
        self.lock().len
    }

    /// Refuses new messages from now on (what is in stays, for a drain); wakes the
    /// consumer and every waiting sender.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
        self.room.notify_waiters();
    }

    /// Takes everything still in it.
    pub(crate) fn take_all(&self) -> Vec<MessageEnvelope> {
        let mut q = self.lock();
        let mut all = Vec::with_capacity(q.len);
        while let Some(env) = take_next(&mut q) {
            all.push(env);
        }
        drop(q);
        self.room.notify_waiters();
        // Taken to be dead letters: no longer waiting.
        self.outstanding.done(all.len());
        all
    }
}

fn take_next(q: &mut Queues) -> Option<MessageEnvelope> {
    let env = q
        .by_priority
        .iter_mut()
        .rev()
        .find_map(VecDeque::pop_front)?;
    q.len -= 1;
    q.bytes -= env.payload.len();
    Some(env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::MessagePriority;

    /// Lets the other tasks of this (single-threaded) test runtime run until they wait.
    async fn settle() {
        for _ in 0..16 {
            tokio::task::yield_now().await;
        }
    }

    /// A sender pushing `bytes` bytes on its own task: whether it got in.
    fn push_later(m: &Arc<Mailbox>, bytes: usize) -> tokio::task::JoinHandle<bool> {
        let m = m.clone();
        tokio::spawn(async move {
            m.push(MessageEnvelope::new("x", vec![0u8; bytes]))
                .await
                .is_ok()
        })
    }

    fn msg(text: &str, p: MessagePriority) -> MessageEnvelope {
        MessageEnvelope::text(text).with_priority(p)
    }

    #[tokio::test]
    async fn higher_priorities_first_and_fifo_within_one() {
        let m = Mailbox::new(MailboxConfig::new(10, Backpressure::Error), Arc::default());
        for (t, p) in [
            ("n1", MessagePriority::Normal),
            ("l1", MessagePriority::Low),
            ("c1", MessagePriority::Critical),
            ("n2", MessagePriority::Normal),
            ("h1", MessagePriority::High),
        ] {
            m.try_push(msg(t, p), false).unwrap();
        }
        let mut order = Vec::new();
        for _ in 0..5 {
            order.push(m.pop().await.unwrap().payload_text().unwrap().to_owned());
        }
        assert_eq!(order, ["c1", "h1", "n1", "n2", "l1"]);
    }

    #[tokio::test]
    async fn a_full_mailbox_refuses_by_its_strategy_and_replies_pass() {
        for (strategy, want) in [
            (Backpressure::Drop, "dropped"),
            (Backpressure::Error, "full"),
            (Backpressure::Block, "would block"),
        ] {
            let m = Mailbox::new(MailboxConfig::new(2, strategy), Arc::default());
            m.try_push(MessageEnvelope::text("a"), false).unwrap();
            m.try_push(MessageEnvelope::text("b"), false).unwrap();
            let got = match m.try_push(MessageEnvelope::text("c"), false) {
                Err(Refused::Dropped(_)) => "dropped",
                Err(Refused::Full(_)) => "full",
                Err(Refused::WouldBlock(_)) => "would block",
                other => panic!("{other:?}"),
            };
            assert_eq!(got, want);
            m.try_push(MessageEnvelope::text("reply"), true).unwrap();
            assert_eq!(m.len(), 3);
        }
    }

    #[tokio::test]
    async fn payload_bytes_are_bounded_but_one_message_always_fits() {
        let m = Mailbox::new(
            MailboxConfig::new(100, Backpressure::Error).with_max_bytes(10),
            Arc::default(),
        );
        let big = || MessageEnvelope::new("x", vec![0u8; 25]);
        m.try_push(big(), false).unwrap();
        assert!(matches!(
            m.try_push(MessageEnvelope::text("a"), false),
            Err(Refused::Full(_))
        ));
        m.pop().await.unwrap();
        for _ in 0..10 {
            m.try_push(MessageEnvelope::text("a"), false).unwrap();
        }
        assert!(matches!(
            m.try_push(MessageEnvelope::text("a"), false),
            Err(Refused::Full(_))
        ));
        assert_eq!(m.len(), 10);
    }

    #[tokio::test]
    async fn a_sender_blocked_on_bytes_waits_until_they_fit() {
        let m = Arc::new(Mailbox::new(
            MailboxConfig::new(100, Backpressure::Block).with_max_bytes(10),
            Arc::default(),
        ));
        m.try_push(MessageEnvelope::new("x", vec![0u8; 5]), false)
            .unwrap();
        m.try_push(MessageEnvelope::new("x", vec![0u8; 4]), false)
            .unwrap();
        // 9 of 10 bytes held: 8 more do not fit, and the sender must wait (not spin).
        let sender = push_later(&m, 8);
        settle().await;
        assert!(!sender.is_finished());
        m.pop().await.unwrap();
        settle().await;
        assert!(!sender.is_finished(), "4 + 8 bytes still do not fit");
        m.pop().await.unwrap();
        assert!(sender.await.unwrap());
        assert_eq!(m.len(), 1);
        // 8 bytes held: another 8 wait; an abandoned wait is no longer counted.
        let waiting = push_later(&m, 8);
        settle().await;
        waiting.abort();
        let _ = waiting.await;
        assert_eq!(m.lock().waiting_senders, 0);
    }

    #[tokio::test]
    async fn a_blocked_sender_goes_on_when_there_is_room_and_fails_when_closed() {
        let m = Arc::new(Mailbox::new(
            MailboxConfig::new(1, Backpressure::Block),
            Arc::default(),
        ));
        m.try_push(MessageEnvelope::text("a"), false).unwrap();
        let sender = tokio::spawn({
            let m = m.clone();
            async move { m.push(MessageEnvelope::text("b")).await.is_ok() }
        });
        settle().await;
        assert!(
            !sender.is_finished(),
            "the sender must wait while the mailbox is full"
        );
        assert_eq!(m.pop().await.unwrap().payload_text(), Some("a"));
        assert!(sender.await.unwrap());
        assert_eq!(m.pop().await.unwrap().payload_text(), Some("b"));

        m.try_push(MessageEnvelope::text("c"), false).unwrap();
        let blocked = tokio::spawn({
            let m = m.clone();
            async move {
                matches!(
                    m.push(MessageEnvelope::text("d")).await,
                    Err(Refused::Closed(_))
                )
            }
        });
        settle().await;
        m.close();
        assert!(
            blocked.await.unwrap(),
            "closing releases a blocked sender with an error"
        );
        assert_eq!(
            m.pop().await.unwrap().payload_text(),
            Some("c"),
            "closing keeps what is in"
        );
        assert!(m.pop().await.is_none());
    }
}
