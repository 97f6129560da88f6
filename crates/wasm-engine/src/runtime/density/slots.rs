//! Equal slots carved from a few large regions, and the slots given back: what the
//! memory and stack arenas share. A region is one mapping of up to 64 GiB (fewer slots
//! when the kernel refuses that much address space at once).

use std::io;

use super::os;

/// Address space one region reserves at most: 64 GiB (8,192 slots of 8 MiB, 32,767
/// stacks of 2 MiB). The user half of x86-64's address space is 128 TiB.
const REGION_BYTES: usize = 64 << 30;

/// The regions and slots of one arena (behind its lock).
#[derive(Debug, Default)]
pub(crate) struct Slots {
    /// Every region: its base and length, unmapped by [`release`](Self::release).
    regions: Vec<(usize, usize)>,
    /// Slots given back, ready for reuse.
    free: Vec<usize>,
    /// The next never-used slot of the last region, and how many it has left.
    next: usize,
    left: usize,
}

impl Slots {
    /// A slot of `slot_bytes`: one given back, else the next of the last region, else
    /// the first of a new region.
    pub(crate) fn take(&mut self, slot_bytes: usize) -> io::Result<usize> {
        if let Some(slot) = self.free.pop() {
            return Ok(slot);
        }
        if self.left == 0 {
            let mut slots = (REGION_BYTES / slot_bytes).max(1);
            let base = loop {
                match os::reserve(slots * slot_bytes) {
                    Ok(base) => break base,
                    Err(_) if slots > 1 => slots /= 2,
                    Err(e) => return Err(e),
                }
            };
            self.regions.push((base, slots * slot_bytes));
            self.next = base;
            self.left = slots;
        }
        let slot = self.next;
        self.next += slot_bytes;
        self.left -= 1;
        Ok(slot)
    }

    /// Takes `slot` back for reuse (its owner made it ready: zero, unguarded).
    pub(crate) fn give_back(&mut self, slot: usize) {
        self.free.push(slot);
    }

    /// Unmaps every region.
    ///
    /// # Safety
    ///
    /// No slot is in use.
    pub(crate) unsafe fn release(&mut self) {
        for (base, len) in self.regions.drain(..) {
            // SAFETY: as the caller promises.
            unsafe { os::release(base, len) };
        }
    }

    /// The first region, for tests.
    #[cfg(test)]
    pub(crate) fn first_region(&self) -> Option<(usize, usize)> {
        self.regions.first().copied()
    }
}
