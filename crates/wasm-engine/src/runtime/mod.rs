//! The runtime half of the engine: the engine and its configuration (`engine.rs`,
//! `features.rs`), a compiled component and its linking (`component.rs`,
//! `linking.rs`), an instance, how one is made, and its calls (`instance/`), a call's
//! bounds and a failure's meaning (`deadline.rs`, `failure.rs`; the marker of a passed
//! deadline, `timed_out.rs`), the dense layout of memories and stacks (`density/`), the
//! limits on memory and tables (`limiter.rs`) and on what the host keeps for an
//! instance (`host_memory.rs`), the store's data (`host.rs`), what an instance runs
//! under (`sandbox.rs`) and the type descriptions (`types.rs`). What a guest may reach
//! is the other half, `crate::capabilities`.

pub(crate) mod component;
pub(crate) mod deadline;
pub(crate) mod density;
pub(crate) mod engine;
pub(crate) mod failure;
pub(crate) mod features;
pub(crate) mod host;
pub(crate) mod host_memory;
pub(crate) mod instance;
pub(crate) mod limiter;
pub(crate) mod linking;
pub(crate) mod sandbox;
pub(crate) mod timed_out;
pub(crate) mod types;
