//! `airssys-wasm inspect`: a component's imports, exports and grants, as a reader
//! needs them.

use std::io::Write as _;
use std::path::Path;

use airssys_wasm_core::CapabilitySet;
use airssys_wasm_loader::ComponentLoader;

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
    let component = loader.load_named(&name, &bytes).await?;
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
        let caps = m.capability_set();
        out.push_str(&format!(
            "  capabilities: {}\n",
            describe_capabilities(&caps)
        ));
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

pub(crate) fn describe_capabilities(c: &CapabilitySet) -> String {
    let mut parts = vec![
        format!("stdout {}", c.stdout.as_str()),
        format!("stderr {}", c.stderr.as_str()),
        format!("stdin {}", c.stdin.as_str()),
    ];
    if !c.env.is_empty() {
        let names: Vec<_> = c.env.iter().map(|e| e.name.as_str()).collect();
        parts.push(format!("env {}", names.join(",")));
    }
    for d in &c.filesystem {
        parts.push(format!(
            "dir {} -> {} ({})",
            d.host.display(),
            d.guest,
            d.access.as_str()
        ));
    }
    match &c.network {
        None => parts.push("no network".into()),
        Some(n) => {
            let rules: Vec<_> = n.connect.iter().map(ToString::to_string).collect();
            parts.push(format!("connect [{}], dns {}", rules.join(", "), n.dns));
        }
    }
    if !c.interfaces.is_empty() {
        let names: Vec<_> = c.interfaces.iter().map(ToString::to_string).collect();
        parts.push(format!("interfaces {}", names.join(",")));
    }
    if let Some(http) = &c.http {
        let hosts: Vec<_> = http.outbound.iter().map(ToString::to_string).collect();
        parts.push(format!("http outbound [{}]", hosts.join(", ")));
    }
    if let Some(kv) = &c.keyvalue {
        parts.push(format!(
            "keyvalue buckets {} (max {} each)",
            kv.buckets.join(","),
            airssys_wasm_core::error::fmt_bytes(kv.max_bytes)
        ));
    }
    parts.join("; ")
}
