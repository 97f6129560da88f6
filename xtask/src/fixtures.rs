//! `cargo xtask fixtures`: the testkit's guests (Rust for `wasm32-wasip2`, JavaScript
//! with componentize-js), the plugin-host example's plugins and the actors example's
//! component, built from source and
//! copied where they are committed; every fixture written out as a `.wasm` file.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::{USAGE, cargo, workspace_root};

pub(crate) fn fixtures(args: &[String]) -> anyhow::Result<()> {
    let mut out = workspace_root().join("target/fixtures");
    let mut guests = true;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--out" => match it.next() {
                Some(dir) => out = PathBuf::from(dir),
                None => bail!(USAGE),
            },
            "--no-guests" => guests = false,
            _ => bail!(USAGE),
        }
    }
    if guests {
        build_guests()?;
        build_js_guests()?;
        build_plugins()?;
        build_example_actors()?;
    }
    let mut written = airssys_wasm_testkit::write_all(&out)
        .with_context(|| format!("writing fixtures to {}", out.display()))?;
    // The guests as just built (this binary's embedded copies may predate the build).
    let built = airssys_wasm_testkit::guests::guests_dir().join("wasm");
    for g in airssys_wasm_testkit::guests::GUESTS {
        let from = built.join(format!("{}.wasm", g.name));
        let to = out.join(format!("{}.wasm", g.name));
        std::fs::copy(&from, &to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        written.push(to);
    }
    for path in &written {
        println!("{}", path.display());
    }
    eprintln!("wrote {} fixtures to {}", written.len(), out.display());
    Ok(())
}

const GUEST_TARGET: &str = "wasm32-wasip2";

/// Builds the Rust guests under `crates/wasm-testkit/guests` for `wasm32-wasip2`
/// (adding the target with rustup when it is missing) and copies them to
/// `guests/wasm/`, with the digest of the sources they came from.
fn build_guests() -> anyhow::Result<()> {
    let dir = airssys_wasm_testkit::guests::guests_dir();
    let built = build_wasm_workspace(&dir)?;
    let wasm = dir.join("wasm");
    std::fs::create_dir_all(&wasm)?;
    for g in airssys_wasm_testkit::guests::GUESTS {
        // A binary keeps its crate's name; a library (cdylib) gets underscores.
        let mut from = built.join(format!("{}.wasm", g.name));
        if !from.exists() {
            from = built.join(format!("{}.wasm", g.name.replace('-', "_")));
        }
        let to = wasm.join(format!("{}.wasm", g.name));
        std::fs::copy(&from, &to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        eprintln!(
            "built {} ({} KiB)",
            to.display(),
            std::fs::metadata(&to)?.len() / 1024
        );
    }
    let digest = airssys_wasm_testkit::guests::sources_digest(&dir)
        .with_context(|| format!("hashing the sources under {}", dir.display()))?;
    std::fs::write(wasm.join("SOURCES"), digest)?;
    Ok(())
}

/// Builds the guest workspace at `dir` for `wasm32-wasip2` (adding the target with
/// rustup when it is missing); where the components are.
fn build_wasm_workspace(dir: &Path) -> anyhow::Result<PathBuf> {
    let root = workspace_root();
    let installed = Command::new("rustup")
        .current_dir(&root)
        .args(["target", "list", "--installed"])
        .output()
        .context("running rustup (needed to build the guests for wasm32-wasip2)")?;
    if !String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == GUEST_TARGET)
    {
        eprintln!("adding the {GUEST_TARGET} target with rustup");
        let status = Command::new("rustup")
            .current_dir(&root)
            .args(["target", "add", GUEST_TARGET])
            .status()
            .context("running rustup target add")?;
        if !status.success() {
            bail!("`rustup target add {GUEST_TARGET}` failed");
        }
    }
    let target_dir = root.join("target/guests");
    let status = cargo()
        .current_dir(dir)
        .args(["build", "--release", "--locked", "--target", GUEST_TARGET])
        .arg("--target-dir")
        .arg(&target_dir)
        // Only what the guest workspace says: no flags from the caller's environment.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .with_context(|| format!("building the guests in {}", dir.display()))?;
    if !status.success() {
        bail!(
            "building the guests in {} for {GUEST_TARGET} failed",
            dir.display()
        );
    }
    Ok(target_dir.join(GUEST_TARGET).join("release"))
}

/// The componentize-js release the JavaScript plugin is built with.
const COMPONENTIZE_JS: &str = "@bytecodealliance/componentize-js@0.23.0";

/// Builds the plugins of `examples/plugin-host`: the Rust ones (`plugins-src/`, a
/// guest workspace) and the JavaScript one (componentize-js, installed from the npm
/// registry into `target/componentize-js`), each to `plugins/<name>/plugin.wasm`.
fn build_plugins() -> anyhow::Result<()> {
    let root = workspace_root();
    let example = root.join("examples/plugin-host");
    let built = build_wasm_workspace(&example.join("plugins-src"))?;
    for (name, file) in [("rust-stats", "rust_stats.wasm"), ("greedy", "greedy.wasm")] {
        copy_component(&built.join(file), &example.join("plugins").join(name))?;
    }

    componentize_js(&Js {
        root: &example,
        inputs: &[
            "plugins-src/js-greeter/greeter.js",
            "plugins-src/js-greeter/build.mjs",
            "wit/plugins.wit",
        ],
        build: "plugins-src/js-greeter/build.mjs",
        source: "plugins-src/js-greeter/greeter.js",
        wit: "wit",
        world: "plugin",
        out: "plugins/js-greeter/plugin.wasm",
        stamp: "plugins/js-greeter/SOURCES",
    })
}

/// The component of `examples/actors` (`src/`, a guest workspace), to `orders.wasm`.
fn build_example_actors() -> anyhow::Result<()> {
    let example = workspace_root().join("examples/actors");
    let built = build_wasm_workspace(&example.join("src"))?;
    let to = example.join("orders.wasm");
    std::fs::copy(built.join("orders.wasm"), &to)
        .with_context(|| format!("copying orders.wasm to {}", to.display()))?;
    eprintln!(
        "built {} ({} KiB)",
        to.display(),
        std::fs::metadata(&to)?.len() / 1024
    );
    Ok(())
}

/// The JavaScript guests of the testkit (`crates/wasm-testkit/js-guests/`), built with
/// componentize-js into `js-guests/wasm/`: the HTTP handler `http-js`, the actor
/// `actor-js` and the CPU suite's `cpu-js`.
fn build_js_guests() -> anyhow::Result<()> {
    let root = airssys_wasm_testkit::guests::js_guests_dir();
    let inputs = airssys_wasm_testkit::guests::http_js_inputs()?;
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    componentize_js(&Js {
        root: &root,
        inputs: &inputs,
        build: "http-js/build.mjs",
        source: "http-js/handler.js",
        wit: "http-js/wit",
        world: "handler",
        out: "wasm/http-js.wasm",
        stamp: "wasm/SOURCES",
    })?;
    let inputs = airssys_wasm_testkit::guests::actor_js_inputs()?;
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    componentize_js(&Js {
        root: &root,
        inputs: &inputs,
        build: "actor-js/build.mjs",
        source: "actor-js/actor.js",
        wit: "actor-js/wit",
        world: "actor-js",
        out: "wasm/actor-js.wasm",
        stamp: "wasm/actor-js.SOURCES",
    })?;
    let inputs = airssys_wasm_testkit::guests::cpu_js_inputs()?;
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    componentize_js(&Js {
        root: &root,
        inputs: &inputs,
        build: "cpu-js/build.mjs",
        source: "cpu-js/suite.js",
        wit: "cpu-js/wit",
        world: "cpu",
        out: "wasm/cpu-js.wasm",
        stamp: "wasm/cpu-js.SOURCES",
    })
}

/// One JavaScript component to build with componentize-js; paths relative to `root`.
struct Js<'a> {
    root: &'a Path,
    /// Every file the component is built from (digested into `stamp`).
    inputs: &'a [&'a str],
    /// The node script that calls componentize-js:
    /// `node BUILD <componentize.js> <source> <wit> <world> <out>`.
    build: &'a str,
    source: &'a str,
    wit: &'a str,
    world: &'a str,
    out: &'a str,
    stamp: &'a str,
}

/// Builds `js` with componentize-js (installed from the npm registry into
/// `target/componentize-js` when missing). componentize-js does not build reproducibly
/// (each build differs), so the component (about 12 MiB) is rebuilt only when what it is
/// built from changed: its inputs and the componentize-js release, digested into its
/// stamp file.
fn componentize_js(js: &Js<'_>) -> anyhow::Result<()> {
    let out = js.root.join(js.out);
    let stamp = js.root.join(js.stamp);
    let inputs: Vec<String> = js.inputs.iter().map(|s| (*s).to_owned()).collect();
    let digest = format!(
        "{} {COMPONENTIZE_JS}",
        airssys_wasm_testkit::guests::files_digest(js.root, &inputs)?.trim_end()
    );
    if out.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(digest.as_str()) {
        eprintln!("{} is up to date with its sources", out.display());
        return Ok(());
    }

    let tools = workspace_root().join("target/componentize-js");
    let package = tools.join("node_modules/@bytecodealliance/componentize-js");
    if !package.join("package.json").exists() {
        eprintln!("installing {COMPONENTIZE_JS} from the npm registry");
        std::fs::create_dir_all(&tools)?;
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&tools)
            .arg(COMPONENTIZE_JS)
            .status()
            .context(
                "running npm (Node.js 20 or later is needed to build the JavaScript guests)",
            )?;
        if !status.success() {
            bail!("`npm install {COMPONENTIZE_JS}` failed");
        }
    }
    let status = Command::new("node")
        .arg(js.root.join(js.build))
        .arg(package.join("src/componentize.js"))
        .arg(js.root.join(js.source))
        .arg(js.root.join(js.wit))
        .arg(js.world)
        .arg(&out)
        .status()
        .context("running node")?;
    if !status.success() {
        bail!(
            "componentizing {} failed",
            js.root.join(js.source).display()
        );
    }
    std::fs::write(&stamp, digest)?;
    Ok(())
}

fn copy_component(from: &Path, to_dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to_dir)?;
    let to = to_dir.join("plugin.wasm");
    std::fs::copy(from, &to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    eprintln!(
        "built {} ({} KiB)",
        to.display(),
        std::fs::metadata(&to)?.len() / 1024
    );
    Ok(())
}
