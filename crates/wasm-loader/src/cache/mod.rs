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
//!   path>` remembers the file's size, modification and change times, inode and device with its
//!   key, so an unchanged file is not read or hashed at all. A file modified within
//!   [`RACY_WINDOW`] of being recorded is not recorded, so always re-hashed (the same
//!   precaution git takes for its index). Once an entry is older than [`RACY_WINDOW`],
//!   a hit that verified it records the entry's stamp too; while the entry's stamp
//!   still matches, later hits do not read and checksum it again (a hit is then two
//!   `stat`s, a `readlink` and ~4 µs of bookkeeping on top of Wasmtime's own
//!   `deserialize_file`, where checksumming the 195 KB entry of the benchmarks would
//!   add ~10 µs, and a full read of the file is saved for large ones). On Unix a
//!   record is the target of a symbolic link, read in one system call where a file
//!   takes three (open, read, close: ~1.5 µs more here); elsewhere a small file. Both
//!   are replaced atomically by a rename. A record reads `v4 <stamp> <key>` or
//!   `v4 <stamp> <key> <entry stamp>`, stamps in fixed-width hex, so that reading one
//!   is slicing rather than parsing; records of another version are ignored, and
//!   rewritten when their file is next hashed. Entries are
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

mod private;
mod record;

use private::{check_private, ensure_private_dir};
use record::{FileStamp, STAMP_HEX, read_record, write_record};

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

/// An XDG base directory: `$VAR` when set and not empty, else `$HOME/<under_home>`
/// (e.g. `xdg_dir("XDG_DATA_HOME", ".local/share")`); `None` when neither is set.
pub fn xdg_dir(var: &str, under_home: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(under_home))
        })
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
        Some(Self::new(
            xdg_dir("XDG_CACHE_HOME", ".cache")?.join("airssys-wasm"),
        ))
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

    /// Checks that the directory, if it exists (it is created `0700` on first use),
    /// can be trusted with native code: owned by this user, and writable by no one
    /// else — nor its `paths` records. Anyone who can write there can make this process
    /// run code of their choosing.
    ///
    /// # Errors
    ///
    /// What is wrong, with the directory and the fix.
    pub fn check_dir(&self) -> Result<(), String> {
        for dir in [self.dir.clone(), self.dir.join("paths")] {
            check_private(&dir)?;
        }
        Ok(())
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
    /// A precompiled file, mapped: nothing compiled, the cache not consulted.
    Precompiled,
}

/// The artifact cache of one engine.
#[derive(Debug)]
pub(crate) struct ArtifactCache {
    config: CacheConfig,
    /// `<dir>/paths`, where path records are.
    paths: PathBuf,
    /// Digest of everything about the engine that changes the machine code.
    engine_key: [u8; 32],
}

/// A cache key: a BLAKE3 digest, in the lowercase hex that names its entry (kept as
/// text: records hold it so, and decoding it only to encode it again costs more than
/// the rest of reading a record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key([u8; 64]);

impl Key {
    /// The key in a record, if it is one.
    fn parse(text: &str) -> Option<Self> {
        let hex: [u8; 64] = text.as_bytes().try_into().ok()?;
        hex.iter()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            .then_some(Self(hex))
    }

    fn as_str(&self) -> &str {
        // Always ASCII: made from a digest's hex or checked by `parse`.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

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
            paths: config.dir.join("paths"),
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
        let mut hex = [0u8; 64];
        hex.copy_from_slice(h.finalize().to_hex().as_bytes());
        Key(hex)
    }

    fn entry_path(&self, key: &Key) -> PathBuf {
        let dir = self.config.dir.as_os_str();
        let mut path = PathBuf::with_capacity(dir.len() + 2 + 64 + EXT.len());
        path.push(dir);
        path.push(key.as_str());
        // Not `set_extension`, which parses the path it extends.
        path.as_mut_os_string().push(".");
        path.as_mut_os_string().push(EXT);
        path
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

    /// Looks up the entry a path record names, and records `file` again when the
    /// entry had to be verified in full and can now be vouched for by its stamp.
    pub(crate) fn lookup_recorded(
        &self,
        engine: &Engine,
        file: &Path,
        recorded: &Recorded,
    ) -> Lookup {
        let found = self.lookup(engine, &recorded.key, Some(recorded));
        if let Lookup::Hit {
            stale_record: true, ..
        } = found
        {
            self.record_metadata(file, &recorded.key);
        }
        found
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
    /// recorded.
    ///
    /// A record is `v4 <stamp> <key>` or `v4 <stamp> <key> <entry stamp>`, stamps in
    /// fixed-width hex: sliced, not split and parsed (which cost more than the rest of
    /// a hit's bookkeeping).
    pub(crate) fn key_by_metadata(&self, file: &Path) -> Option<Recorded> {
        let stamp = FileStamp::of(file)?;
        let text = read_record(&self.path_record(file))?;
        let rest = text.strip_prefix("v4 ")?;
        let (recorded, rest) = rest.split_at_checked(STAMP_HEX)?;
        if FileStamp::from_hex(recorded)? != stamp {
            return None;
        }
        let (key, entry) = match rest.strip_prefix(' ')?.split_at_checked(64)? {
            (key, "") => (key, None),
            (key, entry) => (key, Some(FileStamp::from_hex(entry.strip_prefix(' ')?)?)),
        };
        Some(Recorded {
            key: Key::parse(key)?,
            size: stamp.len,
            entry,
        })
    }

    /// Remembers `key` for `file` as it is now, with the stamp of the entry as it is now
    /// (call it when the entry was just written or verified). Nothing is recorded for a
    /// file modified within [`RACY_WINDOW`] (a later change could share its
    /// modification time: the racy-git problem), and the entry's stamp only once the
    /// entry is that old too.
    pub(crate) fn record_metadata(&self, file: &Path, key: &Key) {
        let old_enough = |s: &FileStamp| s.modified().elapsed().is_ok_and(|age| age >= RACY_WINDOW);
        let Some(stamp) = FileStamp::of(file).filter(old_enough) else {
            return;
        };
        let mut text = format!("v4 {} {}", stamp.to_hex(), key.as_str());
        if let Some(entry) = FileStamp::of(&self.entry_path(key)).filter(old_enough) {
            text.push(' ');
            text.push_str(&entry.to_hex());
        }
        let record = self.path_record(file);
        let write = || -> std::io::Result<()> {
            ensure_private_dir(&self.paths)?;
            write_record(&self.paths, &record, &text)
        };
        if let Err(e) = write() {
            tracing::debug!(error = %e, "could not record file metadata in the cache");
        }
    }

    fn path_record(&self, file: &Path) -> PathBuf {
        // Lexically absolute (no syscalls); another spelling of the same file only
        // costs another record.
        let absolute = if file.is_absolute() {
            std::borrow::Cow::Borrowed(file)
        } else {
            std::borrow::Cow::Owned(std::path::absolute(file).unwrap_or_else(|_| file.to_owned()))
        };
        // Per engine configuration: the key a record holds is only valid for it. (The
        // one-shot keyed hash: a `Hasher` is a 2 KB struct to set up, which cost more
        // than the rest of finding a record.)
        let digest = blake3::keyed_hash(&self.engine_key, absolute.as_os_str().as_encoded_bytes());
        self.paths.join(&digest.to_hex().as_str()[..32])
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_through_fixed_width_hex_and_nothing_else_parses() {
        for stamp in [
            FileStamp {
                len: 0,
                mtime_ns: 0,
                ctime_ns: 0,
                ino: 0,
                dev: 0,
            },
            FileStamp {
                len: 195_344,
                mtime_ns: 1_795_000_000_123_456_789,
                ctime_ns: 1_795_000_001_987_654_321,
                ino: 0x0123_4567_89ab_cdef,
                dev: 2049,
            },
            FileStamp {
                len: u64::MAX,
                mtime_ns: u128::MAX,
                ctime_ns: u128::MAX,
                ino: u64::MAX,
                dev: u64::MAX,
            },
        ] {
            let hex = stamp.to_hex();
            assert_eq!(hex.len(), STAMP_HEX);
            assert_eq!(FileStamp::from_hex(&hex), Some(stamp));
            if hex.contains(|c: char| c.is_ascii_lowercase()) {
                assert_eq!(FileStamp::from_hex(&hex.to_uppercase()), None);
            }
            assert_eq!(FileStamp::from_hex(&hex[1..]), None);
            assert_eq!(FileStamp::from_hex(&format!("{hex}0")), None);
            assert_eq!(FileStamp::from_hex(&format!("{}g", &hex[1..])), None);
        }
    }

    #[test]
    fn keys_are_64_lowercase_hex_digits() {
        let good = "0123456789abcdef".repeat(4);
        assert_eq!(
            Key::parse(&good).map(|k| k.as_str().to_owned()),
            Some(good.clone())
        );
        for bad in [
            good.to_uppercase(),
            good[1..].to_owned(),
            format!("{good}0"),
            format!("{}/", &good[1..]),
            String::new(),
        ] {
            assert_eq!(Key::parse(&bad), None, "{bad}");
        }
    }
}
