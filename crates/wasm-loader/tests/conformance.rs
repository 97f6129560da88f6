//! The Component Model reference tests (`crates/wasm-testkit/conformance/component-model`,
//! Apache-2.0, copied from the specification's repository) run through **our** stack:
//! every `(component …)` is validated and compiled by `ComponentLoader` and instantiated
//! by our engine under limits; `assert_invalid`/`assert_malformed` must be refused by
//! `ComponentLoader::validate` with a load error; `assert_return`/`assert_trap` invoke
//! exports with dynamic values through `ComponentInstance::call` and compare (a trap's
//! reason must contain the expected message).
//!
//! Every file outside `async/` and `nyi.txt` runs; the async ones need Component Model
//! async, which our engine does not enable.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use airssys_wasm_core::{ResourceLimits, WasmError};
use airssys_wasm_engine::{CompiledComponent, ComponentInstance, Sandbox, Val, WasmEngine};
use airssys_wasm_loader::ComponentLoader;
use wast::component::WastVal;
use wast::parser::{self, ParseBuffer};
use wast::{QuoteWat, QuoteWatTest, Wast, WastArg, WastDirective, WastExecute, WastRet};

fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../wasm-testkit/conformance/component-model")
}

/// The files to run: every `.wast` outside `async/` and not listed in `nyi.txt`.
fn files() -> Vec<PathBuf> {
    let root = conformance_dir();
    let nyi = std::fs::read_to_string(root.join("nyi.txt")).unwrap();
    let nyi: Vec<&str> = nyi
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_start_matches("./"))
        .collect();
    let mut out = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() || dir.file_name().is_some_and(|n| n == "async") {
            continue;
        }
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            let rel = f
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if f.extension().is_some_and(|x| x == "wast") && !nyi.contains(&rel.as_str()) {
                out.push(f);
            }
        }
    }
    out.sort();
    out
}

fn sandbox() -> Sandbox {
    Sandbox::new(ResourceLimits::new(256 << 20, 1_000_000_000, Duration::from_secs(20)).unwrap())
}

/// What a directive came to, when it did not pass.
enum Miss {
    /// Our stack got it wrong.
    Fail(String),
    /// It needs a Component Model feature our engine leaves off (async, maps, …), or
    /// depends on a component that does.
    Skip(String),
}

impl From<String> for Miss {
    fn from(s: String) -> Self {
        Self::Fail(s)
    }
}

impl From<&str> for Miss {
    fn from(s: &str) -> Self {
        Self::Fail(s.to_owned())
    }
}

/// Whether a refusal names a feature our engine does not enable.
fn disabled_feature(e: &WasmError) -> Option<String> {
    let msg = e.to_string();
    let feature = msg.contains(" feature") || msg.contains("proposal not enabled");
    feature.then(|| {
        let reason = msg.split(" is invalid: ").nth(1).unwrap_or(&msg);
        reason
            .split(" (at offset")
            .next()
            .unwrap_or(reason)
            .to_owned()
    })
}

struct Runner {
    loader: ComponentLoader,
    /// Definitions and instances that could not be made, with the reason (a skip).
    unavailable: HashMap<String, String>,
    definitions: HashMap<String, CompiledComponent>,
    /// Every live instance, by its `$id` or a generated key.
    instances: HashMap<String, ComponentInstance>,
    /// The key of the most recently instantiated one, for bare `invoke`s.
    current: Option<String>,
    directives: usize,
}

/// What a quoted or inline component gives our loader: its binary, or its text when
/// the text is what is under test (quoted components go through our WAT parsing).
fn input(module: &mut QuoteWat<'_>) -> Vec<u8> {
    match module.to_test() {
        Ok(QuoteWatTest::Binary(bytes) | QuoteWatTest::Text(bytes)) => bytes,
        // An inline component the wast crate itself cannot encode: hand the loader
        // something that cannot be a component either.
        Err(_) => b"(component (;unencodable;)".to_vec(),
    }
}

impl Runner {
    fn new(engine: &WasmEngine) -> Self {
        Self {
            loader: ComponentLoader::new(engine),
            unavailable: HashMap::new(),
            definitions: HashMap::new(),
            instances: HashMap::new(),
            current: None,
            directives: 0,
        }
    }

    /// Validates and compiles; a refusal for a disabled feature is a skip, and makes
    /// `key` (the definition or instance it would have been) unavailable.
    async fn compile(
        &mut self,
        module: &mut QuoteWat<'_>,
        key: &str,
    ) -> Result<CompiledComponent, Miss> {
        let bytes = input(module);
        let name = module
            .name()
            .map_or("<anonymous>", |id| id.name())
            .to_owned();
        let refused = |e: WasmError, what: &str| match disabled_feature(&e) {
            Some(feature) => Miss::Skip(feature),
            None => Miss::Fail(format!("{what} refused a valid component: {e}")),
        };
        let result = match self.loader.validate(&bytes).await {
            Err(e) => Err(refused(e, "validate")),
            Ok(()) => self
                .loader
                .load_named(&name, &bytes)
                .await
                .map_err(|e| refused(e, "load")),
        };
        if let Err(miss) = &result {
            let why = match miss {
                Miss::Skip(s) | Miss::Fail(s) => s.clone(),
            };
            self.unavailable.insert(key.to_owned(), why);
        }
        result
    }

    /// The key an instance is kept under: its `$id`, or one of its own.
    fn instance_key(&self, id: Option<&str>) -> String {
        id.map_or_else(|| format!("#{}", self.directives), str::to_owned)
    }

    async fn instantiate(
        &mut self,
        component: &CompiledComponent,
        key: String,
    ) -> Result<(), Miss> {
        self.current = Some(key.clone());
        let instance = component
            .instantiate(&sandbox())
            .await
            .map_err(|e| format!("instantiation failed: {e}"))?;
        self.unavailable.remove(&key);
        self.instances.insert(key, instance);
        Ok(())
    }

    fn instance(&mut self, id: Option<&str>) -> Result<&mut ComponentInstance, Miss> {
        let key = match id {
            Some(id) => id.to_owned(),
            None => self.current.clone().ok_or("no current instance")?,
        };
        if let Some(why) = self.unavailable.get(&key) {
            return Err(Miss::Skip(format!("its component was skipped: {why}")));
        }
        self.instances
            .get_mut(&key)
            .ok_or_else(|| Miss::Fail(format!("no instance ${key}")))
    }

    async fn invoke(
        &mut self,
        exec: &WastExecute<'_>,
    ) -> Result<Result<Vec<Val>, WasmError>, Miss> {
        let WastExecute::Invoke(invoke) = exec else {
            return Err("only invoke is supported as an action".into());
        };
        let args = invoke
            .args
            .iter()
            .map(|a| match a {
                WastArg::Component(v) => Ok(to_val(v)),
                _ => Err("a core argument in a component test"),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let instance = self.instance(invoke.module.map(|id| id.name()))?;
        Ok(instance.call(invoke.name, &args).await.map(|o| o.results))
    }

    async fn directive(&mut self, d: WastDirective<'_>) -> Result<(), Miss> {
        self.directives += 1;
        match d {
            WastDirective::Module(mut module) => {
                let key = self.instance_key(module.name().map(|id| id.name()));
                self.current = Some(key.clone());
                let component = self.compile(&mut module, &key).await?;
                self.instantiate(&component, key).await
            }
            WastDirective::ModuleDefinition(mut module) => {
                let key = module
                    .name()
                    .map_or_else(String::new, |id| id.name().to_owned());
                let component = self.compile(&mut module, &key).await?;
                self.definitions.insert(key, component);
                Ok(())
            }
            WastDirective::ModuleInstance {
                instance, module, ..
            } => {
                let def = module.ok_or("an instance of nothing")?.name();
                let key = self.instance_key(instance.map(|i| i.name()));
                if let Some(why) = self.unavailable.get(def).cloned() {
                    self.current = Some(key.clone());
                    self.unavailable.insert(key, why.clone());
                    return Err(Miss::Skip(format!("its definition was skipped: {why}")));
                }
                let component = self
                    .definitions
                    .get(def)
                    .cloned()
                    .ok_or_else(|| format!("no definition ${def}"))?;
                self.instantiate(&component, key).await
            }
            WastDirective::AssertInvalid {
                mut module,
                message,
                ..
            }
            | WastDirective::AssertMalformed {
                mut module,
                message,
                ..
            } => {
                let bytes = input(&mut module);
                match self.loader.validate(&bytes).await {
                    Err(e) if e.is_load_error() => Ok(()),
                    Err(e) => {
                        Err(format!("refused `{message}`, but not as a load error: {e}").into())
                    }
                    Ok(()) => {
                        Err(format!("validate accepted a component that is `{message}`").into())
                    }
                }
            }
            WastDirective::AssertReturn { exec, results, .. } => {
                let got = self
                    .invoke(&exec)
                    .await?
                    .map_err(|e| Miss::Fail(format!("expected a return, got: {e}")))?;
                if got.len() != results.len() {
                    return Err(format!("expected {} results, got {got:?}", results.len()).into());
                }
                for (want, got) in results.iter().zip(&got) {
                    let WastRet::Component(want) = want else {
                        return Err("a core result in a component test".into());
                    };
                    if !matches(want, got) {
                        return Err(format!("expected {want:?}, got {got:?}").into());
                    }
                }
                Ok(())
            }
            WastDirective::AssertTrap { exec, message, .. } => match self.invoke(&exec).await? {
                Err(WasmError::ComponentTrapped { reason, .. }) => {
                    // The reference message, as Wasmtime words it (ours may add detail).
                    let want = message.strip_prefix("wasm trap: ").unwrap_or(message);
                    if reason.contains(want) {
                        Ok(())
                    } else {
                        Err(format!("trapped with `{reason}`, expected `{message}`").into())
                    }
                }
                Err(e) => {
                    Err(format!("expected a trap (`{message}`), got another error: {e}").into())
                }
                Ok(v) => Err(format!("expected a trap (`{message}`), got {v:?}").into()),
            },
            other => Err(format!("unsupported directive {other:?}").into()),
        }
    }
}

fn to_val(v: &WastVal<'_>) -> Val {
    match v {
        WastVal::Bool(b) => Val::Bool(*b),
        WastVal::U8(n) => Val::U8(*n),
        WastVal::S8(n) => Val::S8(*n),
        WastVal::U16(n) => Val::U16(*n),
        WastVal::S16(n) => Val::S16(*n),
        WastVal::U32(n) => Val::U32(*n),
        WastVal::S32(n) => Val::S32(*n),
        WastVal::U64(n) => Val::U64(*n),
        WastVal::S64(n) => Val::S64(*n),
        WastVal::F32(f) => Val::Float32(f32::from_bits(f.bits)),
        WastVal::F64(f) => Val::Float64(f64::from_bits(f.bits)),
        WastVal::Char(c) => Val::Char(*c),
        WastVal::String(s) => Val::String((*s).to_owned()),
        WastVal::List(vs) => Val::List(vs.iter().map(to_val).collect()),
        WastVal::Record(fs) => Val::Record(
            fs.iter()
                .map(|(n, v)| ((*n).to_owned(), to_val(v)))
                .collect(),
        ),
        WastVal::Tuple(vs) => Val::Tuple(vs.iter().map(to_val).collect()),
        WastVal::Variant(case, payload) => Val::Variant(
            (*case).to_owned(),
            payload.as_deref().map(|p| Box::new(to_val(p))),
        ),
        WastVal::Enum(case) => Val::Enum((*case).to_owned()),
        WastVal::Option(v) => Val::Option(v.as_deref().map(|p| Box::new(to_val(p)))),
        WastVal::Result(r) => Val::Result(match r {
            Ok(v) => Ok(v.as_deref().map(|p| Box::new(to_val(p)))),
            Err(v) => Err(v.as_deref().map(|p| Box::new(to_val(p)))),
        }),
        WastVal::Flags(fs) => Val::Flags(fs.iter().map(|f| (*f).to_owned()).collect()),
    }
}

/// Whether `got` is the value `want` describes (floats: NaN matches any NaN).
fn matches(want: &WastVal<'_>, got: &Val) -> bool {
    match (want, got) {
        (WastVal::F32(w), Val::Float32(g)) => {
            let w = f32::from_bits(w.bits);
            (w.is_nan() && g.is_nan()) || w.to_bits() == g.to_bits()
        }
        (WastVal::F64(w), Val::Float64(g)) => {
            let w = f64::from_bits(w.bits);
            (w.is_nan() && g.is_nan()) || w.to_bits() == g.to_bits()
        }
        (WastVal::List(w), Val::List(g)) | (WastVal::Tuple(w), Val::Tuple(g)) => {
            w.len() == g.len() && w.iter().zip(g).all(|(w, g)| matches(w, g))
        }
        (WastVal::Record(w), Val::Record(g)) => {
            w.len() == g.len()
                && w.iter()
                    .zip(g)
                    .all(|((wn, wv), (gn, gv))| *wn == gn && matches(wv, gv))
        }
        (WastVal::Variant(wc, wp), Val::Variant(gc, gp)) => wc == gc && payload(wp, gp),
        (WastVal::Option(w), Val::Option(g)) => payload(w, g),
        (WastVal::Result(Ok(w)), Val::Result(Ok(g)))
        | (WastVal::Result(Err(w)), Val::Result(Err(g))) => payload(w, g),
        (WastVal::Flags(w), Val::Flags(g)) => {
            let mut w: Vec<&str> = w.clone();
            let mut g: Vec<&str> = g.iter().map(String::as_str).collect();
            w.sort_unstable();
            g.sort_unstable();
            w == g
        }
        _ => to_val(want) == *got,
    }
}

fn payload(want: &Option<Box<WastVal<'_>>>, got: &Option<Box<Val>>) -> bool {
    match (want, got) {
        (None, None) => true,
        (Some(w), Some(g)) => matches(w, g),
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_component_model_reference_tests_pass_through_our_stack() {
    let engine = WasmEngine::new().unwrap();
    let files = files();
    assert!(
        files.len() >= 28,
        "reference tests missing: {}",
        files.len()
    );
    let mut failures = Vec::new();
    let mut skips: HashMap<String, usize> = HashMap::new();
    let mut total = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let rel = file
            .strip_prefix(conformance_dir())
            .unwrap()
            .display()
            .to_string();
        let buf = ParseBuffer::new(&text).unwrap();
        let wast = match parser::parse::<Wast<'_>>(&buf) {
            Ok(w) => w,
            Err(e) => {
                failures.push(format!("{rel}: does not parse: {e}"));
                continue;
            }
        };
        let mut runner = Runner::new(&engine);
        let mut skipped = 0;
        for d in wast.directives {
            let (line, _) = d.span().linecol_in(&text);
            match runner.directive(d).await {
                Ok(()) => {}
                Err(Miss::Fail(e)) => failures.push(format!("{rel}:{}: {e}", line + 1)),
                Err(Miss::Skip(why)) => {
                    skipped += 1;
                    let why = why.rsplit(": ").next().unwrap_or(&why).to_owned();
                    *skips.entry(why).or_default() += 1;
                }
            }
        }
        total += runner.directives;
        println!("{rel}: {} directives, {skipped} skipped", runner.directives);
    }
    let skipped: usize = skips.values().sum();
    println!(
        "{} files, {total} directives, {} passed, {skipped} skipped, {} failed",
        files.len(),
        total - skipped - failures.len(),
        failures.len()
    );
    let mut reasons: Vec<_> = skips.into_iter().collect();
    reasons.sort();
    for (why, n) in &reasons {
        println!("  skipped {n}: {why}");
    }
    assert!(
        failures.is_empty(),
        "{} of {total} directives failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Skips are for features this engine leaves off, not a way to pass: they stay few.
    assert!(
        skipped * 10 < total,
        "{skipped} of {total} directives skipped"
    );
}
