//! [`WasmEngine`]: the shared Wasmtime engine, its linker, how a running guest is
//! interrupted for its timeout ([`Interruption`]) and, for epochs, the ticker.

use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::wasmparser::WasmFeatures;
use wasmtime::{Config, Engine, OptLevel, Strategy};

use airssys_wasm_core::{WasmError, WasmResult};

use crate::capabilities::host_interface::{HostGetter, Registered};
use crate::runtime::density::Density;
use crate::runtime::density::stack::{StackArena, StackLease};
use crate::runtime::features::{Proposal, Proposals, flag};
use crate::runtime::host::HostState;
use crate::runtime::linking::{LinkerParts, Provider};

/// Default interval of the epoch ticker ([`Interruption::Epochs`]): the granularity of
/// wall-clock timeouts and of yields to the async executor.
pub const DEFAULT_EPOCH_TICK: Duration = Duration::from_millis(5);
/// Default fuel between two yields of a running guest to the executor
/// ([`Interruption::FuelYields`]): about a millisecond of guest code (measured: 1 to 4
/// units per nanosecond on the CPU suite), the granularity of wall-clock timeouts.
pub const DEFAULT_FUEL_YIELD_INTERVAL: u64 = 1_000_000;

/// How a guest that keeps running comes back to the host, so that its wall-clock
/// timeout is checked and other tasks on its thread get their turn. Fuel (the hard CPU
/// bound) is counted in both; a guest blocked in the host is bounded by the timer of
/// its call in both.
///
/// Wasmtime offers two instrumentations of guest code: fuel (a counter updated in every
/// basic block, checked at loop headers and calls) and epochs (a load and compare of a
/// global counter at loop headers and calls, advanced by a thread). Each costs about as
/// much as the other; both at once cost their sum — on the CPU suite 1.3–2.7× the
/// instructions of unmetered code, against 1.2–1.9× for either alone (BENCHMARKS.md).
/// Since fuel is the CPU bound anyway, [`FuelYields`](Self::FuelYields) (the default)
/// brings the timeout through fuel too: one instrumentation, no ticker thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Interruption {
    /// The guest yields to the executor every
    /// [`fuel_yield_interval`](WasmEngineBuilder::fuel_yield_interval) units of fuel,
    /// where the call's timer is checked: a call is stopped within one interval (about
    /// a millisecond) after its timeout. Fuel counts work, not time — bulk memory and
    /// table operations by the byte and element — so an interval is a bounded time.
    #[default]
    FuelYields,
    /// Epoch interruption besides fuel (the engine's only mode before): a ticker thread
    /// advances the epoch every [`epoch_tick`](WasmEngineBuilder::epoch_tick), and
    /// running code checks it at loop headers and calls — a call is stopped within two
    /// ticks after its timeout, whatever its code does per unit of fuel, at the price
    /// of a second instrumentation.
    Epochs,
}
/// Default maximum WebAssembly stack of one call.
pub const DEFAULT_MAX_WASM_STACK: usize = 1 << 20;

/// Cranelift optimization level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Optimization {
    /// No optimization: fastest compilation.
    None,
    /// Optimize for speed (the production default).
    #[default]
    Speed,
    /// Optimize for speed and code size.
    SpeedAndSize,
}

/// Configures a [`WasmEngine`]. [`WasmEngine::new`] is `WasmEngine::builder().build()`.
///
/// ```
/// use std::time::Duration;
/// use airssys_wasm_engine::{Interruption, Optimization, WasmEngine};
///
/// let engine = WasmEngine::builder()
///     .optimization(Optimization::Speed)
///     .interruption(Interruption::Epochs)
///     .epoch_tick(Duration::from_millis(2))
///     .max_wasm_stack(512 * 1024)
///     .build()?;
/// assert_eq!(engine.epoch_tick(), Duration::from_millis(2));
/// assert_eq!(engine.interruption(), Interruption::Epochs);
/// # Ok::<(), airssys_wasm_core::WasmError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct WasmEngineBuilder {
    optimization: Optimization,
    interruption: Interruption,
    epoch_tick: Duration,
    fuel_yield_interval: u64,
    max_wasm_stack: usize,
    parallel_compilation: bool,
    pooling: Option<Pooling>,
    density: Option<Density>,
    proposals: Proposals,
    interfaces: Vec<Registered>,
    /// The first registration refused, reported by `build`.
    refused: Option<String>,
}

/// Sizes of Wasmtime's pooling instance allocator, which pre-reserves memory, tables
/// and stacks for a fixed number of instances so that instantiation does no `mmap`.
///
/// Derive it from the limits the instances will run under: every pooled memory is
/// sized to the declared memory limit (the limiter still enforces the total per
/// instance).
///
/// ```
/// use std::time::Duration;
/// use airssys_wasm_core::ResourceLimits;
/// use airssys_wasm_engine::{Pooling, WasmEngine};
///
/// let limits = ResourceLimits::new(4 << 20, 1_000_000, Duration::from_secs(1))?;
/// let engine = WasmEngine::builder().pooling(Pooling::for_limits(&limits, 64)).build()?;
/// assert_eq!(engine.pooling().map(|p| p.max_instances), Some(64));
/// # Ok::<(), airssys_wasm_core::WasmError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pooling {
    /// Component instances that can be alive at once; instantiating one more fails
    /// with [`WasmError::PoolExhausted`] until one is dropped.
    pub max_instances: u32,
    /// The largest linear memory one instance may have (the declared memory limit).
    pub max_memory_bytes: u64,
    /// Core instances one component may contain (Rust `wasm32-wasip2` programs use a
    /// handful).
    pub core_instances_per_component: u32,
    /// Linear memories one component may contain.
    pub memories_per_component: u32,
    /// Tables one component may contain.
    pub tables_per_component: u32,
    /// Elements one table may hold (the declared table bound).
    pub max_table_elements: u64,
    /// Freed slots whose memory is returned to the kernel together, in one batch of
    /// `madvise` calls, rather than one by one (Wasmtime's default, 1). Each return
    /// makes the kernel flush the TLBs of every core the process runs on; batching them
    /// took a small HTTP handler from ~8,400 to ~11,800 requests/s under load on 2
    /// cores (BENCHMARKS.md). A freed slot is reset before any reuse either way; a
    /// batch not yet flushed keeps up to this many slots' touched pages resident a
    /// little longer (per CPU, at most 16 shards).
    pub decommit_batch_size: u32,
}

/// [`Pooling::decommit_batch_size`] by default.
const DECOMMIT_BATCH_SIZE: u32 = 16;

impl Pooling {
    /// A pool for `max_instances` instances running under `limits`.
    pub fn for_limits(limits: &airssys_wasm_core::ResourceLimits, max_instances: u32) -> Self {
        Self {
            max_instances: max_instances.max(1),
            max_memory_bytes: limits.memory_bytes(),
            core_instances_per_component: 20,
            memories_per_component: 4,
            tables_per_component: 10,
            max_table_elements: limits.max_table_elements(),
            decommit_batch_size: DECOMMIT_BATCH_SIZE,
        }
    }

    fn config(&self) -> wasmtime::PoolingAllocationConfig {
        let n = self.max_instances;
        let mut p = wasmtime::PoolingAllocationConfig::default();
        p.total_component_instances(n)
            .total_core_instances(n.saturating_mul(self.core_instances_per_component))
            .total_memories(n.saturating_mul(self.memories_per_component))
            .total_tables(n.saturating_mul(self.tables_per_component))
            .total_stacks(n)
            // One GC heap per store that uses GC; each takes a slot of the memory pool.
            .total_gc_heaps(n)
            .max_core_instances_per_component(self.core_instances_per_component)
            .max_memories_per_component(self.memories_per_component)
            .max_tables_per_component(self.tables_per_component)
            .max_memories_per_module(self.memories_per_component)
            .max_tables_per_module(self.tables_per_component)
            .table_elements(usize::try_from(self.max_table_elements).unwrap_or(usize::MAX))
            .max_memory_size(usize::try_from(self.max_memory_bytes).unwrap_or(usize::MAX))
            .decommit_batch_size(usize::try_from(self.decommit_batch_size).unwrap_or(1));
        p
    }
}

impl Default for WasmEngineBuilder {
    fn default() -> Self {
        Self {
            optimization: Optimization::Speed,
            interruption: Interruption::default(),
            epoch_tick: DEFAULT_EPOCH_TICK,
            fuel_yield_interval: DEFAULT_FUEL_YIELD_INTERVAL,
            max_wasm_stack: DEFAULT_MAX_WASM_STACK,
            parallel_compilation: true,
            pooling: None,
            density: None,
            proposals: Proposals::default(),
            interfaces: Vec::new(),
            refused: None,
        }
    }
}

impl WasmEngineBuilder {
    /// Cranelift's optimization level (default [`Optimization::Speed`]).
    pub fn optimization(mut self, level: Optimization) -> Self {
        self.optimization = level;
        self
    }

    /// How a running guest comes back for its timeout (default
    /// [`Interruption::FuelYields`]). The two modes compile different code: a component
    /// compiled by an engine of one mode does not load into the other (the loader's
    /// artifact cache keeps them apart), and one process may run engines of both.
    pub fn interruption(mut self, interruption: Interruption) -> Self {
        self.interruption = interruption;
        self
    }

    /// With [`Interruption::Epochs`]: how often the epoch advances (default 5 ms). A
    /// call is stopped no earlier than its timeout and within two ticks after it; a
    /// busy guest yields to the executor once per tick.
    pub fn epoch_tick(mut self, tick: Duration) -> Self {
        self.epoch_tick = tick;
        self
    }

    /// With [`Interruption::FuelYields`]: the fuel a running guest uses between two
    /// yields to the executor (default [`DEFAULT_FUEL_YIELD_INTERVAL`]). A call is
    /// stopped no earlier than its timeout and within about one interval after it;
    /// each yield costs a switch of stacks (~1 µs), so much smaller intervals cost
    /// throughput.
    pub fn fuel_yield_interval(mut self, fuel: u64) -> Self {
        self.fuel_yield_interval = fuel;
        self
    }

    /// The largest WebAssembly stack one call may use (default 1 MiB). Deeper
    /// recursion traps with a stack overflow.
    pub fn max_wasm_stack(mut self, bytes: usize) -> Self {
        self.max_wasm_stack = bytes;
        self
    }

    /// Compile functions on several threads (default on).
    pub fn parallel_compilation(mut self, enable: bool) -> Self {
        self.parallel_compilation = enable;
        self
    }

    /// Uses the pooling instance allocator with these sizes (default: off, instances
    /// are allocated on demand). Pooling makes instantiation cheaper and bounds how
    /// many instances exist at once; it reserves address space up front.
    pub fn pooling(mut self, pooling: Pooling) -> Self {
        self.pooling = Some(pooling);
        self
    }

    /// Uses the dense layout ([`Density`]): a live instance costs a few KiB and no
    /// memory mapping of its own, for a hundred thousand instances in one process, at
    /// the price of explicit bounds checks on memory accesses. Default: off (each
    /// memory reserves 4 GiB and its own mappings; no bounds checks). Not with
    /// [`pooling`](Self::pooling).
    pub fn density(mut self, density: Density) -> Self {
        self.density = Some(density);
        self
    }

    /// Switches a [`Proposal`] on or off (defaults: Wasmtime's, see [`Proposal`]).
    pub fn proposal(mut self, proposal: Proposal, enable: bool) -> Self {
        self.proposals.set(proposal, enable);
        self
    }

    /// Component Model async, the ABI of WASI 0.3 (default **off**; Wasmtime's default
    /// is on): `proposal(Proposal::ComponentModelAsync, enable)`. On, every store
    /// carries Wasmtime's concurrency machinery and every call runs through its event
    /// loop — for WASI 0.2 components too, measured at ~4× the cost of a call and
    /// 1.8–5× that of an instantiate + call (BENCHMARKS.md), which is why it is opt-in.
    /// Off, a component that uses async is refused at validation, naming the feature.
    pub fn component_model_async(self, enable: bool) -> Self {
        self.proposal(Proposal::ComponentModelAsync, enable)
    }

    /// Registers a host interface: a WIT interface the embedder implements, which a
    /// component may import when its grants allow it
    /// ([`CapabilitySet::interfaces`](airssys_wasm_core::CapabilitySet::interfaces),
    /// `interfaces = [...]` under `[capabilities]` in `Component.toml`).
    ///
    /// `name` is the interface as the WIT names it, with its version
    /// (`"acme:plugins/log@1.0.0"`). `add_to_linker` adds it to the engine's linker:
    /// call the `add_to_linker` that `wasmtime::component::bindgen!` generated for the
    /// interface, with [`HasHostCtx<S>`](crate::HasHostCtx) as its data and the getter
    /// it is given. Host code then runs on a [`HostCtx<'_, S>`](crate::HostCtx), where
    /// `S` is the state each instance is given at instantiation
    /// ([`CompiledComponent::instantiate_with`](crate::CompiledComponent::instantiate_with);
    /// `()` for stateless host code). See `docs/host-interfaces.md`.
    ///
    /// A name that is not an interface name, the same name twice, or more than
    /// [`MAX_HOST_INTERFACES`](crate::MAX_HOST_INTERFACES) interfaces make
    /// [`build`](Self::build) fail. The linker is built when first needed (the first
    /// instantiation): an `add_to_linker` that fails is reported then, as
    /// [`WasmError::EngineInitialization`] naming the interface.
    pub fn host_interface<S, F>(mut self, name: &str, add_to_linker: F) -> Self
    where
        S: Send + 'static,
        F: Fn(&mut Linker<HostState>, HostGetter<S>) -> wasmtime::Result<()>
            + Send
            + Sync
            + 'static,
    {
        if self.refused.is_some() {
            return self;
        }
        if self.interfaces.iter().any(|r| r.full == name) {
            self.refused = Some(format!("the host interface `{name}` is registered twice"));
            return self;
        }
        match Registered::new(name, self.interfaces.len(), add_to_linker) {
            Ok(r) => self.interfaces.push(r),
            Err(e) => self.refused = Some(e),
        }
        self
    }

    /// Creates the engine.
    ///
    /// # Errors
    ///
    /// [`WasmError::EngineInitialization`] when Wasmtime refuses the configuration (for
    /// example a zero tick or a stack larger than the host stack it runs on), or a host
    /// interface registration is refused.
    pub fn build(self) -> WasmResult<WasmEngine> {
        if let Some(reason) = self.refused {
            return Err(WasmError::EngineInitialization {
                reason,
                source: None,
            });
        }
        let mut interfaces = self.interfaces;
        crate::capabilities::register_builtins(&mut interfaces);
        if self.epoch_tick.is_zero() {
            return Err(WasmError::EngineInitialization {
                reason: "the epoch tick must be longer than zero".into(),
                source: None,
            });
        }
        if self.fuel_yield_interval == 0 {
            return Err(WasmError::EngineInitialization {
                reason: "the fuel yield interval must be at least 1".into(),
                source: None,
            });
        }
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .strategy(Strategy::Cranelift)
            .cranelift_opt_level(match self.optimization {
                Optimization::None => OptLevel::None,
                Optimization::Speed => OptLevel::Speed,
                Optimization::SpeedAndSize => OptLevel::SpeedAndSize,
            })
            .consume_fuel(true)
            .epoch_interruption(self.interruption == Interruption::Epochs)
            .max_wasm_stack(self.max_wasm_stack)
            // The host side of a call runs on the same fiber stack as the guest.
            .async_stack_size(self.max_wasm_stack + (1 << 20))
            .parallel_compilation(self.parallel_compilation)
            // Wasmtime's concurrency machinery only where a proposal needs it: it slows
            // every call. WebAssembly 3.0 (GC, exceptions, …) is left at Wasmtime's
            // default, on; GC heaps grow through the store's limiter, so they count
            // against the memory limit.
            .concurrency_support(self.proposals.concurrency());
        for &p in Proposal::ALL {
            config.wasm_features(flag(p), self.proposals.contains(p));
        }
        if let Some(pooling) = &self.pooling {
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(
                pooling.config(),
            ));
        }
        let stacks = match &self.density {
            Some(_) if self.pooling.is_some() => {
                return Err(WasmError::EngineInitialization {
                    reason: "pooling and the dense layout are two ways to allocate \
                             instances: choose one (WasmEngineBuilder::pooling or ::density)"
                        .into(),
                    source: None,
                });
            }
            Some(density) => Some(density.configure(&mut config, self.max_wasm_stack + (1 << 20))?),
            None => None,
        };
        let engine = Engine::new(&config).map_err(|e| WasmError::EngineInitialization {
            reason: e.to_string(),
            source: Some(e.into()),
        })?;
        Ok(WasmEngine {
            inner: Arc::new(Inner {
                engine,
                interruption: self.interruption,
                epoch_tick: self.epoch_tick,
                fuel_yield_interval: self.fuel_yield_interval,
                pooling: self.pooling,
                density: self.density,
                stacks,
                proposals: self.proposals,
                interfaces,
                ticker: OnceLock::new(),
                linker: OnceLock::new(),
            }),
        })
    }
}

/// The WebAssembly engine: compiled code, configuration, the WASI linker and, with
/// [`Interruption::Epochs`], the epoch ticker that brings running guests back for their
/// timeouts.
///
/// Cheap to clone (one `Arc`) and meant to be shared by every component and instance of
/// a process. An epoch ticker thread starts with the first instantiation and stops
/// when the last clone — including the ones held by compiled components and instances —
/// is dropped.
///
/// Configuration (see [`WasmEngineBuilder`]): what Wasmtime's default configuration
/// accepts (WebAssembly 3.0 with GC and exceptions, the Component Model; component
/// async when switched on), Cranelift at `OptLevel::Speed`, fuel metering on (the CPU
/// bound), timeouts through fuel yields ([`Interruption`]), an explicit maximum wasm
/// stack, parallel compilation.
#[derive(Clone)]
pub struct WasmEngine {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    interruption: Interruption,
    epoch_tick: Duration,
    fuel_yield_interval: u64,
    pooling: Option<Pooling>,
    density: Option<Density>,
    /// The dense layout's fiber stacks, leased to instances.
    stacks: Option<Arc<StackArena>>,
    proposals: Proposals,
    interfaces: Vec<Registered>,
    ticker: OnceLock<EpochTicker>,
    linker: OnceLock<Result<Linker<HostState>, String>>,
}

impl std::fmt::Debug for WasmEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmEngine")
            .field("interruption", &self.inner.interruption)
            .field("epoch_tick", &self.inner.epoch_tick)
            .field("fuel_yield_interval", &self.inner.fuel_yield_interval)
            .field("ticker_running", &self.inner.ticker.get().is_some())
            .finish_non_exhaustive()
    }
}

impl WasmEngine {
    /// The pooling allocator's sizes, when it is on.
    pub fn pooling(&self) -> Option<Pooling> {
        self.inner.pooling
    }

    /// The dense layout, when it is on.
    pub fn density(&self) -> Option<Density> {
        self.inner.density
    }

    /// A lease on the dense layout's fiber stacks for one instance's store (none with
    /// the default layout, where Wasmtime makes each store's stack).
    pub(crate) fn stack_lease(&self) -> Option<Arc<StackLease>> {
        self.inner.stacks.as_ref().map(|s| s.lease())
    }

    /// An engine with the production configuration.
    ///
    /// # Errors
    ///
    /// [`WasmError::EngineInitialization`] if Wasmtime cannot be set up on this host.
    pub fn new() -> WasmResult<Self> {
        Self::builder().build()
    }

    /// A builder for the knobs of [`WasmEngineBuilder`].
    pub fn builder() -> WasmEngineBuilder {
        WasmEngineBuilder::default()
    }

    /// The underlying Wasmtime engine, for compiling components and for embedders that
    /// need Wasmtime's API directly.
    pub fn wasmtime_engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The epoch tick: the granularity of timeouts with [`Interruption::Epochs`].
    pub fn epoch_tick(&self) -> Duration {
        self.inner.epoch_tick
    }

    /// How a running guest comes back for its timeout.
    pub fn interruption(&self) -> Interruption {
        self.inner.interruption
    }

    /// The fuel between two yields of a running guest, with
    /// [`Interruption::FuelYields`].
    pub fn fuel_yield_interval(&self) -> u64 {
        self.inner.fuel_yield_interval
    }

    /// The WebAssembly features this engine accepts — exactly those Wasmtime validates
    /// with, so a validator using them agrees with compilation: Wasmtime's defaults
    /// (WebAssembly 3.0 with GC and exceptions, wide arithmetic, the Component Model;
    /// never shared-memory threads) and the [`Proposal`]s switched on the builder.
    pub fn wasm_features(&self) -> WasmFeatures {
        self.inner.proposals.wasm_features()
    }

    /// Whether `proposal` is on.
    pub fn proposal_enabled(&self, proposal: Proposal) -> bool {
        self.inner.proposals.contains(proposal)
    }

    /// Whether the epoch ticker thread is running (with [`Interruption::Epochs`], it
    /// starts with the first instantiation; there is none otherwise).
    pub fn ticker_running(&self) -> bool {
        self.inner.ticker.get().is_some()
    }

    /// Starts the ticker if it is not running.
    pub(crate) fn ensure_ticker(&self) {
        self.inner
            .ticker
            .get_or_init(|| EpochTicker::start(&self.inner.engine, self.inner.epoch_tick));
    }

    /// The linker shared by every instance: WASI 0.2, WASI 0.3 when component-model
    /// async is on, and the registered host interfaces. What a guest may actually do
    /// through it is decided per instance by its capabilities (one WASI context serves
    /// both versions) and its interface grants, checked at instantiation.
    fn linker(&self) -> WasmResult<&Linker<HostState>> {
        self.inner
            .linker
            .get_or_init(|| {
                let mut linker = Linker::new(&self.inner.engine);
                let p3 = self.inner.proposals.contains(Proposal::ComponentModelAsync);
                crate::capabilities::add_to_linker(&mut linker, p3)?;
                for r in &self.inner.interfaces {
                    (r.add)(&mut linker).map_err(|e| {
                        format!("linking the host interface `{}` failed: {e:#}", r.full)
                    })?;
                }
                Ok(linker)
            })
            .as_ref()
            .map_err(|reason| WasmError::EngineInitialization {
                reason: reason.clone(),
                source: None,
            })
    }

    /// The host interfaces this engine provides beside WASI, as registered
    /// (`acme:plugins/log@1.0.0`), in order: the embedder's, then the built-ins
    /// (`wasi:logging/logging@0.1.0-draft`, `wasi:config/store` at `0.2.0-rc.1` and
    /// `0.2.0-draft-2024-09-27`).
    pub fn host_interfaces(&self) -> impl Iterator<Item = &str> {
        self.inner.interfaces.iter().map(|r| r.full.as_str())
    }

    /// The registered host interfaces.
    pub(crate) fn registered(&self) -> &[Registered] {
        &self.inner.interfaces
    }

    /// What linking a component needs: the linker, the registered host interfaces,
    /// and whether WASI 0.3 is linked.
    pub(crate) fn linker_parts(&self) -> WasmResult<LinkerParts<'_>> {
        Ok(LinkerParts {
            linker: self.linker()?,
            registered: self.registered(),
            p3: self.proposal_enabled(Proposal::ComponentModelAsync),
        })
    }

    /// Who provides the import `import` (`ns:pkg/iface@version`, or an item in it,
    /// `…#func`, as [`CompiledComponent::imports`](crate::CompiledComponent::imports)
    /// lists them).
    pub fn provider(&self, import: &str) -> Provider {
        Provider::of(
            import,
            self.registered(),
            self.proposal_enabled(Proposal::ComponentModelAsync),
        )
    }

    /// Whether two handles share one engine.
    pub fn same(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.inner, &b.inner)
    }
}

/// A thread that advances the engine's epoch every tick, until dropped.
struct EpochTicker {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: &Engine, tick: Duration) -> Self {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let weak = engine.weak();
        let signal = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("airssys-wasm-epoch".into())
            .spawn(move || {
                let (lock, cvar) = &*signal;
                let Ok(mut stopped) = lock.lock() else { return };
                loop {
                    // Checked before waiting too: a stop signalled before this thread
                    // first waits must not cost a whole tick at shutdown.
                    if *stopped {
                        return;
                    }
                    let Ok((guard, _)) = cvar.wait_timeout(stopped, tick) else {
                        return;
                    };
                    stopped = guard;
                    if *stopped {
                        return;
                    }
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => return,
                    }
                }
            });
        match thread {
            Ok(handle) => Self {
                stop,
                thread: Some(handle),
            },
            Err(e) => {
                // Without a ticker, timeouts are still enforced by the async-side bound
                // in `call`; say so loudly rather than fail every instantiation.
                tracing::error!(%e, "could not start the epoch ticker thread");
                Self { stop, thread: None }
            }
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        let (lock, cvar) = &*self.stop;
        if let Ok(mut stopped) = lock.lock() {
            *stopped = true;
        }
        cvar.notify_all();
        if let Some(handle) = self.thread.take() {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_engine() {
        let a = WasmEngine::new().unwrap();
        let b = a.clone();
        assert!(WasmEngine::same(&a, &b));
        assert!(!WasmEngine::same(&a, &WasmEngine::new().unwrap()));
    }

    #[test]
    fn zero_tick_is_refused() {
        let err = WasmEngine::builder()
            .epoch_tick(Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(err.is_engine_error(), "{err}");
    }

    #[test]
    fn ticker_and_linker_start_lazily() {
        let engine = WasmEngine::new().unwrap();
        assert!(!engine.ticker_running());
        engine.ensure_ticker();
        assert!(engine.ticker_running());
        assert!(engine.linker().is_ok());
    }

    #[test]
    fn features_enable_the_component_model() {
        let f = WasmEngine::new().unwrap().wasm_features();
        assert!(f.contains(WasmFeatures::COMPONENT_MODEL));
        assert!(f.contains(WasmFeatures::MULTI_MEMORY));
        assert!(f.contains(WasmFeatures::EXCEPTIONS));
        assert!(f.contains(WasmFeatures::GC));
        assert!(!f.contains(WasmFeatures::THREADS));
        assert!(!f.contains(WasmFeatures::CM_ASYNC));
        let on = WasmEngine::builder()
            .component_model_async(true)
            .build()
            .unwrap();
        assert!(on.wasm_features().contains(WasmFeatures::CM_ASYNC));
        assert!(on.proposal_enabled(Proposal::ComponentModelAsync));
    }
}
