//! What both versions of `wasi:keyvalue` do alike on a [`KeyValueView`]: `open` against
//! the grant, a bucket behind a handle, a backend's answer (a quota refusal counted and
//! audited), `get-many` bounded. Each version maps [`Refused`] to its own error type.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{HasData, Resource, ResourceTable};

use airssys_wasm_core::KeyValueGrant;
use airssys_wasm_core::keyvalue::BucketRef;

use super::{
    BucketId, KeyValueBackend, KeyValueBucket, KeyValueError, MAX_BATCH_KEYS, MAX_KEY_BYTES,
};
use crate::capabilities::audit::{AUDIT_TARGET, Trail};
use crate::runtime::host_memory::HostMemory;

/// What `wasi:keyvalue` sees of an instance: its grant, the backend, its resource
/// table, where refusals are kept, its host-memory budget, and the current call's
/// start and timeout (a backend's wait counts against it).
pub(crate) struct KeyValueView<'a> {
    pub(crate) grant: Option<&'a KeyValueGrant>,
    pub(crate) backend: Option<&'a Arc<dyn KeyValueBackend>>,
    pub(crate) component: &'a str,
    pub(crate) table: &'a mut ResourceTable,
    pub(crate) audit: &'a mut Trail,
    pub(crate) host_memory: &'a mut HostMemory,
    pub(crate) started: &'a mut Option<Instant>,
    pub(crate) timeout: Duration,
    /// The instance's memory limit, which bounds what `get-many` returns.
    pub(crate) memory_bytes: u64,
}

/// The [`HasData`] of [`KeyValueView`].
pub(super) struct HasKeyValue;

impl HasData for HasKeyValue {
    type Data<'a> = KeyValueView<'a>;
}

/// How one interface is linked, through the store's view of it.
pub(crate) type AddToLinker<T> =
    fn(&mut wasmtime::component::Linker<T>, fn(&mut T) -> KeyValueView<'_>) -> wasmtime::Result<()>;

/// A bucket a guest opened (public only for the generated bindings; not reachable
/// from outside the crate).
pub struct Bucket {
    pub(super) inner: Arc<dyn KeyValueBucket>,
    pub(super) id: BucketId,
    pub(super) max_bytes: u64,
}

/// Why an operation failed, before a version's error type.
pub(super) enum Refused {
    NoSuchStore,
    AccessDenied,
    Other(String),
}

/// What a host function returns: a trap (outer) or the guest's answer.
pub(super) type Answer<T> = wasmtime::Result<Result<T, Refused>>;

impl KeyValueView<'_> {
    /// `open(identifier)`: the bucket the grant gives that name, if any.
    pub(super) async fn kv_open(&mut self, identifier: String) -> Answer<Resource<Bucket>> {
        let granted = self
            .grant
            .and_then(|g| g.bucket(&identifier).map(|b| (b, g.max_bytes)));
        let Some((bucket, max_bytes)) = granted else {
            let shown = crate::capabilities::audit::cut(&identifier, 128);
            let why = match self.grant {
                None => format!(
                    "bucket `{shown}`: the component has no key-value grant (add \
                     [capabilities.keyvalue] with buckets = [\"{}\"] and max_bytes)",
                    if identifier.is_empty() {
                        "default"
                    } else {
                        &shown
                    }
                ),
                Some(g) => format!(
                    "bucket `{shown}` is not granted (granted: {}; add it to \
                     [capabilities.keyvalue] buckets)",
                    g.buckets.join(", ")
                ),
            };
            self.kv_denied("keyvalue.open", &identifier, &why);
            return Ok(Err(Refused::AccessDenied));
        };
        let id = match bucket {
            BucketRef::Default => BucketId::component_default(self.component),
            BucketRef::Shared(name) => BucketId::shared(name),
        };
        let Some(backend) = self.backend.cloned() else {
            tracing::warn!(
                target: AUDIT_TARGET,
                component = self.component,
                bucket = %id,
                "the component opened a granted bucket, but this host has no key-value store \
                 (Sandbox::with_keyvalue)"
            );
            return Ok(Err(Refused::NoSuchStore));
        };
        match self.under(backend.open(&id)).await {
            Ok(inner) => Ok(Ok(self.table.push(Bucket {
                inner,
                id,
                max_bytes,
            })?)),
            Err(e) => self.answer_for(Some(&id), Err(e)),
        }
    }

    /// The bucket behind a guest's handle: its store and its bound.
    pub(super) fn bucket(
        &mut self,
        handle: &Resource<Bucket>,
    ) -> wasmtime::Result<(Arc<dyn KeyValueBucket>, u64)> {
        let b = self.table.get(handle)?;
        Ok((Arc::clone(&b.inner), b.max_bytes))
    }

    /// The bucket behind a guest's handle, after checking the keys an operation names
    /// against [`MAX_KEY_BYTES`] and their number against [`MAX_BATCH_KEYS`]: a
    /// refusal the guest gets, nothing asked of the store.
    pub(super) fn bucket_for(
        &mut self,
        handle: &Resource<Bucket>,
        keys: &[&str],
    ) -> Answer<(Arc<dyn KeyValueBucket>, u64)> {
        let b = self.bucket(handle)?;
        Ok(check_keys(keys.len(), keys.iter().copied()).map(|()| b))
    }

    /// `op` under the current call's deadline: a backend that works synchronously
    /// (SQLite) reads it with [`call_deadline`](super::call_deadline) and stops there.
    /// An instance granted key-value reads the clock when each call begins
    /// (`HostState::clock_calls`), so `started` is set; were it not, now is taken as the
    /// call's start, and the call's own timer still ends the call at its timeout.
    pub(super) fn under<F: std::future::Future>(&mut self, op: F) -> super::UnderDeadline<F> {
        let began = *self.started.get_or_insert_with(std::time::Instant::now);
        super::UnderDeadline::new(op, began + self.timeout)
    }

    /// Maps a backend's answer to the guest's, counting and logging a quota refusal.
    pub(super) fn answer<T>(
        &mut self,
        handle: &Resource<Bucket>,
        r: Result<T, KeyValueError>,
    ) -> Answer<T> {
        match r {
            Ok(v) => Ok(Ok(v)),
            Err(e) => {
                let id = self.table.get(handle).map(|b| b.id.clone()).ok();
                self.answer_for(id.as_ref(), Err(e))
            }
        }
    }

    /// As [`answer`](Self::answer), for bucket `id`.
    pub(super) fn answer_for<T>(
        &mut self,
        id: Option<&BucketId>,
        r: Result<T, KeyValueError>,
    ) -> Answer<T> {
        if matches!(r, Err(KeyValueError::DeadlinePassed)) {
            // The call's timeout came while the store worked for it: the call ends as a
            // timeout, as it would in the guest's own code — not as an error the guest
            // could carry on from past its time.
            return Err(wasmtime::Error::new(crate::runtime::timed_out::TimedOut));
        }
        Ok(r.map_err(|e| match &e {
            KeyValueError::QuotaExceeded { .. } => {
                let bucket = id.map(ToString::to_string).unwrap_or_default();
                self.kv_denied("keyvalue.max_bytes", &bucket, &e.to_string());
                Refused::Other(e.to_string())
            }
            // The store's own failure: its words may carry the operator's URL, a path
            // or a server's message, none of them the guest's business. The guest gets
            // an id that the host's log line carries too.
            KeyValueError::Backend { .. } => {
                let incident = backend_incident(self.component, id, &e);
                Refused::Other(format!(
                    "the key-value store is unavailable (incident {incident}; the host's log \
                     has the details)"
                ))
            }
            _ => Refused::Other(e.to_string()),
        }))
    }

    /// `get-many`: each key with its value, in order. Each distinct key is read once,
    /// so what the store returns is bounded by what it holds; repeats are copies made
    /// here, so the answer is bounded before they are: no more than fits the instance's
    /// memory (which must hold it).
    pub(super) async fn kv_get_many(
        &mut self,
        handle: &Resource<Bucket>,
        keys: Vec<String>,
    ) -> Answer<Vec<(String, Option<Vec<u8>>)>> {
        let (b, _) = self.bucket(handle)?;
        if let Err(r) = check_keys(keys.len(), keys.iter().map(String::as_str)) {
            return Ok(Err(r));
        }
        let mut distinct = keys.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let values = match self.under(b.get_many(&distinct)).await {
            Ok(v) => v,
            Err(e) => return self.answer(handle, Err(e)),
        };
        let value = |k: &String| {
            distinct
                .binary_search(k)
                .ok()
                .and_then(|i| values.get(i)?.as_ref())
        };
        let total: u64 = keys
            .iter()
            .map(|k| value(k).map_or(0, |v| (k.len() + v.len()) as u64))
            .sum();
        let bound = self.memory_bytes;
        if total > bound {
            return Ok(Err(Refused::Other(format!(
                "get-many would return {total} bytes, more than the instance's memory limit \
                 of {bound}; ask for fewer keys at once"
            ))));
        }
        Ok(Ok(keys
            .into_iter()
            .map(|k| {
                let v = value(&k).cloned();
                (k, v)
            })
            .collect()))
    }

    /// Counts, keeps and logs one refused key-value use.
    #[cold]
    fn kv_denied(&mut self, capability: &'static str, requested: &str, why: &str) {
        self.audit
            .deny(self.component, capability, requested, why.to_owned());
    }
}

/// Refuses a batch of more than [`MAX_BATCH_KEYS`] keys, or a key longer than
/// [`MAX_KEY_BYTES`].
pub(super) fn check_keys<'k>(
    count: usize,
    mut keys: impl Iterator<Item = &'k str>,
) -> Result<(), Refused> {
    if count > MAX_BATCH_KEYS {
        return Err(Refused::Other(format!(
            "a batch of {count} keys is more than this host takes at once ({MAX_BATCH_KEYS}); \
             nothing was done: send it in batches of at most {MAX_BATCH_KEYS}"
        )));
    }
    match keys.find(|k| k.len() > MAX_KEY_BYTES) {
        Some(k) => Err(Refused::Other(format!(
            "a key of {} bytes is longer than this host takes ({MAX_KEY_BYTES}); nothing was \
             done",
            k.len()
        ))),
        None => Ok(()),
    }
}

/// Logs a store's failure, its URLs redacted and its text escaped, under a new incident
/// id, and returns the id (`kv-<n>`, counted per process) the guest is told.
#[cold]
fn backend_incident(component: &str, id: Option<&BucketId>, e: &KeyValueError) -> String {
    static INCIDENTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let incident = format!(
        "kv-{}",
        INCIDENTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let text = e.to_string();
    let text = airssys_wasm_core::text::redact_urls_in(&text);
    tracing::warn!(
        component,
        bucket = %id.map(ToString::to_string).unwrap_or_default(),
        incident = %incident,
        "key-value store failed: {}",
        airssys_wasm_core::text::escape(&text, 2_048)
    );
    incident
}

/// What the two versions' bindings implement alike, written once: `draft.rs` and
/// `draft2.rs` each invoke it with their version and the functions that differ (in the
/// bucket resource and in `batch`), with their own generated `store`, `atomics`, `batch`
/// and `Error` in scope.
macro_rules! alike_in_both_versions {
    (
        version: $version:literal,
        bucket: { $($bucket_fns:tt)* },
        batch: { $($batch_fns:tt)* } $(,)?
    ) => {
        /// This version's interfaces, by name, each with how it is linked (for every
        /// component: no grant is needed to import them; the key-value grant decides
        /// what `open` reaches).
        pub(crate) fn interfaces<T: Send + 'static>(
        ) -> [(&'static str, super::host::AddToLinker<T>); 3] {
            use super::host::HasKeyValue;
            [
                (concat!("wasi:keyvalue/store@", $version), |linker, getter| {
                    store::add_to_linker::<T, HasKeyValue>(linker, getter)
                }),
                (concat!("wasi:keyvalue/atomics@", $version), |linker, getter| {
                    atomics::add_to_linker::<T, HasKeyValue>(linker, getter)
                }),
                (concat!("wasi:keyvalue/batch@", $version), |linker, getter| {
                    batch::add_to_linker::<T, HasKeyValue>(linker, getter)
                }),
            ]
        }

        type Outcome<T> = wasmtime::Result<Result<T, Error>>;

        /// The bucket and its bound, or the guest's refusal (a key too long, a batch
        /// too large) returned from the enclosing function.
        macro_rules! bucket_or_refuse {
            ($self:ident, $bucket:expr, $keys:expr) => {
                match $self.bucket_for($bucket, $keys)? {
                    Ok(b) => b,
                    Err(r) => return Ok(Err(Error::from(r))),
                }
            };
        }

        impl From<Refused> for Error {
            fn from(r: Refused) -> Self {
                match r {
                    Refused::NoSuchStore => Self::NoSuchStore,
                    Refused::AccessDenied => Self::AccessDenied,
                    Refused::Other(m) => Self::Other(m),
                }
            }
        }

        /// This version's answer.
        fn mine<T>(a: Answer<T>) -> Outcome<T> {
            a.map(|r| r.map_err(Error::from))
        }

        impl store::Host for KeyValueView<'_> {
            async fn open(&mut self, identifier: String) -> Outcome<Resource<Bucket>> {
                mine(self.kv_open(identifier).await)
            }
        }

        impl store::HostBucket for KeyValueView<'_> {
            async fn get(
                &mut self,
                bucket: Resource<Bucket>,
                key: String,
            ) -> Outcome<Option<Vec<u8>>> {
                let (b, _) = bucket_or_refuse!(self, &bucket, &[key.as_str()]);
                let r = self.under(b.get(&key)).await;
                mine(self.answer(&bucket, r))
            }

            async fn set(
                &mut self,
                bucket: Resource<Bucket>,
                key: String,
                value: Vec<u8>,
            ) -> Outcome<()> {
                let (b, max) = bucket_or_refuse!(self, &bucket, &[key.as_str()]);
                let r = self.under(b.set(&key, &value, max)).await;
                mine(self.answer(&bucket, r))
            }

            async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<()> {
                let (b, _) = bucket_or_refuse!(self, &bucket, &[key.as_str()]);
                let r = self.under(b.delete(&key)).await;
                mine(self.answer(&bucket, r))
            }

            async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<bool> {
                let (b, _) = bucket_or_refuse!(self, &bucket, &[key.as_str()]);
                let r = self.under(b.exists(&key)).await;
                mine(self.answer(&bucket, r))
            }

            async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
                self.table.delete(bucket)?;
                Ok(())
            }

            $($bucket_fns)*
        }

        impl batch::Host for KeyValueView<'_> {
            async fn set_many(
                &mut self,
                bucket: Resource<Bucket>,
                key_values: Vec<(String, Vec<u8>)>,
            ) -> Outcome<()> {
                let keys: Vec<&str> = key_values.iter().map(|(k, _)| k.as_str()).collect();
                let (b, max) = bucket_or_refuse!(self, &bucket, &keys);
                let r = self.under(b.set_many(&key_values, max)).await;
                mine(self.answer(&bucket, r))
            }

            async fn delete_many(
                &mut self,
                bucket: Resource<Bucket>,
                keys: Vec<String>,
            ) -> Outcome<()> {
                let names: Vec<&str> = keys.iter().map(String::as_str).collect();
                let (b, _) = bucket_or_refuse!(self, &bucket, &names);
                let r = self.under(b.delete_many(&keys)).await;
                mine(self.answer(&bucket, r))
            }

            $($batch_fns)*
        }
    };
}

pub(super) use alike_in_both_versions;
