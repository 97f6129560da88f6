//! Reading `Component.toml` ([`ComponentManifest::load`], [`ComponentManifest::parse`]):
//! a walk over the spanned document (`doc.rs`), section by section — `[component]`,
//! `[limits]`, `[capabilities]` (key by key, in `grants.rs`), `[config]`, `[actor]`
//! (`actor.rs`) — so that every
//! error has a line and a column, names the key, and says how to fix it.

use std::ops::Range;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use airssys_wasm_core::Proposal;
use airssys_wasm_core::limits::{check_fuel, check_host_memory, check_memory, check_timeout};
use airssys_wasm_core::units::parse_duration;

use crate::doc::{Doc, PResult, suggest};
use crate::error::{ManifestError, ManifestErrorKind, line_col};
use crate::grants;
use crate::manifest::{
    ComponentManifest, ComponentSection, ConfigEntry, ConfigSection, ConfigValue, LimitsSection,
    MANIFEST_FILE,
};

const TOP_KEYS: &[&str] = &["component", "limits", "capabilities", "config", "actor"];
const COMPONENT_KEYS: &[&str] = &[
    "name",
    "version",
    "description",
    "path",
    "proposals",
    "sha256",
];
const LIMITS_KEYS: &[&str] = &["memory", "fuel", "timeout", "host_resources", "host_memory"];

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
        manifest(&Doc {
            text,
            file: file.as_ref(),
        })
    }
}

fn manifest(doc: &Doc<'_>) -> PResult<ComponentManifest> {
    let root = DeTable::parse(doc.text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        doc.error(
            span,
            ManifestErrorKind::Syntax,
            None,
            format!("invalid TOML: {}", e.message().trim()),
            None,
        )
    })?;
    let root_span = root.span();
    let root = root.get_ref();
    doc.check_keys(root, TOP_KEYS, None)?;

    let (component_span, component) = doc.table(root, "component", None)?.ok_or_else(|| {
        doc.error(
            root_span.start..root_span.start,
            ManifestErrorKind::MissingKey,
            Some("component"),
            "there is no [component] table".into(),
            Some("add [component] with name = \"...\" and path = \"....wasm\"".into()),
        )
    })?;
    let component = component_section(doc, component_span, component)?;

    let (limits_span, limits) = doc.table(root, "limits", None)?.ok_or_else(|| {
        doc.error(
            root_span.start..root_span.start,
            ManifestErrorKind::MissingKey,
            Some("limits"),
            "there is no [limits] table; memory limits are mandatory".into(),
            Some(
                "add [limits] with memory = \"4MiB\", fuel = 10_000_000 and timeout = \"500ms\""
                    .into(),
            ),
        )
    })?;
    let limits = limits_section(doc, limits_span, limits)?;

    let capabilities = match doc.table(root, "capabilities", None)? {
        Some((_, caps)) => Some(grants::read(doc, caps)?),
        None => None,
    };

    let config = match doc.table(root, "config", None)? {
        Some((span, t)) => Some(config_section(doc, span, t)?),
        None => None,
    };

    let actor = match doc.table(root, "actor", None)? {
        Some((span, t)) => Some(crate::actor::read(doc, span, t)?),
        None => None,
    };

    Ok(ComponentManifest {
        file: doc.file.to_owned(),
        component,
        limits,
        capabilities,
        config,
        actor,
    })
}

fn component_section(
    doc: &Doc<'_>,
    span: Range<usize>,
    t: &DeTable<'_>,
) -> PResult<ComponentSection> {
    const T: &str = "component";
    doc.check_keys(t, COMPONENT_KEYS, Some(T))?;

    let name_v = Doc::get(t, "name")
        .ok_or_else(|| doc.missing(span.clone(), T, "name", "", "name = \"my-component\""))?;
    let name = doc.string(name_v, "component.name")?;
    if !valid_name(name) {
        return Err(doc.invalid(
            name_v.span(),
            "component.name",
            format!("`{name}` is not a valid component name"),
            Some("use lowercase letters, digits and '-', starting with a letter, e.g. \"hello-world\"".into()),
        ));
    }

    let version = match Doc::get(t, "version") {
        None => None,
        Some(v) => {
            let s = doc.string(v, "component.version")?;
            Some(semver::Version::parse(s).map_err(|e| {
                doc.invalid(
                    v.span(),
                    "component.version",
                    format!("`{s}` is not a semantic version ({e})"),
                    Some("write MAJOR.MINOR.PATCH, e.g. \"0.1.0\"".into()),
                )
            })?)
        }
    };

    let description = Doc::get(t, "description")
        .map(|v| doc.string(v, "component.description").map(str::to_owned))
        .transpose()?;

    let path_v = Doc::get(t, "path")
        .ok_or_else(|| doc.missing(span, T, "path", "", "path = \"my-component.wasm\""))?;
    let path = doc.string(path_v, "component.path")?;
    if !(path.ends_with(".wasm") || path.ends_with(".wat")) {
        return Err(doc.invalid(
            path_v.span(),
            "component.path",
            format!("`{path}` is neither a .wasm nor a .wat file"),
            Some("point `path` at the component binary (.wasm) or its text (.wat)".into()),
        ));
    }
    let resolved = doc.base_dir().join(path);
    if !resolved.is_file() {
        return Err(doc.error(
            path_v.span(),
            ManifestErrorKind::MissingComponent,
            Some("component.path"),
            format!(
                "the component file `{path}` does not exist (looked for {})",
                resolved.display()
            ),
            Some(
                "build the component first, or correct `path` (it is relative to this manifest)"
                    .into(),
            ),
        ));
    }

    let proposals = proposals(doc, t)?;

    let sha256 = match Doc::get(t, "sha256") {
        None => None,
        Some(v) => {
            let hex = doc.string(v, "component.sha256")?;
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(doc.invalid(
                    v.span(),
                    "component.sha256",
                    format!("`{hex}` is not a SHA-256 digest: write its 64 hexadecimal digits"),
                    Some(
                        "`airssys-wasm inspect` prints the component's digest (as does \
                         `sha256sum`)"
                            .into(),
                    ),
                ));
            }
            Some(hex.to_ascii_lowercase())
        }
    };

    Ok(ComponentSection {
        name: name.to_owned(),
        version,
        description,
        path: path.to_owned(),
        proposals,
        sha256,
    })
}

/// `[component] proposals`: names as Wasmtime's `-W` spells them.
fn proposals(doc: &Doc<'_>, t: &DeTable<'_>) -> PResult<Vec<Proposal>> {
    const KEY: &str = "component.proposals";
    let items = doc.array(t, "proposals", KEY, "an array of proposal names")?;
    let mut out = Vec::new();
    for item in items {
        let name = doc.string(item, KEY)?;
        let proposal = name.parse::<Proposal>().map_err(|e| {
            let names: Vec<&str> = Proposal::ALL.iter().map(|p| p.name()).collect();
            let help = if name.contains("threads") {
                "remove it: build the component without threads".to_owned()
            } else {
                match suggest(name, &names) {
                    Some(near) => format!("did you mean \"{near}\"?"),
                    None => format!("known proposals: {}", names.join(", ")),
                }
            };
            let message = if name.contains("threads") {
                e.to_string()
            } else {
                format!("unknown proposal `{name}`")
            };
            doc.invalid(item.span(), KEY, message, Some(help))
        })?;
        if !out.contains(&proposal) {
            out.push(proposal);
        }
    }
    Ok(out)
}

fn limits_section(doc: &Doc<'_>, span: Range<usize>, t: &DeTable<'_>) -> PResult<LimitsSection> {
    const T: &str = "limits";
    doc.check_keys(t, LIMITS_KEYS, Some(T))?;

    let mem_v = Doc::get(t, "memory").ok_or_else(|| {
        doc.missing(
            span.clone(),
            T,
            "memory",
            "; memory limits are mandatory",
            "memory = \"4MiB\"",
        )
    })?;
    let memory_bytes = doc.size(mem_v, "limits.memory", "4MiB")?;
    check_memory(memory_bytes).map_err(|e| {
        doc.invalid(
            mem_v.span(),
            "limits.memory",
            e,
            Some(
                "typical components need 512KiB to 4MiB; Python or JavaScript ones tens of MiB"
                    .into(),
            ),
        )
    })?;

    let fuel_v = Doc::get(t, "fuel").ok_or_else(|| {
        doc.missing(
            span.clone(),
            T,
            "fuel",
            "; CPU limits (fuel and timeout) are mandatory",
            "fuel = 10_000_000",
        )
    })?;
    let fuel = match fuel_v.get_ref() {
        DeValue::Integer(i) => doc.unsigned(fuel_v.span(), "limits.fuel", i.as_str(), i.radix())?,
        other => {
            return Err(doc.wrong_type(
                fuel_v.span(),
                "limits.fuel",
                "a whole number (e.g. fuel = 10_000_000)",
                other,
            ));
        }
    };
    check_fuel(fuel).map_err(|e| doc.invalid(fuel_v.span(), "limits.fuel", e, None))?;

    let timeout_v = Doc::get(t, "timeout").ok_or_else(|| {
        doc.missing(
            span,
            T,
            "timeout",
            "; CPU limits (fuel and timeout) are mandatory",
            "timeout = \"500ms\"",
        )
    })?;
    let timeout = match timeout_v.get_ref() {
        DeValue::String(s) => parse_duration(s)
            .map_err(|e| doc.invalid(timeout_v.span(), "limits.timeout", e, None))?,
        other => {
            return Err(doc.wrong_type(
                timeout_v.span(),
                "limits.timeout",
                "a duration string with a unit (e.g. timeout = \"500ms\")",
                other,
            ));
        }
    };
    check_timeout(timeout).map_err(|e| doc.invalid(timeout_v.span(), "limits.timeout", e, None))?;

    let host_resources = match Doc::get(t, "host_resources") {
        None => None,
        Some(v) => match v.get_ref() {
            DeValue::Integer(i) => {
                Some(doc.unsigned(v.span(), "limits.host_resources", i.as_str(), i.radix())?)
            }
            other => {
                return Err(doc.wrong_type(
                    v.span(),
                    "limits.host_resources",
                    "a whole number (e.g. host_resources = 1000)",
                    other,
                ));
            }
        },
    };

    let host_memory_bytes = match Doc::get(t, "host_memory") {
        None => None,
        Some(v) => {
            let bytes = doc.size(v, "limits.host_memory", "16MiB")?;
            check_host_memory(bytes)
                .map_err(|e| doc.invalid(v.span(), "limits.host_memory", e, None))?;
            Some(bytes)
        }
    };

    Ok(LimitsSection {
        memory_bytes,
        fuel,
        timeout,
        host_resources,
        host_memory_bytes,
    })
}

fn config_section(doc: &Doc<'_>, span: Range<usize>, t: &DeTable<'_>) -> PResult<ConfigSection> {
    let mut entries = Vec::new();
    // In the file's order (the parsed table is sorted by key).
    let mut items: Vec<_> = t.iter().collect();
    items.sort_by_key(|(key, _)| key.span().start);
    for (key, value) in items {
        let k = key.get_ref().as_ref();
        let dotted_key = format!("config.{k}");
        let (line, column) = line_col(doc.text, value.span().start);
        let expected = "a string, or { env = \"VARIABLE\" } to read the host's environment";
        let v = match value.get_ref() {
            DeValue::String(s) => ConfigValue::Text(s.as_ref().to_owned()),
            DeValue::Table(inner) => {
                let var = match (inner.len(), Doc::get(inner, "env").map(Spanned::get_ref)) {
                    (1, Some(DeValue::String(var))) if !var.is_empty() => var.as_ref(),
                    _ => {
                        return Err(doc.invalid(
                            value.span(),
                            &dotted_key,
                            format!("`{k}` must be {expected}"),
                            Some("write e.g. api_token = { env = \"API_TOKEN\" }".into()),
                        ));
                    }
                };
                ConfigValue::Env(var.to_owned())
            }
            other => {
                return Err(doc.wrong_type(value.span(), &dotted_key, expected, other));
            }
        };
        entries.push(ConfigEntry {
            key: k.to_owned(),
            value: v,
            line,
            column,
        });
    }
    let (line, column) = line_col(doc.text, span.start);
    Ok(ConfigSection {
        entries,
        origin: format!("{}:{line}:{column}", doc.file.display()),
    })
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_typos_only() {
        assert_eq!(suggest("memroy", LIMITS_KEYS), Some("memory"));
        assert_eq!(suggest("fule", LIMITS_KEYS), Some("fuel"));
        assert_eq!(suggest("timout", LIMITS_KEYS), Some("timeout"));
        assert_eq!(suggest("bananas", LIMITS_KEYS), None);
    }

    #[test]
    fn names() {
        for ok in ["a", "hello", "hello-world-2"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "Hello", "2go", "-x", "snake_case", "héllo"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
