//! The built-in `wasi:config/store`, at the two versions guests are built against:
//! `@0.2.0-rc.1` (Wasmtime's `-S config`) and `@0.2.0-draft-2024-09-27` (Spin's). Values
//! come from the instance's [`ConfigSource`] ([`Sandbox::with_config`]): a manifest's
//! `[config]` table, or the embedder's own source. Without one, every key is absent.
//!
//! (Wasmtime's `wasmtime-wasi-config` covers the first version only and a static map
//! only; both versions over one source are two small `bindgen!` implementations.)
//!
//! [`Sandbox::with_config`]: crate::Sandbox::with_config

use std::collections::BTreeMap;

use wasmtime::component::{HasData, Linker};

mod rc1 {
    #![allow(missing_docs)]
    wasmtime::component::bindgen!({ path: "builtin-wit/config-rc1.wit", world: "imports" });
}

mod draft {
    #![allow(missing_docs)]
    wasmtime::component::bindgen!({ path: "builtin-wit/config-draft.wit", world: "imports" });
}

/// Where an instance's configuration comes from: a map, or the embedder's own lookup
/// (a secrets service, a database), called on each `get`.
///
/// ```
/// use std::collections::BTreeMap;
/// use airssys_wasm_engine::ConfigSource;
///
/// let config = BTreeMap::from([("greeting".to_owned(), "hello".to_owned())]);
/// assert_eq!(ConfigSource::get(&config, "greeting"), Ok(Some("hello".to_owned())));
/// assert_eq!(ConfigSource::get(&config, "absent"), Ok(None));
/// ```
pub trait ConfigSource: Send + Sync + 'static {
    /// The value of `key`, `None` when there is none.
    ///
    /// # Errors
    ///
    /// Why the source could not answer (the guest gets it as `error::upstream`).
    fn get(&self, key: &str) -> Result<Option<String>, String>;

    /// Every key and its value.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    fn get_all(&self) -> Result<Vec<(String, String)>, String>;
}

impl std::fmt::Debug for dyn ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConfigSource")
    }
}

impl ConfigSource for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Result<Option<String>, String> {
        Ok(BTreeMap::get(self, key).cloned())
    }

    fn get_all(&self) -> Result<Vec<(String, String)>, String> {
        Ok(self.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}

/// How a component gets `wasi:config/store`: its configuration grants it.
pub(crate) const GRANT: &str = "give the component its configuration: a [config] table in \
                                Component.toml (or `run --config KEY=VALUE`), which grants \
                                it; embedders grant `wasi:config/store` in \
                                CapabilitySet::interfaces and pass Sandbox::with_config";

/// How one version of the interface is linked, through the store's view of it.
pub(crate) type AddToLinker<T> =
    fn(&mut Linker<T>, fn(&mut T) -> ConfigView<'_>) -> wasmtime::Result<()>;

/// Both versions of `wasi:config/store`, by name, each with how it is linked.
pub(crate) fn interfaces<T: Send + 'static>() -> [(&'static str, AddToLinker<T>); 2] {
    [
        ("wasi:config/store@0.2.0-rc.1", |linker, getter| {
            rc1::wasi::config::store::add_to_linker::<T, HasConfig>(linker, getter)
        }),
        (
            "wasi:config/store@0.2.0-draft-2024-09-27",
            |linker, getter| {
                draft::wasi::config::store::add_to_linker::<T, HasConfig>(linker, getter)
            },
        ),
    ]
}

/// What `wasi:config` sees of an instance: its configuration, if it has one.
pub(crate) struct ConfigView<'a> {
    pub(crate) source: Option<&'a dyn ConfigSource>,
}

/// The [`HasData`] of [`ConfigView`].
struct HasConfig;

impl HasData for HasConfig {
    type Data<'a> = ConfigView<'a>;
}

impl ConfigView<'_> {
    fn config_get(&mut self, key: &str) -> Result<Option<String>, String> {
        match self.source {
            Some(source) => source.get(key),
            None => Ok(None),
        }
    }

    fn config_get_all(&mut self) -> Result<Vec<(String, String)>, String> {
        match self.source {
            Some(source) => source.get_all(),
            None => Ok(Vec::new()),
        }
    }
}

impl rc1::wasi::config::store::Host for ConfigView<'_> {
    fn get(&mut self, key: String) -> Result<Option<String>, rc1::wasi::config::store::Error> {
        self.config_get(&key)
            .map_err(rc1::wasi::config::store::Error::Upstream)
    }

    fn get_all(&mut self) -> Result<Vec<(String, String)>, rc1::wasi::config::store::Error> {
        self.config_get_all()
            .map_err(rc1::wasi::config::store::Error::Upstream)
    }
}

impl draft::wasi::config::store::Host for ConfigView<'_> {
    fn get(&mut self, key: String) -> Result<Option<String>, draft::wasi::config::store::Error> {
        self.config_get(&key)
            .map_err(draft::wasi::config::store::Error::Upstream)
    }

    fn get_all(&mut self) -> Result<Vec<(String, String)>, draft::wasi::config::store::Error> {
        self.config_get_all()
            .map_err(draft::wasi::config::store::Error::Upstream)
    }
}
