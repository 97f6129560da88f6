//! A plugin host: it defines its own WIT API (`wit/plugins.wit`: logging, an event
//! record it collects, a counter resource, and a key-value store it hands out
//! sparingly), loads every plugin of a directory through its `Component.toml`, grants
//! each what its manifest says, runs them concurrently with separate state, and prints
//! what each did.
//!
//! ```text
//! cargo run --release -p plugin-host [-- PLUGINS_DIR [INPUT]]
//! ```

#![allow(clippy::print_stdout)] // an example program reports on stdout

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use airssys_wasm_engine::{HasHostCtx, HostCtx, Sandbox, WasmEngine};
use airssys_wasm_loader::{CacheConfig, ComponentLoader, LoadOptions, Source};
use airssys_wasm_manifest::ComponentManifest;
use anyhow::Context as _;
use wasmtime::component::Resource;

mod bindings {
    #![allow(missing_docs)]
    wasmtime::component::bindgen!({
        path: "wit",
        world: "kv-plugin",
        // Host functions are async (they may wait, under the call's timeout) and
        // trappable (an `Err` ends the call with a typed error).
        imports: { default: async | trappable },
        with: { "acme:plugins/counters.counter": super::CounterHandle },
    });
}

use bindings::acme::plugins::events::{Event, Rejection};
use bindings::acme::plugins::log::Level;
use bindings::acme::plugins::{counters, events, kv, log};

/// The most events and log lines one plugin instance may leave in the host.
const MAX_EVENTS: u32 = 100;
const MAX_LINES: usize = 100;

/// What one plugin instance has in the host: its own, shared with no other.
#[derive(Debug, Default)]
pub struct PluginState {
    lines: Vec<String>,
    events: Vec<Event>,
    counters: BTreeMap<String, i64>,
    kv: BTreeMap<String, String>,
}

/// What a guest's `counter` handle stands for: one of its plugin's counters.
#[derive(Debug)]
pub struct CounterHandle {
    name: String,
}

impl log::Host for HostCtx<'_, PluginState> {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let lines = &mut self.state().lines;
        if lines.len() < MAX_LINES {
            lines.push(format!("[{}] {message}", level_name(level)));
        }
        Ok(())
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    }
}

impl events::Host for HostCtx<'_, PluginState> {
    async fn emit(&mut self, e: Event) -> wasmtime::Result<Result<u32, Rejection>> {
        if e.kind.is_empty() || e.kind.len() > 64 {
            return Ok(Err(Rejection::BadKind(e.kind)));
        }
        let events = &mut self.state().events;
        let seq = u32::try_from(events.len()).unwrap_or(u32::MAX);
        if seq >= MAX_EVENTS {
            return Ok(Err(Rejection::QuotaExceeded(MAX_EVENTS)));
        }
        events.push(e);
        Ok(Ok(seq))
    }
}

impl counters::Host for HostCtx<'_, PluginState> {}

impl counters::HostCounter for HostCtx<'_, PluginState> {
    async fn new(&mut self, name: String) -> wasmtime::Result<Resource<CounterHandle>> {
        self.state().counters.entry(name.clone()).or_insert(0);
        // Bounded: a plugin making handles in a loop hits the instance's bound.
        self.push(CounterHandle { name })
    }

    async fn add(&mut self, c: Resource<CounterHandle>, n: i64) -> wasmtime::Result<i64> {
        let name = self.get(&c)?.name.clone();
        let value = self.state().counters.entry(name).or_insert(0);
        *value = value.saturating_add(n);
        Ok(*value)
    }

    async fn get(&mut self, c: Resource<CounterHandle>) -> wasmtime::Result<i64> {
        let name = self.get(&c)?.name.clone();
        Ok(self.state().counters.get(&name).copied().unwrap_or(0))
    }

    async fn drop(&mut self, c: Resource<CounterHandle>) -> wasmtime::Result<()> {
        self.delete(c)?;
        Ok(())
    }
}

impl kv::Host for HostCtx<'_, PluginState> {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.state().kv.get(&key).cloned())
    }

    async fn set(&mut self, key: String, value: String) -> wasmtime::Result<()> {
        self.state().kv.insert(key, value);
        Ok(())
    }
}

/// The engine with the host's four interfaces registered: every plugin may import
/// them, but only what its manifest grants.
fn engine() -> anyhow::Result<WasmEngine> {
    Ok(WasmEngine::builder()
        .host_interface("acme:plugins/log@1.0.0", |l, g| {
            log::add_to_linker::<_, HasHostCtx<PluginState>>(l, g)
        })
        .host_interface("acme:plugins/events@1.0.0", |l, g| {
            events::add_to_linker::<_, HasHostCtx<PluginState>>(l, g)
        })
        .host_interface("acme:plugins/counters@1.0.0", |l, g| {
            counters::add_to_linker::<_, HasHostCtx<PluginState>>(l, g)
        })
        .host_interface("acme:plugins/kv@1.0.0", |l, g| {
            kv::add_to_linker::<_, HasHostCtx<PluginState>>(l, g)
        })
        .build()?)
}

/// What running one plugin came to.
struct Outcome {
    name: String,
    manifest: PathBuf,
    result: Result<(String, PluginState, String), String>,
}

async fn run_plugin(loader: &ComponentLoader, manifest_path: PathBuf, input: String) -> Outcome {
    let manifest = match ComponentManifest::load(&manifest_path) {
        Ok(m) => m,
        Err(e) => {
            return Outcome {
                name: manifest_path.display().to_string(),
                manifest: manifest_path,
                result: Err(e.to_string()),
            };
        }
    };
    let name = manifest.name().to_owned();
    let result = async {
        let limits = manifest.resource_limits().map_err(|e| e.to_string())?;
        let mut options = LoadOptions::named(&name);
        // A pinned plugin is checked before it is compiled or taken from the cache.
        if let Some(pin) = &manifest.component.sha256 {
            options = options.sha256(pin);
        }
        let path = manifest.component_path();
        let component = loader
            .load(Source::File(&path), &options)
            .await
            .map_err(|e| e.to_string())?
            .component;
        let sandbox = Sandbox::new(limits).with_capabilities(manifest.capability_set());
        let mut instance = component
            .instantiate_with(&sandbox, PluginState::default())
            .await
            .map_err(|e| e.to_string())?;
        let ((summary,), report) = instance
            .call_typed::<(&str,), (String,)>("run", (&input,))
            .await
            .map_err(|e| e.to_string())?;
        let state = instance
            .state::<PluginState>()
            .map(std::mem::take)
            .unwrap_or_default();
        Ok((summary, state, report.to_string()))
    }
    .await;
    Outcome {
        name,
        manifest: manifest_path,
        result,
    }
}

fn print(o: &Outcome) {
    println!("== {}", o.name);
    match &o.result {
        Err(e) => {
            println!("   refused: {e}");
            println!("   (manifest: {})", o.manifest.display());
        }
        Ok((summary, state, report)) => {
            println!("   result:   {summary}");
            for line in &state.lines {
                println!("   log:      {line}");
            }
            for (i, e) in state.events.iter().enumerate() {
                let attributes: Vec<String> = e
                    .attributes
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let value = e.value.map(|v| format!(" value {v}")).unwrap_or_default();
                println!(
                    "   event #{i}: {} {{{}}}{value}",
                    e.kind,
                    attributes.join(", ")
                );
            }
            for (name, value) in &state.counters {
                println!("   counter:  {name} = {value}");
            }
            println!("   used:     {report}");
        }
    }
}

fn plugin_manifests(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let manifest = entry?.path().join("Component.toml");
        if manifest.is_file() {
            found.push(manifest);
        }
    }
    found.sort();
    Ok(found)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins"),
        PathBuf::from,
    );
    let input = args
        .next()
        .unwrap_or_else(|| "Ada Grace Barbara Ada".to_owned());

    let engine = engine()?;
    let mut loader = ComponentLoader::new(&engine);
    // The JavaScript plugin takes seconds to compile; from the cache, its next start
    // takes milliseconds. PLUGIN_HOST_CACHE chooses the directory.
    let cache = std::env::var_os("PLUGIN_HOST_CACHE")
        .map(CacheConfig::new)
        .or_else(CacheConfig::user_default);
    if let Some(cache) = cache {
        loader = loader.with_cache(cache);
    }
    let manifests = plugin_manifests(&dir)?;
    println!(
        "{} plugins in {}; the host provides: {}",
        manifests.len(),
        dir.display(),
        engine.host_interfaces().collect::<Vec<_>>().join(", ")
    );
    // All at once, each with its own instance and state.
    let runs = manifests.into_iter().map(|m| {
        let loader = loader.clone();
        let input = input.clone();
        tokio::spawn(async move { run_plugin(&loader, m, input).await })
    });
    let mut outcomes = Vec::new();
    for run in runs.collect::<Vec<_>>() {
        outcomes.push(run.await.context("a plugin task failed")?);
    }
    for o in &outcomes {
        print(o);
    }
    Ok(())
}
