//! The cache directory's trust: it must be the user's own and writable by no one else
//! (its entries are native code this process runs), and is created so.

use std::path::Path;

/// Refuses an existing `dir` owned by another user or writable by group or others.
pub(super) fn check_private(dir: &Path) -> Result<(), String> {
    let Ok(meta) = std::fs::metadata(dir) else {
        // Missing: created private when first used.
        return Ok(());
    };
    if !meta.is_dir() {
        return Err(format!(
            "the cache directory {} is not a directory; choose another (--cache-dir)",
            dir.display()
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            return Err(format!(
                "the cache directory {} belongs to user {}, not to this user ({me}): its \
                 entries are native code this process would run; use a directory of your \
                 own (--cache-dir) or --no-cache",
                dir.display(),
                meta.uid()
            ));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(format!(
                "the cache directory {} is writable by {} (mode {:o}): anyone who can write \
                 there can make this process run their code; `chmod go-w` it, or use \
                 another (--cache-dir) or --no-cache",
                dir.display(),
                if meta.mode() & 0o002 != 0 {
                    "anyone"
                } else {
                    "its group"
                },
                meta.mode() & 0o7777
            ));
        }
    }
    Ok(())
}

/// Creates `dir` (and its parents) private to the user, unless it exists.
pub(super) fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}
