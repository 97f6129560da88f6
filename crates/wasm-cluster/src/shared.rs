//! What one host's tasks share: its connection, subjects, directory of the others,
//! the names it serves, and how its tasks are told to stop. `cluster.rs` runs the host;
//! `durable.rs` and `singleton.rs` work on this too.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64};

use async_nats::Client;
use bytes::Bytes;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::AbortHandle;

use airssys_wasm_actor::WeakActorSystem;

use crate::config::ClusterConfig;
use crate::directory::Directory;
use crate::subjects::Subjects;

/// One host's state, shared by its tasks.
pub(crate) struct Shared {
    pub(crate) client: Client,
    pub(crate) jetstream: async_nats::jetstream::Context,
    pub(crate) subjects: Subjects,
    pub(crate) host: String,
    /// The server(s), credentials redacted.
    pub(crate) url: String,
    pub(crate) config: ClusterConfig,
    pub(crate) directory: Directory,
    pub(crate) system: WeakActorSystem,
    /// The names served here, each with what withdraws it (`true`).
    pub(crate) served: Mutex<HashMap<String, watch::Sender<bool>>>,
    /// The topics this host's actors subscribe to, each with what ends its
    /// subscription (`true`).
    pub(crate) topics: Mutex<HashMap<String, watch::Sender<bool>>>,
    /// The cluster's stream of durable tells, when this host serves durable mailboxes.
    pub(crate) stream: Option<async_nats::jetstream::stream::Stream>,
    pub(crate) control: mpsc::UnboundedSender<Control>,
    pub(crate) outbound: mpsc::Sender<(String, Bytes)>,
    /// Tells to other hosts, to the batcher (`batch.rs`).
    pub(crate) tells: mpsc::Sender<Outgoing>,
    /// Tells queued for the batcher and not yet handed to NATS.
    pub(crate) queued: AtomicU64,
    /// Publications and tells to other hosts dropped (the connection closed).
    pub(crate) dropped: AtomicU64,
    pub(crate) beat_now: Notify,
    pub(crate) leaving: AtomicBool,
    /// Wakes what waits for the next heartbeat when the host leaves.
    pub(crate) leave_now: Notify,
    pub(crate) tasks: Mutex<Vec<AbortHandle>>,
    /// The tasks holding singletons, awaited on leaving.
    pub(crate) singletons: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// What the batcher (`batch.rs`) is asked to do, in order.
pub(crate) enum Outgoing {
    /// A tell's frame to an address (a name, or `$N@HOST`): its subject is made once
    /// per batch.
    Tell(String, Bytes),
    /// Answer once everything queued before this is handed to NATS.
    Flush(tokio::sync::oneshot::Sender<()>),
}

pub(crate) enum Control {
    Serve(String),
    Withdraw(String),
    Subscribe(String),
    Unsubscribe(String),
}

/// Returns once the name is withdrawn (or its withdrawal can no longer come).
pub(crate) async fn until_withdrawn(withdrawn: &mut watch::Receiver<bool>) {
    let _ = withdrawn.wait_for(|w| *w).await;
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
