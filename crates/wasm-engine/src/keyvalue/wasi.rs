//! `wasi:keyvalue@0.2.0-draft` on a [`HostState`]: the grant decides what `open`
//! reaches, the backend does the rest.

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker, Resource};

use airssys_wasm_core::keyvalue::BucketRef;

use super::{BucketId, KeyValueBucket, KeyValueError, LIST_PAGE};
use crate::host::{AUDIT_TARGET, HostState, audit_logs};
use crate::host_interface::Registered;

mod bindings {
    #![allow(missing_docs)]
    wasmtime::component::bindgen!({
        path: "builtin-wit/keyvalue",
        world: "imports",
        imports: { default: async | trappable },
        with: { "wasi:keyvalue/store.bucket": super::Bucket },
    });
}

use bindings::wasi::keyvalue::{atomics, batch, store};
use store::Error;

/// A bucket a guest opened (public only for the generated bindings; not reachable
/// from outside the crate).
pub struct Bucket {
    inner: Arc<dyn KeyValueBucket>,
    id: BucketId,
    max_bytes: u64,
}

/// The built-in registrations: linked for every component (no grant needed to
/// import them; the key-value grant decides what `open` reaches).
pub(crate) fn registrations() -> [Registered; 3] {
    [
        Registered::ungated(
            "wasi:keyvalue/store@0.2.0-draft",
            Arc::new(|linker: &mut Linker<HostState>| {
                store::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)
            }),
        ),
        Registered::ungated(
            "wasi:keyvalue/atomics@0.2.0-draft",
            Arc::new(|linker: &mut Linker<HostState>| {
                atomics::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)
            }),
        ),
        Registered::ungated(
            "wasi:keyvalue/batch@0.2.0-draft",
            Arc::new(|linker: &mut Linker<HostState>| {
                batch::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)
            }),
        ),
    ]
}

type Outcome<T> = wasmtime::Result<Result<T, Error>>;

/// The most of a guest-chosen name (a bucket) an audit record carries.
const LOGGED_NAME_BYTES: usize = 128;

/// `name` cut to [`LOGGED_NAME_BYTES`] at a character boundary, marked when cut.
fn cut(name: &str) -> std::borrow::Cow<'_, str> {
    if name.len() <= LOGGED_NAME_BYTES {
        return name.into();
    }
    let mut end = LOGGED_NAME_BYTES;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &name[..end], name.len()).into()
}

impl HostState {
    /// The bucket behind a guest's handle: its store, its id, its bound.
    fn bucket(
        &mut self,
        handle: &Resource<Bucket>,
    ) -> wasmtime::Result<(Arc<dyn KeyValueBucket>, u64)> {
        // Not one of the embedder's functions.
        self.host_call = None;
        let b = self.table_mut().get(handle)?;
        Ok((Arc::clone(&b.inner), b.max_bytes))
    }

    /// Maps a backend's answer to the guest's, counting and logging a quota refusal.
    fn answer<T>(&mut self, handle: &Resource<Bucket>, r: Result<T, KeyValueError>) -> Outcome<T> {
        Ok(r.map_err(|e| {
            if let KeyValueError::QuotaExceeded { .. } = &e {
                let bucket = self
                    .table_mut()
                    .get(handle)
                    .map(|b| b.id.to_string())
                    .unwrap_or_default();
                self.kv_denied("keyvalue.max_bytes", &bucket, &e.to_string());
            }
            Error::Other(e.to_string())
        }))
    }

    /// Counts and logs one refused key-value use (what the guest asked for cut to
    /// [`LOGGED_NAME_BYTES`]).
    #[cold]
    fn kv_denied(&mut self, capability: &str, requested: &str, why: &str) {
        self.store_denials += 1;
        if !audit_logs(self.component(), self.store_denials) {
            return;
        }
        let requested = cut(requested);
        tracing::warn!(
            target: AUDIT_TARGET,
            component = self.component(),
            capability,
            requested = &*requested,
            "denied: {why}"
        );
    }
}

impl store::Host for HostState {
    async fn open(&mut self, identifier: String) -> Outcome<Resource<Bucket>> {
        self.host_call = None;
        let granted = self
            .capabilities()
            .keyvalue
            .as_ref()
            .and_then(|g| g.bucket(&identifier).map(|b| (b, g.max_bytes)));
        let Some((bucket, max_bytes)) = granted else {
            let shown = cut(&identifier);
            let why = match &self.capabilities().keyvalue {
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
            return Ok(Err(Error::AccessDenied));
        };
        let id = match bucket {
            BucketRef::Default => BucketId::component_default(self.component()),
            BucketRef::Shared(name) => BucketId::shared(name),
        };
        let Some(backend) = self.keyvalue.clone() else {
            tracing::warn!(
                target: AUDIT_TARGET,
                component = self.component(),
                bucket = %id,
                "the component opened a granted bucket, but this host has no key-value store \
                 (Sandbox::with_keyvalue)"
            );
            return Ok(Err(Error::NoSuchStore));
        };
        match backend.open(&id).await {
            Ok(inner) => Ok(Ok(self.table_mut().push(Bucket {
                inner,
                id,
                max_bytes,
            })?)),
            Err(e) => Ok(Err(Error::Other(e.to_string()))),
        }
    }
}

impl store::HostBucket for HostState {
    async fn get(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<Option<Vec<u8>>> {
        let (b, _) = self.bucket(&bucket)?;
        let r = b.get(&key).await;
        self.answer(&bucket, r)
    }

    async fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> Outcome<()> {
        let (b, max) = self.bucket(&bucket)?;
        let r = b.set(&key, &value, max).await;
        self.answer(&bucket, r)
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<()> {
        let (b, _) = self.bucket(&bucket)?;
        let r = b.delete(&key).await;
        self.answer(&bucket, r)
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<bool> {
        let (b, _) = self.bucket(&bucket)?;
        let r = b.exists(&key).await;
        self.answer(&bucket, r)
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> Outcome<store::KeyResponse> {
        let (b, _) = self.bucket(&bucket)?;
        let r = b
            .list_keys(cursor.unwrap_or(0), LIST_PAGE)
            .await
            .map(|(keys, cursor)| store::KeyResponse { keys, cursor });
        self.answer(&bucket, r)
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table_mut().delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for HostState {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: u64,
    ) -> Outcome<u64> {
        let (b, max) = self.bucket(&bucket)?;
        let r = b.increment(&key, delta, max).await;
        self.answer(&bucket, r)
    }
}

impl batch::Host for HostState {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Outcome<Vec<Option<(String, Vec<u8>)>>> {
        let (b, _) = self.bucket(&bucket)?;
        // Each distinct key read once: what the store returns is bounded by what it
        // holds. Repeats are copies made here, so the answer is bounded before they
        // are: no more than fits the instance's memory (which must hold it).
        let mut distinct = keys.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let values = match b.get_many(&distinct).await {
            Ok(v) => v,
            Err(e) => return self.answer(&bucket, Err(e)),
        };
        let size = |k: &String| {
            distinct
                .binary_search(k)
                .ok()
                .and_then(|i| values.get(i)?.as_ref())
                .map_or(0, |v| (k.len() + v.len()) as u64)
        };
        let total: u64 = keys.iter().map(size).sum();
        let bound = self.limits().memory_bytes();
        if total > bound {
            return Ok(Err(Error::Other(format!(
                "get-many would return {total} bytes, more than the instance's memory \
                 limit of {bound}; ask for fewer keys at once"
            ))));
        }
        Ok(Ok(keys
            .into_iter()
            .map(|k| {
                let v = distinct
                    .binary_search(&k)
                    .ok()
                    .and_then(|i| values.get(i)?.clone());
                v.map(|v| (k, v))
            })
            .collect()))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Outcome<()> {
        let (b, max) = self.bucket(&bucket)?;
        let r = b.set_many(&key_values, max).await;
        self.answer(&bucket, r)
    }

    async fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> Outcome<()> {
        let (b, _) = self.bucket(&bucket)?;
        let r = b.delete_many(&keys).await;
        self.answer(&bucket, r)
    }
}
