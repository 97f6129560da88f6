//! `wasi:keyvalue@0.2.0-draft` (Wasmtime's `-S keyvalue`) on a [`KeyValueView`]: the grant
//! decides what `open` reaches, the backend does the rest (see `host.rs`).

use wasmtime::component::Resource;

use super::host::{Answer, Bucket, KeyValueView, Refused, alike_in_both_versions};
use super::{Counter, LIST_PAGE};

mod bindings {
    #![allow(missing_docs)]
    wasmtime::component::bindgen!({
        path: "builtin-wit/keyvalue",
        world: "imports",
        imports: { default: async | trappable },
        with: { "wasi:keyvalue/store.bucket": crate::capabilities::keyvalue::host::Bucket },
    });
}

use bindings::wasi::keyvalue::{atomics, batch, store};
use store::Error;

alike_in_both_versions! {
    version: "0.2.0-draft",
    bucket: {
        async fn list_keys(
            &mut self,
            bucket: Resource<Bucket>,
            cursor: Option<u64>,
        ) -> Outcome<store::KeyResponse> {
            let (b, _) = self.bucket(&bucket)?;
            let r = self
                .under(b.list_keys(cursor.unwrap_or(0), LIST_PAGE))
                .await
                .map(|(keys, cursor)| store::KeyResponse { keys, cursor });
            mine(self.answer(&bucket, r))
        }
    },
    batch: {
        async fn get_many(
            &mut self,
            bucket: Resource<Bucket>,
            keys: Vec<String>,
        ) -> Outcome<Vec<Option<(String, Vec<u8>)>>> {
            let r = self.kv_get_many(&bucket, keys).await;
            mine(r.map(|r| r.map(|all| all.into_iter().map(|(k, v)| v.map(|v| (k, v))).collect())))
        }
    },
}

impl atomics::Host for KeyValueView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: u64,
    ) -> Outcome<u64> {
        let (b, max) = bucket_or_refuse!(self, &bucket, &[key.as_str()]);
        let r = self
            .under(b.increment(&key, i128::from(delta), Counter::U64, max))
            .await
            // In range: the counter keeps it there.
            .map(|sum| u64::try_from(sum).unwrap_or(u64::MAX));
        mine(self.answer(&bucket, r))
    }
}
