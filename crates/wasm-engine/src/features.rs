//! Which WebAssembly and Component Model proposals an engine accepts: Wasmtime's
//! defaults, and [`Proposal`]s an embedder turns on or off on top of them.

use std::fmt;
use std::str::FromStr;

use wasmtime::wasmparser::WasmFeatures;

/// A proposal whose support an engine can switch with
/// [`WasmEngineBuilder::proposal`](crate::WasmEngineBuilder::proposal).
///
/// The engine starts from what Wasmtime's default configuration accepts — WebAssembly
/// 3.0 (GC, exceptions, tail calls, memory64, multiple memories, SIMD, …), wide
/// arithmetic, the Component Model — and these switch the Component Model's later
/// proposals, which Wasmtime implements. All are off by default. Wasmtime's default
/// differs in one: it turns on [`ComponentModelAsync`](Self::ComponentModelAsync),
/// which here is opt-in because it slows every call of every component (see
/// [`WasmEngineBuilder::component_model_async`](crate::WasmEngineBuilder::component_model_async)).
/// Their names are Wasmtime's (`wasmtime run -W component-model-map`).
///
/// Shared-memory threads are not among them: a guest thread could outlive the call and
/// the timeout that bound it, so a component that needs them is always refused, at
/// validation, with the proposal's name.
///
/// ```
/// use airssys_wasm_engine::{Proposal, WasmEngine};
///
/// let p: Proposal = "component-model-map".parse()?;
/// let engine = WasmEngine::builder().proposal(p, true).build()?;
/// assert!(engine.proposal_enabled(Proposal::ComponentModelMap));
/// assert!(!engine.proposal_enabled(Proposal::ComponentModelAsync)); // opt-in
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

    /// Whether it needs Wasmtime's concurrency support in every store.
    pub(crate) fn needs_concurrency(self) -> bool {
        matches!(
            self,
            Self::ComponentModelAsync
                | Self::ComponentModelMoreAsyncBuiltins
                | Self::ComponentModelAsyncStackful
                | Self::ComponentModelThreading
                | Self::ComponentModelErrorContext
        )
    }

    /// The validator's flag for it.
    pub(crate) fn flag(self) -> WasmFeatures {
        match self {
            Self::ComponentModelAsync => WasmFeatures::CM_ASYNC,
            Self::ComponentModelMoreAsyncBuiltins => WasmFeatures::CM_MORE_ASYNC_BUILTINS,
            Self::ComponentModelAsyncStackful => WasmFeatures::CM_ASYNC_STACKFUL,
            Self::ComponentModelThreading => WasmFeatures::CM_THREADING,
            Self::ComponentModelErrorContext => WasmFeatures::CM_ERROR_CONTEXT,
            Self::ComponentModelMap => WasmFeatures::CM_MAP,
            Self::ComponentModelFixedLengthLists => WasmFeatures::CM_FIXED_LENGTH_LISTS,
            Self::ComponentModelImplements => WasmFeatures::CM_IMPLEMENTS,
            Self::ComponentModelCanonicalNames => WasmFeatures::CM_CANON_NAMES,
            Self::ComponentModelAccessors => WasmFeatures::CM_ACCESSORS,
            Self::ComponentModelGc => WasmFeatures::CM_GC,
            Self::ComponentModelMemory64 => WasmFeatures::CM64,
        }
    }
}

impl fmt::Display for Proposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A proposal name that is not one of [`Proposal::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownProposal(pub String);

impl fmt::Display for UnknownProposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown proposal `{}`; known: ", self.0)?;
        for (i, p) in Proposal::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(p.name())?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownProposal {}

impl FromStr for Proposal {
    type Err = UnknownProposal;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownProposal(s.to_owned()))
    }
}

/// The proposals switched on an engine: one bit per [`Proposal`], by its index in
/// [`Proposal::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Proposals(u32);

impl Proposals {
    fn bit(p: Proposal) -> u32 {
        let index = Proposal::ALL.iter().position(|&q| q == p).unwrap_or(0);
        1 << index
    }

    pub(crate) fn set(&mut self, p: Proposal, enable: bool) {
        if enable {
            self.0 |= Self::bit(p);
        } else {
            self.0 &= !Self::bit(p);
        }
    }

    pub(crate) fn contains(self, p: Proposal) -> bool {
        self.0 & Self::bit(p) != 0
    }

    /// Whether stores need Wasmtime's concurrency support.
    pub(crate) fn concurrency(self) -> bool {
        Proposal::ALL
            .iter()
            .any(|&p| p.needs_concurrency() && self.contains(p))
    }

    /// What the validator accepts: exactly what Wasmtime computes for our build
    /// (`Config::features`: `WASM3` and wide arithmetic for Cranelift; GC types and
    /// exceptions with the `gc` crate feature; no `threads` crate feature, so no
    /// threads; the Component Model), plus the proposals switched here. The
    /// differential test in the loader checks that this agrees with what Wasmtime
    /// compiles.
    pub(crate) fn wasm_features(self) -> WasmFeatures {
        let mut features = WasmFeatures::WASM3 | WasmFeatures::WIDE_ARITHMETIC;
        features.remove(WasmFeatures::THREADS);
        features.insert(WasmFeatures::COMPONENT_MODEL);
        for &p in Proposal::ALL {
            features.set(p.flag(), self.contains(p));
        }
        features
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
        let err = "threads".parse::<Proposal>().unwrap_err().to_string();
        assert!(err.contains("unknown proposal `threads`"), "{err}");
        assert!(err.contains("component-model-map"), "{err}");
    }

    #[test]
    fn defaults_are_wasmtimes_but_async() {
        let p = Proposals::default();
        assert!(!p.contains(Proposal::ComponentModelAsync));
        assert!(Proposal::ComponentModelAsync.wasmtime_default());
        assert!(!p.contains(Proposal::ComponentModelMap));
        let f = p.wasm_features();
        for on in [
            WasmFeatures::GC,
            WasmFeatures::EXCEPTIONS,
            WasmFeatures::TAIL_CALL,
            WasmFeatures::MEMORY64,
            WasmFeatures::MULTI_MEMORY,
            WasmFeatures::WIDE_ARITHMETIC,
            WasmFeatures::COMPONENT_MODEL,
        ] {
            assert!(f.contains(on), "{on:?} off");
        }
        assert!(!f.contains(WasmFeatures::THREADS));
        assert!(!f.contains(WasmFeatures::CM_ASYNC));
        assert!(!f.contains(WasmFeatures::CM_MAP));
    }

    #[test]
    fn async_proposals_and_only_those_need_concurrency() {
        let mut p = Proposals::default();
        assert!(!p.concurrency());
        p.set(Proposal::ComponentModelMap, true);
        assert!(!p.concurrency());
        p.set(Proposal::ComponentModelAsync, true);
        assert!(p.concurrency());
        assert!(p.wasm_features().contains(WasmFeatures::CM_ASYNC));
        p.set(Proposal::ComponentModelAsync, false);
        p.set(Proposal::ComponentModelErrorContext, true);
        assert!(p.concurrency());
    }
}
