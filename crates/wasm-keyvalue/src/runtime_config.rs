//! The operator's runtime configuration (`--runtime-config FILE`): where buckets live.
//! A component only names buckets; which store holds each is the host's choice.
//!
//! ```toml
//! # Every component's own bucket, on a Redis server shared by all replicas.
//! [keyvalue.default]
//! type = "redis"
//! url = "redis://127.0.0.1:6379"
//!
//! # A shared bucket in SQLite files of its own directory (relative to this file).
//! [keyvalue.shared-cache]
//! type = "sqlite"
//! path = "cache"
//! durability = "power-loss"   # or "process-crash", the default
//! ```
//!
//! A bucket not named here is in the data directory (`--data-dir`), in SQLite.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use airssys_wasm_core::KeyValueGrant;
use airssys_wasm_core::keyvalue::{
    BucketId, BucketRouter, KeyValueBackend, KeyValueError, MemoryBackend,
};
use airssys_wasm_core::keyvalue::{DEFAULT_BUCKET, check_bucket_name};

use crate::{Durability, RedisBackend, SqliteBackend};

/// A runtime configuration that could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeConfigError {
    /// The file could not be read.
    #[error("runtime configuration {}: {source}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid runtime configuration.
    #[error("{}:{line}:{column}: {message}", file.display())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// Where (1-based).
        line: usize,
        /// Where (1-based).
        column: usize,
        /// What is wrong, and the fix.
        message: String,
    },
}

/// Where one bucket lives. Its `Debug` form redacts a URL's user information.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreConfig {
    /// SQLite files in a directory.
    Sqlite {
        /// The directory (resolved against the configuration file's).
        dir: PathBuf,
        /// What a write survives.
        durability: Durability,
    },
    /// A Redis server.
    Redis {
        /// Its URL.
        url: String,
    },
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite { dir, durability } => f
                .debug_struct("Sqlite")
                .field("dir", dir)
                .field("durability", durability)
                .finish(),
            Self::Redis { url } => f
                .debug_struct("Redis")
                .field("url", &airssys_wasm_core::text::redact_url(url))
                .finish(),
        }
    }
}

/// A parsed runtime configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Buckets by name (`default`: every component's own) and where each lives.
    pub keyvalue: BTreeMap<String, StoreConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    keyvalue: BTreeMap<String, Spanned<Store>>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
enum Store {
    Sqlite {
        path: String,
        #[serde(default)]
        durability: Option<String>,
    },
    Redis {
        url: String,
    },
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl RuntimeConfig {
    /// Reads and parses `file`.
    ///
    /// # Errors
    ///
    /// [`RuntimeConfigError`]: the file cannot be read, or is not valid (with its line
    /// and column).
    pub fn load(file: impl AsRef<Path>) -> Result<Self, RuntimeConfigError> {
        let file = file.as_ref();
        let text = std::fs::read_to_string(file).map_err(|source| RuntimeConfigError::Io {
            file: file.to_path_buf(),
            source,
        })?;
        Self::parse(&text, file)
    }

    /// Parses `text`, read from `file` (relative paths in it are resolved against the
    /// file's directory).
    ///
    /// # Errors
    ///
    /// [`RuntimeConfigError::Invalid`] with the line and column and the fix.
    ///
    /// ```
    /// use airssys_wasm_keyvalue::{RuntimeConfig, StoreConfig};
    ///
    /// let text = "[keyvalue.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:6379\"\n";
    /// let config = RuntimeConfig::parse(text, "runtime.toml".as_ref())?;
    /// assert!(matches!(config.keyvalue["default"], StoreConfig::Redis { .. }));
    ///
    /// let typo = RuntimeConfig::parse("[keyvalue.default]\ntype = \"redis\"\nulr = \"x\"\n", "runtime.toml".as_ref());
    /// assert!(typo.unwrap_err().to_string().starts_with("runtime.toml:"));
    /// # Ok::<(), airssys_wasm_keyvalue::RuntimeConfigError>(())
    /// ```
    pub fn parse(text: &str, file: &Path) -> Result<Self, RuntimeConfigError> {
        let invalid = |offset: usize, message: String| {
            let (line, column) = line_col(text, offset);
            RuntimeConfigError::Invalid {
                file: file.to_path_buf(),
                line,
                column,
                message,
            }
        };
        let parsed: File = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            invalid(
                offset,
                format!(
                    "{}; a bucket's store is a table [keyvalue.<bucket>] with type = \"sqlite\" \
                     (path, durability) or type = \"redis\" (url)",
                    e.message().trim_end()
                ),
            )
        })?;
        let base = file.parent().unwrap_or(Path::new(""));
        let mut keyvalue = BTreeMap::new();
        for (name, store) in parsed.keyvalue {
            let at = store.span().start;
            check_bucket_name(&name).map_err(|e| invalid(at, e))?;
            let config = match store.into_inner() {
                Store::Sqlite { path, durability } => StoreConfig::Sqlite {
                    dir: base.join(path),
                    durability: match durability.as_deref() {
                        None | Some("process-crash") => Durability::ProcessCrash,
                        Some("power-loss") => Durability::PowerLoss,
                        Some(other) => {
                            return Err(invalid(
                                at,
                                format!(
                                    "`{other}` is not a durability: write \"process-crash\" \
                                     (the default) or \"power-loss\""
                                ),
                            ));
                        }
                    },
                },
                Store::Redis { url } => {
                    if !(url.starts_with("redis://") || url.starts_with("redis+unix://")) {
                        return Err(invalid(
                            at,
                            format!(
                                "`{}` is not a Redis URL: write redis://HOST:PORT[/DB]",
                                airssys_wasm_core::text::redact_url(&url)
                            ),
                        ));
                    }
                    StoreConfig::Redis { url }
                }
            };
            keyvalue.insert(name, config);
        }
        Ok(Self { keyvalue })
    }

    /// The stores of `component`'s granted buckets, opened now — the SQLite files
    /// checked, the Redis servers reached — so that a store that cannot be used is an
    /// error at start. Buckets the configuration does not name are in `data_dir`.
    ///
    /// # Errors
    ///
    /// [`KeyValueError::Backend`] naming the store, what is wrong and the fix.
    pub async fn open_stores(
        &self,
        data_dir: &Path,
        component: &str,
        grant: &KeyValueGrant,
    ) -> Result<Arc<dyn KeyValueBackend>, KeyValueError> {
        let id = |name: &str| {
            if name == DEFAULT_BUCKET {
                BucketId::component_default(component)
            } else {
                BucketId::shared(name)
            }
        };
        let mut routes: Vec<(String, Arc<dyn KeyValueBackend>)> = Vec::new();
        let mut local: Option<Arc<SqliteBackend>> = None;
        for name in &grant.buckets {
            match self.keyvalue.get(name) {
                Some(StoreConfig::Sqlite { dir, durability }) => {
                    let b = SqliteBackend::open(dir)?.durability(*durability);
                    b.open_now(&id(name))?;
                    routes.push((name.clone(), Arc::new(b)));
                }
                Some(StoreConfig::Redis { url }) => {
                    routes.push((name.clone(), Arc::new(RedisBackend::connect(url).await?)));
                }
                None => {
                    let b = match &local {
                        Some(b) => b,
                        None => local.insert(Arc::new(SqliteBackend::open(data_dir)?)),
                    };
                    b.open_now(&id(name))?;
                }
            }
        }
        // Only granted buckets are ever opened: with none in the data directory, the
        // fallback is never reached (and the directory is not created).
        let fallback: Arc<dyn KeyValueBackend> = match local {
            Some(b) => b,
            None => Arc::new(MemoryBackend::default()),
        };
        let router = routes
            .into_iter()
            .fold(BucketRouter::new(fallback), |r, (name, b)| r.route(name, b));
        Ok(Arc::new(router))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        RuntimeConfig::parse(text, Path::new("rt.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn stores_parse_with_paths_resolved() {
        let c = RuntimeConfig::parse(
            "[keyvalue.default]\ntype = \"sqlite\"\npath = \"kv\"\n\n[keyvalue.cache]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:1\"\n",
            Path::new("/etc/app/rt.toml"),
        )
        .unwrap();
        assert_eq!(
            c.keyvalue["default"],
            StoreConfig::Sqlite {
                dir: PathBuf::from("/etc/app/kv"),
                durability: Durability::ProcessCrash
            }
        );
        assert_eq!(
            c.keyvalue["cache"],
            StoreConfig::Redis {
                url: "redis://127.0.0.1:1".into()
            }
        );
    }

    #[test]
    fn errors_have_a_line_and_column() {
        let e = err("[keyvalue.default]\ntype = \"mysql\"\n");
        assert!(e.starts_with("rt.toml:2:8: "), "{e}");
        assert!(e.contains("sqlite"), "{e}");
        let e = err("[keyvalue.default]\ntype = \"redis\"\nurl = \"http://x\"\n");
        assert!(e.contains("not a Redis URL"), "{e}");
        let e = err("[keyvalue.Bad]\ntype = \"redis\"\nurl = \"redis://x\"\n");
        assert!(e.contains("not a bucket name"), "{e}");
        let e =
            err("[keyvalue.default]\ntype = \"sqlite\"\npath = \"x\"\ndurability = \"never\"\n");
        assert!(e.contains("not a durability"), "{e}");
        let e = err("[keyvalue.default]\ntype = \"sqlite\"\npath = \"x\"\nsize = 1\n");
        assert!(e.contains("size"), "{e}");
        let e = err("[keyvalues]\n");
        assert!(e.starts_with("rt.toml:1:"), "{e}");
    }
}
