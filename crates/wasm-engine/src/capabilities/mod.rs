//! The capabilities half of the engine: what a guest may reach, each granted by its
//! manifest — WASI with its refusals audited (`wasi_audit/`; stdout and stderr in
//! `guest_output.rs`), `wasi:logging` (`logging.rs`), `wasi:config` (`config.rs`),
//! `wasi:keyvalue` (`keyvalue/`), `wasi:http` (`http/`: outgoing requests, the fields
//! and bodies charged, serving), the embedder's host interfaces
//! (`host_interface.rs`), and the audit trail every refusal goes to (`audit.rs`). The
//! runtime they run in is the other half, `crate::runtime`.

pub(crate) mod audit;
pub(crate) mod config;
pub(crate) mod guest_output;
pub(crate) mod host_interface;
pub(crate) mod http;
pub mod keyvalue;
pub(crate) mod logging;
pub(crate) mod wasi_audit;
