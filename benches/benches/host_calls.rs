//! Host interfaces against raw Wasmtime doing the same with `bindgen!` and a `Linker`:
//! a guest→host→guest round trip (`add(u32, u32) -> u32`, and a string in and out),
//! and instantiation of a component that imports four host interfaces. The guest is
//! the testkit's `host-calls` (Rust, `wit-bindgen`); both sides run the same host code
//! on the same engine configuration, and the raw side sets fuel before each call and a
//! fuel yield interval on its store, as airssys does. See BENCHMARKS.md.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use wasmtime::component::{Component, HasSelf, InstancePre, Linker, Resource, ResourceTable};
use wasmtime::{Engine, Store};

use airssys_wasm_benches::{RawWasi, raw_config, runtime};
use airssys_wasm_core::{CapabilitySet, InterfaceGrant, ResourceLimits};
use airssys_wasm_engine::{
    CompiledComponent, HasHostCtx, HostCtx, Sandbox, WasmEngine, WasmEngineBuilder,
};
use airssys_wasm_testkit::guests::HOST_CALLS;

mod bindings {
    #![allow(missing_docs)]
    wasmtime::component::bindgen!({
        path: "../crates/wasm-testkit/guests/host-calls/wit",
        world: "host-calls",
        imports: { default: async | trappable },
        with: { "test:host/state.counter": super::Counter },
    });
}

use bindings::HostCalls;
use bindings::test::host::{faults, math, slow, state};

const FUEL: u64 = 10_000_000;
const TEXT: &str = "a string that goes to the host and back";

pub struct Counter(u32);

/// The per-instance state of both sides.
#[derive(Default)]
struct Tenant {
    total: u64,
}

/// The host code, written once over whatever gives `&mut Tenant` and a table.
trait Side: Send {
    fn tenant(&mut self) -> &mut Tenant;
    fn table(&mut self) -> &mut ResourceTable;
}

macro_rules! host_code {
    ($ty:ty) => {
        impl math::Host for $ty {
            async fn add(&mut self, a: u32, b: u32) -> wasmtime::Result<u32> {
                Ok(a.wrapping_add(b))
            }
            async fn echo(&mut self, text: String) -> wasmtime::Result<String> {
                Ok(text)
            }
        }
        impl slow::Host for $ty {
            async fn wait(&mut self, ms: u32) -> wasmtime::Result<()> {
                tokio::time::sleep(Duration::from_millis(u64::from(ms))).await;
                Ok(())
            }
        }
        impl faults::Host for $ty {
            async fn fail(&mut self, message: String) -> wasmtime::Result<()> {
                Err(wasmtime::Error::msg(message))
            }
            async fn panic(&mut self, message: String) -> wasmtime::Result<()> {
                Err(wasmtime::Error::msg(message))
            }
            async fn burn(&mut self, _fuel: u64) -> wasmtime::Result<()> {
                Ok(())
            }
        }
        impl state::Host for $ty {
            async fn tenant(&mut self) -> wasmtime::Result<String> {
                Ok(String::new())
            }
            async fn bump(&mut self, n: u32) -> wasmtime::Result<u64> {
                let t = Side::tenant(self);
                t.total += u64::from(n);
                Ok(t.total)
            }
        }
        impl state::HostCounter for $ty {
            async fn new(&mut self, start: u32) -> wasmtime::Result<Resource<Counter>> {
                Ok(Side::table(self).push(Counter(start))?)
            }
            async fn increment(&mut self, c: Resource<Counter>) -> wasmtime::Result<u32> {
                let c = Side::table(self).get_mut(&c)?;
                c.0 += 1;
                Ok(c.0)
            }
            async fn drop(&mut self, c: Resource<Counter>) -> wasmtime::Result<()> {
                Side::table(self).delete(c)?;
                Ok(())
            }
        }
    };
}

// airssys: host code on a `HostCtx`.
impl Side for HostCtx<'_, Tenant> {
    fn tenant(&mut self) -> &mut Tenant {
        self.state()
    }
    fn table(&mut self) -> &mut ResourceTable {
        HostCtx::table(self)
    }
}
host_code!(HostCtx<'_, Tenant>);

/// Raw Wasmtime: host code on the embedder's own store data.
type RawHost = RawWasi<Tenant>;

impl Side for RawHost {
    fn tenant(&mut self) -> &mut Tenant {
        &mut self.data
    }
    fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}
host_code!(RawHost);

fn register(b: WasmEngineBuilder) -> WasmEngineBuilder {
    b.host_interface("test:host/math@1.0.0", |l, g| {
        math::add_to_linker::<_, HasHostCtx<Tenant>>(l, g)
    })
    .host_interface("test:host/slow@1.0.0", |l, g| {
        slow::add_to_linker::<_, HasHostCtx<Tenant>>(l, g)
    })
    .host_interface("test:host/faults@1.0.0", |l, g| {
        faults::add_to_linker::<_, HasHostCtx<Tenant>>(l, g)
    })
    .host_interface("test:host/state@1.0.0", |l, g| {
        state::add_to_linker::<_, HasHostCtx<Tenant>>(l, g)
    })
}

fn sandbox() -> Sandbox {
    let mut caps = CapabilitySet::deny_all();
    for name in [
        "test:host/math",
        "test:host/slow",
        "test:host/faults",
        "test:host/state",
    ] {
        caps.interfaces.push(InterfaceGrant::parse(name).unwrap());
    }
    Sandbox::new(ResourceLimits::new(16 << 20, FUEL, Duration::from_secs(5)).unwrap())
        .with_capabilities(caps)
}

static SANDBOX: std::sync::LazyLock<Sandbox> = std::sync::LazyLock::new(sandbox);

fn raw_engine() -> Engine {
    Engine::new(&raw_config()).unwrap()
}

fn raw_pre(engine: &Engine) -> InstancePre<RawHost> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    HostCalls::add_to_linker::<_, HasSelf<RawHost>>(&mut linker, |h| h).unwrap();
    linker
        .instantiate_pre(&Component::new(engine, HOST_CALLS).unwrap())
        .unwrap()
}

fn raw_store(engine: &Engine) -> Store<RawHost> {
    let mut store = Store::new(engine, RawHost::new(Tenant::default()));
    store.set_fuel(FUEL).unwrap();
    // As the engine does: a running guest yields for its timeout every interval.
    store
        .fuel_async_yield_interval(Some(airssys_wasm_engine::DEFAULT_FUEL_YIELD_INTERVAL))
        .unwrap();
    store
}

fn compiled(rt: &tokio::runtime::Runtime, engine: &WasmEngine) -> CompiledComponent {
    let c = Component::new(engine.wasmtime_engine(), HOST_CALLS).unwrap();
    let c = CompiledComponent::new(engine, "host-calls", c).unwrap();
    // Instantiated once: the engine's ticker and the component's type check are
    // one-time costs, like the raw side's `instantiate_pre`.
    rt.block_on(c.instantiate_with(&SANDBOX, Tenant::default()))
        .unwrap();
    c
}

fn round_trips(c: &mut Criterion) {
    let rt = runtime();
    let engine = register(WasmEngine::builder()).build().unwrap();
    let component = compiled(&rt, &engine);
    let mut ours = rt
        .block_on(component.instantiate_with(&SANDBOX, Tenant::default()))
        .unwrap();
    let add = ours.typed_export::<(u32, u32), (u32,)>("add").unwrap();
    let echo = ours.typed_export::<(&str,), (String,)>("echo").unwrap();

    let raw = raw_engine();
    let pre = raw_pre(&raw);
    let mut store = raw_store(&raw);
    let instance = rt.block_on(pre.instantiate_async(&mut store)).unwrap();
    let raw_add = instance
        .get_typed_func::<(u32, u32), (u32,)>(&mut store, "add")
        .unwrap();
    let raw_echo = instance
        .get_typed_func::<(&str,), (String,)>(&mut store, "echo")
        .unwrap();

    let mut g = c.benchmark_group("host_call/add_u32");
    g.bench_function("airssys", |b| {
        b.iter(|| {
            let ((v,), _) = rt.block_on(ours.call_export(&add, (40, 2))).unwrap();
            assert_eq!(v, 42);
        });
    });
    g.bench_function("raw_wasmtime", |b| {
        b.iter(|| {
            store.set_fuel(FUEL).unwrap();
            let (v,) = rt
                .block_on(raw_add.call_async(&mut store, (40, 2)))
                .unwrap();
            assert_eq!(v, 42);
        });
    });
    g.finish();

    let mut g = c.benchmark_group("host_call/echo_string");
    g.bench_function("airssys", |b| {
        b.iter(|| {
            let ((v,), _) = rt.block_on(ours.call_export(&echo, (TEXT,))).unwrap();
            assert_eq!(v.len(), TEXT.len());
        });
    });
    g.bench_function("raw_wasmtime", |b| {
        b.iter(|| {
            store.set_fuel(FUEL).unwrap();
            let (v,) = rt
                .block_on(raw_echo.call_async(&mut store, (TEXT,)))
                .unwrap();
            assert_eq!(v.len(), TEXT.len());
        });
    });
    g.finish();
}

fn instantiation(c: &mut Criterion) {
    let rt = runtime();
    let engine = register(WasmEngine::builder()).build().unwrap();
    let component = compiled(&rt, &engine);
    let raw = raw_engine();
    let pre = raw_pre(&raw);

    let mut g = c.benchmark_group("instantiate_and_call/host_interfaces_4");
    g.bench_function("airssys", |b| {
        b.to_async(&rt).iter(|| async {
            let mut i = component
                .instantiate_with(&SANDBOX, Tenant::default())
                .await
                .unwrap();
            let ((v,), _) = i
                .call_typed::<(u32, u32), (u32,)>("add", (40, 2))
                .await
                .unwrap();
            assert_eq!(v, 42);
        });
    });
    g.bench_function("raw_wasmtime", |b| {
        b.to_async(&rt).iter(|| async {
            let mut store = raw_store(&raw);
            let instance = pre.instantiate_async(&mut store).await.unwrap();
            let f = instance
                .get_typed_func::<(u32, u32), (u32,)>(&mut store, "add")
                .unwrap();
            let (v,) = f.call_async(&mut store, (40, 2)).await.unwrap();
            assert_eq!(v, 42);
        });
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = round_trips, instantiation
}
criterion_main!(benches);
