//! Compiles every `fixtures/*.wat` to WebAssembly with the `wat` crate (no external
//! tool) and generates `fixtures.rs` with one `&'static [u8]` constant per fixture.

use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

fn main() {
    if let Err(e) = run() {
        // A build script reports failure by panicking; say which fixture broke.
        panic!("airssys-wasm-testkit: {e}");
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?;
    let out_dir = env::var("OUT_DIR").map_err(|e| e.to_string())?;
    let fixtures = Path::new(&manifest_dir).join("fixtures");
    println!("cargo:rerun-if-changed={}", fixtures.display());

    let mut entries: Vec<_> = fs::read_dir(&fixtures)
        .map_err(|e| format!("reading {}: {e}", fixtures.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wat"))
        .collect();
    entries.sort();

    let mut code = String::new();
    let mut all = String::new();
    for path in entries {
        println!("cargo:rerun-if-changed={}", path.display());
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| format!("bad fixture name {}", path.display()))?;
        let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let bytes = wat::parse_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let out = Path::new(&out_dir).join(format!("{stem}.wasm"));
        fs::write(&out, &bytes).map_err(|e| format!("{}: {e}", out.display()))?;

        let doc: Vec<&str> = text
            .lines()
            .take_while(|l| l.starts_with(";;"))
            .map(|l| l.trim_start_matches(";;").trim())
            .collect();
        let konst = stem.to_ascii_uppercase();
        let _ = writeln!(code, "/// Fixture `{stem}` (`fixtures/{stem}.wat`):");
        for line in &doc {
            let _ = writeln!(code, "/// {line}");
        }
        let _ = writeln!(
            code,
            "pub const {konst}: &[u8] = include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{stem}.wasm\"));"
        );
        let _ = writeln!(
            all,
            "    Fixture {{ name: \"{stem}\", wat: include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/fixtures/{stem}.wat\")), wasm: {konst} }},"
        );
    }
    let _ = writeln!(
        code,
        "/// Every fixture, sorted by name.\npub const ALL: &[Fixture] = &[\n{all}];"
    );
    let target = Path::new(&out_dir).join("fixtures.rs");
    fs::write(&target, code).map_err(|e| format!("{}: {e}", target.display()))
}
