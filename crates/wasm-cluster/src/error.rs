//! [`ClusterError`]: why a host could not join its cluster, with the fix. No credential
//! is ever part of one.

/// Why a host could not join the cluster.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// NATS could not be reached.
    #[error(
        "cannot reach NATS at {url}: {reason} — is nats-server running and listening there? \
         (`[cluster] nats` in System.toml, ClusterConfig::url)"
    )]
    Connect {
        /// Where (credentials redacted).
        url: String,
        /// Why.
        reason: String,
    },
    /// NATS refused the credentials.
    #[error(
        "NATS at {url} refused this host's credentials ({reason}): check `[cluster] \
         credentials` in System.toml (or the user information in the URL)"
    )]
    Credentials {
        /// Where (credentials redacted).
        url: String,
        /// Why.
        reason: String,
    },
    /// A credentials file that cannot be read.
    #[error("cannot read the NATS credentials file `{path}`: {reason}")]
    CredentialsFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A cluster or host name that cannot be a NATS subject token.
    #[error("`{name}` cannot name a cluster or a host: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
    /// JetStream refused what a durable mailbox or a singleton needs.
    #[error(
        "JetStream refused {what}: {reason} — durable mailboxes and singletons need nats-server with \
         JetStream on (`-js`, or `jetstream {{}}` in its configuration)"
    )]
    JetStream {
        /// The stream or consumer.
        what: String,
        /// Why.
        reason: String,
    },
    /// A subscription NATS refused.
    #[error("NATS refused the subscription to `{subject}`: {reason}")]
    Subscribe {
        /// The subject.
        subject: String,
        /// Why.
        reason: String,
    },
}
