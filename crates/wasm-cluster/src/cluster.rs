//! [`NatsCluster`]: one host of a cluster on NATS. It serves the host's named actors
//! (a queue subscription per name: hosts serving one name share its messages), takes
//! the cluster's publications, says it is alive every heartbeat with the names it
//! serves and learns the others' — and, as the actor system's [`Remote`], carries what
//! the system does not hold to the host that does. A durable mailbox (`durable.rs`)
//! takes its tells through a JetStream stream instead; singletons are `singleton.rs`;
//! what the tasks share is `shared.rs`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::{Client, ConnectErrorKind, ConnectOptions, Message, RequestErrorKind};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{Notify, mpsc, watch};

use airssys_wasm_actor::{
    ActorAddress, ActorSystem, BoxFuture, MessageEnvelope, Remote, Reply, RequestError, SendError,
};
use airssys_wasm_core::text::redact_urls_in;

use crate::config::{ClusterConfig, Credentials};
use crate::directory::{Beat, Directory, beat_text, parse_beat};
use crate::error::ClusterError;
use crate::shared::{Control, Outgoing, Shared, lock, until_withdrawn};
use crate::subjects::{Subjects, check_token};
use crate::wire;

/// Publications waiting for the connection, at most (more are dropped and counted).
const OUTBOUND: usize = 65_536;

/// Messages one subscription holds before its task takes them (async-nats's default).
/// Times the largest payload (NATS's `max_payload`, 1 MiB unless the operator lowers it)
/// it bounds what a name's backlog may cost this host; beyond it the client drops
/// messages and logs a slow consumer — at most once. (1,024 dropped ~2% of a burst of
/// 50,000 small tells from one fast sender on this VM: too small.)
const SUBSCRIPTION_CAPACITY: usize = 65_536;

/// The longest a leaving host waits for NATS to confirm a name's unsubscription.
const WITHDRAW_PATIENCE: Duration = Duration::from_secs(5);

/// How much longer a requester waits than the request's timeout, for the serving
/// host's own "timed out" to arrive.
const REPLY_GRACE: Duration = Duration::from_millis(250);

/// A request's timeout when its sender set none (another implementation).
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// This host's membership of a cluster on NATS. Cheap to clone.
#[derive(Clone)]
pub struct NatsCluster(Arc<Shared>);

impl std::fmt::Debug for NatsCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsCluster")
            .field("host", &self.0.host)
            .field("url", &self.0.url)
            .finish_non_exhaustive()
    }
}

/// What the actor system holds: the cluster seen as its [`Remote`].
struct Link(Arc<Shared>);

impl NatsCluster {
    /// Joins the cluster `config` names with `system`: connects (a refused credential
    /// or an unreachable server is an error now, not later), serves the system's
    /// names, and sets itself as the system's [`Remote`].
    ///
    /// # Errors
    ///
    /// [`ClusterError`]: NATS unreachable, credentials refused, a bad cluster or host
    /// name, a subscription refused.
    pub async fn join(config: ClusterConfig, system: &ActorSystem) -> Result<Self, ClusterError> {
        check_token(&config.cluster).map_err(|reason| ClusterError::InvalidName {
            name: config.cluster.clone(),
            reason,
        })?;
        let host = match &config.host {
            Some(h) => h.clone(),
            None => fresh_host_name(),
        };
        check_token(&host).map_err(|reason| ClusterError::InvalidName {
            name: host.clone(),
            reason,
        })?;
        let url = config.redacted_url();
        let client = connect(&config, &host, &url).await?;
        let subjects = Subjects::new(&config.cluster);
        let subscribe = |subject: String| {
            let client = client.clone();
            async move {
                client
                    .subscribe(subject.clone())
                    .await
                    .map_err(|e| ClusterError::Subscribe {
                        subject,
                        reason: e.to_string(),
                    })
            }
        };
        let hosts = subscribe(subjects.hosts()).await?;
        let spawned = subscribe(subjects.spawned_on(&host)).await?;
        let jetstream = async_nats::jetstream::new(client.clone());
        let stream = if config.durable.is_empty() {
            None
        } else {
            Some(crate::durable::stream(&jetstream, &config.cluster, &subjects).await?)
        };
        let singletons = if config.singletons.is_empty() {
            None
        } else {
            Some(crate::singleton::bucket(&jetstream, &config.cluster, config.host_timeout).await?)
        };
        let (control, control_rx) = mpsc::unbounded_channel();
        let (outbound, outbound_rx) = mpsc::channel(OUTBOUND);
        let (tells, tells_rx) = mpsc::channel(crate::batch::QUEUE);
        let shared = Arc::new(Shared {
            client,
            jetstream,
            stream,
            subjects,
            host,
            url,
            directory: Directory::new(config.host_timeout),
            config,
            system: system.downgrade(),
            served: Mutex::default(),
            topics: Mutex::default(),
            control,
            outbound,
            tells,
            queued: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            beat_now: Notify::new(),
            leaving: AtomicBool::new(false),
            leave_now: Notify::new(),
            tasks: Mutex::default(),
            singletons: Mutex::default(),
        });
        let tasks = vec![
            tokio::spawn(shared.clone().run_control(control_rx)).abort_handle(),
            tokio::spawn(shared.clone().run_outbound(outbound_rx)).abort_handle(),
            tokio::spawn(crate::batch::run(shared.clone(), tells_rx)).abort_handle(),
            tokio::spawn(shared.clone().run_hosts(hosts)).abort_handle(),
            tokio::spawn(shared.clone().run_spawned(spawned)).abort_handle(),
            tokio::spawn(shared.clone().run_heartbeat()).abort_handle(),
        ];
        *lock(&shared.tasks) = tasks;
        shared.say("hello").await;
        system.set_remote(Arc::new(Link(shared.clone())));
        if let Some(store) = singletons {
            let holders = shared
                .config
                .singletons
                .iter()
                .map(|spec| {
                    tokio::spawn(crate::singleton::hold(
                        shared.clone(),
                        store.clone(),
                        spec.clone(),
                    ))
                })
                .collect();
            *lock(&shared.singletons) = holders;
        }
        tracing::info!(target: crate::TARGET, host = %shared.host, url = %shared.url, cluster = %shared.config.cluster, "joined the cluster");
        Ok(Self(shared))
    }

    /// This host's name in the cluster.
    pub fn host(&self) -> &str {
        &self.0.host
    }

    /// The other hosts alive now (by their heartbeats), sorted.
    pub fn hosts(&self) -> Vec<String> {
        self.0.directory.hosts()
    }

    /// Whether another host serves `name` now.
    pub fn serves(&self, name: &str) -> bool {
        self.0.directory.serves(name)
    }

    /// Waits until another host serves `name`, at most `patience`; whether one does.
    pub async fn wait_for(&self, name: &str, patience: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + patience;
        while !self.serves(name) {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// The topics this host takes publications for from the other hosts (those its
    /// actors subscribe to), sorted. Every other publication stays off this host.
    pub fn topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = lock(&self.0.topics).keys().cloned().collect();
        topics.sort();
        topics
    }

    /// Publications and tells to other hosts dropped because the connection could not
    /// take them.
    pub fn dropped_publications(&self) -> u64 {
        self.0.dropped.load(Ordering::Relaxed)
    }

    /// Leaves the cluster in order: says goodbye (the others stop routing here at
    /// once), stops taking messages for this host's names — what NATS had already
    /// handed over is still delivered — and flushes. Call it before the system's
    /// `shutdown`, which then drains the mailboxes.
    pub async fn leave(&self) {
        let shared = &self.0;
        if shared.leaving.swap(true, Ordering::AcqRel) {
            return;
        }
        // Singletons first: stopped here, their keys deleted — another host takes them.
        shared.leave_now.notify_waiters();
        let holders: Vec<_> = lock(&shared.singletons).drain(..).collect();
        for holder in holders {
            let _ = holder.await;
        }
        shared.say("bye").await;
        for (_, end) in lock(&shared.topics).drain() {
            let _ = end.send(true);
        }
        let served: Vec<watch::Sender<bool>> =
            lock(&shared.served).drain().map(|(_, w)| w).collect();
        for withdraw in &served {
            let _ = withdraw.send(true);
        }
        // Until NATS confirmed each unsubscription and what it had handed over is in the
        // mailboxes (a name's tasks end and drop their receivers): only then may the
        // system drain — a request NATS gave this host meanwhile is still answered here.
        for withdraw in &served {
            let _ = tokio::time::timeout(WITHDRAW_PATIENCE, withdraw.closed()).await;
        }
        // Tells this host's actors sent meanwhile go before the connection's flush.
        let _ = tokio::time::timeout(WITHDRAW_PATIENCE, shared.flush_tells()).await;
        let _ = shared.client.flush().await;
        tracing::info!(target: crate::TARGET, host = %shared.host, "left the cluster");
    }

    /// Leaves (if it has not) and ends this host's tasks and connection.
    pub async fn close(&self) {
        self.leave().await;
        // Let the withdrawn subscriptions deliver what they had.
        tokio::task::yield_now().await;
        for task in lock(&self.0.tasks).drain(..) {
            task.abort();
        }
        let _ = self.0.client.flush().await;
    }
}

async fn connect(config: &ClusterConfig, host: &str, url: &str) -> Result<Client, ClusterError> {
    let events_url = url.to_owned();
    let mut options = ConnectOptions::new()
        .name(format!("airssys-wasm {host}"))
        .connection_timeout(config.connect_timeout)
        // What one subscription may hold before its task takes it (a name whose mailbox
        // blocks stops taking): messages beyond are dropped by the client and logged as
        // a slow consumer — at most once — instead of growing the host's memory without
        // bound.
        .subscription_capacity(SUBSCRIPTION_CAPACITY)
        .event_callback(move |event| {
            let url = events_url.clone();
            async move {
                match event {
                    async_nats::Event::Disconnected => {
                        tracing::warn!(target: crate::TARGET, %url, "disconnected from NATS; reconnecting");
                    }
                    async_nats::Event::Connected => {
                        tracing::info!(target: crate::TARGET, %url, "connected to NATS");
                    }
                    other => {
                        let text = other.to_string();
                        tracing::warn!(target: crate::TARGET, %url, event = %redact_urls_in(&text), "NATS");
                    }
                }
            }
        });
    options = match &config.credentials {
        Credentials::None => options,
        Credentials::Token(token) => options.token(token.clone()),
        Credentials::UserPassword { user, password } => {
            options.user_and_password(user.clone(), password.clone())
        }
        Credentials::File(path) => {
            options
                .credentials_file(path)
                .await
                .map_err(|e| ClusterError::CredentialsFile {
                    path: path.display().to_string(),
                    reason: e.kind().to_string(),
                })?
        }
    };
    let servers: Vec<&str> = config.url.split(',').map(str::trim).collect();
    options.connect(servers).await.map_err(|e| {
        let reason = redact_urls_in(&e.to_string()).into_owned();
        let url = url.to_owned();
        match e.kind() {
            ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication => {
                ClusterError::Credentials { url, reason }
            }
            _ => ClusterError::Connect { url, reason },
        }
    })
}

impl Shared {
    /// Returns once the tells queued so far are handed to NATS (at once when none is).
    pub(crate) async fn flush_tells(&self) {
        if self.queued.load(Ordering::Acquire) == 0 {
            return;
        }
        let (done, handed) = tokio::sync::oneshot::channel();
        if self.tells.send(Outgoing::Flush(done)).await.is_ok() {
            let _ = handed.await;
        }
    }

    /// Publishes a heartbeat of `kind` with the names served here.
    async fn say(&self, kind: &str) {
        let text = {
            let served = lock(&self.served);
            if kind == "bye" {
                beat_text(kind, &self.host, std::iter::empty())
            } else {
                let marked: Vec<String> = served
                    .keys()
                    .map(|n| {
                        if self.config.durable.contains(n) {
                            format!("+{n}")
                        } else {
                            n.clone()
                        }
                    })
                    .collect();
                beat_text(kind, &self.host, marked.iter().map(String::as_str))
            }
        };
        if let Err(e) = self
            .client
            .publish(self.subjects.hosts(), text.into())
            .await
        {
            tracing::debug!(target: crate::TARGET, "heartbeat not sent: {e}");
        }
    }

    /// Subscribes and withdraws names, in the order the system asked.
    async fn run_control(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Control>) {
        while let Some(control) = rx.recv().await {
            match control {
                Control::Serve(name) => {
                    if self.leaving.load(Ordering::Acquire)
                        || lock(&self.served).contains_key(&name)
                    {
                        continue;
                    }
                    let subject = self.subjects.actor(&name);
                    match self
                        .client
                        .queue_subscribe(subject.clone(), name.clone())
                        .await
                    {
                        Ok(sub) => {
                            let (withdraw, withdrawn) = watch::channel(false);
                            if let (true, Some(stream)) =
                                (self.config.durable.contains(&name), &self.stream)
                            {
                                match crate::durable::consumer(
                                    stream,
                                    &self.subjects,
                                    &name,
                                    &self.config,
                                )
                                .await
                                {
                                    Ok(consumer) => {
                                        let task = tokio::spawn(crate::durable::consume(
                                            self.clone(),
                                            name.clone(),
                                            consumer,
                                            withdrawn.clone(),
                                        ));
                                        lock(&self.tasks).push(task.abort_handle());
                                    }
                                    Err(e) => {
                                        tracing::error!(target: crate::TARGET, "cannot serve `{name}`'s durable mailbox: {e}");
                                    }
                                }
                            }
                            lock(&self.served).insert(name.clone(), withdraw);
                            let task = tokio::spawn(self.clone().serve(name, sub, withdrawn));
                            lock(&self.tasks).push(task.abort_handle());
                            self.beat_now.notify_one();
                        }
                        Err(e) => {
                            tracing::error!(target: crate::TARGET, %subject, "cannot serve `{name}` to the cluster: {e}");
                        }
                    }
                }
                Control::Withdraw(name) => {
                    if let Some(withdraw) = lock(&self.served).remove(&name) {
                        let _ = withdraw.send(true);
                        self.beat_now.notify_one();
                    }
                }
                Control::Subscribe(topic) => {
                    if self.leaving.load(Ordering::Acquire)
                        || lock(&self.topics).contains_key(&topic)
                    {
                        continue;
                    }
                    let subject = self.subjects.topic(&topic);
                    match self.client.subscribe(subject.clone()).await {
                        Ok(sub) => {
                            // Known to the server before it is listed as taken.
                            let _ = self.client.flush().await;
                            let (end, ended) = watch::channel(false);
                            lock(&self.topics).insert(topic.clone(), end);
                            let task = tokio::spawn(self.clone().run_topic(topic, sub, ended));
                            lock(&self.tasks).push(task.abort_handle());
                        }
                        Err(e) => {
                            tracing::error!(target: crate::TARGET, %subject, "cannot take `{topic}`'s publications from the cluster: {e}");
                        }
                    }
                }
                Control::Unsubscribe(topic) => {
                    if let Some(end) = lock(&self.topics).remove(&topic) {
                        let _ = end.send(true);
                    }
                }
            }
        }
    }

    /// Takes the messages to `name` until it is withdrawn (then drains what NATS had
    /// handed over).
    async fn serve(
        self: Arc<Self>,
        name: String,
        mut sub: async_nats::Subscriber,
        mut withdrawn: watch::Receiver<bool>,
    ) {
        let mut draining = false;
        loop {
            let msg = if draining {
                sub.next().await
            } else {
                tokio::select! {
                    msg = sub.next() => msg,
                    () = until_withdrawn(&mut withdrawn) => {
                        draining = true;
                        let _ = sub.drain().await;
                        continue;
                    }
                }
            };
            let Some(msg) = msg else { break };
            let Some(system) = self.system.upgrade() else {
                break;
            };
            self.take(&system, &name, msg).await;
        }
    }

    /// One message to `name` from another host: a tell into the mailbox, or a request
    /// whose answer goes back to its reply subject once it comes (the next message is
    /// taken meanwhile, in the order sent).
    async fn take(&self, system: &ActorSystem, name: &str, msg: Message) {
        // A batch of tells (`batch.rs`): each in turn, in order.
        if msg.reply.is_none()
            && let Some(frames) = crate::batch::frames(&msg.payload)
        {
            for frame in frames {
                match frame {
                    Ok(body) => self.take_one(system, name, body, None).await,
                    Err(why) => {
                        tracing::warn!(target: crate::TARGET, actor = name, "a malformed batch from the cluster: {why}");
                        break;
                    }
                }
            }
            return;
        }
        self.take_one(system, name, msg.payload, msg.reply).await;
    }

    /// One tell (`reply` none) or request.
    async fn take_one(
        &self,
        system: &ActorSystem,
        name: &str,
        body: Bytes,
        reply: Option<async_nats::Subject>,
    ) {
        let incoming = match wire::incoming(body) {
            Ok(i) => i,
            Err(why) => {
                tracing::warn!(target: crate::TARGET, actor = name, "a malformed message from the cluster: {why}");
                if let Some(reply) = reply {
                    self.answer(
                        reply,
                        Err(RequestError::Undelivered {
                            to: name.to_owned(),
                            reason: why,
                        }),
                    )
                    .await;
                }
                return;
            }
        };
        let timeout = incoming
            .timeout
            .unwrap_or(DEFAULT_REQUEST_TIMEOUT)
            .min(system.limits().max_request_timeout);
        // Handed over just as this host stopped holding the name (it left, or the actor
        // stopped): on to a host that holds it, if one does — through NATS, where this
        // host no longer listens for it.
        if !system.holds(name)
            && self.directory.serves(name)
            && let Ok(to) = ActorAddress::named(name)
        {
            let system = system.clone();
            let client = self.client.clone();
            tokio::spawn(async move {
                match reply {
                    Some(reply) => {
                        let answer = system.request(&to, incoming.env, timeout).await;
                        let _ = client.publish(reply, wire::answer(&answer)).await;
                    }
                    None => {
                        let _ = system.send(&to, incoming.env).await;
                    }
                }
            });
            return;
        }
        match reply {
            Some(reply) => match system.request_local(name, incoming.env, timeout).await {
                Ok(pending) => {
                    let client = self.client.clone();
                    tokio::spawn(async move {
                        let answer = pending.reply().await;
                        let _ = client.publish(reply, wire::answer(&answer)).await;
                    });
                }
                Err(e) => self.answer(reply, Err(e)).await,
            },
            None => {
                if let Err(e) = system.deliver_local(name, incoming.env).await {
                    tracing::debug!(target: crate::TARGET, actor = name, from = ?incoming.origin, "a message from the cluster was not delivered: {e}");
                }
            }
        }
    }

    /// Messages to this host's spawned actors (`$N@HOST` elsewhere), to `$N` here.
    async fn run_spawned(self: Arc<Self>, mut sub: async_nats::Subscriber) {
        while let Some(msg) = sub.next().await {
            let Some(system) = self.system.upgrade() else {
                break;
            };
            let Some(to) = Subjects::spawned_of(&msg.subject) else {
                continue;
            };
            self.take(&system, &to, msg).await;
        }
    }

    async fn answer(&self, reply: async_nats::Subject, answer: Result<Reply, RequestError>) {
        let _ = self.client.publish(reply, wire::answer(&answer)).await;
    }

    async fn run_outbound(self: Arc<Self>, mut rx: mpsc::Receiver<(String, Bytes)>) {
        while let Some((subject, body)) = rx.recv().await {
            if let Err(e) = self.client.publish(subject, body).await {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(target: crate::TARGET, "a publication was not sent: {e}");
            }
        }
    }

    /// Publications to `topic` from other hosts, to this host's subscribers, until the
    /// last of them unsubscribes.
    async fn run_topic(
        self: Arc<Self>,
        topic: String,
        mut sub: async_nats::Subscriber,
        mut ended: watch::Receiver<bool>,
    ) {
        loop {
            let msg = tokio::select! {
                msg = sub.next() => msg,
                () = until_withdrawn(&mut ended) => {
                    let _ = sub.unsubscribe().await;
                    break;
                }
            };
            let Some(msg) = msg else { break };
            let Some(system) = self.system.upgrade() else {
                break;
            };
            match wire::incoming(msg.payload) {
                // Its own publications reached this host's subscribers already.
                Ok(i) if i.origin.as_deref() == Some(self.host.as_bytes()) => {}
                Ok(i) => {
                    let _ = system.publish_local(&topic, i.env);
                }
                Err(why) => {
                    tracing::warn!(target: crate::TARGET, %topic, "a malformed publication from the cluster: {why}");
                }
            }
        }
    }

    /// The other hosts' heartbeats.
    async fn run_hosts(self: Arc<Self>, mut sub: async_nats::Subscriber) {
        while let Some(msg) = sub.next().await {
            match parse_beat(&msg.payload) {
                Some(Beat::Hello(host)) if host != self.host => self.beat_now.notify_one(),
                Some(Beat::Alive(host, names, durable)) if host != self.host => {
                    if self.directory.beat(host.clone(), names, durable) {
                        tracing::info!(target: crate::TARGET, %host, "a host joined the cluster");
                    }
                }
                Some(Beat::Bye(host)) if host != self.host => {
                    if let Some(names) = self.directory.leave(&host) {
                        tracing::info!(target: crate::TARGET, %host, names = ?names, "a host left the cluster");
                    }
                }
                _ => {}
            }
        }
    }

    /// Says this host is alive every heartbeat (and at once when its names change or
    /// a host joins); notices hosts that stopped saying so.
    async fn run_heartbeat(self: Arc<Self>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.config.heartbeat) => {}
                () = self.beat_now.notified() => {}
            }
            if self.leaving.load(Ordering::Acquire) || self.system.upgrade().is_none() {
                break;
            }
            self.say("beat").await;
            for (host, names) in self.directory.expire() {
                tracing::warn!(
                    target: crate::TARGET,
                    %host,
                    names = ?names,
                    "a host is gone: no heartbeat for {:?}",
                    self.config.host_timeout
                );
            }
        }
    }
}

impl Remote for Link {
    fn serves(&self, name: &str) -> bool {
        match crate::subjects::spawned_elsewhere(name) {
            // A spawned actor of another host: there while its host is.
            Some((_, host)) => host != self.0.host && self.0.directory.alive(host),
            None => self.0.directory.serves(name),
        }
    }

    fn host(&self) -> Option<&str> {
        Some(&self.0.host)
    }

    fn durable(&self, name: &str) -> bool {
        let shared = &self.0;
        shared.directory.durable(name)
            || (shared.config.durable.iter().any(|d| d == name)
                && lock(&shared.served).contains_key(name))
    }

    fn send<'a>(
        &'a self,
        to: &'a str,
        env: MessageEnvelope,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let shared = &self.0;
            let body = wire::message(&env, &shared.host, None);
            shared.queued.fetch_add(1, Ordering::AcqRel);
            let tell = Outgoing::Tell(to.to_owned(), body);
            if shared.tells.send(tell).await.is_err() {
                shared.queued.fetch_sub(1, Ordering::AcqRel);
                return Err(SendError::Unreachable {
                    to: to.to_owned(),
                    reason: "this host has closed its cluster connection".into(),
                });
            }
            Ok(())
        })
    }

    fn store<'a>(
        &'a self,
        to: &'a str,
        env: MessageEnvelope,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let shared = &self.0;
            let body = wire::message(&env, &shared.host, None);
            crate::durable::publish(shared, to, body).await
        })
    }

    fn request<'a>(
        &'a self,
        to: &'a str,
        env: MessageEnvelope,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Reply, RequestError>> {
        let timed_out = move || RequestError::Timeout {
            to: to.to_owned(),
            timeout,
        };
        Box::pin(async move {
            let shared = &self.0;
            let request = async_nats::Request::new()
                .payload(wire::message(&env, &shared.host, Some(timeout)))
                .timeout(Some(timeout.saturating_add(REPLY_GRACE)));
            // All of it within the timeout: waiting for the tells sent before it (never
            // ahead of them) and for room in the connection's queue (NATS away) too.
            let answer = tokio::time::timeout(timeout.saturating_add(REPLY_GRACE), async {
                shared.flush_tells().await;
                shared
                    .client
                    .send_request(shared.subjects.to(to), request)
                    .await
            })
            .await;
            let Ok(answer) = answer else {
                return Err(timed_out());
            };
            match answer {
                Ok(msg) => wire::reply(to, timeout, msg.payload),
                Err(e) => Err(match e.kind() {
                    RequestErrorKind::TimedOut => timed_out(),
                    RequestErrorKind::NoResponders => RequestError::Undelivered {
                        to: to.to_owned(),
                        reason: "no host serves it now".into(),
                    },
                    _ => RequestError::Undelivered {
                        to: to.to_owned(),
                        reason: redact_urls_in(&e.to_string()).into_owned(),
                    },
                }),
            }
        })
    }

    fn publish(&self, topic: &str, env: &MessageEnvelope) {
        let shared = &self.0;
        let body = wire::message(env, &shared.host, None);
        if shared
            .outbound
            .try_send((shared.subjects.topic(topic), body))
            .is_err()
        {
            let dropped = shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(target: crate::TARGET, %topic, dropped, "publications to other hosts dropped: the connection cannot keep up");
            }
        }
    }

    fn serve(&self, name: &str) {
        let _ = self.0.control.send(Control::Serve(name.to_owned()));
    }

    fn withdraw(&self, name: &str) {
        let _ = self.0.control.send(Control::Withdraw(name.to_owned()));
    }

    fn subscribe(&self, topic: &str) {
        let _ = self.0.control.send(Control::Subscribe(topic.to_owned()));
    }

    fn unsubscribe(&self, topic: &str) {
        let _ = self.0.control.send(Control::Unsubscribe(topic.to_owned()));
    }
}

/// A host name unique in practice: the process, the time and the standard library's
/// per-process random hash keys.
fn fresh_host_name() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    format!("h{:016x}", h.finish())
}
