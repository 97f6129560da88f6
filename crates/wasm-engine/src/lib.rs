//! # airssys-wasm-engine
//!
//! The Wasmtime engine of airssys-wasm and sandboxed execution of components.
//!
//! - [`WasmEngine`]: one shared, cheaply cloned engine (WebAssembly 3.0 and the Component
//!   Model as Wasmtime accepts them by default, Cranelift, fuel metering with timeouts
//!   through fuel yields — or epoch interruption and a ticker, see [`Interruption`] —,
//!   bounded stack); component-model async (WASI 0.3)
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
//! Embedders give components APIs of their own as **host interfaces**: WIT interfaces
//! implemented with Wasmtime's `bindgen!` on a [`HostCtx`], registered on the engine
//! ([`WasmEngineBuilder::host_interface`]) and granted per component (example below;
//! `docs/host-interfaces.md`).
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
//!
//! A host interface: the WIT, its host code on [`HostCtx`] with per-instance state,
//! the registration, the grant, and a component that calls it.
//!
//! ```
//! use std::time::Duration;
//! use airssys_wasm_core::{CapabilitySet, InterfaceGrant, ResourceLimits};
//! use airssys_wasm_engine::{CompiledComponent, HasHostCtx, HostCtx, Sandbox, WasmEngine};
//!
//! wasmtime::component::bindgen!({
//!     inline: "
//!         package acme:plugins@1.0.0;
//!         interface tally { add: func(n: u32) -> u32; }
//!         world plugin { import tally; }
//!     ",
//!     imports: { default: async | trappable },
//! });
//!
//! /// What each instance has in the host: its own, shared with no other.
//! struct Tenant { total: u32 }
//!
//! impl acme::plugins::tally::Host for HostCtx<'_, Tenant> {
//!     async fn add(&mut self, n: u32) -> wasmtime::Result<u32> {
//!         let tenant = self.state();
//!         tenant.total += n;
//!         Ok(tenant.total)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = WasmEngine::builder()
//!     .host_interface("acme:plugins/tally@1.0.0", |linker, getter| {
//!         acme::plugins::tally::add_to_linker::<_, HasHostCtx<Tenant>>(linker, getter)
//!     })
//!     .build()?;
//! // A component whose export `twice` calls the host's `add` twice.
//! let wat = r#"(component
//!     (import "acme:plugins/tally@1.0.0" (instance $t
//!         (export "add" (func (param "n" u32) (result u32)))))
//!     (core func $add (canon lower (func $t "add")))
//!     (core module $m
//!         (import "host" "add" (func $add (param i32) (result i32)))
//!         (func (export "twice") (param i32) (result i32)
//!             local.get 0 call $add drop local.get 0 call $add))
//!     (core instance $i (instantiate $m (with "host" (instance (export "add" (func $add))))))
//!     (func (export "twice") (param "n" u32) (result u32) (canon lift (core func $i "twice"))))"#;
//! let bytes = wat::parse_str(wat)?;
//! let component = wasmtime::component::Component::new(engine.wasmtime_engine(), &bytes)?;
//! let component = CompiledComponent::new(&engine, "tally-user", component)?;
//!
//! let limits = ResourceLimits::new(1 << 20, 1_000_000, Duration::from_secs(1))?;
//! // Denied unless granted: `interfaces = ["acme:plugins/tally"]` in a Component.toml.
//! let denied = component.instantiate_with(&Sandbox::new(limits.clone()), Tenant { total: 0 }).await;
//! assert!(denied.unwrap_err().is_denied_error());
//!
//! let mut caps = CapabilitySet::deny_all();
//! caps.interfaces.push(InterfaceGrant::parse("acme:plugins/tally@1.0.0")?);
//! let sandbox = Sandbox::new(limits).with_capabilities(caps);
//! let mut a = component.instantiate_with(&sandbox, Tenant { total: 0 }).await?;
//! let mut b = component.instantiate_with(&sandbox, Tenant { total: 100 }).await?;
//! assert_eq!(a.call_typed::<(u32,), (u32,)>("twice", (5,)).await?.0, (10,));
//! assert_eq!(b.call_typed::<(u32,), (u32,)>("twice", (5,)).await?.0, (110,));
//! assert_eq!(a.state::<Tenant>().map(|t| t.total), Some(10));
//! # Ok(())
//! # }
//! ```

mod capabilities;
mod runtime;

pub use capabilities::audit::{AUDIT_TARGET, Denial, MAX_AUDIT_RECORDS_PER_CALL};
pub use capabilities::config::ConfigSource;
pub use capabilities::host_interface::{
    HasHostCtx, HostCtx, HostGetter, MAX_HOST_INTERFACES, charge_fuel,
};
pub use capabilities::http::{ACCESS_LOG_TARGET, Handled, HttpHandler, HttpLimits, ResponseBody};
pub use capabilities::keyvalue;
pub use capabilities::logging::{
    GUEST_LOG_TARGET, MAX_LOG_BYTES_PER_CALL, MAX_LOG_CONTEXT_CHARS, MAX_LOG_MESSAGE_BYTES,
    MAX_LOG_RECORDS_PER_CALL,
};
pub use capabilities::wasi::output::{MAX_OUTPUT_BYTES, MAX_OUTPUT_LINE_BYTES};
pub use runtime::component::CompiledComponent;
pub use runtime::density::{DEFAULT_WARM_STACKS, Density};
pub use runtime::engine::{
    DEFAULT_EPOCH_TICK, DEFAULT_FUEL_YIELD_INTERVAL, DEFAULT_MAX_WASM_STACK, Interruption,
    Optimization, Pooling, WasmEngine, WasmEngineBuilder,
};
pub use runtime::features::{Proposal, UnknownProposal};
pub use runtime::host::HostState;
pub use runtime::instance::{CallOutcome, ComponentInstance, TypedExport};
pub use runtime::linking::Provider;
pub use runtime::sandbox::{DEFAULT_MAX_OUTGOING_REQUESTS, ExecutionReport, Sandbox};
pub use runtime::types::ItemInfo;

/// Wasmtime's component value type, re-exported for dynamic calls.
pub use wasmtime::component::Val;
