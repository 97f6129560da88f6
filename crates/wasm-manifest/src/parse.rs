//! The parser of `Component.toml`: a walk over the spanned TOML document, so that every
//! error has a line and a column, names the key, and says how to fix it (with the
//! nearest known key for a typo).

use std::ops::Range;
use std::path::{Component as PathComponent, Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use airssys_wasm_core::keyvalue::{DEFAULT_BUCKET, check_bucket_name, check_max_bytes};
use airssys_wasm_core::limits::{check_fuel, check_host_memory, check_memory, check_timeout};
use airssys_wasm_core::units::{parse_duration, parse_memory_size};
use airssys_wasm_core::{
    ConnectRule, DirAccess, EnvGrant, HttpGrant, InterfaceGrant, KeyValueGrant, NetworkGrant,
    OutboundRule, Proposal, StdioMode,
};

use crate::error::{ManifestError, ManifestErrorKind, line_col};
use crate::manifest::{
    CapabilitiesSection, ComponentManifest, ComponentSection, ConfigEntry, ConfigSection,
    ConfigValue, FilesystemEntry, LimitsSection,
};

type Value<'i> = Spanned<DeValue<'i>>;
type PResult<T> = std::result::Result<T, ManifestError>;

const TOP_KEYS: &[&str] = &["component", "limits", "capabilities", "config"];
const COMPONENT_KEYS: &[&str] = &[
    "name",
    "version",
    "description",
    "path",
    "proposals",
    "sha256",
];
const LIMITS_KEYS: &[&str] = &["memory", "fuel", "timeout", "host_resources", "host_memory"];
const CAPABILITY_KEYS: &[&str] = &[
    "stdout",
    "stderr",
    "stdin",
    "env",
    "filesystem",
    "network",
    "interfaces",
    "keyvalue",
    "http",
];
const FILESYSTEM_KEYS: &[&str] = &["host", "guest", "access"];
const NETWORK_KEYS: &[&str] = &["connect", "dns"];
const KEYVALUE_KEYS: &[&str] = &["buckets", "max_bytes"];
const HTTP_KEYS: &[&str] = &["outbound"];

pub(crate) struct Doc<'t> {
    pub(crate) text: &'t str,
    pub(crate) file: &'t Path,
}

impl Doc<'_> {
    fn error(
        &self,
        span: Range<usize>,
        kind: ManifestErrorKind,
        key: Option<&str>,
        message: String,
        help: Option<String>,
    ) -> ManifestError {
        let (line, column) = line_col(self.text, span.start);
        ManifestError {
            kind,
            file: self.file.to_owned(),
            line,
            column,
            key: key.map(str::to_owned),
            message,
            help,
        }
    }

    fn base_dir(&self) -> PathBuf {
        match self.file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        }
    }

    pub(crate) fn parse(&self) -> PResult<ComponentManifest> {
        let root = DeTable::parse(self.text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            self.error(
                span,
                ManifestErrorKind::Syntax,
                None,
                format!("invalid TOML: {}", e.message().trim()),
                None,
            )
        })?;
        let root_span = root.span();
        let root = root.get_ref();
        self.check_keys(root, TOP_KEYS, None)?;

        let (component_span, component) =
            self.table(root, "component", None)?.ok_or_else(|| {
                self.error(
                    root_span.start..root_span.start,
                    ManifestErrorKind::MissingKey,
                    Some("component"),
                    "there is no [component] table".into(),
                    Some("add [component] with name = \"...\" and path = \"....wasm\"".into()),
                )
            })?;
        let component = self.component(component_span, component)?;

        let (limits_span, limits) = self.table(root, "limits", None)?.ok_or_else(|| {
            self.error(
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
        let limits = self.limits(limits_span, limits)?;

        let capabilities = match self.table(root, "capabilities", None)? {
            Some((_, caps)) => Some(self.capabilities(caps)?),
            None => None,
        };

        let config = match self.table(root, "config", None)? {
            Some((span, t)) => Some(self.config(span, t)?),
            None => None,
        };

        Ok(ComponentManifest {
            file: self.file.to_owned(),
            component,
            limits,
            capabilities,
            config,
        })
    }

    fn check_keys(
        &self,
        table: &DeTable<'_>,
        known: &[&str],
        table_name: Option<&str>,
    ) -> PResult<()> {
        for (key, _) in table.iter() {
            let k = key.get_ref().as_ref();
            if known.contains(&k) {
                continue;
            }
            let where_ =
                table_name.map_or_else(|| "at the top level".to_owned(), |t| format!("in [{t}]"));
            let help = match suggest(k, known) {
                Some(s) => format!(
                    "did you mean `{s}`? Known keys {where_}: {}",
                    known.join(", ")
                ),
                None => format!("known keys {where_}: {}", known.join(", ")),
            };
            return Err(self.error(
                key.span(),
                ManifestErrorKind::UnknownKey,
                Some(&dotted(table_name, k)),
                format!("unknown key `{k}` {where_}"),
                Some(help),
            ));
        }
        Ok(())
    }

    fn get<'a, 'i>(table: &'a DeTable<'i>, key: &str) -> Option<&'a Value<'i>> {
        table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|(_, v)| v)
    }

    fn table<'a, 'i>(
        &self,
        parent: &'a DeTable<'i>,
        key: &str,
        parent_name: Option<&str>,
    ) -> PResult<Option<(Range<usize>, &'a DeTable<'i>)>> {
        match Self::get(parent, key) {
            None => Ok(None),
            Some(v) => match v.get_ref() {
                DeValue::Table(t) => Ok(Some((v.span(), t))),
                other => {
                    Err(self.wrong_type(v.span(), &dotted(parent_name, key), "a table", other))
                }
            },
        }
    }

    fn wrong_type(
        &self,
        span: Range<usize>,
        key: &str,
        expected: &str,
        found: &DeValue<'_>,
    ) -> ManifestError {
        self.error(
            span,
            ManifestErrorKind::WrongType,
            Some(key),
            format!("`{key}` must be {expected}, found {}", type_name(found)),
            None,
        )
    }

    fn missing(
        &self,
        table_span: Range<usize>,
        table: &str,
        key: &str,
        why: &str,
        example: &str,
    ) -> ManifestError {
        self.error(
            table_span,
            ManifestErrorKind::MissingKey,
            Some(&format!("{table}.{key}")),
            format!("[{table}] has no `{key}`{why}"),
            Some(format!("add e.g. {example}")),
        )
    }

    fn invalid(
        &self,
        span: Range<usize>,
        key: &str,
        message: String,
        help: Option<String>,
    ) -> ManifestError {
        self.error(
            span,
            ManifestErrorKind::InvalidValue,
            Some(key),
            message,
            help,
        )
    }

    /// The items of the optional array `key` of `t` (none when it is absent), or a
    /// type error naming `dotted` and what it must be.
    fn array<'a, 'i>(
        &self,
        t: &'a DeTable<'i>,
        key: &str,
        dotted: &str,
        expected: &str,
    ) -> PResult<&'a [Value<'i>]> {
        match Self::get(t, key) {
            None => Ok(&[]),
            Some(v) => match v.get_ref() {
                DeValue::Array(items) => Ok(items),
                other => Err(self.wrong_type(v.span(), dotted, expected, other)),
            },
        }
    }

    fn string<'a>(&self, v: &'a Value<'_>, key: &str) -> PResult<&'a str> {
        match v.get_ref() {
            DeValue::String(s) => Ok(s.as_ref()),
            other => Err(self.wrong_type(v.span(), key, "a string", other)),
        }
    }

    fn component(&self, span: Range<usize>, t: &DeTable<'_>) -> PResult<ComponentSection> {
        const T: &str = "component";
        self.check_keys(t, COMPONENT_KEYS, Some(T))?;

        let name_v = Self::get(t, "name")
            .ok_or_else(|| self.missing(span.clone(), T, "name", "", "name = \"my-component\""))?;
        let name = self.string(name_v, "component.name")?;
        if !valid_name(name) {
            return Err(self.invalid(
                name_v.span(),
                "component.name",
                format!("`{name}` is not a valid component name"),
                Some("use lowercase letters, digits and '-', starting with a letter, e.g. \"hello-world\"".into()),
            ));
        }

        let version = match Self::get(t, "version") {
            None => None,
            Some(v) => {
                let s = self.string(v, "component.version")?;
                Some(semver::Version::parse(s).map_err(|e| {
                    self.invalid(
                        v.span(),
                        "component.version",
                        format!("`{s}` is not a semantic version ({e})"),
                        Some("write MAJOR.MINOR.PATCH, e.g. \"0.1.0\"".into()),
                    )
                })?)
            }
        };

        let description = Self::get(t, "description")
            .map(|v| self.string(v, "component.description").map(str::to_owned))
            .transpose()?;

        let path_v = Self::get(t, "path")
            .ok_or_else(|| self.missing(span, T, "path", "", "path = \"my-component.wasm\""))?;
        let path = self.string(path_v, "component.path")?;
        if !(path.ends_with(".wasm") || path.ends_with(".wat")) {
            return Err(self.invalid(
                path_v.span(),
                "component.path",
                format!("`{path}` is neither a .wasm nor a .wat file"),
                Some("point `path` at the component binary (.wasm) or its text (.wat)".into()),
            ));
        }
        let resolved = self.base_dir().join(path);
        if !resolved.is_file() {
            return Err(self.error(
                path_v.span(),
                ManifestErrorKind::MissingComponent,
                Some("component.path"),
                format!("the component file `{path}` does not exist (looked for {})", resolved.display()),
                Some("build the component first, or correct `path` (it is relative to this manifest)".into()),
            ));
        }

        let proposals = self.proposals(t)?;

        let sha256 = match Self::get(t, "sha256") {
            None => None,
            Some(v) => {
                let hex = self.string(v, "component.sha256")?;
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(self.invalid(
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
    fn proposals(&self, t: &DeTable<'_>) -> PResult<Vec<Proposal>> {
        const KEY: &str = "component.proposals";
        let items = self.array(t, "proposals", KEY, "an array of proposal names")?;
        let mut out = Vec::new();
        for item in items {
            let name = self.string(item, KEY)?;
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
                self.invalid(item.span(), KEY, message, Some(help))
            })?;
            if !out.contains(&proposal) {
                out.push(proposal);
            }
        }
        Ok(out)
    }

    fn limits(&self, span: Range<usize>, t: &DeTable<'_>) -> PResult<LimitsSection> {
        const T: &str = "limits";
        self.check_keys(t, LIMITS_KEYS, Some(T))?;

        let mem_v = Self::get(t, "memory").ok_or_else(|| {
            self.missing(
                span.clone(),
                T,
                "memory",
                "; memory limits are mandatory",
                "memory = \"4MiB\"",
            )
        })?;
        let memory_bytes = self.size(mem_v, "limits.memory", "4MiB")?;
        check_memory(memory_bytes).map_err(|e| {
            self.invalid(
                mem_v.span(),
                "limits.memory",
                e,
                Some(
                    "typical components need 512KiB to 4MiB; Python or JavaScript ones tens of MiB"
                        .into(),
                ),
            )
        })?;

        let fuel_v = Self::get(t, "fuel").ok_or_else(|| {
            self.missing(
                span.clone(),
                T,
                "fuel",
                "; CPU limits (fuel and timeout) are mandatory",
                "fuel = 10_000_000",
            )
        })?;
        let fuel = match fuel_v.get_ref() {
            DeValue::Integer(i) => {
                self.unsigned(fuel_v.span(), "limits.fuel", i.as_str(), i.radix())?
            }
            other => {
                return Err(self.wrong_type(
                    fuel_v.span(),
                    "limits.fuel",
                    "a whole number (e.g. fuel = 10_000_000)",
                    other,
                ));
            }
        };
        check_fuel(fuel).map_err(|e| self.invalid(fuel_v.span(), "limits.fuel", e, None))?;

        let timeout_v = Self::get(t, "timeout").ok_or_else(|| {
            self.missing(
                span,
                T,
                "timeout",
                "; CPU limits (fuel and timeout) are mandatory",
                "timeout = \"500ms\"",
            )
        })?;
        let timeout = match timeout_v.get_ref() {
            DeValue::String(s) => parse_duration(s)
                .map_err(|e| self.invalid(timeout_v.span(), "limits.timeout", e, None))?,
            other => {
                return Err(self.wrong_type(
                    timeout_v.span(),
                    "limits.timeout",
                    "a duration string with a unit (e.g. timeout = \"500ms\")",
                    other,
                ));
            }
        };
        check_timeout(timeout)
            .map_err(|e| self.invalid(timeout_v.span(), "limits.timeout", e, None))?;

        let host_resources = match Self::get(t, "host_resources") {
            None => None,
            Some(v) => match v.get_ref() {
                DeValue::Integer(i) => {
                    Some(self.unsigned(v.span(), "limits.host_resources", i.as_str(), i.radix())?)
                }
                other => {
                    return Err(self.wrong_type(
                        v.span(),
                        "limits.host_resources",
                        "a whole number (e.g. host_resources = 1000)",
                        other,
                    ));
                }
            },
        };

        let host_memory_bytes = match Self::get(t, "host_memory") {
            None => None,
            Some(v) => {
                let bytes = self.size(v, "limits.host_memory", "16MiB")?;
                check_host_memory(bytes)
                    .map_err(|e| self.invalid(v.span(), "limits.host_memory", e, None))?;
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

    /// A size: bytes as an integer, or a string with a unit (`example`).
    fn size(&self, v: &Value<'_>, key: &str, example: &str) -> PResult<u64> {
        match v.get_ref() {
            DeValue::Integer(i) => self.unsigned(v.span(), key, i.as_str(), i.radix()),
            DeValue::String(s) => {
                parse_memory_size(s).map_err(|e| self.invalid(v.span(), key, e, None))
            }
            other => Err(self.wrong_type(
                v.span(),
                key,
                &format!("a size (bytes as an integer, or a string like \"{example}\")"),
                other,
            )),
        }
    }

    fn unsigned(&self, span: Range<usize>, key: &str, digits: &str, radix: u32) -> PResult<u64> {
        u64::from_str_radix(digits, radix).map_err(|_| {
            self.invalid(
                span,
                key,
                if digits.starts_with('-') {
                    format!("`{key}` cannot be negative")
                } else {
                    format!("`{key}` is too large")
                },
                None,
            )
        })
    }

    fn stdio(&self, t: &DeTable<'_>, key: &str, default: StdioMode) -> PResult<StdioMode> {
        let Some(v) = Self::get(t, key) else {
            return Ok(default);
        };
        let dotted_key = format!("capabilities.{key}");
        match self.string(v, &dotted_key)? {
            "inherit" => Ok(StdioMode::Inherit),
            "null" => Ok(StdioMode::Null),
            other => Err(self.invalid(
                v.span(),
                &dotted_key,
                format!("`{other}` is not a mode for {key}"),
                Some("use \"inherit\" (the host's stream) or \"null\" (nothing)".into()),
            )),
        }
    }

    fn capabilities(&self, t: &DeTable<'_>) -> PResult<CapabilitiesSection> {
        const T: &str = "capabilities";
        self.check_keys(t, CAPABILITY_KEYS, Some(T))?;
        let stdout = self.stdio(t, "stdout", StdioMode::Inherit)?;
        let stderr = self.stdio(t, "stderr", StdioMode::Inherit)?;
        let stdin = self.stdio(t, "stdin", StdioMode::Null)?;

        let mut env: Vec<EnvGrant> = Vec::new();
        for item in self.array(t, "env", "capabilities.env", "an array of strings")? {
            let s = self.string(item, "capabilities.env")?;
            let (name, value) = match s.split_once('=') {
                Some((n, val)) => (n, Some(val.to_owned())),
                None => (s, None),
            };
            if name.is_empty()
                || name.contains('\0')
                || value.as_deref().is_some_and(|v| v.contains('\0'))
            {
                return Err(self.invalid(
                    item.span(),
                    "capabilities.env",
                    format!("`{s}` is not an environment entry"),
                    Some(
                        "write NAME to pass the host's value through, or NAME=VALUE to set it"
                            .into(),
                    ),
                ));
            }
            if env.iter().any(|e| e.name == name) {
                return Err(self.invalid(
                    item.span(),
                    "capabilities.env",
                    format!("`{name}` is granted twice"),
                    Some("keep one entry per variable".into()),
                ));
            }
            env.push(EnvGrant {
                name: name.to_owned(),
                value,
            });
        }

        let mut filesystem: Vec<FilesystemEntry> = Vec::new();
        for item in self.array(
            t,
            "filesystem",
            "capabilities.filesystem",
            "an array of tables ([[capabilities.filesystem]])",
        )? {
            let entry = self.filesystem_entry(item)?;
            if filesystem.iter().any(|f| f.guest == entry.guest) {
                return Err(self.invalid(
                    item.span(),
                    "capabilities.filesystem.guest",
                    format!("two directories are preopened at `{}`", entry.guest),
                    Some("give each preopen its own guest path".into()),
                ));
            }
            filesystem.push(entry);
        }

        let network = match self.table(t, "network", Some(T))? {
            None => None,
            Some((_, n)) => Some(self.network(n)?),
        };

        let keyvalue = match self.table(t, "keyvalue", Some(T))? {
            None => None,
            Some((span, k)) => Some(self.keyvalue(span, k)?),
        };
        let http = match self.table(t, "http", Some(T))? {
            None => None,
            Some((_, h)) => Some(self.http(h)?),
        };

        let mut interfaces: Vec<InterfaceGrant> = Vec::new();
        for item in self.array(
            t,
            "interfaces",
            "capabilities.interfaces",
            "an array of strings",
        )? {
            let s = self.string(item, "capabilities.interfaces")?;
            let grant = InterfaceGrant::parse(s)
                .map_err(|e| self.invalid(item.span(), "capabilities.interfaces", e, None))?;
            if let Some(earlier) = interfaces.iter().find(|g| g.name == grant.name) {
                return Err(self.invalid(
                    item.span(),
                    "capabilities.interfaces",
                    format!("`{}` is granted twice (also as `{earlier}`)", grant.name),
                    Some(
                        "keep one entry per interface: a version grants every compatible \
                         version, no version grants all"
                            .into(),
                    ),
                ));
            }
            let (line, column) = line_col(self.text, item.span().start);
            interfaces.push(grant.with_origin(format!("{}:{line}:{column}", self.file.display())));
        }

        Ok(CapabilitiesSection {
            stdout,
            stderr,
            stdin,
            env,
            filesystem,
            network,
            interfaces,
            keyvalue,
            http,
        })
    }

    fn config(&self, span: Range<usize>, t: &DeTable<'_>) -> PResult<ConfigSection> {
        let mut entries = Vec::new();
        // In the file's order (the parsed table is sorted by key).
        let mut items: Vec<_> = t.iter().collect();
        items.sort_by_key(|(key, _)| key.span().start);
        for (key, value) in items {
            let k = key.get_ref().as_ref();
            let dotted_key = format!("config.{k}");
            let (line, column) = line_col(self.text, value.span().start);
            let expected = "a string, or { env = \"VARIABLE\" } to read the host's environment";
            let v = match value.get_ref() {
                DeValue::String(s) => ConfigValue::Text(s.as_ref().to_owned()),
                DeValue::Table(inner) => {
                    let var = match (inner.len(), Self::get(inner, "env").map(Spanned::get_ref)) {
                        (1, Some(DeValue::String(var))) if !var.is_empty() => var.as_ref(),
                        _ => {
                            return Err(self.invalid(
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
                    return Err(self.wrong_type(value.span(), &dotted_key, expected, other));
                }
            };
            entries.push(ConfigEntry {
                key: k.to_owned(),
                value: v,
                line,
                column,
            });
        }
        let (line, column) = line_col(self.text, span.start);
        Ok(ConfigSection {
            entries,
            origin: format!("{}:{line}:{column}", self.file.display()),
        })
    }

    fn filesystem_entry(&self, item: &Value<'_>) -> PResult<FilesystemEntry> {
        const T: &str = "capabilities.filesystem";
        let DeValue::Table(t) = item.get_ref() else {
            return Err(self.wrong_type(
                item.span(),
                T,
                "a table with host, guest and access",
                item.get_ref(),
            ));
        };
        self.check_keys(t, FILESYSTEM_KEYS, Some(T))?;
        let host_v = Self::get(t, "host")
            .ok_or_else(|| self.missing(item.span(), T, "host", "", "host = \"./data\""))?;
        let host = self.string(host_v, "capabilities.filesystem.host")?;
        let resolved = self.base_dir().join(host);
        if !resolved.is_dir() {
            return Err(self.error(
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
        let guest_v = Self::get(t, "guest")
            .ok_or_else(|| self.missing(item.span(), T, "guest", "", "guest = \"/data\""))?;
        let guest = self.string(guest_v, "capabilities.filesystem.guest")?;
        let guest_path = Path::new(guest);
        if !guest.starts_with('/')
            || guest_path
                .components()
                .any(|c| c == PathComponent::ParentDir)
        {
            return Err(self.invalid(
                guest_v.span(),
                "capabilities.filesystem.guest",
                format!("`{guest}` is not an absolute guest path"),
                Some("write the path the guest sees, starting with '/' and without '..', e.g. \"/data\"".into()),
            ));
        }
        let access = match Self::get(t, "access") {
            None => DirAccess::ReadOnly,
            Some(v) => match self.string(v, "capabilities.filesystem.access")? {
                "read-only" => DirAccess::ReadOnly,
                "read-write" => DirAccess::ReadWrite,
                other => {
                    return Err(self.invalid(
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
        Ok(FilesystemEntry {
            host: host.to_owned(),
            guest: guest.to_owned(),
            access,
        })
    }

    fn network(&self, t: &DeTable<'_>) -> PResult<NetworkGrant> {
        const T: &str = "capabilities.network";
        self.check_keys(t, NETWORK_KEYS, Some(T))?;
        let mut grant = NetworkGrant::default();
        for item in self.array(
            t,
            "connect",
            "capabilities.network.connect",
            "an array of strings",
        )? {
            let s = self.string(item, "capabilities.network.connect")?;
            let rule = ConnectRule::parse(s)
                .map_err(|e| self.invalid(item.span(), "capabilities.network.connect", e, None))?;
            grant.connect.push(rule);
        }
        if let Some(v) = Self::get(t, "dns") {
            match v.get_ref() {
                DeValue::Boolean(b) => grant.dns = *b,
                other => {
                    return Err(self.wrong_type(
                        v.span(),
                        "capabilities.network.dns",
                        "true or false",
                        other,
                    ));
                }
            }
        }
        Ok(grant)
    }
}

impl Doc<'_> {
    fn http(&self, t: &DeTable<'_>) -> PResult<HttpGrant> {
        const T: &str = "capabilities.http";
        self.check_keys(t, HTTP_KEYS, Some(T))?;
        let mut grant = HttpGrant::default();
        for item in self.array(
            t,
            "outbound",
            "capabilities.http.outbound",
            "an array of strings",
        )? {
            let s = self.string(item, "capabilities.http.outbound")?;
            let rule = OutboundRule::parse(s)
                .map_err(|e| self.invalid(item.span(), "capabilities.http.outbound", e, None))?;
            grant.outbound.push(rule);
        }
        Ok(grant)
    }

    fn keyvalue(&self, span: Range<usize>, t: &DeTable<'_>) -> PResult<KeyValueGrant> {
        const T: &str = "capabilities.keyvalue";
        self.check_keys(t, KEYVALUE_KEYS, Some(T))?;
        if Self::get(t, "buckets").is_none() {
            return Err(self.missing(
                span,
                T,
                "buckets",
                "; name the buckets the component may open",
                "buckets = [\"default\"]",
            ));
        }
        let mut buckets: Vec<&str> = Vec::new();
        for item in self.array(
            t,
            "buckets",
            "capabilities.keyvalue.buckets",
            "an array of strings",
        )? {
            let s = self.string(item, "capabilities.keyvalue.buckets")?;
            let name = if s.is_empty() { DEFAULT_BUCKET } else { s };
            check_bucket_name(name)
                .map_err(|e| self.invalid(item.span(), "capabilities.keyvalue.buckets", e, None))?;
            if buckets.contains(&name) {
                return Err(self.invalid(
                    item.span(),
                    "capabilities.keyvalue.buckets",
                    format!("bucket `{name}` is granted twice (\"\" and \"default\" are the same bucket)"),
                    Some("keep one entry per bucket".into()),
                ));
            }
            buckets.push(name);
        }
        let max_v = Self::get(t, "max_bytes").ok_or_else(|| {
            self.missing(
                span,
                T,
                "max_bytes",
                "; a key-value grant must bound what each bucket holds",
                "max_bytes = \"1MiB\"",
            )
        })?;
        let max_bytes = self.size(max_v, "capabilities.keyvalue.max_bytes", "1MiB")?;
        check_max_bytes(max_bytes)
            .map_err(|e| self.invalid(max_v.span(), "capabilities.keyvalue.max_bytes", e, None))?;
        // Names and bound checked above, each at its own line and column.
        Ok(KeyValueGrant {
            buckets: buckets.into_iter().map(str::to_owned).collect(),
            max_bytes,
        })
    }
}

fn dotted(table: Option<&str>, key: &str) -> String {
    match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_owned(),
    }
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// The known key closest to `unknown`, if one is close enough to be a typo.
fn suggest<'k>(unknown: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(unknown, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
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
