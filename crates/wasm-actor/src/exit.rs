//! Why an actor's instance ended: [`ExitReason`], and for a failure its
//! [`FailureKind`] — trap, fuel, timeout and memory limit kept apart, as the supervisor's
//! events and log show them.

use airssys_wasm_core::WasmError;

/// How an actor's instance ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// It stopped by itself (a Rust actor's `ErrorAction::Stop`).
    Normal,
    /// It was told to stop (shutdown, or a sibling's restart).
    Shutdown,
    /// It failed.
    Failed(Failure),
}

impl ExitReason {
    /// Whether this is a failure.
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Failed(_))
    }
}

impl std::fmt::Display for ExitReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Normal => f.write_str("stopped normally"),
            Self::Shutdown => f.write_str("shut down"),
            Self::Failed(failure) => failure.fmt(f),
        }
    }
}

/// What kind of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// A WebAssembly trap (unreachable, out-of-bounds access, a guest panic).
    Trap,
    /// The call used up its fuel (the CPU budget).
    FuelExhausted,
    /// The call ran past its wall-clock timeout.
    Timeout,
    /// The instance asked for more linear memory than its limit.
    MemoryLimit,
    /// Another limit: host resources, host memory, the kernel's.
    ResourceLimit,
    /// The handler returned an error (a component's `handle` returned `err`, a Rust
    /// actor's `handle_message` an `ActorError`).
    HandlerError,
    /// Instantiation, `init` or `pre_start` failed.
    StartFailed,
    /// Rust code panicked (a Rust actor, or host code).
    Panicked,
    /// A child supervisor gave up: its children failed more often than its restart
    /// intensity allows.
    Escalated,
    /// Any other error of the runtime.
    Other,
}

impl FailureKind {
    /// The word logs and events use: `trap`, `fuel`, `timeout`, `memory`, …
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trap => "trap",
            Self::FuelExhausted => "fuel",
            Self::Timeout => "timeout",
            Self::MemoryLimit => "memory",
            Self::ResourceLimit => "limit",
            Self::HandlerError => "error",
            Self::StartFailed => "start",
            Self::Panicked => "panic",
            Self::Escalated => "escalated",
            Self::Other => "other",
        }
    }
}

/// A failure: its kind and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The kind.
    pub kind: FailureKind,
    /// What happened (the runtime's error, the handler's text).
    pub message: String,
    /// The actor asked its supervisor to escalate at once (`ErrorAction::Escalate`).
    pub escalate: bool,
}

impl Failure {
    /// A failure of `kind`.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            escalate: false,
        }
    }

    /// The failure a runtime error means: trap, fuel, timeout and memory kept apart.
    pub fn from_wasm(error: &WasmError) -> Self {
        let kind = match error {
            WasmError::FuelExhausted { .. } => FailureKind::FuelExhausted,
            WasmError::ComponentTimeout { .. } => FailureKind::Timeout,
            WasmError::MemoryLimitExceeded { .. } => FailureKind::MemoryLimit,
            WasmError::ResourceLimitExceeded { .. } | WasmError::PoolExhausted { .. } => {
                FailureKind::ResourceLimit
            }
            WasmError::HostFunctionPanicked { .. } => FailureKind::Panicked,
            e if e.is_trap() => FailureKind::Trap,
            e if e.is_load_error() => FailureKind::StartFailed,
            _ => FailureKind::Other,
        };
        Self::new(kind, error.to_string())
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}
