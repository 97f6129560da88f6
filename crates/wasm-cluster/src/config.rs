//! [`ClusterConfig`]: which NATS to join, as which cluster and host, with which
//! credentials (never shown: [`Credentials`]' `Debug` and every error redact them), and
//! how often hosts say they are alive.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use airssys_wasm_actor::ChildSpec;

/// How a host joins the cluster.
#[derive(Clone)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// The NATS server(s): `nats://host:4222`, several separated by commas. User
    /// information in a URL is a credential too: redacted wherever it is shown.
    pub url: String,
    /// The cluster's name: the first token of its subjects (`airssys.NAME.…`), so that
    /// several clusters can share one NATS. Default `default`.
    pub cluster: String,
    /// This host's name, unique in the cluster (default: a fresh unique id).
    pub host: Option<String>,
    /// How this host proves who it is.
    pub credentials: Credentials,
    /// How often this host says it is alive, with the names it serves (default 1 s).
    pub heartbeat: Duration,
    /// After how long without a heartbeat another host counts as gone (default three
    /// heartbeats).
    pub host_timeout: Duration,
    /// The longest wait for the first connection (default 5 s).
    pub connect_timeout: Duration,
    /// The names whose mailboxes are durable when this host serves them: every tell to
    /// them goes through a JetStream stream and is acknowledged to NATS only once
    /// handled — delivered at least once, again after a host dies with it in hand.
    pub durable: Vec<String>,
    /// How long a durable message may stay unacknowledged (handed to a host, not yet
    /// handled) before JetStream hands it to another (default 30 s).
    pub ack_wait: Duration,
    /// Actors that run on exactly one host of the cluster at a time: every host that
    /// lists one may run it, one does, and another takes over within the host timeout
    /// when that one dies (`singleton.rs`).
    pub singletons: Vec<ChildSpec>,
}

impl fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("url", &airssys_wasm_core::text::redact_url(&self.url))
            .field("cluster", &self.cluster)
            .field("host", &self.host)
            .field("credentials", &self.credentials)
            .field("heartbeat", &self.heartbeat)
            .field("host_timeout", &self.host_timeout)
            .field("durable", &self.durable)
            .field("ack_wait", &self.ack_wait)
            .field("singletons", &self.singletons)
            .finish_non_exhaustive()
    }
}

impl ClusterConfig {
    /// Joins the NATS at `url`, cluster `default`, no credentials, 1 s heartbeats.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            cluster: "default".into(),
            host: None,
            credentials: Credentials::None,
            heartbeat: Duration::from_secs(1),
            host_timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(5),
            durable: Vec::new(),
            ack_wait: Duration::from_secs(30),
            singletons: Vec::new(),
        }
    }

    /// `name`'s mailbox is durable when this host serves it (see [`Self::durable`]).
    #[must_use]
    pub fn durable(mut self, name: impl Into<String>) -> Self {
        self.durable.push(name.into());
        self
    }

    /// `child` as a singleton of the cluster: started on this host only while it holds it.
    #[must_use]
    pub fn singleton(mut self, child: ChildSpec) -> Self {
        self.singletons.push(child);
        self
    }

    /// How long a durable message may stay unacknowledged before another host gets it.
    #[must_use]
    pub fn ack_wait(mut self, wait: Duration) -> Self {
        self.ack_wait = wait;
        self
    }

    /// In the cluster `name`.
    #[must_use]
    pub fn cluster(mut self, name: impl Into<String>) -> Self {
        self.cluster = name.into();
        self
    }

    /// As the host `name`.
    #[must_use]
    pub fn host(mut self, name: impl Into<String>) -> Self {
        self.host = Some(name.into());
        self
    }

    /// With these credentials.
    #[must_use]
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = credentials;
        self
    }

    /// Heartbeats every `every`; a host silent for three of them is gone.
    #[must_use]
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every;
        self.host_timeout = every.saturating_mul(3);
        self
    }

    /// Another host counts as gone after `silence` without a heartbeat (and a singleton
    /// it held moves); set after [`heartbeat`](Self::heartbeat), which sets three beats.
    #[must_use]
    pub fn host_timeout(mut self, silence: Duration) -> Self {
        self.host_timeout = silence;
        self
    }

    /// The URL as it may be shown.
    pub fn redacted_url(&self) -> String {
        self.url
            .split(',')
            .map(|u| airssys_wasm_core::text::redact_url(u.trim()))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// How a host proves who it is to NATS.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum Credentials {
    /// None (or in the URL).
    #[default]
    None,
    /// A token.
    Token(String),
    /// A user and a password.
    UserPassword {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
    /// A `.creds` file (a JWT and an NKey seed), as `nsc` writes it.
    File(PathBuf),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Token(_) => f.write_str("Token(***)"),
            Self::UserPassword { user, .. } => {
                write!(f, "UserPassword {{ user: {user:?}, password: *** }}")
            }
            Self::File(path) => write!(f, "File({path:?})"),
        }
    }
}
