//! SHA-256 pins: a manifest's `sha256`, checked against the bytes before anything is
//! compiled or taken from the cache.

use std::path::Path;

use airssys_wasm_core::{WasmError, WasmResult};

/// The SHA-256 digest of `bytes` in lowercase hex: what a manifest's `sha256` pins.
///
/// ```
/// assert_eq!(
///     airssys_wasm_loader::sha256_hex(b"abc"),
///     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
/// );
/// ```
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    use std::fmt::Write as _;
    let digest = sha2::Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// Checks the bytes of the component `name`, read from `path`, against the SHA-256
/// digest `pin` (hex, either case); their digest when it matches.
///
/// # Errors
///
/// [`WasmError::IntegrityMismatch`] with both digests.
pub fn check_sha256(name: &str, path: &Path, bytes: &[u8], pin: &str) -> WasmResult<String> {
    let actual = sha256_hex(bytes);
    if actual.eq_ignore_ascii_case(pin) {
        return Ok(actual);
    }
    Err(WasmError::IntegrityMismatch {
        component: name.to_owned(),
        path: path.to_owned(),
        expected: pin.to_ascii_lowercase(),
        actual,
    })
}
