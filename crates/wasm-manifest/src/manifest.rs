//! [`ComponentManifest`]: the checked contents of a `Component.toml` and what they
//! resolve to (limits, capabilities, configuration). Reading it is in `parse.rs`
//! (`[capabilities]` in `grants.rs`), writing it back to TOML in `write.rs`.

use std::path::PathBuf;
use std::time::Duration;

use airssys_wasm_core::{
    CapabilitySet, PartialResourceLimits, Proposal, ResourceLimits, WasmResult,
};

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
    ///
    /// Host directories are as written (relative to the manifest, or absolute):
    /// [`capability_set`](Self::capability_set) resolves them.
    pub capabilities: Option<CapabilitySet>,
    /// `[config]`: what the component reads through `wasi:config/store`; `None` when the
    /// manifest has none (then `wasi:config` is not granted).
    pub config: Option<ConfigSection>,
    /// `[actor]`: the grants and mailbox of a component that runs as an actor; `None`
    /// when the manifest has none (then it may message no one).
    pub actor: Option<crate::actor::ActorSection>,
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

impl ComponentManifest {
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
            caps.grant_config(config.origin.clone());
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

    /// `[capabilities]` with host directories resolved against the manifest's
    /// directory.
    fn declared_capabilities(&self) -> CapabilitySet {
        let Some(c) = &self.capabilities else {
            return CapabilitySet::default();
        };
        let mut caps = c.clone();
        let base = self.base_dir();
        for d in &mut caps.filesystem {
            d.host = base.join(&d.host);
        }
        caps
    }
}
