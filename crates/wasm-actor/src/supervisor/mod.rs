//! Supervision: the tree as written (`spec.rs`), a supervisor at work (`run.rs`), and
//! what it reports ([`SupervisorEvent`], also logged to [`ACTOR_TARGET`]).
//!
//! [`ACTOR_TARGET`]: crate::ACTOR_TARGET

pub(crate) mod run;
pub(crate) mod spec;

use std::sync::Arc;
use std::time::Duration;

use crate::exit::ExitReason;

pub(crate) use run::{Reporter, SupervisorLink};

/// What supervisors report, in order, to [`ActorSystem::events`](crate::ActorSystem::events).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SupervisorEvent {
    /// A child's instance started (`incarnation` counts up across the system).
    Started {
        /// The supervisor.
        supervisor: Arc<str>,
        /// The child's address.
        child: String,
        /// Which instance.
        incarnation: u64,
    },
    /// A child's instance ended.
    Exited {
        /// The supervisor.
        supervisor: Arc<str>,
        /// The child.
        child: String,
        /// Why: trap, fuel, timeout, memory… are distinct failure kinds.
        reason: ExitReason,
        /// Whether its policy restarts it.
        restart: bool,
    },
    /// A child is about to be restarted.
    Restarting {
        /// The supervisor.
        supervisor: Arc<str>,
        /// The child.
        child: String,
        /// After this delay (backoff).
        delay: Duration,
        /// Restarts in the supervisor's current window, this one included.
        restarts_in_window: u32,
    },
    /// A supervisor gave up (restart intensity exceeded, or a child asked): its
    /// children are stopped and its parent decides.
    Escalated {
        /// The supervisor.
        supervisor: Arc<str>,
        /// Why.
        reason: String,
    },
    /// The root supervisor gave up: the system stopped.
    Terminated {
        /// Why.
        reason: String,
    },
}
