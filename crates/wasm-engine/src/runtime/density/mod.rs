//! The dense layout ([`Density`]): linear memories and fiber stacks as slots of a few
//! large regions (`memory.rs`, `stack.rs`, both carving them with `slots.rs`), the
//! system calls and kernel limits behind them (`os.rs`).

pub(crate) mod memory;
pub(crate) mod os;
pub(crate) mod slots;
pub(crate) mod stack;

use std::sync::Arc;

use wasmtime::Config;

use airssys_wasm_core::{ResourceLimits, WasmError, WasmResult};

/// The dense layout of an engine ([`WasmEngineBuilder::density`]
/// (crate::WasmEngineBuilder::density)): a live instance costs a few KiB and no memory
/// mapping of its own, so that one process holds a hundred thousand of them on the
/// kernel's default settings.
///
/// By default Wasmtime reserves 4 GiB of address space and a guard region for every
/// linear memory, so that compiled code needs no bounds checks, and maps each memory,
/// its copy-on-write image and each store's fiber stack separately: about seven
/// mappings per instance, against Linux's default `vm.max_map_count` of 65,530 (the
/// process fails near 9,400 live instances), and 4 GiB each against the 128 TiB of
/// user address space (near 32,000 even with the bound raised).
///
/// The dense layout instead:
/// - gives each linear memory a slot of `max_memory_bytes` (the largest memory limit
///   the engine serves) in regions of many slots, readable and writable from the
///   start: the regions are the only mappings. A memory's pages are the kernel's zero
///   pages until touched, and go back to the kernel when its instance is dropped.
/// - compiles explicit bounds checks against each memory's current size (no guard
///   region; Wasmtime's `memory_may_move`, which reloads a memory's size and base
///   where it may have changed). This is its price: CPU-bound code that reads and
///   writes memory heavily runs slower (BENCHMARKS.md, "Density"); loops and calls
///   that stay in registers do not.
/// - initialises memories by copying their data segments (no copy-on-write image,
///   which would be a mapping per instance).
/// - takes fiber stacks from slots of large regions too, guarded (a page below each
///   that faults: a lightweight guard region on Linux 6.13 and later, which adds no
///   mapping, else a `PROT_NONE` page) only while a call runs on them or for up to
///   `warm_stacks` stacks that finished a call last (or whose instance was dropped,
///   for the next one); an idle instance's stack beyond those holds no memory and no
///   mapping, only address space.
///
/// Wasmtime's own options fall short of this on the kernel's defaults (measured,
/// BENCHMARKS.md "Density"): reservations sized from the memory limit still map each
/// memory and stack (four mappings, ~16,000 instances); malloc-backed memories map
/// nothing per memory but zero their initial size on the heap (~1.1 MiB resident per
/// Rust instance); a pooling allocator sized to 100,000 cannot be made (a guard page per
/// stack slot at creation: 200,000 mappings). A `MemoryCreator` and a `StackCreator`
/// of our own (`memory.rs`, `stack.rs`) are the place Wasmtime gives for this.
///
/// The Wasmtime configuration belongs to the engine while limits belong to
/// components: an engine's slot holds the largest memory limit it serves, and
/// instantiating a component whose memory limit is larger fails with
/// [`WasmError::InvalidLimits`]; components with much larger limits want an engine of
/// their own (one engine per limit class). Compiled code differs from the default
/// layout's, so the artifact cache keeps the two apart.
///
/// ```
/// use std::time::Duration;
/// use airssys_wasm_core::ResourceLimits;
/// use airssys_wasm_engine::{Density, WasmEngine};
///
/// let limits = ResourceLimits::new(8 << 20, 1_000_000, Duration::from_secs(1))?;
/// let engine = WasmEngine::builder().density(Density::for_limits(&limits)).build()?;
/// assert_eq!(engine.density().map(|d| d.max_memory_bytes), Some(8 << 20));
/// # Ok::<(), airssys_wasm_core::WasmError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Density {
    /// The largest memory limit the engine serves: each linear memory's slot.
    pub max_memory_bytes: u64,
    /// Fiber stacks that keep their pages (and guard) after their call, so that the
    /// instances called most recently start their next call without a system call —
    /// and a dropped instance's stack, for the next instance made: each costs two
    /// mappings and the pages its calls touched (a few KiB). When more would be warm,
    /// the oldest cool together down to half of this. At most a quarter of the
    /// kernel's `vm.max_map_count` (checked by `build`).
    pub warm_stacks: u32,
}

/// [`Density::warm_stacks`] by default.
pub const DEFAULT_WARM_STACKS: u32 = 64;

impl Density {
    /// Slots for memories of up to `max_memory_bytes`, and
    /// [`DEFAULT_WARM_STACKS`] warm stacks.
    pub fn new(max_memory_bytes: u64) -> Self {
        Self {
            max_memory_bytes,
            warm_stacks: DEFAULT_WARM_STACKS,
        }
    }

    /// Slots for instances running under `limits` (their memory limit).
    pub fn for_limits(limits: &ResourceLimits) -> Self {
        Self::new(limits.memory_bytes())
    }

    /// How many fiber stacks keep their pages after their call.
    #[must_use]
    pub fn with_warm_stacks(mut self, warm_stacks: u32) -> Self {
        self.warm_stacks = warm_stacks;
        self
    }

    /// The slot size in bytes, or why there is none.
    fn slot_bytes(&self) -> WasmResult<usize> {
        let page = os::page_size();
        usize::try_from(self.max_memory_bytes)
            .ok()
            .filter(|b| *b > 0 && *b <= 1 << 32)
            .and_then(|b| os::round_up(b, page))
            .ok_or_else(|| WasmError::EngineInitialization {
                reason: format!(
                    "the dense layout's memory slot must be between 1 byte and 4 GiB \
                     (Density::new({}))",
                    self.max_memory_bytes
                ),
                source: None,
            })
    }

    /// Sets up `config` for the dense layout with fiber stacks of `stack_bytes`; the
    /// stacks, for the engine to lease them to instances.
    pub(crate) fn configure(
        &self,
        config: &mut Config,
        stack_bytes: usize,
    ) -> WasmResult<Arc<stack::StackArena>> {
        let slot = self.slot_bytes()?;
        // A warm stack keeps its guard page: two mappings. Half the kernel's bound at
        // most, so that warm stacks alone never exhaust it.
        if let Some(max) = os::max_map_count()
            && u64::from(self.warm_stacks).saturating_mul(2) > max / 2
        {
            return Err(WasmError::EngineInitialization {
                reason: format!(
                    "{} warm stacks would hold up to {} mappings, more than half of \
                         the kernel's vm.max_map_count ({max}): choose at most {} \
                         (Density::with_warm_stacks)",
                    self.warm_stacks,
                    u64::from(self.warm_stacks).saturating_mul(2),
                    max / 4
                ),
                source: None,
            });
        }
        let stacks = Arc::new(stack::StackArena::new(
            stack_bytes,
            usize::try_from(self.warm_stacks).unwrap_or(usize::MAX),
        ));
        config
            .memory_reservation(slot as u64)
            .memory_guard_size(0)
            .memory_reservation_for_growth(0)
            .guard_before_linear_memory(false)
            // Bounds checks against the current size: the slot is readable beyond it.
            .memory_may_move(true)
            .memory_init_cow(false)
            .with_host_memory(Arc::new(memory::MemoryArena::new(slot)))
            .with_host_stack(stacks.clone());
        Ok(stacks)
    }

    /// Refuses `limits` whose memory limit is larger than the slot.
    pub(crate) fn check(&self, component: &str, limits: &ResourceLimits) -> WasmResult<()> {
        if limits.memory_bytes() <= self.max_memory_bytes {
            return Ok(());
        }
        Err(WasmError::InvalidLimits {
            reason: format!(
                "component `{component}`'s memory limit of {} bytes is larger than the \
                 engine's dense memory slots of {} bytes (WasmEngineBuilder::density): \
                 lower its [limits] memory to at most that, or run it on an engine built \
                 for the larger limit",
                limits.memory_bytes(),
                self.max_memory_bytes
            ),
        })
    }
}
