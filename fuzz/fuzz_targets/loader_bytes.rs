//! Arbitrary bytes through `ComponentLoader::validate` and `load_from_bytes`: never a
//! panic, errors always load errors, and the two agree (what validation refuses is never
//! loaded; what it accepts loads, or fails to compile with a compilation error).
//! Inputs over 16 KiB are only validated: compiling them (Cranelift under ASan) would
//! cost a second each and starve the fuzzer; `instantiate_call` compiles large ones.
#![no_main]

use airssys_wasm_core::WasmError;
use airssys_wasm_loader::ComponentLoader;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let loader = ComponentLoader::new(common::engine());
    let validated = loader.validate_blocking("fuzz", data);
    if let Err(e) = &validated {
        assert!(e.is_load_error(), "validate: not a load error: {e:?}");
    }
    if data.len() > 16 * 1024 {
        return;
    }
    let loaded = common::block_on(loader.load_from_bytes(data));
    match (&validated, &loaded) {
        (Err(_), Ok(_)) => panic!("load accepted what validate refused: {validated:?}"),
        (Ok(()), Err(e)) => assert!(
            matches!(e, WasmError::ComponentCompilationFailed { .. }),
            "validate accepted, load refused: {e:?}"
        ),
        (_, Err(e)) => assert!(e.is_load_error(), "load: not a load error: {e:?}"),
        (Ok(()), Ok(_)) => {}
    }
});
