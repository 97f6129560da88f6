//! What the commands share: the engine, cache, limit and network flags; loading a
//! component (file, manifest or precompiled artifact, pinned or not); the sandbox a
//! manifest and the command line make; and how a failure becomes an exit code.

use std::path::{Path, PathBuf};

use clap::Args;

use airssys_wasm_core::{CapabilitySet, PartialResourceLimits, ResourceLimits, WasmError};
use airssys_wasm_engine::{CompiledComponent, Proposal, Sandbox, WasmEngine};
use airssys_wasm_loader::{
    CacheConfig, ComponentLoader, LoadOptions, Loaded, Source, check_sha256, sha256_hex,
};
use airssys_wasm_manifest::{ComponentManifest, MANIFEST_FILE};

use crate::state;

/// Which WebAssembly proposals the engine accepts beyond its defaults.
#[derive(Args, Debug, Clone)]
pub(crate) struct EngineArgs {
    /// Switch a proposal on (`NAME` or `NAME=y`) or off (`NAME=n`), with Wasmtime's
    /// names; repeatable; applied over the `proposals` a Component.toml requires.
    /// `-W component-model-async` runs WASI 0.3 components and async exports (off by
    /// default: it slows every call). Also: component-model-map,
    /// component-model-fixed-length-lists, component-model-error-context, … (an unknown
    /// name lists them all). WebAssembly 3.0 (GC, exceptions) is always on; threads
    /// never are.
    #[arg(short = 'W', long = "wasm", global = true, value_name = "NAME[=y|n]")]
    pub(crate) wasm: Vec<String>,
}

impl EngineArgs {
    /// The engine for `target`: the proposals its manifest requires, then these flags
    /// (which win).
    pub(crate) fn engine(&self, target: &Target) -> Result<WasmEngine, Failure> {
        self.builder(target)?.build().map_err(Failure::from)
    }

    /// The engine's builder for `target`, as [`engine`](Self::engine) builds it.
    pub(crate) fn builder(
        &self,
        target: &Target,
    ) -> Result<airssys_wasm_engine::WasmEngineBuilder, Failure> {
        let mut builder = WasmEngine::builder();
        for &p in target
            .manifest()
            .map_or(&[][..], |m| &m.component.proposals)
        {
            builder = builder.proposal(p, true);
        }
        for flag in &self.wasm {
            let (name, value) = flag.split_once('=').unwrap_or((flag, "y"));
            let enable = match value {
                "y" | "yes" | "true" => true,
                "n" | "no" | "false" => false,
                other => {
                    return Err(usage(anyhow::anyhow!(
                        "-W {flag}: `{other}` is not y or n (write `-W {name}` or `-W {name}=n`)"
                    )));
                }
            };
            let proposal: Proposal = name
                .parse()
                .map_err(|e| usage(anyhow::anyhow!("-W {flag}: {e}")))?;
            builder = builder.proposal(proposal, enable);
        }
        Ok(builder)
    }
}

/// Where compiled components are cached between runs.
#[derive(Args, Debug, Clone)]
pub(crate) struct CacheArgs {
    /// Do not use the compiled-artifact cache (compile every time).
    #[arg(long, global = true)]
    pub(crate) no_cache: bool,
    /// The compiled-artifact cache directory (default `$XDG_CACHE_HOME/airssys-wasm`,
    /// else `~/.cache/airssys-wasm`). It must be writable only by you: its entries are
    /// native code that is run without validation.
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) cache_dir: Option<PathBuf>,
}

impl CacheArgs {
    /// The cache to use, if any; a directory that cannot be trusted with native code
    /// (another user's, or writable by others) is a usage error.
    pub(crate) fn config(&self) -> Result<Option<CacheConfig>, Failure> {
        if self.no_cache {
            return Ok(None);
        }
        let config = match &self.cache_dir {
            Some(dir) => Some(CacheConfig::new(dir)),
            None => CacheConfig::user_default(),
        };
        if let Some(c) = &config {
            c.check_dir().map_err(|e| usage(anyhow::anyhow!(e)))?;
        }
        Ok(config)
    }
}

/// The resource limits a command line may set (over the manifest's).
#[derive(Args, Debug)]
pub(crate) struct LimitArgs {
    /// Total linear memory of the instance, e.g. `4MiB`, `64KiB` or bytes. Required
    /// without a manifest; overrides the manifest's `memory`.
    #[arg(long, value_name = "SIZE")]
    pub(crate) memory: Option<String>,
    /// Fuel for the call, e.g. `10000000`. Required without a manifest; overrides the
    /// manifest's `fuel`.
    #[arg(long, value_name = "N")]
    pub(crate) fuel: Option<String>,
    /// Wall-clock time for the call, e.g. `500ms`, `2s`. Required without a manifest;
    /// overrides the manifest's `timeout`.
    #[arg(long, value_name = "DURATION")]
    pub(crate) timeout: Option<String>,
}

/// The operator's network policy over what manifests grant (`run` and `serve`).
#[derive(Args, Debug, Clone)]
pub(crate) struct NetArgs {
    /// Refuse every destination that is not a globally routable address — loopback,
    /// private, link-local (cloud metadata), shared, reserved, multicast, and the IPv6
    /// forms that reach IPv4 (NAT64, 6to4, mapped) — for outgoing HTTP requests (checked
    /// after DNS) and wasi:sockets connects alike, whatever the manifest grants.
    #[arg(long)]
    pub(crate) refuse_private_addresses: bool,
    /// Outgoing HTTP requests one instance may have in flight at once; past it, a
    /// request fails with `connection-limit-reached`.
    #[arg(long, value_name = "N", default_value_t = airssys_wasm_engine::DEFAULT_MAX_OUTGOING_REQUESTS)]
    pub(crate) max_outgoing_requests: usize,
}

impl NetArgs {
    pub(crate) fn apply(&self, sandbox: Sandbox) -> Sandbox {
        sandbox
            .refuse_private_addresses(self.refuse_private_addresses)
            .max_outgoing_requests(self.max_outgoing_requests)
    }
}

/// `KEY=VALUE` of `--config`.
pub(crate) fn parse_config(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

/// A failure with the exit code it maps to.
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) error: anyhow::Error,
}

impl From<WasmError> for Failure {
    fn from(e: WasmError) -> Self {
        Self {
            code: exit_code(&e),
            error: e.into(),
        }
    }
}

pub(crate) fn usage(error: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code: 2,
        error: error.into(),
    }
}

/// The documented exit code of an error.
pub(crate) fn exit_code(e: &WasmError) -> u8 {
    if e.is_limit_error() {
        4
    } else if e.is_load_error()
        || e.is_denied_error()
        || matches!(e, WasmError::ComponentInstantiationFailed { .. })
    {
        3
    } else if e.is_usage_error() {
        2
    } else {
        1
    }
}

/// What the user pointed at: a bare component, or a manifest and its component.
pub(crate) enum Target {
    Bare(PathBuf),
    Manifest(Box<ComponentManifest>),
}

impl Target {
    pub(crate) fn resolve(path: &Path) -> Result<Self, Failure> {
        let is_manifest = path.is_dir()
            || path.file_name().is_some_and(|n| n == MANIFEST_FILE)
            || path.extension().is_some_and(|e| e == "toml");
        if !is_manifest {
            return Ok(Self::Bare(path.to_owned()));
        }
        ComponentManifest::load(path)
            .map(|m| Self::Manifest(Box::new(m)))
            .map_err(usage)
    }

    pub(crate) fn component_path(&self) -> PathBuf {
        match self {
            Self::Bare(p) => p.clone(),
            Self::Manifest(m) => m.component_path(),
        }
    }

    pub(crate) fn manifest(&self) -> Option<&ComponentManifest> {
        match self {
            Self::Bare(_) => None,
            Self::Manifest(m) => Some(m),
        }
    }
}

/// The name messages use: the manifest's component name, else the file name.
pub(crate) fn component_name(target: &Target) -> String {
    match target.manifest() {
        Some(m) => m.name().to_owned(),
        None => {
            let path = target.component_path();
            path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        }
    }
}

pub(crate) async fn load(
    engine: &EngineArgs,
    target: &Target,
    cache: &CacheArgs,
    allow_precompiled: bool,
) -> Result<CompiledComponent, Failure> {
    load_with(&engine.engine(target)?, target, cache, allow_precompiled).await
}

/// [`load`] on an engine already built.
pub(crate) async fn load_with(
    engine: &WasmEngine,
    target: &Target,
    cache: &CacheArgs,
    allow_precompiled: bool,
) -> Result<CompiledComponent, Failure> {
    let mut loader = ComponentLoader::new(engine);
    let path = target.component_path();
    // Precompiled artifacts are only looked for when asked for (or to explain a failure):
    // an ordinary run does not open the file one more time.
    if allow_precompiled && target.manifest().is_none() && is_precompiled(&path) {
        // SAFETY: the user asked for this file to be trusted (--allow-precompiled,
        // documented as native code run without validation).
        let source = unsafe { Source::precompiled_file(&path) };
        return Ok(loader.load(source, &LoadOptions::new()).await?.component);
    }
    if let Some(config) = cache.config()? {
        loader = loader.with_cache(config);
    }
    let mut options = LoadOptions::named(component_name(target));
    // Pinned: the file's digest is checked before compiling or using the cache.
    if let Some(pin) = target
        .manifest()
        .and_then(|m| m.component.sha256.as_deref())
    {
        options = options.sha256(pin);
    }
    match loader.load(Source::File(&path), &options).await {
        Ok(Loaded {
            component, outcome, ..
        }) => {
            tracing::debug!(?outcome, "artifact cache");
            Ok(component)
        }
        Err(e) if e.is_load_error() && is_precompiled(&path) => Err(Failure {
            code: 3,
            error: anyhow::anyhow!(
                "{} is a precompiled artifact (native code), not a component; run it with \
                 --allow-precompiled if you trust where it came from, or run the .wasm it \
                 was compiled from",
                path.display()
            ),
        }),
        Err(e) => Err(e.into()),
    }
}

/// Whether `path` starts like a Wasmtime artifact (an ELF file).
pub(crate) fn is_precompiled(path: &Path) -> bool {
    let mut head = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok_and(|()| head == *b"\x7fELF")
}

/// The component file's bytes.
pub(crate) async fn read_component(target: &Target) -> Result<Vec<u8>, Failure> {
    let source = target.component_path();
    tokio::fs::read(&source).await.map_err(|e| Failure {
        code: 3,
        error: anyhow::Error::new(e).context(format!("cannot read component {}", source.display())),
    })
}

/// The component file's SHA-256 digest, checked against the manifest's `sha256` when
/// it pins one.
pub(crate) fn check_pin(target: &Target, name: &str, bytes: &[u8]) -> Result<String, Failure> {
    match target
        .manifest()
        .and_then(|m| m.component.sha256.as_deref())
    {
        Some(pin) => Ok(check_sha256(name, &target.component_path(), bytes, pin)?),
        None => Ok(sha256_hex(bytes)),
    }
}

/// What `target` is granted, and its configuration: the manifest's (environment
/// references read now), then the `--config` flags, which also grant `wasi:config`
/// without a `[config]` table. The configuration is `None` when neither gives one.
pub(crate) fn grants(
    target: &Target,
    flags: &[(String, String)],
) -> Result<
    (
        CapabilitySet,
        Option<std::collections::BTreeMap<String, String>>,
    ),
    Failure,
> {
    let mut capabilities = target
        .manifest()
        .map_or_else(CapabilitySet::default, ComponentManifest::capability_set);
    let has_config = target.manifest().is_some_and(|m| m.config.is_some());
    let config = match target.manifest() {
        Some(m) => m.config_values_overridden(flags).map_err(usage)?,
        None => flags.iter().cloned().collect(),
    };
    if !flags.is_empty() && !has_config {
        capabilities.grant_config("--config");
    }
    Ok((
        capabilities,
        (has_config || !flags.is_empty()).then_some(config),
    ))
}

/// What the command line says about the state and the network a sandbox gets (the
/// flags `run` and `serve` share).
pub(crate) struct Operator<'a> {
    /// The key-value data directory and its flags.
    pub(crate) state: &'a state::StateArgs,
    /// The stores the runtime configuration names.
    pub(crate) runtime_config: &'a airssys_wasm_keyvalue::RuntimeConfig,
    /// The network policy over what the manifest grants.
    pub(crate) net: &'a NetArgs,
}

/// The sandbox `run` and `serve` start from: `limits`, what [`grants`] gave, the
/// operator's network policy, and the granted key-value stores, opened now — a store
/// that cannot be used is a configuration error at start, not a failure in the middle
/// of the guest's work. (`target`'s component file is the origin the data directory
/// records for the component's own bucket.)
pub(crate) async fn sandbox_for(
    component: &CompiledComponent,
    target: &Target,
    limits: &ResourceLimits,
    (capabilities, config): (
        CapabilitySet,
        Option<std::collections::BTreeMap<String, String>>,
    ),
    operator: Operator<'_>,
) -> Result<Sandbox, Failure> {
    let Operator {
        state,
        runtime_config,
        net,
    } = operator;
    let origin = target.component_path();
    let keyvalue = match &capabilities.keyvalue {
        Some(grant) => Some(
            state
                .keyvalue(runtime_config, component.name(), grant, &origin)
                .await
                .map_err(usage)?,
        ),
        None => None,
    };
    let mut sandbox = Sandbox::new(limits.clone()).with_capabilities(capabilities);
    if let Some(config) = config {
        sandbox = sandbox.with_config(std::sync::Arc::new(config));
    }
    if let Some(store) = keyvalue {
        sandbox = sandbox.with_keyvalue(store);
    }
    Ok(net.apply(sandbox))
}

pub(crate) fn limits_for(target: &Target, args: &LimitArgs) -> Result<ResourceLimits, Failure> {
    let flags = PartialResourceLimits::parse(
        args.memory.as_deref(),
        args.fuel.as_deref(),
        args.timeout.as_deref(),
    )?;
    let base = target
        .manifest()
        .map(ComponentManifest::partial_limits)
        .unwrap_or_default();
    Ok(base.overridden_by(flags).resolve()?)
}

pub(crate) fn limits_line(m: &ComponentManifest) -> String {
    m.resource_limits()
        .map(|l| l.to_string())
        .unwrap_or_else(|e| e.to_string())
}
