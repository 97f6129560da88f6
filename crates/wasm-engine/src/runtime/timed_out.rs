//! The marker error of a call whose wall-clock deadline passed: raised by the epoch
//! callback (`deadline.rs`) or by host code that finds the call out of time (the
//! key-value store), and told apart by `failure.rs`. A leaf, so that capabilities can
//! raise it without depending on the engine.

/// The call's wall-clock deadline passed.
#[derive(Debug)]
pub(crate) struct TimedOut;

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("wall-clock deadline exceeded")
    }
}

impl std::error::Error for TimedOut {}
