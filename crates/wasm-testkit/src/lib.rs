//! # airssys-wasm-testkit
//!
//! Test fixtures for airssys-wasm, written as WebAssembly text under `fixtures/` and
//! compiled to binaries **at build time** by `build.rs` with the `wat` crate (no
//! external tool). Each fixture is a `&'static [u8]` constant named after its file
//! (`fixtures/hello.wat` → [`HELLO`]); [`ALL`] lists them with their source text.
//!
//! Real components built by a real toolchain live in [`guests`]: Rust programs compiled
//! for `wasm32-wasip2` by `cargo xtask fixtures`, committed as binaries. [`http`] has
//! a real HTTP server and client on 127.0.0.1 for the HTTP tests; [`nats`] a real
//! `nats-server` on 127.0.0.1 for the cluster tests.
//!
//! ```
//! use airssys_wasm_testkit::{fixture, HELLO};
//!
//! assert_eq!(&HELLO[..4], b"\0asm");
//! assert_eq!(fixture("hello").map(|f| f.wasm), Some(HELLO));
//! assert!(fixture("no-such-fixture").is_none());
//! ```

use std::path::{Path, PathBuf};

pub mod guests;
pub mod http;
pub mod nats;

/// One compiled fixture.
#[derive(Debug, Clone, Copy)]
pub struct Fixture {
    /// The file stem (`hello` for `fixtures/hello.wat`).
    pub name: &'static str,
    /// The WAT source.
    pub wat: &'static str,
    /// The compiled binary.
    pub wasm: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));

/// The fixture called `name`, if there is one.
pub fn fixture(name: &str) -> Option<&'static Fixture> {
    ALL.iter().find(|f| f.name == name)
}

/// The directory holding the `.wat` sources.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Writes every fixture as `<name>.wasm` into `dir` (created if missing) and returns
/// the paths written.
///
/// # Errors
///
/// Any I/O error, with the path it happened on.
pub fn write_all(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    ALL.iter()
        .map(|f| {
            let path = dir.join(format!("{}.wasm", f.name));
            std::fs::write(&path, f.wasm)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            Ok(path)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixture_is_compiled_binary_wasm() {
        assert!(ALL.len() >= 15, "fixtures missing: {}", ALL.len());
        for f in ALL {
            assert_eq!(&f.wasm[..4], b"\0asm", "{}", f.name);
            assert!(f.wat.starts_with(";;"), "{} has no doc comment", f.name);
        }
        // Components have layer 1 in the header; the core module fixture has layer 0.
        assert_eq!(&HELLO[4..8], &[0x0d, 0x00, 0x01, 0x00]);
        assert_eq!(&CORE_MODULE[4..8], &[0x01, 0x00, 0x00, 0x00]);
    }

    #[test]
    fn write_all_writes_every_fixture() {
        let dir = std::env::temp_dir().join(format!("airssys-testkit-{}", std::process::id()));
        let written = write_all(&dir).unwrap();
        assert_eq!(written.len(), ALL.len());
        assert_eq!(std::fs::read(dir.join("hello.wasm")).unwrap(), HELLO);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
