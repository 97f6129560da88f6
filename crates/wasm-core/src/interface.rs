//! Host interfaces: WIT interfaces an embedder implements, and the grants that let a
//! component import them.
//!
//! An interface is named as in WIT, `namespace:package/interface`, optionally with
//! `@version`. A grant without a version grants every version; a grant with one
//! grants the versions that are semver-compatible with it, by the rule Wasmtime's
//! linker uses to match an import against what the host defines: the same major
//! version (`1.x.y`), or for `0.x` the same minor (`0.2.x`), or for `0.0.x` the same
//! patch. A pre-release version (`0.2.0-rc.1`) matches itself only.
//!
//! ```
//! use airssys_wasm_core::InterfaceGrant;
//!
//! let kv = InterfaceGrant::parse("acme:plugins/kv@1.2.0")?;
//! assert!(kv.allows("acme:plugins/kv@1.2.0"));
//! assert!(kv.allows("acme:plugins/kv@1.9.3"));
//! assert!(!kv.allows("acme:plugins/kv@2.0.0"));
//! assert!(!kv.allows("acme:plugins/log@1.2.0"));
//!
//! let log = InterfaceGrant::parse("acme:plugins/log")?;
//! assert!(log.allows("acme:plugins/log@0.1.0") && log.allows("acme:plugins/log"));
//! # Ok::<(), String>(())
//! ```

/// The standard configuration interface airssys-wasm provides built in (both its
/// versions); a manifest's `[config]` table grants it.
pub const WASI_CONFIG_STORE: &str = "wasi:config/store";

/// The standard logging interface airssys-wasm provides built in.
pub const WASI_LOGGING: &str = "wasi:logging/logging";

/// A grant of one host interface to a component. Two grants are equal when they
/// grant the same thing, wherever they were written.
#[derive(Debug, Clone)]
pub struct InterfaceGrant {
    /// `namespace:package/interface`, without a version.
    pub name: String,
    /// The version granted; `None` grants every version.
    pub version: Option<semver::Version>,
    /// Where the grant was written, for messages (`Component.toml:7:16`), when it
    /// came from a file.
    pub origin: Option<String>,
}

impl InterfaceGrant {
    /// Parses `namespace:package/interface` or `namespace:package/interface@version`.
    ///
    /// # Errors
    ///
    /// A message saying what form is expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (name, version) = split_name(text).ok_or_else(|| {
            format!(
                "`{text}` is not an interface name: write \"namespace:package/interface\", \
                 optionally with \"@version\", e.g. \"acme:plugins/log\" or \
                 \"acme:plugins/kv@1.2.0\" (lowercase words joined by '-')"
            )
        })?;
        let version = match version {
            None => None,
            Some(v) => Some(semver::Version::parse(v).map_err(|e| {
                format!("`{text}` has an invalid version `{v}`: {e} (write e.g. \"@1.2.0\")")
            })?),
        };
        Ok(Self {
            name: name.to_owned(),
            version,
            origin: None,
        })
    }

    /// A grant of every version of `name` (`namespace:package/interface`, not checked),
    /// written at `origin`.
    pub fn every_version(name: &str, origin: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            version: None,
            origin: Some(origin.into()),
        }
    }

    /// The same grant, remembering where it was written.
    #[must_use]
    pub fn with_origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Whether this grant lets a component import `import` (a full import name,
    /// `namespace:package/interface[@version]`).
    pub fn allows(&self, import: &str) -> bool {
        let Some((name, version)) = split_name(import) else {
            return false;
        };
        match version.map(semver::Version::parse) {
            None => self.allows_version(name, None),
            Some(Ok(v)) => self.allows_version(name, Some(&v)),
            Some(Err(_)) => false,
        }
    }

    /// [`allows`](Self::allows) for an import already split into its name (without
    /// the version) and its version.
    pub fn allows_version(&self, name: &str, version: Option<&semver::Version>) -> bool {
        name == self.name
            && match (&self.version, version) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(granted), Some(v)) => semver_compatible(granted, v),
            }
    }
}

impl PartialEq for InterfaceGrant {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.version == other.version
    }
}

impl Eq for InterfaceGrant {}

impl std::hash::Hash for InterfaceGrant {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.version.hash(state);
    }
}

impl std::fmt::Display for InterfaceGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.version {
            Some(v) => write!(f, "{}@{v}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// Splits `ns:pkg/iface[@version]` into its name and version, checking the name's
/// form; `None` when it is not an interface name.
pub fn split_name(text: &str) -> Option<(&str, Option<&str>)> {
    let (name, version) = match text.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (text, None),
    };
    let (package, interface) = name.split_once('/')?;
    let (namespace, package) = package.split_once(':')?;
    let words_ok = [namespace, package, interface]
        .iter()
        .all(|w| is_wit_word(w));
    (words_ok && version.is_none_or(|v| !v.is_empty())).then_some((name, version))
}

/// A WIT identifier: lowercase (or all-uppercase) words of letters and digits joined
/// by `-`, each starting with a letter.
fn is_wit_word(word: &str) -> bool {
    !word.is_empty()
        && word.split('-').all(|part| {
            let mut chars = part.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric())
                && (part.chars().all(|c| !c.is_ascii_uppercase())
                    || part.chars().all(|c| !c.is_ascii_lowercase()))
        })
}

/// Whether `b` is semver-compatible with `a` under the Component Model's rule (the
/// one Wasmtime's linker applies): the same major version for `1.0.0` and later, the
/// same minor for `0.x`, the same patch for `0.0.x`; pre-releases only match exactly.
pub fn semver_compatible(a: &semver::Version, b: &semver::Version) -> bool {
    if !a.pre.is_empty() || !b.pre.is_empty() {
        return a == b;
    }
    match (a.major, a.minor) {
        (0, 0) => b.major == 0 && b.minor == 0 && a.patch == b.patch,
        (0, minor) => b.major == 0 && b.minor == minor,
        (major, _) => b.major == major,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print() {
        let g = InterfaceGrant::parse("acme:plugins/kv@1.2.0").unwrap();
        assert_eq!(g.name, "acme:plugins/kv");
        assert_eq!(g.to_string(), "acme:plugins/kv@1.2.0");
        assert_eq!(
            InterfaceGrant::parse("wasi:cli/environment@0.2.6")
                .unwrap()
                .to_string(),
            "wasi:cli/environment@0.2.6"
        );
        for bad in [
            "",
            "log",
            "acme/log",
            "acme:plugins",
            "acme:plugins/",
            "Acme:plugins/log",
            "acme:plugins/log@",
            "acme:plugins/log@1",
            "acme:plugins/my_log",
            "acme:plugins/log/extra",
            "acme:1plugins/log",
        ] {
            assert!(InterfaceGrant::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn versions_match_by_the_component_model_semver_rule() {
        let v = |s: &str| semver::Version::parse(s).unwrap();
        assert!(semver_compatible(&v("1.2.0"), &v("1.0.0")));
        assert!(semver_compatible(&v("1.2.0"), &v("1.7.1")));
        assert!(!semver_compatible(&v("1.2.0"), &v("2.0.0")));
        assert!(semver_compatible(&v("0.2.0"), &v("0.2.6")));
        assert!(!semver_compatible(&v("0.2.0"), &v("0.3.0")));
        assert!(semver_compatible(&v("0.0.3"), &v("0.0.3")));
        assert!(!semver_compatible(&v("0.0.3"), &v("0.0.4")));
        assert!(semver_compatible(&v("0.2.0-rc.1"), &v("0.2.0-rc.1")));
        assert!(!semver_compatible(&v("0.2.0-rc.1"), &v("0.2.0")));
    }

    #[test]
    fn grants_allow_what_they_name() {
        let any = InterfaceGrant::parse("acme:plugins/log").unwrap();
        assert!(any.allows("acme:plugins/log"));
        assert!(any.allows("acme:plugins/log@3.0.0"));
        assert!(!any.allows("acme:plugins/logs@1.0.0"));
        assert!(!any.allows("acme:other/log@1.0.0"));
        let one = InterfaceGrant::parse("acme:plugins/kv@1.2.0").unwrap();
        assert!(!one.allows("acme:plugins/kv"));
        assert!(one.allows("acme:plugins/kv@1.0.0"));
        assert!(!one.allows("acme:plugins/kv@0.9.0"));
        assert!(!one.allows("not a name"));
    }
}
