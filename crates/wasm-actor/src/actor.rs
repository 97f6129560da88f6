//! Rust actors: the [`Actor`] trait in airssys-rt's words (`pre_start`,
//! `handle_message`, `post_stop`, `on_error` → [`ErrorAction`]), the [`ActorContext`] an
//! actor acts through, and [`Behaviour`], what the runtime drives — a Rust actor or a
//! component behind one object-safe face.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::address::ActorAddress;
use crate::cell::{ActorRef, Cell};
use crate::error::SendError;
use crate::exit::{Failure, FailureKind};
use crate::message::{MessageEnvelope, Reply, RequestError};
use crate::supervisor::SupervisorLink;
use crate::system::ActorSystem;

/// A boxed future, as the runtime drives actors.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a Rust actor's supervisor is asked to do when handling a message fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorAction {
    /// Carry on with the next message (this one goes to the dead letters).
    Resume,
    /// End this instance as a failure: the supervisor restarts it per its policy.
    #[default]
    Restart,
    /// End this instance normally (a transient or temporary child is not restarted).
    Stop,
    /// End this instance and have the supervisor escalate at once.
    Escalate,
}

/// An error a Rust actor's handler returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ActorError(pub String);

impl ActorError {
    /// An error with this text.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }
}

/// A Rust actor: plain Rust state that takes messages one at a time. Lives in the same
/// system as component actors and messages them the same way.
pub trait Actor: Send + 'static {
    /// Before the first message of each instance (after every restart too).
    fn pre_start(
        &mut self,
        ctx: &mut ActorContext,
    ) -> impl Future<Output = Result<(), ActorError>> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// One message; a reply returned for a request goes back to the requester.
    fn handle_message(
        &mut self,
        message: &MessageEnvelope,
        ctx: &mut ActorContext,
    ) -> impl Future<Output = Result<Option<Reply>, ActorError>> + Send;

    /// After the last message, on a graceful stop.
    fn post_stop(&mut self, ctx: &mut ActorContext) -> impl Future<Output = ()> + Send {
        let _ = ctx;
        async {}
    }

    /// What to do when `handle_message` failed (default: restart).
    fn on_error(&mut self, error: &ActorError, ctx: &mut ActorContext) -> ErrorAction {
        let _ = (error, ctx);
        ErrorAction::Restart
    }
}

/// What an actor acts through: its address, the system, its supervisor.
#[derive(Debug, Clone)]
pub struct ActorContext {
    pub(crate) cell: Arc<Cell>,
    pub(crate) system: ActorSystem,
    pub(crate) supervisor: SupervisorLink,
}

impl ActorContext {
    /// This actor's address.
    pub fn address(&self) -> &ActorAddress {
        &self.cell.address
    }

    /// The system.
    pub fn system(&self) -> &ActorSystem {
        &self.system
    }

    /// A handle to this actor.
    pub fn myself(&self) -> ActorRef {
        ActorRef(self.cell.clone())
    }

    /// Sends `env` to `to` from this actor.
    ///
    /// # Errors
    ///
    /// [`SendError`].
    pub async fn send(&self, to: &ActorAddress, env: MessageEnvelope) -> Result<(), SendError> {
        self.system
            .send(to, env.with_sender(self.cell.address.clone()))
            .await
    }

    /// Sends a request and waits for the reply (this actor handles nothing meanwhile).
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
        self.system
            .request(to, env.with_sender(self.cell.address.clone()), timeout)
            .await
    }

    /// Publishes `env` to `topic`; how many subscribers it reached.
    ///
    /// # Errors
    ///
    /// [`SendError::Invalid`] for a bad topic.
    pub fn publish(&self, topic: &str, env: MessageEnvelope) -> Result<u32, SendError> {
        self.system
            .publish(topic, env.with_sender(self.cell.address.clone()))
    }

    /// Subscribes this actor to `topic`.
    ///
    /// # Errors
    ///
    /// [`SendError::Invalid`] for a bad topic or too many subscriptions.
    pub fn subscribe(&self, topic: &str) -> Result<(), SendError> {
        self.system.subscribe(&self.cell, topic)
    }

    /// Starts an actor of the registered component `component` beside this one (a
    /// temporary child of this actor's supervisor); its address.
    ///
    /// # Errors
    ///
    /// [`SendError::NotFound`] for an unknown component.
    pub fn spawn_component(&self, component: &str) -> Result<ActorAddress, SendError> {
        self.system.spawn_component(&self.supervisor, component)
    }
}

/// One instance of an actor, as the runtime drives it: a Rust actor behind a trait
/// object, or a component instance called directly (its call's future is not boxed: it
/// is the hot path, and a boxed future of a Wasmtime call is a large copy per message).
pub(crate) enum Instance {
    Rust(Box<dyn Behaviour>),
    Component(Box<crate::component::ComponentBehaviour>),
}

/// What the runtime drives of a Rust actor.
pub(crate) trait Behaviour: Send {
    fn start<'a>(&'a mut self, ctx: &'a mut ActorContext) -> BoxFuture<'a, Result<(), Failure>>;

    fn handle<'a>(
        &'a mut self,
        ctx: &'a mut ActorContext,
        env: &'a MessageEnvelope,
    ) -> BoxFuture<'a, Result<Option<Reply>, (Failure, ErrorAction)>>;

    fn stop<'a>(&'a mut self, ctx: &'a mut ActorContext) -> BoxFuture<'a, ()>;
}

/// A Rust actor as a [`Behaviour`].
pub(crate) struct RustActor<A>(pub(crate) A);

impl<A: Actor> Behaviour for RustActor<A> {
    fn start<'a>(&'a mut self, ctx: &'a mut ActorContext) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            self.0
                .pre_start(ctx)
                .await
                .map_err(|e| Failure::new(FailureKind::StartFailed, e.0))
        })
    }

    fn handle<'a>(
        &'a mut self,
        ctx: &'a mut ActorContext,
        env: &'a MessageEnvelope,
    ) -> BoxFuture<'a, Result<Option<Reply>, (Failure, ErrorAction)>> {
        Box::pin(async move {
            match self.0.handle_message(env, ctx).await {
                Ok(reply) => Ok(reply),
                Err(e) => {
                    let action = self.0.on_error(&e, ctx);
                    Err((Failure::new(FailureKind::HandlerError, e.0), action))
                }
            }
        })
    }

    fn stop<'a>(&'a mut self, ctx: &'a mut ActorContext) -> BoxFuture<'a, ()> {
        Box::pin(self.0.post_stop(ctx))
    }
}

/// Makes a new instance of an actor (at start and at every restart).
pub(crate) type Factory =
    Arc<dyn Fn(&ActorContext) -> BoxFuture<'static, Result<Instance, Failure>> + Send + Sync>;

/// Makes a factory of Rust actors from a function making one.
pub(crate) fn rust_factory<A, F>(make: F) -> Factory
where
    A: Actor,
    F: Fn() -> A + Send + Sync + 'static,
{
    Arc::new(move |_ctx: &ActorContext| {
        let actor = Instance::Rust(Box::new(RustActor(make())));
        Box::pin(async move { Ok(actor) })
    })
}
