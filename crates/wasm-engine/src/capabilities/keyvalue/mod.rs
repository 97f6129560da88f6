//! The built-in key-value store: `wasi:keyvalue` (`store`, `atomics`, `batch`) at
//! `@0.2.0-draft` (what Wasmtime's `-S keyvalue` links; `draft.rs`) and
//! `@0.2.0-draft2` (Spin's, with compare-and-swap; `draft2.rs`), over a
//! [`KeyValueBackend`] the embedder chooses ([`Sandbox::with_keyvalue`]); what both do
//! alike is in `host.rs`.
//!
//! Every component may import the interfaces; what an `open` reaches is what its
//! [`KeyValueGrant`] says: its own default bucket (`""` or `"default"`), buckets shared
//! by name, nothing else (`access-denied`, counted and logged to
//! [`AUDIT_TARGET`](crate::AUDIT_TARGET)). Each write is checked against the grant's
//! `max_bytes` by the backend, atomically with the write.
//!
//! The backend contract — [`KeyValueBackend`], [`KeyValueBucket`], their errors and
//! bounds — lives in `airssys_wasm_core::keyvalue` (Wasmtime-free, so that backends do
//! not depend on the engine) and is re-exported here. Backends: [`MemoryBackend`]
//! (for tests and embedders' own); the persistent SQLite and Redis ones are in the
//! `airssys-wasm-keyvalue` crate. A backend's waits
//! (a lock, the network) count against the call's timeout: its futures are dropped
//! when the call times out, so an operation either completed or did nothing.
//!
//! [`Sandbox::with_keyvalue`]: crate::Sandbox::with_keyvalue
//! [`KeyValueGrant`]: airssys_wasm_core::KeyValueGrant

pub(crate) mod draft;
pub(crate) mod draft2;
mod host;

pub(crate) use host::KeyValueView;

pub use airssys_wasm_core::keyvalue::{
    BucketId, BucketRouter, Counter, ENTRY_OVERHEAD_BYTES, KeyValueBackend, KeyValueBucket,
    KeyValueError, KvFuture, LIST_PAGE, MAX_BATCH_KEYS, MAX_KEY_BYTES, MemoryBackend,
    UnderDeadline, call_deadline, check_quota, entry_size, incremented,
};
