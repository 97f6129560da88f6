//! A library component that reads configuration through `wasi:config/store@0.2.0-rc.1`:
//! see `wit/config-tool.wit`.

wit_bindgen::generate!({
    world: "config-tool",
    path: "wit",
    with: { "wasi:config/store@0.2.0-rc.1": generate },
});

use wasi::config::store;

struct ConfigTool;

fn text(e: store::Error) -> String {
    match e {
        store::Error::Upstream(m) => format!("upstream: {m}"),
        store::Error::Io(m) => format!("io: {m}"),
    }
}

impl Guest for ConfigTool {
    fn get(key: String) -> Result<Option<String>, String> {
        store::get(&key).map_err(text)
    }

    fn all() -> Result<Vec<(String, String)>, String> {
        let mut all = store::get_all().map_err(text)?;
        all.sort();
        Ok(all)
    }
}

export!(ConfigTool);
