//! `airssys-wasm validate`: a component (or a manifest and its component) checked
//! without running it.

use std::io::Write as _;
use std::path::Path;

use airssys_wasm_loader::ComponentLoader;

use crate::setup::{
    EngineArgs, Failure, Target, check_pin, component_name, limits_line, read_component,
};

pub(crate) async fn validate(engine: &EngineArgs, path: &Path) -> Result<u8, Failure> {
    let target = Target::resolve(path)?;
    let engine = &engine.engine(&target)?;
    // One read: what is checked against the pin is what is validated.
    let bytes = read_component(&target).await?;
    let name = component_name(&target);
    check_pin(&target, &name, &bytes)?;
    ComponentLoader::new(engine).validate_blocking(&name, &bytes)?;
    let mut out = std::io::stdout().lock();
    let _ = match target.manifest() {
        Some(m) => writeln!(
            out,
            "valid: {} ({}; component {})",
            m.name(),
            limits_line(m),
            m.component_path().display()
        ),
        None => writeln!(out, "valid: {}", path.display()),
    };
    Ok(0)
}
