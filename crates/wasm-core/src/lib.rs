//! # airssys-wasm-core
//!
//! The vocabulary shared by every airssys-wasm crate: the [`WasmError`] type, the
//! [`ResourceLimits`] every instance runs under (memory, fuel and timeout — all
//! mandatory, never defaulted), the [`CapabilitySet`] that says what a component
//! may touch outside its own memory (nothing beyond stdout/stderr unless granted), and
//! the [`Proposal`]s an engine can switch on beyond its defaults.
//!
//! This crate has no Wasmtime dependency, so tools that only read manifests or
//! report errors stay light.
//!
//! ```
//! use std::time::Duration;
//! use airssys_wasm_core::{CapabilitySet, PartialResourceLimits, WasmError};
//!
//! // Limits are never defaulted: a missing memory limit is an error that says how to fix it.
//! let err = PartialResourceLimits { fuel: Some(1_000), timeout: Some(Duration::from_secs(1)), ..Default::default() }
//!     .resolve()
//!     .unwrap_err();
//! assert!(matches!(err, WasmError::InvalidLimits { .. }));
//! assert!(err.to_string().contains("memory"));
//!
//! // Without grants, a component gets its output streams and nothing else.
//! let caps = CapabilitySet::default();
//! assert!(caps.env.is_empty() && caps.filesystem.is_empty() && caps.network.is_none());
//! ```

pub mod actor;
pub mod address;
pub mod capability;
pub mod error;
pub mod http;
pub mod interface;
pub mod keyvalue;
pub mod limits;
pub mod proposal;
pub mod text;
pub mod units;

pub use capability::{
    Capability, CapabilitySet, ConnectRule, DirAccess, DirGrant, EnvGrant, NetworkGrant, StdioMode,
};
pub use error::{BoxError, InterfaceDenial, WasmError, WasmResult};
pub use http::{HttpGrant, OutboundRule};
pub use interface::InterfaceGrant;
pub use keyvalue::KeyValueGrant;
pub use limits::{PartialResourceLimits, ResourceLimits};
pub use proposal::{Proposal, UnknownProposal};
