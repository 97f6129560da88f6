//! Where a run's state lives: the key-value store's data directory (`--data-dir`,
//! default under the XDG data home) and the operator's runtime configuration
//! (`--runtime-config`), which can put buckets elsewhere (Redis).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;

use airssys_wasm_core::KeyValueGrant;
use airssys_wasm_engine::keyvalue::KeyValueBackend;
use airssys_wasm_keyvalue::RuntimeConfig;

/// The flags that choose where state lives.
#[derive(Args, Debug, Clone)]
pub(crate) struct StateArgs {
    /// Where the key-value store keeps buckets the runtime configuration does not
    /// place elsewhere: SQLite files under DIR/keyvalue (default
    /// `$XDG_DATA_HOME/airssys-wasm`, else `~/.local/share/airssys-wasm`). Only used by
    /// a component granted [capabilities.keyvalue].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The operator's runtime configuration (TOML): which store holds which bucket,
    /// e.g. `[keyvalue.default]` with `type = "redis"` and `url = "redis://…"`.
    #[arg(long, value_name = "FILE")]
    runtime_config: Option<PathBuf>,
}

impl StateArgs {
    /// The runtime configuration (empty without `--runtime-config`), read now so that a
    /// bad file is refused whether or not the component uses what it configures.
    pub(crate) fn runtime_config(&self) -> anyhow::Result<RuntimeConfig> {
        match &self.runtime_config {
            Some(file) => Ok(RuntimeConfig::load(file)?),
            None => Ok(RuntimeConfig::default()),
        }
    }

    /// The data directory: `--data-dir`, else the user's data home.
    fn data_dir(&self) -> anyhow::Result<PathBuf> {
        if let Some(dir) = &self.data_dir {
            return Ok(dir.clone());
        }
        let home =
            airssys_wasm_loader::xdg_dir("XDG_DATA_HOME", ".local/share").ok_or_else(|| {
                anyhow::anyhow!(
                    "the component is granted a key-value store, but neither XDG_DATA_HOME \
                     nor HOME is set to keep it under; choose a directory with --data-dir"
                )
            })?;
        Ok(home.join("airssys-wasm"))
    }

    /// The stores of `component`'s granted buckets, each opened and checked now.
    /// `origin` is the component's file: the first to use a name's own bucket on this
    /// data directory is recorded as its owner, and another file using the same name
    /// later is warned about (it shares that bucket).
    pub(crate) async fn keyvalue(
        &self,
        config: &RuntimeConfig,
        component: &str,
        grant: &KeyValueGrant,
        origin: &Path,
    ) -> anyhow::Result<Arc<dyn KeyValueBackend>> {
        let dir = self.data_dir()?.join("keyvalue");
        let store = config.open_stores(&dir, component, grant).await?;
        if grant
            .buckets
            .iter()
            .any(|b| b.is_empty() || b == airssys_wasm_core::keyvalue::DEFAULT_BUCKET)
        {
            claim_default_bucket(&dir, component, origin);
        }
        Ok(store)
    }
}

/// Records `origin` as the owner of `component`'s own bucket on the data directory
/// `dir` (`owners/<storage name>`, `0600`), or warns when another file recorded it
/// first: a component's own bucket is keyed by its name, so two components of one name
/// on one data directory share it. Best effort: a claim that cannot be read or written
/// changes nothing else.
fn claim_default_bucket(dir: &Path, component: &str, origin: &Path) {
    let origin = std::fs::canonicalize(origin).unwrap_or_else(|_| origin.to_path_buf());
    let owners = dir.join("owners");
    let id = airssys_wasm_engine::keyvalue::BucketId::component_default(component);
    let file = owners.join(id.storage_name());
    match std::fs::read_to_string(&file) {
        Ok(owner) if Path::new(owner.trim_end()) == origin => {}
        Ok(owner) => tracing::warn!(
            "component `{component}` ({}) uses the own bucket that `{component}` from {} used \
             first on this data directory: components are told apart by name, so they share \
             it. Rename one ([component] name), give them different --data-dir, or, if this \
             is the same component moved, delete {}",
            origin.display(),
            owner.trim_end(),
            file.display()
        ),
        Err(_) => {
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            let mut o = std::fs::OpenOptions::new();
            o.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
            let written = b.create(&owners).and_then(|()| {
                let mut f = o.open(&file)?;
                std::io::Write::write_all(&mut f, origin.to_string_lossy().as_bytes())
            });
            if let Err(e) = written {
                tracing::debug!(%e, "recording the owner of a bucket failed");
            }
        }
    }
}
