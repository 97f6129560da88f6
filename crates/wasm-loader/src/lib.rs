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

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod cache;
use cache::{ArtifactCache, Lookup};
pub use cache::{CacheConfig, CacheOutcome, DEFAULT_MAX_BYTES, RACY_WINDOW, TOUCH_AFTER, xdg_dir};

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

/// Where [`ComponentLoader::load`] takes a component from.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Source<'a> {
    /// A file: a binary `.wasm`, or `.wat` text. Named after the file unless
    /// [`LoadOptions::name`] says otherwise.
    File(&'a Path),
    /// Bytes: binary, or WAT text. Named [`BYTES_NAME`] unless [`LoadOptions::name`]
    /// says otherwise.
    Bytes(&'a [u8]),
    /// A file [`ComponentLoader::precompile`] (or `airssys-wasm compile`) wrote: made
    /// only by the unsafe [`Source::precompiled_file`].
    Precompiled(Precompiled<'a>),
}

/// A precompiled file, vouched for by the caller of [`Source::precompiled_file`].
#[derive(Debug, Clone, Copy)]
pub struct Precompiled<'a>(&'a Path);

impl<'a> Source<'a> {
    /// A file written by [`ComponentLoader::precompile`] (or `airssys-wasm compile`),
    /// to be memory-mapped and run without compiling.
    ///
    /// # Safety
    ///
    /// The file is native code that is mapped and run **without validation**: it must
    /// come from a trusted source (precompiled by this engine configuration and not
    /// modified since). Wasmtime checks that it was made by a compatible engine, not
    /// that its code is what compiling a valid component would have produced.
    pub unsafe fn precompiled_file(path: &'a Path) -> Self {
        Self::Precompiled(Precompiled(path))
    }
}

/// How [`ComponentLoader::load`] loads: the name a component goes by in messages, and
/// the SHA-256 digest its bytes must have.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    name: Option<String>,
    sha256: Option<String>,
}

impl LoadOptions {
    /// The defaults: named after its file (or [`BYTES_NAME`]), nothing pinned.
    pub fn new() -> Self {
        Self::default()
    }

    /// Options naming the component `name` (a manifest's component name, say).
    pub fn named(name: impl Into<String>) -> Self {
        Self::new().name(name)
    }

    /// The name used in every message about the component.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The SHA-256 digest (hex, either case) the bytes must have (a manifest's
    /// `sha256`): checked before anything is compiled or taken from the cache.
    #[must_use]
    pub fn sha256(mut self, digest: impl Into<String>) -> Self {
        self.sha256 = Some(digest.into());
        self
    }
}

/// What [`ComponentLoader::load`] loaded, and whether the artifact cache served it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Loaded {
    /// The component.
    pub component: CompiledComponent,
    /// Whether the cache served it, missed, replaced a corrupt entry, or is off.
    pub outcome: CacheOutcome,
}

impl Loaded {
    /// The component and the cache's outcome.
    pub fn into_parts(self) -> (CompiledComponent, CacheOutcome) {
        (self.component, self.outcome)
    }
}

/// What kind of WebAssembly binary some bytes are, from their 8-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BinaryKind {
    /// A Component Model component.
    Component,
    /// A core WebAssembly module.
    CoreModule,
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

/// The SHA-256 digest of `bytes` in lowercase hex: what a manifest's `sha256` pins.
///
/// ```
/// assert_eq!(
///     airssys_wasm_loader::sha256_hex(b"abc"),
///     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
/// );
/// ```
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    use std::fmt::Write as _;
    let digest = sha2::Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// Checks the bytes of the component `name`, read from `path`, against the SHA-256
/// digest `pin` (hex, either case); their digest when it matches.
///
/// # Errors
///
/// [`WasmError::IntegrityMismatch`] with both digests.
pub fn check_sha256(name: &str, path: &Path, bytes: &[u8], pin: &str) -> WasmResult<String> {
    let actual = sha256_hex(bytes);
    if actual.eq_ignore_ascii_case(pin) {
        return Ok(actual);
    }
    Err(WasmError::IntegrityMismatch {
        component: name.to_owned(),
        path: path.to_owned(),
        expected: pin.to_ascii_lowercase(),
        actual,
    })
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
