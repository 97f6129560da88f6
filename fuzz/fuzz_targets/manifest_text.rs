//! Arbitrary text through the `Component.toml` parser: never a panic; what parses
//! serializes back to text that parses to the same manifest.
#![no_main]

use airssys_wasm_manifest::ComponentManifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A path that exists, so that `path` checks see a real directory.
    let file = std::env::temp_dir().join("Component.toml");
    if let Ok(manifest) = ComponentManifest::parse(text, &file) {
        let again = manifest.to_toml().expect("a parsed manifest serializes");
        let reparsed = ComponentManifest::parse(&again, &file).expect("its own output parses");
        assert_eq!(reparsed.to_toml().ok(), Some(again));
    }
});
