//! # airssys-wasm-actor
//!
//! Components as supervised actors: each actor takes messages one at a time from a
//! bounded, prioritised mailbox; actors message each other by address (`send`,
//! `request` with a timeout, `publish`/`subscribe`); supervisors restart them in
//! airssys-rt's and OTP's terms — one-for-one, one-for-all, rest-for-one; permanent,
//! transient, temporary; at most N restarts in a window, then escalation; exponential
//! backoff. Rust actors ([`Actor`]) and component actors ([`ComponentActor`], the WIT
//! world `airssys:actor/actor@0.1.0` in `wit/actor.wit`) live in one system and read
//! the same messages: bytes with a content type.
//!
//! A crash loses at most the message in hand: it goes to the [`DeadLetters`] with the
//! reason, a request among them gets an error reply, and the mailbox — which belongs to
//! the address, not to the instance — survives the restart.
//!
//! ```
//! use std::time::Duration;
//! use airssys_wasm_actor::{
//!     Actor, ActorContext, ActorError, ActorSystem, ChildSpec, MessageEnvelope, Reply,
//!     SupervisorSpec,
//! };
//!
//! #[derive(Default)]
//! struct Counter { n: u64 }
//!
//! impl Actor for Counter {
//!     async fn handle_message(
//!         &mut self,
//!         msg: &MessageEnvelope,
//!         _ctx: &mut ActorContext,
//!     ) -> Result<Option<Reply>, ActorError> {
//!         match msg.payload_text() {
//!             Some("add") => { self.n += 1; Ok(None) }
//!             Some("get") => Ok(Some(Reply::text(self.n.to_string()))),
//!             _ => Err(ActorError::new("unknown command")),
//!         }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let system = ActorSystem::default();
//! system
//!     .start(SupervisorSpec::new("root").child(ChildSpec::actor("counter", Counter::default)))
//!     .await?;
//! let counter = system.lookup("counter").ok_or("no counter")?;
//! counter.tell(MessageEnvelope::text("add")).await?;
//! counter.tell(MessageEnvelope::text("add")).await?;
//! let reply = counter.request(MessageEnvelope::text("get"), Duration::from_secs(1)).await?;
//! assert_eq!(reply.payload_text(), Some("2"));
//! system.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Component actors need an engine with the actor interfaces registered
//! ([`register`]); see `docs/actors.md` and the tests for a complete system.

mod actor;
mod address;
mod cell;
mod component;
mod dead_letters;
mod error;
mod exit;
mod incarnation;
mod mailbox;
mod message;
mod remote;
mod supervisor;
mod system;

pub use actor::{Actor, ActorContext, ActorError, ErrorAction};
pub use address::{ActorAddress, check_host};
pub use airssys_wasm_core::actor::MAX_NAME_BYTES;
pub use airssys_wasm_core::actor::{ActorGrants, Backpressure, Pattern};
pub use cell::{ActorRef, PendingReply};
pub use component::{
    ComponentActor, HANDLER_INTERFACE, MESSAGING_INTERFACE, TYPES_INTERFACE, register,
};
pub use dead_letters::{
    DEAD_LETTER_LOG_RATE, DEAD_LETTER_TARGET, DeadLetter, DeadLetterReason, DeadLetters,
    RECENT_DEAD_LETTERS,
};
pub use error::{ActorSystemError, SendError};
pub use exit::{ExitReason, Failure, FailureKind};
pub use mailbox::{DEFAULT_MAILBOX_BYTES, DEFAULT_MAILBOX_CAPACITY, MailboxConfig};
pub use message::{MessageEnvelope, MessageKind, MessagePriority, Reply, RequestError, TEXT_PLAIN};
pub use remote::{BoxFuture, Remote};
pub use supervisor::SupervisorEvent;
pub use supervisor::spec::{
    ChildSpec, RestartBackoff, RestartIntensity, RestartPolicy, ShutdownPolicy,
    SupervisionStrategy, SupervisorSpec,
};
pub use system::{ActorSystem, EVENT_BUFFER, SystemLimits, WeakActorSystem};

/// The `tracing` target of the supervisors' log (starts, exits with their reasons,
/// restarts, escalations).
pub const ACTOR_TARGET: &str = "airssys_wasm::actors";
