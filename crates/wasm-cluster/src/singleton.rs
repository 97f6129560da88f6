//! Singletons: an actor that runs on exactly one host of the cluster at a time and
//! moves to another when that host dies. Which host holds it is a key in a JetStream
//! key-value bucket (`AIRSSYS_CLUSTER_singletons`) whose entries expire after the host
//! timeout: a host takes a singleton by creating its key (JetStream refuses a second
//! creation — no consensus of our own), keeps it by updating the key at its revision
//! every heartbeat, starts the actor in its system while it holds it, stops it when an
//! update fails (another host has it), and gives it up on leaving (stopped, then the
//! key deleted, so another host takes it at once). A host that dies stops updating: its
//! key expires within the host timeout and another host's next creation succeeds.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::jetstream::kv::Store;
use async_nats::jetstream::stream::{self, DiscardPolicy, StorageType};

use airssys_wasm_actor::ChildSpec;

use crate::error::ClusterError;
use crate::shared::Shared;

/// The cluster's bucket of singleton holders (made if it is not there).
pub(crate) async fn bucket(
    jetstream: &async_nats::jetstream::Context,
    cluster: &str,
    ttl: Duration,
) -> Result<Store, ClusterError> {
    let name = format!("AIRSSYS_{cluster}_singletons");
    let refused = |e: String| ClusterError::JetStream {
        what: format!("the key-value bucket `{name}`"),
        reason: e,
    };
    // The bucket's stream as async-nats's `create_key_value` makes it — made here
    // because that asks for the account's information first, whose answer from a 2.9
    // server (Debian's) async-nats 0.52 cannot read.
    jetstream
        .get_or_create_stream(stream::Config {
            name: format!("KV_{name}"),
            subjects: vec![format!("$KV.{name}.>")],
            max_messages_per_subject: 1,
            max_age: ttl,
            storage: StorageType::File,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: DiscardPolicy::New,
            ..Default::default()
        })
        .await
        .map_err(|e| refused(e.to_string()))?;
    jetstream
        .get_key_value(name.clone())
        .await
        .map_err(|e| refused(e.to_string()))
}

/// Takes, keeps and gives up the singleton `spec` for this host, every heartbeat, until
/// the host leaves.
pub(crate) async fn hold(shared: Arc<Shared>, store: Store, spec: ChildSpec) {
    let name = spec.name().to_owned();
    let mut held: Option<u64> = None;
    loop {
        if shared.leaving.load(Ordering::Acquire) {
            break;
        }
        let Some(system) = shared.system.upgrade() else {
            break;
        };
        let me = bytes::Bytes::from(shared.host.clone());
        held = match held {
            Some(revision) => match store.update(&name, me, revision).await {
                Ok(revision) => Some(revision),
                Err(e) => {
                    tracing::warn!(target: crate::TARGET, singleton = %name, "no longer held here ({e}): stopping it");
                    system.stop_child(&name).await;
                    None
                }
            },
            None => match store.create(&name, me).await {
                Ok(revision) => match system.start_child(spec.clone()) {
                    Ok(()) => {
                        tracing::info!(target: crate::TARGET, singleton = %name, host = %shared.host, "the singleton runs here");
                        Some(revision)
                    }
                    Err(e) => {
                        tracing::error!(target: crate::TARGET, singleton = %name, "cannot start it here: {e}");
                        let _ = store.delete(&name).await;
                        None
                    }
                },
                // Another host holds it.
                Err(_) => None,
            },
        };
        drop(system);
        tokio::select! {
            () = tokio::time::sleep(shared.config.heartbeat) => {}
            () = shared.leave_now.notified() => {}
        }
    }
    if held.is_some() {
        if let Some(system) = shared.system.upgrade() {
            system.stop_child(&name).await;
        }
        let _ = store.delete(&name).await;
        tracing::info!(target: crate::TARGET, singleton = %name, "given up on leaving");
    }
}
