//! `airssys-wasm`: validate, inspect and run WebAssembly components in a sandbox.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use airssys_wasm_core::units::format_duration;
use airssys_wasm_core::{CapabilitySet, PartialResourceLimits, ResourceLimits, WasmError};
use airssys_wasm_engine::{CallOutcome, CompiledComponent, Proposal, Sandbox, WasmEngine};
use airssys_wasm_loader::{CacheConfig, ComponentLoader, check_sha256, sha256_hex};
use airssys_wasm_manifest::{ComponentManifest, MANIFEST_FILE};

mod logs;
mod serve;
mod state;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the guest trapped (or failed at run time)
  2  usage or configuration error: bad flags, missing limits, an invalid Component.toml,
     unknown export, wrong argument types
  3  invalid component: not WebAssembly, not a component, fails validation, or needs
     imports this host does not provide or the manifest does not grant
  4  a resource limit was exceeded: memory, fuel or timeout
A command component (`wasi:cli/run`) run without --invoke exits with the guest's own exit code.";

const SERVE_EXIT_CODES: &str = "\
Exit codes:
  0  stopped by SIGINT or SIGTERM after every request in flight finished
  1  stopped, but the grace period ran out with requests still in flight
  2  usage or configuration error (including an address that cannot be listened on)
  3  invalid component, or not a wasi:http/incoming-handler

Responses: a guest that traps or returns without answering gets 500 with a generic body
(the details go to the log); a limit gets 500 (fuel, memory) or 503 (timeout); beyond
--max-concurrency requests wait in a queue of --max-queue, then get 503. One access-log
line per request goes to stderr (target airssys_wasm::access; AIRSSYS_LOG filters).";

/// Run WebAssembly components in a sandbox the host controls completely.
#[derive(Parser, Debug)]
#[command(name = "airssys-wasm", version, about, after_help = EXIT_CODES, args_override_self = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    engine: EngineArgs,
    /// How log lines are written to stderr: `text` (tracing's format; guests' records as
    /// `[component] LEVEL context: message`), or `json`, one object per line, for log
    /// pipelines (the access log and the audit trail included).
    #[arg(long, global = true, value_enum, default_value_t = logs::Format::Text)]
    log_format: logs::Format,
}

/// Which WebAssembly proposals the engine accepts beyond its defaults.
#[derive(Args, Debug, Clone)]
struct EngineArgs {
    /// Switch a proposal on (`NAME` or `NAME=y`) or off (`NAME=n`), with Wasmtime's
    /// names; repeatable; applied over the `proposals` a Component.toml requires.
    /// `-W component-model-async` runs WASI 0.3 components and async exports (off by
    /// default: it slows every call). Also: component-model-map,
    /// component-model-fixed-length-lists, component-model-error-context, … (an unknown
    /// name lists them all). WebAssembly 3.0 (GC, exceptions) is always on; threads
    /// never are.
    #[arg(short = 'W', long = "wasm", global = true, value_name = "NAME[=y|n]")]
    wasm: Vec<String>,
}

impl EngineArgs {
    /// The engine for `target`: the proposals its manifest requires, then these flags
    /// (which win).
    fn engine(&self, target: &Target) -> Result<WasmEngine, Failure> {
        self.builder(target)?.build().map_err(Failure::from)
    }

    /// The engine's builder for `target`, as [`engine`](Self::engine) builds it.
    fn builder(&self, target: &Target) -> Result<airssys_wasm_engine::WasmEngineBuilder, Failure> {
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
struct CacheArgs {
    /// Do not use the compiled-artifact cache (compile every time).
    #[arg(long, global = true)]
    no_cache: bool,
    /// The compiled-artifact cache directory (default `$XDG_CACHE_HOME/airssys-wasm`,
    /// else `~/.cache/airssys-wasm`). It must be writable only by you: its entries are
    /// native code that is run without validation.
    #[arg(long, global = true, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
}

impl CacheArgs {
    /// The cache to use, if any; a directory that cannot be trusted with native code
    /// (another user's, or writable by others) is a usage error.
    fn config(&self) -> Result<Option<CacheConfig>, Failure> {
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

#[derive(Subcommand, Debug)]
enum Command {
    /// Check a component (or a Component.toml and the component it names) without
    /// running it.
    #[command(after_help = EXIT_CODES)]
    Validate {
        /// A `.wasm` or `.wat` component, a `Component.toml`, or a directory holding one.
        path: PathBuf,
    },
    /// Print a component's imports and exports with their types.
    #[command(after_help = EXIT_CODES)]
    Inspect {
        /// A `.wasm` or `.wat` component, a `Component.toml`, or a directory holding one.
        path: PathBuf,
    },
    /// Run a component under memory, fuel and wall-clock limits.
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
    /// Serve HTTP with a component exporting `wasi:http/incoming-handler`: a fresh
    /// sandboxed instance per request, under the manifest's limits and grants.
    #[command(after_help = SERVE_EXIT_CODES)]
    Serve(serve::ServeArgs),
    /// Compile a component ahead of time into a native artifact for this machine and
    /// configuration (like `wasmtime compile`); run it with `run --allow-precompiled`.
    #[command(after_help = EXIT_CODES)]
    Compile {
        /// A `.wasm` or `.wat` component, a `Component.toml`, or a directory holding one.
        path: PathBuf,
        /// Where to write the artifact (default: the component's name with `.cwasm`, in
        /// the current directory).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

/// The resource limits a command line may set (over the manifest's).
#[derive(Args, Debug)]
struct LimitArgs {
    /// Total linear memory of the instance, e.g. `4MiB`, `64KiB` or bytes. Required
    /// without a manifest; overrides the manifest's `memory`.
    #[arg(long, value_name = "SIZE")]
    memory: Option<String>,
    /// Fuel for the call, e.g. `10000000`. Required without a manifest; overrides the
    /// manifest's `fuel`.
    #[arg(long, value_name = "N")]
    fuel: Option<String>,
    /// Wall-clock time for the call, e.g. `500ms`, `2s`. Required without a manifest;
    /// overrides the manifest's `timeout`.
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// A `.wasm` or `.wat` component, a `Component.toml`, or a directory holding one.
    path: PathBuf,
    #[command(flatten)]
    limits: LimitArgs,
    /// The export to call, with arguments in WAVE syntax, e.g. `double(21)` or
    /// `greet("you")`. Without it, a command component's `wasi:cli/run` runs.
    #[arg(long, value_name = "CALL")]
    invoke: Option<String>,
    /// Print what the call used (fuel, wall time, peak memory) to stderr.
    #[arg(long)]
    report: bool,
    /// The least severe of the guest's `wasi:logging` records shown on stderr (each
    /// prefixed with the component's name): `trace`, `debug`, `info`, `warn`, `error`
    /// or `off`.
    #[arg(long, value_name = "LEVEL", default_value = "info", value_parser = ["trace", "debug", "info", "warn", "error", "off"])]
    log_level: String,
    /// A configuration value for this run (`wasi:config/store`), overriding the
    /// manifest's `[config]`; repeatable. Grants `wasi:config` like a `[config]` table.
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_config)]
    config: Vec<(String, String)>,
    /// Accept a precompiled artifact (from `airssys-wasm compile`) as the component.
    /// Artifacts are native code run without validation: only pass ones you trust.
    #[arg(long)]
    allow_precompiled: bool,
    #[command(flatten)]
    state: state::StateArgs,
    #[command(flatten)]
    net: NetArgs,
    /// Arguments for the guest (after `--`).
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<String>,
}

/// The operator's network policy over what manifests grant (`run` and `serve`).
#[derive(Args, Debug, Clone)]
struct NetArgs {
    /// Refuse every destination that is not a globally routable address — loopback,
    /// private, link-local (cloud metadata), shared, reserved, multicast, and the IPv6
    /// forms that reach IPv4 (NAT64, 6to4, mapped) — for outgoing HTTP requests (checked
    /// after DNS) and wasi:sockets connects alike, whatever the manifest grants.
    #[arg(long)]
    refuse_private_addresses: bool,
    /// Outgoing HTTP requests one instance may have in flight at once; past it, a
    /// request fails with `connection-limit-reached`.
    #[arg(long, value_name = "N", default_value_t = airssys_wasm_engine::DEFAULT_MAX_OUTGOING_REQUESTS)]
    max_outgoing_requests: usize,
}

impl NetArgs {
    fn apply(&self, sandbox: Sandbox) -> Sandbox {
        sandbox
            .refuse_private_addresses(self.refuse_private_addresses)
            .max_outgoing_requests(self.max_outgoing_requests)
    }
}

/// `KEY=VALUE` of `--config`.
fn parse_config(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

/// A failure with the exit code it maps to.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl From<WasmError> for Failure {
    fn from(e: WasmError) -> Self {
        Self {
            code: exit_code(&e),
            error: e.into(),
        }
    }
}

fn usage(error: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code: 2,
        error: error.into(),
    }
}

/// The documented exit code of an error.
fn exit_code(e: &WasmError) -> u8 {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let guest_level = match &cli.command {
        Command::Run(args) => args.log_level.as_str(),
        _ => "info",
    };
    let serving = matches!(cli.command, Command::Serve(_));
    logs::init(guest_level, serving, cli.log_format);
    // A server uses every core; a single run needs one thread.
    let runtime = if serving {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(dispatch(cli.command, &cli.cache, &cli.engine));
    // Guest output first, then any report of ours.
    let _ = std::io::stdout().flush();
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            report_failure(&failure.error);
            ExitCode::from(failure.code)
        }
    }
}

/// One line saying what happened (and how to fix it), then the details.
fn report_failure(error: &anyhow::Error) {
    eprintln!("error: {error}");
    let mut source = error.source();
    while let Some(s) = source {
        eprintln!("  caused by: {s}");
        source = s.source();
    }
    if let Some(bt) = error
        .downcast_ref::<WasmError>()
        .and_then(WasmError::guest_backtrace)
    {
        eprintln!("guest backtrace:\n{bt}");
    }
}

async fn dispatch(command: Command, cache: &CacheArgs, engine: &EngineArgs) -> Result<u8, Failure> {
    match command {
        Command::Validate { path } => validate(engine, &path).await,
        Command::Inspect { path } => inspect(engine, &path, cache).await,
        Command::Run(args) => run(engine, args, cache).await,
        Command::Serve(args) => serve::serve(engine, args, cache).await,
        Command::Compile { path, output } => compile(engine, &path, output).await,
    }
}

/// What the user pointed at: a bare component, or a manifest and its component.
enum Target {
    Bare(PathBuf),
    Manifest(Box<ComponentManifest>),
}

impl Target {
    fn resolve(path: &Path) -> Result<Self, Failure> {
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

    fn component_path(&self) -> PathBuf {
        match self {
            Self::Bare(p) => p.clone(),
            Self::Manifest(m) => m.component_path(),
        }
    }

    fn manifest(&self) -> Option<&ComponentManifest> {
        match self {
            Self::Bare(_) => None,
            Self::Manifest(m) => Some(m),
        }
    }
}

/// The name messages use: the manifest's component name, else the file name.
fn component_name(target: &Target) -> String {
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

async fn load(
    engine: &EngineArgs,
    target: &Target,
    cache: &CacheArgs,
    allow_precompiled: bool,
) -> Result<CompiledComponent, Failure> {
    load_with(&engine.engine(target)?, target, cache, allow_precompiled).await
}

/// [`load`] on an engine already built.
async fn load_with(
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
        return Ok(unsafe { loader.load_precompiled_file(&path) }.await?);
    }
    if let Some(config) = cache.config()? {
        loader = loader.with_cache(config);
    }
    let name = component_name(target);
    let loaded = match target
        .manifest()
        .and_then(|m| m.component.sha256.as_deref())
    {
        // Pinned: the file's digest is checked before compiling or using the cache.
        Some(pin) => loader.load_file_pinned(&name, &path, pin).await,
        None => loader.load_file_named(&name, &path).await,
    };
    match loaded {
        Ok((component, outcome)) => {
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
fn is_precompiled(path: &Path) -> bool {
    let mut head = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok_and(|()| head == *b"\x7fELF")
}

async fn compile(engine: &EngineArgs, path: &Path, output: Option<PathBuf>) -> Result<u8, Failure> {
    let target = Target::resolve(path)?;
    let engine = &engine.engine(&target)?;
    let source = target.component_path();
    let bytes = read_component(&target).await?;
    let name = component_name(&target);
    let digest = check_pin(&target, &name, &bytes)?;
    let artifact = ComponentLoader::new(engine)
        .precompile(&name, &bytes)
        .await?;
    let output = output.unwrap_or_else(|| {
        let stem = match target.manifest() {
            Some(m) => m.name().to_owned(),
            None => source
                .file_stem()
                .map_or_else(|| name.clone(), |s| s.to_string_lossy().into_owned()),
        };
        PathBuf::from(format!("{stem}.cwasm"))
    });
    std::fs::write(&output, &artifact)
        .with_context(|| format!("writing {}", output.display()))
        .map_err(|e| Failure { code: 1, error: e })?;
    let _ = writeln!(
        std::io::stdout().lock(),
        "compiled {} (sha256 {digest}) -> {} ({} KiB)",
        source.display(),
        output.display(),
        artifact.len() / 1024
    );
    Ok(0)
}

/// The component file's bytes.
async fn read_component(target: &Target) -> Result<Vec<u8>, Failure> {
    let source = target.component_path();
    tokio::fs::read(&source).await.map_err(|e| Failure {
        code: 3,
        error: anyhow::Error::new(e).context(format!("cannot read component {}", source.display())),
    })
}

/// The component file's SHA-256 digest, checked against the manifest's `sha256` when
/// it pins one.
fn check_pin(target: &Target, name: &str, bytes: &[u8]) -> Result<String, Failure> {
    match target
        .manifest()
        .and_then(|m| m.component.sha256.as_deref())
    {
        Some(pin) => Ok(check_sha256(name, &target.component_path(), bytes, pin)?),
        None => Ok(sha256_hex(bytes)),
    }
}

async fn validate(engine: &EngineArgs, path: &Path) -> Result<u8, Failure> {
    let target = Target::resolve(path)?;
    let engine = &engine.engine(&target)?;
    // One read: what is checked against the pin is what is validated.
    let bytes = read_component(&target).await?;
    let name = component_name(&target);
    check_pin(&target, &name, &bytes)?;
    ComponentLoader::new(engine).validate_blocking(&name, &bytes)?;
    let mut out = std::io::stdout().lock();
    let _ = match target.manifest() {
        Some(m) => writeln!(
            out,
            "valid: {} ({}; component {})",
            m.name(),
            limits_line(m),
            m.component_path().display()
        ),
        None => writeln!(out, "valid: {}", path.display()),
    };
    Ok(0)
}

fn limits_line(m: &ComponentManifest) -> String {
    m.resource_limits()
        .map(|l| l.to_string())
        .unwrap_or_else(|e| e.to_string())
}

async fn inspect(engine: &EngineArgs, path: &Path, cache: &CacheArgs) -> Result<u8, Failure> {
    let target = Target::resolve(path)?;
    // One read: the digest shown (and checked against the pin) is of what is loaded.
    let bytes = read_component(&target).await?;
    let name = component_name(&target);
    let digest = check_pin(&target, &name, &bytes)?;
    let mut loader = ComponentLoader::new(&engine.engine(&target)?);
    if let Some(config) = cache.config()? {
        loader = loader.with_cache(config);
    }
    let component = loader.load_named(&name, &bytes).await?;
    let mut out = String::new();
    out.push_str(&format!("component {}\n", component.name()));
    let pinned = target
        .manifest()
        .is_some_and(|m| m.component.sha256.is_some());
    out.push_str(&format!(
        "  sha256: {digest}{}\n",
        if pinned {
            " (pinned by the manifest)"
        } else {
            ""
        }
    ));
    if let Some(m) = target.manifest() {
        out.push_str(&format!("  limits: {}\n", limits_line(m)));
        let caps = m.capability_set();
        out.push_str(&format!(
            "  capabilities: {}\n",
            describe_capabilities(&caps)
        ));
        if let Some(config) = &m.config {
            // Names only: a value (or what an environment variable holds) may be a
            // secret.
            let keys: Vec<String> = config
                .entries
                .iter()
                .map(|e| match &e.value {
                    airssys_wasm_manifest::ConfigValue::Env(var) => {
                        format!("{} (from ${var})", e.key)
                    }
                    _ => e.key.clone(),
                })
                .collect();
            out.push_str(&format!("  config: {}\n", keys.join(", ")));
        }
    }
    let imports = component.imports();
    out.push_str("imports:\n");
    if imports.is_empty() {
        out.push_str("  (none)\n");
    }
    for i in &imports {
        out.push_str(&format!(
            "  {i}  [{}]\n",
            component.engine().provider(&i.name)
        ));
    }
    out.push_str("exports:\n");
    if component.exports().is_empty() {
        out.push_str("  (none)\n");
    }
    for e in component.exports() {
        out.push_str(&format!("  {e}\n"));
    }
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    Ok(0)
}

fn describe_capabilities(c: &CapabilitySet) -> String {
    let mut parts = vec![
        format!("stdout {}", c.stdout.as_str()),
        format!("stderr {}", c.stderr.as_str()),
        format!("stdin {}", c.stdin.as_str()),
    ];
    if !c.env.is_empty() {
        let names: Vec<_> = c.env.iter().map(|e| e.name.as_str()).collect();
        parts.push(format!("env {}", names.join(",")));
    }
    for d in &c.filesystem {
        parts.push(format!(
            "dir {} -> {} ({})",
            d.host.display(),
            d.guest,
            d.access.as_str()
        ));
    }
    match &c.network {
        None => parts.push("no network".into()),
        Some(n) => {
            let rules: Vec<_> = n.connect.iter().map(ToString::to_string).collect();
            parts.push(format!("connect [{}], dns {}", rules.join(", "), n.dns));
        }
    }
    if !c.interfaces.is_empty() {
        let names: Vec<_> = c.interfaces.iter().map(ToString::to_string).collect();
        parts.push(format!("interfaces {}", names.join(",")));
    }
    if let Some(http) = &c.http {
        let hosts: Vec<_> = http.outbound.iter().map(ToString::to_string).collect();
        parts.push(format!("http outbound [{}]", hosts.join(", ")));
    }
    if let Some(kv) = &c.keyvalue {
        parts.push(format!(
            "keyvalue buckets {} (max {} each)",
            kv.buckets.join(","),
            airssys_wasm_core::error::fmt_bytes(kv.max_bytes)
        ));
    }
    parts.join("; ")
}

/// What `target` is granted, and its configuration: the manifest's (environment
/// references read now), then the `--config` flags, which also grant `wasi:config`
/// without a `[config]` table. The configuration is `None` when neither gives one.
fn grants(
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
        capabilities
            .interfaces
            .push(airssys_wasm_core::InterfaceGrant::every_version(
                airssys_wasm_core::interface::WASI_CONFIG_STORE,
                "--config",
            ));
    }
    Ok((
        capabilities,
        (has_config || !flags.is_empty()).then_some(config),
    ))
}

/// The sandbox `run` and `serve` start from: `limits`, what [`grants`] gave, and the
/// granted key-value stores, opened now — a store that cannot be used is a
/// configuration error at start, not a failure in the middle of the guest's work.
async fn sandbox_for(
    component: &CompiledComponent,
    limits: &ResourceLimits,
    (capabilities, config): (
        CapabilitySet,
        Option<std::collections::BTreeMap<String, String>>,
    ),
    state: &state::StateArgs,
    runtime_config: &airssys_wasm_keyvalue::RuntimeConfig,
    origin: &Path,
) -> Result<Sandbox, Failure> {
    let keyvalue = match &capabilities.keyvalue {
        Some(grant) => Some(
            state
                .keyvalue(runtime_config, component.name(), grant, origin)
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
    Ok(sandbox)
}

fn limits_for(target: &Target, args: &LimitArgs) -> Result<ResourceLimits, Failure> {
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

async fn run(engine: &EngineArgs, args: RunArgs, cache: &CacheArgs) -> Result<u8, Failure> {
    let target = Target::resolve(&args.path)?;
    // Limits first: a run without them is refused before anything is compiled.
    let limits = limits_for(&target, &args.limits)?;
    let granted = grants(&target, &args.config)?;
    let runtime_config = args.state.runtime_config().map_err(usage)?;
    let component = load(engine, &target, cache, args.allow_precompiled).await?;
    let mut guest_args = vec![component.name().to_owned()];
    guest_args.extend(args.args.iter().cloned());
    let sandbox = sandbox_for(
        &component,
        &limits,
        granted,
        &args.state,
        &runtime_config,
        &target.component_path(),
    )
    .await?
    .with_args(guest_args)
    .measure_wall_time(args.report);
    let sandbox = args.net.apply(sandbox);
    tracing::debug!(component = component.name(), %limits, "instantiating");
    let mut instance = component.instantiate(&sandbox).await?;

    let code = match &args.invoke {
        Some(call) => match instance.invoke(call).await {
            Ok(outcome) => print_results(&outcome).map(|()| 0),
            Err(e) => Err(Failure::from(e)),
        },
        None => {
            if component.command_export().is_none() {
                return Err(usage(anyhow::anyhow!(
                    "component `{}` has no `wasi:cli/run` entry point; choose an export with \
                     --invoke '<export>(<args>)':{}",
                    component.name(),
                    component
                        .export_signatures()
                        .iter()
                        .map(|s| format!("\n  {s}"))
                        .collect::<String>()
                )));
            }
            instance
                .run_command()
                .await
                .map(|(code, _)| code)
                .map_err(Failure::from)
        }
    };
    let _ = std::io::stdout().flush();
    // The report of a call that ran, also when the guest trapped or hit a limit (what
    // it used up to then is what one wants to see); not after a usage error.
    if args.report && matches!(&code, Ok(_) | Err(Failure { code: 1 | 4, .. })) {
        eprintln!(
            "report: {} (timeout {})",
            instance.last_report(),
            format_duration(limits.timeout())
        );
    }
    Ok(u8::try_from(code?.clamp(0, 255)).unwrap_or(1))
}

/// Prints an invoked export's results, one WAVE value a line.
fn print_results(outcome: &CallOutcome) -> Result<(), Failure> {
    let results = outcome.results_wave().map_err(Failure::from)?;
    let mut out = std::io::stdout().lock();
    for r in results {
        writeln!(out, "{r}")
            .context("writing the result to stdout")
            .map_err(|e| Failure { code: 1, error: e })?;
    }
    Ok(())
}
