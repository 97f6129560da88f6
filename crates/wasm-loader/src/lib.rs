//! # airssys-wasm-loader
//!
//! [`ComponentLoader`] turns files and bytes — binary `.wasm` or `.wat` text — into
//! [`CompiledComponent`]s, and validates untrusted bytes **without compiling them**.
//!
//! - [`ComponentLoader::validate`] runs `wasmparser`'s validator (the one Wasmtime uses)
//!   with exactly the engine's WebAssembly features: cheap, and safe on hostile input.
//! - A core module handed in where a component is expected is refused with a message
//!   that says how to make it a component.
//! - Compilation is CPU-heavy and never stalls the executor: on a multi-threaded runtime
//!   it runs under `block_in_place` (the worker's other tasks move to another thread; the
//!   loading task itself waits, including futures joined with it), on a current-thread
//!   runtime on the blocking pool.
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

use std::path::{Path, PathBuf};
use std::sync::Arc;

mod binary;
mod cache;
mod pin;
mod source;

pub use binary::{BinaryKind, binary_kind, looks_like_wat};
use binary::{check_header, to_binary, validate_with};
use cache::{ArtifactCache, Lookup};
pub use cache::{CacheConfig, CacheOutcome, DEFAULT_MAX_BYTES, RACY_WINDOW, TOUCH_AFTER, xdg_dir};
pub use pin::{check_sha256, sha256_hex};
pub use source::{LoadOptions, Loaded, Precompiled, Source};

use wasmtime::component::Component;

use airssys_wasm_core::{WasmError, WasmResult};
pub use airssys_wasm_engine::CompiledComponent;
use airssys_wasm_engine::WasmEngine;

/// The name used for components loaded from bytes without a name.
pub const BYTES_NAME: &str = "<bytes>";

/// Inputs smaller than this are validated on the calling task; larger ones on the
/// blocking pool.
const INLINE_VALIDATION_LIMIT: usize = 256 * 1024;

/// Components up to this size are looked up in the artifact cache on the calling task:
/// a hit (hash, checksum, mmap) takes tens of microseconds, less than a round trip
/// through the blocking pool costs. Larger ones go to the blocking pool.
const INLINE_CACHE_HIT_LIMIT: u64 = 256 * 1024;

/// The name a file's component goes by in messages: its file name.
fn file_label(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Runs CPU-heavy `f` without stalling the executor: on a multi-threaded runtime in
/// place (`block_in_place` hands this worker's other tasks to another thread, and the
/// caller skips a round trip through the blocking pool, ~100 µs on a small VM); on a
/// current-thread runtime on the blocking pool. A panic inside `f` becomes a
/// `JoinError`-like failure either way, never an unwinding caller.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => {
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                tokio::task::block_in_place(f)
            })) {
                Ok(v) => Ok(v),
                // Report it the way spawn_blocking would: as a failed task.
                Err(payload) => {
                    tokio::task::spawn(async move { std::panic::resume_unwind(payload) }).await
                }
            }
        }
        _ => tokio::task::spawn_blocking(f).await,
    }
}

/// Runs `f` on tokio's blocking pool when `heavy`, else right here.
async fn off_the_executor_if<T: Send + 'static>(
    heavy: bool,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    if heavy { blocking(f).await } else { Ok(f()) }
}

/// Loads, validates and compiles components for one [`WasmEngine`], optionally through
/// a compiled-artifact cache ([`with_cache`](Self::with_cache)).
#[derive(Debug, Clone)]
pub struct ComponentLoader {
    engine: WasmEngine,
    cache: Option<Arc<ArtifactCache>>,
}

impl ComponentLoader {
    /// A loader compiling with `engine`, without a cache.
    pub fn new(engine: &WasmEngine) -> Self {
        Self {
            engine: engine.clone(),
            cache: None,
        }
    }

    /// Uses the compiled-artifact cache described by `config`: a component already
    /// compiled by an engine with the same configuration is loaded from disk
    /// (memory-mapped) instead of compiled. See the [`CacheConfig`] docs and the
    /// crate's README for what the cache directory must be trusted with.
    ///
    /// A directory that [`CacheConfig::check_dir`] refuses (another user's, or writable
    /// by others: its entries are native code run without validation) is not used: the
    /// loader compiles every time and says so in a warning.
    #[must_use]
    pub fn with_cache(mut self, config: CacheConfig) -> Self {
        if let Err(why) = config.check_dir() {
            tracing::warn!("not using the artifact cache: {why}");
            self.cache = None;
            return self;
        }
        self.cache = Some(Arc::new(ArtifactCache::new(
            config,
            self.engine.wasmtime_engine(),
        )));
        self
    }

    /// The cache configuration, when a cache is used.
    pub fn cache(&self) -> Option<&CacheConfig> {
        self.cache.as_deref().map(ArtifactCache::config)
    }

    /// The engine components are compiled with.
    pub fn engine(&self) -> &WasmEngine {
        &self.engine
    }

    /// Loads a component from `source` — a file (`.wasm` or `.wat`), bytes, or a
    /// precompiled file — under `options` (the name used in messages, a pinned SHA-256
    /// digest), through the artifact cache when there is one: validated and compiled,
    /// or taken from the cache, or (precompiled) mapped. Every other `load*` is this.
    ///
    /// ```
    /// # use airssys_wasm_engine::WasmEngine;
    /// use airssys_wasm_loader::{CacheOutcome, ComponentLoader, LoadOptions, Source};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), airssys_wasm_core::WasmError> {
    /// # let loader = ComponentLoader::new(&WasmEngine::new()?);
    /// let wat = br#"(component)"#;
    /// let pin = airssys_wasm_loader::sha256_hex(wat);
    /// let options = LoadOptions::named("empty").sha256(pin);
    /// let loaded = loader.load(Source::Bytes(wat), &options).await?;
    /// assert_eq!(loaded.component.name(), "empty");
    /// assert_eq!(loaded.outcome, CacheOutcome::Disabled);
    ///
    /// let wrong = LoadOptions::named("empty").sha256("00".repeat(32));
    /// let err = loader.load(Source::Bytes(wat), &wrong).await.unwrap_err();
    /// assert!(matches!(err, airssys_wasm_core::WasmError::IntegrityMismatch { .. }));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`WasmError::ComponentLoadFailed`] when a file cannot be read (or is not a
    /// precompiled component for this engine);
    /// [`WasmError::IntegrityMismatch`] with both digests when the bytes are not the
    /// pinned ones (checked **before** anything is compiled or taken from the cache);
    /// [`WasmError::ComponentParseFailed`] for bytes that are not WebAssembly or WAT
    /// that does not parse, [`WasmError::ComponentValidationFailed`] for an invalid
    /// component or a core module, [`WasmError::ComponentCompilationFailed`] if
    /// Wasmtime cannot compile a valid component.
    pub async fn load(&self, source: Source<'_>, options: &LoadOptions) -> WasmResult<Loaded> {
        let (component, outcome) = match source {
            Source::File(path) => {
                let name = options.name.clone().unwrap_or_else(|| file_label(path));
                match &options.sha256 {
                    // The cache's fast path, which trusts an unchanged file's metadata
                    // without reading it, is not used: a pin is a promise about the
                    // bytes.
                    Some(pin) => {
                        let bytes = read_file(path).await?;
                        check_sha256(&name, path, &bytes, pin)?;
                        self.compile(name, Some(path.to_owned()), bytes).await?
                    }
                    None => self.load_file(name, path).await?,
                }
            }
            Source::Bytes(bytes) => {
                let name = options
                    .name
                    .clone()
                    .unwrap_or_else(|| BYTES_NAME.to_owned());
                if let Some(pin) = &options.sha256 {
                    check_sha256(&name, Path::new(&name), bytes, pin)?;
                }
                self.compile(name, None, bytes.to_vec()).await?
            }
            Source::Precompiled(Precompiled(path)) => {
                let name = options.name.clone().unwrap_or_else(|| file_label(path));
                // SAFETY: a `Precompiled` source is made only by the unsafe
                // `Source::precompiled_file`, whose caller vouches for the file.
                let component = unsafe { self.deserialize(name, path, options) }.await?;
                (component, CacheOutcome::Precompiled)
            }
        };
        Ok(Loaded { component, outcome })
    }

    /// Reads, validates and compiles a component file (`.wasm`, or `.wat` text), named
    /// after the file: [`load`](Self::load) of [`Source::File`] with default options.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load).
    pub async fn load_from_file(&self, path: impl AsRef<Path>) -> WasmResult<CompiledComponent> {
        let loaded = self
            .load(Source::File(path.as_ref()), &LoadOptions::default())
            .await?;
        Ok(loaded.component)
    }

    async fn load_file(
        &self,
        name: String,
        path: &Path,
    ) -> WasmResult<(CompiledComponent, CacheOutcome)> {
        let mut replaced = false;
        if let Some(cache) = &self.cache {
            // Fast path: an unchanged file is neither read nor hashed. Finding its key
            // (a stat and a readlink) is cheap; the lookup leaves the executor only
            // for large components.
            let found = match cache.key_by_metadata(path) {
                None => Lookup::Miss,
                Some(recorded) if recorded.size > INLINE_CACHE_HIT_LIMIT => {
                    let (cache, engine) = (cache.clone(), self.engine.clone());
                    let file = path.to_owned();
                    blocking(move || {
                        cache.lookup_recorded(engine.wasmtime_engine(), &file, &recorded)
                    })
                    .await
                    .map_err(|e| join_error(&name, e))?
                }
                Some(recorded) => {
                    cache.lookup_recorded(self.engine.wasmtime_engine(), path, &recorded)
                }
            };
            match found {
                Lookup::Hit { component, .. } => {
                    tracing::debug!(component = %name, "loaded from the artifact cache (unchanged file)");
                    return Ok((
                        CompiledComponent::new(&self.engine, name, component)?,
                        CacheOutcome::Hit,
                    ));
                }
                // The entry was discarded: what follows replaces it.
                Lookup::Corrupt => replaced = true,
                Lookup::Miss => {}
            }
        }
        let bytes = read_file(path).await?;
        let (component, outcome) = self.compile(name, Some(path.to_owned()), bytes).await?;
        match outcome {
            CacheOutcome::Miss if replaced => Ok((component, CacheOutcome::Replaced)),
            _ => Ok((component, outcome)),
        }
    }

    /// Validates and compiles a component from bytes (binary or WAT text), named
    /// [`BYTES_NAME`] in messages: [`load`](Self::load) of [`Source::Bytes`] with
    /// default options.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load).
    pub async fn load_from_bytes(&self, bytes: &[u8]) -> WasmResult<CompiledComponent> {
        let loaded = self
            .load(Source::Bytes(bytes), &LoadOptions::default())
            .await?;
        Ok(loaded.component)
    }

    /// Compiles a component (binary or WAT) ahead of time into Wasmtime's serialized
    /// form for this engine — what `airssys-wasm compile` writes and
    /// [`load`](Self::load) loads as [`Source::precompiled_file`].
    ///
    /// # Errors
    ///
    /// As [`load_from_bytes`](Self::load_from_bytes).
    pub async fn precompile(&self, name: &str, bytes: &[u8]) -> WasmResult<Vec<u8>> {
        let (component, _) = self
            .compile_uncached(name.to_owned(), None, bytes.to_vec())
            .await?;
        component.wasmtime_component().serialize().map_err(|e| {
            WasmError::ComponentCompilationFailed {
                component: name.to_owned(),
                reason: format!("serializing: {e:#}"),
                source: Some(e.into()),
            }
        })
    }

    /// Maps a precompiled file (pinned: read, checked, then deserialized from the
    /// bytes read), without compiling.
    ///
    /// # Safety
    ///
    /// As [`Source::precompiled_file`].
    async unsafe fn deserialize(
        &self,
        name: String,
        path: &Path,
        options: &LoadOptions,
    ) -> WasmResult<CompiledComponent> {
        let pinned = match &options.sha256 {
            Some(pin) => {
                let bytes = read_file(path).await?;
                check_sha256(&name, path, &bytes, pin)?;
                Some(bytes)
            }
            None => None,
        };
        let path = path.to_owned();
        let engine = self.engine.clone();
        blocking(move || {
            let engine_ = engine.wasmtime_engine();
            // SAFETY: the caller vouches for the file (this function's contract); the
            // pinned bytes are that file's.
            let component = match &pinned {
                Some(bytes) => unsafe { Component::deserialize(engine_, bytes) },
                None => unsafe { Component::deserialize_file(engine_, &path) },
            }
            .map_err(|e| WasmError::ComponentLoadFailed {
                path: path.clone(),
                reason: format!(
                    "not a precompiled component for this engine: {e:#}; precompile it \
                     again with `airssys-wasm compile`"
                ),
                source: Some(e.into()),
            })?;
            CompiledComponent::new(&engine, name, component)
        })
        .await
        .map_err(|e| join_error("<precompiled>", e))?
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
        blocking(move || this.validate_blocking(BYTES_NAME, &owned))
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
        blocking(move || {
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

    /// Compiles through the cache when there is one.
    async fn compile(
        &self,
        name: String,
        path: Option<PathBuf>,
        bytes: Vec<u8>,
    ) -> WasmResult<(CompiledComponent, CacheOutcome)> {
        let Some(cache) = self.cache.clone() else {
            return self.compile_uncached(name, path, bytes).await;
        };
        let engine = self.engine.clone();
        let lookup_path = path.clone();
        let large = bytes.len() as u64 > INLINE_CACHE_HIT_LIMIT;
        let (key, found, bytes) = off_the_executor_if(large, move || {
            let key = cache.key(&bytes);
            let found = cache.lookup(engine.wasmtime_engine(), &key, None);
            if let (Lookup::Hit { .. }, Some(file)) = (&found, &lookup_path) {
                cache.record_metadata(file, &key);
            }
            (key, found, bytes)
        })
        .await
        .map_err(|e| join_error(&name, e))?;
        let outcome = match found {
            Lookup::Hit { component, .. } => {
                tracing::debug!(component = %name, "loaded from the artifact cache");
                return Ok((
                    CompiledComponent::new(&self.engine, name, component)?,
                    CacheOutcome::Hit,
                ));
            }
            Lookup::Miss => CacheOutcome::Miss,
            Lookup::Corrupt => CacheOutcome::Replaced,
        };
        let (component, _) = self.compile_uncached(name, path.clone(), bytes).await?;
        if let Some(cache) = self.cache.clone() {
            let stored = component.clone();
            blocking(move || {
                cache.store(&key, stored.wasmtime_component());
                if let Some(file) = &path {
                    cache.record_metadata(file, &key);
                }
            })
            .await
            .map_err(|e| join_error(component.name(), e))?;
        }
        Ok((component, outcome))
    }

    async fn compile_uncached(
        &self,
        name: String,
        path: Option<PathBuf>,
        bytes: Vec<u8>,
    ) -> WasmResult<(CompiledComponent, CacheOutcome)> {
        let engine = self.engine.clone();
        let features = self.engine.wasm_features();
        let outcome = if self.cache.is_some() {
            CacheOutcome::Miss
        } else {
            CacheOutcome::Disabled
        };
        blocking(move || {
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
            CompiledComponent::new(&engine, name, component).map(|c| (c, outcome))
        })
        .await
        .map_err(|e| join_error("<compile>", e))?
    }
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
