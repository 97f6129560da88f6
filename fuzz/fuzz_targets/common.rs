//! Shared set-up: one engine and one single-threaded runtime per fuzzing process.
#![allow(dead_code)] // each target uses what it needs

use std::sync::OnceLock;
use std::time::Duration;

use airssys_wasm_core::ResourceLimits;
use airssys_wasm_engine::{Sandbox, WasmEngine};

pub fn engine() -> &'static WasmEngine {
    static ENGINE: OnceLock<WasmEngine> = OnceLock::new();
    ENGINE.get_or_init(|| WasmEngine::new().expect("engine"))
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    thread_local! {
        static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
    }
    RT.with(|rt| rt.block_on(f))
}

/// Small limits: a fuzz input must not run for long or grow large.
pub fn sandbox() -> Sandbox {
    Sandbox::new(ResourceLimits::new(4 << 20, 1_000_000, Duration::from_secs(1)).expect("limits"))
}
