//! How a failed instantiation or call maps to the [`WasmError`] that names its real
//! cause: the deadline (in guest code or in a host function), the fuel, a denied
//! memory or table growth, the bound of host resources, an escaped exception, a trap,
//! a host function's error or panic, or (instantiation) anything else.

use wasmtime::component::ResourceTableError;
use wasmtime::{Store, Trap, WasmBacktrace};

use airssys_wasm_core::WasmError;
use airssys_wasm_core::error::duration_ms;

use crate::runtime::deadline::Stopped;
use crate::runtime::density::os;
use crate::runtime::host::HostState;
use crate::runtime::limiter::Denial;
use crate::runtime::timed_out::TimedOut;

/// Why an instantiation or a call did not finish.
pub(crate) enum Failure {
    Wasmtime(wasmtime::Error),
    /// The async-side bound elapsed: in the guest's own code, or while it was blocked
    /// in the host.
    AsyncTimeout {
        in_guest: bool,
    },
    /// Host code panicked, with this message.
    Panic(String),
}

impl From<Stopped> for Failure {
    fn from(s: Stopped) -> Self {
        match s {
            Stopped::Timeout { in_guest } => Self::AsyncTimeout { in_guest },
            Stopped::Panic(message) => Self::Panic(message),
        }
    }
}

/// What failed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase<'a> {
    Instantiate,
    /// A call of this export.
    Call(&'a str),
}

impl Failure {
    /// Maps a failure of `component` to the error that names its real cause: the
    /// deadline, the fuel, a denied memory or table growth, a trap, or (instantiation)
    /// anything else. `host_function` names the function of the host interface
    /// registered at an index, where a guest waiting in the host was.
    pub(crate) fn classify(
        self,
        store: &mut Store<HostState>,
        component: &str,
        host_function: impl Fn(u16) -> String,
        fuel_consumed: u64,
        phase: Phase<'_>,
    ) -> WasmError {
        let data = store.data_mut();
        let denial = data.limiter.take_denial();
        let limits = data.limits();
        let host_call = data.host_call;
        let max_host_resources = limits.max_host_resources();
        let component = component.to_owned();
        let timeout = |in_host| WasmError::ComponentTimeout {
            component: component.clone(),
            max_execution_ms: duration_ms(limits.timeout()),
            // When an epoch check interrupts a loop, Cranelift may not have flushed its fuel
            // counter yet, so 0 here means "unknown", not "none used".
            fuel_consumed: (fuel_consumed > 0).then_some(fuel_consumed),
            in_host,
        };
        let err = match self {
            Failure::AsyncTimeout { in_guest: true } => return timeout(None),
            // Blocked in the host: in the embedder's function the guest entered last,
            // unless it called WASI since.
            Failure::AsyncTimeout { in_guest: false } => {
                return timeout(host_call.map(&host_function));
            }
            Failure::Panic(message) => {
                return WasmError::HostFunctionPanicked {
                    component,
                    function: host_call.map_or_else(|| "unknown".to_owned(), &host_function),
                    message,
                };
            }
            Failure::Wasmtime(e) => e,
        };
        if data.timed_out || err.downcast_ref::<TimedOut>().is_some() {
            return timeout(None);
        }
        if let Some(ResourceTableError::Full) = err.downcast_ref::<ResourceTableError>() {
            return WasmError::ResourceLimitExceeded {
                component,
                resource: "live host resources (handles the host keeps for the instance; \
                           ResourceLimits::with_max_host_resources)"
                    .into(),
                limit: max_host_resources,
                requested: max_host_resources.saturating_add(1),
            };
        }
        let trap = err.downcast_ref::<Trap>().copied();
        // The words of the error's causes, rendered once and only for an error that is
        // not a trap (a trap carries Wasmtime's backtrace as context, whose rendering
        // is the dearest part of a failure: a restarting actor pays it per failure).
        let words: Vec<String> = if trap.is_none() {
            err.chain().map(ToString::to_string).collect()
        } else {
            Vec::new()
        };
        // Wasmtime's bound on what one call into the host may copy out of the guest
        // (its hostcall fuel, set from the host-memory budget); its error type is
        // private, so it is known by its words.
        if words.iter().any(|e| e.contains(HOSTCALL_FUEL_EXHAUSTED)) {
            let budget = limits.host_memory_bytes();
            return WasmError::ResourceLimitExceeded {
                component,
                resource: "bytes one call into the host may copy out of the guest (the host \
                           memory budget: [limits] host_memory, \
                           ResourceLimits::with_host_memory_bytes)"
                    .into(),
                limit: budget,
                requested: budget.saturating_add(1),
            };
        }
        if let Some(b) = err.downcast_ref::<crate::runtime::host_memory::BudgetExceeded>() {
            return WasmError::ResourceLimitExceeded {
                component,
                resource: format!(
                    "host memory held for the instance ({} and the rest it holds: \
                     [limits] host_memory, ResourceLimits::with_host_memory_bytes)",
                    b.what
                ),
                limit: b.max,
                requested: b.held.saturating_add(b.asked),
            };
        }
        if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
            return WasmError::Exited {
                component,
                code: exit.0,
            };
        }
        if let Some(pool) = err.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
            // "maximum concurrent limit of N for KIND reached": the error is Wasmtime's
            // type, but its size and kind are private fields, read from its words.
            let text = pool.to_string();
            let (limit, kind) = text
                .strip_prefix("maximum concurrent limit of ")
                .and_then(|t| t.strip_suffix(" reached"))
                .and_then(|t| t.split_once(" for "))
                .and_then(|(n, kind)| Some((n.parse::<u64>().ok()?, kind.to_owned())))
                .unwrap_or((0, "instances".to_owned()));
            return WasmError::PoolExhausted {
                component,
                resource: kind,
                limit,
            };
        }
        // The kernel refused to map memory (a memory, its image, a fiber stack): which
        // limit — the mapping bound or the address space — read now, with the fix.
        // Its errors are Wasmtime's and the system's words, so they are known by those.
        if words.iter().any(|e| os::is_enomem(e)) {
            let limit = os::OsLimit::now();
            return WasmError::ResourceLimitExceeded {
                component,
                resource: limit.resource,
                limit: limit.limit,
                requested: limit.requested,
            };
        }
        let escaped = err.downcast_ref::<wasmtime::ThrownException>().is_some();
        if trap == Some(Trap::OutOfFuel) {
            return WasmError::FuelExhausted {
                component,
                fuel_limit: limits.fuel(),
            };
        }
        let trap_words = match (trap, escaped) {
            (Some(trap), _) => Some(trap_in_words(trap)),
            // Wasm exception handling: a `throw` that no `try_table` caught reached
            // the component boundary, which the canonical ABI cannot carry.
            (None, true) => Some(match phase {
                Phase::Call(export) => format!(
                    "an uncaught Wasm exception escaped the export `{export}` (a `throw` \
                     that no `try_table` in the guest caught)"
                ),
                Phase::Instantiate => "an uncaught Wasm exception escaped the component's \
                                       start function (a `throw` that no `try_table` caught)"
                    .to_owned(),
            }),
            (None, false) => None,
        };
        match denial {
            Some(Denial::Memory {
                limit,
                requested_total,
            }) => {
                return WasmError::MemoryLimitExceeded {
                    component,
                    limit_bytes: limit,
                    requested_bytes: requested_total,
                    trap: trap_words,
                };
            }
            Some(Denial::TableElements { limit, requested }) => {
                return WasmError::ResourceLimitExceeded {
                    component,
                    resource: "table elements".into(),
                    limit,
                    requested,
                };
            }
            None => {}
        }
        let backtrace = err
            .downcast_ref::<WasmBacktrace>()
            .map(|bt| {
                // Keep the frames; drop Wasmtime's header. Frame names come from the
                // guest's name section: escaped, so that they cannot forge log lines.
                bt.to_string()
                    .lines()
                    .filter(|l| !l.starts_with(BACKTRACE_HEADER))
                    .take(MAX_BACKTRACE_FRAMES)
                    .map(|l| airssys_wasm_core::text::escape(l, MAX_FRAME_CHARS))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .filter(|bt| !bt.trim().is_empty());
        let recursion = err
            .downcast_ref::<WasmBacktrace>()
            .is_some_and(looks_like_runaway_recursion);
        let trap_words = match trap_words {
            Some(words) if trap == Some(Trap::MemoryOutOfBounds) && recursion => Some(format!(
                "{words}; the backtrace repeats one function, so this is most likely unbounded \
                 recursion overflowing the guest's own stack, which Rust and C guests keep in \
                 linear memory"
            )),
            other => other,
        };
        match (trap_words, phase) {
            (Some(reason), _) => WasmError::ComponentTrapped {
                component,
                reason,
                fuel_consumed: Some(fuel_consumed),
                backtrace,
            },
            // Not a trap: an error a host function returned — the embedder's, when the
            // guest is in one of its interfaces.
            (None, _) if host_call.is_some() => WasmError::HostFunctionFailed {
                component,
                function: host_call.map_or_else(String::new, &host_function),
                reason: without_backtrace(&err, &words),
                source: Some(err.into()),
            },
            (None, Phase::Instantiate) => WasmError::ComponentInstantiationFailed {
                component,
                reason: without_backtrace(&err, &words),
                source: Some(err.into()),
            },
            (None, Phase::Call(_)) => WasmError::ComponentTrapped {
                component,
                reason: without_backtrace(&err, &words),
                fuel_consumed: Some(fuel_consumed),
                backtrace,
            },
        }
    }
}

/// What Wasmtime's error says when a host call copied more than its hostcall fuel.
const HOSTCALL_FUEL_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";

/// The most frames of a guest's backtrace kept in an error.
const MAX_BACKTRACE_FRAMES: usize = 64;

/// The longest frame line kept, in characters (a guest names its own functions).
const MAX_FRAME_CHARS: usize = 512;

/// The longest failure reason kept, in characters.
const MAX_REASON_CHARS: usize = 4_096;

/// How Wasmtime's `WasmBacktrace` context starts when displayed.
const BACKTRACE_HEADER: &str = "error while executing at wasm backtrace";

/// The error's chain of causes without Wasmtime's backtrace context (which is reported
/// on its own): "unknown handle index 1", not "error while executing at wasm
/// backtrace: …: unknown handle index 1".
/// `words` are the causes' words (`err.chain()` rendered) when they were rendered.
fn without_backtrace(err: &wasmtime::Error, words: &[String]) -> String {
    let rendered;
    let words = if words.is_empty() {
        rendered = err.chain().map(ToString::to_string).collect::<Vec<_>>();
        &rendered
    } else {
        words
    };
    let parts: Vec<&str> = words
        .iter()
        .map(String::as_str)
        .filter(|e| !e.starts_with(BACKTRACE_HEADER))
        .collect();
    let text = if parts.is_empty() {
        format!("{err:#}")
    } else {
        parts.join(": ")
    };
    // A host function's error may quote what the guest passed it.
    airssys_wasm_core::text::escape(&text, MAX_REASON_CHARS).into_owned()
}

/// Whether the innermost frames of `bt` are all the same function: what a guest that
/// overflows its shadow stack (kept in linear memory) looks like when it traps.
fn looks_like_runaway_recursion(bt: &WasmBacktrace) -> bool {
    const RUN: usize = 16;
    let frames = bt.frames();
    frames.len() >= RUN
        && frames[..RUN].windows(2).all(|w| {
            w[0].func_index() == w[1].func_index() && w[0].module().name() == w[1].module().name()
        })
}

/// A trap code in words: Wasmtime's description, named where it helps.
fn trap_in_words(trap: Trap) -> String {
    let desc = trap.to_string();
    let desc = desc.strip_prefix("wasm trap: ").unwrap_or(&desc).to_owned();
    match trap {
        Trap::StackOverflow => format!("stack overflow ({desc})"),
        Trap::UnreachableCodeReached => {
            format!("unreachable ({desc}; Rust and C guests reach it when they panic or abort)")
        }
        Trap::IntegerDivisionByZero => format!("divide by zero ({desc})"),
        Trap::MemoryOutOfBounds => format!("out-of-bounds memory access ({desc})"),
        _ => desc,
    }
}
