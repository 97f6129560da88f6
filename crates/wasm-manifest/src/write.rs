//! The manifest as TOML text ([`ComponentManifest::to_toml`]): serde types mirroring
//! the file's layout, in the canonical spelling (sizes in the largest exact unit);
//! `[capabilities]` key by key as `grants.rs` writes them.

use serde::Serialize;

use airssys_wasm_core::CapabilitySet;
use airssys_wasm_core::units::{format_duration, format_memory_size as canonical_size};

use crate::grants;
use crate::manifest::{ComponentManifest, ConfigEntry, ConfigValue};

impl ComponentManifest {
    /// The manifest as TOML text; parsing it back gives an equal manifest.
    ///
    /// # Errors
    ///
    /// A message if TOML serialization fails (it does not for values this type holds).
    pub fn to_toml(&self) -> Result<String, String> {
        to_toml(self)
    }
}

fn to_toml(m: &ComponentManifest) -> Result<String, String> {
    let out = Out {
        component: OutComponent {
            name: &m.component.name,
            version: m.component.version.as_ref().map(ToString::to_string),
            description: m.component.description.as_deref(),
            path: &m.component.path,
            proposals: m.component.proposals.iter().map(|p| p.name()).collect(),
            sha256: m.component.sha256.as_deref(),
        },
        limits: OutLimits {
            memory: canonical_size(m.limits.memory_bytes),
            fuel: m.limits.fuel,
            timeout: format_duration(m.limits.timeout),
            host_resources: m.limits.host_resources,
            host_memory: m.limits.host_memory_bytes.map(canonical_size),
        },
        capabilities: m.capabilities.as_ref().map(OutCapabilities),
        config: m.config.as_ref().map(|c| OutConfig(&c.entries)),
        actor: m.actor.as_ref().map(crate::actor::write),
    };
    toml::to_string(&out).map_err(|e| e.to_string())
}

#[derive(Serialize)]
struct Out<'a> {
    component: OutComponent<'a>,
    limits: OutLimits,
    #[serde(skip_serializing_if = "Option::is_none")]
    capabilities: Option<OutCapabilities<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<OutConfig<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actor: Option<toml::Table>,
}

/// `[config]`, in order.
struct OutConfig<'a>(&'a [ConfigEntry]);

impl Serialize for OutConfig<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(untagged)]
        enum V<'v> {
            Text(&'v str),
            Env { env: &'v str },
        }
        s.collect_map(self.0.iter().map(|e| {
            let v = match &e.value {
                ConfigValue::Text(t) => V::Text(t),
                ConfigValue::Env(var) => V::Env { env: var },
            };
            (e.key.as_str(), v)
        }))
    }
}

#[derive(Serialize)]
struct OutComponent<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    path: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    proposals: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<&'a str>,
}

#[derive(Serialize)]
struct OutLimits {
    memory: String,
    fuel: u64,
    timeout: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    host_resources: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host_memory: Option<String>,
}

/// `[capabilities]`, key by key as [`grants::write`] gives them, the plain values
/// before the tables (as TOML wants them).
struct OutCapabilities<'a>(&'a CapabilitySet);

impl Serialize for OutCapabilities<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut entries = grants::write(self.0);
        entries.sort_by_key(|(_, v)| is_table(v));
        s.collect_map(entries)
    }
}

/// Whether TOML writes `v` as a table (or an array of tables) after the plain values.
fn is_table(v: &toml::Value) -> bool {
    match v {
        toml::Value::Table(_) => true,
        toml::Value::Array(items) => items.first().is_some_and(toml::Value::is_table),
        _ => false,
    }
}
