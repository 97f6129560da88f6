//! The built-in `wasi:config/store`: both versions guests are built against, over the
//! instance's configuration source. The guests are the testkit's `config-tool`
//! (`@0.2.0-rc.1`, Wasmtime's) and `config-spin` (`@0.2.0-draft-2024-09-27`, Spin's).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use airssys_wasm_core::{CapabilitySet, InterfaceGrant, WasmError};
use airssys_wasm_engine::{ConfigSource, Provider, Sandbox, WasmEngine};
use airssys_wasm_testkit::guests::{CONFIG_SPIN, CONFIG_TOOL};
use common::{MIB, compile, sandbox};

type Got = Result<Option<String>, String>;
type All = Result<Vec<(String, String)>, String>;

fn granted() -> Sandbox {
    let mut caps = CapabilitySet::deny_all();
    caps.interfaces
        .push(InterfaceGrant::parse("wasi:config/store").unwrap());
    sandbox(4 * MIB, 10_000_000, Duration::from_secs(5)).with_capabilities(caps)
}

fn map(pairs: &[(&str, &str)]) -> Arc<dyn ConfigSource> {
    Arc::new(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    )
}

#[tokio::test]
async fn both_versions_read_the_same_configuration() {
    let engine = WasmEngine::new().unwrap();
    let s = granted().with_config(map(&[("greeting", "hello"), ("mode", "fast")]));
    for (name, wasm) in [("config-tool", CONFIG_TOOL), ("config-spin", CONFIG_SPIN)] {
        let c = compile(&engine, name, wasm);
        let mut i = c.instantiate(&s).await.unwrap();
        let ((got,), _) = i
            .call_typed::<(&str,), (Got,)>("get", ("greeting",))
            .await
            .unwrap();
        assert_eq!(got, Ok(Some("hello".into())), "{name}");
        let ((absent,), _) = i
            .call_typed::<(&str,), (Got,)>("get", ("nope",))
            .await
            .unwrap();
        assert_eq!(absent, Ok(None), "{name}");
        let ((all,), _) = i.call_typed::<(), (All,)>("all", ()).await.unwrap();
        assert_eq!(
            all,
            Ok(vec![
                ("greeting".into(), "hello".into()),
                ("mode".into(), "fast".into())
            ]),
            "{name}"
        );
    }
}

#[tokio::test]
async fn without_a_source_every_key_is_absent() {
    let engine = WasmEngine::new().unwrap();
    let c = compile(&engine, "config-tool", CONFIG_TOOL);
    let mut i = c.instantiate(&granted()).await.unwrap();
    let ((got,), _) = i
        .call_typed::<(&str,), (Got,)>("get", ("greeting",))
        .await
        .unwrap();
    assert_eq!(got, Ok(None));
    let ((all,), _) = i.call_typed::<(), (All,)>("all", ()).await.unwrap();
    assert_eq!(all, Ok(vec![]));
}

/// An embedder's own source: computed on each lookup, failing on demand.
struct Live(AtomicU32);

impl ConfigSource for Live {
    fn get(&self, key: &str) -> Result<Option<String>, String> {
        match key {
            "counter" => Ok(Some(self.0.fetch_add(1, Ordering::SeqCst).to_string())),
            "broken" => Err("the vault is sealed".into()),
            _ => Ok(None),
        }
    }

    fn get_all(&self) -> Result<Vec<(String, String)>, String> {
        Err("listing is not allowed".into())
    }
}

#[tokio::test]
async fn an_embedders_source_is_asked_on_each_get_and_its_errors_reach_the_guest() {
    let engine = WasmEngine::new().unwrap();
    let c = compile(&engine, "config-spin", CONFIG_SPIN);
    let s = granted().with_config(Arc::new(Live(AtomicU32::new(7))));
    let mut i = c.instantiate(&s).await.unwrap();
    for expected in ["7", "8"] {
        let ((got,), _) = i
            .call_typed::<(&str,), (Got,)>("get", ("counter",))
            .await
            .unwrap();
        assert_eq!(got, Ok(Some(expected.into())));
    }
    let ((broken,), _) = i
        .call_typed::<(&str,), (Got,)>("get", ("broken",))
        .await
        .unwrap();
    assert_eq!(broken, Err("upstream: the vault is sealed".into()));
    let ((all,), _) = i.call_typed::<(), (All,)>("all", ()).await.unwrap();
    assert_eq!(all, Err("upstream: listing is not allowed".into()));
    // An error of the source is the guest's to handle: the instance is fine.
    assert!(i.poisoned().is_none());
}

#[tokio::test]
async fn configuration_needs_its_grant() {
    let engine = WasmEngine::new().unwrap();
    let c = compile(&engine, "config-tool", CONFIG_TOOL);
    let s = sandbox(4 * MIB, 10_000_000, Duration::from_secs(5))
        .with_config(map(&[("greeting", "hello")]));
    let err = c.instantiate(&s).await.unwrap_err();
    let WasmError::InterfacesDenied { denied, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(denied[0].interface, "wasi:config/store@0.2.0-rc.1");
    assert!(denied[0].fix.contains("[config] table"), "{err}");
    assert_eq!(
        engine.provider("wasi:config/store@0.2.0-draft-2024-09-27#get"),
        Provider::BuiltIn("wasi:config/store@0.2.0-draft-2024-09-27".into())
    );
}
