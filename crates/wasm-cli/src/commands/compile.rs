//! `airssys-wasm compile`: a component compiled ahead of time into a native artifact.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use airssys_wasm_loader::ComponentLoader;

use crate::setup::{EngineArgs, Failure, Target, check_pin, component_name, read_component};

pub(crate) async fn compile(
    engine: &EngineArgs,
    path: &Path,
    output: Option<PathBuf>,
) -> Result<u8, Failure> {
    let target = Target::resolve(path)?;
    let engine = &engine.engine(&target)?;
    let source = target.component_path();
    let bytes = read_component(&target).await?;
    let name = component_name(&target);
    let digest = check_pin(&target, &name, &bytes)?;
    let artifact = ComponentLoader::new(engine)
        .precompile(&name, &bytes)
        .await?;
    let output = output.unwrap_or_else(|| {
        let stem = match target.manifest() {
            Some(m) => m.name().to_owned(),
            None => source
                .file_stem()
                .map_or_else(|| name.clone(), |s| s.to_string_lossy().into_owned()),
        };
        PathBuf::from(format!("{stem}.cwasm"))
    });
    std::fs::write(&output, &artifact)
        .with_context(|| format!("writing {}", output.display()))
        .map_err(|e| Failure { code: 1, error: e })?;
    let _ = writeln!(
        std::io::stdout().lock(),
        "compiled {} (sha256 {digest}) -> {} ({} KiB)",
        source.display(),
        output.display(),
        artifact.len() / 1024
    );
    Ok(0)
}
