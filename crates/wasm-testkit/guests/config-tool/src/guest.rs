// The guest's code, shared by `config-tool` and `config-spin`: the same calls against
// the two versions of `wasi:config/store` (each crate generates its own bindings).

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
