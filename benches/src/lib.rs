//! Criterion benchmarks of airssys-wasm; see `benches/`.
