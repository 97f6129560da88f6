//! # airssys-wasm-loader
//!
//! [`ComponentLoader`] turns files and bytes — binary `.wasm` or `.wat` text — into
//! [`CompiledComponent`]s, and validates untrusted bytes **without compiling them**.
//!
//! - [`ComponentLoader::validate`] runs `wasmparser`'s validator (the one Wasmtime uses)
//!   with exactly the engine's WebAssembly features: cheap, and safe on hostile input.
//! - A core module handed in where a component is expected is refused with a message
//!   that says how to make it a component.
//! - Compilation is CPU-heavy and runs on tokio's blocking pool, never on the executor.
//!
//! ```
//! use airssys_wasm_engine::WasmEngine;
//! use airssys_wasm_loader::ComponentLoader;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), airssys_wasm_core::WasmError> {
//! let engine = WasmEngine::new()?;
//! let loader = ComponentLoader::new(&engine);
//!
//! let wat = br#"(component
//!     (core module $m (func (export "hello") (result i32) i32.const 42))
//!     (core instance $i (instantiate $m))
//!     (func (export "hello") (result s32) (canon lift (core func $i "hello"))))"#;
//! loader.validate(wat).await?;
//! let component = loader.load_from_bytes(wat).await?;
//! assert_eq!(component.export_signatures(), ["hello: func() -> s32"]);
//!
//! let err = loader.validate(b"(module)").await.unwrap_err();
//! assert!(err.is_load_error());
//! assert!(err.to_string().contains("wasm-tools component new"));
//! # Ok(())
//! # }
//! ```

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use wasmtime::component::Component;
use wasmtime::wasmparser::{Validator, WasmFeatures};

use airssys_wasm_core::{WasmError, WasmResult};
pub use airssys_wasm_engine::CompiledComponent;
use airssys_wasm_engine::WasmEngine;

/// The name used for components loaded from bytes without a name.
pub const BYTES_NAME: &str = "<bytes>";

/// Inputs smaller than this are validated on the calling task; larger ones on the
/// blocking pool.
const INLINE_VALIDATION_LIMIT: usize = 256 * 1024;

/// What kind of WebAssembly binary some bytes are, from their 8-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BinaryKind {
    /// A Component Model component.
    Component,
    /// A core WebAssembly module.
    CoreModule,
}

/// Loads, validates and compiles components for one [`WasmEngine`].
#[derive(Debug, Clone)]
pub struct ComponentLoader {
    engine: WasmEngine,
}

impl ComponentLoader {
    /// A loader compiling with `engine`.
    pub fn new(engine: &WasmEngine) -> Self {
        Self {
            engine: engine.clone(),
        }
    }

    /// The engine components are compiled with.
    pub fn engine(&self) -> &WasmEngine {
        &self.engine
    }

    /// Reads, validates and compiles a component file (`.wasm`, or `.wat` text). The
    /// component is named after the file.
    ///
    /// # Errors
    ///
    /// [`WasmError::ComponentLoadFailed`] when the file cannot be read, otherwise as
    /// [`load_from_bytes`](Self::load_from_bytes).
    pub async fn load_from_file(&self, path: impl AsRef<Path>) -> WasmResult<CompiledComponent> {
        let path = path.as_ref();
        let bytes = read_file(path).await?;
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        self.compile(name, Some(path.to_owned()), bytes).await
    }

    /// Validates and compiles a component from bytes (binary or WAT text), named
    /// [`BYTES_NAME`] in messages.
    ///
    /// # Errors
    ///
    /// [`WasmError::ComponentParseFailed`] for bytes that are not WebAssembly or WAT
    /// that does not parse, [`WasmError::ComponentValidationFailed`] for an invalid
    /// component or a core module, [`WasmError::ComponentCompilationFailed`] if Wasmtime
    /// cannot compile a valid component.
    pub async fn load_from_bytes(&self, bytes: &[u8]) -> WasmResult<CompiledComponent> {
        self.load_named(BYTES_NAME, bytes).await
    }

    /// As [`load_from_bytes`](Self::load_from_bytes), with the name to use in messages.
    ///
    /// # Errors
    ///
    /// As [`load_from_bytes`](Self::load_from_bytes).
    pub async fn load_named(&self, name: &str, bytes: &[u8]) -> WasmResult<CompiledComponent> {
        self.compile(name.to_owned(), None, bytes.to_vec()).await
    }

    /// Checks that `bytes` (binary or WAT) are a valid component for this engine,
    /// **without compiling**: `wasmparser`'s validator with the engine's features.
    ///
    /// # Errors
    ///
    /// As [`load_from_bytes`](Self::load_from_bytes), less compilation errors.
    pub async fn validate(&self, bytes: &[u8]) -> WasmResult<()> {
        if bytes.len() <= INLINE_VALIDATION_LIMIT {
            return self.validate_blocking(BYTES_NAME, bytes);
        }
        let this = self.clone();
        let owned = bytes.to_vec();
        tokio::task::spawn_blocking(move || this.validate_blocking(BYTES_NAME, &owned))
            .await
            .map_err(|e| join_error(BYTES_NAME, e))?
    }

    /// Validates a file, without compiling.
    ///
    /// # Errors
    ///
    /// As [`load_from_file`](Self::load_from_file), less compilation errors.
    pub async fn validate_file(&self, path: impl AsRef<Path>) -> WasmResult<()> {
        let path = path.as_ref();
        let bytes = read_file(path).await?;
        let name = path.display().to_string();
        let this = self.clone();
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || {
            let binary = to_binary(&name, Some(&path), &bytes)?;
            this.check(&name, &binary)
        })
        .await
        .map_err(|e| join_error("<file>", e))?
    }

    /// The synchronous validator behind [`validate`](Self::validate), for callers that
    /// are not async.
    ///
    /// # Errors
    ///
    /// As [`validate`](Self::validate).
    pub fn validate_blocking(&self, name: &str, bytes: &[u8]) -> WasmResult<()> {
        let binary = to_binary(name, None, bytes)?;
        self.check(name, &binary)
    }

    fn check(&self, name: &str, binary: &[u8]) -> WasmResult<()> {
        check_header(name, binary)?;
        validate_with(self.engine.wasm_features(), name, binary)
    }

    async fn compile(
        &self,
        name: String,
        path: Option<PathBuf>,
        bytes: Vec<u8>,
    ) -> WasmResult<CompiledComponent> {
        let engine = self.engine.clone();
        let features = self.engine.wasm_features();
        tokio::task::spawn_blocking(move || {
            let binary = to_binary(&name, path.as_deref(), &bytes)?;
            check_header(&name, &binary)?;
            let component = match Component::from_binary(engine.wasmtime_engine(), &binary) {
                Ok(c) => c,
                Err(e) => {
                    // Wasmtime validates while compiling; re-validate for the precise
                    // message (offset, what is wrong) only on this failure path.
                    validate_with(features, &name, &binary)?;
                    return Err(WasmError::ComponentCompilationFailed {
                        component: name,
                        reason: format!("{e:#}"),
                        source: Some(e.into()),
                    });
                }
            };
            tracing::debug!(component = %name, "compiled");
            CompiledComponent::new(&engine, name, component)
        })
        .await
        .map_err(|e| join_error("<compile>", e))?
    }
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

fn to_binary<'a>(name: &str, path: Option<&Path>, bytes: &'a [u8]) -> WasmResult<Cow<'a, [u8]>> {
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

fn check_header(name: &str, binary: &[u8]) -> WasmResult<()> {
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

fn validate_with(features: WasmFeatures, name: &str, binary: &[u8]) -> WasmResult<()> {
    Validator::new_with_features(features)
        .validate_all(binary)
        .map(drop)
        .map_err(|e| WasmError::ComponentValidationFailed {
            component: name.to_owned(),
            reason: e.to_string(),
            hint: None,
        })
}

async fn read_file(path: &Path) -> WasmResult<Vec<u8>> {
    tokio::fs::read(path).await.map_err(|e| {
        let reason = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file; check the path".to_owned(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
            std::io::ErrorKind::IsADirectory => {
                "this is a directory; pass the component file (.wasm or .wat)".to_owned()
            }
            _ => e.to_string(),
        };
        WasmError::ComponentLoadFailed {
            path: path.to_owned(),
            reason,
            source: Some(Box::new(e)),
        }
    })
}

fn join_error(name: &str, e: tokio::task::JoinError) -> WasmError {
    WasmError::Internal {
        component: name.to_owned(),
        reason: format!("the compilation task failed: {e}"),
        source: Some(Box::new(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
