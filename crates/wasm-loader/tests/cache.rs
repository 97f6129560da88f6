//! The compiled-artifact cache: hits, misses, corrupt entries, the metadata fast path,
//! eviction, concurrency, and precompiled files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use airssys_wasm_core::ResourceLimits;
use airssys_wasm_engine::{
    CompiledComponent, Density, Interruption, Optimization, Sandbox, WasmEngine,
};
use airssys_wasm_loader::{
    CacheConfig, CacheOutcome, ComponentLoader, LoadOptions, Loaded, Source, TOUCH_AFTER,
};
use airssys_wasm_testkit as fx;

fn loader(engine: &WasmEngine, dir: &Path) -> ComponentLoader {
    ComponentLoader::new(engine).with_cache(CacheConfig::new(dir))
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .collect();
    v.sort();
    v
}

fn leftovers(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".tmp-")
        })
        .collect()
}

async fn answer(c: &CompiledComponent) -> i32 {
    let limits = ResourceLimits::new(1 << 20, 1_000_000, Duration::from_secs(5)).unwrap();
    let mut i = c.instantiate(&Sandbox::new(limits)).await.unwrap();
    let ((v,), _) = i.call_typed::<(), (i32,)>("hello", ()).await.unwrap();
    v
}

/// A component whose `hello` returns `n`.
fn returning(n: i32) -> Vec<u8> {
    format!(
        r#"(component
            (core module $m (func (export "hello") (result i32) i32.const {n}))
            (core instance $i (instantiate $m))
            (func (export "hello") (result s32) (canon lift (core func $i "hello"))))"#
    )
    .into_bytes()
}

fn set_mtime(path: &Path, ago: Duration) {
    set_mtime_at(path, SystemTime::now() - ago);
}

fn set_mtime_at(path: &Path, at: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(at)
        .unwrap();
}

/// `body` with the cache's footer: magic, length, CRC-32.
fn with_footer(mut body: Vec<u8>) -> Vec<u8> {
    let crc = crc32fast::hash(&body);
    let len = body.len() as u64;
    body.extend_from_slice(b"AIRSSYS2");
    body.extend_from_slice(&len.to_le_bytes());
    body.extend_from_slice(&crc.to_le_bytes());
    body
}

#[tokio::test]
async fn a_miss_stores_and_the_next_load_hits_with_a_working_component() {
    let dir = tempfile::tempdir().unwrap();
    let engine = WasmEngine::new().unwrap();
    let l = loader(&engine, dir.path());
    let (c, o) = l
        .load(Source::Bytes(fx::HELLO), &LoadOptions::named("hello"))
        .await
        .map(Loaded::into_parts)
        .unwrap();
    assert_eq!(o, CacheOutcome::Miss);
    assert_eq!(answer(&c).await, 42);
    assert_eq!(entries(dir.path()).len(), 1);

    // Another loader, another engine with the same configuration: a hit.
    let engine2 = WasmEngine::new().unwrap();
    let (c, o) = loader(&engine2, dir.path())
        .load(Source::Bytes(fx::HELLO), &LoadOptions::named("hello"))
        .await
        .map(Loaded::into_parts)
        .unwrap();
    assert_eq!(o, CacheOutcome::Hit);
    assert_eq!(c.name(), "hello");
    assert!(
        c.export_signatures()
            .contains(&"hello: func() -> s32".to_owned())
    );
    assert_eq!(answer(&c).await, 42);
    assert!(leftovers(dir.path()).is_empty());

    // Without a cache, nothing is looked up.
    let (_, o) = ComponentLoader::new(&engine)
        .load(Source::Bytes(fx::HELLO), &LoadOptions::named("hello"))
        .await
        .map(Loaded::into_parts)
        .unwrap();
    assert_eq!(o, CacheOutcome::Disabled);
}

#[tokio::test]
async fn different_bytes_or_code_settings_are_different_entries() {
    let dir = tempfile::tempdir().unwrap();
    let engine = WasmEngine::new().unwrap();
    let l = loader(&engine, dir.path());
    let (a, _) = l
        .load(Source::Bytes(&returning(1)), &LoadOptions::named("a"))
        .await
        .map(Loaded::into_parts)
        .unwrap();
    let (b, o) = l
        .load(Source::Bytes(&returning(2)), &LoadOptions::named("b"))
        .await
        .map(Loaded::into_parts)
        .unwrap();
    assert_eq!(o, CacheOutcome::Miss);
    assert_eq!((answer(&a).await, answer(&b).await), (1, 2));

    let unoptimized = WasmEngine::builder()
        .optimization(Optimization::None)
        .build()
        .unwrap();
    let (c, o) = loader(&unoptimized, dir.path())
        .load(Source::Bytes(&returning(1)), &LoadOptions::named("a"))
        .await
        .map(Loaded::into_parts)
        .unwrap();
    assert_eq!(o, CacheOutcome::Miss, "another code setting must not hit");
    assert_eq!(answer(&c).await, 1);
    assert_eq!(entries(dir.path()).len(), 3);

    // Epoch checks compiled in are another code setting too; each engine then finds
    // its own entry, and both run in one process.
    let epochs = WasmEngine::builder()
        .interruption(Interruption::Epochs)
        .build()
        .unwrap();
    let (d, o) = loader(&epochs, dir.path())
        .load(Source::Bytes(&returning(1)), &LoadOptions::named("a"))
        .await
        .map(Loaded::into_parts)
        .unwrap();
    assert_eq!(o, CacheOutcome::Miss, "the epoch-checked code must not hit");
    assert_eq!(entries(dir.path()).len(), 4);
    for e in [&engine, &epochs] {
        let (again, o) = loader(e, dir.path())
            .load(Source::Bytes(&returning(1)), &LoadOptions::named("a"))
            .await
            .map(Loaded::into_parts)
            .unwrap();
        assert_eq!(o, CacheOutcome::Hit, "{:?}", e.interruption());
        assert_eq!(answer(&again).await, 1);
    }
    assert_eq!((answer(&a).await, answer(&d).await), (1, 1));

    // The dense layout compiles explicit bounds checks: another code setting again.
    let dense = WasmEngine::builder()
        .density(Density::new(1 << 20))
        .build()
        .unwrap();
    let (e, o) = loader(&dense, dir.path())
        .load(Source::Bytes(&returning(1)), &LoadOptions::named("a"))
        .await
        .map(Loaded::into_parts)
        .unwrap();
    assert_eq!(
        o,
        CacheOutcome::Miss,
        "the bounds-checked code must not hit"
    );
    assert_eq!(entries(dir.path()).len(), 5);
    assert_eq!(answer(&e).await, 1);
}

#[tokio::test]
async fn corrupt_truncated_or_foreign_entries_are_replaced_never_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let engine = WasmEngine::new().unwrap();
    let l = loader(&engine, dir.path());
    l.load(Source::Bytes(fx::HELLO), &LoadOptions::named("hello"))
        .await
        .map(|l| l.component)
        .unwrap();
    let entry = entries(dir.path()).pop().unwrap();
    let good = std::fs::read(&entry).unwrap();

    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    let truncated = good[..good.len() / 3].to_vec();
    // Valid-looking footer over bytes Wasmtime must reject.
    let foreign = with_footer(b"not an artifact".to_vec());
    // The right footer over an artifact from an incompatible Wasmtime configuration
    // (no fuel or epoch instrumentation).
    let other = wasmtime::Engine::default();
    let incompatible = with_footer(
        wasmtime::component::Component::new(&other, fx::HELLO)
            .unwrap()
            .serialize()
            .unwrap(),
    );
    // The footer of the good entry on a body one byte short.
    let mut short = good.clone();
    short.remove(10);

    for (what, bad) in [
        ("a flipped bit", flipped),
        ("a truncated entry", truncated),
        ("a body shorter than its footer says", short),
        ("an empty entry", Vec::new()),
        ("a foreign file", foreign),
        ("an incompatible artifact", incompatible),
    ] {
        std::fs::write(&entry, &bad).unwrap();
        let (c, o) = l
            .load(Source::Bytes(fx::HELLO), &LoadOptions::named("hello"))
            .await
            .map(Loaded::into_parts)
            .unwrap();
        assert_eq!(o, CacheOutcome::Replaced, "{what}");
        assert_eq!(answer(&c).await, 42, "{what}");
        assert_eq!(std::fs::read(&entry).unwrap(), good, "{what} rewritten");
    }
}

/// The path records in `dir`, with their (inode, modification time): a record that was
/// rewritten has a new inode (records are replaced by a rename). None before the first.
fn records(dir: &Path) -> Vec<(u64, SystemTime)> {
    use std::os::unix::fs::MetadataExt;
    let Ok(paths) = std::fs::read_dir(dir.join("paths")) else {
        return Vec::new();
    };
    let mut v: Vec<_> = paths
        .map(|e| e.unwrap().metadata().unwrap())
        .map(|m| (m.ino(), m.modified().unwrap()))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_path_record_vouches_for_its_entry_only_while_the_entry_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("c.wat");
    std::fs::write(&file, returning(5)).unwrap();
    set_mtime_at(&file, SystemTime::now() - Duration::from_secs(3600));
    let engine = WasmEngine::new().unwrap();
    let l = loader(&engine, dir.path());
    let (_, o) = l
        .load(Source::File(&file), &LoadOptions::new())
        .await
        .map(Loaded::into_parts)
        .unwrap();
    assert_eq!(o, CacheOutcome::Miss);
    let entry = entries(dir.path()).pop().unwrap();
    let good = std::fs::read(&entry).unwrap();
    // A fresh entry is too recent to be vouched for by its stamp: every hit verifies it
    // in full and records nothing new.
    let fresh = records(dir.path());
    let (_, o) = l
        .load(Source::File(&file), &LoadOptions::new())
        .await
        .map(Loaded::into_parts)
        .unwrap();
    assert_eq!(o, CacheOutcome::Hit);
    assert_eq!(records(dir.path()), fresh);
    // Once it is old enough, a verified hit records its stamp ...
    set_mtime_at(&entry, SystemTime::now() - Duration::from_secs(60));
    let (_, o) = l
        .load(Source::File(&file), &LoadOptions::new())
        .await
        .map(Loaded::into_parts)
        .unwrap();
    assert_eq!(o, CacheOutcome::Hit);
    let recorded = records(dir.path());
    assert_ne!(recorded, fresh, "recorded afresh");

    // ... and the unchanged entry is then trusted as recorded: nothing is rewritten.
    let (c, o) = l
        .load(Source::File(&file), &LoadOptions::new())
        .await
        .map(Loaded::into_parts)
        .unwrap();
    assert_eq!((o, answer(&c).await), (CacheOutcome::Hit, 5));
    assert_eq!(
        records(dir.path()),
        recorded,
        "a trusted hit writes nothing"
    );

    // Changed in place (same size, a flipped bit): verified again, found corrupt,
    // replaced — never loaded.
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    std::fs::write(&entry, &flipped).unwrap();
    let (c, o) = l
        .load(Source::File(&file), &LoadOptions::new())
        .await
        .map(Loaded::into_parts)
        .unwrap();
    assert_eq!((o, answer(&c).await), (CacheOutcome::Replaced, 5));
    assert_eq!(std::fs::read(&entry).unwrap(), good);

    // Touched (the same bytes, another modification time): verified in full, then
    // recorded afresh, and trusted again after that.
    set_mtime_at(&entry, SystemTime::now() - Duration::from_secs(30));
    let before = records(dir.path());
    let (_, o) = l
        .load(Source::File(&file), &LoadOptions::new())
        .await
        .map(Loaded::into_parts)
        .unwrap();
    assert_eq!(o, CacheOutcome::Hit);
    let after = records(dir.path());
    assert_ne!(after, before, "the verified entry's new stamp is recorded");
    let (_, o) = l
        .load(Source::File(&file), &LoadOptions::new())
        .await
        .map(Loaded::into_parts)
        .unwrap();
    assert_eq!(o, CacheOutcome::Hit);
    assert_eq!(records(dir.path()), after);
}

#[tokio::test]
async fn unchanged_files_are_found_by_metadata_and_changed_ones_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("c.wat");
    std::fs::write(&file, returning(7)).unwrap();
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    set_mtime_at(&file, an_hour_ago);
    let engine = WasmEngine::new().unwrap();
    let l = loader(&engine, dir.path());

    let (c, o) = l
        .load(Source::File(&file), &LoadOptions::new())
        .await
        .map(Loaded::into_parts)
        .unwrap();
    assert_eq!((o, answer(&c).await), (CacheOutcome::Miss, 7));
    let (c, o) = l
        .load(Source::File(&file), &LoadOptions::new())
        .await
        .map(Loaded::into_parts)
        .unwrap();
    assert_eq!((o, answer(&c).await), (CacheOutcome::Hit, 7));

    // Same size, same inode, and the old modification time put back: the change time
    // (which no one can set back) gives the rewrite away, and the new content is
    // compiled, not the old code run.
    std::fs::write(&file, returning(8)).unwrap();
    set_mtime_at(&file, an_hour_ago);
    let (c, o) = l
        .load(Source::File(&file), &LoadOptions::new())
        .await
        .map(Loaded::into_parts)
        .unwrap();
    assert_eq!((o, answer(&c).await), (CacheOutcome::Miss, 8));

    // A real edit changes the modification time: the new content is compiled.
    std::fs::write(&file, returning(9)).unwrap();
    let (c, o) = l
        .load(Source::File(&file), &LoadOptions::new())
        .await
        .map(Loaded::into_parts)
        .unwrap();
    assert_eq!((o, answer(&c).await), (CacheOutcome::Miss, 9));
    // Modified just now (within the racy window): hashed again, still right.
    let (c, o) = l
        .load(Source::File(&file), &LoadOptions::new())
        .await
        .map(Loaded::into_parts)
        .unwrap();
    assert_eq!((o, answer(&c).await), (CacheOutcome::Hit, 9));
}

#[tokio::test]
async fn a_file_loaded_within_the_racy_window_is_not_vouched_for_by_its_stamp() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("c.wat");
    let engine = WasmEngine::new().unwrap();
    let l = loader(&engine, dir.path());
    // Written just now: a change within the filesystem's timestamp granularity could
    // leave its stamp as it is, so loading it records nothing ...
    std::fs::write(&file, returning(7)).unwrap();
    let written = std::fs::metadata(&file).unwrap().modified().unwrap();
    let (c, o) = l
        .load(Source::File(&file), &LoadOptions::new())
        .await
        .map(Loaded::into_parts)
        .unwrap();
    assert_eq!((o, answer(&c).await), (CacheOutcome::Miss, 7));
    let (c, o) = l
        .load(Source::File(&file), &LoadOptions::new())
        .await
        .map(Loaded::into_parts)
        .unwrap();
    assert_eq!((o, answer(&c).await), (CacheOutcome::Hit, 7));
    assert!(records(dir.path()).is_empty());
    // ... and such a change (same size, same inode, same modification time) is read.
    std::fs::write(&file, returning(8)).unwrap();
    set_mtime_at(&file, written);
    let (c, o) = l
        .load(Source::File(&file), &LoadOptions::new())
        .await
        .map(Loaded::into_parts)
        .unwrap();
    assert_eq!((o, answer(&c).await), (CacheOutcome::Miss, 8));
}

#[tokio::test]
async fn the_least_recently_used_entries_are_evicted_over_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let engine = WasmEngine::new().unwrap();
    let probe = loader(&engine, dir.path());
    probe
        .load(Source::Bytes(&returning(1)), &LoadOptions::named("a"))
        .await
        .map(|l| l.component)
        .unwrap();
    let one = std::fs::metadata(&entries(dir.path())[0]).unwrap().len();
    std::fs::remove_file(&entries(dir.path())[0]).unwrap();

    // Room for two entries, not three.
    let l = ComponentLoader::new(&engine)
        .with_cache(CacheConfig::new(dir.path()).with_max_bytes(one * 5 / 2));
    l.load(Source::Bytes(&returning(1)), &LoadOptions::named("a"))
        .await
        .map(|l| l.component)
        .unwrap();
    l.load(Source::Bytes(&returning(2)), &LoadOptions::named("b"))
        .await
        .map(|l| l.component)
        .unwrap();
    let both = entries(dir.path());
    assert_eq!(both.len(), 2);
    // Make "a" the most recently used (a hit refreshes an entry older than
    // TOUCH_AFTER), "b" the oldest.
    for e in &both {
        set_mtime(e, TOUCH_AFTER * 2);
    }
    let (_, o) = l
        .load(Source::Bytes(&returning(1)), &LoadOptions::named("a"))
        .await
        .map(Loaded::into_parts)
        .unwrap();
    assert_eq!(o, CacheOutcome::Hit);
    l.load(Source::Bytes(&returning(3)), &LoadOptions::named("c"))
        .await
        .map(|l| l.component)
        .unwrap();
    assert_eq!(entries(dir.path()).len(), 2);
    assert_eq!(
        l.load(Source::Bytes(&returning(1)), &LoadOptions::named("a"))
            .await
            .map(Loaded::into_parts)
            .unwrap()
            .1,
        CacheOutcome::Hit
    );
    assert_eq!(
        l.load(Source::Bytes(&returning(3)), &LoadOptions::named("c"))
            .await
            .map(Loaded::into_parts)
            .unwrap()
            .1,
        CacheOutcome::Hit
    );
    assert_eq!(
        l.load(Source::Bytes(&returning(2)), &LoadOptions::named("b"))
            .await
            .map(Loaded::into_parts)
            .unwrap()
            .1,
        CacheOutcome::Miss,
        "b was the least recently used"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_loads_of_one_component_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let engine = WasmEngine::new().unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let l = loader(&engine, dir.path());
        tasks.push(tokio::spawn(async move {
            let c = l
                .load(Source::Bytes(fx::HELLO), &LoadOptions::named("hello"))
                .await
                .map(|l| l.component)
                .unwrap();
            answer(&c).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 42);
    }
    assert_eq!(entries(dir.path()).len(), 1);
    assert!(leftovers(dir.path()).is_empty());
}

#[tokio::test]
async fn an_unwritable_cache_directory_only_costs_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, "not a directory").unwrap();
    let engine = WasmEngine::new().unwrap();
    let l = loader(&engine, &blocker.join("cache"));
    let (c, o) = l
        .load(Source::Bytes(fx::HELLO), &LoadOptions::named("hello"))
        .await
        .map(Loaded::into_parts)
        .unwrap();
    assert_eq!(o, CacheOutcome::Miss);
    assert_eq!(answer(&c).await, 42);
}

#[tokio::test]
async fn precompiled_files_load_only_through_the_explicit_call() {
    let dir = tempfile::tempdir().unwrap();
    let engine = WasmEngine::new().unwrap();
    let l = ComponentLoader::new(&engine);
    let artifact = l.precompile("hello", fx::HELLO).await.unwrap();
    let path = dir.path().join("hello.cwasm");
    std::fs::write(&path, &artifact).unwrap();

    // SAFETY: written just above by this engine configuration.
    let c = l
        .load(
            unsafe { Source::precompiled_file(&path) },
            &LoadOptions::new(),
        )
        .await
        .map(|l| l.component)
        .unwrap();
    assert_eq!(answer(&c).await, 42);

    // The ordinary path refuses it: it is not a component binary.
    let err = l.load_from_file(&path).await.unwrap_err();
    assert!(err.is_load_error(), "{err}");

    // And the explicit path refuses what is not a precompiled component.
    let wasm = dir.path().join("hello.wasm");
    std::fs::write(&wasm, fx::HELLO).unwrap();
    // SAFETY: a plain component file; Wasmtime rejects it before running anything.
    let err = l
        .load(
            unsafe { Source::precompiled_file(&wasm) },
            &LoadOptions::new(),
        )
        .await
        .map(|l| l.component)
        .unwrap_err();
    assert!(
        err.to_string().contains("not a precompiled component"),
        "{err}"
    );
}

#[tokio::test]
async fn engines_with_different_settings_share_a_directory_without_thrashing() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("c.wat");
    std::fs::write(&file, returning(5)).unwrap();
    set_mtime(&file, Duration::from_secs(3600));
    let speed = loader(&WasmEngine::new().unwrap(), dir.path());
    let none = loader(
        &WasmEngine::builder()
            .optimization(Optimization::None)
            .build()
            .unwrap(),
        dir.path(),
    );
    assert_eq!(
        speed
            .load(Source::File(&file), &LoadOptions::new())
            .await
            .map(Loaded::into_parts)
            .unwrap()
            .1,
        CacheOutcome::Miss
    );
    assert_eq!(
        none.load(Source::File(&file), &LoadOptions::new())
            .await
            .map(Loaded::into_parts)
            .unwrap()
            .1,
        CacheOutcome::Miss
    );
    for _ in 0..2 {
        let (c, o) = speed
            .load(Source::File(&file), &LoadOptions::new())
            .await
            .map(Loaded::into_parts)
            .unwrap();
        assert_eq!((o, answer(&c).await), (CacheOutcome::Hit, 5));
        let (c, o) = none
            .load(Source::File(&file), &LoadOptions::new())
            .await
            .map(Loaded::into_parts)
            .unwrap();
        assert_eq!((o, answer(&c).await), (CacheOutcome::Hit, 5));
    }
    assert_eq!(entries(dir.path()).len(), 2);
}

#[cfg(unix)]
#[tokio::test]
async fn path_records_are_symbolic_links_and_file_records_are_replaced_by_them() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("c.wat");
    std::fs::write(&file, returning(9)).unwrap();
    set_mtime_at(&file, SystemTime::now() - Duration::from_secs(3600));
    let engine = WasmEngine::new().unwrap();
    let l = loader(&engine, dir.path());
    l.load_from_file(&file).await.unwrap();
    let paths: Vec<PathBuf> = std::fs::read_dir(dir.path().join("paths"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(paths.len(), 1, "{paths:?}");
    let record = &paths[0];
    let text = std::fs::read_link(record).unwrap();
    let text = text.to_str().unwrap();
    assert!(text.starts_with("v4 "), "{text}");

    // A record written as a file (as before links were used) is not read: the file is
    // hashed, found, and the record rewritten as a link.
    std::fs::remove_file(record).unwrap();
    std::fs::write(record, text).unwrap();
    let (c, o) = l
        .load(Source::File(&file), &LoadOptions::new())
        .await
        .map(Loaded::into_parts)
        .unwrap();
    assert_eq!((o, answer(&c).await), (CacheOutcome::Hit, 9));
    assert!(record.symlink_metadata().unwrap().is_symlink());
    assert!(leftovers(&dir.path().join("paths")).is_empty());
}
