//! Linear memories as slots of a few large regions (Wasmtime's `MemoryCreator`): a
//! memory is a slot the size of the memory limit, its pages the kernel's zero pages
//! until touched, and given back (`MADV_DONTNEED`) when the instance is dropped.
//! Slots are carved from regions of many slots each, readable and writable from the
//! start, so a live instance's memory adds no mapping: the regions are the only
//! mappings, a handful for a hundred thousand instances. Nothing beyond a memory's
//! current size is reachable: the engine compiles explicit bounds checks against it
//! (no guard pages, `memory_may_move`), see [`Density`](super::Density).

use std::sync::{Arc, Mutex, PoisonError};

use wasmtime::{LinearMemory, MemoryCreator, MemoryType};

use super::os;
use super::slots::Slots;

/// The slots, shared by every memory of an engine.
pub(crate) struct MemoryArena {
    inner: Arc<Inner>,
}

struct Inner {
    slot_bytes: usize,
    slots: Mutex<Slots>,
}

impl MemoryArena {
    /// Slots of `slot_bytes` (a multiple of the page size).
    pub(crate) fn new(slot_bytes: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                slot_bytes,
                slots: Mutex::new(Slots::default()),
            }),
        }
    }
}

impl Inner {
    fn take(&self) -> std::io::Result<usize> {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(self.slot_bytes)
    }

    fn give_back(&self, slot: usize, touched: usize) {
        // SAFETY: the memory that held the slot is being dropped; nothing reads it.
        unsafe { os::discard(slot, touched) };
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .give_back(slot);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The engine (which holds the creator) is gone, and with it every memory.
        let slots = self.slots.get_mut().unwrap_or_else(PoisonError::into_inner);
        // SAFETY: every memory holds the arena; none is left.
        unsafe { slots.release() };
    }
}

// SAFETY: every memory is a slot of `slot_bytes` that no other memory holds, zero
// until written, readable and writable throughout, never moved; compiled code checks
// each access against the memory's current size (the engine's configuration, see
// `Density::configure`), so no guard region is needed.
unsafe impl MemoryCreator for MemoryArena {
    fn new_memory(
        &self,
        _ty: MemoryType,
        minimum: usize,
        _maximum: Option<usize>,
        reserved_size_in_bytes: Option<usize>,
        guard_size_in_bytes: usize,
    ) -> Result<Box<dyn LinearMemory>, String> {
        let slot_bytes = self.inner.slot_bytes;
        if guard_size_in_bytes != 0 || reserved_size_in_bytes.is_some_and(|r| r > slot_bytes) {
            return Err(format!(
                "the dense layout's memory slots are {slot_bytes} bytes without guard; \
                 Wasmtime asked for {reserved_size_in_bytes:?} + {guard_size_in_bytes}"
            ));
        }
        if minimum > slot_bytes {
            return Err(format!(
                "a memory of {minimum} bytes does not fit the engine's memory slots of \
                 {slot_bytes} bytes (the memory limit `WasmEngineBuilder::density` was \
                 given)"
            ));
        }
        // The kernel's words stay in the message ("(os error 12)"): `failure.rs`
        // tells the limit behind them.
        let base = self
            .inner
            .take()
            .map_err(|e| format!("could not reserve memory slots: {e}"))?;
        Ok(Box::new(SlotMemory {
            base,
            size: minimum,
            arena: Arc::clone(&self.inner),
        }))
    }
}

/// One memory: a slot and its current size (memories never shrink: what it touched
/// lies below it).
struct SlotMemory {
    base: usize,
    size: usize,
    arena: Arc<Inner>,
}

// SAFETY: see `MemoryCreator for MemoryArena`; growth never moves the base and the
// pages up to the slot's end are readable, writable and zero until written.
unsafe impl LinearMemory for SlotMemory {
    fn byte_size(&self) -> usize {
        self.size
    }

    fn byte_capacity(&self) -> usize {
        self.arena.slot_bytes
    }

    fn grow_to(&mut self, new_size: usize) -> wasmtime::Result<()> {
        if new_size > self.arena.slot_bytes {
            wasmtime::bail!(
                "memory slot of {} bytes cannot hold {new_size}",
                self.arena.slot_bytes
            );
        }
        self.size = new_size;
        Ok(())
    }

    fn as_ptr(&self) -> *mut u8 {
        self.base as *mut u8
    }
}

impl Drop for SlotMemory {
    fn drop(&mut self) {
        let touched = os::round_up(self.size, os::page_size()).unwrap_or(self.arena.slot_bytes);
        self.arena
            .give_back(self.base, touched.min(self.arena.slot_bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::density::os::tests::mappings_in;

    #[test]
    fn slots_share_one_mapping_and_come_back_zeroed() {
        let page = os::page_size();
        let arena = MemoryArena::new(16 * page);
        let ty = MemoryType::new(1, None);
        let a = arena
            .new_memory(ty.clone(), page, None, Some(16 * page), 0)
            .expect("a");
        let mut b = arena
            .new_memory(ty.clone(), page, None, Some(16 * page), 0)
            .expect("b");
        let (region, len) = arena
            .inner
            .slots
            .lock()
            .expect("lock")
            .first_region()
            .expect("a region");
        assert_eq!(mappings_in(region, len), 1);
        assert_eq!(b.as_ptr() as usize - a.as_ptr() as usize, 16 * page);
        b.grow_to(4 * page).expect("grow");
        assert!(b.grow_to(17 * page).is_err(), "beyond the slot");
        // SAFETY: the memory is ours, grown to four pages.
        unsafe { *b.as_ptr().add(3 * page) = 9 };
        let slot = b.as_ptr() as usize;
        drop(b);
        let c = arena
            .new_memory(ty, page, None, Some(16 * page), 0)
            .expect("c");
        assert_eq!(c.as_ptr() as usize, slot, "the freed slot is reused");
        // SAFETY: within the slot, which is readable throughout.
        assert_eq!(unsafe { *c.as_ptr().add(3 * page) }, 0, "and zero again");
        assert_eq!(mappings_in(region, len), 1);
        drop((a, c));
    }

    #[test]
    fn a_memory_larger_than_the_slot_is_refused_with_the_reason() {
        let page = os::page_size();
        let arena = MemoryArena::new(4 * page);
        let err = arena
            .new_memory(MemoryType::new(8, None), 8 * page, None, Some(4 * page), 0)
            .err()
            .expect("refused");
        assert!(
            err.contains("does not fit the engine's memory slots"),
            "{err}"
        );
    }
}
