//! `wasi:keyvalue@0.2.0-draft2` (Spin's) on a [`KeyValueView`]: the same buckets, grants
//! and stores as `@0.2.0-draft` (see `host.rs`), with this version's differences: a
//! `list-keys` cursor that is a string, `increment` on `s64`, and compare-and-swap (a
//! `cas` handle remembers the value it read; `swap` writes only if the key still holds
//! it, else fails with a fresh handle to retry with).

use std::sync::Arc;

use wasmtime::component::Resource;

use super::host::{Answer, Bucket, KeyValueView, Refused, alike_in_both_versions};
use super::{BucketId, Counter, KeyValueBucket, LIST_PAGE};

mod bindings {
    #![allow(missing_docs)]
    wasmtime::component::bindgen!({
        path: "builtin-wit/keyvalue-draft2",
        world: "imports",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": crate::capabilities::keyvalue::host::Bucket,
            "wasi:keyvalue/atomics.cas": super::Cas,
        },
    });
}

use bindings::wasi::keyvalue::{atomics, batch, store};
use store::Error;

/// A compare-and-swap handle: the key, and the value it held when read (public only
/// for the generated bindings). What it keeps is charged to the instance's host-memory
/// budget while it lives.
pub struct Cas {
    bucket: Arc<dyn KeyValueBucket>,
    id: BucketId,
    max_bytes: u64,
    key: String,
    read: Option<Vec<u8>>,
}

impl Cas {
    /// The host memory it keeps: its key, the value it read, and its own bookkeeping.
    fn charge(key: &str, read: Option<&[u8]>) -> u64 {
        (std::mem::size_of::<Self>() + key.len() + read.map_or(0, <[u8]>::len)) as u64
    }
}

alike_in_both_versions! {
    version: "0.2.0-draft2",
    bucket: {
        async fn list_keys(
            &mut self,
            bucket: Resource<Bucket>,
            cursor: Option<String>,
        ) -> Outcome<store::KeyResponse> {
            let (b, _) = self.bucket(&bucket)?;
            // The cursor is the host's own (a position, as text).
            let Ok(start) = cursor.as_deref().map_or(Ok(0), str::parse::<u64>) else {
                return Ok(Err(Error::Other(
                    "not a cursor this host gave: pass none, or the cursor of the previous page".into(),
                )));
            };
            let r = self
                .under(b.list_keys(start, LIST_PAGE))
                .await
                .map(|(keys, next)| store::KeyResponse {
                    keys,
                    cursor: next.map(|n| n.to_string()),
                });
            mine(self.answer(&bucket, r))
        }
    },
    batch: {
        async fn get_many(
            &mut self,
            bucket: Resource<Bucket>,
            keys: Vec<String>,
        ) -> Outcome<Vec<(String, Option<Vec<u8>>)>> {
            mine(self.kv_get_many(&bucket, keys).await)
        }
    },
}

impl KeyValueView<'_> {
    /// A compare-and-swap handle on `key`, holding what it holds now.
    async fn cas(
        &mut self,
        bucket: Arc<dyn KeyValueBucket>,
        id: BucketId,
        max_bytes: u64,
        key: String,
    ) -> Answer<Resource<Cas>> {
        match self.under(bucket.get(&key)).await {
            Ok(read) => {
                let charge = Cas::charge(&key, read.as_deref());
                if let Err(why) = self.host_memory.charge(charge, "a compare-and-swap handle") {
                    return Ok(Err(Refused::Other(why.to_string())));
                }
                match self.table.push(Cas {
                    bucket,
                    id,
                    max_bytes,
                    key,
                    read,
                }) {
                    Ok(handle) => Ok(Ok(handle)),
                    Err(e) => {
                        self.host_memory.release(charge);
                        Err(e.into())
                    }
                }
            }
            Err(e) => self.answer_for(Some(&id), Err(e)),
        }
    }
}

impl atomics::Host for KeyValueView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: i64,
    ) -> Outcome<i64> {
        let (b, max) = bucket_or_refuse!(self, &bucket, &[key.as_str()]);
        let r = self
            .under(b.increment(&key, i128::from(delta), Counter::I64, max))
            .await
            // In range: the counter keeps it there.
            .map(|sum| i64::try_from(sum).unwrap_or(i64::MAX));
        mine(self.answer(&bucket, r))
    }

    async fn swap(
        &mut self,
        cas: Resource<Cas>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let Cas {
            bucket,
            id,
            max_bytes,
            key,
            read,
        } = self.table.delete(cas)?;
        self.host_memory.release(Cas::charge(&key, read.as_deref()));
        let swapped = self
            .under(bucket.compare_and_swap(&key, read.as_deref(), &value, max_bytes))
            .await;
        match swapped {
            Ok(true) => Ok(Ok(())),
            // Changed since it was read: a fresh handle, holding the value now, to retry.
            Ok(false) => match self.cas(bucket, id, max_bytes, key).await? {
                Ok(fresh) => Ok(Err(atomics::CasError::CasFailed(fresh))),
                Err(e) => Ok(Err(atomics::CasError::StoreError(e.into()))),
            },
            Err(e) => match self.answer_for(Some(&id), Err::<(), _>(e))? {
                Ok(()) => Ok(Ok(())),
                Err(e) => Ok(Err(atomics::CasError::StoreError(e.into()))),
            },
        }
    }
}

impl atomics::HostCas for KeyValueView<'_> {
    async fn new(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<Resource<Cas>> {
        let (b, max) = bucket_or_refuse!(self, &bucket, &[key.as_str()]);
        let id = self.table.get(&bucket)?.id.clone();
        mine(self.cas(b, id, max, key).await)
    }

    async fn current(&mut self, cas: Resource<Cas>) -> Outcome<Option<Vec<u8>>> {
        Ok(Ok(self.table.get(&cas)?.read.clone()))
    }

    async fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        let cas = self.table.delete(cas)?;
        self.host_memory
            .release(Cas::charge(&cas.key, cas.read.as_deref()));
        Ok(())
    }
}
