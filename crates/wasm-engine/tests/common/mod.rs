//! Helpers shared by the engine's integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use airssys_wasm_core::ResourceLimits;
use airssys_wasm_engine::{CompiledComponent, Sandbox, WasmEngine};

pub const MIB: u64 = 1 << 20;
pub const PAGE: u64 = 64 * 1024;
/// A loose ceiling for "stopped in bounded time": catches a hang, not a slow machine.
pub const GROSS: Duration = Duration::from_secs(10);

/// Compiles `wasm` on `engine` (no loader: these tests are the engine's).
pub fn compile(engine: &WasmEngine, name: &str, wasm: &[u8]) -> CompiledComponent {
    let c = wasmtime::component::Component::new(engine.wasmtime_engine(), wasm).unwrap();
    CompiledComponent::new(engine, name, c).unwrap()
}

pub fn sandbox(memory: u64, fuel: u64, timeout: Duration) -> Sandbox {
    Sandbox::new(ResourceLimits::new(memory, fuel, timeout).unwrap())
}
