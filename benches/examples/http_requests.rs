//! N `GET /` requests through an `HttpHandler` serving the testkit's `http-hello` guest
//! (a fresh instance per request, its response headers built by the guest), for an
//! instruction count (`valgrind --tool=callgrind`): the count at two values of N, taken
//! apart, is what one request costs, free of the wall clock's noise.
//!
//! `cargo run --release -p airssys-wasm-benches --example http_requests -- N`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use airssys_wasm_core::ResourceLimits;
use airssys_wasm_engine::{CompiledComponent, HttpHandler, HttpLimits, Sandbox, WasmEngine};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};

fn main() {
    let n: u32 = std::env::args().nth(1).unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let engine = WasmEngine::new().unwrap();
        let component = CompiledComponent::new(
            &engine,
            "http-hello",
            wasmtime::component::Component::new(
                engine.wasmtime_engine(),
                airssys_wasm_testkit::guests::HTTP_HELLO,
            )
            .unwrap(),
        )
        .unwrap();
        let limits = ResourceLimits::new(16 << 20, 100_000_000, Duration::from_secs(5)).unwrap();
        let handler =
            HttpHandler::new(&component, Sandbox::new(limits), HttpLimits::default()).unwrap();
        for _ in 0..n {
            let request = http::Request::get("http://localhost/")
                .body(Empty::<Bytes>::new())
                .unwrap();
            let response = handler.handle(request).await;
            assert_eq!(response.status(), 200);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert!(!body.is_empty());
        }
    });
}
