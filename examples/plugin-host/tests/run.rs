//! The example, end to end: the real binary over the committed plugins (Rust and
//! JavaScript), each with its own state, and the one that asks for too much refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn the_plugin_host_runs_every_plugin_with_its_own_grants_and_state() {
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_plugin-host"))
        .env("PLUGIN_HOST_CACHE", cache.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");

    let section = |name: &str| {
        let start = stdout
            .find(&format!("== {name}\n"))
            .unwrap_or_else(|| panic!("no {name} in:\n{stdout}"));
        let rest = &stdout[start + 4..];
        rest[..rest.find("\n== ").unwrap_or(rest.len())].to_owned()
    };

    // Refused, naming the interface and the grant that is missing.
    let greedy = section("greedy");
    assert!(
        greedy.contains("refused: component `greedy` cannot be instantiated: `acme:plugins/kv@1.0.0` is imported, but not granted")
            && greedy.contains(r#"interfaces = ["acme:plugins/kv@1.0.0"]"#)
            && greedy.contains("greedy/Component.toml"),
        "{greedy}"
    );

    // The JavaScript plugin: its log lines, events and counter, and nothing else's.
    let js = section("js-greeter");
    assert!(js.contains("result:   greeted 4 name(s); 4 in all"), "{js}");
    assert_eq!(js.matches("log:      [info] hello, ").count(), 4, "{js}");
    assert!(
        js.contains("event #3: greeted {name=Ada, language=javascript}"),
        "{js}"
    );
    assert!(
        js.contains("counter:  greeted = 4") && !js.contains("words"),
        "{js}"
    );

    // The Rust plugin, run at the same time, with its own state.
    let rust = section("rust-stats");
    assert!(rust.contains("result:   4 words (3 distinct)"), "{rust}");
    assert!(rust.contains("event #0: word {word=Ada} value 2"), "{rust}");
    assert!(
        rust.contains("counter:  words = 4") && !rust.contains("greeted"),
        "{rust}"
    );
}
