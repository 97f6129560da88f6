//! The errors of the actor system: [`SendError`] (a message not accepted) and
//! [`ActorSystemError`] (a system or tree that cannot start).

/// Why a message was not accepted. Its text is what a guest sees too: no host paths,
/// no secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The sender's grants do not allow it (which grant).
    #[error("denied: {0}")]
    Denied(String),
    /// No actor has the address.
    #[error("no actor has the address `{0}`")]
    NotFound(String),
    /// The target's mailbox is full and refuses (strategy `error`).
    #[error("the mailbox of `{0}` is full")]
    MailboxFull(String),
    /// The target is stopping or stopped.
    #[error("`{0}` is stopping or stopped")]
    Closed(String),
    /// Malformed: a bad address or topic, too large, too many pending requests.
    #[error("{0}")]
    Invalid(String),
    /// The actor lives on another host, and the transport could not take the message.
    #[error("cannot reach `{to}` on another host: {reason}")]
    Unreachable {
        /// The target.
        to: String,
        /// Why (the transport's words, without credentials).
        reason: String,
    },
}

/// Why a system, a supervision tree or an actor could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ActorSystemError {
    /// Two actors or supervisors with one name.
    #[error(
        "the name `{name}` is used twice in the supervision tree: names are unique (rename one)"
    )]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// A name that is not a name.
    #[error("`{name}` cannot name an actor: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
    /// A component that is not an actor (it does not export the handler).
    #[error("component `{component}` is not an actor: {reason}")]
    NotAnActor {
        /// The component.
        component: String,
        /// What is missing, and the fix.
        reason: String,
    },
    /// An actor failed to start (its `init`/`pre_start` failed, or instantiation did).
    #[error("actor `{actor}` failed to start: {reason}")]
    StartFailed {
        /// The actor.
        actor: String,
        /// Why.
        reason: String,
    },
    /// The system is not running (never started, or terminated).
    #[error("the actor system is not running: {0}")]
    NotRunning(String),
}
