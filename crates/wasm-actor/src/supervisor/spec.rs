//! The supervision tree as written: [`SupervisorSpec`] (strategy, restart intensity,
//! backoff, children in start order) and [`ChildSpec`] (an actor or a supervisor, its
//! [`RestartPolicy`], mailbox and [`ShutdownPolicy`]) — airssys-rt's and OTP's words.

use std::collections::HashSet;
use std::time::Duration;

pub use airssys_wasm_core::actor::{RestartPolicy, SupervisionStrategy};

use crate::actor::{Actor, Factory, rust_factory};
use crate::address::check_name;
use crate::component::ComponentActor;
use crate::error::ActorSystemError;
use crate::mailbox::MailboxConfig;

/// How long a stopping child may take to finish: drain its mailbox on a system
/// shutdown, or finish the message in hand when a sibling's failure stops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownPolicy {
    /// At most this long, then it is stopped where it is (a component's call is
    /// abandoned; its instance dropped).
    Graceful(Duration),
    /// At once: the message in hand is abandoned (and goes to the dead letters).
    Immediate,
    /// As long as it takes (supervisors' default, as in OTP).
    Infinity,
}

impl Default for ShutdownPolicy {
    fn default() -> Self {
        Self::Graceful(Duration::from_secs(5))
    }
}

/// At most `max_restarts` restarts within `within`: one more and the supervisor gives
/// up — stops its children and escalates to its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartIntensity {
    /// Restarts allowed in the window.
    pub max_restarts: u32,
    /// The window.
    pub within: Duration,
}

impl Default for RestartIntensity {
    /// Three restarts in 60 seconds (airssys-rt's default).
    fn default() -> Self {
        Self {
            max_restarts: 3,
            within: Duration::from_secs(60),
        }
    }
}

/// Delays between restarts: the first restart in a window is immediate, the n-th waits
/// `initial × 2^(n−2)`, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartBackoff {
    /// The delay before the second restart in a window.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Default for RestartBackoff {
    /// 100 ms, doubling, at most 30 s (airssys-rt's defaults).
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
        }
    }
}

impl RestartBackoff {
    /// No delays.
    pub fn none() -> Self {
        Self {
            initial: Duration::ZERO,
            max: Duration::ZERO,
        }
    }

    /// The delay before the `n`-th restart of a window (1-based).
    pub fn delay(&self, n: u32) -> Duration {
        if n <= 1 {
            return Duration::ZERO;
        }
        let factor = 1u32.checked_shl(n - 2).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// A supervisor: its children, in start order, and how it restarts them.
#[derive(Clone)]
pub struct SupervisorSpec {
    pub(crate) name: String,
    pub(crate) strategy: SupervisionStrategy,
    pub(crate) intensity: RestartIntensity,
    pub(crate) backoff: RestartBackoff,
    pub(crate) children: Vec<ChildSpec>,
}

impl std::fmt::Debug for SupervisorSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupervisorSpec")
            .field("name", &self.name)
            .field("strategy", &self.strategy)
            .field("children", &self.children.len())
            .finish_non_exhaustive()
    }
}

impl SupervisorSpec {
    /// A one-for-one supervisor with the default intensity and backoff, no children.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            strategy: SupervisionStrategy::OneForOne,
            intensity: RestartIntensity::default(),
            backoff: RestartBackoff::default(),
            children: Vec::new(),
        }
    }

    /// With `strategy`.
    #[must_use]
    pub fn strategy(mut self, strategy: SupervisionStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// With at most `max_restarts` restarts `within` a window.
    #[must_use]
    pub fn intensity(mut self, max_restarts: u32, within: Duration) -> Self {
        self.intensity = RestartIntensity {
            max_restarts,
            within,
        };
        self
    }

    /// With `backoff` between restarts.
    #[must_use]
    pub fn backoff(mut self, backoff: RestartBackoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// With one more child (started after the others).
    #[must_use]
    pub fn child(mut self, child: ChildSpec) -> Self {
        self.children.push(child);
        self
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks the whole tree before anything starts: every name valid and unique.
    pub(crate) fn check(&self) -> Result<(), ActorSystemError> {
        fn walk<'a>(
            spec: &'a SupervisorSpec,
            seen: &mut HashSet<&'a str>,
        ) -> Result<(), ActorSystemError> {
            for name in std::iter::once(spec.name.as_str())
                .chain(spec.children.iter().map(|c| c.name.as_str()))
            {
                check_name(name).map_err(|reason| ActorSystemError::InvalidName {
                    name: name.to_owned(),
                    reason,
                })?;
            }
            if !seen.insert(&spec.name) {
                return Err(ActorSystemError::DuplicateName {
                    name: spec.name.clone(),
                });
            }
            for child in &spec.children {
                match &child.kind {
                    ChildKind::Supervisor(sub) => {
                        if sub.name != child.name {
                            return Err(ActorSystemError::InvalidName {
                                name: child.name.clone(),
                                reason: format!("the supervisor is named `{}`", sub.name),
                            });
                        }
                        walk(sub, seen)?;
                    }
                    ChildKind::Actor(_) => {
                        if !seen.insert(&child.name) {
                            return Err(ActorSystemError::DuplicateName {
                                name: child.name.clone(),
                            });
                        }
                    }
                }
            }
            Ok(())
        }
        walk(self, &mut HashSet::new())
    }
}

/// One child of a supervisor.
#[derive(Clone)]
pub struct ChildSpec {
    pub(crate) name: String,
    pub(crate) kind: ChildKind,
    pub(crate) restart: RestartPolicy,
    pub(crate) mailbox: MailboxConfig,
    pub(crate) shutdown: ShutdownPolicy,
}

impl std::fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildSpec")
            .field("name", &self.name)
            .field("restart", &self.restart)
            .field("mailbox", &self.mailbox)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub(crate) enum ChildKind {
    Actor(Factory),
    Supervisor(SupervisorSpec),
}

impl ChildSpec {
    /// A Rust actor named `name`, made by `make` at start and at every restart.
    pub fn actor<A, F>(name: &str, make: F) -> Self
    where
        A: Actor,
        F: Fn() -> A + Send + Sync + 'static,
    {
        Self::with_factory(name, rust_factory(make))
    }

    /// A component actor named `name` (its mailbox as its manifest says, when it says).
    pub fn component(name: &str, component: ComponentActor) -> Self {
        let mailbox = component.mailbox();
        let mut spec = Self::with_factory(name, component.factory());
        spec.mailbox = mailbox;
        spec
    }

    /// A supervisor (a subtree).
    pub fn supervisor(spec: SupervisorSpec) -> Self {
        Self {
            name: spec.name.clone(),
            kind: ChildKind::Supervisor(spec),
            restart: RestartPolicy::Permanent,
            mailbox: MailboxConfig::default(),
            shutdown: ShutdownPolicy::Infinity,
        }
    }

    pub(crate) fn with_factory(name: &str, factory: Factory) -> Self {
        Self {
            name: name.to_owned(),
            kind: ChildKind::Actor(factory),
            restart: RestartPolicy::Permanent,
            mailbox: MailboxConfig::default(),
            shutdown: ShutdownPolicy::default(),
        }
    }

    /// With `policy`.
    #[must_use]
    pub fn restart(mut self, policy: RestartPolicy) -> Self {
        self.restart = policy;
        self
    }

    /// With this mailbox.
    #[must_use]
    pub fn mailbox(mut self, mailbox: MailboxConfig) -> Self {
        self.mailbox = mailbox;
        self
    }

    /// With this shutdown policy.
    #[must_use]
    pub fn shutdown(mut self, policy: ShutdownPolicy) -> Self {
        self.shutdown = policy;
        self
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_immediate_then_doubles_up_to_its_maximum() {
        let b = RestartBackoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let d: Vec<_> = (1..=7).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(d, [0, 100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.delay(200), Duration::from_secs(1));
    }
}
