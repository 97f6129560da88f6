//! The CLI and the compiled-artifact cache; `compile` and `run --allow-precompiled`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{LIMITS, bin, code, stderr, stdout};

use std::path::{Path, PathBuf};
use std::process::Output;

use airssys_wasm_testkit::guests::guests_dir;

fn calc() -> String {
    guests_dir().join("wasm/calc.wasm").display().to_string()
}

fn run_calc(extra: &[&str], call: &str) -> Output {
    let c = calc();
    let mut args = vec!["run", c.as_str()];
    args.extend(LIMITS);
    args.extend(extra);
    args.extend(["--invoke", call]);
    bin().args(args).output().unwrap()
}

fn cwasm_entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn runs_fill_and_then_use_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().to_str().unwrap();
    let o = run_calc(&["--cache-dir", dir], "add(2, 3)");
    assert_eq!(
        (code(&o), stdout(&o)),
        (0, "5\n".to_owned()),
        "{}",
        stderr(&o)
    );
    let entries = cwasm_entries(cache.path());
    assert_eq!(entries.len(), 1);

    // A hit gives the same answer; a corrupt entry is replaced, not loaded.
    let o = run_calc(&["--cache-dir", dir], "add(2, 3)");
    assert_eq!(stdout(&o), "5\n");
    std::fs::write(&entries[0], b"garbage").unwrap();
    let o = run_calc(&["--cache-dir", dir], "add(2, 3)");
    assert_eq!(
        (code(&o), stdout(&o)),
        (0, "5\n".to_owned()),
        "{}",
        stderr(&o)
    );
    assert!(
        std::fs::read(&entries[0]).unwrap().len() > 1000,
        "rewritten"
    );
}

#[test]
fn the_cache_defaults_to_xdg_cache_home_and_can_be_disabled() {
    let home = tempfile::tempdir().unwrap();
    let c = calc();
    let mut args = vec!["run", c.as_str()];
    args.extend(LIMITS);
    args.extend(["--invoke", "add(1, 1)"]);
    let o = bin()
        .args(&args)
        .arg("--no-cache")
        .env("XDG_CACHE_HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "2\n", "{}", stderr(&o));
    assert!(!home.path().join("airssys-wasm").exists());

    let o = bin()
        .args(&args)
        .env("XDG_CACHE_HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "2\n", "{}", stderr(&o));
    assert_eq!(cwasm_entries(&home.path().join("airssys-wasm")).len(), 1);
}

#[test]
fn compile_writes_an_artifact_that_runs_only_when_allowed() {
    let work = tempfile::tempdir().unwrap();
    let artifact = work.path().join("calc.cwasm");
    let o = bin()
        .args(["compile", &calc(), "-o", artifact.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("calc.cwasm"), "{}", stdout(&o));

    let a = artifact.to_str().unwrap();
    let mut args = vec!["run", a];
    args.extend(LIMITS);
    args.extend(["--invoke", "add(20, 22)"]);
    let o = bin().args(&args).output().unwrap();
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("--allow-precompiled"), "{}", stderr(&o));

    let o = bin()
        .args(&args)
        .arg("--allow-precompiled")
        .output()
        .unwrap();
    assert_eq!(
        (code(&o), stdout(&o)),
        (0, "42\n".to_owned()),
        "{}",
        stderr(&o)
    );

    // Default output: <stem>.cwasm in the current directory.
    let o = bin()
        .current_dir(work.path())
        .args(["compile", &calc()])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(work.path().join("calc.cwasm").is_file());

    // A bad input is refused like everywhere else.
    let o = bin()
        .args(["compile", work.path().join("nope.wasm").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(code(&o), 3);
}
