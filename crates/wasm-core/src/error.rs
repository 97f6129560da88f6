//! The error type shared by every airssys-wasm crate.
//!
//! Every variant says *what* happened, *to which component* (or file), and where it
//! helps, *what to do about it*. The source chain of the underlying error (Wasmtime's,
//! the file system's, the parser's) is kept and reachable with
//! [`std::error::Error::source`].

use std::path::PathBuf;
use std::time::Duration;

/// A boxed error kept as the source of a [`WasmError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with [`WasmError`] as the error.
pub type WasmResult<T> = Result<T, WasmError>;

/// Everything that can go wrong while loading, validating, instantiating or running a
/// component.
///
/// Use the `is_*` helpers ([`is_load_error`](Self::is_load_error),
/// [`is_engine_error`](Self::is_engine_error), [`is_runtime_error`](Self::is_runtime_error),
/// [`is_limit_error`](Self::is_limit_error), [`is_usage_error`](Self::is_usage_error))
/// to decide how to react without matching every variant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WasmError {
    /// The component file is not the one its manifest pins (`sha256` in
    /// `[component]`): nothing was compiled or taken from the cache.
    #[error(
        "component `{component}`: {} has SHA-256 {actual}, but its manifest pins {expected}; \
         the file is not the one the manifest was written for — restore it, or update \
         `sha256` in [component] if the change is intended",
        path.display()
    )]
    IntegrityMismatch {
        /// The component's name.
        component: String,
        /// The component file.
        path: PathBuf,
        /// The digest the manifest pins (lowercase hex).
        expected: String,
        /// The file's digest (lowercase hex).
        actual: String,
    },

    /// The Wasmtime engine could not be created from the given configuration.
    #[error("failed to initialize the WebAssembly engine: {reason}")]
    EngineInitialization {
        /// Why the engine could not be created.
        reason: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },

    /// The component file could not be read.
    #[error("failed to load component from {}: {reason}", path.display())]
    ComponentLoadFailed {
        /// The file that was asked for.
        path: PathBuf,
        /// Why it could not be read, and what to check.
        reason: String,
        /// The underlying I/O error.
        #[source]
        source: Option<BoxError>,
    },

    /// The bytes are not WebAssembly at all (bad magic, truncated) or the WAT text does
    /// not parse.
    #[error("failed to parse component `{component}`: {reason}")]
    ComponentParseFailed {
        /// The component's name (file name, manifest name, or `<bytes>`).
        component: String,
        /// What is wrong with the bytes or the text (with line and column for WAT).
        reason: String,
    },

    /// The bytes are WebAssembly but not a valid component for this engine (a core
    /// module, an invalid section, a feature this engine does not enable, …).
    #[error("component `{component}` is invalid: {reason}{}", hint_suffix(hint))]
    ComponentValidationFailed {
        /// The component's name.
        component: String,
        /// What the validator reported (with the byte offset).
        reason: String,
        /// What to do about it, when there is something to do.
        hint: Option<String>,
    },

    /// Compiling a valid component failed (an engine limitation or an internal error).
    #[error("failed to compile component `{component}`: {reason}")]
    ComponentCompilationFailed {
        /// The component's name.
        component: String,
        /// Why compilation failed.
        reason: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },

    /// The component could not be instantiated: unsatisfied imports, a trap in a start
    /// function, or an instance/table/memory count over its bound.
    #[error("failed to instantiate component `{component}`: {reason}")]
    ComponentInstantiationFailed {
        /// The component's name.
        component: String,
        /// Why, e.g. the list of imports the host does not provide.
        reason: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },

    /// The guest trapped (unreachable, integer divide by zero, stack overflow,
    /// out-of-bounds memory access, …).
    #[error(
        "component `{component}` trapped: {reason}{}",
        fuel_suffix(*fuel_consumed)
    )]
    ComponentTrapped {
        /// The component's name.
        component: String,
        /// The trap in words.
        reason: String,
        /// Fuel used by the call before it trapped, when known.
        fuel_consumed: Option<u64>,
        /// The guest's backtrace, when Wasmtime captured one.
        backtrace: Option<String>,
    },

    /// The call ran longer than its wall-clock timeout — in guest code, or waiting in a
    /// host function (then named in `in_host`).
    #[error(
        "component `{component}` exceeded its wall-clock timeout of {max_execution_ms}ms{}{}; \
         raise `timeout` in [limits] of Component.toml (or pass --timeout) if the work is legitimate",
        in_host.as_ref().map(|f| format!(" while waiting in host function {f}")).unwrap_or_default(),
        fuel_consumed.map(|f| format!(" after consuming at least {f} fuel")).unwrap_or_default()
    )]
    ComponentTimeout {
        /// The component's name.
        component: String,
        /// The timeout that was exceeded, in milliseconds.
        max_execution_ms: u64,
        /// Fuel used by the call before it was stopped, when known: a lower bound, since
        /// code interrupted by the deadline inside a loop has not yet written back the
        /// fuel it used (Wasmtime flushes its fuel counter at calls, not at epoch checks).
        fuel_consumed: Option<u64>,
        /// The host function the guest was waiting in when the deadline passed
        /// (`interface#function`), when it was in one of the embedder's.
        in_host: Option<String>,
    },

    /// The component imports host interfaces it was not granted, or that the host
    /// does not provide; or it was granted interfaces the host does not provide.
    /// Nothing was instantiated.
    #[error(
        "component `{component}` cannot be instantiated: {}",
        denial_list(denied)
    )]
    InterfacesDenied {
        /// The component's name.
        component: String,
        /// Every problem, one per interface.
        denied: Vec<InterfaceDenial>,
    },

    /// A host function the guest called returned an error. The instance is poisoned,
    /// as for a trap.
    #[error("component `{component}` called host function {function}, which failed: {reason}")]
    HostFunctionFailed {
        /// The component's name.
        component: String,
        /// The host function (`interface#function`, or the interface and its
        /// candidate functions when the guest imports several).
        function: String,
        /// The host's error in words.
        reason: String,
        /// The embedder's error.
        #[source]
        source: Option<BoxError>,
    },

    /// A host function the guest called panicked. The panic was contained: the
    /// instance is poisoned, the process and every other instance carry on.
    #[error("component `{component}` called host function {function}, which panicked: {message}")]
    HostFunctionPanicked {
        /// The component's name.
        component: String,
        /// The host function, as in [`WasmError::HostFunctionFailed`] (or `unknown`
        /// when the panic did not happen inside one of the embedder's functions).
        function: String,
        /// The panic's message.
        message: String,
    },

    /// The call used up its fuel budget.
    #[error(
        "component `{component}` ran out of fuel: the budget of {fuel_limit} units for one call \
         is used up; raise `fuel` in [limits] of Component.toml (or pass --fuel) if the work is legitimate"
    )]
    FuelExhausted {
        /// The component's name.
        component: String,
        /// The fuel budget of one call.
        fuel_limit: u64,
    },

    /// The guest needed more linear memory than its limit allows.
    #[error(
        "component `{component}` exceeded its memory limit of {} (it asked for {}{}); \
         raise `memory` in [limits] of Component.toml (or pass --memory) if the need is legitimate",
        fmt_bytes(*limit_bytes),
        fmt_bytes(*requested_bytes),
        trap_suffix(trap)
    )]
    MemoryLimitExceeded {
        /// The component's name.
        component: String,
        /// The memory limit: total bytes of all linear memories of one instance.
        limit_bytes: u64,
        /// The total the instance would have had if the request had been granted.
        requested_bytes: u64,
        /// The trap the guest raised after the denial (e.g. Rust's abort), if any.
        trap: Option<String>,
    },

    /// A table, instance or memory count over its bound.
    #[error(
        "component `{component}` exceeded its {resource} limit of {limit} (it asked for {requested})"
    )]
    ResourceLimitExceeded {
        /// The component's name.
        component: String,
        /// What was limited (`table elements`, `instances`, `tables`, `memories`).
        resource: String,
        /// The bound.
        limit: u64,
        /// What was asked for.
        requested: u64,
    },

    /// The engine's pool of concurrent instances (or of their memories, tables or
    /// stacks) is full: every slot is held by a live instance. Transient — another
    /// instance's end frees a slot — so a server answers it with 503, not 500.
    #[error(
        "component `{component}` could not be instantiated: the engine's pool of \
         concurrent {resource} is full ({limit} in use); retry once an instance has \
         ended, or raise the pool size (`Pooling::for_limits`'s instance count, \
         `serve --max-concurrency`)"
    )]
    PoolExhausted {
        /// The component's name.
        component: String,
        /// What the pool holds, in Wasmtime's words (`component instances`, `memories`,
        /// `tables`, `stacks`…).
        resource: String,
        /// The pool's size.
        limit: u64,
    },

    /// The export to call does not exist.
    #[error(
        "component `{component}` has no export `{export}`; its exports are:{}",
        list_suffix(available)
    )]
    ExportNotFound {
        /// The component's name.
        component: String,
        /// The export that was asked for.
        export: String,
        /// The exported functions with their signatures.
        available: Vec<String>,
    },

    /// The arguments do not match the export's signature (count or types), or the
    /// invocation text does not parse.
    #[error(
        "invalid call of `{export}` on component `{component}`: {reason} (signature: {signature})"
    )]
    InvalidArguments {
        /// The component's name.
        component: String,
        /// The export that was called.
        export: String,
        /// What is wrong with the arguments.
        reason: String,
        /// The export's signature, WIT-like.
        signature: String,
    },

    /// The guest ended itself through WASI `exit` (`std::process::exit` in Rust). Not a
    /// failure when the code is 0; the CLI makes the code its own exit code.
    #[error("component `{component}` exited with code {code}")]
    Exited {
        /// The component's name.
        component: String,
        /// The exit code the guest gave.
        code: i32,
    },

    /// An earlier call on this instance trapped, hit a limit, or was cancelled by its
    /// caller before it finished; the instance's state is no longer trustworthy.
    #[error(
        "instance of component `{component}` is poisoned by an earlier failure ({cause}); \
         instantiate the component again"
    )]
    InstancePoisoned {
        /// The component's name.
        component: String,
        /// The failure that poisoned it.
        cause: String,
    },

    /// A resource limit is missing or out of its allowed range. Limits are never
    /// defaulted: memory, fuel and timeout must all be stated.
    #[error("invalid resource limits: {reason}")]
    InvalidLimits {
        /// What is missing or out of range, and how to fix it.
        reason: String,
    },

    /// A capability could not be granted (a preopened directory that cannot be opened,
    /// an environment entry that is not valid).
    #[error("cannot grant capability {capability}: {reason}")]
    CapabilityDenied {
        /// The capability, as written.
        capability: String,
        /// Why it could not be granted.
        reason: String,
    },

    /// Something that should not happen inside the engine; the message says what.
    #[error("internal error in component `{component}`: {reason}")]
    Internal {
        /// The component's name.
        component: String,
        /// What happened.
        reason: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
}

impl WasmError {
    /// Loading failed: the file, the bytes, validation or compilation.
    pub fn is_load_error(&self) -> bool {
        matches!(
            self,
            Self::ComponentLoadFailed { .. }
                | Self::IntegrityMismatch { .. }
                | Self::ComponentParseFailed { .. }
                | Self::ComponentValidationFailed { .. }
                | Self::ComponentCompilationFailed { .. }
        )
    }

    /// The engine itself could not be set up.
    pub fn is_engine_error(&self) -> bool {
        matches!(self, Self::EngineInitialization { .. })
    }

    /// Something went wrong while the guest ran: a trap, a limit, a poisoned instance,
    /// or a failed instantiation.
    pub fn is_runtime_error(&self) -> bool {
        matches!(
            self,
            Self::ComponentTrapped { .. }
                | Self::ComponentTimeout { .. }
                | Self::FuelExhausted { .. }
                | Self::MemoryLimitExceeded { .. }
                | Self::ResourceLimitExceeded { .. }
                | Self::PoolExhausted { .. }
                | Self::InstancePoisoned { .. }
                | Self::ComponentInstantiationFailed { .. }
                | Self::InterfacesDenied { .. }
                | Self::HostFunctionFailed { .. }
                | Self::HostFunctionPanicked { .. }
                | Self::Exited { .. }
        )
    }

    /// A host function failed or panicked while the guest called it.
    pub fn is_host_error(&self) -> bool {
        matches!(
            self,
            Self::HostFunctionFailed { .. } | Self::HostFunctionPanicked { .. }
        )
    }

    /// The component asks for host interfaces it was not granted or the host does not
    /// provide (or was granted ones the host does not provide).
    pub fn is_denied_error(&self) -> bool {
        matches!(self, Self::InterfacesDenied { .. })
    }

    /// A resource limit stopped the guest (timeout, fuel, memory, tables/instances).
    pub fn is_limit_error(&self) -> bool {
        matches!(
            self,
            Self::ComponentTimeout { .. }
                | Self::FuelExhausted { .. }
                | Self::MemoryLimitExceeded { .. }
                | Self::ResourceLimitExceeded { .. }
                | Self::PoolExhausted { .. }
        )
    }

    /// The caller asked for something that cannot be done as asked: an unknown export,
    /// wrong arguments, missing or invalid limits, a capability that cannot be granted.
    pub fn is_usage_error(&self) -> bool {
        matches!(
            self,
            Self::ExportNotFound { .. }
                | Self::InvalidArguments { .. }
                | Self::InvalidLimits { .. }
                | Self::CapabilityDenied { .. }
        )
    }

    /// The guest trapped (not a limit).
    pub fn is_trap(&self) -> bool {
        matches!(self, Self::ComponentTrapped { .. })
    }

    /// The guest's backtrace, for traps that have one.
    pub fn guest_backtrace(&self) -> Option<&str> {
        match self {
            Self::ComponentTrapped { backtrace, .. } => backtrace.as_deref(),
            _ => None,
        }
    }
}

/// One host interface a component cannot have, with the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceDenial {
    /// The interface, as imported or granted (`acme:plugins/kv@1.2.0`).
    pub interface: String,
    /// What is wrong: not granted, not provided by this host, granted but not provided.
    pub problem: String,
    /// What to do about it, e.g. the manifest line that would grant it.
    pub fix: String,
}

impl std::fmt::Display for InterfaceDenial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` {}; {}", self.interface, self.problem, self.fix)
    }
}

fn denial_list(denied: &[InterfaceDenial]) -> String {
    match denied {
        [one] => one.to_string(),
        many => many.iter().map(|d| format!("\n  {d}")).collect(),
    }
}

fn hint_suffix(hint: &Option<String>) -> String {
    hint.as_ref().map(|h| format!("; {h}")).unwrap_or_default()
}

fn fuel_suffix(fuel: Option<u64>) -> String {
    fuel.map(|f| format!(" after consuming {f} fuel"))
        .unwrap_or_default()
}

fn trap_suffix(trap: &Option<String>) -> String {
    trap.as_ref()
        .map(|t| format!(", then trapped: {t}"))
        .unwrap_or_default()
}

fn list_suffix(items: &[String]) -> String {
    if items.is_empty() {
        " (none)".to_owned()
    } else {
        items.iter().map(|i| format!("\n  {i}")).collect()
    }
}

/// Formats a byte count the way limits are written (`4 MiB`, `65536 B`).
pub fn fmt_bytes(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{} {unit}", bytes / size);
        }
    }
    if bytes >= 1 << 20 {
        return format!(
            "{:.1} MiB ({bytes} bytes)",
            bytes as f64 / (1u64 << 20) as f64
        );
    }
    format!("{bytes} bytes")
}

/// Formats a duration in milliseconds, saturating (used by timeout messages).
pub fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_are_disjoint_where_they_must_be() {
        let load = WasmError::ComponentParseFailed {
            component: "x".into(),
            reason: "bad magic".into(),
        };
        assert!(load.is_load_error());
        assert!(!load.is_runtime_error() && !load.is_engine_error() && !load.is_usage_error());

        let engine = WasmError::EngineInitialization {
            reason: "bad config".into(),
            source: None,
        };
        assert!(engine.is_engine_error() && !engine.is_load_error());

        let fuel = WasmError::FuelExhausted {
            component: "x".into(),
            fuel_limit: 10,
        };
        assert!(fuel.is_runtime_error() && fuel.is_limit_error() && !fuel.is_trap());

        let trap = WasmError::ComponentTrapped {
            component: "x".into(),
            reason: "unreachable".into(),
            fuel_consumed: Some(3),
            backtrace: Some("0: f".into()),
        };
        assert!(trap.is_runtime_error() && trap.is_trap() && !trap.is_limit_error());
        assert_eq!(trap.guest_backtrace(), Some("0: f"));

        let usage = WasmError::ExportNotFound {
            component: "x".into(),
            export: "nope".into(),
            available: vec![],
        };
        assert!(usage.is_usage_error() && !usage.is_runtime_error());
    }

    #[test]
    fn messages_name_component_limit_and_fix() {
        let e = WasmError::MemoryLimitExceeded {
            component: "bomb".into(),
            limit_bytes: 1 << 20,
            requested_bytes: (1 << 20) + 65536,
            trap: Some("unreachable".into()),
        };
        let msg = e.to_string();
        assert!(msg.contains("`bomb`"), "{msg}");
        assert!(msg.contains("1 MiB"), "{msg}");
        assert!(msg.contains("1088 KiB"), "{msg}");
        assert!(msg.contains("raise `memory`"), "{msg}");
        assert!(msg.contains("then trapped: unreachable"), "{msg}");

        let t = WasmError::ComponentTimeout {
            component: "spin".into(),
            max_execution_ms: 100,
            fuel_consumed: Some(5),
            in_host: None,
        };
        let msg = t.to_string();
        assert!(
            msg.contains("100ms") && msg.contains("after consuming at least 5 fuel"),
            "{msg}"
        );

        let e = WasmError::ExportNotFound {
            component: "c".into(),
            export: "nope".into(),
            available: vec!["double: func(x: s32) -> s32".into()],
        };
        assert!(e.to_string().contains("\n  double: func(x: s32) -> s32"));
    }

    #[test]
    fn source_chain_is_kept() {
        use std::error::Error as _;
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e = WasmError::ComponentLoadFailed {
            path: "a.wasm".into(),
            reason: "no such file".into(),
            source: Some(Box::new(io)),
        };
        assert_eq!(e.source().map(|s| s.to_string()), Some("gone".into()));
    }

    #[test]
    fn fmt_bytes_picks_exact_units() {
        assert_eq!(fmt_bytes(4 << 20), "4 MiB");
        assert_eq!(fmt_bytes(64 << 10), "64 KiB");
        assert_eq!(fmt_bytes(3 << 30), "3 GiB");
        assert_eq!(fmt_bytes(1000), "1000 bytes");
        assert_eq!(fmt_bytes((1 << 20) + 1), "1.0 MiB (1048577 bytes)");
    }
}
