//! Host interfaces: WIT interfaces the embedder implements with `bindgen!`, granted per
//! component, under the call's limits. The guest is the testkit's `host-calls`, built
//! with `wit-bindgen` from `guests/host-calls/wit`, the same WIT these bindings use.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use airssys_wasm_core::{CapabilitySet, InterfaceGrant, WasmError};
use airssys_wasm_engine::{
    CompiledComponent, HasHostCtx, HostCtx, Interruption, Sandbox, WasmEngine, WasmEngineBuilder,
    charge_fuel,
};
use airssys_wasm_testkit::guests::HOST_CALLS;
use common::{GROSS, MIB, compile, sandbox};
use wasmtime::component::{Access, Resource};

mod bindings {
    #![allow(missing_docs)]
    wasmtime::component::bindgen!({
        path: "../wasm-testkit/guests/host-calls/wit",
        world: "host-calls",
        imports: {
            "test:host/faults.burn": async | trappable | store,
            default: async | trappable,
        },
        with: { "test:host/state.counter": super::Counter },
    });
}

use bindings::test::host::{faults, math, slow, state};

/// The embedder's per-instance state.
#[derive(Debug, Default)]
struct Tenant {
    name: String,
    total: u64,
}

/// What a `counter` handle stands for in the host.
pub struct Counter(u32);

// `math` is stateless: its host code runs on `()`.
impl math::Host for HostCtx<'_, ()> {
    async fn add(&mut self, a: u32, b: u32) -> wasmtime::Result<u32> {
        Ok(a.wrapping_add(b))
    }

    async fn echo(&mut self, text: String) -> wasmtime::Result<String> {
        Ok(text)
    }
}

impl slow::Host for HostCtx<'_, Tenant> {
    async fn wait(&mut self, ms: u32) -> wasmtime::Result<()> {
        if ms == 0 {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(Duration::from_millis(u64::from(ms))).await;
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the embedder refused: {0}")]
struct Refused(String);

impl faults::Host for HostCtx<'_, Tenant> {
    async fn fail(&mut self, message: String) -> wasmtime::Result<()> {
        Err(wasmtime::Error::new(Refused(message)))
    }

    async fn panic(&mut self, message: String) -> wasmtime::Result<()> {
        panic!("host code panicked on purpose: {message}");
    }
}

// `burn` is generated with the `store` flag: it gets the store, to charge fuel.
impl<T: Send> faults::HostWithStore<T> for HasHostCtx<Tenant> {
    async fn burn(mut access: Access<'_, T, Self>, fuel: u64) -> wasmtime::Result<()> {
        charge_fuel(&mut access, fuel)
    }
}

impl state::Host for HostCtx<'_, Tenant> {
    async fn tenant(&mut self) -> wasmtime::Result<String> {
        let component = self.component().to_owned();
        Ok(format!("{} ({component})", self.state().name))
    }

    async fn bump(&mut self, n: u32) -> wasmtime::Result<u64> {
        let s = self.state();
        s.total += u64::from(n);
        Ok(s.total)
    }
}

impl state::HostCounter for HostCtx<'_, Tenant> {
    async fn new(&mut self, start: u32) -> wasmtime::Result<Resource<Counter>> {
        self.push(Counter(start))
    }

    async fn increment(&mut self, counter: Resource<Counter>) -> wasmtime::Result<u32> {
        let c = self.get(&counter)?;
        c.0 = c.0.wrapping_add(1);
        Ok(c.0)
    }

    async fn drop(&mut self, counter: Resource<Counter>) -> wasmtime::Result<()> {
        self.delete(counter)?;
        Ok(())
    }
}

/// The four interfaces of `test:host`, registered as `version`.
fn with_test_host(b: WasmEngineBuilder, version: &str) -> WasmEngineBuilder {
    b.host_interface(&format!("test:host/math@{version}"), |l, g| {
        math::add_to_linker::<_, HasHostCtx<()>>(l, g)
    })
    .host_interface(&format!("test:host/slow@{version}"), |l, g| {
        slow::add_to_linker::<_, HasHostCtx<Tenant>>(l, g)
    })
    .host_interface(&format!("test:host/faults@{version}"), |l, g| {
        faults::add_to_linker::<_, HasHostCtx<Tenant>>(l, g)
    })
    .host_interface(&format!("test:host/state@{version}"), |l, g| {
        state::add_to_linker::<_, HasHostCtx<Tenant>>(l, g)
    })
}

fn engine() -> WasmEngine {
    with_test_host(WasmEngine::builder(), "1.0.0")
        .build()
        .unwrap()
}

fn grants(names: &[&str]) -> CapabilitySet {
    let mut caps = CapabilitySet::deny_all();
    caps.interfaces = names
        .iter()
        .map(|n| InterfaceGrant::parse(n).unwrap())
        .collect();
    caps
}

const ALL: &[&str] = &[
    "test:host/math",
    "test:host/slow",
    "test:host/faults",
    "test:host/state",
];

fn granted(timeout: Duration) -> Sandbox {
    sandbox(16 * MIB, 100_000_000, timeout).with_capabilities(grants(ALL))
}

fn tenant(name: &str) -> Tenant {
    Tenant {
        name: name.into(),
        total: 0,
    }
}

async fn instance(c: &CompiledComponent, name: &str) -> airssys_wasm_engine::ComponentInstance {
    c.instantiate_with(&granted(Duration::from_secs(5)), tenant(name))
        .await
        .unwrap()
}

#[tokio::test]
async fn guest_host_round_trips_with_strings_records_and_resources() {
    let e = engine();
    let c = compile(&e, "host-calls", HOST_CALLS);
    let mut i = instance(&c, "acme").await;
    let ((sum,), _) = i
        .call_typed::<(u32, u32), (u32,)>("add", (40, 2))
        .await
        .unwrap();
    assert_eq!(sum, 42);
    let ((echo,), _) = i
        .call_typed::<(&str,), (String,)>("echo", ("héllo wörld",))
        .await
        .unwrap();
    assert_eq!(echo, "héllo wörld");
    let ((who,), _) = i.call_typed::<(), (String,)>("tenant", ()).await.unwrap();
    assert_eq!(who, "acme (host-calls)");
    let ((last,), _) = i
        .call_typed::<(u32, u32), (u32,)>("count", (10, 5))
        .await
        .unwrap();
    assert_eq!(last, 15);
    // State lives across calls of one instance.
    i.call_typed::<(u32,), (u64,)>("bump", (3,)).await.unwrap();
    let ((total,), _) = i.call_typed::<(u32,), (u64,)>("bump", (4,)).await.unwrap();
    assert_eq!(total, 7);
    assert!(i.poisoned().is_none());
}

#[tokio::test]
async fn every_import_must_be_granted_and_each_missing_one_is_named_with_its_fix() {
    let e = engine();
    let c = compile(&e, "host-calls", HOST_CALLS);
    let limits = || sandbox(16 * MIB, 1_000_000, Duration::from_secs(1));

    // Nothing granted: all four named, with the line that grants each.
    let err = c
        .instantiate_with(&limits(), tenant("t"))
        .await
        .unwrap_err();
    let WasmError::InterfacesDenied { component, denied } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(component, "host-calls");
    let names: Vec<_> = denied.iter().map(|d| d.interface.as_str()).collect();
    assert_eq!(
        names,
        [
            "test:host/math@1.0.0",
            "test:host/slow@1.0.0",
            "test:host/faults@1.0.0",
            "test:host/state@1.0.0"
        ]
    );
    assert!(err.is_denied_error() && err.is_runtime_error());
    let msg = err.to_string();
    assert!(
        msg.contains(r#"interfaces = ["test:host/state@1.0.0"]"#) && msg.contains("not granted"),
        "{msg}"
    );

    // One missing: only it is named.
    let three = limits().with_capabilities(grants(&ALL[..3]));
    let err = c.instantiate_with(&three, tenant("t")).await.unwrap_err();
    let WasmError::InterfacesDenied { denied, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(denied.len(), 1, "{err}");
    assert_eq!(denied[0].interface, "test:host/state@1.0.0");

    // Versioned grants: a compatible version grants, another major does not.
    let v1 = [
        "test:host/math@1.4.0",
        "test:host/slow@1.0.0",
        "test:host/faults",
        "test:host/state@1.0.0",
    ];
    c.instantiate_with(&limits().with_capabilities(grants(&v1)), tenant("t"))
        .await
        .unwrap();
    let v2 = [
        "test:host/math@2.0.0",
        "test:host/slow@1.0.0",
        "test:host/faults",
        "test:host/state@1.0.0",
    ];
    let err = c
        .instantiate_with(&limits().with_capabilities(grants(&v2)), tenant("t"))
        .await
        .unwrap_err();
    let msg = err.to_string();
    // The import is not granted by @2.0.0, and @2.0.0 is nothing this host provides.
    assert!(
        msg.contains("`test:host/math@1.0.0` is imported, but not granted"),
        "{msg}"
    );
    assert!(
        msg.contains("`test:host/math@2.0.0` is granted, but this host does not provide it"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_grant_the_host_does_not_provide_is_refused_with_where_it_was_written() {
    let e = engine();
    let c = compile(&e, "host-calls", HOST_CALLS);
    let mut caps = grants(ALL);
    caps.interfaces.push(
        InterfaceGrant::parse("acme:plugins/kv@1.2.0")
            .unwrap()
            .with_origin("Component.toml:9:28"),
    );
    let s = sandbox(16 * MIB, 1_000_000, Duration::from_secs(1)).with_capabilities(caps);
    let err = c.instantiate_with(&s, tenant("t")).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("`acme:plugins/kv@1.2.0` is granted (at Component.toml:9:28), but this host does not provide it")
            && msg.contains("test:host/math@1.0.0"),
        "{msg}"
    );
}

/// A component importing `test:host/math` at `version`, exporting `add` through it.
fn math_user(version: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(component
            (import "test:host/math@{version}" (instance $math
                (export "add" (func (param "a" u32) (param "b" u32) (result u32)))))
            (core func $add (canon lower (func $math "add")))
            (core module $m
                (import "host" "add" (func $add (param i32 i32) (result i32)))
                (func (export "add") (param i32 i32) (result i32)
                    local.get 0 local.get 1 call $add))
            (core instance $i (instantiate $m (with "host" (instance (export "add" (func $add))))))
            (func (export "add") (param "a" u32) (param "b" u32) (result u32)
                (canon lift (core func $i "add"))))"#
    ))
    .unwrap()
}

#[tokio::test]
async fn versions_match_by_semver_like_wasmtimes_linker() {
    // The host provides math@1.3.0.
    let e = with_test_host(WasmEngine::builder(), "1.3.0")
        .build()
        .unwrap();
    let run = |import: &'static str, grant: &'static str| {
        let e = e.clone();
        async move {
            let c = compile(&e, "math-user", &math_user(import));
            let s =
                sandbox(MIB, 1_000_000, Duration::from_secs(1)).with_capabilities(grants(&[grant]));
            let mut i = c.instantiate(&s).await?;
            let ((v,), _) = i.call_typed::<(u32, u32), (u32,)>("add", (2, 3)).await?;
            Ok::<u32, WasmError>(v)
        }
    };
    // Import 1.0.0 and 1.5.0 are served by 1.3.0; grants match by the same rule.
    assert_eq!(run("1.0.0", "test:host/math").await.unwrap(), 5);
    assert_eq!(run("1.0.0", "test:host/math@1.0.0").await.unwrap(), 5);
    assert_eq!(run("1.5.0", "test:host/math@1.2.0").await.unwrap(), 5);
    // Another major is not provided; a grant of another major does not grant.
    let err = run("2.0.0", "test:host/math").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("`test:host/math@2.0.0` is imported, but this host does not provide it"),
        "{err}"
    );
    let err = run("1.0.0", "test:host/math@0.9.0").await.unwrap_err();
    assert!(err.is_denied_error(), "{err}");
}

#[tokio::test]
async fn a_host_function_that_never_returns_is_cancelled_at_the_deadline() {
    // With either way of interrupting a running guest.
    for mode in [Interruption::FuelYields, Interruption::Epochs] {
        let e = with_test_host(WasmEngine::builder().interruption(mode), "1.0.0")
            .build()
            .unwrap();
        let c = compile(&e, "host-calls", HOST_CALLS);
        let mut stuck = c
            .instantiate_with(&granted(Duration::from_millis(200)), tenant("t"))
            .await
            .unwrap();
        let started = Instant::now();
        let err = stuck
            .call_typed::<(u32,), (u32,)>("wait", (0,))
            .await
            .unwrap_err();
        assert!(started.elapsed() < GROSS);
        let WasmError::ComponentTimeout {
            max_execution_ms,
            in_host,
            ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(*max_execution_ms, 200);
        assert_eq!(in_host.as_deref(), Some("`test:host/slow@1.0.0#wait`"));
        assert!(
            err.to_string()
                .contains("while waiting in host function `test:host/slow@1.0.0#wait`"),
            "{err}"
        );
        // Poisoned; the engine and other instances carry on.
        let again = stuck.call_typed::<(u32, u32), (u32,)>("add", (1, 1)).await;
        assert!(matches!(again, Err(WasmError::InstancePoisoned { .. })));
        let mut other = instance(&c, "u").await;
        let ((v,), _) = other
            .call_typed::<(u32,), (u32,)>("wait", (5,))
            .await
            .unwrap();
        assert_eq!(v, 1);
    }
}

/// A component that calls `test:host/math#add`, then loops forever.
fn add_then_spin() -> Vec<u8> {
    wat::parse_str(
        r#"(component
            (import "test:host/math@1.0.0" (instance $math
                (export "add" (func (param "a" u32) (param "b" u32) (result u32)))))
            (core func $add (canon lower (func $math "add")))
            (core module $m
                (import "host" "add" (func $add (param i32 i32) (result i32)))
                (func (export "run") (result i32)
                    (drop (call $add (i32.const 1) (i32.const 2)))
                    (loop $l (br $l))
                    (i32.const 0)))
            (core instance $i (instantiate $m (with "host" (instance (export "add" (func $add))))))
            (func (export "run") (result u32) (canon lift (core func $i "run"))))"#,
    )
    .unwrap()
}

#[tokio::test]
async fn a_loop_after_a_host_call_times_out_in_guest_code_not_in_the_host_function() {
    // The guest entered the embedder's function last, but it was looping in its own
    // code when the timeout came: the error must not blame the host function — with
    // either way of interrupting a running guest.
    for mode in [Interruption::FuelYields, Interruption::Epochs] {
        let e = with_test_host(WasmEngine::builder().interruption(mode), "1.0.0")
            .build()
            .unwrap();
        let c = compile(&e, "add-then-spin", &add_then_spin());
        let unlimited_fuel =
            sandbox(16 * MIB, u64::MAX, Duration::from_millis(200)).with_capabilities(grants(ALL));
        let mut i = c.instantiate(&unlimited_fuel).await.unwrap();
        let started = Instant::now();
        let err = i.call_typed::<(), (u32,)>("run", ()).await.unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(200), "{mode:?}");
        assert!(started.elapsed() < GROSS, "{mode:?}");
        let WasmError::ComponentTimeout { in_host, .. } = &err else {
            panic!("{mode:?}: {err:?}")
        };
        assert_eq!(*in_host, None, "{mode:?}: {err}");
    }
}

#[tokio::test]
async fn a_host_error_ends_the_call_with_a_typed_error_that_keeps_the_embedders() {
    let e = engine();
    let c = compile(&e, "host-calls", HOST_CALLS);
    let mut i = instance(&c, "t").await;
    let err = i
        .call_typed::<(&str,), ()>("fail", ("no quota left",))
        .await
        .unwrap_err();
    let WasmError::HostFunctionFailed {
        component,
        function,
        reason,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(component, "host-calls");
    assert!(function.contains("test:host/faults@1.0.0"), "{function}");
    assert!(
        reason.contains("the embedder refused: no quota left"),
        "{reason}"
    );
    assert!(err.is_host_error() && err.is_runtime_error());
    // The embedder's error is the source, as its own type.
    let source = std::error::Error::source(&err).unwrap();
    let mut chain: Option<&(dyn std::error::Error + 'static)> = Some(source);
    let mut found = false;
    while let Some(e) = chain {
        found |= e.downcast_ref::<Refused>().is_some() || e.to_string().contains("no quota left");
        chain = e.source();
    }
    assert!(found, "{source:?}");
    assert!(i.poisoned().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_host_function_is_contained() {
    let e = engine();
    let c = compile(&e, "host-calls", HOST_CALLS);
    let mut bystander = instance(&c, "b").await;
    let mut i = instance(&c, "t").await;
    let err = i
        .call_typed::<(&str,), ()>("panic", ("boom",))
        .await
        .unwrap_err();
    let WasmError::HostFunctionPanicked {
        function, message, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert!(function.contains("test:host/faults@1.0.0"), "{function}");
    assert!(
        message.contains("host code panicked on purpose: boom"),
        "{message}"
    );
    assert!(i.poisoned().is_some());
    // Everyone else carries on: another instance, a new one, the same engine.
    let ((v,), _) = bystander
        .call_typed::<(u32, u32), (u32,)>("add", (1, 2))
        .await
        .unwrap();
    assert_eq!(v, 3);
    let mut fresh = instance(&c, "f").await;
    let ((who,), _) = fresh
        .call_typed::<(), (String,)>("tenant", ())
        .await
        .unwrap();
    assert_eq!(who, "f (host-calls)");
}

#[tokio::test]
async fn host_code_charges_fuel_to_the_call() {
    let e = engine();
    let c = compile(&e, "host-calls", HOST_CALLS);
    let mut i = instance(&c, "t").await;
    // (The guest's first call does one-time work of its own.)
    i.call_typed::<(u64,), ()>("burn", (0,)).await.unwrap();
    let ((), small) = i.call_typed::<(u64,), ()>("burn", (1_000,)).await.unwrap();
    let ((), big) = i
        .call_typed::<(u64,), ()>("burn", (5_000_000,))
        .await
        .unwrap();
    // The host's charge shows in the report (the guest's own work is the same).
    assert_eq!(big.fuel_consumed - small.fuel_consumed, 5_000_000 - 1_000);
    let err = i
        .call_typed::<(u64,), ()>("burn", (100_000_001,))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            WasmError::FuelExhausted {
                fuel_limit: 100_000_000,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn live_host_resources_are_bounded_per_instance() {
    let e = engine();
    let c = compile(&e, "host-calls", HOST_CALLS);
    let s = granted(Duration::from_secs(5));
    let limits = s.limits().clone().with_max_host_resources(100);
    let s = Sandbox::new(limits).with_capabilities(grants(ALL));
    let mut i = c.instantiate_with(&s, tenant("t")).await.unwrap();
    // Handles dropped as they go stay under the bound however many are made.
    let ((v,), _) = i
        .call_typed::<(u32, u32), (u32,)>("count", (0, 10))
        .await
        .unwrap();
    assert_eq!(v, 10);
    let ((made,), _) = i
        .call_typed::<(u32,), (u32,)>("hoard-counters", (50,))
        .await
        .unwrap();
    assert_eq!(made, 50);
    let err = i
        .call_typed::<(u32,), (u32,)>("hoard-counters", (1_000_000,))
        .await
        .unwrap_err();
    let WasmError::ResourceLimitExceeded {
        resource, limit, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*limit, 100);
    assert!(resource.contains("live host resources"), "{resource}");
    assert!(err.is_limit_error());
    // The default bound is documented and reported by the limits.
    assert_eq!(
        granted(Duration::from_secs(1))
            .limits()
            .max_host_resources(),
        airssys_wasm_core::limits::DEFAULT_MAX_HOST_RESOURCES
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_instances_keep_their_own_state() {
    let e = engine();
    let c = compile(&e, "host-calls", HOST_CALLS);
    let mut tasks = Vec::new();
    for n in 0..100u32 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = c
                .instantiate_with(&granted(Duration::from_secs(10)), tenant(&format!("t{n}")))
                .await
                .unwrap();
            let mut total = 0;
            for _ in 0..n {
                let ((t,), _) = i.call_typed::<(u32,), (u64,)>("bump", (n,)).await.unwrap();
                total = t;
                tokio::task::yield_now().await;
            }
            let ((who,), _) = i.call_typed::<(), (String,)>("tenant", ()).await.unwrap();
            (n, total, who)
        }));
    }
    for t in tasks {
        let (n, total, who) = t.await.unwrap();
        assert_eq!(total, u64::from(n) * u64::from(n), "instance {n}");
        assert_eq!(who, format!("t{n} (host-calls)"));
    }
}

#[tokio::test]
async fn host_code_on_another_state_type_is_refused_at_instantiation() {
    let e = engine();
    let c = compile(&e, "host-calls", HOST_CALLS);
    let err = c
        .instantiate_with(&granted(Duration::from_secs(1)), 42u64)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, WasmError::ComponentInstantiationFailed { .. })
            && msg.contains("Tenant")
            && msg.contains("u64"),
        "{msg}"
    );
}

#[test]
fn bad_registrations_fail_the_build() {
    let e = WasmEngine::builder()
        .host_interface("not an interface", |l, g| {
            math::add_to_linker::<_, HasHostCtx<()>>(l, g)
        })
        .build()
        .unwrap_err();
    assert!(
        e.is_engine_error() && e.to_string().contains("not an interface name"),
        "{e}"
    );
    let e = with_test_host(WasmEngine::builder(), "1.0.0")
        .host_interface("test:host/math@1.0.0", |l, g| {
            math::add_to_linker::<_, HasHostCtx<()>>(l, g)
        })
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("registered twice"), "{e}");
    let names: Vec<_> = engine().host_interfaces().map(str::to_owned).collect();
    assert_eq!(
        names.len(),
        13,
        "four of the test's; the built-ins wasi:logging, wasi:config (two versions) and \
         wasi:keyvalue (store, atomics, batch; two versions)"
    );
    assert_eq!(names[0], "test:host/math@1.0.0");
}

/// Host code generated without `async`: plain Rust functions, same grants and state.
mod sync_host {
    #![allow(missing_docs)]
    wasmtime::component::bindgen!({
        inline: "
            package test:sync@1.0.0;
            interface tally { add: func(n: u32) -> u32; }
            world user { import tally; }
        ",
    });
}

impl sync_host::test::sync::tally::Host for HostCtx<'_, Tenant> {
    fn add(&mut self, n: u32) -> u32 {
        let t = self.state();
        t.total += u64::from(n);
        u32::try_from(t.total).unwrap_or(u32::MAX)
    }
}

#[tokio::test]
async fn sync_host_functions_work_alike() {
    let e = WasmEngine::builder()
        .host_interface("test:sync/tally@1.0.0", |l, g| {
            sync_host::test::sync::tally::add_to_linker::<_, HasHostCtx<Tenant>>(l, g)
        })
        .build()
        .unwrap();
    let wat = r#"(component
        (import "test:sync/tally@1.0.0" (instance $t
            (export "add" (func (param "n" u32) (result u32)))))
        (core func $add (canon lower (func $t "add")))
        (core module $m
            (import "host" "add" (func $add (param i32) (result i32)))
            (func (export "add") (param i32) (result i32) local.get 0 call $add))
        (core instance $i (instantiate $m (with "host" (instance (export "add" (func $add))))))
        (func (export "add") (param "n" u32) (result u32) (canon lift (core func $i "add"))))"#;
    let c = compile(&e, "sync-user", &wat::parse_str(wat).unwrap());
    let s = sandbox(MIB, 1_000_000, Duration::from_secs(1))
        .with_capabilities(grants(&["test:sync/tally"]));
    let mut a = c.instantiate_with(&s, tenant("a")).await.unwrap();
    let mut b = c.instantiate_with(&s, tenant("b")).await.unwrap();
    a.call_typed::<(u32,), (u32,)>("add", (2,)).await.unwrap();
    let ((x,), _) = a.call_typed::<(u32,), (u32,)>("add", (3,)).await.unwrap();
    let ((y,), _) = b.call_typed::<(u32,), (u32,)>("add", (7,)).await.unwrap();
    assert_eq!((x, y), (5, 7));
    assert_eq!(a.state::<Tenant>().unwrap().total, 5);
    assert!(a.state::<u64>().is_none());
}
