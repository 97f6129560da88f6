//! The key-value backend contract: where buckets live ([`KeyValueBackend`]), what a
//! bucket does ([`KeyValueBucket`]), its errors, and the bounds every backend shares —
//! Wasmtime-free, so that a backend depends on this crate only. The engine's
//! `wasi:keyvalue` runs guests' operations over it (`airssys_wasm_engine::keyvalue`,
//! which re-exports all of this); `airssys-wasm-keyvalue` has the SQLite and Redis
//! backends, [`MemoryBackend`](super::MemoryBackend) is here.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The future a backend operation returns.
pub type KvFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, KeyValueError>> + Send + 'a>>;

/// The most keys one `list-keys` call returns; the guest pages on with the cursor.
pub const LIST_PAGE: u32 = 1_000;

/// The longest key accepted, in bytes; a longer one is refused with `error::other`
/// before any store is asked.
pub const MAX_KEY_BYTES: usize = 4_096;

/// The most keys one batch call (`get-many`, `set-many`, `delete-many`) takes; a
/// larger batch is refused with `error::other`, nothing done, before any store is
/// asked: each store operation stays short (milliseconds), so that the call's deadline
/// is checked again soon and no call holds a bucket, a thread or a shared server long.
pub const MAX_BATCH_KEYS: usize = 1_000;

/// What an entry costs against `max_bytes` beyond its key and value: a store's own
/// bookkeeping per entry, so that empty entries are not free.
pub const ENTRY_OVERHEAD_BYTES: u64 = 64;

/// What an entry with `key` and a value of `value_len` bytes counts against
/// `max_bytes`: key, value and [`ENTRY_OVERHEAD_BYTES`].
pub fn entry_size(key: &str, value_len: u64) -> u64 {
    (key.len() as u64)
        .saturating_add(value_len)
        .saturating_add(ENTRY_OVERHEAD_BYTES)
}

thread_local! {
    static DEADLINE: std::cell::Cell<Option<std::time::Instant>> = const { std::cell::Cell::new(None) };
}

/// The deadline of the call whose key-value operation is being polled on this thread,
/// if any: a backend whose work runs synchronously inside a poll (SQLite's statements)
/// checks it as it goes and stops there, with [`KeyValueError::DeadlinePassed`] — the
/// call's timeout cannot interrupt a poll from outside. Asynchronous waits need not
/// look: the call's timeout drops their future.
pub fn call_deadline() -> Option<std::time::Instant> {
    DEADLINE.with(std::cell::Cell::get)
}

pin_project_lite::pin_project! {
    /// A backend operation, polled with its call's deadline in [`call_deadline`]: how
    /// the host runs every operation a guest asks for (and how a backend's own tests
    /// can give one a deadline).
    pub struct UnderDeadline<F> {
        #[pin]
        op: F,
        deadline: std::time::Instant,
    }
}

impl<F> UnderDeadline<F> {
    /// `op`, to be polled with `deadline` as its [`call_deadline`].
    pub fn new(op: F, deadline: std::time::Instant) -> Self {
        Self { op, deadline }
    }
}

impl<F: Future> Future for UnderDeadline<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<F::Output> {
        let this = self.project();
        let before = DEADLINE.with(|d| d.replace(Some(*this.deadline)));
        let out = this.op.poll(cx);
        DEADLINE.with(|d| d.set(before));
        out
    }
}

/// Where buckets live: opens (creating when needed) the bucket a component was
/// granted.
pub trait KeyValueBackend: Send + Sync + 'static {
    /// The bucket `id`, created empty if it does not exist.
    ///
    /// # Errors
    ///
    /// [`KeyValueError::Backend`] when the store cannot be reached or read.
    fn open<'a>(&'a self, id: &'a BucketId) -> KvFuture<'a, Arc<dyn KeyValueBucket>>;
}

impl std::fmt::Debug for dyn KeyValueBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyValueBackend")
    }
}

/// One bucket: keys (text) to values (bytes). Each operation is atomic; the writes
/// take `max_bytes`, the most the bucket may hold (each entry's [`entry_size`]) after
/// them, and
/// refuse with [`KeyValueError::QuotaExceeded`], writing nothing, a write that would
/// take it past that (a write that shrinks it is always allowed).
pub trait KeyValueBucket: Send + Sync + 'static {
    /// The value of `key`, if any.
    fn get<'a>(&'a self, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>>;
    /// Sets `key` to `value`.
    fn set<'a>(&'a self, key: &'a str, value: &'a [u8], max_bytes: u64) -> KvFuture<'a, ()>;
    /// Removes `key` (nothing when absent).
    fn delete<'a>(&'a self, key: &'a str) -> KvFuture<'a, ()>;
    /// Whether `key` has a value.
    fn exists<'a>(&'a self, key: &'a str) -> KvFuture<'a, bool>;
    /// Up to `limit` keys from position `cursor` (0 for the first page) in the
    /// backend's order, and the cursor of the next page (`None` after the last).
    fn list_keys(&self, cursor: u64, limit: u32) -> KvFuture<'_, (Vec<String>, Option<u64>)>;
    /// Adds `delta` to the number `key` holds as decimal text (absent is 0) and returns
    /// the sum, which must stay in `counter`'s range ([`incremented`] gives the rule).
    fn increment<'a>(
        &'a self,
        key: &'a str,
        delta: i128,
        counter: Counter,
        max_bytes: u64,
    ) -> KvFuture<'a, i128>;
    /// Sets `key` to `value` only if it still holds `expected` (`None`: absent), in
    /// one atomic step: `true` when it did, `false` (nothing written) when the value
    /// had changed.
    fn compare_and_swap<'a>(
        &'a self,
        key: &'a str,
        expected: Option<&'a [u8]>,
        value: &'a [u8],
        max_bytes: u64,
    ) -> KvFuture<'a, bool>;
    /// The values of `keys`, in order.
    fn get_many<'a>(&'a self, keys: &'a [String]) -> KvFuture<'a, Vec<Option<Vec<u8>>>>;
    /// Sets every pair: all or none, or (a backend that must keep each step short, as
    /// Redis does) in parts, each all or none — what `wasi:keyvalue/batch` allows.
    fn set_many<'a>(&'a self, pairs: &'a [(String, Vec<u8>)], max_bytes: u64) -> KvFuture<'a, ()>;
    /// Removes every key: all or none, or in parts as [`set_many`](Self::set_many).
    fn delete_many<'a>(&'a self, keys: &'a [String]) -> KvFuture<'a, ()>;
    /// The bytes the bucket holds: the [`entry_size`] of each entry.
    fn used_bytes(&self) -> KvFuture<'_, u64>;
}

/// The range a counter's value keeps: `wasi:keyvalue@0.2.0-draft` counts in `u64`,
/// `@0.2.0-draft2` (Spin's) in `s64`. Both store decimal text, so one key can be
/// incremented through either while it fits both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// 0 to `u64::MAX`.
    U64,
    /// `i64::MIN` to `i64::MAX`.
    I64,
}

impl Counter {
    fn range(self) -> (i128, i128) {
        match self {
            Self::U64 => (0, i128::from(u64::MAX)),
            Self::I64 => (i128::from(i64::MIN), i128::from(i64::MAX)),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::U64 => "u64",
            Self::I64 => "s64",
        }
    }
}

/// Which bucket: a component's own default bucket, or one shared by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BucketId {
    owner: Option<Arc<str>>,
    name: Arc<str>,
}

impl BucketId {
    /// The default bucket of `component`.
    pub fn component_default(component: &str) -> Self {
        Self {
            owner: Some(component.into()),
            name: super::DEFAULT_BUCKET.into(),
        }
    }

    /// The shared bucket `name`.
    pub fn shared(name: &str) -> Self {
        Self {
            owner: None,
            name: name.into(),
        }
    }

    /// The bucket's name as granted: `default` for a component's own.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The component whose default bucket this is; `None` for a shared bucket.
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    /// A name for storage that no other bucket has, made of `[a-z0-9._-]` only (a file
    /// name, a Redis key): `component.<name>` or `shared.<name>`, with a component
    /// name outside that alphabet written in hex (`component-hex.<hex>`).
    pub fn storage_name(&self) -> String {
        match &self.owner {
            None => format!("shared.{}", self.name),
            Some(c) if plain(c) => format!("component.{c}"),
            Some(c) => {
                let hex: String = c.bytes().map(|b| format!("{b:02x}")).collect();
                format!("component-hex.{hex}")
            }
        }
    }
}

fn plain(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

impl std::fmt::Display for BucketId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.owner {
            Some(c) => write!(f, "`default` (of component `{c}`)"),
            None => write!(f, "`{}`", self.name),
        }
    }
}

/// Why a key-value operation failed. The guest gets it as `error::other` with this
/// text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyValueError {
    /// The write would take the bucket past its `max_bytes`; nothing was written.
    #[error(
        "quota exceeded: bucket {bucket} holds {used} bytes and would hold {would_hold} after \
         this write, over its max_bytes of {max_bytes} (raise max_bytes under \
         [capabilities.keyvalue], or delete keys)"
    )]
    QuotaExceeded {
        /// The bucket.
        bucket: String,
        /// Bytes held before the write.
        used: u64,
        /// Bytes it would have held after it.
        would_hold: u64,
        /// The bound.
        max_bytes: u64,
    },
    /// `increment` on a value that is not a decimal number in the counter's range, or a
    /// sum outside it.
    #[error("cannot increment `{key}` in bucket {bucket}: {reason}")]
    NotANumber {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// What is wrong with its value.
        reason: String,
    },
    /// The call's deadline passed while the store was working for it
    /// ([`call_deadline`]); the operation was stopped and did nothing.
    #[error("the call's deadline passed during this key-value operation; it did nothing")]
    DeadlinePassed,
    /// The store failed or could not be reached.
    #[error("key-value store {store}: {message}")]
    Backend {
        /// Which store (a path, a URL).
        store: String,
        /// What went wrong, and the fix where there is one.
        message: String,
    },
}

/// Applies a write's change in size to a bucket holding `used` bytes: the new total, or
/// [`KeyValueError::QuotaExceeded`] when it grows past `max_bytes`.
///
/// # Errors
///
/// [`KeyValueError::QuotaExceeded`], naming `bucket`.
pub fn check_quota(
    bucket: &dyn std::fmt::Display,
    used: u64,
    removed: u64,
    added: u64,
    max_bytes: u64,
) -> Result<u64, KeyValueError> {
    let would_hold = used.saturating_sub(removed).saturating_add(added);
    if would_hold > max_bytes && would_hold > used {
        return Err(KeyValueError::QuotaExceeded {
            bucket: bucket.to_string(),
            used,
            would_hold,
            max_bytes,
        });
    }
    Ok(would_hold)
}

/// The sum `increment` stores, from the current value (absent is 0): the value must be
/// decimal text in `counter`'s range, and so must the sum.
///
/// # Errors
///
/// [`KeyValueError::NotANumber`] when the value is not such text, or the sum leaves the
/// range.
pub fn incremented(
    bucket: &dyn std::fmt::Display,
    key: &str,
    current: Option<&[u8]>,
    delta: i128,
    counter: Counter,
) -> Result<i128, KeyValueError> {
    let not = |reason: String| KeyValueError::NotANumber {
        bucket: bucket.to_string(),
        key: key.to_owned(),
        reason,
    };
    let (low, high) = counter.range();
    let value = match current {
        None => 0,
        Some(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.parse::<i128>().ok())
            .filter(|v| (low..=high).contains(v))
            .ok_or_else(|| {
                not(format!(
                    "its value ({} bytes) is not a decimal {} number",
                    bytes.len(),
                    counter.name()
                ))
            })?,
    };
    value
        .checked_add(delta)
        .filter(|v| (low..=high).contains(v))
        .ok_or_else(|| {
            not(format!(
                "{value} + {delta} leaves the {} range",
                counter.name()
            ))
        })
}

/// Routes buckets to backends by name: those named here to theirs (`default` is every
/// component's default bucket), the rest to the fallback. An operator's runtime
/// configuration is one of these.
///
/// ```
/// use std::sync::Arc;
/// use airssys_wasm_core::keyvalue::{BucketRouter, MemoryBackend};
///
/// let local = Arc::new(MemoryBackend::default());
/// let shared = Arc::new(MemoryBackend::default());
/// let router = BucketRouter::new(local).route("shared-cache", shared);
/// assert_eq!(router.routes().collect::<Vec<_>>(), ["shared-cache"]);
/// ```
#[derive(Debug, Clone)]
pub struct BucketRouter {
    fallback: Arc<dyn KeyValueBackend>,
    routes: BTreeMap<String, Arc<dyn KeyValueBackend>>,
}

impl BucketRouter {
    /// Every bucket to `fallback`.
    pub fn new(fallback: Arc<dyn KeyValueBackend>) -> Self {
        Self {
            fallback,
            routes: BTreeMap::new(),
        }
    }

    /// Buckets named `name` to `backend`.
    #[must_use]
    pub fn route(mut self, name: impl Into<String>, backend: Arc<dyn KeyValueBackend>) -> Self {
        self.routes.insert(name.into(), backend);
        self
    }

    /// The bucket names routed away from the fallback.
    pub fn routes(&self) -> impl Iterator<Item = &str> {
        self.routes.keys().map(String::as_str)
    }
}

impl KeyValueBackend for BucketRouter {
    fn open<'a>(&'a self, id: &'a BucketId) -> KvFuture<'a, Arc<dyn KeyValueBucket>> {
        self.routes
            .get(id.name())
            .unwrap_or(&self.fallback)
            .open(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_names_are_plain_and_distinct() {
        assert_eq!(
            BucketId::component_default("hello").storage_name(),
            "component.hello"
        );
        assert_eq!(BucketId::shared("cache").storage_name(), "shared.cache");
        assert_eq!(
            BucketId::component_default("Ab/").storage_name(),
            "component-hex.41622f"
        );
        assert_ne!(
            BucketId::component_default("x").storage_name(),
            BucketId::shared("x").storage_name()
        );
    }

    #[test]
    fn quota_refuses_growth_past_the_bound_only() {
        let b = BucketId::shared("b");
        assert_eq!(check_quota(&b, 10, 0, 5, 15).unwrap(), 15);
        assert!(matches!(
            check_quota(&b, 10, 0, 6, 15),
            Err(KeyValueError::QuotaExceeded { would_hold: 16, .. })
        ));
        // Already over (a shared bucket, a larger grant elsewhere): shrinking is fine.
        assert_eq!(check_quota(&b, 20, 5, 1, 15).unwrap(), 16);
    }

    #[test]
    fn increments_parse_decimal_text_in_the_counters_range() {
        let b = BucketId::shared("b");
        let (u, i) = (Counter::U64, Counter::I64);
        assert_eq!(incremented(&b, "k", None, 3, u).unwrap(), 3);
        assert_eq!(incremented(&b, "k", Some(b"41"), 1, u).unwrap(), 42);
        assert!(incremented(&b, "k", Some(b"x"), 1, u).is_err());
        assert!(incremented(&b, "k", Some(b"18446744073709551615"), 1, u).is_err());
        assert!(incremented(&b, "k", Some(b"0"), -1, u).is_err());
        assert_eq!(incremented(&b, "k", Some(b"0"), -1, i).unwrap(), -1);
        assert!(incremented(&b, "k", Some(b"-1"), 1, u).is_err());
        assert!(incremented(&b, "k", Some(b"9223372036854775807"), 1, i).is_err());
        assert_eq!(
            incremented(&b, "k", Some(b"9223372036854775807"), 1, u).unwrap(),
            9_223_372_036_854_775_808
        );
    }
}
