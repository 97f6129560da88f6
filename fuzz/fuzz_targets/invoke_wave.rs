//! Arbitrary `--invoke` text (WAVE) against a component with many value types: never a
//! panic; a refusal is a usage error, and a call that parses runs under the limits.
#![no_main]

use std::sync::OnceLock;

use airssys_wasm_engine::CompiledComponent;
use airssys_wasm_loader::ComponentLoader;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fn component() -> &'static CompiledComponent {
    static C: OnceLock<CompiledComponent> = OnceLock::new();
    C.get_or_init(|| {
        common::block_on(
            ComponentLoader::new(common::engine()).load_from_bytes(airssys_wasm_testkit::TYPES),
        )
        .expect("the types fixture loads")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let component = component(); // loads on first use, outside the runtime below
    common::block_on(async {
        let mut instance = component
            .instantiate(&common::sandbox())
            .await
            .expect("instantiates");
        if let Err(e) = instance.invoke(text).await {
            assert!(
                e.is_usage_error() || e.is_runtime_error(),
                "`{text}`: an undocumented kind of error: {e:?}"
            );
        }
    });
});
