//! The bounds of one call (and of an instantiation): fresh fuel (the CPU bound), the
//! way a running guest comes back for its timeout ([`Deadline::interrupt`]: fuel
//! yields, or the epoch callback), and the async-side [`Backstop`] — the call's timer,
//! checked whenever the call yields.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Poll, Wake, Waker};
use std::time::{Duration, Instant};

use wasmtime::{Store, UpdateDeadline};

use airssys_wasm_core::ResourceLimits;

use crate::runtime::density::stack::StackLease;
use crate::runtime::engine::{Interruption, WasmEngine};
use crate::runtime::host::HostState;
use crate::runtime::sandbox::ExecutionReport;
use crate::runtime::timed_out::TimedOut;

/// The async-side bound of a call ([`Deadline::hard_bound`]) and the timer that
/// enforces it once armed. With fuel yields it is the timeout itself, checked at every
/// yield; with epochs, the timeout plus a margin, reached only when the guest is
/// blocked in the host (where epochs are not checked) or the ticker could not start.
#[derive(Debug)]
pub(crate) struct Backstop {
    bound: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Whether a running guest reaches this timer (fuel yields): then it tells a guest
    /// stopped in its own code from one waiting in the host.
    running_guests: bool,
    /// Set while a call is under way: still set after it, the call's future was
    /// dropped before it finished (its caller cancelled it), leaving the guest midway.
    pub(crate) in_flight: bool,
    /// The instance's fiber stack, with the dense layout: taken up when a call begins,
    /// let go when it ends.
    stack: Option<Arc<StackLease>>,
}

impl Backstop {
    /// The backstop of the calls of an instance under `limits` on `engine`.
    pub(crate) fn new(limits: &ResourceLimits, engine: &WasmEngine) -> Self {
        Self {
            bound: Deadline::hard_bound(limits, engine),
            timer: None,
            running_guests: engine.interruption() == Interruption::FuelYields,
            in_flight: false,
            stack: engine.stack_lease(),
        }
    }
}

/// Why a bounded future did not finish.
#[derive(Debug)]
pub(crate) enum Stopped {
    /// Its bound elapsed: in the guest's own code (it had just yielded for fuel), or
    /// while it waited in the host.
    Timeout { in_guest: bool },
    /// It panicked — in host code, since guest code cannot — with this message.
    Panic(String),
}

/// Runs `fut` under `backstop`: `Err` when its bound elapsed or it panicked. See
/// [`Bounded`].
///
/// Called where the call begins, right before its first poll: from then until the
/// future finishes, the backstop records a call in flight.
pub(crate) fn bounded<F: Future>(backstop: &mut Backstop, fut: F) -> Bounded<'_, F> {
    backstop.in_flight = true;
    if let Some(stack) = &backstop.stack {
        stack.begin();
    }
    Bounded { fut, backstop }
}

pin_project_lite::pin_project! {
    /// A future under the async-side bound, with panics contained: a host function
    /// that panics (Wasmtime carries the panic out through the guest's frames) ends
    /// this call only. The timer is armed only if the guest does
    /// not finish within its first poll — most calls do — which keeps timer
    /// registration off the fast path, and it lives in the [`Backstop`] rather than in
    /// this future, which is then only a pointer larger than the one it wraps. (Futures
    /// are moved several times on their way into an executor, by `memcpy` calls whose
    /// cost doubles past 256 bytes; a `tokio::time::Timeout` here made every call ~10%
    /// slower.) A guest that keeps running yields at every epoch tick, so the bound
    /// starts at most one tick late.
    pub(crate) struct Bounded<'a, F> {
        #[pin]
        fut: F,
        backstop: &'a mut Backstop,
    }
}

impl<F: Future> Future for Bounded<'_, F> {
    type Output = Result<F::Output, Stopped>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let fut = this.fut;
        // Only once the timer is armed, and only where running guests reach it: the
        // calls that end in their first poll (nearly all) allocate nothing here.
        let spy = (this.backstop.running_guests && this.backstop.timer.is_some())
            .then(|| Arc::new(WakeSpy::new(cx.waker())));
        // The future is never polled again after a panic: the instance is poisoned.
        let poll = || match &spy {
            Some(spy) => {
                let waker = Waker::from(Arc::clone(spy));
                fut.poll(&mut std::task::Context::from_waker(&waker))
            }
            None => fut.poll(&mut *cx),
        };
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| match &this.backstop.stack {
            // A fiber stack Wasmtime makes in this poll is the instance's.
            Some(stack) => stack.enter(poll),
            None => poll(),
        }));
        let ready = match polled {
            Ok(Poll::Ready(v)) => Ok(v),
            Ok(Poll::Pending) => Err(None),
            Err(payload) => Err(Some(panic_message(payload.as_ref()))),
        };
        match ready {
            Ok(v) => {
                this.backstop.in_flight = false;
                // Finished: nothing runs on the stack until the next call. (A call
                // stopped midway keeps its stack guarded until the next call ends.)
                if let Some(stack) = &this.backstop.stack {
                    stack.end();
                }
                if this.backstop.timer.is_some() {
                    // Disarm: a stale timer would only wake this task for nothing.
                    this.backstop.timer = None;
                }
                return Poll::Ready(Ok(v));
            }
            Err(Some(message)) => {
                this.backstop.in_flight = false;
                this.backstop.timer = None;
                return Poll::Ready(Err(Stopped::Panic(message)));
            }
            Err(None) => {}
        }
        let bound = this.backstop.bound;
        let timer = this
            .backstop
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(bound)));
        if timer.as_mut().poll(cx).is_ready() {
            this.backstop.in_flight = false;
            this.backstop.timer = None;
            let in_guest = spy.is_some_and(|s| s.woke.load(Ordering::Relaxed));
            return Poll::Ready(Err(Stopped::Timeout { in_guest }));
        }
        Poll::Pending
    }
}

/// A waker that forwards to the task's and remembers that it was woken.
struct WakeSpy {
    woke: AtomicBool,
    inner: Waker,
}

impl WakeSpy {
    fn new(inner: &Waker) -> Self {
        Self {
            woke: AtomicBool::new(false),
            inner: inner.clone(),
        }
    }
}

impl Wake for WakeSpy {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woke.store(true, Ordering::Relaxed);
        self.inner.wake_by_ref();
    }
}

/// A panic's message, when it has one (`panic!` with a literal or a format).
#[cold]
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Logs what cannot happen on our engines, out of the way of every call's code.
#[cold]
#[inline(never)]
fn fuel_not_set(e: &wasmtime::Error) {
    tracing::error!(%e, "setting fuel failed");
}

/// The functions that set a call's bounds up, arm and read them.
pub(crate) struct Deadline;

impl Deadline {
    /// Sets up how `store`'s guest, while it runs, comes back for its timeout: with
    /// fuel yields, every `engine`'s interval of fuel; with epochs, at every tick,
    /// through a callback that stops it once its timeout has passed.
    pub(crate) fn interrupt(store: &mut Store<HostState>, engine: &WasmEngine) {
        match engine.interruption() {
            Interruption::FuelYields => {
                // Fuel is on and the interval above zero (checked by the builder).
                if let Err(e) = store.fuel_async_yield_interval(Some(engine.fuel_yield_interval()))
                {
                    fuel_not_set(&e);
                }
            }
            Interruption::Epochs => {
                engine.ensure_ticker();
                store.data_mut().epochs = true;
                store.epoch_deadline_callback(|mut cx| {
                    let data = cx.data_mut();
                    match data.started {
                        // The first tick of this call: it began within the last tick.
                        // Counting from now never stops a guest early, and keeps the
                        // clock off the path of the calls that end before a tick
                        // (nearly all of them).
                        None => data.started = Some(Instant::now()),
                        Some(started) if started.elapsed() >= data.limits().timeout() => {
                            data.timed_out = true;
                            return Err(wasmtime::Error::new(TimedOut));
                        }
                        Some(_) => {}
                    }
                    // Not yet due: let other tasks run, then check again next tick.
                    Ok(UpdateDeadline::Yield(1))
                });
            }
        }
    }

    /// Arms the store for one call: fresh fuel, a fresh deadline, a fresh peak.
    #[inline(always)]
    pub(crate) fn begin(store: &mut Store<HostState>) {
        // Fuel is enabled by our engine configuration, so this cannot fail.
        if let Err(e) = store.set_fuel(store.data().limits().fuel()) {
            fuel_not_set(&e);
        }
        let data = store.data_mut();
        data.started = data.clock_calls.then(Instant::now);
        data.timed_out = false;
        data.host_call = None;
        data.log = crate::capabilities::logging::LogBudget::default();
        data.clear_denials();
        data.limiter.reset_peak();
        if data.epochs {
            // Check the deadline at the next tick, and every tick after (the callback).
            store.set_epoch_deadline(1);
        }
    }

    /// The async-side bound. With fuel yields, the timeout. With epochs, the timeout
    /// plus a margin for the epoch to be noticed: only reached when the guest is
    /// blocked in the host (where epochs are not checked) or the ticker could not
    /// start.
    pub(crate) fn hard_bound(limits: &ResourceLimits, engine: &WasmEngine) -> Duration {
        match engine.interruption() {
            Interruption::FuelYields => limits.timeout(),
            Interruption::Epochs => {
                limits.timeout() + (engine.epoch_tick() * 4).max(Duration::from_millis(50))
            }
        }
    }

    /// What the call armed by [`begin`](Self::begin) used, read right after it.
    #[inline(always)]
    pub(crate) fn report(store: &Store<HostState>) -> ExecutionReport {
        let data = store.data();
        let limits = data.limits();
        let wall_time = data
            .started
            .filter(|_| data.measure_wall_time)
            .map(|t| t.elapsed());
        let remaining = store.get_fuel().unwrap_or(0);
        ExecutionReport {
            fuel_consumed: limits.fuel().saturating_sub(remaining),
            fuel_limit: limits.fuel(),
            wall_time,
            peak_memory_bytes: data.limiter.peak(),
            memory_limit_bytes: limits.memory_bytes(),
            log_records_dropped: data.log.dropped,
            capability_denials: data.denial_count(),
        }
    }
}
