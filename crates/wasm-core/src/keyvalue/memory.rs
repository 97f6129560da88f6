//! [`MemoryBackend`]: buckets in the host's memory, shared by every instance of the
//! backend's users and gone with it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{
    BucketId, Counter, KeyValueBackend, KeyValueBucket, KeyValueError, KvFuture, check_quota,
    incremented,
};

/// Buckets in memory: every `open` of a bucket reaches the same data (unlike
/// Wasmtime's in-memory store, which copies it per `open`), for as long as the
/// backend lives. Each bucket has its own lock.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), airssys_wasm_core::keyvalue::KeyValueError> {
/// use airssys_wasm_core::keyvalue::{BucketId, KeyValueBackend, MemoryBackend};
///
/// let backend = MemoryBackend::default();
/// let bucket = backend.open(&BucketId::component_default("hello")).await?;
/// bucket.set("greeting", b"hi", 1024).await?;
/// let again = backend.open(&BucketId::component_default("hello")).await?;
/// assert_eq!(again.get("greeting").await?, Some(b"hi".to_vec()));
/// // Key, value and the 64 bytes each entry costs.
/// assert_eq!(again.used_bytes().await?, 8 + 2 + 64);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Default)]
pub struct MemoryBackend {
    buckets: Mutex<HashMap<BucketId, Arc<MemoryBucket>>>,
}

impl KeyValueBackend for MemoryBackend {
    fn open<'a>(&'a self, id: &'a BucketId) -> KvFuture<'a, Arc<dyn KeyValueBucket>> {
        let bucket = Arc::clone(lock(&self.buckets).entry(id.clone()).or_insert_with(|| {
            Arc::new(MemoryBucket {
                id: id.clone(),
                data: Mutex::default(),
            })
        }));
        Box::pin(async move { Ok(bucket as Arc<dyn KeyValueBucket>) })
    }
}

#[derive(Debug, Default)]
struct Data {
    entries: BTreeMap<String, Vec<u8>>,
    used: u64,
}

#[derive(Debug)]
struct MemoryBucket {
    id: BucketId,
    data: Mutex<Data>,
}

/// A poisoned lock only means a panic elsewhere while holding it; every update here
/// is complete before the data is touched, so the data is whole.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn size(key: &str, value: &[u8]) -> u64 {
    super::entry_size(key, value.len() as u64)
}

impl MemoryBucket {
    fn ready<T: Send + 'static>(r: Result<T, KeyValueError>) -> KvFuture<'static, T> {
        Box::pin(std::future::ready(r))
    }

    /// Sets the pairs, all or none.
    fn set_all(&self, pairs: &[(&str, &[u8])], max_bytes: u64) -> Result<(), KeyValueError> {
        let mut d = lock(&self.data);
        // Check the batch as a whole: duplicates replace earlier ones.
        let mut staged: BTreeMap<&str, &[u8]> = BTreeMap::new();
        for (k, v) in pairs {
            staged.insert(k, v);
        }
        let removed: u64 = staged
            .keys()
            .filter_map(|k| d.entries.get(*k).map(|v| size(k, v)))
            .sum();
        let added: u64 = staged.iter().map(|(k, v)| size(k, v)).sum();
        d.used = check_quota(&self.id, d.used, removed, added, max_bytes)?;
        for (k, v) in staged {
            d.entries.insert(k.to_owned(), v.to_vec());
        }
        Ok(())
    }

    fn delete_all<'k>(&self, keys: impl Iterator<Item = &'k str>) {
        let mut d = lock(&self.data);
        for k in keys {
            if let Some(v) = d.entries.remove(k) {
                d.used = d.used.saturating_sub(size(k, &v));
            }
        }
    }
}

impl KeyValueBucket for MemoryBucket {
    fn get<'a>(&'a self, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>> {
        Self::ready(Ok(lock(&self.data).entries.get(key).cloned()))
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8], max_bytes: u64) -> KvFuture<'a, ()> {
        Self::ready(self.set_all(&[(key, value)], max_bytes))
    }

    fn delete<'a>(&'a self, key: &'a str) -> KvFuture<'a, ()> {
        self.delete_all(std::iter::once(key));
        Self::ready(Ok(()))
    }

    fn exists<'a>(&'a self, key: &'a str) -> KvFuture<'a, bool> {
        Self::ready(Ok(lock(&self.data).entries.contains_key(key)))
    }

    fn list_keys(&self, cursor: u64, limit: u32) -> KvFuture<'_, (Vec<String>, Option<u64>)> {
        let d = lock(&self.data);
        let skip = usize::try_from(cursor).unwrap_or(usize::MAX);
        let keys: Vec<String> = d
            .entries
            .keys()
            .skip(skip)
            .take(limit as usize)
            .cloned()
            .collect();
        let next = cursor + keys.len() as u64;
        let more = (next as usize) < d.entries.len();
        Self::ready(Ok((keys, more.then_some(next))))
    }

    fn increment<'a>(
        &'a self,
        key: &'a str,
        delta: i128,
        counter: Counter,
        max_bytes: u64,
    ) -> KvFuture<'a, i128> {
        let r = (|| {
            let mut d = lock(&self.data);
            let old = d.entries.get(key);
            let sum = incremented(&self.id, key, old.map(Vec::as_slice), delta, counter)?;
            let removed = old.map_or(0, |v| size(key, v));
            let text = sum.to_string().into_bytes();
            d.used = check_quota(&self.id, d.used, removed, size(key, &text), max_bytes)?;
            d.entries.insert(key.to_owned(), text);
            Ok(sum)
        })();
        Self::ready(r)
    }

    fn compare_and_swap<'a>(
        &'a self,
        key: &'a str,
        expected: Option<&'a [u8]>,
        value: &'a [u8],
        max_bytes: u64,
    ) -> KvFuture<'a, bool> {
        let r = (|| {
            let mut d = lock(&self.data);
            let old = d.entries.get(key);
            if old.map(Vec::as_slice) != expected {
                return Ok(false);
            }
            let removed = old.map_or(0, |v| size(key, v));
            d.used = check_quota(&self.id, d.used, removed, size(key, value), max_bytes)?;
            d.entries.insert(key.to_owned(), value.to_vec());
            Ok(true)
        })();
        Self::ready(r)
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> KvFuture<'a, Vec<Option<Vec<u8>>>> {
        let d = lock(&self.data);
        Self::ready(Ok(keys.iter().map(|k| d.entries.get(k).cloned()).collect()))
    }

    fn set_many<'a>(&'a self, pairs: &'a [(String, Vec<u8>)], max_bytes: u64) -> KvFuture<'a, ()> {
        let pairs: Vec<(&str, &[u8])> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        Self::ready(self.set_all(&pairs, max_bytes))
    }

    fn delete_many<'a>(&'a self, keys: &'a [String]) -> KvFuture<'a, ()> {
        self.delete_all(keys.iter().map(String::as_str));
        Self::ready(Ok(()))
    }

    fn used_bytes(&self) -> KvFuture<'_, u64> {
        Self::ready(Ok(lock(&self.data).used))
    }
}
