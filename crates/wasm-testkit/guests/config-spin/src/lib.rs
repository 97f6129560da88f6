//! A library component that reads configuration through `wasi:config/store@0.2.0-draft-2024-09-27`:
//! see `wit/config-spin.wit`.

wit_bindgen::generate!({
    world: "config-spin",
    path: "wit",
    with: { "wasi:config/store@0.2.0-draft-2024-09-27": generate },
});

include!("../../config-tool/src/guest.rs");

export!(ConfigTool);
