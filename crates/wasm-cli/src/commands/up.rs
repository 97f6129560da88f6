//! `airssys-wasm up System.toml`: an actor system from its file — every component
//! loaded (from the artifact cache when it can be) and checked to be an actor before
//! anything starts, one engine in the dense layout for all of them, the supervision
//! tree started in order; then messages from the command line (`--send`,
//! `--request`), and on SIGINT or SIGTERM a graceful stop: supervisors stop their
//! children in reverse start order, each draining its mailbox within its grace. With
//! `[cluster]` the system joins other hosts over NATS once started (refused
//! credentials or an unreachable server: exit 2), and leaves before it drains; a file
//! with only `[cluster]` is a host without actors, a client of the others. With
//! `[http]` it serves HTTP routes into actors (`up/http.rs`) once started, and stops
//! accepting before it drains.

mod http;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use airssys_wasm_actor::{
    ActorAddress, ActorGrants, ActorSystem, ChildSpec, ComponentActor, MailboxConfig,
    MessageEnvelope, RestartBackoff, ShutdownPolicy, SupervisorSpec,
};
use airssys_wasm_cluster::{ClusterConfig, Credentials, NatsCluster};
use airssys_wasm_engine::{Density, WasmEngine};
use airssys_wasm_manifest::{ClusterSection, ComponentManifest, SystemFile};

use crate::setup::{
    CacheArgs, EngineArgs, Failure, Operator, Target, grants, load_with, sandbox_for, usage,
};

/// The flags of `up`.
#[derive(Args, Debug)]
pub(crate) struct UpArgs {
    /// A `System.toml`, or a directory holding one.
    path: PathBuf,
    /// Once everything has started, send `TEXT` (`text/plain`) to `ACTOR`; repeatable,
    /// in order.
    #[arg(long = "send", value_name = "ACTOR=TEXT", value_parser = crate::setup::parse_config)]
    send: Vec<(String, String)>,
    /// Once everything has started and what the `--send`s started has finished (no
    /// message waiting or being handled), send `TEXT` to `ACTOR` as a request and print
    /// the reply on stdout; repeatable, in order.
    #[arg(long = "request", value_name = "ACTOR=TEXT", value_parser = crate::setup::parse_config)]
    request: Vec<(String, String)>,
    /// How long each `--request` waits for its reply.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    request_timeout: String,
    /// Stop (gracefully) once the messages are sent and the replies printed, instead
    /// of running until SIGINT or SIGTERM.
    #[arg(long)]
    once: bool,
    #[command(flatten)]
    net: crate::setup::NetArgs,
    #[command(flatten)]
    state: crate::state::StateArgs,
}

/// One component of the system, loaded.
struct Loaded {
    actor: ComponentActor,
}

pub(crate) async fn up(
    engine_args: &EngineArgs,
    args: UpArgs,
    cache: &CacheArgs,
) -> Result<u8, Failure> {
    let file = SystemFile::load(&args.path).map_err(usage)?;
    let request_timeout = airssys_wasm_core::units::parse_duration(&args.request_timeout)
        .map_err(|e| usage(anyhow::anyhow!("--request-timeout: {e}")))?;

    // Every manifest, read and checked before anything is compiled.
    let mut targets: HashMap<PathBuf, Target> = HashMap::new();
    let paths = file
        .actors
        .iter()
        .map(|a| &a.component)
        .chain(file.spawn.iter().map(|s| &s.component));
    for path in paths {
        if !targets.contains_key(path) {
            let manifest = ComponentManifest::load(path).map_err(usage)?;
            targets.insert(path.clone(), Target::Manifest(Box::new(manifest)));
        }
    }
    // A file with only `[cluster]` is a host without actors: a client of the others
    // (`--send`, `--request`).
    if targets.is_empty() && file.cluster.is_none() {
        return Err(usage(anyhow::anyhow!(
            "{}: the system has no actors: add an [[actor]] with a component (or a \
             [cluster] to message another host's)",
            file.file.display()
        )));
    }
    let loaded = load_all(engine_args, &args, &file, &targets, cache).await?;

    let system = ActorSystem::default();
    for s in &file.spawn {
        if let Some(l) = loaded.get(&s.component) {
            system.register_component(&s.name, l.actor.clone());
        }
    }
    let root = tree(&file, &file.root().name, &loaded);
    let actors: usize = file.actors.iter().map(|a| a.member_names().len()).sum();
    system.start(root).await.map_err(|e| Failure {
        code: 1,
        error: anyhow::anyhow!("{}: {e}", file.file.display()),
    })?;
    for a in file.actors.iter().filter(|a| a.pool.is_some()) {
        system
            .register_pool(&a.name, &a.member_names())
            .map_err(|e| usage(anyhow::anyhow!("{}: {e}", a.origin)))?;
    }
    let cluster = match &file.cluster {
        None => None,
        Some(section) => {
            // Singletons are not in this host's tree: the cluster starts each on the one
            // host that holds it.
            let singletons: Vec<ChildSpec> = file
                .actors
                .iter()
                .filter(|a| a.singleton)
                .filter_map(|a| {
                    let l = loaded.get(&a.component)?;
                    Some(actor_child(&file, a, &a.name, l))
                })
                .collect();
            let joined = match cluster_config(section, singletons) {
                Ok(config) => NatsCluster::join(config, &system)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            match joined {
                Ok(c) => {
                    eprintln!("up: joined the cluster as host `{}`", c.host());
                    Some(c)
                }
                Err(e) => {
                    system.shutdown().await;
                    return Err(usage(anyhow::anyhow!("{}: {e}", section.origin)));
                }
            }
        }
    };
    let mut http = match &file.http {
        None => None,
        Some(section) => match http::HttpRoutes::start(section, &system).await {
            Ok((routes, addr)) => {
                eprintln!("up: HTTP routes on http://{addr}/");
                Some(routes)
            }
            Err(e) => {
                stop_all(&system, cluster.as_ref()).await;
                return Err(usage(anyhow::anyhow!(e)));
            }
        },
    };
    // Listening for the signals before saying so: a SIGTERM that comes while the
    // messages of the command line are still being sent waits for them, then drains.
    let mut stop = match Signals::listen() {
        Ok(stop) => stop,
        Err(e) => {
            stop_http(http.take(), file.shutdown).await;
            stop_all(&system, cluster.as_ref()).await;
            return Err(Failure {
                code: 1,
                error: anyhow::anyhow!("cannot listen for signals: {e}"),
            });
        }
    };
    eprintln!(
        "up: {} ({actors} actor(s) under {} supervisor(s); Ctrl-C or SIGTERM stops)",
        file.name.as_deref().unwrap_or("actor system"),
        file.supervisors.len()
    );

    let outcome = messages(
        &system,
        cluster.as_ref(),
        &args.send,
        &args.request,
        request_timeout,
    )
    .await;
    if let Err(e) = outcome {
        stop_http(http.take(), file.shutdown).await;
        stop_all(&system, cluster.as_ref()).await;
        return Err(Failure { code: 1, error: e });
    }
    if !args.once {
        tokio::select! {
            signal = stop.recv() => {
                eprintln!("{signal}: stopping; each actor drains its mailbox (grace {:?})", file.shutdown);
            }
            reason = system.wait_terminated() => {
                eprintln!("the actor system stopped: {reason}");
                stop_http(http.take(), file.shutdown).await;
                stop_all(&system, cluster.as_ref()).await;
                return Ok(1);
            }
        }
    }
    stop_http(http.take(), file.shutdown).await;
    stop_all(&system, cluster.as_ref()).await;
    eprintln!("stopped; {} dead letter(s)", system.dead_letters().count());
    Ok(0)
}

/// Stops the HTTP routes, if any: no new connection, and the requests in flight
/// answered within `grace` (the actors still run).
async fn stop_http(http: Option<http::HttpRoutes>, grace: Duration) {
    if let Some(http) = http
        && !http.stop(grace).await
    {
        eprintln!("http: the grace period ran out with requests still in flight");
    }
}

/// Every component of the system compiled (or from the cache) on one engine — the
/// manifests' proposals, the dense layout sized to the largest memory limit — and made
/// an actor.
async fn load_all(
    engine_args: &EngineArgs,
    args: &UpArgs,
    file: &SystemFile,
    targets: &HashMap<PathBuf, Target>,
    cache: &CacheArgs,
) -> Result<HashMap<PathBuf, Loaded>, Failure> {
    // Idle actors in the dense layout hold no stack and a few KiB.
    let Some(first) = targets.values().next() else {
        return Ok(HashMap::new());
    };
    let mut builder = engine_args.builder(first)?;
    let mut largest = None::<airssys_wasm_core::ResourceLimits>;
    for target in targets.values() {
        let Some(m) = target.manifest() else { continue };
        for &p in &m.component.proposals {
            builder = builder.proposal(p, true);
        }
        let limits = m.resource_limits()?;
        if largest
            .as_ref()
            .is_none_or(|l| limits.memory_bytes() > l.memory_bytes())
        {
            largest = Some(limits);
        }
    }
    if let Some(l) = &largest {
        builder = builder.density(Density::for_limits(l));
    }
    let engine: WasmEngine = airssys_wasm_actor::register(builder).build()?;

    let runtime_config = args.state.runtime_config().map_err(usage)?;
    let mut loaded: HashMap<PathBuf, Loaded> = HashMap::new();
    for (path, target) in targets {
        let Some(m) = target.manifest() else { continue };
        let component = load_with(&engine, target, cache, false).await?;
        let limits = m.resource_limits()?;
        let operator = Operator {
            state: &args.state,
            runtime_config: &runtime_config,
            net: &args.net,
        };
        let sandbox = sandbox_for(&component, target, &limits, grants(target, &[])?, operator)
            .await?
            .log_output(true);
        let (actor_grants, mailbox) = match &m.actor {
            Some(a) => {
                let default = MailboxConfig::default();
                let capacity = a.mailbox.map_or(default.capacity, |n| {
                    usize::try_from(n).unwrap_or(usize::MAX)
                });
                let max_bytes = a.mailbox_bytes.map_or(default.max_bytes, |n| {
                    usize::try_from(n).unwrap_or(usize::MAX)
                });
                (
                    a.grants.clone(),
                    MailboxConfig::new(capacity, a.backpressure.unwrap_or(default.backpressure))
                        .with_max_bytes(max_bytes),
                )
            }
            None => (ActorGrants::none(), MailboxConfig::default()),
        };
        let actor = ComponentActor::new(component, sandbox, actor_grants)
            .map_err(|e| {
                // Where the system file names it, then the component's manifest.
                let origin = file
                    .actors
                    .iter()
                    .find(|a| &a.component == path)
                    .map(|a| a.origin.clone())
                    .or_else(|| {
                        file.spawn
                            .iter()
                            .find(|s| &s.component == path)
                            .map(|s| s.origin.clone())
                    })
                    .unwrap_or_else(|| file.file.display().to_string());
                Failure {
                    code: 3,
                    error: anyhow::anyhow!("{origin}: {} ({e})", m.file.display()),
                }
            })?
            .with_mailbox(mailbox);
        loaded.insert(path.clone(), Loaded { actor });
    }

    Ok(loaded)
}

/// The supervisor `name` and its subtree, children in file order.
fn tree(file: &SystemFile, name: &str, loaded: &HashMap<PathBuf, Loaded>) -> SupervisorSpec {
    let Some(entry) = file.supervisors.iter().find(|s| s.name == name) else {
        return SupervisorSpec::new(name);
    };
    let mut spec = SupervisorSpec::new(name)
        .strategy(entry.strategy)
        .intensity(entry.max_restarts, entry.within)
        .backoff(RestartBackoff {
            initial: entry.backoff,
            max: entry.backoff_max,
        });
    enum Child<'a> {
        Actor(&'a airssys_wasm_manifest::ActorEntry),
        Supervisor(&'a str),
    }
    let mut children: Vec<(usize, Child<'_>)> = file
        .actors
        .iter()
        .filter(|a| a.supervisor == name)
        .map(|a| (a.position, Child::Actor(a)))
        .chain(
            file.supervisors
                .iter()
                .filter(|s| s.parent.as_deref() == Some(name))
                .map(|s| (s.position, Child::Supervisor(&s.name))),
        )
        .collect();
    children.sort_by_key(|(p, _)| *p);
    for (_, child) in children {
        match child {
            Child::Supervisor(sub) => {
                spec = spec.child(ChildSpec::supervisor(tree(file, sub, loaded)))
            }
            Child::Actor(a) => {
                let Some(l) = loaded.get(&a.component).filter(|_| !a.singleton) else {
                    continue;
                };
                for member in a.member_names() {
                    spec = spec.child(actor_child(file, a, &member, l));
                }
            }
        }
    }
    spec
}

/// The actor `name` of `a`'s entry: its component, restart policy and drain grace.
fn actor_child(
    file: &SystemFile,
    a: &airssys_wasm_manifest::ActorEntry,
    name: &str,
    l: &Loaded,
) -> ChildSpec {
    ChildSpec::component(name, l.actor.clone())
        .restart(a.restart)
        .shutdown(ShutdownPolicy::Graceful(
            a.shutdown.unwrap_or(file.shutdown),
        ))
}

/// Leaves the cluster first (the other hosts stop routing here, what NATS had handed
/// over is still delivered), then drains and stops the system.
async fn stop_all(system: &ActorSystem, cluster: Option<&NatsCluster>) {
    if let Some(c) = cluster {
        c.leave().await;
    }
    system.shutdown().await;
    if let Some(c) = cluster {
        c.close().await;
    }
}

/// `[cluster]` as the cluster crate takes it, its settings read from the environment
/// where the file says so.
fn cluster_config(
    section: &ClusterSection,
    singletons: Vec<ChildSpec>,
) -> Result<ClusterConfig, String> {
    let read = |key: &str, s: &airssys_wasm_manifest::Setting| {
        s.resolve().map_err(|e| format!("cluster.{key}: {e}"))
    };
    let mut config = ClusterConfig::new(read("nats", &section.nats)?);
    if let Some(name) = &section.name {
        config = config.cluster(name.clone());
    }
    if let Some(host) = &section.host {
        config = config.host(host.clone());
    }
    if let Some(every) = section.heartbeat {
        config = config.heartbeat(every);
    }
    for name in &section.durable {
        config = config.durable(name.clone());
    }
    if let Some(wait) = section.ack_wait {
        config = config.ack_wait(wait);
    }
    for child in singletons {
        config = config.singleton(child);
    }
    let credentials = match (
        &section.user,
        &section.password,
        &section.token,
        &section.credentials,
    ) {
        (Some(user), Some(password), _, _) => Credentials::UserPassword {
            user: read("user", user)?,
            password: read("password", password)?,
        },
        (_, _, Some(token), _) => Credentials::Token(read("token", token)?),
        (_, _, _, Some(file)) => Credentials::File(file.clone()),
        _ => Credentials::None,
    };
    Ok(config.credentials(credentials))
}

/// The `--send`s, then the `--request`s (replies on stdout). A target on another host
/// is waited for (until the request timeout) to be known: hosts learn each other's
/// names by their heartbeats.
async fn messages(
    system: &ActorSystem,
    cluster: Option<&NatsCluster>,
    send: &[(String, String)],
    request: &[(String, String)],
    timeout: Duration,
) -> anyhow::Result<()> {
    let address = |to: &str| {
        ActorAddress::parse(to).map_err(|e| anyhow::anyhow!("`{to}` is not an address: {e}"))
    };
    if let Some(c) = cluster {
        for (to, _) in send.iter().chain(request) {
            if system.lookup(to).is_none() && !system.local_names().contains(to) {
                c.wait_for(to, timeout).await;
            }
        }
    }
    for (to, text) in send {
        system
            .send(&address(to)?, MessageEnvelope::text(text.clone()))
            .await
            .map_err(|e| anyhow::anyhow!("--send {to}: {e}"))?;
    }
    if !send.is_empty() {
        // What the sends started has finished before anything is asked.
        system.quiesce().await;
    }
    for (to, text) in request {
        let reply = system
            .request(&address(to)?, MessageEnvelope::text(text.clone()), timeout)
            .await
            .map_err(|e| anyhow::anyhow!("--request {to}: {e}"))?;
        let mut out = std::io::stdout().lock();
        std::io::Write::write_all(&mut out, &reply.payload)
            .and_then(|()| std::io::Write::write_all(&mut out, b"\n"))
            .map_err(|e| anyhow::anyhow!("writing the reply to stdout: {e}"))?;
    }
    Ok(())
}

/// SIGINT and SIGTERM, listened for from creation on.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn listen() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// The next one, by name.
    async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => "SIGTERM",
                _ = self.int.recv() => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}
