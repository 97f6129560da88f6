//! What some bytes are before they are compiled: a component, a core module or WAT
//! text (made binary here); the header checked; validated with exactly the engine's
//! features, a refused feature explained (which proposal to switch on, or why threads
//! stay off).

use std::borrow::Cow;
use std::path::Path;

use wasmtime::wasmparser::{Validator, WasmFeatures};

use airssys_wasm_core::{WasmError, WasmResult};

/// What kind of WebAssembly binary some bytes are, from their 8-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BinaryKind {
    /// A Component Model component.
    Component,
    /// A core WebAssembly module.
    CoreModule,
}

/// The kind of binary, from the header; `None` if it is not a WebAssembly binary.
pub fn binary_kind(bytes: &[u8]) -> Option<BinaryKind> {
    match bytes.get(..8)? {
        [0, b'a', b's', b'm', 1, 0, 0, 0] => Some(BinaryKind::CoreModule),
        [0, b'a', b's', b'm', _, _, 1, 0] => Some(BinaryKind::Component),
        _ => None,
    }
}

/// Whether `bytes` look like WAT text rather than a binary.
pub fn looks_like_wat(bytes: &[u8]) -> bool {
    !bytes.starts_with(b"\0asm")
        && std::str::from_utf8(bytes).is_ok_and(|s| {
            let mut rest = s.trim_start();
            // Skip line comments before the first form.
            while let Some(after) = rest.strip_prefix(";;") {
                rest = after.split_once('\n').map_or("", |(_, r)| r).trim_start();
            }
            rest.starts_with('(')
        })
}

pub(crate) fn to_binary<'a>(
    name: &str,
    path: Option<&Path>,
    bytes: &'a [u8],
) -> WasmResult<Cow<'a, [u8]>> {
    if bytes.starts_with(b"\0asm") {
        return Ok(Cow::Borrowed(bytes));
    }
    if looks_like_wat(bytes) {
        return wat::Parser::new()
            .parse_bytes(path, bytes)
            .map(|b| Cow::Owned(b.into_owned()))
            .map_err(|e| WasmError::ComponentParseFailed {
                component: name.to_owned(),
                reason: format!("the WAT text does not parse: {e}"),
            });
    }
    Err(WasmError::ComponentParseFailed {
        component: name.to_owned(),
        reason: if bytes.is_empty() {
            "the input is empty".into()
        } else {
            "this is not WebAssembly: a binary starts with the bytes `\\0asm`, and this is not \
             WAT text either"
                .into()
        },
    })
}

pub(crate) fn check_header(name: &str, binary: &[u8]) -> WasmResult<()> {
    match binary_kind(binary) {
        Some(BinaryKind::Component) => Ok(()),
        Some(BinaryKind::CoreModule) => Err(WasmError::ComponentValidationFailed {
            component: name.to_owned(),
            reason: "this is a core WebAssembly module, not a component".into(),
            hint: Some(
                "airssys-wasm runs Component Model components: wrap the module with \
                 `wasm-tools component new` (with a WASI adapter if it imports WASI), or build \
                 for the `wasm32-wasip2` target"
                    .into(),
            ),
        }),
        None => Err(WasmError::ComponentParseFailed {
            component: name.to_owned(),
            reason: if binary.len() < 8 {
                format!(
                    "truncated: {} bytes, shorter than the 8-byte header",
                    binary.len()
                )
            } else {
                format!(
                    "unsupported binary version {:02x?}: this engine reads components \
                     (version 0x0d, layer 1)",
                    &binary[4..8]
                )
            },
        }),
    }
}

pub(crate) fn validate_with(features: WasmFeatures, name: &str, binary: &[u8]) -> WasmResult<()> {
    Validator::new_with_features(features)
        .validate_all(binary)
        .map(drop)
        .map_err(|e| {
            let reason = e.to_string();
            WasmError::ComponentValidationFailed {
                component: name.to_owned(),
                hint: feature_hint(&reason),
                reason,
            }
        })
}

/// What to do when validation refused a feature the engine leaves off: a
/// [`Proposal`](airssys_wasm_engine::Proposal) can be switched on, threads cannot.
fn feature_hint(reason: &str) -> Option<String> {
    use airssys_wasm_engine::Proposal;
    if reason.contains("threads") || reason.contains("shared memor") {
        return Some(format!(
            "it needs the threads proposal, which airssys-wasm never enables: {}. Build the \
             component without threads (e.g. not for wasm32-wasip1-threads)",
            airssys_wasm_core::proposal::THREADS_NEVER
        ));
    }
    // wasmparser names Component Model features in words ("the component model async
    // feature", "the `cm-implements` feature", "Maps require …").
    let words: &[(&str, Proposal)] = &[
        ("component model async", Proposal::ComponentModelAsync),
        ("async component functions", Proposal::ComponentModelAsync),
        (
            "more async builtins",
            Proposal::ComponentModelMoreAsyncBuiltins,
        ),
        ("async stackful", Proposal::ComponentModelAsyncStackful),
        ("threading", Proposal::ComponentModelThreading),
        ("error-context", Proposal::ComponentModelErrorContext),
        ("map feature", Proposal::ComponentModelMap),
        (
            "fixed-length lists",
            Proposal::ComponentModelFixedLengthLists,
        ),
        ("cm-implements", Proposal::ComponentModelImplements),
        ("canonical names", Proposal::ComponentModelCanonicalNames),
        ("accessors", Proposal::ComponentModelAccessors),
    ];
    let (_, proposal) = words.iter().find(|(w, _)| reason.contains(w))?;
    Some(format!(
        "it uses the `{proposal}` proposal, which this engine leaves off: add `proposals = \
         [\"{proposal}\"]` to [component] of its Component.toml, or pass `-W {proposal}` to the \
         command line; embedders: `WasmEngineBuilder::proposal(Proposal::{proposal:?}, true)`"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn sniffs_kinds() {
        assert_eq!(
            binary_kind(airssys_wasm_testkit::HELLO),
            Some(BinaryKind::Component)
        );
        assert_eq!(
            binary_kind(airssys_wasm_testkit::CORE_MODULE),
            Some(BinaryKind::CoreModule)
        );
        assert_eq!(binary_kind(b"\0asm"), None);
        assert!(looks_like_wat(b"  ;; comment\n(component)"));
        assert!(looks_like_wat(b"(module)"));
        assert!(!looks_like_wat(b"hello"));
        assert!(!looks_like_wat(&[0xff, 0xfe, b'(']));
    }

    #[test]
    fn wat_errors_point_at_line_and_column() {
        let err =
            to_binary("x.wat", Some(Path::new("x.wat")), b"(component\n  (oops))").unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, WasmError::ComponentParseFailed { .. }));
        assert!(msg.contains("x.wat:2:"), "{msg}");
    }
}
