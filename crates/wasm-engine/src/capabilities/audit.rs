//! The audit trail: every refused capability use — a connect outside the allowlist, a
//! path that leaves its preopened directory or a write into a read-only one, a bucket
//! not granted, a write past a bucket's `max_bytes`, an interface not granted — is
//! counted in the call's [`ExecutionReport::capability_denials`], kept as a timestamped
//! [`Denial`] ([`ComponentInstance::last_denials`]) and logged to [`AUDIT_TARGET`],
//! with the component and what it asked for. A call keeps and logs at most
//! [`MAX_AUDIT_RECORDS_PER_CALL`] of each side's (the network's, the rest); past that
//! they are counted only, and one line says so — a guest looping on a refused use cannot
//! flood the host's log or memory.
//!
//! [`ExecutionReport::capability_denials`]: crate::ExecutionReport::capability_denials
//! [`ComponentInstance::last_denials`]: crate::ComponentInstance::last_denials

use chrono::{DateTime, Utc};

/// The `tracing` target of refused capability uses: the audit trail.
pub const AUDIT_TARGET: &str = "airssys_wasm::audit";

/// Refusals one call keeps and logs, of the network and of the rest (key-value, files)
/// each; later ones are counted
/// ([`ExecutionReport::capability_denials`](crate::ExecutionReport::capability_denials))
/// and announced once.
pub const MAX_AUDIT_RECORDS_PER_CALL: u64 = 100;

/// The most of a guest-chosen name (a path, a bucket) a record carries, in characters.
const REQUESTED_CHARS: usize = 256;

/// The most of a reason a record carries, in characters.
const REASON_CHARS: usize = 1024;

/// `text` escaped for a log line (no control characters: a guest-chosen name cannot
/// forge a line or drive a terminal) and cut to `max` characters, marked with its
/// length when cut.
pub(crate) fn cut(text: &str, max: usize) -> String {
    airssys_wasm_core::text::escape(text, max).into_owned()
}

/// One refused capability use.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Denial {
    /// When it was refused.
    pub at: DateTime<Utc>,
    /// What kind of use: `network.connect`, `network.bind`, `network.udp`,
    /// `filesystem`, `keyvalue.open`, `keyvalue.max_bytes`.
    pub capability: &'static str,
    /// What the guest asked for (an address, a path, a bucket), escaped (control
    /// characters as `\n`, `\u{1b}`…) and cut to 256 characters.
    pub requested: String,
    /// Why it was refused, and the fix (escaped, cut to 1,024 characters).
    pub reason: String,
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} `{}`: {}",
            self.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            self.capability,
            self.requested,
            self.reason
        )
    }
}

/// One side's refusals during the current call.
#[derive(Debug, Default)]
pub(crate) struct Trail {
    pub(crate) count: u64,
    pub(crate) records: Vec<Denial>,
}

impl Trail {
    /// Counts a refusal; while under the bound, keeps it and logs it.
    #[cold]
    pub(crate) fn deny(
        &mut self,
        component: &str,
        capability: &'static str,
        requested: &str,
        reason: String,
    ) {
        self.count += 1;
        if self.count > MAX_AUDIT_RECORDS_PER_CALL {
            if self.count == MAX_AUDIT_RECORDS_PER_CALL + 1 {
                tracing::warn!(
                    target: AUDIT_TARGET,
                    component,
                    "more than {MAX_AUDIT_RECORDS_PER_CALL} refusals in one call: the rest are \
                     counted (ExecutionReport::capability_denials), not logged"
                );
            }
            return;
        }
        let requested = cut(requested, REQUESTED_CHARS);
        // The reason may quote what was asked, too.
        let reason = cut(&reason, REASON_CHARS);
        tracing::warn!(
            target: AUDIT_TARGET,
            component,
            capability,
            requested = %requested,
            "denied: {reason}"
        );
        self.records.push(Denial {
            at: Utc::now(),
            capability,
            requested,
            reason,
        });
    }

    /// Forgets the previous call's refusals.
    pub(crate) fn clear(&mut self) {
        self.count = 0;
        self.records.clear();
    }
}

/// A poisoned lock only means a panic elsewhere while holding it; a trail is whole
/// between its updates.
pub(crate) fn lock(m: &std::sync::Mutex<Trail>) -> std::sync::MutexGuard<'_, Trail> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trail_keeps_the_first_refusals_and_counts_them_all() {
        let mut t = Trail::default();
        for i in 0..(MAX_AUDIT_RECORDS_PER_CALL + 5) {
            t.deny("c", "keyvalue.open", &format!("b{i}"), "not granted".into());
        }
        assert_eq!(t.count, MAX_AUDIT_RECORDS_PER_CALL + 5);
        assert_eq!(t.records.len() as u64, MAX_AUDIT_RECORDS_PER_CALL);
        assert_eq!(t.records[0].requested, "b0");
        t.deny("c", "filesystem", &"x".repeat(1000), "y".repeat(5000));
        t.clear();
        assert_eq!((t.count, t.records.len()), (0, 0));
        t.deny("c", "filesystem", &"é".repeat(300), "outside".into());
        assert!(t.records[0].requested.ends_with("… (600 bytes)"));
        assert!(t.records[0].to_string().contains("filesystem `éé"));
        t.deny("c", "filesystem", "p", "y".repeat(5000));
        assert!(t.records[1].reason.ends_with("… (5000 bytes)"));
        assert!(t.records[1].reason.len() < 1100);
        // A forged line cannot get through.
        t.deny(
            "c",
            "keyvalue.open",
            "b\n2026 INFO airssys_wasm::access \x1b]0;x\x07",
            "why".into(),
        );
        let r = &t.records[2].requested;
        assert!(
            !r.contains('\n') && !r.contains('\x1b') && !r.contains('\x07'),
            "{r}"
        );
        assert!(r.starts_with("b\\n2026"), "{r}");
    }
}
