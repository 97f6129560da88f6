//! The per-instance resource limiter.
//!
//! Wasmtime's `StoreLimits` caps each linear memory separately, so a component with N
//! memories would get N times its limit. [`InstanceLimiter`] enforces the limit on the
//! **total** of all linear memories of one instance, and remembers the last denial so
//! that a trap that follows it (a Rust or C guest aborts when allocation fails) can be
//! reported as the memory limit being exceeded.

use wasmtime::ResourceLimiter;

use airssys_wasm_core::ResourceLimits;

/// A growth request that was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denial {
    /// Linear memory: the total the instance would have had.
    Memory { limit: u64, requested_total: u64 },
    /// One table's elements.
    TableElements { limit: u64, requested: u64 },
}

/// Tracks and bounds the memory and tables of one store (one component instance).
#[derive(Debug)]
pub(crate) struct InstanceLimiter {
    /// The limits of the instance: the store's one copy of them.
    limits: ResourceLimits,
    /// Bytes of all linear memories right now.
    total: u64,
    /// The largest `total` seen since the last [`reset_peak`](Self::reset_peak).
    peak: u64,
    /// The size of the last growth granted, undone if Wasmtime then fails to grow.
    last_grant: u64,
    /// The last denial since [`take_denial`](Self::take_denial).
    denial: Option<Denial>,
}

impl InstanceLimiter {
    pub(crate) fn new(limits: &ResourceLimits) -> Self {
        Self {
            limits: limits.clone(),
            total: 0,
            peak: 0,
            last_grant: 0,
            denial: None,
        }
    }

    /// The limits it enforces (and the instance's other limits).
    #[inline]
    pub(crate) fn limits(&self) -> &ResourceLimits {
        &self.limits
    }

    /// Bytes of all linear memories right now.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// The largest total since the last reset.
    pub(crate) fn peak(&self) -> u64 {
        self.peak
    }

    /// Starts a new measurement window (one call).
    pub(crate) fn reset_peak(&mut self) {
        self.peak = self.total;
        self.denial = None;
    }

    /// The last denial, cleared.
    pub(crate) fn take_denial(&mut self) -> Option<Denial> {
        self.denial.take()
    }
}

impl ResourceLimiter for InstanceLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let delta = (desired as u64).saturating_sub(current as u64);
        let requested_total = self.total.saturating_add(delta);
        let limit = self.limits.memory_bytes();
        if requested_total > limit {
            tracing::debug!(limit, requested_total, "memory growth denied");
            self.denial = Some(Denial::Memory {
                limit,
                requested_total,
            });
            return Ok(false);
        }
        self.total = requested_total;
        self.peak = self.peak.max(self.total);
        self.last_grant = delta;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        // Granted by us, refused by Wasmtime (over the memory's own maximum, or the
        // OS): the memory did not grow, so neither does the total.
        tracing::debug!(%error, "memory growth failed after it was granted");
        self.total = self.total.saturating_sub(self.last_grant);
        self.last_grant = 0;
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let limit = self.limits.max_table_elements();
        if desired as u64 > limit {
            self.denial = Some(Denial::TableElements {
                limit,
                requested: desired as u64,
            });
            return Ok(false);
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        count(self.limits.max_instances())
    }

    fn tables(&self) -> usize {
        count(self.limits.max_tables())
    }

    fn memories(&self) -> usize {
        count(self.limits.max_memories())
    }
}

/// A limit on a number of things, as Wasmtime takes it (saturated on 32-bit hosts).
fn count(limit: u64) -> usize {
    usize::try_from(limit).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limiter(mem: u64) -> InstanceLimiter {
        let limits = ResourceLimits::new(mem, 1, Duration::from_secs(1))
            .unwrap()
            .with_max_table_elements(10);
        InstanceLimiter::new(&limits)
    }

    #[test]
    fn total_of_all_memories_is_bounded() {
        let mut l = limiter(10 * 65536);
        // Two memories of 5 pages each fit exactly...
        assert!(l.memory_growing(0, 5 * 65536, None).unwrap());
        assert!(l.memory_growing(0, 5 * 65536, None).unwrap());
        assert_eq!(l.total(), 10 * 65536);
        // ...one more page in either does not.
        assert!(!l.memory_growing(5 * 65536, 6 * 65536, None).unwrap());
        assert_eq!(
            l.take_denial(),
            Some(Denial::Memory {
                limit: 10 * 65536,
                requested_total: 11 * 65536
            })
        );
        assert_eq!(l.take_denial(), None);
    }

    #[test]
    fn failed_growth_is_rolled_back_and_peak_tracked() {
        let mut l = limiter(10 * 65536);
        assert!(l.memory_growing(0, 65536, None).unwrap());
        assert!(l.memory_growing(65536, 3 * 65536, None).unwrap());
        l.memory_grow_failed(wasmtime::Error::msg("over maximum"))
            .unwrap();
        assert_eq!(l.total(), 65536);
        assert_eq!(l.peak(), 3 * 65536);
        l.reset_peak();
        assert_eq!(l.peak(), 65536);
    }

    #[test]
    fn tables_are_bounded() {
        let mut l = limiter(65536);
        assert!(l.table_growing(0, 10, None).unwrap());
        assert!(!l.table_growing(0, 11, None).unwrap());
        assert!(matches!(
            l.take_denial(),
            Some(Denial::TableElements {
                limit: 10,
                requested: 11
            })
        ));
    }
}
