//! Fiber stacks for the dense layout (Wasmtime's `StackCreator`). A store keeps the
//! stack of its first async call for its whole life (Wasmtime caches it), so an idle
//! instance would hold one: two mappings (the stack and its guard page) and the pages
//! its calls touched. Here a stack is a slot of a large region that is readable and
//! writable throughout, and what a stack costs follows its use, through the
//! instance's [`StackLease`]:
//!
//! - **running**: its guard page is armed (`PROT_NONE`: the region's mapping splits
//!   in three), so a host function that overflows faults instead of writing into the
//!   next stack;
//! - **warm** (its call ended, one of the last `warm` to end): it keeps its guard and
//!   pages, so an instance called again soon makes no system call;
//! - **cold**: its pages are given back and its guard disarmed (the mapping merges
//!   again): address space only, no memory, no mapping.
//!
//! A stack whose store is dropped (its instance gone, or restarted) stays warm as a
//! *spare*, and the next stack made takes it as it is — no system call, its pages
//! already there — unless Wasmtime asks for a zeroed stack (`async_stack_zeroing`),
//! as its pooling allocator reuses stacks. Spares count towards the warm bound.
//! When more than `warm` stacks would be warm, spares and then the oldest warm stacks
//! cool in one go, down to half the bound: a slot's neighbours are usually cooled
//! with it (instances started one after another take adjacent slots), and adjacent
//! stacks cool with one `mprotect` and one `madvise` — each of which, on a process
//! running on several CPUs, interrupts the others to flush their TLBs.
//!
//! Mappings thus follow the calls under way (plus the warm stacks), not the instances
//! alive. On Linux 6.13 and later a guard page is a lightweight guard region instead
//! (`MADV_GUARD_INSTALL`, removed when the stack cools): the same fault, but no
//! mapping split or merged (a protection change does that under the process's
//! memory-map lock, for a few microseconds a call). It is removed when its stack
//! cools all the same: a guard holds the page-table page it is in (4 KiB per idle
//! instance), which the kernel frees once nothing is left in it. The lease learns which stack is its store's when Wasmtime makes it, during
//! a poll of the instance's call (a thread-local set around each poll, see
//! [`StackLease::enter`]); a stack made outside a leased call stays guarded for its
//! whole life, like Wasmtime's own.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use wasmtime::{StackCreator, StackMemory};

use super::os;
use super::slots::Slots;

/// The stacks of an engine.
pub(crate) struct StackArena {
    inner: Arc<Inner>,
}

struct Inner {
    page: usize,
    /// A guard page and the stack above it.
    slot_bytes: usize,
    warm_max: usize,
    /// Guard pages are lightweight guard regions (no protection changes).
    light: bool,
    /// Whether a refused protection change has been logged: once per engine, as the
    /// refusal (the mapping bound reached) would otherwise repeat at every call.
    warned: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    slots: Slots,
    /// The leases whose stacks are warm, oldest first.
    warm: VecDeque<Arc<StackLease>>,
    /// Slots of dropped stacks, guarded and with their pages, for the next stack.
    spare: Vec<usize>,
}

/// Which stack an instance's store runs on, and in which state. Its fields change
/// only under the arena's lock (atomics only to share them).
pub(crate) struct StackLease {
    arena: Arc<Inner>,
    /// The slot's base (its guard page), 0 before the store's first stack.
    slot: AtomicUsize,
    guarded: AtomicBool,
    warm: AtomicBool,
}

impl std::fmt::Debug for StackLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackLease")
            .field("slot", &self.slot.load(Relaxed))
            .field("guarded", &self.guarded.load(Relaxed))
            .field("warm", &self.warm.load(Relaxed))
            .finish()
    }
}

thread_local! {
    /// The lease of the call being polled on this thread.
    static CURRENT: RefCell<Option<Arc<StackLease>>> = const { RefCell::new(None) };
}

impl StackArena {
    /// Stacks for `stack_bytes` of Wasmtime's fiber stack, of which at most `warm_max`
    /// keep their pages after their call.
    pub(crate) fn new(stack_bytes: usize, warm_max: usize) -> Self {
        Self::with_guards(stack_bytes, warm_max, os::light_guards())
    }

    /// As [`new`](Self::new), with lightweight guard regions (`light`, where the kernel
    /// has them) or guard pages protected and unprotected.
    pub(crate) fn with_guards(stack_bytes: usize, warm_max: usize, light: bool) -> Self {
        let page = os::page_size();
        let stack = os::round_up(stack_bytes, page).unwrap_or(stack_bytes);
        Self {
            inner: Arc::new(Inner {
                page,
                slot_bytes: stack + page,
                warm_max,
                light,
                warned: AtomicBool::new(false),
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// A lease for one instance's store.
    pub(crate) fn lease(&self) -> Arc<StackLease> {
        Arc::new(StackLease {
            arena: Arc::clone(&self.inner),
            slot: AtomicUsize::new(0),
            guarded: AtomicBool::new(false),
            warm: AtomicBool::new(false),
        })
    }
}

impl State {
    /// Takes `lease` off the warm list, if it is on it.
    fn unwarm(&mut self, lease: &StackLease) {
        if lease.warm.swap(false, Relaxed)
            && let Some(i) = self.warm.iter().position(|l| std::ptr::eq(&**l, lease))
        {
            self.warm.remove(i);
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Logs a refused protection change, the first time only.
    #[cold]
    fn warn_once(&self, what: &str) {
        if !self.warned.swap(true, Relaxed) {
            tracing::warn!(
                mappings = ?os::mappings(),
                max = ?os::max_map_count(),
                "{what} (the kernel's mapping bound, vm.max_map_count; logged once)"
            );
        }
    }

    /// Arms or disarms the guard pages of the whole slots in `[start, start + len)`.
    fn guard(&self, start: usize, len: usize, on: bool) -> std::io::Result<()> {
        // SAFETY: a slot's guard page is below its stack: nothing runs on it; disarming
        // a run, its stacks are not in use (their guards stay only for what runs).
        unsafe {
            if self.light {
                os::light_guard(start, len, on)
            } else {
                os::protect(start, len, on)
            }
        }
    }

    /// Gives a stack's pages back and disarms its guard: no call runs on it.
    fn cool(&self, slot: usize, guarded: bool) {
        if guarded && self.guard(slot, self.page, false).is_err() {
            // The guard stays; the stack keeps working, merely not merged back.
            self.warn_once("could not disarm a fiber stack's guard page");
        }
        // SAFETY: no call runs on the stack (its lease's call ended, or its store is
        // gone).
        unsafe { os::discard(slot + self.page, self.slot_bytes - self.page) };
    }

    /// Once more than `warm_max` stacks are warm (spares included), cools spares and
    /// then the oldest warm stacks down to half the bound, adjacent slots together.
    fn trim(&self, state: &mut State) {
        if state.warm.len() + state.spare.len() <= self.warm_max {
            return;
        }
        let keep = self.warm_max - self.warm_max / 2;
        let mut cool: Vec<usize> = Vec::with_capacity(self.warm_max + 1 - keep);
        while state.warm.len() + state.spare.len() > keep {
            if let Some(slot) = state.spare.pop() {
                cool.push(slot);
                // Free again once cooled below (nothing takes it while we hold the lock).
                state.slots.give_back(slot);
                continue;
            }
            let Some(old) = state.warm.pop_front() else {
                break;
            };
            old.warm.store(false, Relaxed);
            // Disarmed below (a no-op where it was not armed).
            old.guarded.store(false, Relaxed);
            let slot = old.slot.load(Relaxed);
            if slot != 0 {
                cool.push(slot);
            }
        }
        cool.sort_unstable();
        let mut i = 0;
        while i < cool.len() {
            let start = cool[i];
            let mut end = start + self.slot_bytes;
            i += 1;
            while cool.get(i) == Some(&end) {
                end += self.slot_bytes;
                i += 1;
            }
            // The run is whole slots none of which a call runs on (their leases'
            // calls ended, or their stores are gone): their guards go — protected
            // pages become readable again in one call, which merges the region's
            // mapping back; lightweight guards one page at a time (their removal
            // walks every page of the range it is given).
            let disarmed = if self.light {
                (start..end)
                    .step_by(self.slot_bytes)
                    .try_for_each(|slot| self.guard(slot, self.page, false))
            } else {
                self.guard(start, end - start, false)
            };
            if disarmed.is_err() {
                self.warn_once("could not disarm a fiber stack's guard page");
            }
            // SAFETY: as above; the stacks' contents are not needed.
            unsafe { os::discard(start, end - start) };
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        // SAFETY: every stack holds the arena; none is left.
        unsafe { state.slots.release() };
    }
}

impl StackLease {
    /// A call of the lease's instance begins: its stack, if it has one, is taken off
    /// the warm list, its guard armed.
    pub(crate) fn begin(&self) {
        let slot = self.slot.load(Relaxed);
        if slot == 0 {
            return;
        }
        let mut state = self.arena.lock();
        state.unwarm(self);
        if !self.guarded.load(Relaxed) {
            match self.arena.guard(slot, self.arena.page, true) {
                Ok(()) => self.guarded.store(true, Relaxed),
                // Out of mappings: the call runs, unguarded, as a warm stack would
                // have had it before this layout; say so.
                Err(_) => self
                    .arena
                    .warn_once("could not arm a fiber stack's guard page; calls run unguarded"),
            }
        }
    }

    /// The call ended: the stack joins the warm ones, and the oldest beyond the bound
    /// cools.
    pub(crate) fn end(self: &Arc<Self>) {
        if self.slot.load(Relaxed) == 0 {
            return;
        }
        let mut state = self.arena.lock();
        if !self.warm.swap(true, Relaxed) {
            state.warm.push_back(Arc::clone(self));
        }
        self.arena.trim(&mut state);
    }

    /// Runs `poll` with this lease as the thread's current one, so that a stack
    /// Wasmtime makes during it is this lease's.
    #[inline]
    pub(crate) fn enter<R>(self: &Arc<Self>, poll: impl FnOnce() -> R) -> R {
        struct Reset(Option<Arc<StackLease>>);
        impl Drop for Reset {
            fn drop(&mut self) {
                let previous = self.0.take();
                CURRENT.with(|c| *c.borrow_mut() = previous);
            }
        }
        let previous = CURRENT.with(|c| c.borrow_mut().replace(Arc::clone(self)));
        let _reset = Reset(previous);
        poll()
    }

    /// Whether the lease's stack keeps its pages now (for tests).
    #[cfg(test)]
    fn is_warm(&self) -> bool {
        self.warm.load(Relaxed)
    }
}

// SAFETY: each stack is a slot no other stack holds: a guard page, armed while
// anything may run on the stack (from its making to its lease's `end`, and for its
// whole life when it has no lease), below `slot_bytes - page` bytes readable and
// writable — zero when made (fresh, or given back with MADV_DONTNEED), except a
// spare taken when Wasmtime does not ask for zeroed stacks: then it holds what the
// dropped store's calls left on it, as Wasmtime's pooling allocator reuses stacks
// (no guest can address a fiber stack; Wasm's own stack is in its linear memory).
unsafe impl StackCreator for StackArena {
    fn new_stack(&self, size: usize, zeroed: bool) -> wasmtime::Result<Box<dyn StackMemory>> {
        let inner = &self.inner;
        if size + inner.page > inner.slot_bytes {
            wasmtime::bail!(
                "a fiber stack of {size} bytes does not fit the engine's stack slots of {}",
                inner.slot_bytes - inner.page
            );
        }
        let lease = CURRENT
            .with(|c| c.borrow().clone())
            .filter(|l| l.slot.load(Relaxed) == 0);
        let mut state = inner.lock();
        let slot = if let Some(slot) = state.spare.pop() {
            if zeroed {
                // SAFETY: a spare is a dropped stack's: nothing runs on it.
                unsafe { os::discard(slot + inner.page, inner.slot_bytes - inner.page) };
            }
            slot
        } else {
            let slot = state.slots.take(inner.slot_bytes).map_err(|e| {
                wasmtime::Error::msg(format!("could not reserve fiber stacks: {e}"))
            })?;
            if let Err(e) = inner.guard(slot, inner.page, true) {
                state.slots.give_back(slot);
                wasmtime::bail!("could not guard a fiber stack: {e}");
            }
            slot
        };
        if let Some(lease) = &lease {
            lease.slot.store(slot, Relaxed);
            lease.guarded.store(true, Relaxed);
        }
        Ok(Box::new(Stack {
            slot,
            lease,
            arena: Arc::clone(inner),
        }))
    }
}

/// One stack: its slot, and the lease that manages it (none: always guarded).
struct Stack {
    slot: usize,
    lease: Option<Arc<StackLease>>,
    arena: Arc<Inner>,
}

// SAFETY: see `StackCreator for StackArena`.
unsafe impl StackMemory for Stack {
    fn top(&self) -> *mut u8 {
        (self.slot + self.arena.slot_bytes) as *mut u8
    }

    fn range(&self) -> Range<usize> {
        self.slot + self.arena.page..self.slot + self.arena.slot_bytes
    }

    fn guard_range(&self) -> Range<*mut u8> {
        self.slot as *mut u8..(self.slot + self.arena.page) as *mut u8
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let mut state = self.arena.lock();
        let guarded = match &self.lease {
            Some(lease) => {
                state.unwarm(lease);
                lease.slot.store(0, Relaxed);
                lease.guarded.swap(false, Relaxed)
            }
            None => true,
        };
        if guarded && self.arena.warm_max > 0 {
            // Guarded, its pages there: the next stack's as it is.
            state.spare.push(self.slot);
            self.arena.trim(&mut state);
        } else {
            self.arena.cool(self.slot, guarded);
            state.slots.give_back(self.slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the page at `addr` is inaccessible, by `/proc/self/maps`.
    fn guarded(addr: usize) -> bool {
        mapping_of(addr).2 == "---p"
    }

    fn guard_of(stack: &dyn StackMemory) -> usize {
        stack.guard_range().start as usize
    }

    #[test]
    fn a_leased_stack_is_guarded_while_running_and_cools_beyond_the_warm_bound() {
        let page = os::page_size();
        let arena = StackArena::with_guards(8 * page, 1, false);
        let (a, b) = (arena.lease(), arena.lease());
        let stack_a = a.enter(|| arena.new_stack(8 * page, false)).expect("a");
        assert!(guarded(guard_of(&*stack_a)), "guard armed while a runs");
        // SAFETY: the stack is ours; touch its top page.
        unsafe { *stack_a.top().sub(1) = 1 };
        a.end();
        assert!(a.is_warm());
        assert!(guarded(guard_of(&*stack_a)), "warm: guard kept");
        let stack_b = b.enter(|| arena.new_stack(8 * page, false)).expect("b");
        assert!(guarded(guard_of(&*stack_b)));
        b.end();
        // The warm bound is 1: a, the oldest, cooled — pages back, guard off.
        assert!(!a.is_warm() && b.is_warm());
        assert!(!guarded(guard_of(&*stack_a)) && guarded(guard_of(&*stack_b)));
        // SAFETY: the stack is cold but still a's, readable; its pages are zero again.
        assert_eq!(unsafe { *stack_a.top().sub(1) }, 0);
        a.begin();
        assert!(
            guarded(guard_of(&*stack_a)),
            "a's next call arms its guard again"
        );
        let (ga, gb) = (guard_of(&*stack_a), guard_of(&*stack_b));
        drop(stack_a);
        // a's slot is a spare now, beyond the bound with b: cooled.
        assert!(!guarded(ga));
        drop(stack_b);
        assert!(guarded(gb), "b's slot: a spare, guarded, within the bound");
    }

    #[test]
    fn a_dropped_stack_is_the_next_ones_as_it_is_unless_a_zeroed_one_is_asked_for() {
        let page = os::page_size();
        let arena = StackArena::with_guards(8 * page, 4, false);
        let a = arena.lease();
        let stack = a.enter(|| arena.new_stack(8 * page, false)).expect("a");
        let slot = guard_of(&*stack);
        // SAFETY: the stack is ours; touch its top page.
        unsafe { *stack.top().sub(1) = 7 };
        a.end();
        drop(stack);
        assert!(guarded(slot), "a spare keeps its guard");
        let b = arena.lease();
        let stack = b.enter(|| arena.new_stack(8 * page, false)).expect("b");
        assert_eq!(guard_of(&*stack), slot, "the spare is taken");
        // SAFETY: as above.
        assert_eq!(unsafe { *stack.top().sub(1) }, 7, "as it was left");
        b.end();
        drop(stack);
        let c = arena.lease();
        let stack = c.enter(|| arena.new_stack(8 * page, true)).expect("c");
        assert_eq!(guard_of(&*stack), slot);
        assert!(guarded(slot));
        // SAFETY: as above.
        assert_eq!(unsafe { *stack.top().sub(1) }, 0, "zeroed when asked");
    }

    #[test]
    fn beyond_the_bound_the_oldest_cool_together_down_to_half_of_it() {
        let page = os::page_size();
        let arena = StackArena::with_guards(8 * page, 4, false);
        let leases: Vec<_> = (0..5).map(|_| arena.lease()).collect();
        let stacks: Vec<_> = leases
            .iter()
            .map(|l| l.enter(|| arena.new_stack(8 * page, false)).expect("stack"))
            .collect();
        for (lease, stack) in leases.iter().zip(&stacks) {
            // SAFETY: the stack is ours; touch its top page.
            unsafe { *stack.top().sub(1) = 1 };
            lease.end();
        }
        // The fifth end went beyond 4: the three oldest cooled, two are left warm.
        let warm: Vec<bool> = leases.iter().map(|l| l.is_warm()).collect();
        assert_eq!(warm, [false, false, false, true, true]);
        for (i, stack) in stacks.iter().enumerate() {
            assert_eq!(guarded(guard_of(&**stack)), i >= 3, "stack {i}");
            // SAFETY: cold or warm, the stack is still its lease's and readable.
            let top = unsafe { *stack.top().sub(1) };
            assert_eq!(top, u8::from(i >= 3), "stack {i}'s pages");
        }
    }

    #[test]
    fn a_stack_made_outside_a_lease_stays_guarded_and_slots_are_reused() {
        let page = os::page_size();
        let arena = StackArena::with_guards(8 * page, 0, false);
        let s = arena.new_stack(8 * page, false).expect("s");
        let slot = guard_of(&*s);
        assert!(guarded(slot));
        drop(s);
        assert!(!guarded(slot));
        let t = arena.new_stack(4 * page, false).expect("t");
        assert_eq!(guard_of(&*t), slot);
        assert!(
            arena.new_stack(9 * page, false).is_err(),
            "larger than a slot"
        );
    }

    /// Whether writing to `addr` faults, in a child process.
    fn faults(addr: usize) -> bool {
        // SAFETY: the child only resets a signal's action, writes and exits.
        match unsafe { libc::fork() } {
            0 => {
                // SAFETY: as above; a fault kills the child, else it exits 0.
                unsafe {
                    libc::signal(libc::SIGSEGV, libc::SIG_DFL);
                    libc::signal(libc::SIGBUS, libc::SIG_DFL);
                    std::ptr::write_volatile(addr as *mut u8, 1);
                    libc::_exit(0)
                }
            }
            pid if pid > 0 => {
                let mut status = 0;
                // SAFETY: `pid` is our child.
                unsafe { libc::waitpid(pid, &mut status, 0) };
                libc::WIFSIGNALED(status)
            }
            _ => panic!("fork failed"),
        }
    }

    /// The mapping holding `addr` (start, end, permissions), by `/proc/self/maps`.
    fn mapping_of(addr: usize) -> (usize, usize, String) {
        let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
        maps.lines()
            .find_map(|l| {
                let (range, rest) = l.split_once(' ')?;
                let (a, b) = range.split_once('-')?;
                let (a, b) = (
                    usize::from_str_radix(a, 16).ok()?,
                    usize::from_str_radix(b, 16).ok()?,
                );
                (a <= addr && addr < b).then(|| (a, b, rest.get(..4).unwrap_or(rest).to_owned()))
            })
            .expect("mapped")
    }

    #[test]
    fn a_light_guard_faults_adds_no_mapping_and_goes_when_its_stack_cools() {
        if !os::light_guards() {
            eprintln!("this kernel has no lightweight guard regions (Linux 6.13+): skipped");
            return;
        }
        let page = os::page_size();
        let arena = StackArena::with_guards(8 * page, 1, true);
        let (a, b) = (arena.lease(), arena.lease());
        let stack_a = a.enter(|| arena.new_stack(8 * page, false)).expect("a");
        let guard = stack_a.guard_range().start as usize;
        let stack_b = b.enter(|| arena.new_stack(8 * page, false)).expect("b");
        // One readable mapping from a's guard through b's stack: no split.
        let (start, end, perms) = mapping_of(guard);
        assert!(
            start <= guard && end >= stack_b.top() as usize,
            "split at a guard"
        );
        assert!(perms.starts_with("rw"), "{perms}");
        assert!(faults(guard), "the guard page faults");
        assert!(!faults(guard + page), "the stack above it does not");
        // SAFETY: the stack is ours; touch its top page.
        unsafe { *stack_a.top().sub(1) = 1 };
        a.end();
        b.end();
        // The bound is 1: a cooled — its pages back, its guard still there.
        assert!(!a.is_warm() && b.is_warm());
        // SAFETY: the stack is cold but still a's, readable.
        assert_eq!(unsafe { *stack_a.top().sub(1) }, 0);
        assert!(!faults(guard), "a cold stack's guard is removed");
        a.begin();
        assert!(faults(guard), "and installed again when a call begins");
        let (start, _, perms) = mapping_of(guard);
        assert!(start <= guard && perms.starts_with("rw"), "{perms}");
        drop((stack_a, stack_b));
    }
}
