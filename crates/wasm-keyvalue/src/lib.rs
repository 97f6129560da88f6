//! # airssys-wasm-keyvalue
//!
//! Where the built-in `wasi:keyvalue` keeps its buckets: [`SqliteBackend`], SQLite files
//! in a data directory (the default: embedded, crash-safe, shared safely by processes on
//! one machine), and [`RedisBackend`], a Redis server (for replicas on more than one
//! machine). An operator picks per bucket in a [`RuntimeConfig`]; an embedder can pass
//! either, or its own [`KeyValueBackend`], to the engine's `Sandbox::with_keyvalue`
//! (`airssys-wasm-engine`). The backends depend on `airssys-wasm-core`'s backend
//! contract only, not on the engine or Wasmtime.
//!
//! Why SQLite (through `rusqlite`, compiled in): its transactions are atomic and
//! durable across a killed process, and its file locking makes one data directory safe
//! for several processes at once — what `increment` from concurrent processes needs.
//! (redb, the other candidate, allows one process per database file.)
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use airssys_wasm_core::{CapabilitySet, KeyValueGrant, ResourceLimits};
//! use airssys_wasm_engine::Sandbox;
//! use airssys_wasm_keyvalue::SqliteBackend;
//!
//! let dir = tempfile::tempdir()?;
//! let mut caps = CapabilitySet::default();
//! caps.keyvalue = Some(KeyValueGrant::new(["default"], 1 << 20)?);
//! let sandbox = Sandbox::new(ResourceLimits::new(16 << 20, 10_000_000, Duration::from_secs(1))?)
//!     .with_capabilities(caps)
//!     .with_keyvalue(Arc::new(SqliteBackend::open(dir.path())?));
//! // Instances made with `sandbox` open their default bucket with `open("")`.
//! # drop(sandbox);
//! # Ok(())
//! # }
//! ```

mod redis;
mod runtime_config;
mod sqlite;

pub use airssys_wasm_core::keyvalue::KeyValueBackend;
pub use redis::RedisBackend;
pub use runtime_config::{RuntimeConfig, RuntimeConfigError, StoreConfig};
pub use sqlite::{Durability, SqliteBackend};
