//! # airssys-wasm-engine
//!
//! The Wasmtime engine of airssys-wasm and sandboxed execution of components.
//!
//! - [`WasmEngine`]: one shared, cheaply cloned engine (WebAssembly 3.0 and the Component
//!   Model as Wasmtime accepts them by default, Cranelift, fuel metering, epoch
//!   interruption, bounded stack) with its epoch ticker; component-model async (WASI 0.3)
//!   and later Component Model proposals are [`Proposal`]s switched on its builder.
//! - [`CompiledComponent`]: compiled code, instantiated any number of times, from any
//!   number of tasks.
//! - [`ComponentInstance`]: one instance under a [`Sandbox`] — mandatory
//!   [`ResourceLimits`](airssys_wasm_core::ResourceLimits) (total linear memory, fuel
//!   per call, wall-clock timeout per call) and a
//!   [`CapabilitySet`](airssys_wasm_core::CapabilitySet) that grants WASI access and
//!   nothing more.
//!
//! Every call returns an [`ExecutionReport`] (fuel, peak memory, and the wall time when
//! the sandbox measures it). A trap or a limit ends that call and poisons that instance;
//! nothing else is affected.
//!
//! ```
//! use std::time::Duration;
//! use airssys_wasm_core::ResourceLimits;
//! use airssys_wasm_engine::{CompiledComponent, Sandbox, WasmEngine};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = WasmEngine::new()?;
//! let wat = r#"(component
//!     (core module $m (func (export "double") (param i32) (result i32)
//!         local.get 0 i32.const 2 i32.mul))
//!     (core instance $i (instantiate $m))
//!     (func (export "double") (param "x" s32) (result s32) (canon lift (core func $i "double"))))"#;
//! // (`airssys_wasm_loader::ComponentLoader` validates and compiles for you.)
//! let bytes = wat::parse_str(wat)?;
//! let component = wasmtime::component::Component::new(engine.wasmtime_engine(), &bytes)?;
//! let component = CompiledComponent::new(&engine, "double", component)?;
//!
//! let limits = ResourceLimits::new(1 << 20, 1_000_000, Duration::from_secs(1))?;
//! let mut instance = component.instantiate(&Sandbox::new(limits)).await?;
//! let ((doubled,), report) = instance.call_typed::<(i32,), (i32,)>("double", (21,)).await?;
//! assert_eq!(doubled, 42);
//! assert!(report.fuel_consumed > 0);
//!
//! let outcome = instance.invoke("double(4)").await?;
//! assert_eq!(outcome.results_wave()?, ["8"]);
//! # Ok(())
//! # }
//! ```

mod component;
mod deadline;
mod engine;
mod failure;
mod features;
mod host;
mod host_interface;
mod instance;
mod limiter;
mod linking;
mod sandbox;
mod types;

pub use component::CompiledComponent;
pub use engine::{
    DEFAULT_EPOCH_TICK, DEFAULT_MAX_WASM_STACK, Optimization, Pooling, WasmEngine,
    WasmEngineBuilder,
};
pub use features::{Proposal, UnknownProposal};
pub use host::HostState;
pub use host_interface::{HasHostCtx, HostCtx, HostGetter, MAX_HOST_INTERFACES, charge_fuel};
pub use instance::{CallOutcome, ComponentInstance, TypedExport};
pub use linking::Provider;
pub use sandbox::{ExecutionReport, Sandbox};
pub use types::ItemInfo;

/// Wasmtime's component value type, re-exported for dynamic calls.
pub use wasmtime::component::Val;
