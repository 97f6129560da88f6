//! Differential: airssys-wasm accepts exactly the components Wasmtime accepts with the
//! same proposals, so that no setting of ours can silently refuse valid components (or
//! accept ones Wasmtime would not compile). The inputs are every component of the
//! Component Model reference tests (valid and invalid ones), the testkit's fixtures and
//! its real guests; each is judged by `ComponentLoader::validate` (wasmparser with
//! `WasmEngine::wasm_features`, no compilation), by `ComponentLoader::load_from_bytes`
//! (Wasmtime compiling on our engine) and by `wasmtime::component::Component::new` on a
//! plain Wasmtime engine.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::{Path, PathBuf};

use airssys_wasm_engine::{Proposal, WasmEngine};
use airssys_wasm_loader::ComponentLoader;
use airssys_wasm_testkit as fx;
use wast::parser::{self, ParseBuffer};
use wast::{QuoteWat, QuoteWatTest, Wast, WastDirective, WastExecute};

fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../wasm-testkit/conformance/component-model")
}

fn wast_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            wast_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "wast") {
            out.push(path);
        }
    }
}

/// A binary for a directive's component, when it has one (quoted text is parsed here:
/// only binaries go to both sides).
fn binary(module: &mut QuoteWat<'_>) -> Option<Vec<u8>> {
    match module.to_test().ok()? {
        QuoteWatTest::Binary(bytes) => Some(bytes),
        QuoteWatTest::Text(text) => wat::parse_bytes(&text).ok().map(|b| b.into_owned()),
    }
}

/// Every component binary the inputs hold, named by where it came from.
fn inputs() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut files = Vec::new();
    wast_files(&conformance_dir(), &mut files);
    files.sort();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let rel = file.strip_prefix(conformance_dir()).unwrap().display();
        // Files this wast crate cannot parse any more (see the conformance test).
        let Ok(buf) = ParseBuffer::new(&text) else {
            continue;
        };
        let Ok(wast) = parser::parse::<Wast<'_>>(&buf) else {
            continue;
        };
        for d in wast.directives {
            let (line, _) = d.span().linecol_in(&text);
            let bytes = match d {
                WastDirective::Module(mut m)
                | WastDirective::ModuleDefinition(mut m)
                | WastDirective::AssertInvalid { module: mut m, .. }
                | WastDirective::AssertMalformed { module: mut m, .. } => binary(&mut m),
                WastDirective::AssertTrap {
                    exec: WastExecute::Wat(mut w),
                    ..
                } => w.encode().ok(),
                _ => None,
            };
            if let Some(bytes) = bytes {
                out.push((format!("{rel}:{}", line + 1), bytes));
            }
        }
    }
    for f in fx::ALL {
        out.push((format!("fixture {}", f.name), f.wasm.to_vec()));
    }
    for g in fx::guests::GUESTS {
        out.push((format!("guest {}", g.name), g.wasm.to_vec()));
    }
    out
}

/// Runs every input through our loader on `ours` and through Wasmtime on `raw`, and
/// returns the disagreements; also how many inputs each side accepted.
async fn disagreements(
    ours: &WasmEngine,
    raw: &wasmtime::Engine,
    inputs: &[(String, Vec<u8>)],
) -> (Vec<String>, usize) {
    let loader = ComponentLoader::new(ours);
    let mut out = Vec::new();
    let mut accepted = 0;
    for (name, bytes) in inputs {
        let validated = loader.validate(bytes).await;
        let loaded = loader.load_from_bytes(bytes).await;
        let wasmtime = wasmtime::component::Component::new(raw, bytes);
        if wasmtime.is_ok() {
            accepted += 1;
        }
        if validated.is_ok() != wasmtime.is_ok() || loaded.is_ok() != wasmtime.is_ok() {
            out.push(format!(
                "{name}: validate {}, load {}, Wasmtime {}",
                validated.map_or_else(|e| format!("refused ({e})"), |()| "accepted".into()),
                loaded.map_or_else(|e| format!("refused ({e})"), |_| "accepted".into()),
                wasmtime.map_or_else(|e| format!("refused ({e:#})"), |_| "accepted".into()),
            ));
        }
    }
    (out, accepted)
}

async fn agree(ours: WasmEngine, raw: wasmtime::Config, what: &str) {
    let raw = wasmtime::Engine::new(&raw).unwrap();
    let inputs = inputs();
    assert!(inputs.len() > 700, "only {} inputs", inputs.len());
    let (wrong, accepted) = disagreements(&ours, &raw, &inputs).await;
    println!(
        "{what}: {} inputs, {accepted} accepted by Wasmtime, {} disagreements",
        inputs.len(),
        wrong.len()
    );
    // Both verdicts occur, so agreement is not vacuous.
    assert!(
        accepted > 100 && accepted + 100 < inputs.len(),
        "{accepted}"
    );
    assert!(
        wrong.is_empty(),
        "{what}: {} disagreements with Wasmtime:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_engine_accepts_what_wasmtimes_default_accepts_but_async() {
    // Wasmtime's `Config::default()` with the one setting our default differs in:
    // component-model async, off here (it slows every call; BENCHMARKS.md).
    let mut raw = wasmtime::Config::default();
    raw.wasm_component_model(true)
        .wasm_component_model_async(false)
        .concurrency_support(false);
    agree(WasmEngine::new().unwrap(), raw, "default").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_async_on_the_engine_accepts_exactly_what_wasmtimes_default_accepts() {
    let mut raw = wasmtime::Config::default();
    raw.wasm_component_model(true);
    let ours = WasmEngine::builder()
        .component_model_async(true)
        .build()
        .unwrap();
    agree(ours, raw, "async").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_proposal_on_the_engine_accepts_what_wasmtime_does_with_them() {
    let mut raw = wasmtime::Config::default();
    let mut builder = WasmEngine::builder();
    for &p in Proposal::ALL {
        builder = builder.proposal(p, true);
    }
    raw.wasm_component_model(true)
        .wasm_component_model_async(true)
        .wasm_component_model_more_async_builtins(true)
        .wasm_component_model_async_stackful(true)
        .wasm_component_model_threading(true)
        .wasm_component_model_error_context(true)
        .wasm_component_model_map(true)
        .wasm_component_model_fixed_length_lists(true)
        .wasm_component_model_implements(true)
        .wasm_component_model_canonical_names(true)
        .wasm_component_model_accessors(true)
        .wasm_component_model_gc(true)
        .wasm_component_model_memory64(true);
    agree(builder.build().unwrap(), raw, "every proposal").await;
}
