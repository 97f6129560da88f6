//! Durable mailboxes on JetStream: a tell to a durable name is published to the
//! cluster's stream (`AIRSSYS_CLUSTER`, subjects `airssys.CLUSTER.durable.>`, work-queue
//! retention: a message is kept until acknowledged) and its sender's `send` returns
//! once the stream has stored it. Every host serving the name pulls from one durable
//! consumer (so they share the work) and acknowledges a message only once its actor has
//! handled it: a host that dies with messages in hand leaves them unacknowledged, and
//! JetStream hands them to another host after the ack wait — **at least once**. The
//! stream sequence is the message's id ([`MessageEnvelope::message_id`]; a component's
//! `correlation-id` of a tell), the same on a redelivery, for the handler to deduplicate.
//!
//! A message whose handler failed (the actor trapped on it) is not redelivered — as
//! within one process it is a dead letter on the host that tried; one that could not be
//! put in the mailbox (full, stopping) is handed out again shortly.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, Consumer, pull};
use async_nats::jetstream::message::AckKind;
use async_nats::jetstream::stream::{Config, RetentionPolicy, StorageType, Stream};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::watch;

use airssys_wasm_actor::{RequestError, SendError};

use crate::config::ClusterConfig;
use crate::error::ClusterError;
use crate::shared::{Shared, until_withdrawn};
use crate::subjects::{Subjects, consumer_name, stream_name};
use crate::wire;

/// Messages handed to this cluster's hosts and not yet acknowledged, per durable name
/// (JetStream stops handing out more until some are).
const MAX_ACK_PENDING: i64 = 1024;

/// How soon a message that could not be put in a mailbox is handed out again.
const RETRY: Duration = Duration::from_millis(200);

/// The cluster's stream of durable tells (made if it is not there).
pub(crate) async fn stream(
    jetstream: &async_nats::jetstream::Context,
    cluster: &str,
    subjects: &Subjects,
) -> Result<Stream, ClusterError> {
    let name = stream_name(cluster);
    jetstream
        .get_or_create_stream(Config {
            name: name.clone(),
            subjects: vec![subjects.durables()],
            retention: RetentionPolicy::WorkQueue,
            storage: StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(|e| ClusterError::JetStream {
            what: format!("the stream `{name}`"),
            reason: e.to_string(),
        })
}

/// The durable consumer of `name`'s mailbox, shared by every host serving it.
pub(crate) async fn consumer(
    stream: &Stream,
    subjects: &Subjects,
    name: &str,
    config: &ClusterConfig,
) -> Result<Consumer<pull::Config>, ClusterError> {
    let durable = consumer_name(name);
    stream
        .get_or_create_consumer(
            &durable,
            pull::Config {
                durable_name: Some(durable.clone()),
                filter_subject: subjects.durable(name),
                ack_policy: AckPolicy::Explicit,
                ack_wait: config.ack_wait,
                max_ack_pending: MAX_ACK_PENDING,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| ClusterError::JetStream {
            what: format!("the consumer `{durable}`"),
            reason: e.to_string(),
        })
}

/// Stores a tell to `to` in the stream; returns once JetStream acknowledged it.
pub(crate) async fn publish(shared: &Shared, to: &str, body: Bytes) -> Result<(), SendError> {
    let unreachable = |reason: String| SendError::Unreachable {
        to: to.to_owned(),
        reason: airssys_wasm_core::text::redact_urls_in(&reason).into_owned(),
    };
    let ack = shared
        .jetstream
        .publish(shared.subjects.durable(to), body)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    ack.await
        .map(|_| ())
        .map_err(|e| unreachable(format!("the durable mailbox did not store it: {e}")))
}

/// Takes `name`'s durable messages until it is withdrawn: each into the mailbox in the
/// order stored, acknowledged once handled.
pub(crate) async fn consume(
    shared: Arc<Shared>,
    name: String,
    consumer: Consumer<pull::Config>,
    mut withdrawn: watch::Receiver<bool>,
) {
    let mut messages = match consumer.messages().await {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(target: crate::TARGET, actor = %name, "cannot take the durable mailbox's messages: {e}");
            return;
        }
    };
    loop {
        let next = tokio::select! {
            next = messages.next() => next,
            () = until_withdrawn(&mut withdrawn) => break,
        };
        let Some(next) = next else { break };
        let msg = match next {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(target: crate::TARGET, actor = %name, "durable mailbox: {e}");
                continue;
            }
        };
        let Some(system) = shared.system.upgrade() else {
            break;
        };
        let id = msg.info().ok().map(|i| i.stream_sequence);
        let incoming = wire::incoming(msg.message.payload.clone());
        let mut incoming = match incoming {
            Ok(i) => i,
            Err(why) => {
                tracing::warn!(target: crate::TARGET, actor = %name, "a malformed durable message, dropped: {why}");
                let _ = msg.ack_with(AckKind::Term).await;
                continue;
            }
        };
        incoming.env.message_id = id;
        let limit = shared.config.ack_wait.max(Duration::from_secs(1));
        match system
            .deliver_local_tracked(&name, incoming.env, limit)
            .await
        {
            Ok(pending) => {
                tokio::spawn(async move {
                    let outcome = pending.reply().await;
                    settle(&msg, &outcome).await;
                });
            }
            Err(e) => settle(&msg, &Err(e)).await,
        }
    }
}

/// Acknowledges a handled message; a failed one is not handed out again (a dead letter,
/// as within one process); one not put in the mailbox is, shortly.
async fn settle(
    msg: &async_nats::jetstream::Message,
    outcome: &Result<airssys_wasm_actor::Reply, RequestError>,
) {
    let kind = match outcome {
        Ok(_) | Err(RequestError::NoReply { .. }) => AckKind::Ack,
        Err(RequestError::Failed { .. }) => AckKind::Term,
        // Still in the mailbox past the ack wait: JetStream hands it out again anyway.
        Err(RequestError::Timeout { .. }) => return,
        Err(_) => AckKind::Nak(Some(RETRY)),
    };
    if let Err(e) = msg.ack_with(kind).await {
        tracing::debug!(target: crate::TARGET, "a durable message's acknowledgement was not sent: {e}");
    }
}
