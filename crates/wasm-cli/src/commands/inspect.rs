//! `airssys-wasm inspect`: a component's imports, exports and grants, as a reader
//! needs them.

use std::io::Write as _;
use std::path::Path;

use airssys_wasm_loader::{ComponentLoader, LoadOptions, Source};

use crate::setup::{
    CacheArgs, EngineArgs, Failure, Target, check_pin, component_name, limits_line, read_component,
};

pub(crate) async fn inspect(
    engine: &EngineArgs,
    path: &Path,
    cache: &CacheArgs,
) -> Result<u8, Failure> {
    let target = Target::resolve(path)?;
    // One read: the digest shown (and checked against the pin) is of what is loaded.
    let bytes = read_component(&target).await?;
    let name = component_name(&target);
    let digest = check_pin(&target, &name, &bytes)?;
    let mut loader = ComponentLoader::new(&engine.engine(&target)?);
    if let Some(config) = cache.config()? {
        loader = loader.with_cache(config);
    }
    let component = loader
        .load(Source::Bytes(&bytes), &LoadOptions::named(&name))
        .await?
        .component;
    let mut out = String::new();
    out.push_str(&format!("component {}\n", component.name()));
    let pinned = target
        .manifest()
        .is_some_and(|m| m.component.sha256.is_some());
    out.push_str(&format!(
        "  sha256: {digest}{}\n",
        if pinned {
            " (pinned by the manifest)"
        } else {
            ""
        }
    ));
    if let Some(m) = target.manifest() {
        out.push_str(&format!("  limits: {}\n", limits_line(m)));
        out.push_str(&format!("  capabilities: {}\n", m.capability_set()));
        if let Some(config) = &m.config {
            // Names only: a value (or what an environment variable holds) may be a
            // secret.
            let keys: Vec<String> = config
                .entries
                .iter()
                .map(|e| match &e.value {
                    airssys_wasm_manifest::ConfigValue::Env(var) => {
                        format!("{} (from ${var})", e.key)
                    }
                    _ => e.key.clone(),
                })
                .collect();
            out.push_str(&format!("  config: {}\n", keys.join(", ")));
        }
    }
    let imports = component.imports();
    out.push_str("imports:\n");
    if imports.is_empty() {
        out.push_str("  (none)\n");
    }
    for i in &imports {
        out.push_str(&format!(
            "  {i}  [{}]\n",
            component.engine().provider(&i.name)
        ));
    }
    out.push_str("exports:\n");
    if component.exports().is_empty() {
        out.push_str("  (none)\n");
    }
    for e in component.exports() {
        out.push_str(&format!("  {e}\n"));
    }
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    Ok(0)
}
