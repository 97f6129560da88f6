//! The key-value grant (`[capabilities.keyvalue]`): which buckets a component may open
//! through `wasi:keyvalue`, and how many bytes each may hold; and the backend contract
//! (`backend.rs`: [`KeyValueBackend`], [`KeyValueBucket`], [`KeyValueError`] and the
//! bounds every backend shares) with the in-memory backend ([`MemoryBackend`]).
//!
//! A component's **default bucket** (`"default"`, or `""` as Wasmtime's guests open it)
//! is its own: two components never see each other's. Any other bucket is **shared** by
//! name between the components whose grants name it.

mod backend;
mod memory;

pub use backend::{
    BucketId, BucketRouter, Counter, ENTRY_OVERHEAD_BYTES, KeyValueBackend, KeyValueBucket,
    KeyValueError, KvFuture, LIST_PAGE, MAX_BATCH_KEYS, MAX_KEY_BYTES, UnderDeadline,
    call_deadline, check_quota, entry_size, incremented,
};
pub use memory::MemoryBackend;

/// The name of a component's own bucket. `open("")` opens it too.
pub const DEFAULT_BUCKET: &str = "default";

/// The longest bucket name.
pub const MAX_BUCKET_NAME_LEN: usize = 64;

/// The largest `max_bytes` a grant may give one bucket: 64 GiB.
pub const MAX_BUCKET_BYTES: u64 = 64 << 30;

/// The `wasi:keyvalue` package, whose interfaces (`store`, `atomics`, `batch`) every
/// component may import: what a bucket holds is what the grant decides.
pub const WASI_KEYVALUE: &str = "wasi:keyvalue";

/// The key-value store a component is granted: the buckets it may open, and the most
/// bytes (keys plus values) a bucket may hold when it writes.
///
/// ```
/// use airssys_wasm_core::keyvalue::{BucketRef, KeyValueGrant};
///
/// let grant = KeyValueGrant::new(["default", "shared-cache"], 1 << 20)?;
/// assert_eq!(grant.bucket(""), Some(BucketRef::Default));
/// assert_eq!(grant.bucket("default"), Some(BucketRef::Default));
/// assert_eq!(grant.bucket("shared-cache"), Some(BucketRef::Shared("shared-cache")));
/// assert_eq!(grant.bucket("other"), None);
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyValueGrant {
    /// The bucket names granted, `"default"` for the component's own.
    pub buckets: Vec<String>,
    /// The most bytes (keys plus values) one bucket may hold: a write that would take
    /// it past this is refused.
    pub max_bytes: u64,
}

/// Which bucket an `open` reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BucketRef<'a> {
    /// The component's own bucket.
    Default,
    /// A bucket shared by name.
    Shared(&'a str),
}

/// `keyvalue buckets default,shared-cache (max 1 MiB each)`.
impl std::fmt::Display for KeyValueGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "keyvalue buckets {} (max {} each)",
            self.buckets.join(","),
            crate::error::fmt_bytes(self.max_bytes)
        )
    }
}

impl KeyValueGrant {
    /// A grant of `buckets` (`""` is taken as `"default"`) with `max_bytes` per bucket.
    ///
    /// # Errors
    ///
    /// A message naming the bucket or the size when a name is not valid
    /// ([`check_bucket_name`]), a bucket is named twice, or `max_bytes` is out of range
    /// ([`check_max_bytes`]).
    pub fn new<I, S>(buckets: I, max_bytes: u64) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        check_max_bytes(max_bytes)?;
        let mut names: Vec<String> = Vec::new();
        for b in buckets {
            let name = normalize(b.as_ref());
            check_bucket_name(name)?;
            if names.iter().any(|n| n == name) {
                return Err(format!("bucket `{name}` is granted twice"));
            }
            names.push(name.to_owned());
        }
        Ok(Self {
            buckets: names,
            max_bytes,
        })
    }

    /// The bucket `identifier` (as a guest passes it to `open`) reaches, if granted.
    pub fn bucket<'a>(&self, identifier: &'a str) -> Option<BucketRef<'a>> {
        let name = normalize(identifier);
        if !self.buckets.iter().any(|b| b == name) {
            return None;
        }
        Some(if name == DEFAULT_BUCKET {
            BucketRef::Default
        } else {
            BucketRef::Shared(name)
        })
    }
}

/// `""` names the default bucket.
fn normalize(identifier: &str) -> &str {
    if identifier.is_empty() {
        DEFAULT_BUCKET
    } else {
        identifier
    }
}

/// Checks a bucket name: 1 to [`MAX_BUCKET_NAME_LEN`] characters, lowercase ASCII
/// letters, digits, `-`, `_` and `.`, starting with a letter or digit (names become
/// file names and Redis keys, so they stay plain).
///
/// # Errors
///
/// A message saying what is wrong with the name.
pub fn check_bucket_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
    if !first_ok || !rest_ok || name.len() > MAX_BUCKET_NAME_LEN {
        return Err(format!(
            "`{name}` is not a bucket name: use 1 to {MAX_BUCKET_NAME_LEN} lowercase letters, \
             digits, `-`, `_` or `.`, starting with a letter or digit (\"default\" is the \
             component's own bucket)"
        ));
    }
    Ok(())
}

/// Checks a bucket's byte quota: at least 1 byte, at most [`MAX_BUCKET_BYTES`].
///
/// # Errors
///
/// A message with the accepted range.
pub fn check_max_bytes(max_bytes: u64) -> Result<(), String> {
    if max_bytes == 0 || max_bytes > MAX_BUCKET_BYTES {
        return Err(format!(
            "a bucket's max_bytes must be between 1 byte and 64GiB, not {max_bytes} bytes"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_default_are_the_same_bucket() {
        let g = KeyValueGrant::new([""], 10).unwrap();
        assert_eq!(g.buckets, ["default"]);
        assert_eq!(g.bucket("default"), Some(BucketRef::Default));
        assert!(KeyValueGrant::new(["", "default"], 10).is_err());
    }

    #[test]
    fn names_and_sizes_are_checked() {
        for bad in ["Upper", "-x", "a/b", "..", "a b", &"x".repeat(65)] {
            assert!(check_bucket_name(bad).is_err(), "{bad}");
        }
        for good in ["default", "shared-cache", "v1.cache_2", "0"] {
            assert!(check_bucket_name(good).is_ok(), "{good}");
        }
        assert!(check_max_bytes(0).is_err());
        assert!(check_max_bytes(MAX_BUCKET_BYTES + 1).is_err());
        assert!(check_max_bytes(1).is_ok());
    }

    #[test]
    fn only_granted_buckets_open() {
        let g = KeyValueGrant::new(["cache"], 10).unwrap();
        assert_eq!(g.bucket(""), None);
        assert_eq!(g.bucket("cache"), Some(BucketRef::Shared("cache")));
        assert_eq!(g.bucket("cachex"), None);
    }
}
