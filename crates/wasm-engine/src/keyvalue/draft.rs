//! `wasi:keyvalue@0.2.0-draft` (Wasmtime's `-S keyvalue`) on a [`HostState`]: the grant
//! decides what `open` reaches, the backend does the rest (see `host.rs`).

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker, Resource};

use super::host::{Answer, Bucket, Refused};
use super::{Counter, LIST_PAGE};
use crate::host::HostState;
use crate::host_interface::Registered;

mod bindings {
    #![allow(missing_docs)]
    wasmtime::component::bindgen!({
        path: "builtin-wit/keyvalue",
        world: "imports",
        imports: { default: async | trappable },
        with: { "wasi:keyvalue/store.bucket": crate::keyvalue::host::Bucket },
    });
}

use bindings::wasi::keyvalue::{atomics, batch, store};
use store::Error;

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

impl store::Host for HostState {
    async fn open(&mut self, identifier: String) -> Outcome<Resource<Bucket>> {
        mine(self.kv_open(identifier).await)
    }
}

impl store::HostBucket for HostState {
    async fn get(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<Option<Vec<u8>>> {
        let (b, _) = self.bucket(&bucket)?;
        let r = b.get(&key).await;
        mine(self.answer(&bucket, r))
    }

    async fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> Outcome<()> {
        let (b, max) = self.bucket(&bucket)?;
        let r = b.set(&key, &value, max).await;
        mine(self.answer(&bucket, r))
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<()> {
        let (b, _) = self.bucket(&bucket)?;
        let r = b.delete(&key).await;
        mine(self.answer(&bucket, r))
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<bool> {
        let (b, _) = self.bucket(&bucket)?;
        let r = b.exists(&key).await;
        mine(self.answer(&bucket, r))
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
        mine(self.answer(&bucket, r))
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
        let r = b
            .increment(&key, i128::from(delta), Counter::U64, max)
            .await
            // In range: the counter keeps it there.
            .map(|sum| u64::try_from(sum).unwrap_or(u64::MAX));
        mine(self.answer(&bucket, r))
    }
}

impl batch::Host for HostState {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Outcome<Vec<Option<(String, Vec<u8>)>>> {
        let r = self.kv_get_many(&bucket, keys).await;
        mine(r.map(|r| r.map(|all| all.into_iter().map(|(k, v)| v.map(|v| (k, v))).collect())))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Outcome<()> {
        let (b, max) = self.bucket(&bucket)?;
        let r = b.set_many(&key_values, max).await;
        mine(self.answer(&bucket, r))
    }

    async fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> Outcome<()> {
        let (b, _) = self.bucket(&bucket)?;
        let r = b.delete_many(&keys).await;
        mine(self.answer(&bucket, r))
    }
}
