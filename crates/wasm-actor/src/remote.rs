//! [`Remote`]: where messages go whose address this system does not hold — actors on
//! other processes or machines, reached through a transport (`airssys-wasm-cluster`
//! puts NATS behind it). The system asks it only after its own names: a message to an
//! actor held here never leaves the process.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::error::SendError;
use crate::message::{MessageEnvelope, Reply, RequestError};

/// A boxed future, as [`Remote`]'s methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Other systems, seen from this one: the names they serve, and how a message reaches
/// them. Set with [`ActorSystem::set_remote`](crate::ActorSystem::set_remote).
///
/// A transport delivers what it receives with the system's `*_local` methods
/// ([`deliver_local`](crate::ActorSystem::deliver_local),
/// [`request_local`](crate::ActorSystem::request_local),
/// [`publish_local`](crate::ActorSystem::publish_local)), so that a message never
/// travels twice.
pub trait Remote: Send + Sync + 'static {
    /// Whether another system serves the actor (or pool) `name` now; `name` may be a
    /// spawned actor's address on another host (`$7@node-1`).
    fn serves(&self, name: &str) -> bool;

    /// This system's name among the others: what its spawned actors' addresses carry
    /// elsewhere (`$7@HOST`). Default: none.
    fn host(&self) -> Option<&str> {
        None
    }

    /// Whether `name`'s mailbox is durable: every tell to it goes through the
    /// transport's store — from this system too, even when it holds `name` — and is
    /// delivered at least once. Default: none is.
    fn durable(&self, name: &str) -> bool {
        let _ = name;
        false
    }

    /// Sends a tell to `to` on another system: handed to the transport, not awaited
    /// further (its guarantee is the transport's — at most once on plain NATS). Tells
    /// to a durable mailbox go to [`store`](Self::store) instead.
    ///
    /// # Errors
    ///
    /// [`SendError`] when the transport cannot take it (disconnected and its buffer
    /// full, or closed).
    fn send<'a>(
        &'a self,
        to: &'a str,
        env: MessageEnvelope,
    ) -> BoxFuture<'a, Result<(), SendError>>;

    /// Sends a tell to `to`, whose mailbox is [`durable`](Self::durable), through the
    /// transport's store: `Ok` once it is stored. Default: [`send`](Self::send).
    ///
    /// # Errors
    ///
    /// [`SendError`] when the store cannot take it.
    fn store<'a>(
        &'a self,
        to: &'a str,
        env: MessageEnvelope,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        self.send(to, env)
    }

    /// Sends a request to `to` on another system and waits for its reply, at most
    /// `timeout`.
    ///
    /// # Errors
    ///
    /// [`RequestError`]: as for a local request, plus the transport's failures as
    /// [`RequestError::Undelivered`].
    fn request<'a>(
        &'a self,
        to: &'a str,
        env: MessageEnvelope,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Reply, RequestError>>;

    /// Publishes to the subscribers of `topic` on other systems; never waits (a
    /// transport that cannot take it counts it and drops it).
    fn publish(&self, topic: &str, env: &MessageEnvelope);

    /// This system serves `name` from now on (an actor registered, or a pool).
    fn serve(&self, name: &str);

    /// This system no longer serves `name`.
    fn withdraw(&self, name: &str);

    /// An actor of this system subscribed to `topic`, the first one here: publications
    /// to it from other systems are wanted from now on. Default: nothing (a transport
    /// that delivers every publication everywhere).
    fn subscribe(&self, topic: &str) {
        let _ = topic;
    }

    /// The last subscriber of `topic` here unsubscribed (or stopped).
    fn unsubscribe(&self, topic: &str) {
        let _ = topic;
    }
}
