//! Every rule of `Component.toml`: one test per kind of error, asserting the message
//! and the line it points at; capabilities; a round-trip property test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use airssys_wasm_core::{DirAccess, Proposal, StdioMode};
use airssys_wasm_manifest::{ComponentManifest, ConfigValue, ManifestError, ManifestErrorKind};
use proptest::prelude::*;

/// A directory with `hello.wasm`, `data/` and the manifest path inside it.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hello.wasm"), b"\0asm").unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        Self { dir }
    }

    fn manifest(&self) -> PathBuf {
        self.dir.path().join("Component.toml")
    }

    fn parse(&self, text: &str) -> Result<ComponentManifest, ManifestError> {
        ComponentManifest::parse(text, self.manifest())
    }

    fn err(&self, text: &str) -> ManifestError {
        self.parse(text).unwrap_err()
    }
}

const MINIMAL: &str = r#"[component]
name = "hello"
path = "hello.wasm"

[limits]
memory = "4MiB"
fuel = 10_000_000
timeout = "500ms"
"#;

fn with_limits(limits: &str) -> String {
    format!("[component]\nname = \"hello\"\npath = \"hello.wasm\"\n\n[limits]\n{limits}")
}

fn assert_err(e: &ManifestError, kind: ManifestErrorKind, line: usize, needles: &[&str]) {
    assert_eq!(e.kind, kind, "{e}");
    assert_eq!(e.line, line, "{e}");
    let msg = e.to_string();
    assert!(msg.contains(&format!("Component.toml:{line}:")), "{msg}");
    for n in needles {
        assert!(msg.contains(n), "`{n}` missing from: {msg}");
    }
}

#[test]
fn minimal_manifest() {
    let f = Fixture::new();
    let m = f.parse(MINIMAL).unwrap();
    assert_eq!(m.name(), "hello");
    assert_eq!(m.component_path(), f.dir.path().join("hello.wasm"));
    let limits = m.resource_limits().unwrap();
    assert_eq!(limits.memory_bytes(), 4 << 20);
    assert_eq!(limits.fuel(), 10_000_000);
    assert_eq!(limits.timeout(), Duration::from_millis(500));
    // No [capabilities]: stdout and stderr, nothing else.
    let caps = m.capability_set();
    assert_eq!(caps.stdout, StdioMode::Inherit);
    assert_eq!(caps.stdin, StdioMode::Null);
    assert!(caps.env.is_empty() && caps.filesystem.is_empty() && caps.network.is_none());
}

#[test]
fn from_file_and_from_dir() {
    let f = Fixture::new();
    std::fs::write(f.manifest(), MINIMAL).unwrap();
    assert_eq!(
        ComponentManifest::from_file(f.manifest()).unwrap().name(),
        "hello"
    );
    assert_eq!(
        ComponentManifest::from_dir(f.dir.path()).unwrap().name(),
        "hello"
    );
    assert_eq!(
        ComponentManifest::load(f.dir.path()).unwrap().name(),
        "hello"
    );
    let e = ComponentManifest::load(f.dir.path().join("nope")).unwrap_err();
    assert_eq!(e.kind, ManifestErrorKind::Io);
    let e = ComponentManifest::from_dir(f.dir.path().join("data")).unwrap_err();
    assert!(e.to_string().contains("Component.toml"), "{e}");
}

#[test]
fn missing_memory_is_refused_pointing_at_limits() {
    let f = Fixture::new();
    let e = f.err(&with_limits("fuel = 1\ntimeout = \"1s\"\n"));
    assert_err(
        &e,
        ManifestErrorKind::MissingKey,
        5,
        &[
            "[limits] has no `memory`",
            "memory limits are mandatory",
            "memory = \"4MiB\"",
        ],
    );
    assert_eq!(e.key.as_deref(), Some("limits.memory"));
    assert_eq!(e.column, 1);
}

#[test]
fn missing_fuel_and_timeout_are_refused() {
    let f = Fixture::new();
    let e = f.err(&with_limits("memory = \"1MiB\"\ntimeout = \"1s\"\n"));
    assert_err(
        &e,
        ManifestErrorKind::MissingKey,
        5,
        &["no `fuel`", "fuel = 10_000_000"],
    );
    let e = f.err(&with_limits("memory = \"1MiB\"\nfuel = 5\n"));
    assert_err(
        &e,
        ManifestErrorKind::MissingKey,
        5,
        &["no `timeout`", "timeout = \"500ms\""],
    );
}

#[test]
fn missing_tables_are_refused() {
    let f = Fixture::new();
    let e = f.err("[component]\nname = \"x\"\npath = \"hello.wasm\"\n");
    assert_err(
        &e,
        ManifestErrorKind::MissingKey,
        1,
        &["no [limits] table", "mandatory"],
    );
    let e = f.err("[limits]\nmemory = 65536\nfuel = 1\ntimeout = \"1s\"\n");
    assert_err(
        &e,
        ManifestErrorKind::MissingKey,
        1,
        &["no [component] table"],
    );
    let e = f.err("\n\n[component]\npath = \"hello.wasm\"\n[limits]\n");
    assert_err(
        &e,
        ManifestErrorKind::MissingKey,
        3,
        &["[component] has no `name`"],
    );
    let e = f.err("[component]\nname = \"x\"\n");
    assert_err(
        &e,
        ManifestErrorKind::MissingKey,
        1,
        &["[component] has no `path`"],
    );
}

#[test]
fn malformed_toml_points_at_the_line() {
    let f = Fixture::new();
    let e = f.err("[component]\nname = \"hello\npath = \"hello.wasm\"\n");
    assert_err(&e, ManifestErrorKind::Syntax, 2, &["invalid TOML"]);
}

#[test]
fn duplicate_keys_are_errors() {
    let f = Fixture::new();
    let text = MINIMAL.replace("fuel = 10_000_000\n", "fuel = 10_000_000\nfuel = 5\n");
    let e = f.err(&text);
    assert_err(&e, ManifestErrorKind::Syntax, 8, &["duplicate key"]);
}

#[test]
fn unknown_keys_suggest_the_nearest_known_key() {
    let f = Fixture::new();
    let e = f.err(&with_limits(
        "memroy = \"4MiB\"\nfuel = 1\ntimeout = \"1s\"\n",
    ));
    assert_err(
        &e,
        ManifestErrorKind::UnknownKey,
        6,
        &["unknown key `memroy` in [limits]", "did you mean `memory`?"],
    );
    let e = f.err(&format!("{MINIMAL}\n[capabilitys]\n"));
    assert_err(
        &e,
        ManifestErrorKind::UnknownKey,
        10,
        &["did you mean `capabilities`?"],
    );
    let e = f.err(&MINIMAL.replace("name =", "colour = \"red\"\nname ="));
    assert_err(
        &e,
        ManifestErrorKind::UnknownKey,
        2,
        &["unknown key `colour`", "known keys in [component]"],
    );
    assert!(!e.to_string().contains("did you mean"), "{e}");
}

#[test]
fn wrong_types_say_what_is_expected() {
    let f = Fixture::new();
    let e = f.err(&with_limits("memory = true\nfuel = 1\ntimeout = \"1s\"\n"));
    assert_err(
        &e,
        ManifestErrorKind::WrongType,
        6,
        &["`limits.memory` must be a size", "found a boolean"],
    );
    let e = f.err(&with_limits(
        "memory = 65536\nfuel = \"lots\"\ntimeout = \"1s\"\n",
    ));
    assert_err(
        &e,
        ManifestErrorKind::WrongType,
        7,
        &["`limits.fuel` must be a whole number", "found a string"],
    );
    let e = f.err(&with_limits("memory = 65536\nfuel = 1\ntimeout = 500\n"));
    assert_err(
        &e,
        ManifestErrorKind::WrongType,
        8,
        &["duration string with a unit", "found an integer"],
    );
    let e = f.err("component = 5\n");
    assert_err(
        &e,
        ManifestErrorKind::WrongType,
        1,
        &["`component` must be a table"],
    );
}

#[test]
fn bad_units_and_ranges_are_invalid_values() {
    let f = Fixture::new();
    let e = f.err(&with_limits(
        "memory = \"4 parsecs\"\nfuel = 1\ntimeout = \"1s\"\n",
    ));
    assert_err(
        &e,
        ManifestErrorKind::InvalidValue,
        6,
        &["unknown unit", "MiB"],
    );
    let e = f.err(&with_limits(
        "memory = \"1KiB\"\nfuel = 1\ntimeout = \"1s\"\n",
    ));
    assert_err(&e, ManifestErrorKind::InvalidValue, 6, &["at least 64 KiB"]);
    let e = f.err(&with_limits(
        "memory = \"5GiB\"\nfuel = 1\ntimeout = \"1s\"\n",
    ));
    assert_err(&e, ManifestErrorKind::InvalidValue, 6, &["at most 4 GiB"]);
    let e = f.err(&with_limits("memory = 65536\nfuel = 0\ntimeout = \"1s\"\n"));
    assert_err(
        &e,
        ManifestErrorKind::InvalidValue,
        7,
        &["fuel must be at least 1"],
    );
    let e = f.err(&with_limits(
        "memory = 65536\nfuel = -3\ntimeout = \"1s\"\n",
    ));
    assert_err(
        &e,
        ManifestErrorKind::InvalidValue,
        7,
        &["cannot be negative"],
    );
    let e = f.err(&with_limits("memory = 65536\nfuel = 1\ntimeout = \"2h\"\n"));
    assert_err(&e, ManifestErrorKind::InvalidValue, 8, &["at most 1h"]);
    let e = f.err(&with_limits(
        "memory = 65536\nfuel = 1\ntimeout = \"soon\"\n",
    ));
    assert_err(&e, ManifestErrorKind::InvalidValue, 8, &["not a duration"]);
    // Large limits for Python/JavaScript components are fine.
    let m = f
        .parse(&with_limits(
            "memory = \"96MiB\"\nfuel = 1\ntimeout = \"1m\"\n",
        ))
        .unwrap();
    assert_eq!(m.limits.memory_bytes, 96 << 20);
}

#[test]
fn bad_names_and_versions_are_invalid() {
    let f = Fixture::new();
    let e = f.err(&MINIMAL.replace("\"hello\"", "\"Hello_World\""));
    assert_err(
        &e,
        ManifestErrorKind::InvalidValue,
        2,
        &["not a valid component name", "lowercase"],
    );
    let e = f.err(&MINIMAL.replace("name = \"hello\"", "name = \"hello\"\nversion = \"1.0\""));
    assert_err(
        &e,
        ManifestErrorKind::InvalidValue,
        3,
        &["not a semantic version"],
    );
    let m = f
        .parse(&MINIMAL.replace(
            "name = \"hello\"",
            "name = \"hello\"\nversion = \"1.2.3-rc.1\"\ndescription = \"hi\"",
        ))
        .unwrap();
    assert_eq!(m.component.version.unwrap().to_string(), "1.2.3-rc.1");
}

#[test]
fn a_missing_component_file_is_reported() {
    let f = Fixture::new();
    let e = f.err(&MINIMAL.replace("hello.wasm", "gone.wasm"));
    assert_err(
        &e,
        ManifestErrorKind::MissingComponent,
        3,
        &["`gone.wasm` does not exist"],
    );
    let e = f.err(&MINIMAL.replace("hello.wasm", "hello.txt"));
    assert_err(
        &e,
        ManifestErrorKind::InvalidValue,
        3,
        &["neither a .wasm nor a .wat"],
    );
}

const CAPS: &str = r#"
[capabilities]
stdout = "null"
stdin = "inherit"
env = ["LANG", "MODE=fast"]

[[capabilities.filesystem]]
host = "./data"
guest = "/data"
access = "read-write"

[capabilities.network]
connect = ["127.0.0.1:8080", "[::1]:*"]
dns = true
"#;

#[test]
fn capabilities_resolve_to_a_capability_set() {
    let f = Fixture::new();
    let m = f.parse(&format!("{MINIMAL}{CAPS}")).unwrap();
    let caps = m.capability_set();
    assert_eq!(caps.stdout, StdioMode::Null);
    assert_eq!(caps.stderr, StdioMode::Inherit);
    assert_eq!(caps.stdin, StdioMode::Inherit);
    assert_eq!(caps.env.len(), 2);
    assert_eq!(caps.env[0].value, None);
    assert_eq!(caps.env[1].value.as_deref(), Some("fast"));
    assert_eq!(caps.filesystem[0].host, f.dir.path().join("./data"));
    assert_eq!(caps.filesystem[0].access, DirAccess::ReadWrite);
    assert!(caps.allows_connect(&"127.0.0.1:8080".parse().unwrap()));
    assert!(!caps.allows_connect(&"127.0.0.1:8081".parse().unwrap()));
    assert!(caps.allows_connect(&"[::1]:9".parse().unwrap()));
    assert!(caps.allows_dns());
}

#[test]
fn capability_errors() {
    let f = Fixture::new();
    let full = format!("{MINIMAL}{CAPS}");
    // Line numbers: MINIMAL has 8 lines, CAPS starts with an empty line 9.
    let e = f.err(&full.replace("\"./data\"", "\"./nope\""));
    assert_err(
        &e,
        ManifestErrorKind::MissingDirectory,
        16,
        &["`./nope` does not exist"],
    );
    let e = f.err(&full.replace("\"read-write\"", "\"read-wirte\""));
    assert_err(
        &e,
        ManifestErrorKind::InvalidValue,
        18,
        &["not an access mode", "did you mean \"read-write\"?"],
    );
    let e = f.err(&full.replace("\"/data\"", "\"data\""));
    assert_err(
        &e,
        ManifestErrorKind::InvalidValue,
        17,
        &["not an absolute guest path"],
    );
    let e = f.err(&full.replace("\"/data\"", "\"/a/../b\""));
    assert_err(&e, ManifestErrorKind::InvalidValue, 17, &["without '..'"]);
    let e = f.err(&full.replace("stdout = \"null\"", "stdout = \"file\""));
    assert_err(
        &e,
        ManifestErrorKind::InvalidValue,
        11,
        &["not a mode for stdout"],
    );
    let e = f.err(&full.replace("\"127.0.0.1:8080\"", "\"localhost:80\""));
    assert_err(
        &e,
        ManifestErrorKind::InvalidValue,
        21,
        &["host names are not accepted"],
    );
    let e = f.err(&full.replace("dns = true", "dns = \"yes\""));
    assert_err(&e, ManifestErrorKind::WrongType, 22, &["true or false"]);
    let e = f.err(&full.replace("\"MODE=fast\"", "\"LANG=C\""));
    assert_err(
        &e,
        ManifestErrorKind::InvalidValue,
        13,
        &["`LANG` is granted twice"],
    );
    let e = f.err(&full.replace("env = [\"LANG\", \"MODE=fast\"]", "env = \"LANG\""));
    assert_err(
        &e,
        ManifestErrorKind::WrongType,
        13,
        &["an array of strings"],
    );
    let e = f.err(&full.replace("access = \"read-write\"", "acess = \"read-write\""));
    assert_err(
        &e,
        ManifestErrorKind::UnknownKey,
        18,
        &["did you mean `access`?"],
    );
    let twice =
        format!("{full}\n[[capabilities.filesystem]]\nhost = \"data\"\nguest = \"/data\"\n");
    let e = f.err(&twice.replace(
        "[capabilities.network]\nconnect = [\"127.0.0.1:8080\", \"[::1]:*\"]\ndns = true\n",
        "",
    ));
    assert_eq!(e.kind, ManifestErrorKind::InvalidValue, "{e}");
    assert!(
        e.to_string()
            .contains("two directories are preopened at `/data`"),
        "{e}"
    );
}

#[test]
fn access_defaults_to_read_only() {
    let f = Fixture::new();
    let m = f
        .parse(&format!(
            "{MINIMAL}[[capabilities.filesystem]]\nhost = \"data\"\nguest = \"/d\"\n"
        ))
        .unwrap();
    assert_eq!(m.capability_set().filesystem[0].access, DirAccess::ReadOnly);
}

#[test]
fn serializing_round_trips() {
    let f = Fixture::new();
    let m = f.parse(&format!("{MINIMAL}{CAPS}")).unwrap();
    let text = m.to_toml().unwrap();
    assert_eq!(f.parse(&text).unwrap(), m, "{text}");
    let m = f.parse(MINIMAL).unwrap();
    assert_eq!(f.parse(&m.to_toml().unwrap()).unwrap(), m);
}

#[test]
fn proposals_are_parsed_deduplicated_and_round_trip() {
    let f = Fixture::new();
    let text = MINIMAL.replace(
        "path = \"hello.wasm\"\n",
        "path = \"hello.wasm\"\nproposals = [\"component-model-async\", \"component-model-map\", \"component-model-async\"]\n",
    );
    let m = f.parse(&text).unwrap();
    assert_eq!(
        m.component.proposals,
        [Proposal::ComponentModelAsync, Proposal::ComponentModelMap]
    );
    assert_eq!(f.parse(&m.to_toml().unwrap()).unwrap(), m);
    assert!(f.parse(MINIMAL).unwrap().component.proposals.is_empty());
}

#[test]
fn bad_proposals_point_at_the_entry_with_the_fix() {
    let f = Fixture::new();
    let with = |value: &str| {
        MINIMAL.replace(
            "path = \"hello.wasm\"\n",
            &format!("path = \"hello.wasm\"\nproposals = {value}\n"),
        )
    };
    let e = f.err(&with("[\"component-model-asynk\"]"));
    assert_err(
        &e,
        ManifestErrorKind::InvalidValue,
        4,
        &[
            "unknown proposal `component-model-asynk`",
            "did you mean \"component-model-async\"?",
        ],
    );
    let e = f.err(&with("[\"threads\"]"));
    assert_err(
        &e,
        ManifestErrorKind::InvalidValue,
        4,
        &["never enabled", "build the component without threads"],
    );
    let e = f.err(&with("[\"bananas\"]"));
    assert_err(
        &e,
        ManifestErrorKind::InvalidValue,
        4,
        &["known proposals: component-model-async"],
    );
    let e = f.err(&with("\"component-model-async\""));
    assert_err(
        &e,
        ManifestErrorKind::WrongType,
        4,
        &["an array of proposal names"],
    );
    let e = f.err(&with("[1]"));
    assert_err(&e, ManifestErrorKind::WrongType, 4, &["a string"]);
    let e = f.err(&MINIMAL.replace(
        "path = \"hello.wasm\"\n",
        "path = \"hello.wasm\"\nproposal = []\n",
    ));
    assert_err(
        &e,
        ManifestErrorKind::UnknownKey,
        4,
        &["did you mean `proposals`"],
    );
}

/// The parts of a generated manifest.
struct Generated {
    name: String,
    memory_kib: u64,
    fuel: u64,
    timeout_ms: u64,
    env: Vec<(String, Option<String>)>,
    ports: Vec<u16>,
    dns: bool,
    read_write: bool,
}

impl Generated {
    fn text(&self) -> String {
        let env: Vec<String> = self
            .env
            .iter()
            .map(|(n, v)| match v {
                Some(v) => format!("{:?}", format!("{n}={v}")),
                None => format!("{n:?}"),
            })
            .collect();
        let connect: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("\"127.0.0.1:{p}\""))
            .collect();
        format!(
            "[component]\nname = \"{}\"\npath = \"hello.wasm\"\n[limits]\nmemory = {}\nfuel = {}\ntimeout = \"{}ms\"\n\
             [capabilities]\nenv = [{}]\ninterfaces = [\"acme:plugins/log\", \"acme:plugins/kv@1.2.0\"]\n[[capabilities.filesystem]]\nhost = \"data\"\nguest = \"/g\"\naccess = \"{}\"\n\
             [capabilities.network]\nconnect = [{}]\ndns = {}\n",
            self.name,
            self.memory_kib * 1024,
            self.fuel,
            self.timeout_ms,
            env.join(", "),
            if self.read_write {
                "read-write"
            } else {
                "read-only"
            },
            connect.join(", "),
            self.dns,
        )
    }
}

#[test]
fn interfaces_are_granted_by_name_with_where_each_was_written() {
    let f = Fixture::new();
    let text = format!(
        "{MINIMAL}[capabilities]\ninterfaces = [\"acme:plugins/log\", \"acme:plugins/kv@1.2.0\"]\n"
    );
    let m = f.parse(&text).unwrap();
    let caps = m.capability_set();
    let names: Vec<_> = caps.interfaces.iter().map(ToString::to_string).collect();
    assert_eq!(names, ["acme:plugins/log", "acme:plugins/kv@1.2.0"]);
    let origin = caps.interfaces[1].origin.as_deref().unwrap();
    assert!(origin.ends_with("Component.toml:10:35"), "{origin}");
    assert!(caps.interface_grant("acme:plugins/kv@1.9.0").is_some());
    assert!(caps.interface_grant("acme:plugins/kv@2.0.0").is_none());
    // Round trip.
    assert_eq!(f.parse(&m.to_toml().unwrap()).unwrap(), m);
}

#[test]
fn config_holds_strings_and_environment_references() {
    let f = Fixture::new();
    let var = "AIRSSYS_TEST_CONFIG_TOKEN";
    let text =
        format!("{MINIMAL}[config]\ngreeting = \"hello\"\napi_token = {{ env = \"{var}\" }}\n");
    let m = f.parse(&text).unwrap();
    let c = m.config.as_ref().unwrap();
    assert_eq!(c.entries.len(), 2);
    assert_eq!(c.entries[1].value, ConfigValue::Env(var.into()));
    assert!(c.origin.ends_with("Component.toml:9:1"), "{}", c.origin);
    // The table grants wasi:config/store, both versions.
    let caps = m.capability_set();
    assert!(
        caps.interface_grant("wasi:config/store@0.2.0-rc.1")
            .is_some()
    );
    assert!(
        caps.interface_grant("wasi:config/store@0.2.0-draft-2024-09-27")
            .is_some()
    );
    // The variable is read when asked for: unset is an error naming key and variable.
    // SAFETY: the variable is this test's own; no other test reads or writes it.
    unsafe { std::env::remove_var(var) };
    let e = m.config_values().unwrap_err();
    assert_err(
        &e,
        ManifestErrorKind::UnsetVariable,
        11,
        &["`api_token`", var, "not set", "--config api_token=VALUE"],
    );
    // SAFETY: as above.
    unsafe { std::env::set_var(var, "s3cret") };
    let values = m.config_values().unwrap();
    assert_eq!(values.get("api_token").map(String::as_str), Some("s3cret"));
    assert_eq!(values.get("greeting").map(String::as_str), Some("hello"));
    // Round trip, whichever kind of value comes first.
    assert_eq!(f.parse(&m.to_toml().unwrap()).unwrap(), m);
    let env_first = f
        .parse(&format!(
            "{MINIMAL}[config]\napi_token = {{ env = \"{var}\" }}\ngreeting = \"hello\"\n"
        ))
        .unwrap();
    assert_eq!(f.parse(&env_first.to_toml().unwrap()).unwrap(), env_first);
    // Without the table: nothing granted, nothing configured.
    let m = f.parse(MINIMAL).unwrap();
    assert!(m.capability_set().interfaces.is_empty());
    assert!(m.config_values().unwrap().is_empty());
}

#[test]
fn config_values_other_than_strings_are_refused_where_they_are() {
    let f = Fixture::new();
    for (value, needle) in [
        ("3", "a string, or { env = \"VARIABLE\" }"),
        ("true", "a string"),
        ("{ env = 3 }", "must be a string, or { env"),
        (
            "{ env = \"A\", default = \"x\" }",
            "must be a string, or { env",
        ),
        ("[\"a\"]", "a string"),
    ] {
        let e = f.err(&format!(
            "{MINIMAL}[config]\nok = \"fine\"\nbad = {value}\n"
        ));
        assert_eq!(e.line, 11, "{value}: {e}");
        assert_eq!(e.column, 7, "{value}: {e}");
        assert!(e.to_string().contains(needle), "{value}: {e}");
        assert_eq!(e.key.as_deref(), Some("config.bad"), "{value}: {e}");
    }
}

#[test]
fn sha256_pins_the_component_file() {
    let f = Fixture::new();
    let hex = "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD";
    let text = MINIMAL.replace(
        "path = \"hello.wasm\"\n",
        &format!("path = \"hello.wasm\"\nsha256 = \"{hex}\"\n"),
    );
    let m = f.parse(&text).unwrap();
    assert_eq!(
        m.component.sha256.as_deref(),
        Some(hex.to_ascii_lowercase().as_str())
    );
    assert_eq!(f.parse(&m.to_toml().unwrap()).unwrap(), m);
    for bad in ["abc", &hex[1..], &format!("{}zz", &hex[2..])] {
        let e = f.err(&MINIMAL.replace(
            "path = \"hello.wasm\"\n",
            &format!("path = \"hello.wasm\"\nsha256 = \"{bad}\"\n"),
        ));
        assert_err(
            &e,
            ManifestErrorKind::InvalidValue,
            4,
            &[
                "is not a SHA-256 digest",
                "64 hexadecimal digits",
                "inspect",
            ],
        );
    }
}

#[test]
fn host_resources_is_an_optional_limit() {
    let f = Fixture::new();
    let m = f.parse(MINIMAL).unwrap();
    assert_eq!(
        m.resource_limits().unwrap().max_host_resources(),
        airssys_wasm_core::limits::DEFAULT_MAX_HOST_RESOURCES
    );
    let m = f
        .parse(&with_limits(
            "memory = \"4MiB\"\nfuel = 1\ntimeout = \"1s\"\nhost_resources = 250\n",
        ))
        .unwrap();
    assert_eq!(m.resource_limits().unwrap().max_host_resources(), 250);
    assert_eq!(f.parse(&m.to_toml().unwrap()).unwrap(), m);
    let e = f.err(&with_limits(
        "memory = \"4MiB\"\nfuel = 1\ntimeout = \"1s\"\nhost_resources = \"many\"\n",
    ));
    assert_eq!(e.line, 9, "{e}");
    assert!(e.to_string().contains("a whole number"), "{e}");
}

#[test]
fn bad_interface_grants_point_at_the_entry() {
    let f = Fixture::new();
    let e = f.err(&format!(
        "{MINIMAL}[capabilities]\ninterfaces = [\"acme:plugins/log\", \"kv\"]\n"
    ));
    assert_err(
        &e,
        ManifestErrorKind::InvalidValue,
        10,
        &["`kv` is not an interface name", "acme:plugins/kv@1.2.0"],
    );
    assert_eq!(e.column, 35);
    let e = f.err(&format!(
        "{MINIMAL}[capabilities]\ninterfaces = [\"acme:plugins/kv@1.x\"]\n"
    ));
    assert_err(
        &e,
        ManifestErrorKind::InvalidValue,
        10,
        &["invalid version `1.x`"],
    );
    let e = f.err(&format!(
        "{MINIMAL}[capabilities]\ninterfaces = [\"acme:plugins/kv@1.0.0\", \"acme:plugins/kv\"]\n"
    ));
    assert_err(&e, ManifestErrorKind::InvalidValue, 10, &["granted twice"]);
    let e = f.err(&format!(
        "{MINIMAL}[capabilities]\ninterfaces = \"acme:plugins/kv\"\n"
    ));
    assert_eq!(e.line, 10, "{e}");
    assert!(e.to_string().contains("an array of strings"), "{e}");
    let e = f.err(&format!("{MINIMAL}[capabilities]\ninterface = []\n"));
    assert!(e.to_string().contains("did you mean `interfaces`"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    #[test]
    fn round_trip_property(
        name in "[a-z][a-z0-9-]{0,12}",
        memory_kib in 64u64..=(4 << 20),
        fuel in 1u64..u64::MAX,
        timeout_ms in 1u64..=3_600_000,
        env in proptest::collection::vec(("[A-Z][A-Z0-9_]{0,6}", proptest::option::of("[ -~&&[^\"\\\\]]{0,8}")), 0..4),
        ports in proptest::collection::vec(any::<u16>(), 0..3),
        dns in any::<bool>(),
        read_write in any::<bool>(),
    ) {
        let mut seen = std::collections::HashSet::new();
        let env: Vec<_> = env.into_iter().filter(|(n, _)| seen.insert(n.clone())).collect();
        let f = Fixture::new();
        let text = Generated { name, memory_kib, fuel, timeout_ms, env, ports, dns, read_write }.text();
        let m = f.parse(&text).unwrap();
        let again = f.parse(&m.to_toml().unwrap()).unwrap();
        prop_assert_eq!(&again, &m);
        prop_assert_eq!(m.limits.memory_bytes, memory_kib * 1024);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        let f = Fixture::new();
        let _ = f.parse(&text);
    }

    #[test]
    fn mutated_manifests_never_panic(cut in 0usize..400, insert in "[\\[\\]=\"a-z0-9 \n._-]{0,6}") {
        let f = Fixture::new();
        let mut text = format!("{MINIMAL}{CAPS}");
        let at = cut.min(text.len());
        if text.is_char_boundary(at) {
            text.insert_str(at, &insert);
        }
        if let Err(e) = f.parse(&text) {
            prop_assert!(e.line >= 1 && e.column >= 1);
        }
    }
}

const KV: &str =
    "[capabilities.keyvalue]\nbuckets = [\"default\", \"shared-cache\"]\nmax_bytes = \"1MiB\"\n";

#[test]
fn keyvalue_grants_buckets_with_a_byte_bound() {
    let f = Fixture::new();
    let m = f.parse(&format!("{MINIMAL}{KV}")).unwrap();
    let kv = m.capability_set().keyvalue.unwrap();
    assert_eq!(kv.buckets, ["default", "shared-cache"]);
    assert_eq!(kv.max_bytes, 1 << 20);
    // "" is the default bucket; sizes may be plain bytes.
    let m2 = f
        .parse(&format!(
            "{MINIMAL}[capabilities.keyvalue]\nbuckets = [\"\"]\nmax_bytes = 4096\n"
        ))
        .unwrap();
    let kv2 = m2.capability_set().keyvalue.unwrap();
    assert_eq!(
        (kv2.buckets.as_slice(), kv2.max_bytes),
        (&["default".to_owned()][..], 4096)
    );
    // Without the table: no key-value grant.
    assert!(
        f.parse(MINIMAL)
            .unwrap()
            .capability_set()
            .keyvalue
            .is_none()
    );
    // Round trip.
    assert_eq!(f.parse(&m.to_toml().unwrap()).unwrap(), m);
}

#[test]
fn keyvalue_errors() {
    let f = Fixture::new();
    let full = format!("{MINIMAL}{KV}");
    // MINIMAL has 8 lines: the table is line 9, buckets 10, max_bytes 11.
    let e = f.err(&full.replace("max_bytes = \"1MiB\"\n", ""));
    assert_err(
        &e,
        ManifestErrorKind::MissingKey,
        9,
        &["no `max_bytes`", "max_bytes = \"1MiB\""],
    );
    let e = f.err(&full.replace("buckets = [\"default\", \"shared-cache\"]\n", ""));
    assert_err(&e, ManifestErrorKind::MissingKey, 9, &["no `buckets`"]);
    let e = f.err(&full.replace("\"1MiB\"", "\"1 lots\""));
    assert_err(
        &e,
        ManifestErrorKind::InvalidValue,
        11,
        &["unknown unit `lots`"],
    );
    let e = f.err(&full.replace("\"1MiB\"", "0"));
    assert_err(
        &e,
        ManifestErrorKind::InvalidValue,
        11,
        &["between 1 byte and 64GiB"],
    );
    let e = f.err(&full.replace("\"1MiB\"", "true"));
    assert_err(&e, ManifestErrorKind::WrongType, 11, &["a size"]);
    let e = f.err(&full.replace("\"shared-cache\"", "\"Shared/Cache\""));
    assert_err(
        &e,
        ManifestErrorKind::InvalidValue,
        10,
        &["not a bucket name"],
    );
    let e = f.err(&full.replace("\"shared-cache\"", "\"\""));
    assert_err(&e, ManifestErrorKind::InvalidValue, 10, &["granted twice"]);
    let e = f.err(&full.replace("\"shared-cache\"", "7"));
    assert_err(&e, ManifestErrorKind::WrongType, 10, &["a string"]);
    let e = f.err(&full.replace("max_bytes", "max_byte"));
    assert_err(
        &e,
        ManifestErrorKind::UnknownKey,
        11,
        &["did you mean `max_bytes`?"],
    );
    let e = f.err(&full.replace("[capabilities.keyvalue]", "[capabilities.kv]"));
    assert_eq!(e.kind, ManifestErrorKind::UnknownKey, "{e}");
}

const HTTP: &str = "[capabilities.http]\noutbound = [\"https://api.example.com\", \"https://*.example.org\", \"http://127.0.0.1:8080\", \"http://localhost:*\"]\n";

#[test]
fn http_outbound_hosts_parse_as_spin_writes_them() {
    let f = Fixture::new();
    let m = f.parse(&format!("{MINIMAL}{HTTP}")).unwrap();
    let http = m.capability_set().http.unwrap();
    assert_eq!(http.outbound.len(), 4);
    assert!(http.allows("https", "api.example.com", 443));
    assert!(http.allows("https", "x.example.org", 443));
    assert!(!http.allows("https", "example.org", 443));
    assert!(http.allows("http", "localhost", 3000));
    assert!(!http.allows("http", "127.0.0.1", 8081));
    assert!(f.parse(MINIMAL).unwrap().capability_set().http.is_none());
    assert_eq!(f.parse(&m.to_toml().unwrap()).unwrap(), m);
}

#[test]
fn http_errors() {
    let f = Fixture::new();
    let full = format!("{MINIMAL}{HTTP}");
    // MINIMAL has 8 lines: the table is line 9, outbound line 10.
    let e = f.err(&full.replace("\"http://localhost:*\"", "\"*\""));
    assert_err(
        &e,
        ManifestErrorKind::InvalidValue,
        10,
        &["write \"*://*:*\""],
    );
    let e = f.err(&full.replace("https://api.example.com", "https://api.example.com/v1"));
    assert_err(
        &e,
        ManifestErrorKind::InvalidValue,
        10,
        &["has a path (`/v1`)"],
    );
    let e = f.err(&full.replace("outbound", "outbond"));
    assert_err(
        &e,
        ManifestErrorKind::UnknownKey,
        10,
        &["did you mean `outbound`?"],
    );
    let e = f.err(&full.replace("\"http://localhost:*\"", "80"));
    assert_err(&e, ManifestErrorKind::WrongType, 10, &["a string"]);
}

#[test]
fn an_actor_table_grants_patterns_and_sizes_the_mailbox() {
    let f = Fixture::new();
    let text = format!(
        "{MINIMAL}\n[actor]\nmailbox = 500\nmailbox_bytes = \"4MiB\"\nbackpressure = \"block\"\nsend = [\"router\", \"worker-*\"]\n\
         publish = [\"orders.*\"]\nsubscribe = [\"orders.*\"]\nspawn = [\"worker\"]\n"
    );
    let m = f.parse(&text).unwrap();
    let a = m.actor.clone().unwrap();
    assert_eq!((a.mailbox, a.mailbox_bytes), (Some(500), Some(4 << 20)));
    assert_eq!(
        a.backpressure,
        Some(airssys_wasm_core::actor::Backpressure::Block)
    );
    assert!(airssys_wasm_core::actor::ActorGrants::check(
        &a.grants.send,
        "worker-3"
    ));
    assert!(!airssys_wasm_core::actor::ActorGrants::check(
        &a.grants.send,
        "billing"
    ));
    assert_eq!(a.grants.spawn.len(), 1);
    // Written back and read again: the same.
    let again = f.parse(&m.to_toml().unwrap()).unwrap();
    assert_eq!(again.actor, m.actor);
    // Without [actor]: none.
    assert!(f.parse(MINIMAL).unwrap().actor.is_none());
}

#[test]
fn a_bad_actor_table_is_refused_at_the_key() {
    let f = Fixture::new();
    let at = |body: &str| f.err(&format!("{MINIMAL}\n[actor]\n{body}\n"));
    assert_err(
        &at("sends = [\"x\"]"),
        ManifestErrorKind::UnknownKey,
        11,
        &["unknown key `sends` in [actor]", "did you mean `send`?"],
    );
    let e = at("send = [\"ok\", \"a*b\"]");
    assert_err(
        &e,
        ManifestErrorKind::InvalidValue,
        11,
        &["`*` may only end a pattern"],
    );
    assert_eq!((e.key.as_deref(), e.column), (Some("actor.send"), 15));
    assert_err(
        &at("backpressure = \"wait\""),
        ManifestErrorKind::InvalidValue,
        11,
        &["`wait` is not a backpressure strategy", "\"block\""],
    );
    assert_err(
        &at("mailbox = 0"),
        ManifestErrorKind::InvalidValue,
        11,
        &["a mailbox holds 1 to 1000000 messages, not 0"],
    );
    assert_err(
        &at("publish = [\"news\", \"news\"]"),
        ManifestErrorKind::InvalidValue,
        11,
        &["`news` is granted twice"],
    );
}
