//! A library component that reads configuration through `wasi:config/store@0.2.0-rc.1`:
//! see `wit/config-tool.wit`.

wit_bindgen::generate!({
    world: "config-tool",
    path: "wit",
    with: { "wasi:config/store@0.2.0-rc.1": generate },
});

include!("../../config-tool/src/guest.rs");

export!(ConfigTool);
