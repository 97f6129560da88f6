//! [`ComponentManifest`]: the checked contents of a `Component.toml` and what they
//! resolve to (limits, capabilities, configuration). Parsing is in `parse.rs`, writing
//! back to TOML in `write.rs`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use airssys_wasm_core::{
    CapabilitySet, DirAccess, DirGrant, EnvGrant, HttpGrant, InterfaceGrant, KeyValueGrant,
    NetworkGrant, PartialResourceLimits, Proposal, ResourceLimits, StdioMode, WasmResult,
};

use airssys_wasm_core::interface::WASI_CONFIG_STORE;

use crate::error::{ManifestError, ManifestErrorKind};

/// The file name a manifest has inside a component's directory.
pub const MANIFEST_FILE: &str = "Component.toml";

/// A parsed and checked `Component.toml`.
///
/// Every value has been checked: the name's form, the version, the limits' units and
/// ranges, that the component file and every preopened directory exist.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ComponentManifest {
    /// The manifest file (as given).
    pub file: PathBuf,
    /// `[component]`.
    pub component: ComponentSection,
    /// `[limits]`.
    pub limits: LimitsSection,
    /// `[capabilities]`; `None` when the manifest has none (stdout and stderr only).
    pub capabilities: Option<CapabilitiesSection>,
    /// `[config]`: what the component reads through `wasi:config/store`; `None` when the
    /// manifest has none (then `wasi:config` is not granted).
    pub config: Option<ConfigSection>,
}

/// `[config]`: keys and their values, in the file's order. Two are equal when they
/// hold the same entries, wherever and in whatever order they were written.
#[derive(Debug, Clone, Eq)]
#[non_exhaustive]
pub struct ConfigSection {
    /// The entries.
    pub entries: Vec<ConfigEntry>,
    /// Where the table is (`FILE:LINE:COL`), for messages.
    pub origin: String,
}

/// One `[config]` entry. Two are equal when key and value are.
#[derive(Debug, Clone, Eq)]
#[non_exhaustive]
pub struct ConfigEntry {
    /// The key the component asks for.
    pub key: String,
    /// Its value.
    pub value: ConfigValue,
    /// 1-based line and column of the value.
    pub line: usize,
    /// See `line`.
    pub column: usize,
}

impl PartialEq for ConfigSection {
    /// The same keys with the same values: order carries no meaning (keys are unique,
    /// and `get-all` is a set), and `to_toml` writes `{ env = … }` entries after the
    /// strings, as TOML's tables follow its values.
    fn eq(&self, other: &Self) -> bool {
        fn sorted(c: &ConfigSection) -> Vec<&ConfigEntry> {
            let mut e: Vec<_> = c.entries.iter().collect();
            e.sort_by(|a, b| a.key.cmp(&b.key));
            e
        }
        sorted(self) == sorted(other)
    }
}

impl PartialEq for ConfigEntry {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && self.value == other.value
    }
}

/// A `[config]` value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigValue {
    /// `key = "text"`.
    Text(String),
    /// `key = { env = "VAR" }`: read from the host's environment when the component
    /// starts (the variable itself stays invisible to the guest's environment).
    Env(String),
}

/// `[component]`: what the component is and where its code is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ComponentSection {
    /// Lowercase letters, digits and `-`, starting with a letter.
    pub name: String,
    /// A semantic version.
    pub version: Option<semver::Version>,
    /// Free text.
    pub description: Option<String>,
    /// The component file (`.wasm` or `.wat`), as written: relative to the manifest.
    pub path: String,
    /// The proposals the component needs beyond every engine's defaults (e.g.
    /// component-model async for a WASI 0.3 component), in order, without repeats.
    pub proposals: Vec<Proposal>,
    /// The SHA-256 digest the component file must have (64 lowercase hex digits),
    /// checked before it is compiled or taken from the cache.
    pub sha256: Option<String>,
}

/// `[limits]`: all three mandatory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LimitsSection {
    /// Total linear memory of one instance, in bytes.
    pub memory_bytes: u64,
    /// Fuel for one call.
    pub fuel: u64,
    /// Wall-clock time for one call.
    pub timeout: Duration,
    /// Live host resources one instance may hold at once (`host_resources`, optional;
    /// default `DEFAULT_MAX_HOST_RESOURCES`).
    pub host_resources: Option<u64>,
    /// The host memory kept on one instance's behalf (`host_memory`, optional; default
    /// the memory limit; see `ResourceLimits::host_memory_bytes`).
    pub host_memory_bytes: Option<u64>,
}

/// `[capabilities]`, with host paths as written (relative to the manifest).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CapabilitiesSection {
    /// The guest's stdout.
    pub stdout: StdioMode,
    /// The guest's stderr.
    pub stderr: StdioMode,
    /// The guest's stdin.
    pub stdin: StdioMode,
    /// Environment grants, in order.
    pub env: Vec<EnvGrant>,
    /// Preopened directories, host paths as written.
    pub filesystem: Vec<FilesystemEntry>,
    /// Network access; `None` is none at all.
    pub network: Option<NetworkGrant>,
    /// Host interfaces granted (`interfaces = ["acme:plugins/log", …]`), each with
    /// the file, line and column it was written at as its origin.
    pub interfaces: Vec<InterfaceGrant>,
    /// `[capabilities.keyvalue]`: the buckets the component may open and the bytes
    /// each may hold; `None` is none.
    pub keyvalue: Option<KeyValueGrant>,
    /// `[capabilities.http]`: the hosts the component may send requests to.
    pub http: Option<HttpGrant>,
}

/// One `[[capabilities.filesystem]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FilesystemEntry {
    /// The host directory as written (relative to the manifest, or absolute).
    pub host: String,
    /// The absolute path the guest sees.
    pub guest: String,
    /// `read-only` or `read-write`.
    pub access: DirAccess,
}

impl ComponentManifest {
    /// Reads `path`: a `Component.toml` file, or a directory holding one.
    ///
    /// # Errors
    ///
    /// [`ManifestError`] with kind `Io` if there is no such file, otherwise as
    /// [`parse`](Self::parse).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ManifestError> {
        let path = path.as_ref();
        if path.is_dir() {
            Self::from_dir(path)
        } else {
            Self::from_file(path)
        }
    }

    /// Reads the `Component.toml` inside `dir`.
    ///
    /// # Errors
    ///
    /// As [`from_file`](Self::from_file).
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, ManifestError> {
        Self::from_file(dir.as_ref().join(MANIFEST_FILE))
    }

    /// Reads and parses a manifest file.
    ///
    /// # Errors
    ///
    /// [`ManifestError`] with kind `Io` when the file cannot be read, otherwise as
    /// [`parse`](Self::parse).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ManifestError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ManifestError {
            kind: ManifestErrorKind::Io,
            file: path.to_owned(),
            line: 1,
            column: 1,
            key: None,
            message: format!("cannot read the manifest: {e}"),
            help: (e.kind() == std::io::ErrorKind::NotFound)
                .then(|| format!("a component directory holds its manifest as `{MANIFEST_FILE}`")),
        })?;
        Self::parse(&text, path)
    }

    /// Parses manifest text. `file` is the manifest's path: it names the file in
    /// messages, and relative paths in the manifest are resolved against its directory.
    ///
    /// # Errors
    ///
    /// The first problem found, as a [`ManifestError`] with line and column.
    pub fn parse(text: &str, file: impl AsRef<Path>) -> Result<Self, ManifestError> {
        let doc = crate::parse::Doc {
            text,
            file: file.as_ref(),
        };
        doc.parse()
    }

    /// The directory relative paths are resolved against.
    pub fn base_dir(&self) -> PathBuf {
        match self.file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        }
    }

    /// The component's name.
    pub fn name(&self) -> &str {
        &self.component.name
    }

    /// The component file, resolved against the manifest's directory.
    pub fn component_path(&self) -> PathBuf {
        self.base_dir().join(&self.component.path)
    }

    /// The limits as [`ResourceLimits`].
    ///
    /// # Errors
    ///
    /// None in practice: the values were range-checked while parsing.
    pub fn resource_limits(&self) -> WasmResult<ResourceLimits> {
        self.partial_limits().resolve()
    }

    /// The limits, for overriding some of them (with command-line flags) before
    /// resolving.
    pub fn partial_limits(&self) -> PartialResourceLimits {
        PartialResourceLimits {
            memory_bytes: Some(self.limits.memory_bytes),
            fuel: Some(self.limits.fuel),
            timeout: Some(self.limits.timeout),
            max_host_resources: self.limits.host_resources,
            host_memory_bytes: self.limits.host_memory_bytes,
        }
    }

    /// The capabilities as a [`CapabilitySet`], host paths resolved against the
    /// manifest's directory. Without `[capabilities]`: stdout and stderr only. A
    /// `[config]` table grants `wasi:config/store` (both versions).
    pub fn capability_set(&self) -> CapabilitySet {
        let mut caps = self.declared_capabilities();
        if let Some(config) = &self.config {
            caps.interfaces.push(InterfaceGrant::every_version(
                WASI_CONFIG_STORE,
                config.origin.clone(),
            ));
        }
        caps
    }

    /// The configuration of `[config]` (empty without the table), with `{ env = … }`
    /// values read from the host's environment now.
    ///
    /// # Errors
    ///
    /// [`ManifestError`] of kind `UnsetVariable`, at the value, naming the key and the
    /// variable, when a variable is not set or not text.
    pub fn config_values(
        &self,
    ) -> Result<std::collections::BTreeMap<String, String>, ManifestError> {
        self.config_values_overridden(&[])
    }

    /// As [`config_values`](Self::config_values), with `overrides` (`run --config
    /// KEY=VALUE`) replacing or adding values; an overridden key's environment
    /// variable is not read.
    ///
    /// # Errors
    ///
    /// As [`config_values`](Self::config_values), for keys not overridden.
    pub fn config_values_overridden(
        &self,
        overrides: &[(String, String)],
    ) -> Result<std::collections::BTreeMap<String, String>, ManifestError> {
        let mut values = std::collections::BTreeMap::new();
        for e in self.config.iter().flat_map(|c| &c.entries) {
            if overrides.iter().any(|(k, _)| *k == e.key) {
                continue;
            }
            let value = match &e.value {
                ConfigValue::Text(t) => t.clone(),
                ConfigValue::Env(var) => std::env::var(var).map_err(|err| ManifestError {
                    kind: ManifestErrorKind::UnsetVariable,
                    file: self.file.clone(),
                    line: e.line,
                    column: e.column,
                    key: Some(format!("config.{}", e.key)),
                    message: format!(
                        "`{}` is read from the environment variable `{var}`, which is {}",
                        e.key,
                        match err {
                            std::env::VarError::NotPresent => "not set",
                            std::env::VarError::NotUnicode(_) => "not text",
                        }
                    ),
                    help: Some(format!(
                        "set {var} before starting, or give `{}` a value (run --config {}=VALUE)",
                        e.key, e.key
                    )),
                })?,
            };
            values.insert(e.key.clone(), value);
        }
        values.extend(overrides.iter().cloned());
        Ok(values)
    }

    fn declared_capabilities(&self) -> CapabilitySet {
        let Some(c) = &self.capabilities else {
            return CapabilitySet::default();
        };
        let base = self.base_dir();
        CapabilitySet {
            stdout: c.stdout,
            stderr: c.stderr,
            stdin: c.stdin,
            env: c.env.clone(),
            filesystem: c
                .filesystem
                .iter()
                .map(|f| DirGrant {
                    host: base.join(&f.host),
                    guest: f.guest.clone(),
                    access: f.access,
                })
                .collect(),
            network: c.network.clone(),
            interfaces: c.interfaces.clone(),
            keyvalue: c.keyvalue.clone(),
            http: c.http.clone(),
        }
    }

    /// The manifest as TOML text; parsing it back gives an equal manifest.
    ///
    /// # Errors
    ///
    /// A message if TOML serialization fails (it does not for values this type holds).
    pub fn to_toml(&self) -> Result<String, String> {
        crate::write::to_toml(self)
    }
}
