//! [`Cell`]: what an address stands for while its actor lives — the mailbox, the
//! topics it is subscribed to, its pending requests — and [`ActorRef`], the public
//! handle to it. A cell outlives the actor's instances: restarts keep it.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};

use crate::address::ActorAddress;
use crate::dead_letters::{DeadLetterReason, DeadLetters};
use crate::error::SendError;
use crate::mailbox::{Backpressure, Mailbox, MailboxConfig, Outstanding, Refused};
use crate::message::{MessageEnvelope, MessageKind, Reply, ReplyTo, RequestError, Requester};

/// An actor's address and mailbox.
#[derive(Debug)]
pub(crate) struct Cell {
    pub(crate) address: ActorAddress,
    pub(crate) mailbox: Mailbox,
    pub(crate) pending_requests: AtomicUsize,
    pub(crate) topics: Mutex<Vec<Arc<str>>>,
    pub(crate) dead_letters: Arc<DeadLetters>,
}

impl Cell {
    pub(crate) fn new(
        address: ActorAddress,
        mailbox: MailboxConfig,
        dead_letters: Arc<DeadLetters>,
        outstanding: Arc<Outstanding>,
    ) -> Self {
        Self {
            address,
            mailbox: Mailbox::new(mailbox, outstanding),
            pending_requests: AtomicUsize::new(0),
            topics: Mutex::new(Vec::new()),
            dead_letters,
        }
    }

    pub(crate) fn dead_letter(&self, env: MessageEnvelope, reason: DeadLetterReason) {
        self.dead_letters
            .record(&self.address.to_string(), env, reason);
    }

    /// Delivers `env`, waiting for room if the mailbox blocks (`wait`) — or refusing.
    /// Every message not delivered is a dead letter; a sender that is told (an error)
    /// gets no second answer to a request.
    pub(crate) async fn deliver(&self, env: MessageEnvelope, wait: bool) -> Result<(), SendError> {
        if !wait || self.mailbox.config.backpressure != Backpressure::Block {
            return self.deliver_now(env);
        }
        match self.mailbox.push(env).await {
            Ok(()) => Ok(()),
            Err(refused) => self.refused(refused),
        }
    }

    /// Delivers `env` without waiting: a full blocking mailbox refuses.
    pub(crate) fn deliver_now(&self, env: MessageEnvelope) -> Result<(), SendError> {
        match self.mailbox.try_push(env, false) {
            Ok(()) => Ok(()),
            Err(refused) => self.refused(refused),
        }
    }

    #[cold]
    fn refused(&self, refused: Refused) -> Result<(), SendError> {
        let to = || self.address.to_string();
        match refused {
            Refused::Dropped(env) => {
                self.dead_letter(env, DeadLetterReason::MailboxFull);
                Ok(())
            }
            Refused::Full(mut env) | Refused::WouldBlock(mut env) => {
                forget_reply(&mut env);
                self.dead_letter(env, DeadLetterReason::MailboxFull);
                Err(SendError::MailboxFull(to()))
            }
            Refused::Closed(mut env) => {
                forget_reply(&mut env);
                self.dead_letter(env, DeadLetterReason::Closed);
                Err(SendError::Closed(to()))
            }
        }
    }

    /// Stops the mailbox for good: what is in becomes dead letters.
    pub(crate) fn retire(&self) {
        self.mailbox.close();
        for env in self.mailbox.take_all() {
            self.dead_letter(env, DeadLetterReason::Stopped);
        }
    }
}

impl Requester for Cell {
    fn deliver_reply(&self, env: MessageEnvelope) {
        if let Err(refused) = self.mailbox.try_push(env, true) {
            let env = refused.into_message();
            self.dead_letter(env, DeadLetterReason::Closed);
        }
    }

    fn request_settled(&self) {
        self.pending_requests.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The sender was told: the request needs no other answer.
pub(crate) fn forget_reply(env: &mut MessageEnvelope) {
    if let Some(reply_to) = env.reply_to.take() {
        reply_to.forget();
    }
}

impl Refused {
    pub(crate) fn into_message(self) -> MessageEnvelope {
        match self {
            Self::Dropped(e) | Self::Full(e) | Self::WouldBlock(e) | Self::Closed(e) => e,
        }
    }
}

/// A handle to an actor: send it messages, ask it for replies. Cheap to clone; valid
/// across restarts (the mailbox is the actor's, not an instance's).
#[derive(Debug, Clone)]
pub struct ActorRef(pub(crate) Arc<Cell>);

impl ActorRef {
    /// The actor's address.
    pub fn address(&self) -> &ActorAddress {
        &self.0.address
    }

    /// Messages waiting in its mailbox.
    pub fn mailbox_len(&self) -> usize {
        self.0.mailbox.len()
    }

    /// Sends `env` (fire and forget). With a blocking mailbox, waits for room.
    ///
    /// # Errors
    ///
    /// [`SendError::MailboxFull`] (strategy `error`), [`SendError::Closed`].
    pub async fn tell(&self, env: MessageEnvelope) -> Result<(), SendError> {
        self.0.deliver(env, true).await
    }

    /// Sends `env` without waiting: a full blocking mailbox refuses.
    ///
    /// # Errors
    ///
    /// As [`tell`](Self::tell).
    pub fn try_tell(&self, env: MessageEnvelope) -> Result<(), SendError> {
        self.0.deliver_now(env)
    }

    /// Sends `env` as a request and waits for the reply, at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`RequestError`]: refused, timed out, the target failed or gave no reply.
    pub async fn request(
        &self,
        env: MessageEnvelope,
        timeout: Duration,
    ) -> Result<Reply, RequestError> {
        self.start_request(env, timeout, MessageKind::Request)
            .await?
            .reply()
            .await
    }

    /// Puts `env` in the mailbox as a request (waiting for room if it blocks) and
    /// returns at once with the reply to come; `timeout` covers both.
    /// As a `kind` message: a `Tell` is answered too — with no reply (or what its
    /// handler returned), or why it was not handled — without the handler seeing a
    /// request.
    pub(crate) async fn start_request(
        &self,
        mut env: MessageEnvelope,
        timeout: Duration,
        kind: MessageKind,
    ) -> Result<PendingReply, RequestError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let (tx, rx) = oneshot::channel();
        env.kind = kind;
        env.reply_to = Some(ReplyTo::caller(&self.0.address, tx));
        let to = self.0.address.to_string();
        match tokio::time::timeout_at(deadline, self.0.deliver(env, true)).await {
            Ok(Ok(())) => Ok(PendingReply {
                rx,
                to,
                deadline,
                timeout,
            }),
            Ok(Err(e)) => Err(RequestError::Undelivered {
                to,
                reason: e.to_string(),
            }),
            Err(_) => Err(RequestError::Timeout { to, timeout }),
        }
    }
}

/// A request in a mailbox whose reply is still to come (see
/// [`ActorSystem::request_local`](crate::ActorSystem::request_local)).
#[derive(Debug)]
pub struct PendingReply {
    rx: oneshot::Receiver<Result<Reply, RequestError>>,
    to: String,
    deadline: tokio::time::Instant,
    timeout: Duration,
}

impl PendingReply {
    /// Waits for the reply until the request's timeout.
    ///
    /// # Errors
    ///
    /// [`RequestError`]: timed out, the target failed or gave no reply.
    pub async fn reply(self) -> Result<Reply, RequestError> {
        match tokio::time::timeout_at(self.deadline, self.rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(RequestError::Undelivered {
                to: self.to,
                reason: "the request was dropped".into(),
            }),
            Err(_) => Err(RequestError::Timeout {
                to: self.to,
                timeout: self.timeout,
            }),
        }
    }
}

/// Tells an actor's incarnation to stop after the message it is handling.
#[derive(Debug, Default)]
pub(crate) struct StopSignal {
    fired: AtomicBool,
    notify: Notify,
}

impl StopSignal {
    pub(crate) fn fire(&self) {
        self.fired.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    pub(crate) fn fired(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }

    pub(crate) async fn wait(&self) {
        loop {
            let mut notified = pin!(self.notify.notified());
            notified.as_mut().enable();
            if self.fired() {
                return;
            }
            notified.await;
        }
    }
}

/// A future whose panic becomes an `Err` with the panic's message.
pub(crate) struct CatchUnwind<F>(pub(crate) F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(panic) => Poll::Ready(Err(panic_message(&*panic))),
        }
    }
}

/// A panic's message, as `panic!` was given it.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}
