//! [`ActorSystem`]: the registry of addresses (and pools, round robin), the topics (publish and subscribe),
//! requests and their timeouts, the components actors may spawn, the dead letters,
//! the supervisors' events — and the root of the supervision tree. Addresses it does
//! not hold go to its [`Remote`], when it has one (other processes and machines).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use crate::address::{ActorAddress, check_name, cut};
use crate::cell::{ActorRef, Cell, PendingReply};
use crate::component::ComponentActor;
use crate::dead_letters::{DeadLetterReason, DeadLetters};
use crate::error::{ActorSystemError, SendError};
use crate::mailbox::{MailboxConfig, Outstanding};
use crate::message::{MessageEnvelope, MessageKind, PendingRequest, Reply, ReplyTo, RequestError};
use crate::remote::Remote;
use crate::supervisor::SupervisorEvent;
use crate::supervisor::run::{Control, SupervisorLink, start};
use crate::supervisor::spec::SupervisorSpec;

/// The system's bounds: what one actor may make the host hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SystemLimits {
    /// The largest payload, in bytes (default 1 MiB).
    pub max_message_bytes: usize,
    /// Requests one actor may have waiting for replies (default 64). Replies pass the
    /// mailbox's bounds, so this times `max_message_bytes` bounds what they may hold.
    pub max_pending_requests: usize,
    /// The longest request timeout an actor may ask for (default 5 minutes).
    pub max_request_timeout: Duration,
    /// Topics one actor may be subscribed to (default 64).
    pub max_subscriptions: usize,
}

impl Default for SystemLimits {
    fn default() -> Self {
        Self {
            max_message_bytes: 1 << 20,
            max_pending_requests: 64,
            max_request_timeout: Duration::from_secs(300),
            max_subscriptions: 64,
        }
    }
}

/// An actor system: Rust actors and component actors under one supervision tree,
/// messaging each other by address. Cheap to clone.
#[derive(Clone)]
pub struct ActorSystem(Arc<Inner>);

impl std::fmt::Debug for ActorSystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorSystem").finish_non_exhaustive()
    }
}

struct Inner {
    names: RwLock<HashMap<Arc<str>, Arc<Cell>>>,
    anonymous: RwLock<HashMap<u64, Arc<Cell>>>,
    topics: RwLock<HashMap<Arc<str>, Vec<Arc<Cell>>>>,
    pools: RwLock<HashMap<Arc<str>, Arc<Pool>>>,
    components: RwLock<HashMap<String, ComponentActor>>,
    dead_letters: Arc<DeadLetters>,
    outstanding: Arc<Outstanding>,
    events: broadcast::Sender<SupervisorEvent>,
    next_id: AtomicU64,
    root: Mutex<Option<SupervisorLink>>,
    terminated: watch::Sender<Option<String>>,
    limits: SystemLimits,
    remote: RwLock<Option<Arc<dyn Remote>>>,
}

/// Where a message goes.
enum Route {
    Here(Arc<Cell>, MessageEnvelope),
    /// To the actor of this name on another system.
    Away(Arc<dyn Remote>, Arc<str>, MessageEnvelope),
}

/// How many supervisor events a slow reader of [`ActorSystem::events`] may fall behind.
pub const EVENT_BUFFER: usize = 4096;

impl Default for ActorSystem {
    fn default() -> Self {
        Self::new(SystemLimits::default())
    }
}

impl ActorSystem {
    /// An empty system with these bounds.
    pub fn new(limits: SystemLimits) -> Self {
        Self(Arc::new(Inner {
            names: RwLock::default(),
            anonymous: RwLock::default(),
            topics: RwLock::default(),
            pools: RwLock::default(),
            components: RwLock::default(),
            dead_letters: Arc::default(),
            outstanding: Arc::default(),
            events: broadcast::channel(EVENT_BUFFER).0,
            next_id: AtomicU64::new(1),
            root: Mutex::new(None),
            terminated: watch::channel(None).0,
            limits,
            remote: RwLock::default(),
        }))
    }

    /// Sends what this system does not hold to `remote` (other processes or
    /// machines) from now on, and tells it every name served here.
    pub fn set_remote(&self, remote: Arc<dyn Remote>) {
        let names: Vec<Arc<str>> = read(&self.0.names)
            .keys()
            .chain(read(&self.0.pools).keys())
            .cloned()
            .collect();
        for name in &names {
            remote.serve(name);
        }
        let topics: Vec<Arc<str>> = read(&self.0.topics).keys().cloned().collect();
        for topic in &topics {
            remote.subscribe(topic);
        }
        *write(&self.0.remote) = Some(remote);
    }

    /// A handle that does not keep the system alive (for a transport, which the
    /// system holds).
    pub fn downgrade(&self) -> WeakActorSystem {
        WeakActorSystem(Arc::downgrade(&self.0))
    }

    /// Whether the actor or pool `name` is held by this system.
    pub fn holds(&self, name: &str) -> bool {
        read(&self.0.names).contains_key(name) || read(&self.0.pools).contains_key(name)
    }

    /// The names served here: named actors and pools.
    pub fn local_names(&self) -> Vec<String> {
        read(&self.0.names)
            .keys()
            .chain(read(&self.0.pools).keys())
            .map(|n| n.to_string())
            .collect()
    }

    fn remote(&self) -> Option<Arc<dyn Remote>> {
        read(&self.0.remote).clone()
    }

    /// Its bounds.
    pub fn limits(&self) -> &SystemLimits {
        &self.0.limits
    }

    /// Starts the supervision tree `root`: checked first (names valid and unique),
    /// then every actor started in order, each after the one before it has started.
    ///
    /// # Errors
    ///
    /// [`ActorSystemError`]: a bad tree, a name taken, an actor that failed to start
    /// (what had started is stopped again).
    pub async fn start(&self, root: SupervisorSpec) -> Result<(), ActorSystemError> {
        root.check()?;
        if lock(&self.0.root).is_some() {
            return Err(ActorSystemError::NotRunning(
                "this system has a supervision tree already".into(),
            ));
        }
        let link = start(root, self.clone(), None).await?;
        *lock(&self.0.root) = Some(link);
        Ok(())
    }

    /// Drains and stops every actor in reverse start order (each within its shutdown
    /// policy), then returns. What is left in mailboxes goes to the dead letters.
    pub async fn shutdown(&self) {
        let root = lock(&self.0.root).take();
        if let Some(root) = root {
            root.shutdown().await;
        }
        self.0.terminated.send_if_modified(|t| {
            if t.is_none() {
                *t = Some("shut down".into());
                true
            } else {
                false
            }
        });
    }

    /// Why the system ended, once it has (shut down, or the root supervisor gave up).
    pub fn terminated(&self) -> Option<String> {
        self.0.terminated.borrow().clone()
    }

    /// Waits until the system ends; why.
    pub async fn wait_terminated(&self) -> String {
        let mut rx = self.0.terminated.subscribe();
        loop {
            if let Some(reason) = rx.borrow_and_update().clone() {
                return reason;
            }
            if rx.changed().await.is_err() {
                return "the system was dropped".into();
            }
        }
    }

    /// Waits until no message is waiting in a mailbox or being handled — the work that
    /// messages started has finished (a request's timeout still pending may deliver one
    /// later). For tests, scripts and orderly hand-overs.
    pub async fn quiesce(&self) {
        self.0.outstanding.idle().await;
    }

    /// The supervisors' events from now on.
    pub fn events(&self) -> broadcast::Receiver<SupervisorEvent> {
        self.0.events.subscribe()
    }

    /// The dead letters.
    pub fn dead_letters(&self) -> &DeadLetters {
        &self.0.dead_letters
    }

    /// The actor named `name`.
    pub fn lookup(&self, name: &str) -> Option<ActorRef> {
        read(&self.0.names).get(name).cloned().map(ActorRef)
    }

    /// Live actors (named and spawned).
    pub fn actor_count(&self) -> usize {
        read(&self.0.names).len() + read(&self.0.anonymous).len()
    }

    /// Starts the actor `child` under the root supervisor of a running system, by its
    /// name and with its restart and shutdown policies: an actor that lives only while
    /// something decides so (a cluster's singleton). Returns once it is registered; its
    /// start follows (a failed start is the root's to deal with, as any child's).
    ///
    /// # Errors
    ///
    /// [`ActorSystemError::NotRunning`] (no tree, or `child` is a supervisor), or its
    /// name invalid or taken.
    pub fn start_child(&self, child: crate::ChildSpec) -> Result<(), ActorSystemError> {
        let crate::supervisor::spec::ChildKind::Actor(factory) = child.kind.clone() else {
            return Err(ActorSystemError::NotRunning(
                "only an actor can be started in a running system, not a supervisor".into(),
            ));
        };
        let Some(root) = lock(&self.0.root).clone() else {
            return Err(ActorSystemError::NotRunning(
                "the system has no supervision tree (start it first)".into(),
            ));
        };
        let cell = self.register_named(&child.name, child.mailbox)?;
        if !root.tell(Control::Spawn {
            cell: cell.clone(),
            factory,
            restart: child.restart,
            shutdown: child.shutdown,
        }) {
            self.unregister(&cell);
            return Err(ActorSystemError::NotRunning("the system has ended".into()));
        }
        Ok(())
    }

    /// Drains and stops the actor `name` started by [`start_child`](Self::start_child)
    /// (or any child of the root), and releases its name; whether there was one.
    pub async fn stop_child(&self, name: &str) -> bool {
        let Some(root) = lock(&self.0.root).clone() else {
            return false;
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        root.tell(Control::Stop(name.to_owned(), tx)) && rx.await.unwrap_or(false)
    }

    /// Makes `component` available to actors that may spawn (their `spawn` grant), by
    /// `name`.
    pub fn register_component(&self, name: &str, component: ComponentActor) {
        write(&self.0.components).insert(name.to_owned(), component);
    }

    /// Sends `env` to `to` (waiting for room if its mailbox blocks).
    ///
    /// # Errors
    ///
    /// [`SendError`]: unknown address, full, closed, too large.
    pub async fn send(&self, to: &ActorAddress, env: MessageEnvelope) -> Result<(), SendError> {
        // A durable mailbox takes every tell through the transport's store, from here too.
        if let (ActorAddress::Named(name), Some(remote)) = (to, self.remote())
            && remote.durable(name)
        {
            self.check_size(&env)?;
            return remote.store(name, env).await;
        }
        match self.route(to, env)? {
            Route::Here(cell, env) => cell.deliver(env, true).await,
            Route::Away(remote, name, env) => remote.send(&name, env).await,
        }
    }

    /// Delivers `env` to the actor named `to` (or spawned here, `$N`) on this system
    /// only (waiting for room if its mailbox blocks): what a transport does with a
    /// message from another.
    ///
    /// # Errors
    ///
    /// [`SendError`]: unknown here, full, closed, too large.
    pub async fn deliver_local(&self, to: &str, env: MessageEnvelope) -> Result<(), SendError> {
        self.check_size(&env)?;
        match self.resolve_name(to) {
            Some(cell) => cell.deliver(env, true).await,
            None => {
                ActorAddress::parse(to).map_err(SendError::Invalid)?;
                self.0
                    .dead_letters
                    .record(to, env, DeadLetterReason::NotFound);
                Err(SendError::NotFound(to.to_owned()))
            }
        }
    }

    /// Puts a request to the actor named `to` (or `$N`) on this system only in its mailbox
    /// (waiting for room if it blocks), and returns the reply to come; `timeout`
    /// covers both: what a transport does with a request from another — the next
    /// message can be delivered while this one is answered, in the order sent.
    ///
    /// # Errors
    ///
    /// [`RequestError`].
    pub async fn request_local(
        &self,
        to: &str,
        env: MessageEnvelope,
        timeout: Duration,
    ) -> Result<PendingReply, RequestError> {
        self.start_local(to, env, timeout, MessageKind::Request)
            .await
    }

    /// Puts a tell to the actor named `to` on this system only in its mailbox and
    /// returns what becomes of it within `timeout`: handled (`Ok`, or
    /// [`RequestError::NoReply`]), failed while handled ([`RequestError::Failed`]), or
    /// not handled (dead letter: [`RequestError::Undelivered`]). The handler sees a
    /// tell. What a transport with acknowledgements (a durable mailbox) does.
    ///
    /// # Errors
    ///
    /// [`RequestError`]: not delivered, or no room within `timeout`.
    pub async fn deliver_local_tracked(
        &self,
        to: &str,
        env: MessageEnvelope,
        timeout: Duration,
    ) -> Result<PendingReply, RequestError> {
        self.start_local(to, env, timeout, MessageKind::Tell).await
    }

    /// `env` as a `kind` message into the mailbox of `to` on this system only, its
    /// answer to come.
    async fn start_local(
        &self,
        to: &str,
        env: MessageEnvelope,
        timeout: Duration,
        kind: MessageKind,
    ) -> Result<PendingReply, RequestError> {
        let undelivered = |reason: String| RequestError::Undelivered {
            to: to.to_owned(),
            reason,
        };
        self.check_size(&env)
            .map_err(|e| undelivered(e.to_string()))?;
        match self.resolve_name(to) {
            Some(cell) => ActorRef(cell).start_request(env, timeout, kind).await,
            None => {
                ActorAddress::parse(to).map_err(undelivered)?;
                Err(undelivered(SendError::NotFound(to.to_owned()).to_string()))
            }
        }
    }

    /// Sends `env` to `to` as a request and waits for the reply, at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`RequestError`].
    pub async fn request(
        &self,
        to: &ActorAddress,
        env: MessageEnvelope,
        timeout: Duration,
    ) -> Result<Reply, RequestError> {
        match self.route(to, env) {
            Ok(Route::Here(cell, env)) => ActorRef(cell).request(env, timeout).await,
            Ok(Route::Away(remote, name, env)) => remote.request(&name, env, timeout).await,
            Err(e) => Err(RequestError::Undelivered {
                to: to.to_string(),
                reason: e.to_string(),
            }),
        }
    }

    /// Publishes `env` to every subscriber of `topic` (never waiting: a full mailbox
    /// makes a dead letter); how many it reached.
    ///
    /// # Errors
    ///
    /// [`SendError::Invalid`] for a bad topic or a payload too large.
    /// Subscribers on other systems are reached through the [`Remote`] and not counted.
    pub fn publish(&self, topic: &str, mut env: MessageEnvelope) -> Result<u32, SendError> {
        check_name(topic).map_err(|e| SendError::Invalid(format!("bad topic: {e}")))?;
        self.check_size(&env)?;
        env.kind = MessageKind::Tell;
        env.topic = Some(topic.into());
        if let Some(remote) = self.remote() {
            remote.publish(topic, &env);
        }
        Ok(self.publish_here(topic, env))
    }

    /// Publishes `env` to the subscribers of `topic` on this system only: what a
    /// transport does with a publication from another. How many it reached.
    ///
    /// # Errors
    ///
    /// [`SendError::Invalid`] for a bad topic or a payload too large.
    pub fn publish_local(&self, topic: &str, mut env: MessageEnvelope) -> Result<u32, SendError> {
        check_name(topic).map_err(|e| SendError::Invalid(format!("bad topic: {e}")))?;
        self.check_size(&env)?;
        env.kind = MessageKind::Tell;
        env.topic = Some(topic.into());
        Ok(self.publish_here(topic, env))
    }

    fn publish_here(&self, topic: &str, env: MessageEnvelope) -> u32 {
        let subscribers = read(&self.0.topics).get(topic).cloned().unwrap_or_default();
        let mut reached = 0u32;
        for cell in subscribers {
            if cell.mailbox.try_push(env.copy(), false).is_ok() {
                reached += 1;
            } else {
                cell.dead_letter(env.copy(), DeadLetterReason::MailboxFull);
            }
        }
        reached
    }

    /// Where `to` leads, or why nowhere (a dead letter).
    fn route(&self, to: &ActorAddress, mut env: MessageEnvelope) -> Result<Route, SendError> {
        self.check_size(&env)?;
        match self.resolve(to) {
            Some(cell) => Ok(Route::Here(cell, env)),
            None => {
                // Named actors may live elsewhere, and spawned ones of other hosts
                // (`$7@node-1`); a bare `$7` means something only here.
                if let Some(remote) = self.remote() {
                    let away: Option<Arc<str>> = match to {
                        ActorAddress::Named(name) => Some(name.clone()),
                        ActorAddress::Remote { .. } => Some(to.to_string().into()),
                        ActorAddress::Anonymous(_) => None,
                    };
                    if let Some(name) = away
                        && remote.serves(&name)
                    {
                        return Ok(Route::Away(remote, name, env));
                    }
                }
                crate::cell::forget_reply(&mut env);
                self.0
                    .dead_letters
                    .record(&to.to_string(), env, DeadLetterReason::NotFound);
                Err(SendError::NotFound(to.to_string()))
            }
        }
    }

    fn check_size(&self, env: &MessageEnvelope) -> Result<(), SendError> {
        let max = self.0.limits.max_message_bytes;
        if env.payload.len() > max {
            return Err(SendError::Invalid(format!(
                "the payload is {} bytes: messages are at most {max}",
                env.payload.len()
            )));
        }
        Ok(())
    }

    pub(crate) fn resolve(&self, to: &ActorAddress) -> Option<Arc<Cell>> {
        match to {
            ActorAddress::Named(name) => self.resolve_name(name),
            ActorAddress::Anonymous(id) => read(&self.0.anonymous).get(id).cloned(),
            // One of ours, as the other hosts call it.
            ActorAddress::Remote { id, host } => {
                let remote = self.remote()?;
                if remote.host() != Some(&**host) {
                    return None;
                }
                read(&self.0.anonymous).get(id).cloned()
            }
        }
    }

    /// The actor named `name` (or spawned here as `name` = `$N`), or the next live
    /// member of the pool of that name.
    fn resolve_name(&self, name: &str) -> Option<Arc<Cell>> {
        if let Some(id) = name.strip_prefix('$') {
            let id: u64 = id.parse().ok()?;
            return read(&self.0.anonymous).get(&id).cloned();
        }
        if let Some(cell) = read(&self.0.names).get(name) {
            return Some(cell.clone());
        }
        let pool = read(&self.0.pools).get(name).cloned()?;
        self.pick(&pool)
    }

    /// The next live member of `pool`, round robin.
    fn pick(&self, pool: &Pool) -> Option<Arc<Cell>> {
        let names = read(&self.0.names);
        let n = pool.members.len();
        let start = pool.next.fetch_add(1, Ordering::Relaxed);
        (0..n).find_map(|i| names.get(&pool.members[(start + i) % n]).cloned())
    }

    /// Makes `name` the address of a pool: a message to it goes to the next live one of
    /// `members` (actors by name), round robin.
    ///
    /// # Errors
    ///
    /// [`ActorSystemError::InvalidName`] for a bad name, or
    /// [`ActorSystemError::DuplicateName`] when an actor or a pool has it already.
    pub fn register_pool(&self, name: &str, members: &[String]) -> Result<(), ActorSystemError> {
        check_name(name).map_err(|reason| ActorSystemError::InvalidName {
            name: cut(name),
            reason,
        })?;
        if read(&self.0.names).contains_key(name) || read(&self.0.pools).contains_key(name) {
            return Err(ActorSystemError::DuplicateName { name: name.into() });
        }
        let pool = Pool {
            members: members.iter().map(|m| Arc::from(m.as_str())).collect(),
            next: AtomicUsize::new(0),
        };
        write(&self.0.pools).insert(name.into(), Arc::new(pool));
        if let Some(remote) = self.remote() {
            remote.serve(name);
        }
        Ok(())
    }

    /// Sends a request from an actor whose reply comes back as a message: its
    /// correlation id.
    pub(crate) fn request_from(
        &self,
        from: &Arc<Cell>,
        to: &ActorAddress,
        env: MessageEnvelope,
        timeout: Duration,
    ) -> Result<u64, SendError> {
        let limits = &self.0.limits;
        if timeout.is_zero() || timeout > limits.max_request_timeout {
            return Err(SendError::Invalid(format!(
                "a request's timeout is between 1 ms and {:?}",
                limits.max_request_timeout
            )));
        }
        if from.pending_requests.load(Ordering::Acquire) >= limits.max_pending_requests {
            return Err(SendError::Invalid(format!(
                "{} requests are waiting for replies already: at most {} at once",
                limits.max_pending_requests, limits.max_pending_requests
            )));
        }
        let route = self.route(to, env)?;
        let id = self.next_id();
        from.pending_requests.fetch_add(1, Ordering::AcqRel);
        let requester: Arc<dyn crate::message::Requester> = from.clone();
        let pending = Arc::new(PendingRequest::new(Arc::downgrade(&requester), id));
        let cell = match route {
            Route::Here(cell, env) => (cell, env),
            Route::Away(remote, name, mut env) => {
                // The transport's request has its own timeout; its answer comes back
                // as a message like a local one.
                env.kind = MessageKind::Request;
                env.correlation_id = Some(id);
                env.sender = Some(from.address.clone());
                tokio::spawn(async move {
                    let answer = remote.request(&name, env, timeout).await;
                    pending.answer(answer);
                });
                return Ok(id);
            }
        };
        let (cell, mut env) = cell;
        env.kind = MessageKind::Request;
        env.correlation_id = Some(id);
        env.sender = Some(from.address.clone());
        env.reply_to = Some(ReplyTo::actor(to, pending.clone()));
        cell.deliver_now(env)?;
        let timer = pending.clone();
        let target = to.to_string();
        let handle = tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            timer.answer(Err(RequestError::Timeout {
                to: target,
                timeout,
            }));
        });
        pending.set_timer(handle.abort_handle());
        Ok(id)
    }

    /// Subscribes `cell` to `topic` (idempotent).
    pub(crate) fn subscribe(&self, cell: &Arc<Cell>, topic: &str) -> Result<(), SendError> {
        check_name(topic).map_err(|e| SendError::Invalid(format!("bad topic: {e}")))?;
        let mut mine = lock(&cell.topics);
        if mine.iter().any(|t| &**t == topic) {
            return Ok(());
        }
        if mine.len() >= self.0.limits.max_subscriptions {
            return Err(SendError::Invalid(format!(
                "subscribed to {} topics already: at most {}",
                mine.len(),
                self.0.limits.max_subscriptions
            )));
        }
        let topic: Arc<str> = topic.into();
        mine.push(topic.clone());
        drop(mine);
        let first = {
            let mut topics = write(&self.0.topics);
            let subs = topics.entry(topic.clone()).or_default();
            subs.push(cell.clone());
            subs.len() == 1
        };
        if first && let Some(remote) = self.remote() {
            remote.subscribe(&topic);
        }
        Ok(())
    }

    /// Unsubscribes `cell` from `topic`.
    pub(crate) fn unsubscribe(&self, cell: &Arc<Cell>, topic: &str) {
        lock(&cell.topics).retain(|t| &**t != topic);
        let last = {
            let mut topics = write(&self.0.topics);
            match topics.get_mut(topic) {
                Some(subs) => {
                    subs.retain(|c| !Arc::ptr_eq(c, cell));
                    subs.is_empty() && topics.remove(topic).is_some()
                }
                None => false,
            }
        };
        if last && let Some(remote) = self.remote() {
            remote.unsubscribe(topic);
        }
    }

    /// Registers a named actor's cell.
    pub(crate) fn register_named(
        &self,
        name: &str,
        mailbox: MailboxConfig,
    ) -> Result<Arc<Cell>, ActorSystemError> {
        let address =
            ActorAddress::named(name).map_err(|reason| ActorSystemError::InvalidName {
                name: cut(name),
                reason,
            })?;
        let mut names = write(&self.0.names);
        if names.contains_key(name) {
            return Err(ActorSystemError::DuplicateName { name: name.into() });
        }
        let cell = Arc::new(Cell::new(
            address,
            mailbox,
            self.0.dead_letters.clone(),
            self.0.outstanding.clone(),
        ));
        names.insert(name.into(), cell.clone());
        drop(names);
        if let Some(remote) = self.remote() {
            remote.serve(name);
        }
        Ok(cell)
    }

    /// Registers a spawned actor's cell.
    pub(crate) fn register_anonymous(&self, mailbox: MailboxConfig) -> Arc<Cell> {
        let id = self.next_id();
        let cell = Arc::new(Cell::new(
            ActorAddress::Anonymous(id),
            mailbox,
            self.0.dead_letters.clone(),
            self.0.outstanding.clone(),
        ));
        write(&self.0.anonymous).insert(id, cell.clone());
        cell
    }

    /// Releases a cell's address and subscriptions.
    pub(crate) fn unregister(&self, cell: &Arc<Cell>) {
        match &cell.address {
            ActorAddress::Named(n) => {
                write(&self.0.names).remove(n);
                if let Some(remote) = self.remote() {
                    remote.withdraw(n);
                }
            }
            ActorAddress::Anonymous(id) => {
                write(&self.0.anonymous).remove(id);
            }
            // Cells here have addresses of here.
            ActorAddress::Remote { .. } => {}
        }
        let topics: Vec<Arc<str>> = lock(&cell.topics).clone();
        for t in topics {
            self.unsubscribe(cell, &t);
        }
    }

    /// Starts an actor of a registered component under `supervisor`; its address.
    pub(crate) fn spawn_component(
        &self,
        supervisor: &SupervisorLink,
        component: &str,
    ) -> Result<ActorAddress, SendError> {
        let Some(actor) = read(&self.0.components).get(component).cloned() else {
            return Err(SendError::NotFound(component.to_owned()));
        };
        let cell = self.register_anonymous(actor.mailbox());
        let address = cell.address.clone();
        if !supervisor.tell(Control::Spawn {
            cell: cell.clone(),
            factory: actor.factory(),
            restart: crate::RestartPolicy::Temporary,
            shutdown: crate::ShutdownPolicy::default(),
        }) {
            self.unregister(&cell);
            return Err(SendError::Closed(supervisor.name.to_string()));
        }
        Ok(address)
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.0.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn emit(&self, event: SupervisorEvent) {
        let _ = self.0.events.send(event);
    }

    /// The root supervisor gave up.
    pub(crate) fn terminate(&self, reason: String) {
        tracing::error!(target: crate::ACTOR_TARGET, "the actor system stopped: {reason}");
        self.emit(SupervisorEvent::Terminated {
            reason: reason.clone(),
        });
        self.0.terminated.send_replace(Some(reason));
    }
}

/// An [`ActorSystem`] that does not keep it alive.
#[derive(Clone, Debug)]
pub struct WeakActorSystem(std::sync::Weak<Inner>);

impl WeakActorSystem {
    /// The system, while it lives.
    pub fn upgrade(&self) -> Option<ActorSystem> {
        self.0.upgrade().map(ActorSystem)
    }
}

/// A pool's members, by name, and whose turn it is.
struct Pool {
    members: Vec<Arc<str>>,
    next: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}
