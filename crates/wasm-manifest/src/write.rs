//! The manifest as TOML text ([`ComponentManifest::to_toml`]): serde types mirroring
//! the file's layout, in the canonical spelling (sizes in the largest exact unit).

use serde::Serialize;

use airssys_wasm_core::units::format_duration;

use crate::manifest::{ComponentManifest, ConfigEntry, ConfigValue};

/// See [`ComponentManifest::to_toml`].
pub(crate) fn to_toml(m: &ComponentManifest) -> Result<String, String> {
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
        capabilities: m.capabilities.as_ref().map(|c| OutCapabilities {
            stdout: c.stdout.as_str(),
            stderr: c.stderr.as_str(),
            stdin: c.stdin.as_str(),
            interfaces: c.interfaces.iter().map(ToString::to_string).collect(),
            env: c
                .env
                .iter()
                .map(|e| match &e.value {
                    Some(v) => format!("{}={v}", e.name),
                    None => e.name.clone(),
                })
                .collect(),
            filesystem: c
                .filesystem
                .iter()
                .map(|f| OutDir {
                    host: &f.host,
                    guest: &f.guest,
                    access: f.access.as_str(),
                })
                .collect(),
            network: c.network.as_ref().map(|n| OutNetwork {
                connect: n.connect.iter().map(ToString::to_string).collect(),
                dns: n.dns,
            }),
            http: c.http.as_ref().map(|h| OutHttp {
                outbound: h.outbound.iter().map(ToString::to_string).collect(),
            }),
            keyvalue: c.keyvalue.as_ref().map(|k| OutKeyValue {
                buckets: &k.buckets,
                max_bytes: canonical_size(k.max_bytes),
            }),
        }),
        config: m.config.as_ref().map(|c| OutConfig(&c.entries)),
    };
    toml::to_string(&out).map_err(|e| e.to_string())
}

/// `4MiB`, `64KiB`, `1GiB`, or bytes.
fn canonical_size(bytes: u64) -> String {
    for (size, unit) in [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")] {
        if bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

#[derive(Serialize)]
struct Out<'a> {
    component: OutComponent<'a>,
    limits: OutLimits,
    #[serde(skip_serializing_if = "Option::is_none")]
    capabilities: Option<OutCapabilities<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<OutConfig<'a>>,
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

#[derive(Serialize)]
struct OutCapabilities<'a> {
    stdout: &'static str,
    stderr: &'static str,
    stdin: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    interfaces: Vec<String>,
    env: Vec<String>,
    filesystem: Vec<OutDir<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    network: Option<OutNetwork>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keyvalue: Option<OutKeyValue<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http: Option<OutHttp>,
}

#[derive(Serialize)]
struct OutHttp {
    outbound: Vec<String>,
}

#[derive(Serialize)]
struct OutKeyValue<'a> {
    buckets: &'a [String],
    max_bytes: String,
}

#[derive(Serialize)]
struct OutDir<'a> {
    host: &'a str,
    guest: &'a str,
    access: &'static str,
}

#[derive(Serialize)]
struct OutNetwork {
    connect: Vec<String>,
    dns: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_sizes() {
        assert_eq!(canonical_size(4 << 20), "4MiB");
        assert_eq!(canonical_size(1 << 30), "1GiB");
        assert_eq!(canonical_size(65536), "64KiB");
        assert_eq!(canonical_size(1_000_001), "1000001");
    }
}
