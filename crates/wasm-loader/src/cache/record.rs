//! Path records, the metadata fast path: what identifies a file's content without
//! reading it ([`FileStamp`]), and the record that remembers it with the file's key —
//! the target of a symbolic link on Unix (one `readlink`), a small file elsewhere;
//! replaced atomically by a rename.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Reads a path record: the target of a symbolic link, one `readlink`.
#[cfg(unix)]
pub(super) fn read_record(record: &Path) -> Option<String> {
    std::fs::read_link(record)
        .ok()?
        .into_os_string()
        .into_string()
        .ok()
}

/// Reads a path record: a small file.
#[cfg(not(unix))]
pub(super) fn read_record(record: &Path) -> Option<String> {
    std::fs::read_to_string(record).ok()
}

/// Writes a path record under a temporary name in `dir`, then renames it into place.
#[cfg(unix)]
pub(super) fn write_record(dir: &Path, record: &Path, text: &str) -> std::io::Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .make_in(dir, |path| std::os::unix::fs::symlink(text, path))?;
    tmp.persist(record).map_err(|e| e.error)?;
    Ok(())
}

/// Writes a path record under a temporary name in `dir`, then renames it into place.
#[cfg(not(unix))]
pub(super) fn write_record(dir: &Path, record: &Path, text: &str) -> std::io::Result<()> {
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes())?;
    tmp.persist(record).map_err(|e| e.error)?;
    Ok(())
}

/// How many hex digits a [`FileStamp`] is written in.
pub(super) const STAMP_HEX: usize = 16 + 32 + 32 + 16 + 16;

/// What identifies a file's content without reading it. The change time is in it
/// because the modification time can be set back by anyone who can write the file
/// (an in-place rewrite that restores it keeps size and inode); the change time
/// cannot be.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct FileStamp {
    pub(super) len: u64,
    pub(super) mtime_ns: u128,
    pub(super) ctime_ns: u128,
    pub(super) ino: u64,
    pub(super) dev: u64,
}

impl FileStamp {
    pub(super) fn of(file: &Path) -> Option<Self> {
        let meta = std::fs::metadata(file).ok()?;
        let mtime_ns = meta
            .modified()
            .ok()?
            .duration_since(UNIX_EPOCH)
            .ok()?
            .as_nanos();
        #[cfg(unix)]
        let (ctime_ns, ino, dev) = {
            use std::os::unix::fs::MetadataExt;
            let ctime_ns = u128::try_from(meta.ctime()).unwrap_or(0) * 1_000_000_000
                + u128::try_from(meta.ctime_nsec()).unwrap_or(0);
            (ctime_ns, meta.ino(), meta.dev())
        };
        #[cfg(not(unix))]
        let (ctime_ns, ino, dev) = (0, 0, 0);
        Some(Self {
            len: meta.len(),
            mtime_ns,
            ctime_ns,
            ino,
            dev,
        })
    }

    /// The stamp as [`STAMP_HEX`] lowercase hex digits: length, modification time and
    /// change time (nanoseconds), inode, device.
    pub(super) fn to_hex(&self) -> String {
        format!(
            "{:016x}{:032x}{:032x}{:016x}{:016x}",
            self.len, self.mtime_ns, self.ctime_ns, self.ino, self.dev
        )
    }

    /// The stamp [`to_hex`](Self::to_hex) wrote, if `hex` is one.
    pub(super) fn from_hex(hex: &str) -> Option<Self> {
        let hex = hex.as_bytes();
        if hex.len() != STAMP_HEX {
            return None;
        }
        // Sixteen digits at a time: a u128 accumulator costs twice as much.
        let field = |at: usize| -> Option<u64> {
            hex[at..at + 16].iter().try_fold(0u64, |acc, &b| {
                let digit = match b {
                    b'0'..=b'9' => b - b'0',
                    b'a'..=b'f' => b - b'a' + 10,
                    _ => return None,
                };
                Some(acc << 4 | u64::from(digit))
            })
        };
        Some(Self {
            len: field(0)?,
            mtime_ns: u128::from(field(16)?) << 64 | u128::from(field(32)?),
            ctime_ns: u128::from(field(48)?) << 64 | u128::from(field(64)?),
            ino: field(80)?,
            dev: field(96)?,
        })
    }

    pub(super) fn modified(&self) -> SystemTime {
        let nanos = u64::try_from(self.mtime_ns).unwrap_or(u64::MAX);
        UNIX_EPOCH + Duration::from_nanos(nanos)
    }
}
