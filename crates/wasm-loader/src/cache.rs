//! The compiled-artifact cache: Wasmtime's serialized components on disk, keyed by
//! what determines the machine code, so a component is compiled once per machine.
//!
//! - **Key**: BLAKE3 of the engine's precompile-compatibility hash (Wasmtime version,
//!   target, every code-affecting setting such as fuel and epoch instrumentation), this
//!   crate's version, and the component's bytes. A cryptographic hash, because the key
//!   decides which machine code runs under which component's grants: a crafted
//!   collision must not be able to run one component's code as another's.
//! - **Entries** (`<dir>/<key>.cwasm`) are Wasmtime's serialized form followed by a
//!   footer holding its length and CRC-32 (corruption detection; hardware-accelerated,
//!   so verifying costs a few microseconds per 100 KB). They are written to a temporary
//!   file in the same directory and renamed into place, so a concurrent reader never
//!   sees half an entry, and loaded with [`Component::deserialize_file`]
//!   (memory-mapped). An entry whose footer is missing, whose length or checksum does
//!   not match, or that Wasmtime rejects (incompatible engine) is deleted and the
//!   component recompiled — never loaded.
//! - **Metadata fast path**: for files, `<dir>/paths/<hash of the engine key and the
//!   path>` remembers the file's size, modification time, inode and device with its
//!   key, so an unchanged file is not read or hashed at all. A file modified within
//!   [`RACY_WINDOW`] of being recorded is always re-hashed (the same precaution git
//!   takes for its index). Once an entry is older than [`RACY_WINDOW`], a hit that
//!   verified it records the entry's stamp too; while the entry's stamp still matches,
//!   later hits do not read and checksum it again (a hit is then two `stat`s and a
//!   `readlink` on top of Wasmtime's own `deserialize_file`: ~9 µs instead of ~17 µs
//!   for a 195 KB entry, and a full read of the file saved for large ones). On Unix a
//!   record is the target of a symbolic link, read in one system call where a file
//!   takes three (open, read, close: ~1.5 µs more here); elsewhere a small file. Both
//!   are replaced atomically by a rename. Entries are
//!   written once, never modified in place, and flushed to disk before they are
//!   renamed into place, so an entry whose stamp is unchanged is the one verified: any
//!   write through the filesystem changes it. What a stamp cannot see is silent media
//!   corruption under an unchanged inode; a checksumming filesystem covers that.
//! - **Size cap**: after each insertion, the least recently used entries (by
//!   modification time, which a hit refreshes when it is over [`TOUCH_AFTER`] old) are
//!   removed until the total is under the cap.
//!
//! # Trust
//!
//! The cache directory must be writable only by the user running airssys-wasm. Its
//! entries are native code that Wasmtime maps and runs **without validating** it; the
//! checksum detects corruption, not tampering — anyone who can write the directory can
//! write a matching checksum. The default directory is private to the user
//! (`$XDG_CACHE_HOME/airssys-wasm`, else `~/.cache/airssys-wasm`) and is created with
//! mode 0700.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasmtime::Engine;
use wasmtime::component::Component;

/// Entries' file extension.
const EXT: &str = "cwasm";
/// The footer: magic, the length of what precedes it (u64 LE), its CRC-32 (u32 LE).
const FOOTER_MAGIC: &[u8; 8] = b"AIRSSYS2";
const FOOTER_LEN: usize = 8 + 8 + 4;
/// A hit refreshes an entry's modification time (its LRU age) only when it is older
/// than this: an hour's granularity is plenty for eviction and saves a syscall a hit.
pub const TOUCH_AFTER: Duration = Duration::from_secs(3600);
/// How close to its recording a file's modification time may be before the metadata
/// fast path stops trusting it.
pub const RACY_WINDOW: Duration = Duration::from_secs(2);
/// The default size cap: 1 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

/// Where and how large the artifact cache is.
///
/// ```
/// use airssys_wasm_loader::CacheConfig;
///
/// let config = CacheConfig::new("/tmp/my-cache").with_max_bytes(64 << 20);
/// assert_eq!(config.max_bytes(), 64 << 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    dir: PathBuf,
    max_bytes: u64,
}

impl CacheConfig {
    /// A cache in `dir` (created on first use), capped at [`DEFAULT_MAX_BYTES`].
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }

    /// The cache in the user's cache directory: `$XDG_CACHE_HOME/airssys-wasm`, or
    /// `$HOME/.cache/airssys-wasm`; `None` when neither variable is set.
    pub fn user_default() -> Option<Self> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|h| PathBuf::from(h).join(".cache"))
            })?;
        Some(Self::new(base.join("airssys-wasm")))
    }

    /// Caps the total size of the entries.
    #[must_use]
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The size cap.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }
}

/// What a cache lookup found, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheOutcome {
    /// No cache configured.
    Disabled,
    /// Loaded from the cache.
    Hit,
    /// Not in the cache: compiled and stored.
    Miss,
    /// An entry was there but unusable (corrupt, truncated, incompatible): deleted,
    /// compiled afresh and stored.
    Replaced,
}

/// The artifact cache of one engine.
#[derive(Debug)]
pub(crate) struct ArtifactCache {
    config: CacheConfig,
    /// Digest of everything about the engine that changes the machine code.
    engine_key: [u8; 32],
}

/// A cache key: the hex BLAKE3 digest naming an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key(String);

/// What a lookup returned.
pub(crate) enum Lookup {
    /// Found; `stale_record` when the entry had to be verified in full and could now
    /// be vouched for by its stamp, so that a path record naming it should be written
    /// again.
    Hit {
        component: Component,
        stale_record: bool,
    },
    Miss,
    Corrupt,
}

/// What a path record says: the file's key, its size, and the entry's stamp when it was
/// last verified.
pub(crate) struct Recorded {
    pub(crate) key: Key,
    pub(crate) size: u64,
    entry: Option<FileStamp>,
}

impl ArtifactCache {
    pub(crate) fn new(config: CacheConfig, engine: &Engine) -> Self {
        let mut h = blake3::Hasher::new();
        // The entry format is part of the key: entries of another format are misses.
        h.update(b"airssys-wasm artifact cache v2\0");
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        h.update(b"\0");
        std::hash::Hash::hash(
            &engine.precompile_compatibility_hash(),
            &mut HashInto(&mut h),
        );
        Self {
            config,
            engine_key: *h.finalize().as_bytes(),
        }
    }

    pub(crate) fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// The key of `bytes` (the component exactly as given: binary or WAT text).
    pub(crate) fn key(&self, bytes: &[u8]) -> Key {
        let mut h = blake3::Hasher::new();
        h.update(&self.engine_key);
        h.update(bytes);
        Key(h.finalize().to_hex().to_string())
    }

    fn entry_path(&self, key: &Key) -> PathBuf {
        self.config.dir.join(format!("{}.{EXT}", key.0))
    }

    /// Looks `key` up; a corrupt entry is deleted. An entry whose stamp is `verified`
    /// (from a path record) is trusted without reading it; any other is checked against
    /// its footer first.
    pub(crate) fn lookup(&self, engine: &Engine, key: &Key, verified: Option<&Recorded>) -> Lookup {
        let path = self.entry_path(key);
        let trusted = verified
            .and_then(|r| r.entry.as_ref())
            .zip(FileStamp::of(&path))
            .filter(|(recorded, now)| recorded == &now)
            .map(|(_, now)| now.modified());
        let (modified, checked) = match trusted {
            Some(modified) => (modified, false),
            None => {
                let mut file = match std::fs::File::open(&path) {
                    Ok(f) => f,
                    Err(_) => return Lookup::Miss,
                };
                match verify(&mut file) {
                    Ok(modified) => (modified, true),
                    Err(why) => {
                        tracing::warn!(entry = %path.display(), %why, "discarding a corrupt cache entry");
                        let _ = std::fs::remove_file(&path);
                        return Lookup::Corrupt;
                    }
                }
            }
        };
        // SAFETY: the entry was written by `store` below from `Component::serialize` of
        // this engine configuration (the key covers it), and either its length and
        // checksum match, or it is unchanged since they did (its size, modification
        // time and inode are those recorded then; entries are never modified in place),
        // so it is neither truncated nor corrupted. The cache directory is trusted
        // (module docs): tampering by someone who can write it is outside what this can
        // detect.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => {
                let stale = modified.elapsed().map_or(true, |age| age > TOUCH_AFTER);
                if stale {
                    // Refresh the entry's age for LRU eviction.
                    let _ = std::fs::File::options()
                        .write(true)
                        .open(&path)
                        .and_then(|f| f.set_modified(SystemTime::now()));
                }
                // Worth recording: an entry just verified, old enough that a later
                // change cannot share its modification time.
                let racy = modified.elapsed().map_or(true, |age| age < RACY_WINDOW);
                Lookup::Hit {
                    component,
                    stale_record: checked && !stale && !racy,
                }
            }
            Err(e) => {
                tracing::warn!(entry = %path.display(), error = %e, "discarding an unusable cache entry");
                let _ = std::fs::remove_file(&path);
                Lookup::Corrupt
            }
        }
    }

    /// Stores a compiled component under `key`, atomically; then evicts down to the cap.
    /// Failures are logged, never fatal: the cache is an optimization.
    pub(crate) fn store(&self, key: &Key, component: &Component) {
        if let Err(e) = self.try_store(key, component) {
            tracing::warn!(dir = %self.config.dir.display(), error = %e, "could not write to the artifact cache");
            return;
        }
        if let Err(e) = self.evict() {
            tracing::warn!(dir = %self.config.dir.display(), error = %e, "artifact cache eviction failed");
        }
    }

    fn try_store(&self, key: &Key, component: &Component) -> std::io::Result<()> {
        let mut bytes = component
            .serialize()
            .map_err(|e| std::io::Error::other(format!("serializing: {e}")))?;
        let crc = crc32fast::hash(&bytes);
        let len = bytes.len() as u64;
        bytes.extend_from_slice(FOOTER_MAGIC);
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(&crc.to_le_bytes());
        ensure_private_dir(&self.config.dir)?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&self.config.dir)?;
        std::io::Write::write_all(&mut tmp, &bytes)?;
        // On disk before it has a name: a path record may vouch for this entry by its
        // stamp alone, so it must never be torn (a flush costs little next to the
        // compilation that preceded it).
        tmp.as_file().sync_all()?;
        tmp.persist(self.entry_path(key)).map_err(|e| e.error)?;
        Ok(())
    }

    /// Removes the least recently used entries until the total is under the cap.
    fn evict(&self) -> std::io::Result<()> {
        let mut entries = Vec::new();
        let mut total = 0u64;
        for entry in std::fs::read_dir(&self.config.dir)? {
            let entry = entry?;
            let path = entry.path();
            if path.extension().is_none_or(|x| x != EXT) {
                continue;
            }
            let meta = entry.metadata()?;
            total += meta.len();
            entries.push((meta.modified().unwrap_or(UNIX_EPOCH), meta.len(), path));
        }
        if total <= self.config.max_bytes {
            return Ok(());
        }
        entries.sort();
        for (_, len, path) in entries {
            if total <= self.config.max_bytes {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                tracing::debug!(entry = %path.display(), "evicted");
                total = total.saturating_sub(len);
            }
        }
        Ok(())
    }

    /// What the record of `file` says, if the file's metadata is unchanged since it was
    /// recorded (and was not too recent to trust then).
    pub(crate) fn key_by_metadata(&self, file: &Path) -> Option<Recorded> {
        let stamp = FileStamp::of(file)?;
        let text = read_record(&self.path_record(file))?;
        let mut parts = text.split_ascii_whitespace();
        if parts.next()? != "v2" {
            return None;
        }
        let recorded = FileStamp::parse(&mut parts)?;
        let recorded_at_ns: u128 = parts.next()?.parse().ok()?;
        let key = parts.next()?;
        let entry = FileStamp::parse(&mut parts);
        let racy = recorded_at_ns.saturating_sub(stamp.mtime_ns) < RACY_WINDOW.as_nanos();
        (recorded == stamp && !racy && is_hex_key(key)).then(|| Recorded {
            key: Key(key.to_owned()),
            size: stamp.len,
            entry,
        })
    }

    /// Remembers `key` for `file` as it is now, with the stamp of the entry as it is now
    /// (call it when the entry was just written or verified) unless that is too recent
    /// to trust.
    pub(crate) fn record_metadata(&self, file: &Path, key: &Key) {
        let Some(stamp) = FileStamp::of(file) else {
            return;
        };
        // The entry's stamp only once it is old enough that a later change cannot
        // share its modification time (the racy-git problem again).
        let entry = FileStamp::of(&self.entry_path(key))
            .filter(|e| e.modified().elapsed().is_ok_and(|age| age >= RACY_WINDOW))
            .map(|e| e.to_string())
            .unwrap_or_default();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let text = format!("v2 {stamp} {now} {} {entry}", key.0);
        let record = self.path_record(file);
        let write = || -> std::io::Result<()> {
            let dir = self.config.dir.join("paths");
            ensure_private_dir(&dir)?;
            write_record(&dir, &record, &text)
        };
        if let Err(e) = write() {
            tracing::debug!(error = %e, "could not record file metadata in the cache");
        }
    }

    fn path_record(&self, file: &Path) -> PathBuf {
        // Lexically absolute (no syscalls); another spelling of the same file only
        // costs another record.
        let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_owned());
        // Per engine configuration: the key a record holds is only valid for it.
        let mut h = blake3::Hasher::new();
        h.update(&self.engine_key);
        h.update(absolute.as_os_str().as_encoded_bytes());
        let digest = h.finalize();
        self.config
            .dir
            .join("paths")
            .join(&digest.to_hex().as_str()[..32])
    }
}

/// Reads a path record: the target of a symbolic link, one `readlink`.
#[cfg(unix)]
fn read_record(record: &Path) -> Option<String> {
    std::fs::read_link(record)
        .ok()?
        .into_os_string()
        .into_string()
        .ok()
}

/// Reads a path record: a small file.
#[cfg(not(unix))]
fn read_record(record: &Path) -> Option<String> {
    std::fs::read_to_string(record).ok()
}

/// Writes a path record under a temporary name in `dir`, then renames it into place.
#[cfg(unix)]
fn write_record(dir: &Path, record: &Path, text: &str) -> std::io::Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .make_in(dir, |path| std::os::unix::fs::symlink(text, path))?;
    tmp.persist(record).map_err(|e| e.error)?;
    Ok(())
}

/// Writes a path record under a temporary name in `dir`, then renames it into place.
#[cfg(not(unix))]
fn write_record(dir: &Path, record: &Path, text: &str) -> std::io::Result<()> {
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes())?;
    tmp.persist(record).map_err(|e| e.error)?;
    Ok(())
}

fn is_hex_key(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What identifies a file's content without reading it.
#[derive(Debug, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    mtime_ns: u128,
    ino: u64,
    dev: u64,
}

impl FileStamp {
    fn of(file: &Path) -> Option<Self> {
        let meta = std::fs::metadata(file).ok()?;
        let mtime_ns = meta
            .modified()
            .ok()?
            .duration_since(UNIX_EPOCH)
            .ok()?
            .as_nanos();
        #[cfg(unix)]
        let (ino, dev) = {
            use std::os::unix::fs::MetadataExt;
            (meta.ino(), meta.dev())
        };
        #[cfg(not(unix))]
        let (ino, dev) = (0, 0);
        Some(Self {
            len: meta.len(),
            mtime_ns,
            ino,
            dev,
        })
    }

    fn parse<'a>(parts: &mut impl Iterator<Item = &'a str>) -> Option<Self> {
        Some(Self {
            len: parts.next()?.parse().ok()?,
            mtime_ns: parts.next()?.parse().ok()?,
            ino: parts.next()?.parse().ok()?,
            dev: parts.next()?.parse().ok()?,
        })
    }

    fn modified(&self) -> SystemTime {
        let nanos = u64::try_from(self.mtime_ns).unwrap_or(u64::MAX);
        UNIX_EPOCH + Duration::from_nanos(nanos)
    }
}

impl std::fmt::Display for FileStamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.len, self.mtime_ns, self.ino, self.dev
        )
    }
}

/// Checks an entry's footer against its content (length, then CRC-32, read in chunks so
/// that no buffer the size of the entry is allocated); returns its modification time.
fn verify(file: &mut std::fs::File) -> Result<SystemTime, String> {
    use std::io::{Read, Seek, SeekFrom};
    let meta = file.metadata().map_err(|e| format!("unreadable: {e}"))?;
    let size = meta.len();
    let Some(body_len) = size.checked_sub(FOOTER_LEN as u64) else {
        return Err("shorter than its footer".into());
    };
    let mut footer = [0u8; FOOTER_LEN];
    file.seek(SeekFrom::Start(body_len))
        .and_then(|_| file.read_exact(&mut footer))
        .map_err(|e| format!("unreadable footer: {e}"))?;
    let (magic, rest) = footer.split_at(FOOTER_MAGIC.len());
    let (len, crc) = rest.split_at(8);
    if magic != FOOTER_MAGIC {
        return Err("no footer (truncated, or not written by this cache)".into());
    }
    let len = u64::from_le_bytes(len.try_into().map_err(|_| "bad footer")?);
    let crc = u32::from_le_bytes(crc.try_into().map_err(|_| "bad footer")?);
    if len != body_len {
        return Err(format!("length {body_len} where the footer says {len}"));
    }
    file.seek(SeekFrom::Start(0))
        .map_err(|e| format!("unreadable: {e}"))?;
    let mut hasher = crc32fast::Hasher::new();
    let mut left = body_len;
    let mut buf = vec![0u8; 64 * 1024];
    while left > 0 {
        let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        let n = file
            .read(&mut buf[..want])
            .map_err(|e| format!("unreadable: {e}"))?;
        if n == 0 {
            return Err("shorter than its footer says".into());
        }
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    if hasher.finalize() != crc {
        return Err("checksum mismatch".into());
    }
    Ok(meta.modified().unwrap_or(UNIX_EPOCH))
}

fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Feeds `Hash` output into a BLAKE3 hasher.
struct HashInto<'a>(&'a mut blake3::Hasher);

impl std::hash::Hasher for HashInto<'_> {
    fn finish(&self) -> u64 {
        0 // unused: the digest is read from the BLAKE3 hasher
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}
