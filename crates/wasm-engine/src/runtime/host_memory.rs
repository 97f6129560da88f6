//! The host-memory budget of one instance
//! ([`ResourceLimits::host_memory_bytes`](airssys_wasm_core::ResourceLimits::host_memory_bytes)):
//! what host code keeps on an instance's behalf between its calls is charged here and
//! released when the guest lets go of it, so that a guest cannot make the host grow
//! past its limits by holding handles. Beside it, the same budget is Wasmtime's
//! hostcall fuel: the most one call into the host may copy out of the guest.

/// A charge the budget refused: the words a guest gets from the interface's own error,
/// or (as a trap, where the interface has no error to give) what `failure.rs` turns
/// into [`WasmError::ResourceLimitExceeded`](airssys_wasm_core::WasmError::ResourceLimitExceeded).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BudgetExceeded {
    /// What the host was to keep (`"wasi:http fields"`).
    pub(crate) what: &'static str,
    /// The bytes asked for.
    pub(crate) asked: u64,
    /// The bytes held already.
    pub(crate) held: u64,
    /// The budget.
    pub(crate) max: u64,
}

impl std::fmt::Display for BudgetExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "host memory budget exceeded: {} needs {} bytes, and the host already holds {} of \
             the instance's {} (drop handles you no longer need, or raise host_memory in \
             [limits])",
            self.what, self.asked, self.held, self.max
        )
    }
}

impl std::error::Error for BudgetExceeded {}

/// What host code holds for one instance, against its bound.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HostMemory {
    used: u64,
    max: u64,
}

impl HostMemory {
    /// An empty budget of `max` bytes.
    pub(crate) fn new(max: u64) -> Self {
        Self { used: 0, max }
    }

    /// Charges `bytes`, or refuses (charging nothing) saying what was asked, what is
    /// held, the bound and the fix.
    pub(crate) fn charge(&mut self, bytes: u64, what: &'static str) -> Result<(), BudgetExceeded> {
        let would = self.used.saturating_add(bytes);
        if would > self.max {
            return Err(BudgetExceeded {
                what,
                asked: bytes,
                held: self.used,
                max: self.max,
            });
        }
        self.used = would;
        Ok(())
    }

    /// Gives back `bytes` charged earlier.
    pub(crate) fn release(&mut self, bytes: u64) {
        self.used = self.used.saturating_sub(bytes);
    }

    /// Bytes charged now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> u64 {
        self.used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_up_to_the_bound_and_releases() {
        let mut b = HostMemory::new(100);
        assert!(b.charge(60, "a").is_ok());
        let e = b
            .charge(41, "a compare-and-swap handle")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("needs 41 bytes") && e.contains("holds 60 of the instance's 100"),
            "{e}"
        );
        assert_eq!(b.used(), 60);
        b.release(60);
        assert!(b.charge(100, "b").is_ok());
        b.release(1_000);
        assert_eq!(b.used(), 0);
    }
}
