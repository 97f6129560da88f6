//! One instance of the testkit's `kv-tool` doing N key-value operations, once, for an
//! instruction count (`valgrind --tool=callgrind`): the count at two values of N, taken
//! apart, is what one operation costs through a guest, free of the wall clock's noise.
//!
//! `cargo run --release -p airssys-wasm-benches --example kv_ops -- get|set|incr N memory|sqlite`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use airssys_wasm_core::{CapabilitySet, KeyValueGrant, ResourceLimits};
use airssys_wasm_engine::keyvalue::{KeyValueBackend, MemoryBackend};
use airssys_wasm_engine::{CompiledComponent, Sandbox, WasmEngine};
use airssys_wasm_keyvalue::SqliteBackend;
use airssys_wasm_testkit::guests::KV_TOOL;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (op, n, store) = (args[1].as_str(), args[2].as_str(), args[3].as_str());
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn KeyValueBackend> = match store {
        "sqlite" => Arc::new(SqliteBackend::open(dir.path()).unwrap()),
        _ => Arc::new(MemoryBackend::default()),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let engine = WasmEngine::new().unwrap();
        let component = CompiledComponent::new(
            &engine,
            "kv-tool",
            wasmtime::component::Component::new(engine.wasmtime_engine(), KV_TOOL).unwrap(),
        )
        .unwrap();
        let mut caps = CapabilitySet::deny_all();
        caps.keyvalue = Some(KeyValueGrant::new(["default"], 1 << 30).unwrap());
        let sandbox = Sandbox::new(
            ResourceLimits::new(16 << 20, u64::MAX / 4, Duration::from_secs(600)).unwrap(),
        )
        .with_capabilities(caps)
        .with_keyvalue(store)
        .with_args(["kv-tool", &format!("bench-{op}"), "", n]);
        let mut i = component.instantiate(&sandbox).await.unwrap();
        assert_eq!(i.run_command().await.unwrap().0, 0);
    });
}
