//! # airssys-wasm-manifest
//!
//! `Component.toml`: the manifest in which a component's author declares its resource
//! limits — **mandatory, with no defaults** — and the capabilities it needs. Every error
//! names the file, line and column, the key, what is wrong and how to fix it.
//!
//! The format is documented key by key in `docs/manifest.md` at the repository root.
//!
//! ```
//! use airssys_wasm_manifest::{ComponentManifest, ManifestErrorKind};
//!
//! let dir = std::env::temp_dir().join(format!("airssys-manifest-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! std::fs::write(dir.join("hello.wasm"), b"").unwrap();
//!
//! let text = r#"
//! [component]
//! name = "hello"
//! path = "hello.wasm"
//!
//! [limits]
//! memory = "4MiB"
//! fuel = 10_000_000
//! timeout = "500ms"
//! "#;
//! let manifest = ComponentManifest::parse(text, dir.join("Component.toml"))?;
//! assert_eq!(manifest.name(), "hello");
//! assert_eq!(manifest.resource_limits().unwrap().memory_bytes(), 4 << 20);
//!
//! // No memory limit: refused, pointing at the [limits] table, saying how to fix it.
//! let err = ComponentManifest::parse(&text.replace("memory = \"4MiB\"\n", ""), dir.join("Component.toml")).unwrap_err();
//! assert_eq!(err.kind, ManifestErrorKind::MissingKey);
//! assert_eq!(err.line, 6);
//! assert!(err.to_string().contains("memory limits are mandatory"));
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), airssys_wasm_manifest::ManifestError>(())
//! ```

mod actor;
mod doc;
mod error;
mod grants;
mod manifest;
mod parse;
mod system;
mod write;

pub use actor::{ActorSection, MAX_MAILBOX};
pub use error::{ManifestError, ManifestErrorKind};
pub use manifest::{
    ComponentManifest, ComponentSection, ConfigEntry, ConfigSection, ConfigValue, LimitsSection,
    MANIFEST_FILE,
};
pub use system::{
    ActorEntry, ClusterSection, DEFAULT_ROOT, HttpRoute, HttpSection, SYSTEM_FILE, Setting,
    SpawnEntry, SupervisorEntry, SystemFile,
};
