//! `[capabilities]`: one row per key — its name, how it is read from the file (every
//! error at its line and column) into the [`CapabilitySet`], and how it is written back —
//! over the grant types of `airssys_wasm_core`, whose `Display` is how they are
//! described (`airssys-wasm inspect`). The keys a manifest may use are the rows'.
//!
//! Adding a grant: its type and field in `airssys_wasm_core::CapabilitySet`, one row
//! here, and its use in the engine.

use std::path::{Component as PathComponent, Path, PathBuf};

use toml::de::{DeTable, DeValue};

use airssys_wasm_core::keyvalue::{DEFAULT_BUCKET, check_bucket_name, check_max_bytes};
use airssys_wasm_core::units::format_memory_size;
use airssys_wasm_core::{
    CapabilitySet, ConnectRule, DirAccess, DirGrant, EnvGrant, HttpGrant, InterfaceGrant,
    KeyValueGrant, NetworkGrant, OutboundRule, StdioMode,
};

use crate::doc::{Doc, Invalid, PResult, Value, suggest};
use crate::error::ManifestErrorKind;

/// One key of `[capabilities]`.
pub(crate) struct Grant {
    /// The key.
    pub(crate) key: &'static str,
    /// Reads it (present or not) from the table into the set.
    read: fn(&Doc<'_>, &DeTable<'_>, &mut CapabilitySet) -> PResult<()>,
    /// Its value in the file, unless it is absent.
    write: fn(&CapabilitySet) -> Option<toml::Value>,
}

/// The table `[capabilities]`.
const T: &str = "capabilities";

/// Every key of `[capabilities]`, in the order they are read, written and listed.
pub(crate) const GRANTS: &[Grant] = &[
    Grant {
        key: "stdout",
        read: |doc, t, caps| {
            caps.stdout = stdio(doc, t, "stdout", StdioMode::Inherit)?;
            Ok(())
        },
        write: |caps| Some(caps.stdout.as_str().into()),
    },
    Grant {
        key: "stderr",
        read: |doc, t, caps| {
            caps.stderr = stdio(doc, t, "stderr", StdioMode::Inherit)?;
            Ok(())
        },
        write: |caps| Some(caps.stderr.as_str().into()),
    },
    Grant {
        key: "stdin",
        read: |doc, t, caps| {
            caps.stdin = stdio(doc, t, "stdin", StdioMode::Null)?;
            Ok(())
        },
        write: |caps| Some(caps.stdin.as_str().into()),
    },
    Grant {
        key: "env",
        read: |doc, t, caps| {
            caps.env = doc.strings(t, "env", "capabilities.env", read_env, |earlier, e| {
                earlier.iter().any(|x| x.name == e.name).then(|| {
                    (
                        format!("`{}` is granted twice", e.name),
                        "keep one entry per variable".into(),
                    )
                })
            })?;
            Ok(())
        },
        write: |caps| {
            Some(strings(caps.env.iter().map(|e| match &e.value {
                Some(v) => format!("{}={v}", e.name),
                None => e.name.clone(),
            })))
        },
    },
    Grant {
        key: "filesystem",
        read: |doc, t, caps| {
            caps.filesystem = doc.list(
                t,
                "filesystem",
                "capabilities.filesystem",
                "an array of tables ([[capabilities.filesystem]])",
                "capabilities.filesystem.guest",
                |earlier: &[DirGrant], d: &DirGrant| {
                    earlier.iter().any(|x| x.guest == d.guest).then(|| {
                        (
                            format!("two directories are preopened at `{}`", d.guest),
                            "give each preopen its own guest path".into(),
                        )
                    })
                },
                |item| read_dir(doc, item),
            )?;
            Ok(())
        },
        write: |caps| {
            let dirs = caps.filesystem.iter().map(|d| {
                let mut t = toml::Table::new();
                t.insert("host".into(), d.host.to_string_lossy().into_owned().into());
                t.insert("guest".into(), d.guest.clone().into());
                t.insert("access".into(), d.access.as_str().into());
                toml::Value::Table(t)
            });
            Some(toml::Value::Array(dirs.collect()))
        },
    },
    Grant {
        key: "network",
        read: |doc, t, caps| {
            if let Some((_, n)) = doc.table(t, "network", Some(T))? {
                caps.network = Some(read_network(doc, n)?);
            }
            Ok(())
        },
        write: |caps| {
            let n = caps.network.as_ref()?;
            let mut t = toml::Table::new();
            t.insert(
                "connect".into(),
                strings(n.connect.iter().map(ToString::to_string)),
            );
            t.insert("dns".into(), n.dns.into());
            Some(toml::Value::Table(t))
        },
    },
    Grant {
        key: "interfaces",
        read: |doc, t, caps| {
            caps.interfaces = doc.strings(
                t,
                "interfaces",
                "capabilities.interfaces",
                |s, span| {
                    InterfaceGrant::parse(s)
                        .map(|g| g.with_origin(doc.origin(&span)))
                        .map_err(|e| (e, None))
                },
                |earlier, g| {
                    let e = earlier.iter().find(|e| e.name == g.name)?;
                    Some((
                        format!("`{}` is granted twice (also as `{e}`)", g.name),
                        "keep one entry per interface: a version grants every compatible \
                         version, no version grants all"
                            .into(),
                    ))
                },
            )?;
            Ok(())
        },
        write: |caps| {
            (!caps.interfaces.is_empty())
                .then(|| strings(caps.interfaces.iter().map(ToString::to_string)))
        },
    },
    Grant {
        key: "keyvalue",
        read: |doc, t, caps| {
            if let Some((span, k)) = doc.table(t, "keyvalue", Some(T))? {
                caps.keyvalue = Some(read_keyvalue(doc, span, k)?);
            }
            Ok(())
        },
        write: |caps| {
            let k = caps.keyvalue.as_ref()?;
            let mut t = toml::Table::new();
            t.insert("buckets".into(), strings(k.buckets.iter().cloned()));
            t.insert("max_bytes".into(), format_memory_size(k.max_bytes).into());
            Some(toml::Value::Table(t))
        },
    },
    Grant {
        key: "http",
        read: |doc, t, caps| {
            if let Some((_, h)) = doc.table(t, "http", Some(T))? {
                doc.check_keys(h, &["outbound"], Some("capabilities.http"))?;
                let outbound = doc.strings(
                    h,
                    "outbound",
                    "capabilities.http.outbound",
                    |s, _| OutboundRule::parse(s).map_err(|e| (e, None)),
                    |_, _| None,
                )?;
                caps.http = Some(HttpGrant { outbound });
            }
            Ok(())
        },
        write: |caps| {
            let h = caps.http.as_ref()?;
            let mut t = toml::Table::new();
            t.insert(
                "outbound".into(),
                strings(h.outbound.iter().map(ToString::to_string)),
            );
            Some(toml::Value::Table(t))
        },
    },
];

/// `[capabilities]` as a [`CapabilitySet`], host paths as written (relative to the
/// manifest).
pub(crate) fn read(doc: &Doc<'_>, t: &DeTable<'_>) -> PResult<CapabilitySet> {
    let keys: Vec<&str> = GRANTS.iter().map(|g| g.key).collect();
    doc.check_keys(t, &keys, Some(T))?;
    let mut caps = CapabilitySet::default();
    for grant in GRANTS {
        (grant.read)(doc, t, &mut caps)?;
    }
    Ok(caps)
}

/// `[capabilities]` as TOML, key by key in [`GRANTS`]' order.
pub(crate) fn write(caps: &CapabilitySet) -> Vec<(&'static str, toml::Value)> {
    GRANTS
        .iter()
        .filter_map(|g| Some((g.key, (g.write)(caps)?)))
        .collect()
}

fn strings(items: impl Iterator<Item = String>) -> toml::Value {
    toml::Value::Array(items.map(toml::Value::String).collect())
}

fn stdio(doc: &Doc<'_>, t: &DeTable<'_>, key: &str, default: StdioMode) -> PResult<StdioMode> {
    let Some(v) = Doc::get(t, key) else {
        return Ok(default);
    };
    let dotted_key = format!("capabilities.{key}");
    match doc.string(v, &dotted_key)? {
        "inherit" => Ok(StdioMode::Inherit),
        "null" => Ok(StdioMode::Null),
        other => Err(doc.invalid(
            v.span(),
            &dotted_key,
            format!("`{other}` is not a mode for {key}"),
            Some("use \"inherit\" (the host's stream) or \"null\" (nothing)".into()),
        )),
    }
}

/// `NAME` (the host's value passes through) or `NAME=VALUE`.
fn read_env(s: &str, _: std::ops::Range<usize>) -> Result<EnvGrant, Invalid> {
    let (name, value) = match s.split_once('=') {
        Some((n, val)) => (n, Some(val.to_owned())),
        None => (s, None),
    };
    if name.is_empty() || name.contains('\0') || value.as_deref().is_some_and(|v| v.contains('\0'))
    {
        return Err((
            format!("`{s}` is not an environment entry"),
            Some("write NAME to pass the host's value through, or NAME=VALUE to set it".into()),
        ));
    }
    Ok(EnvGrant {
        name: name.to_owned(),
        value,
    })
}

/// One `[[capabilities.filesystem]]`: an existing host directory (as written, checked
/// relative to the manifest), an absolute guest path, an access mode.
fn read_dir(doc: &Doc<'_>, item: &Value<'_>) -> PResult<DirGrant> {
    const T: &str = "capabilities.filesystem";
    let DeValue::Table(t) = item.get_ref() else {
        return Err(doc.wrong_type(
            item.span(),
            T,
            "a table with host, guest and access",
            item.get_ref(),
        ));
    };
    doc.check_keys(t, &["host", "guest", "access"], Some(T))?;
    let host_v = Doc::get(t, "host")
        .ok_or_else(|| doc.missing(item.span(), T, "host", "", "host = \"./data\""))?;
    let host = doc.string(host_v, "capabilities.filesystem.host")?;
    let resolved = doc.base_dir().join(host);
    if !resolved.is_dir() {
        return Err(doc.error(
            host_v.span(),
            ManifestErrorKind::MissingDirectory,
            Some("capabilities.filesystem.host"),
            format!(
                "the host directory `{host}` does not exist or is not a directory (looked for {})",
                resolved.display()
            ),
            Some("create it, or correct `host` (it is relative to this manifest)".into()),
        ));
    }
    let guest_v = Doc::get(t, "guest")
        .ok_or_else(|| doc.missing(item.span(), T, "guest", "", "guest = \"/data\""))?;
    let guest = doc.string(guest_v, "capabilities.filesystem.guest")?;
    if !guest.starts_with('/')
        || Path::new(guest)
            .components()
            .any(|c| c == PathComponent::ParentDir)
    {
        return Err(doc.invalid(
            guest_v.span(),
            "capabilities.filesystem.guest",
            format!("`{guest}` is not an absolute guest path"),
            Some(
                "write the path the guest sees, starting with '/' and without '..', e.g. \"/data\""
                    .into(),
            ),
        ));
    }
    let access = match Doc::get(t, "access") {
        None => DirAccess::ReadOnly,
        Some(v) => match doc.string(v, "capabilities.filesystem.access")? {
            "read-only" => DirAccess::ReadOnly,
            "read-write" => DirAccess::ReadWrite,
            other => {
                return Err(doc.invalid(
                    v.span(),
                    "capabilities.filesystem.access",
                    format!("`{other}` is not an access mode"),
                    Some(match suggest(other, &["read-only", "read-write"]) {
                        Some(s) => {
                            format!("did you mean \"{s}\"? Use \"read-only\" or \"read-write\"")
                        }
                        None => "use \"read-only\" or \"read-write\"".into(),
                    }),
                ));
            }
        },
    };
    Ok(DirGrant {
        host: PathBuf::from(host),
        guest: guest.to_owned(),
        access,
    })
}

/// `[capabilities.network]`: the addresses the component may connect to, and DNS.
fn read_network(doc: &Doc<'_>, t: &DeTable<'_>) -> PResult<NetworkGrant> {
    const T: &str = "capabilities.network";
    doc.check_keys(t, &["connect", "dns"], Some(T))?;
    let connect = doc.strings(
        t,
        "connect",
        "capabilities.network.connect",
        |s, _| ConnectRule::parse(s).map_err(|e| (e, None)),
        |_, _| None,
    )?;
    let dns = match Doc::get(t, "dns") {
        None => false,
        Some(v) => match v.get_ref() {
            DeValue::Boolean(b) => *b,
            other => {
                return Err(doc.wrong_type(
                    v.span(),
                    "capabilities.network.dns",
                    "true or false",
                    other,
                ));
            }
        },
    };
    Ok(NetworkGrant { connect, dns })
}

/// `[capabilities.keyvalue]`: the buckets (each once; `""` is `"default"`) and the
/// bytes each may hold, both mandatory.
fn read_keyvalue(
    doc: &Doc<'_>,
    span: std::ops::Range<usize>,
    t: &DeTable<'_>,
) -> PResult<KeyValueGrant> {
    const T: &str = "capabilities.keyvalue";
    doc.check_keys(t, &["buckets", "max_bytes"], Some(T))?;
    if Doc::get(t, "buckets").is_none() {
        return Err(doc.missing(
            span,
            T,
            "buckets",
            "; name the buckets the component may open",
            "buckets = [\"default\"]",
        ));
    }
    let buckets = doc.strings(
        t,
        "buckets",
        "capabilities.keyvalue.buckets",
        |s, _| {
            let name = if s.is_empty() { DEFAULT_BUCKET } else { s };
            check_bucket_name(name).map_err(|e| (e, None))?;
            Ok(name.to_owned())
        },
        |earlier, name| {
            earlier.contains(name).then(|| {
                (
                    format!(
                        "bucket `{name}` is granted twice (\"\" and \"default\" are the same bucket)"
                    ),
                    "keep one entry per bucket".into(),
                )
            })
        },
    )?;
    let max_v = Doc::get(t, "max_bytes").ok_or_else(|| {
        doc.missing(
            span,
            T,
            "max_bytes",
            "; a key-value grant must bound what each bucket holds",
            "max_bytes = \"1MiB\"",
        )
    })?;
    let max_bytes = doc.size(max_v, "capabilities.keyvalue.max_bytes", "1MiB")?;
    check_max_bytes(max_bytes)
        .map_err(|e| doc.invalid(max_v.span(), "capabilities.keyvalue.max_bytes", e, None))?;
    // Names and bound checked above, each at its own line and column.
    Ok(KeyValueGrant { buckets, max_bytes })
}
