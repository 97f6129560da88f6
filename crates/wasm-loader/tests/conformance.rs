//! The Component Model reference tests (`crates/wasm-testkit/conformance/component-model`,
//! Apache-2.0, copied from the specification's repository) run through **our** stack:
//! every `(component …)` is validated and compiled by `ComponentLoader` and instantiated
//! by our engine under limits; `assert_invalid`/`assert_malformed` must be refused by
//! `ComponentLoader::validate` with a load error; `assert_return`/`assert_trap` invoke
//! exports with dynamic values through `ComponentInstance::call` and compare (a trap's
//! reason must contain the expected message).
//!
//! Every file not in `nyi.txt` runs, `async/` included, on an engine with every
//! Component Model proposal on; the directives where Wasmtime itself diverges from this
//! copy of the tests are listed in [`WASMTIME_DIVERGES`], with why.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use airssys_wasm_core::{ResourceLimits, WasmError};
use airssys_wasm_engine::{
    CompiledComponent, ComponentInstance, Proposal, Sandbox, Val, WasmEngine,
};
use airssys_wasm_loader::{ComponentLoader, LoadOptions, Source};
use wast::component::WastVal;
use wast::parser::{self, ParseBuffer};
use wast::{QuoteWat, QuoteWatTest, Wast, WastArg, WastDirective, WastExecute, WastRet};

fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../wasm-testkit/conformance/component-model")
}

/// The files to run: every `.wast` not listed in `nyi.txt`.
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
        if !dir.is_dir() {
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
        self.compile_bytes(&bytes, &name, key).await
    }

    async fn compile_bytes(
        &mut self,
        bytes: &[u8],
        name: &str,
        key: &str,
    ) -> Result<CompiledComponent, Miss> {
        let refused = |e: WasmError, what: &str| match disabled_feature(&e) {
            Some(feature) => Miss::Skip(feature),
            None => Miss::Fail(format!("{what} refused a valid component: {e}")),
        };
        let result = match self.loader.validate(bytes).await {
            Err(e) => Err(refused(e, "validate")),
            Ok(()) => self
                .loader
                .load(Source::Bytes(bytes), &LoadOptions::named(name))
                .await
                .map(|l| l.component)
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
        exec: &mut WastExecute<'_>,
    ) -> Result<Result<Vec<Val>, WasmError>, Miss> {
        let invoke = match exec {
            WastExecute::Invoke(invoke) => invoke,
            // A component whose instantiation is the action (a start function that
            // traps): validated, compiled and instantiated under limits.
            WastExecute::Wat(module) => {
                let key = format!("#{}", self.directives);
                let bytes = module
                    .encode()
                    .map_err(|e| format!("cannot encode the component: {e}"))?;
                let component = self.compile_bytes(&bytes, "<action>", &key).await?;
                return Ok(component.instantiate(&sandbox()).await.map(|_| Vec::new()));
            }
            WastExecute::Get { .. } => return Err("`get` is a core-module action".into()),
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
            WastDirective::Invoke(invoke) => {
                self.invoke(&mut WastExecute::Invoke(invoke))
                    .await?
                    .map_err(|e| Miss::Fail(format!("the invocation failed: {e}")))?;
                Ok(())
            }
            WastDirective::AssertReturn {
                mut exec, results, ..
            } => {
                let got = self
                    .invoke(&mut exec)
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
            WastDirective::AssertTrap {
                mut exec, message, ..
            } => match self.invoke(&mut exec).await? {
                Err(
                    WasmError::ComponentTrapped { reason, .. }
                    | WasmError::ComponentInstantiationFailed { reason, .. },
                ) => {
                    // The reference message, as Wasmtime words it (ours may add detail).
                    let want = message.strip_prefix("wasm trap: ").unwrap_or(message);
                    if reason.contains(want) {
                        Ok(())
                    } else {
                        Err(format!("trapped with `{reason}`, expected `{message}`").into())
                    }
                }
                // The Component Model forbids entering an instance after a trap; ours
                // is poisoned by it, and says so before Wasmtime's guard is reached.
                Err(WasmError::InstancePoisoned { .. })
                    if message.ends_with("cannot enter component instance") =>
                {
                    Ok(())
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

/// Directives that Wasmtime 50 itself does not pass, with why. Each was checked with
/// Wasmtime's own runner (`wasmtime-wast` 50.0.1, every proposal on): it fails each of
/// these files at the same first directive as we do. They are not skipped: the test
/// fails when one of them starts passing (remove it here) or fails differently.
const WASMTIME_DIVERGES: &[(&str, &[usize], &str)] = &[
    (
        "binary/binary.wast",
        &[974],
        "the `cancellable` encoding was removed from the Component Model \
         (component-model#716) after this copy of the reference tests; wasmparser 0.261 \
         refuses it",
    ),
    (
        "async/cancellable.wast",
        &[0],
        "same: the text uses the removed `cancellable` option, which wast 261 no longer parses",
    ),
    (
        "validation/kebab.wast",
        &[4],
        "wasmparser 0.261 counts `a1` and `a-1` as the same name; this copy of the tests \
         does not",
    ),
    (
        "async/dont-block-start.wast",
        &[24],
        "Wasmtime 50 does not yet trap `cannot block a synchronous task before returning` \
         in a start function",
    ),
    (
        "async/trap-if-block-and-sync.wast",
        &[287, 289, 315, 317, 319, 321, 323, 325, 327, 329, 331],
        "Wasmtime 50 does not yet trap `cannot block a synchronous task before returning`",
    ),
    (
        "async/trap-on-reenter.wast",
        &[65, 86, 110],
        "Wasmtime 50 does not yet trap re-entry into an instance that is waiting",
    ),
    (
        "async/sync-streams.wast",
        &[208],
        "Wasmtime 50 traps where the reference expects a synchronous stream copy to finish",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_component_model_reference_tests_pass_through_our_stack() {
    // Every proposal Wasmtime implements, so that nothing is skipped for a feature left
    // off (the default engine's features are checked by the differential test).
    let mut builder = WasmEngine::builder();
    for &p in Proposal::ALL {
        builder = builder.proposal(p, true);
    }
    let engine = builder.build().unwrap();
    let files = files();
    assert!(
        files.len() >= 59,
        "reference tests missing: {}",
        files.len()
    );
    let mut failures: Vec<(String, usize, String)> = Vec::new();
    let mut skips: Vec<String> = Vec::new();
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
                failures.push((rel, 0, format!("does not parse: {e}")));
                continue;
            }
        };
        let mut runner = Runner::new(&engine);
        let mut skipped = 0;
        for d in wast.directives {
            let (line, _) = d.span().linecol_in(&text);
            match runner.directive(d).await {
                Ok(()) => {}
                Err(Miss::Fail(e)) => failures.push((rel.clone(), line + 1, e)),
                Err(Miss::Skip(why)) => {
                    skipped += 1;
                    skips.push(format!("{rel}:{}: {why}", line + 1));
                }
            }
        }
        total += runner.directives;
        println!("{rel}: {} directives, {skipped} skipped", runner.directives);
    }
    let known = |file: &str, line: usize| {
        WASMTIME_DIVERGES
            .iter()
            .any(|(f, lines, _)| *f == file && lines.contains(&line))
    };
    let (diverging, unexpected): (Vec<_>, Vec<_>) =
        failures.iter().partition(|(f, line, _)| known(f, *line));
    println!(
        "{} files, {total} directives, {} passed, {} skipped, {} where Wasmtime 50 diverges \
         too, {} failed",
        files.len(),
        total - skips.len() - failures.len(),
        skips.len(),
        diverging.len(),
        unexpected.len()
    );
    for (file, line, why) in &diverging {
        println!("  diverges {file}:{line}: {why}");
    }
    assert!(
        unexpected.is_empty(),
        "{} of {total} directives failed:\n{}",
        unexpected.len(),
        unexpected
            .iter()
            .map(|(f, l, e)| format!("{f}:{l}: {e}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The list stays true: every entry still fails.
    for (file, lines, why) in WASMTIME_DIVERGES {
        for line in *lines {
            assert!(
                failures.iter().any(|(f, l, _)| f == file && l == line),
                "{file}:{line} passes now ({why}): remove it from WASMTIME_DIVERGES"
            );
        }
    }
    // With every proposal on, nothing is skipped for a feature the engine leaves off.
    assert!(skips.is_empty(), "skipped:\n{}", skips.join("\n"));
}
