//! `System.toml`: an actor system as a file — its supervisors (a tree by `parent`), its
//! actors (each a component by its manifest, under a supervisor, optionally a pool),
//! the components actors may spawn, the shutdown grace, the cluster it joins and its
//! HTTP routes into actors (`system/http.rs`). Checked whole before
//! anything starts: unknown keys, names (valid, unique, pools expanded), references to
//! supervisors, one root, no cycle, component manifests that exist — every error at
//! its line and column, with the fix.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::de::{DeTable, DeValue};

use airssys_wasm_core::actor::{RestartPolicy, SupervisionStrategy, check_name};

use crate::doc::{Doc, PResult, Value, duration, tables};
use crate::error::{ManifestError, ManifestErrorKind};
use crate::manifest::MANIFEST_FILE;

mod http;

pub use http::{HttpRoute, HttpSection};

/// The file name of a system file.
pub const SYSTEM_FILE: &str = "System.toml";

/// The root supervisor's name when the file declares no supervisor.
pub const DEFAULT_ROOT: &str = "root";

const TOP_KEYS: &[&str] = &["system", "supervisor", "actor", "spawn", "cluster", "http"];
const CLUSTER_KEYS: &[&str] = &[
    "nats",
    "name",
    "host",
    "heartbeat",
    "user",
    "password",
    "token",
    "credentials",
    "durable",
    "ack_wait",
];
const SYSTEM_KEYS: &[&str] = &["name", "shutdown"];
const SUPERVISOR_KEYS: &[&str] = &[
    "name",
    "parent",
    "strategy",
    "max_restarts",
    "within",
    "backoff",
    "backoff_max",
];
const ACTOR_KEYS: &[&str] = &[
    "name",
    "component",
    "supervisor",
    "restart",
    "pool",
    "shutdown",
    "singleton",
];

/// A checked `System.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SystemFile {
    /// The file.
    pub file: PathBuf,
    /// `[system] name`.
    pub name: Option<String>,
    /// `[system] shutdown`: how long each actor may take to drain at shutdown
    /// (default 5 s).
    pub shutdown: Duration,
    /// `[[supervisor]]`, in file order; the root first. Without any, one root named
    /// [`DEFAULT_ROOT`] with the defaults.
    pub supervisors: Vec<SupervisorEntry>,
    /// `[[actor]]`, in file order.
    pub actors: Vec<ActorEntry>,
    /// `[spawn]`: components actors may spawn, by name.
    pub spawn: Vec<SpawnEntry>,
    /// `[cluster]`: the NATS this system joins, to message actors on other hosts.
    pub cluster: Option<ClusterSection>,
    /// `[http]`: HTTP routes into actors.
    pub http: Option<HttpSection>,
}

/// `[cluster]`: joining other hosts over NATS.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterSection {
    /// `nats`: the server(s), `nats://host:4222` (several separated by commas).
    pub nats: Setting,
    /// `name`: the cluster's name (default `default`): systems of one cluster reach
    /// each other's actors.
    pub name: Option<String>,
    /// `host`: this host's name in the cluster (default: a fresh unique one).
    pub host: Option<String>,
    /// `heartbeat`: how often this host says it is alive (default 1 s).
    pub heartbeat: Option<Duration>,
    /// `user` and `password`.
    pub user: Option<Setting>,
    /// See `user`.
    pub password: Option<Setting>,
    /// `token`.
    pub token: Option<Setting>,
    /// `credentials`: a NATS `.creds` file, resolved against the system file.
    pub credentials: Option<PathBuf>,
    /// `durable`: the names (actors or pools of this file) whose mailboxes are
    /// durable: tells through a JetStream stream, delivered at least once.
    pub durable: Vec<String>,
    /// `ack_wait`: how long a durable message may stay in a host's hands unhandled
    /// before another host gets it (default 30 s).
    pub ack_wait: Option<Duration>,
    /// `FILE:LINE:COLUMN` of the section.
    pub origin: String,
}

/// A setting written in the file or read from the host's environment when the system
/// starts (`{ env = "NATS_PASSWORD" }`): credentials need not be in the file. Shown
/// redacted.
#[derive(Clone, PartialEq, Eq)]
pub enum Setting {
    /// Written in the file.
    Text(String),
    /// The environment variable to read.
    Env(String),
}

impl std::fmt::Debug for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Text(t) if t.contains("://") => {
                write!(f, "Text({:?})", airssys_wasm_core::text::redact_url(t))
            }
            Self::Text(_) => f.write_str("Text(***)"),
            Self::Env(var) => write!(f, "Env({var:?})"),
        }
    }
}

impl Setting {
    /// Its value now.
    ///
    /// # Errors
    ///
    /// When the environment variable is not set (or not Unicode): its name, with the
    /// fix.
    pub fn resolve(&self) -> Result<String, String> {
        match self {
            Self::Text(t) => Ok(t.clone()),
            Self::Env(var) => std::env::var(var).map_err(|_| {
                format!("the environment variable `{var}` is not set (export it before starting)")
            }),
        }
    }
}

/// One `[[supervisor]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SupervisorEntry {
    /// Its name.
    pub name: String,
    /// Its parent; `None` for the root.
    pub parent: Option<String>,
    /// `strategy` (default one-for-one).
    pub strategy: SupervisionStrategy,
    /// `max_restarts` within `within` (default 3 in 60 s), then it escalates.
    pub max_restarts: u32,
    /// See `max_restarts`.
    pub within: Duration,
    /// `backoff`: the delay before the second restart in a window, doubling (default
    /// 100 ms).
    pub backoff: Duration,
    /// `backoff_max` (default 30 s).
    pub backoff_max: Duration,
    /// Where it is declared (its position among its parent's children).
    pub position: usize,
    /// 1-based line of the entry.
    pub line: usize,
}

/// One `[[actor]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ActorEntry {
    /// Its name (a pool's members are `NAME-1` … `NAME-N`; `NAME` addresses the pool).
    pub name: String,
    /// The component's manifest (`Component.toml`), resolved against the system file.
    pub component: PathBuf,
    /// Its supervisor (default: the root).
    pub supervisor: String,
    /// `restart` (default permanent).
    pub restart: RestartPolicy,
    /// `pool`: how many (none: one actor named `name`).
    pub pool: Option<u32>,
    /// `shutdown`: its drain grace, over `[system] shutdown`.
    pub shutdown: Option<Duration>,
    /// `singleton`: it runs on exactly one host of the `[cluster]` at a time (under the
    /// root supervisor of the host that holds it), not in this file's tree.
    pub singleton: bool,
    /// Where it is declared (its position among its supervisor's children).
    pub position: usize,
    /// 1-based line of the entry.
    pub line: usize,
    /// `FILE:LINE:COLUMN` of the entry, for messages about it.
    pub origin: String,
}

impl ActorEntry {
    /// The names of its actors: `name`, or a pool's `name-1` … `name-N`.
    pub fn member_names(&self) -> Vec<String> {
        match self.pool {
            None => vec![self.name.clone()],
            Some(n) => (1..=n).map(|i| format!("{}-{i}", self.name)).collect(),
        }
    }
}

/// One `[spawn]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpawnEntry {
    /// The name actors spawn it by.
    pub name: String,
    /// Its manifest.
    pub component: PathBuf,
    /// `FILE:LINE:COLUMN`.
    pub origin: String,
}

impl SystemFile {
    /// Reads `path`: a `System.toml`, or a directory holding one.
    ///
    /// # Errors
    ///
    /// [`ManifestError`]: the file cannot be read, or the first problem in it.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ManifestError> {
        let path = path.as_ref();
        let file = if path.is_dir() {
            path.join(SYSTEM_FILE)
        } else {
            path.to_owned()
        };
        let text = std::fs::read_to_string(&file).map_err(|e| ManifestError {
            kind: ManifestErrorKind::Io,
            file: file.clone(),
            line: 1,
            column: 1,
            key: None,
            message: format!("cannot read the system file: {e}"),
            help: Some(format!("an actor system is described by a `{SYSTEM_FILE}`")),
        })?;
        Self::parse(&text, &file)
    }

    /// Parses system-file text; `file` names it in messages and is what relative paths
    /// are resolved against.
    ///
    /// # Errors
    ///
    /// The first problem found, at its line and column.
    pub fn parse(text: &str, file: impl AsRef<Path>) -> Result<Self, ManifestError> {
        read(&Doc {
            text,
            file: file.as_ref(),
        })
    }

    /// The root supervisor.
    pub fn root(&self) -> &SupervisorEntry {
        // `read` puts the root first (an implicit one when none is declared).
        &self.supervisors[0]
    }
}

fn read(doc: &Doc<'_>) -> PResult<SystemFile> {
    let root = DeTable::parse(doc.text).map_err(|e| {
        doc.error(
            e.span().unwrap_or(0..0),
            ManifestErrorKind::Syntax,
            None,
            format!("invalid TOML: {}", e.message().trim()),
            None,
        )
    })?;
    let top_span = root.span();
    let root = root.get_ref();
    doc.check_keys(root, TOP_KEYS, None)?;

    let (name, shutdown) = match doc.table(root, "system", None)? {
        None => (None, Duration::from_secs(5)),
        Some((_, t)) => {
            doc.check_keys(t, SYSTEM_KEYS, Some("system"))?;
            let name = Doc::get(t, "name")
                .map(|v| doc.string(v, "system.name").map(str::to_owned))
                .transpose()?;
            let shutdown =
                duration(doc, t, "shutdown", "system.shutdown")?.unwrap_or(Duration::from_secs(5));
            (name, shutdown)
        }
    };

    let mut supervisors = Vec::new();
    for (span, t) in tables(doc, root, "supervisor")? {
        supervisors.push(supervisor(doc, span, t)?);
    }
    let mut actors = Vec::new();
    for (span, t) in tables(doc, root, "actor")? {
        actors.push(actor(doc, span, t)?);
    }
    let spawn = match doc.table(root, "spawn", None)? {
        None => Vec::new(),
        Some((_, t)) => {
            let mut out = Vec::new();
            for (k, v) in t.iter() {
                let key = k.get_ref().as_ref();
                let dotted = format!("spawn.{key}");
                check_name(key).map_err(|e| {
                    doc.invalid(k.span(), &dotted, e, Some("name it like an actor".into()))
                })?;
                out.push(SpawnEntry {
                    name: key.to_owned(),
                    component: component_path(doc, v, &dotted)?,
                    origin: doc.origin(&k.span()),
                });
            }
            out
        }
    };

    if supervisors.is_empty() {
        supervisors.push(SupervisorEntry {
            name: DEFAULT_ROOT.into(),
            parent: None,
            strategy: SupervisionStrategy::OneForOne,
            max_restarts: 3,
            within: Duration::from_secs(60),
            backoff: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            position: 0,
            line: 1,
        });
    }
    let cluster = match doc.table(root, "cluster", None)? {
        None => None,
        Some((span, t)) => Some(cluster(doc, span, t, &actors)?),
    };
    if cluster.is_none()
        && let Some(a) = actors.iter().find(|a| a.singleton)
    {
        return Err(doc.error(
            a.position..a.position,
            ManifestErrorKind::InvalidValue,
            Some("actor.singleton"),
            format!(
                "`{}` is a singleton, but this system joins no cluster",
                a.name
            ),
            Some("add a [cluster] section (nats = …), or remove `singleton`".into()),
        ));
    }
    let http = match doc.table(root, "http", None)? {
        None => None,
        Some((span, t)) => {
            let names: Vec<&str> = actors.iter().map(|a| a.name.as_str()).collect();
            Some(http::http(doc, span, t, &names, cluster.is_some())?)
        }
    };
    check_tree(doc, top_span, &mut supervisors, &mut actors)?;
    Ok(SystemFile {
        file: doc.file.to_owned(),
        name,
        shutdown,
        supervisors,
        actors,
        spawn,
        cluster,
        http,
    })
}

fn name_of(doc: &Doc<'_>, span: Range<usize>, t: &DeTable<'_>, table: &str) -> PResult<String> {
    let v = Doc::get(t, "name")
        .ok_or_else(|| doc.missing(span, table, "name", "", "name = \"worker\""))?;
    let name = doc.string(v, &format!("{table}.name"))?;
    check_name(name).map_err(|e| {
        doc.invalid(
            v.span(),
            &format!("{table}.name"),
            e,
            Some("e.g. name = \"order-router\"".into()),
        )
    })?;
    Ok(name.to_owned())
}

fn word<T>(
    doc: &Doc<'_>,
    t: &DeTable<'_>,
    key: &str,
    dotted: &str,
    parse: fn(&str) -> Option<T>,
    choices: &str,
) -> PResult<Option<T>> {
    match Doc::get(t, key) {
        None => Ok(None),
        Some(v) => {
            let s = doc.string(v, dotted)?;
            parse(s).map(Some).ok_or_else(|| {
                doc.invalid(
                    v.span(),
                    dotted,
                    format!("`{s}` is not a {key}"),
                    Some(format!("use {choices}")),
                )
            })
        }
    }
}

fn supervisor(doc: &Doc<'_>, span: Range<usize>, t: &DeTable<'_>) -> PResult<SupervisorEntry> {
    const T: &str = "supervisor";
    doc.check_keys(t, SUPERVISOR_KEYS, Some(T))?;
    let name = name_of(doc, span.clone(), t, T)?;
    let parent = Doc::get(t, "parent")
        .map(|v| doc.string(v, "supervisor.parent").map(str::to_owned))
        .transpose()?;
    let strategy = word(
        doc,
        t,
        "strategy",
        "supervisor.strategy",
        SupervisionStrategy::parse,
        "\"one-for-one\", \"one-for-all\" or \"rest-for-one\"",
    )?
    .unwrap_or_default();
    let max_restarts = match Doc::get(t, "max_restarts") {
        None => 3,
        Some(v) => match v.get_ref() {
            DeValue::Integer(i) => {
                let n = doc.unsigned(v.span(), "supervisor.max_restarts", i.as_str(), i.radix())?;
                u32::try_from(n).map_err(|_| {
                    doc.invalid(
                        v.span(),
                        "supervisor.max_restarts",
                        "too large".into(),
                        None,
                    )
                })?
            }
            other => {
                return Err(doc.wrong_type(v.span(), "supervisor.max_restarts", "a number", other));
            }
        },
    };
    let within =
        duration(doc, t, "within", "supervisor.within")?.unwrap_or(Duration::from_secs(60));
    let backoff =
        duration(doc, t, "backoff", "supervisor.backoff")?.unwrap_or(Duration::from_millis(100));
    let backoff_max = duration(doc, t, "backoff_max", "supervisor.backoff_max")?
        .unwrap_or(Duration::from_secs(30));
    let (line, _) = crate::error::line_col(doc.text, span.start);
    Ok(SupervisorEntry {
        name,
        parent,
        strategy,
        max_restarts,
        within,
        backoff,
        backoff_max,
        position: span.start,
        line,
    })
}

fn component_path(doc: &Doc<'_>, v: &Value<'_>, dotted: &str) -> PResult<PathBuf> {
    let s = doc.string(v, dotted)?;
    let path = doc.base_dir().join(s);
    let manifest = if path.is_dir() {
        path.join(MANIFEST_FILE)
    } else {
        path
    };
    if !manifest.is_file() {
        return Err(doc.error(
            v.span(),
            ManifestErrorKind::MissingComponent,
            Some(dotted),
            format!("there is no component manifest at `{s}` (looked for {})", manifest.display()),
            Some(format!(
                "point `component` at a directory holding a {MANIFEST_FILE}, or at the file (relative to this file)"
            )),
        ));
    }
    Ok(manifest)
}

fn cluster(
    doc: &Doc<'_>,
    span: Range<usize>,
    t: &DeTable<'_>,
    actors: &[ActorEntry],
) -> PResult<ClusterSection> {
    const T: &str = "cluster";
    doc.check_keys(t, CLUSTER_KEYS, Some(T))?;
    let v = Doc::get(t, "nats").ok_or_else(|| {
        doc.missing(
            span.clone(),
            T,
            "nats",
            "; a cluster is joined through a NATS server",
            "nats = \"nats://127.0.0.1:4222\" (or { env = \"NATS_URL\" })",
        )
    })?;
    let nats = setting(doc, v, "cluster.nats")?;
    if let Setting::Text(url) = &nats {
        for one in url.split(',').map(str::trim) {
            let scheme_ok = ["nats://", "tls://", "ws://", "wss://"]
                .iter()
                .any(|s| one.starts_with(s));
            if !scheme_ok || one.len() <= "nats://".len() {
                return Err(doc.invalid(
                    v.span(),
                    "cluster.nats",
                    format!(
                        "`{}` is not a NATS server address",
                        airssys_wasm_core::text::redact_url(one)
                    ),
                    Some("write nats://HOST:PORT (tls://, ws://, wss://), several separated by commas".into()),
                ));
            }
        }
    }
    let token_name = |key: &str| -> PResult<Option<String>> {
        let dotted = format!("cluster.{key}");
        let Some(v) = Doc::get(t, key) else {
            return Ok(None);
        };
        let name = doc.string(v, &dotted)?;
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            return Err(doc.invalid(
                v.span(),
                &dotted,
                format!("`{name}` is not a name here"),
                Some("1 to 64 ASCII letters, digits, `-` and `_`".into()),
            ));
        }
        Ok(Some(name.to_owned()))
    };
    let name = token_name("name")?;
    let host = token_name("host")?;
    let heartbeat = duration(doc, t, "heartbeat", "cluster.heartbeat")?;
    let optional = |key: &str| {
        Doc::get(t, key)
            .map(|v| setting(doc, v, &format!("cluster.{key}")))
            .transpose()
    };
    let user = optional("user")?;
    let password = optional("password")?;
    let token = optional("token")?;
    let credentials = match Doc::get(t, "credentials") {
        None => None,
        Some(v) => Some(doc.base_dir().join(doc.string(v, "cluster.credentials")?)),
    };
    let at = |key: &str| Doc::get(t, key).map_or(span.clone(), |v| v.span());
    if user.is_some() != password.is_some() {
        let key = if user.is_some() { "user" } else { "password" };
        return Err(doc.invalid(
            at(key),
            &format!("cluster.{key}"),
            "`user` and `password` go together".into(),
            Some("give both, or use `token` or `credentials`".into()),
        ));
    }
    let ways = [user.is_some(), token.is_some(), credentials.is_some()];
    if ways.iter().filter(|w| **w).count() > 1 {
        let key = if token.is_some() {
            "token"
        } else {
            "credentials"
        };
        return Err(doc.invalid(
            at(key),
            &format!("cluster.{key}"),
            "one way to prove who this host is: `user` and `password`, `token`, or `credentials`"
                .into(),
            Some("keep one of them".into()),
        ));
    }
    let mut durable = Vec::new();
    if let Some(v) = Doc::get(t, "durable") {
        let DeValue::Array(items) = v.get_ref() else {
            return Err(doc.wrong_type(
                v.span(),
                "cluster.durable",
                "a list of actor names",
                v.get_ref(),
            ));
        };
        for item in items {
            let name = doc.string(item, "cluster.durable")?;
            check_name(name).map_err(|e| doc.invalid(item.span(), "cluster.durable", e, None))?;
            if !actors.iter().any(|a| a.name == name) {
                let known: Vec<&str> = actors.iter().map(|a| a.name.as_str()).collect();
                return Err(doc.invalid(
                    item.span(),
                    "cluster.durable",
                    format!("no [[actor]] here is named `{name}`: a durable mailbox is one this system serves"),
                    Some(format!("actors here: {}", known.join(", "))),
                ));
            }
            durable.push(name.to_owned());
        }
    }
    let ack_wait = duration(doc, t, "ack_wait", "cluster.ack_wait")?;
    Ok(ClusterSection {
        nats,
        durable,
        ack_wait,
        name,
        host,
        heartbeat,
        user,
        password,
        token,
        credentials,
        origin: doc.origin(&span),
    })
}

/// A string, or `{ env = "VARIABLE" }`.
fn setting(doc: &Doc<'_>, v: &Value<'_>, dotted: &str) -> PResult<Setting> {
    let expected = "a string, or { env = \"VARIABLE\" } to read the host's environment";
    match v.get_ref() {
        DeValue::String(s) => Ok(Setting::Text(s.as_ref().to_owned())),
        DeValue::Table(inner) => match (inner.len(), Doc::get(inner, "env").map(|e| e.get_ref())) {
            (1, Some(DeValue::String(var))) if !var.is_empty() => {
                Ok(Setting::Env(var.as_ref().to_owned()))
            }
            _ => Err(doc.invalid(
                v.span(),
                dotted,
                format!("`{dotted}` must be {expected}"),
                Some("write e.g. password = { env = \"NATS_PASSWORD\" }".into()),
            )),
        },
        other => Err(doc.wrong_type(v.span(), dotted, expected, other)),
    }
}

fn actor(doc: &Doc<'_>, span: Range<usize>, t: &DeTable<'_>) -> PResult<ActorEntry> {
    const T: &str = "actor";
    doc.check_keys(t, ACTOR_KEYS, Some(T))?;
    let name = name_of(doc, span.clone(), t, T)?;
    let v = Doc::get(t, "component").ok_or_else(|| {
        doc.missing(
            span.clone(),
            T,
            "component",
            "; an actor is a component",
            "component = \"worker\" (a directory holding its Component.toml)",
        )
    })?;
    let component = component_path(doc, v, "actor.component")?;
    let supervisor = Doc::get(t, "supervisor")
        .map(|v| doc.string(v, "actor.supervisor").map(str::to_owned))
        .transpose()?
        .unwrap_or_default();
    let restart = word(
        doc,
        t,
        "restart",
        "actor.restart",
        RestartPolicy::parse,
        "\"permanent\", \"transient\" or \"temporary\"",
    )?
    .unwrap_or_default();
    let pool = match Doc::get(t, "pool") {
        None => None,
        Some(v) => match v.get_ref() {
            DeValue::Integer(i) => {
                let n = doc.unsigned(v.span(), "actor.pool", i.as_str(), i.radix())?;
                if n == 0 || n > 10_000 {
                    return Err(doc.invalid(
                        v.span(),
                        "actor.pool",
                        format!("a pool has 1 to 10000 actors, not {n}"),
                        None,
                    ));
                }
                u32::try_from(n).ok()
            }
            other => {
                return Err(doc.wrong_type(v.span(), "actor.pool", "a number of actors", other));
            }
        },
    };
    let shutdown = duration(doc, t, "shutdown", "actor.shutdown")?;
    let singleton = match Doc::get(t, "singleton") {
        None => false,
        Some(v) => match v.get_ref() {
            DeValue::Boolean(b) => *b,
            other => {
                return Err(doc.wrong_type(v.span(), "actor.singleton", "true or false", other));
            }
        },
    };
    if singleton && (pool.is_some() || !supervisor.is_empty()) {
        let key = if pool.is_some() { "pool" } else { "supervisor" };
        let at = Doc::get(t, key).map_or(span.clone(), |v| v.span());
        return Err(doc.invalid(
            at,
            &format!("actor.{key}"),
            format!("a singleton has no `{key}`: it runs once in the cluster, under the root supervisor of the host that holds it"),
            Some("remove it, or `singleton`".into()),
        ));
    }
    Ok(ActorEntry {
        singleton,
        name,
        component,
        supervisor,
        restart,
        pool,
        shutdown,
        position: span.start,
        line: crate::error::line_col(doc.text, span.start).0,
        origin: doc.origin(&span),
    })
}

/// One root, known parents, no cycle, unique names (pools expanded).
fn check_tree(
    doc: &Doc<'_>,
    top: Range<usize>,
    supervisors: &mut Vec<SupervisorEntry>,
    actors: &mut [ActorEntry],
) -> PResult<()> {
    let at = |line: usize| {
        let start = doc
            .text
            .split_inclusive('\n')
            .take(line.saturating_sub(1))
            .map(str::len)
            .sum::<usize>();
        start..start
    };
    let roots: Vec<usize> = (0..supervisors.len())
        .filter(|i| supervisors[*i].parent.is_none())
        .collect();
    match roots.as_slice() {
        [] => {
            return Err(doc.error(
                top,
                ManifestErrorKind::InvalidValue,
                Some("supervisor.parent"),
                "every supervisor has a parent: there is no root".into(),
                Some("leave `parent` out of the root supervisor".into()),
            ));
        }
        [_] => {}
        [first, second, ..] => {
            return Err(doc.error(
                at(supervisors[*second].line),
                ManifestErrorKind::InvalidValue,
                Some("supervisor.parent"),
                format!(
                    "`{}` has no parent, and neither has `{}`: a system has one root",
                    supervisors[*second].name, supervisors[*first].name
                ),
                Some(format!(
                    "give it a parent, e.g. parent = \"{}\"",
                    supervisors[*first].name
                )),
            ));
        }
    }
    let root = supervisors.remove(roots[0]);
    supervisors.insert(0, root);
    let root_name = supervisors[0].name.clone();

    let mut names: HashMap<String, usize> = HashMap::new();
    let mut claim = |name: &str, line: usize| -> PResult<()> {
        if let Some(first) = names.insert(name.to_owned(), line) {
            return Err(doc.error(
                at(line),
                ManifestErrorKind::InvalidValue,
                Some("name"),
                format!("the name `{name}` is used twice (first on line {first})"),
                Some("names of actors, pool members and supervisors are unique: rename one".into()),
            ));
        }
        Ok(())
    };
    for s in supervisors.iter() {
        claim(&s.name, s.line)?;
    }
    for a in actors.iter() {
        if a.pool.is_some() {
            claim(&a.name, a.line)?;
        }
        for n in a.member_names() {
            claim(&n, a.line)?;
        }
    }

    let known: Vec<&str> = supervisors.iter().map(|s| s.name.as_str()).collect();
    let unknown = |what: &str, name: &str, line: usize, key: &str| {
        doc.error(
            at(line),
            ManifestErrorKind::InvalidValue,
            Some(key),
            format!("{what} `{name}` is not a supervisor of this system"),
            Some(format!("known supervisors: {}", known.join(", "))),
        )
    };
    for s in supervisors.iter() {
        if let Some(p) = &s.parent
            && !known.contains(&p.as_str())
        {
            return Err(unknown("the parent", p, s.line, "supervisor.parent"));
        }
    }
    for a in actors.iter_mut() {
        if a.supervisor.is_empty() {
            a.supervisor = root_name.clone();
        }
        if !known.contains(&a.supervisor.as_str()) {
            return Err(unknown(
                "the supervisor",
                &a.supervisor,
                a.line,
                "actor.supervisor",
            ));
        }
    }
    // No cycle: from every supervisor, the parents lead to the root.
    for s in supervisors.iter() {
        let mut path = vec![s.name.as_str()];
        let mut cur = s;
        while let Some(p) = &cur.parent {
            if path.contains(&p.as_str()) {
                path.push(p);
                return Err(doc.error(
                    at(s.line),
                    ManifestErrorKind::InvalidValue,
                    Some("supervisor.parent"),
                    format!("the supervisors form a cycle: {}", path.join(" → ")),
                    Some(format!(
                        "a tree has one root (`{root_name}`): give one of them another parent"
                    )),
                ));
            }
            path.push(p);
            let Some(next) = supervisors.iter().find(|x| &x.name == p) else {
                break;
            };
            cur = next;
        }
    }
    Ok(())
}
