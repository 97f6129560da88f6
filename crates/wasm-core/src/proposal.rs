//! [`Proposal`]: the WebAssembly proposals an engine can switch on, by the names
//! Wasmtime gives them.

use std::fmt;
use std::str::FromStr;

/// A WebAssembly or Component Model proposal beyond what every airssys-wasm engine
/// accepts, which an engine can switch on (`WasmEngineBuilder::proposal` in
/// `airssys-wasm-engine`, the CLI's `-W NAME`) and a manifest can require
/// (`[component] proposals`).
///
/// The engine starts from what Wasmtime's default configuration accepts — WebAssembly
/// 3.0 (GC, exceptions, tail calls, memory64, multiple memories, SIMD, …), wide
/// arithmetic, the Component Model — and these switch the Component Model's later
/// proposals, which Wasmtime implements. All are off by default. Wasmtime's default
/// differs in one: it turns on [`ComponentModelAsync`](Self::ComponentModelAsync),
/// which here is opt-in because it slows every call of every component (see
/// `WasmEngineBuilder::component_model_async`). Their names are Wasmtime's (`wasmtime
/// run -W component-model-map`).
///
/// Shared-memory threads are not among them: a guest thread could outlive the call and
/// the timeout that bound it, so a component that needs them is always refused, at
/// validation, with the proposal's name.
///
/// ```
/// use airssys_wasm_core::Proposal;
///
/// let p: Proposal = "component-model-map".parse()?;
/// assert_eq!(p, Proposal::ComponentModelMap);
/// assert_eq!(p.to_string(), "component-model-map");
/// let err = "threads".parse::<Proposal>().unwrap_err();
/// assert!(err.to_string().contains("never"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Proposal {
    /// Component Model async (WASI 0.3): async lifts and lowers, `stream`, `future`,
    /// the `task.*`, `waitable-set.*` and `context.*` built-ins. Off by default (on in
    /// Wasmtime's).
    ComponentModelAsync,
    /// More async built-ins (🚝).
    ComponentModelMoreAsyncBuiltins,
    /// Stackful async lifts (🚟).
    ComponentModelAsyncStackful,
    /// Cooperative threads of the Component Model (🧵), not shared memory.
    ComponentModelThreading,
    /// The `error-context` type and its built-ins (📝).
    ComponentModelErrorContext,
    /// The `map<k, v>` type.
    ComponentModelMap,
    /// Fixed-length lists, `list<T, N>` (🔧).
    ComponentModelFixedLengthLists,
    /// `[implements=…]` names (🏷️).
    ComponentModelImplements,
    /// Canonical names (🔗).
    ComponentModelCanonicalNames,
    /// Accessor names, `[get]`/`[set]` (📡).
    ComponentModelAccessors,
    /// GC types in the canonical ABI (🛸).
    ComponentModelGc,
    /// 64-bit memories in the canonical ABI (🐘).
    ComponentModelMemory64,
}

impl Proposal {
    /// Every proposal, in declaration order.
    pub const ALL: &'static [Proposal] = &[
        Self::ComponentModelAsync,
        Self::ComponentModelMoreAsyncBuiltins,
        Self::ComponentModelAsyncStackful,
        Self::ComponentModelThreading,
        Self::ComponentModelErrorContext,
        Self::ComponentModelMap,
        Self::ComponentModelFixedLengthLists,
        Self::ComponentModelImplements,
        Self::ComponentModelCanonicalNames,
        Self::ComponentModelAccessors,
        Self::ComponentModelGc,
        Self::ComponentModelMemory64,
    ];

    /// Its name, as Wasmtime's `-W` option spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::ComponentModelAsync => "component-model-async",
            Self::ComponentModelMoreAsyncBuiltins => "component-model-more-async-builtins",
            Self::ComponentModelAsyncStackful => "component-model-async-stackful",
            Self::ComponentModelThreading => "component-model-threading",
            Self::ComponentModelErrorContext => "component-model-error-context",
            Self::ComponentModelMap => "component-model-map",
            Self::ComponentModelFixedLengthLists => "component-model-fixed-length-lists",
            Self::ComponentModelImplements => "component-model-implements",
            Self::ComponentModelCanonicalNames => "component-model-canonical-names",
            Self::ComponentModelAccessors => "component-model-accessors",
            Self::ComponentModelGc => "component-model-gc",
            Self::ComponentModelMemory64 => "component-model-memory64",
        }
    }

    /// Whether Wasmtime's default configuration enables it (ours enables none).
    pub fn wasmtime_default(self) -> bool {
        self == Self::ComponentModelAsync
    }
}

impl fmt::Display for Proposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A proposal name that is not one of [`Proposal::ALL`]: its message lists the known
/// names, or, for threads, says why they are never enabled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(name))]
#[non_exhaustive]
pub struct UnknownProposal {
    /// The name as given.
    pub name: String,
}

/// Why the threads proposal (shared memory, atomics) is never enabled, as every
/// message that refuses it says.
pub const THREADS_NEVER: &str = "a guest thread could outlive the call whose fuel and timeout \
                                 bound it (shared memory and atomics stay off in every \
                                 airssys-wasm engine)";

fn describe(name: &str) -> String {
    if name.contains("threads") {
        return format!("`{name}` is never enabled: {THREADS_NEVER}");
    }
    let known: Vec<&str> = Proposal::ALL.iter().map(|p| p.name()).collect();
    format!("unknown proposal `{name}`; known: {}", known.join(", "))
}

impl FromStr for Proposal {
    type Err = UnknownProposal;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownProposal { name: s.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_known_ones() {
        for &p in Proposal::ALL {
            assert_eq!(p.name().parse::<Proposal>(), Ok(p));
        }
        let err = "component-model-maps"
            .parse::<Proposal>()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown proposal `component-model-maps`"),
            "{err}"
        );
        assert!(err.contains("component-model-map"), "{err}");
    }

    #[test]
    fn threads_are_refused_saying_why() {
        for name in ["threads", "shared-everything-threads"] {
            let err = name.parse::<Proposal>().unwrap_err().to_string();
            assert!(err.contains("never"), "{err}");
        }
    }
}
