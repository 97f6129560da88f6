//! Where a run's state lives: the key-value store's data directory (`--data-dir`,
//! default under the XDG data home) and the operator's runtime configuration
//! (`--runtime-config`), which can put buckets elsewhere (Redis).

use std::path::PathBuf;
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
    pub(crate) async fn keyvalue(
        &self,
        config: &RuntimeConfig,
        component: &str,
        grant: &KeyValueGrant,
    ) -> anyhow::Result<Arc<dyn KeyValueBackend>> {
        let dir = self.data_dir()?.join("keyvalue");
        Ok(config.open_stores(&dir, component, grant).await?)
    }
}
