//! Capabilities: what a component may touch outside its own memory.
//!
//! airssys-wasm grants **no ambient authority**. A component gets exactly the
//! capabilities in its [`CapabilitySet`]; [`CapabilitySet::default`] is what a manifest
//! without `[capabilities]` means: stdout and stderr, nothing else.

use std::net::SocketAddr;
use std::path::PathBuf;

use std::fmt;

use crate::http::HttpGrant;
use crate::interface::{InterfaceGrant, WASI_CONFIG_STORE};
use crate::keyvalue::KeyValueGrant;

/// What happens to one of the guest's standard streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StdioMode {
    /// The guest's stream is the host process's stream.
    Inherit,
    /// The guest reads nothing / what it writes is discarded.
    Null,
}

impl StdioMode {
    /// The manifest spelling: `"inherit"` or `"null"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inherit => "inherit",
            Self::Null => "null",
        }
    }
}

/// Access to a preopened directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DirAccess {
    /// List and read files; no creation, writing or removal.
    ReadOnly,
    /// Read, create, write and remove files and directories below the preopen.
    ReadWrite,
}

impl DirAccess {
    /// The manifest spelling: `"read-only"` or `"read-write"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadOnly => "read-only",
            Self::ReadWrite => "read-write",
        }
    }
}

/// One environment variable granted to the guest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EnvGrant {
    /// The variable's name.
    pub name: String,
    /// `Some(v)`: the guest sees `name=v`. `None`: the host's value passes through,
    /// if the host has one.
    pub value: Option<String>,
}

/// One preopened directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DirGrant {
    /// The directory on the host (already resolved by whoever built the grant).
    pub host: PathBuf,
    /// The absolute path at which the guest sees it.
    pub guest: String,
    /// What the guest may do there.
    pub access: DirAccess,
}

/// A TCP connect allowlist entry: `host:port`, with `*` for any port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnectRule {
    /// An IP address (v4 or v6, without brackets).
    pub ip: std::net::IpAddr,
    /// `Some(port)` or `None` for any port.
    pub port: Option<u16>,
}

impl ConnectRule {
    /// Parses `"127.0.0.1:8080"`, `"127.0.0.1:*"` or `"[::1]:443"`.
    ///
    /// ```
    /// use airssys_wasm_core::ConnectRule;
    /// let r = ConnectRule::parse("127.0.0.1:*")?;
    /// assert!(r.allows(&"127.0.0.1:9".parse().unwrap()));
    /// assert!(!r.allows(&"127.0.0.2:9".parse().unwrap()));
    /// # Ok::<(), String>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A message saying what form is expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "`{text}` is not an address to allow: write \"IP:PORT\" with a port number \
                 or `*` for any port, e.g. \"127.0.0.1:8080\" or \"[::1]:*\" (host names are \
                 not accepted: a name can resolve to anything)"
            )
        };
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let ip = host.parse().map_err(|_| bad())?;
        let port = match port {
            "*" => None,
            p => Some(p.parse::<u16>().map_err(|_| bad())?),
        };
        Ok(Self { ip, port })
    }

    /// Whether this rule allows connecting to `addr`.
    pub fn allows(&self, addr: &SocketAddr) -> bool {
        addr.ip() == self.ip && self.port.is_none_or(|p| p == addr.port())
    }
}

impl std::fmt::Display for ConnectRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let port = self.port.map_or_else(|| "*".to_owned(), |p| p.to_string());
        match self.ip {
            std::net::IpAddr::V4(ip) => write!(f, "{ip}:{port}"),
            std::net::IpAddr::V6(ip) => write!(f, "[{ip}]:{port}"),
        }
    }
}

/// Network access. Absent (`None` in [`CapabilitySet::network`]) means none at all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct NetworkGrant {
    /// Addresses the guest may open TCP connections to.
    pub connect: Vec<ConnectRule>,
    /// Whether the guest may resolve host names.
    pub dns: bool,
}

impl NetworkGrant {
    /// Whether a TCP connection to `addr` is allowed.
    pub fn allows_connect(&self, addr: &SocketAddr) -> bool {
        self.connect.iter().any(|r| r.allows(addr))
    }
}

/// One capability, for building a [`CapabilitySet`] piece by piece.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Capability {
    /// What the guest's stdout is.
    Stdout(StdioMode),
    /// What the guest's stderr is.
    Stderr(StdioMode),
    /// What the guest's stdin is.
    Stdin(StdioMode),
    /// One environment variable.
    Env(EnvGrant),
    /// One preopened directory.
    Filesystem(DirGrant),
    /// TCP connections to the addresses a rule allows.
    Connect(ConnectRule),
    /// Host name lookups.
    Dns,
    /// A host interface the component may import.
    Interface(InterfaceGrant),
    /// The key-value store (replacing an earlier key-value grant).
    KeyValue(KeyValueGrant),
    /// Outbound HTTP (replacing an earlier HTTP grant).
    Http(HttpGrant),
}

/// Everything a component instance is granted.
///
/// ```
/// use airssys_wasm_core::{Capability, CapabilitySet, EnvGrant, StdioMode};
///
/// let mut caps = CapabilitySet::deny_all();
/// assert_eq!(caps.stdout, StdioMode::Null);
/// caps.grant(Capability::Stdout(StdioMode::Inherit));
/// caps.grant(Capability::Env(EnvGrant { name: "MODE".into(), value: Some("fast".into()) }));
/// assert_eq!(caps.env.len(), 1);
/// assert!(caps.network.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CapabilitySet {
    /// The guest's stdout.
    pub stdout: StdioMode,
    /// The guest's stderr.
    pub stderr: StdioMode,
    /// The guest's stdin.
    pub stdin: StdioMode,
    /// Environment variables, in order.
    pub env: Vec<EnvGrant>,
    /// Preopened directories.
    pub filesystem: Vec<DirGrant>,
    /// Network access; `None` is no network at all.
    pub network: Option<NetworkGrant>,
    /// Host interfaces (defined by the embedder in WIT) the component may import.
    /// WASI is not listed here: the fields above decide what it reaches.
    pub interfaces: Vec<InterfaceGrant>,
    /// The key-value buckets (`wasi:keyvalue`) the component may open; `None` is
    /// none (every `open` is refused with `access-denied`).
    pub keyvalue: Option<KeyValueGrant>,
    /// The hosts the component may send HTTP requests to (`wasi:http/outgoing-handler`);
    /// `None` is none: every request is refused with `HTTP-request-denied`, and the
    /// component still instantiates.
    pub http: Option<HttpGrant>,
}

impl Default for CapabilitySet {
    /// What a manifest without `[capabilities]` grants: stdout and stderr inherited,
    /// nothing else.
    fn default() -> Self {
        Self {
            stdout: StdioMode::Inherit,
            stderr: StdioMode::Inherit,
            ..Self::deny_all()
        }
    }
}

impl CapabilitySet {
    /// Nothing at all: every stream null, no env, no files, no network.
    pub fn deny_all() -> Self {
        Self {
            stdout: StdioMode::Null,
            stderr: StdioMode::Null,
            stdin: StdioMode::Null,
            env: Vec::new(),
            filesystem: Vec::new(),
            network: None,
            interfaces: Vec::new(),
            keyvalue: None,
            http: None,
        }
    }

    /// Adds one capability.
    pub fn grant(&mut self, capability: Capability) -> &mut Self {
        match capability {
            Capability::Stdout(m) => self.stdout = m,
            Capability::Stderr(m) => self.stderr = m,
            Capability::Stdin(m) => self.stdin = m,
            Capability::Env(e) => self.env.push(e),
            Capability::Filesystem(d) => self.filesystem.push(d),
            Capability::Connect(r) => self
                .network
                .get_or_insert_with(Default::default)
                .connect
                .push(r),
            Capability::Dns => self.network.get_or_insert_with(Default::default).dns = true,
            Capability::Interface(i) => self.interfaces.push(i),
            Capability::KeyValue(k) => self.keyvalue = Some(k),
            Capability::Http(h) => self.http = Some(h),
        }
        self
    }

    /// Whether a TCP connection to `addr` is allowed.
    pub fn allows_connect(&self, addr: &SocketAddr) -> bool {
        self.network
            .as_ref()
            .is_some_and(|n| n.allows_connect(addr))
    }

    /// The grant that lets the component import `import` (a full import name such as
    /// `acme:plugins/kv@1.2.0`), if one does.
    pub fn interface_grant(&self, import: &str) -> Option<&InterfaceGrant> {
        self.interfaces.iter().find(|g| g.allows(import))
    }

    /// Whether host name lookups are allowed.
    pub fn allows_dns(&self) -> bool {
        self.network.as_ref().is_some_and(|n| n.dns)
    }

    /// Grants what giving the component a configuration grants: `wasi:config/store`,
    /// every version, recorded as given at `origin` (a manifest's `[config]` table, or
    /// `--config`).
    pub fn grant_config(&mut self, origin: impl Into<String>) -> &mut Self {
        self.interfaces
            .push(InterfaceGrant::every_version(WASI_CONFIG_STORE, origin));
        self
    }
}

/// One line: `stdout inherit; stderr inherit; stdin null; env HOME; dir … -> /data
/// (read-only); connect [127.0.0.1:80], dns false; interfaces …; http outbound […];
/// keyvalue buckets default (max 1 MiB each)` — what `airssys-wasm inspect` shows.
/// Environment values are not shown (they may be secrets), only the names.
impl fmt::Display for CapabilitySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stdout {}; stderr {}; stdin {}",
            self.stdout.as_str(),
            self.stderr.as_str(),
            self.stdin.as_str()
        )?;
        if !self.env.is_empty() {
            let names: Vec<_> = self.env.iter().map(|e| e.name.as_str()).collect();
            write!(f, "; env {}", names.join(","))?;
        }
        for d in &self.filesystem {
            write!(f, "; {d}")?;
        }
        match &self.network {
            None => f.write_str("; no network")?,
            Some(n) => write!(f, "; {n}")?,
        }
        if !self.interfaces.is_empty() {
            let names: Vec<_> = self.interfaces.iter().map(ToString::to_string).collect();
            write!(f, "; interfaces {}", names.join(","))?;
        }
        if let Some(http) = &self.http {
            write!(f, "; {http}")?;
        }
        if let Some(kv) = &self.keyvalue {
            write!(f, "; {kv}")?;
        }
        Ok(())
    }
}

/// `dir /host/path -> /guest (read-only)`.
impl fmt::Display for DirGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dir {} -> {} ({})",
            self.host.display(),
            self.guest,
            self.access.as_str()
        )
    }
}

/// `connect [10.0.0.1:5432, 127.0.0.1], dns true`.
impl fmt::Display for NetworkGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rules: Vec<_> = self.connect.iter().map(ToString::to_string).collect();
        write!(f, "connect [{}], dns {}", rules.join(", "), self.dns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_grants_only_output_streams() {
        let c = CapabilitySet::default();
        assert_eq!(c.stdout, StdioMode::Inherit);
        assert_eq!(c.stderr, StdioMode::Inherit);
        assert_eq!(c.stdin, StdioMode::Null);
        assert!(c.env.is_empty() && c.filesystem.is_empty() && c.network.is_none());
        assert!(!c.allows_dns());
        assert!(!c.allows_connect(&"127.0.0.1:80".parse().unwrap()));
    }

    #[test]
    fn connect_rules() {
        let r = ConnectRule::parse("127.0.0.1:8080").unwrap();
        assert!(r.allows(&"127.0.0.1:8080".parse().unwrap()));
        assert!(!r.allows(&"127.0.0.1:8081".parse().unwrap()));
        let v6 = ConnectRule::parse("[::1]:*").unwrap();
        assert!(v6.allows(&"[::1]:1".parse().unwrap()));
        assert_eq!(v6.to_string(), "[::1]:*");
        assert_eq!(r.to_string(), "127.0.0.1:8080");
        for bad in [
            "localhost:80",
            "127.0.0.1",
            "127.0.0.1:99999",
            "1.2.3.4:x",
            ":80",
        ] {
            assert!(ConnectRule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn grants_accumulate() {
        let mut c = CapabilitySet::deny_all();
        c.grant(Capability::Connect(
            ConnectRule::parse("10.0.0.1:5").unwrap(),
        ))
        .grant(Capability::Dns);
        assert!(c.allows_dns());
        assert!(c.allows_connect(&"10.0.0.1:5".parse().unwrap()));
        assert!(!c.allows_connect(&"10.0.0.1:6".parse().unwrap()));
    }
}
