//! Which WebAssembly and Component Model proposals an engine accepts: Wasmtime's
//! defaults, and [`Proposal`]s an embedder turns on or off on top of them.

use wasmtime::wasmparser::WasmFeatures;

pub use airssys_wasm_core::{Proposal, UnknownProposal};

/// Whether `p` needs Wasmtime's concurrency support in every store.
pub(crate) fn needs_concurrency(p: Proposal) -> bool {
    matches!(
        p,
        Proposal::ComponentModelAsync
            | Proposal::ComponentModelMoreAsyncBuiltins
            | Proposal::ComponentModelAsyncStackful
            | Proposal::ComponentModelThreading
            | Proposal::ComponentModelErrorContext
    )
}

/// The validator's flag for `p`.
pub(crate) fn flag(p: Proposal) -> WasmFeatures {
    match p {
        Proposal::ComponentModelAsync => WasmFeatures::CM_ASYNC,
        Proposal::ComponentModelMoreAsyncBuiltins => WasmFeatures::CM_MORE_ASYNC_BUILTINS,
        Proposal::ComponentModelAsyncStackful => WasmFeatures::CM_ASYNC_STACKFUL,
        Proposal::ComponentModelThreading => WasmFeatures::CM_THREADING,
        Proposal::ComponentModelErrorContext => WasmFeatures::CM_ERROR_CONTEXT,
        Proposal::ComponentModelMap => WasmFeatures::CM_MAP,
        Proposal::ComponentModelFixedLengthLists => WasmFeatures::CM_FIXED_LENGTH_LISTS,
        Proposal::ComponentModelImplements => WasmFeatures::CM_IMPLEMENTS,
        Proposal::ComponentModelCanonicalNames => WasmFeatures::CM_CANON_NAMES,
        Proposal::ComponentModelAccessors => WasmFeatures::CM_ACCESSORS,
        Proposal::ComponentModelGc => WasmFeatures::CM_GC,
        Proposal::ComponentModelMemory64 => WasmFeatures::CM64,
        // `Proposal` is non-exhaustive; one added to core without a flag here switches
        // nothing (the unit test below checks every one has a flag).
        _ => WasmFeatures::empty(),
    }
}

/// The proposals switched on an engine, as the validator's flags of those proposals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Proposals(WasmFeatures);

impl Default for Proposals {
    fn default() -> Self {
        Self(WasmFeatures::empty())
    }
}

impl Proposals {
    pub(crate) fn set(&mut self, p: Proposal, enable: bool) {
        self.0.set(flag(p), enable);
    }

    pub(crate) fn contains(self, p: Proposal) -> bool {
        let f = flag(p);
        !f.is_empty() && self.0.contains(f)
    }

    /// Whether stores need Wasmtime's concurrency support.
    pub(crate) fn concurrency(self) -> bool {
        Proposal::ALL
            .iter()
            .any(|&p| needs_concurrency(p) && self.contains(p))
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
        // Ours switch Component Model proposals only, none of which WASM3 includes.
        features | self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_proposal_has_a_flag_of_its_own() {
        let mut seen = WasmFeatures::empty();
        for &p in Proposal::ALL {
            let f = flag(p);
            assert!(!f.is_empty(), "{p} has no flag");
            assert!(!seen.intersects(f), "{p} shares a flag");
            seen |= f;
        }
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
