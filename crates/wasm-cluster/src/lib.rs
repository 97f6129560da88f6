//! # airssys-wasm-cluster
//!
//! Actors of [`airssys_wasm_actor`] across processes and machines, on NATS: an actor's
//! address does not say where it lives. Each host joins a cluster with
//! [`NatsCluster::join`]; from then on a message to a name the host does not hold goes
//! over NATS to a host that does (the same actor on several hosts forms a queue group:
//! each message goes to one of them), requests keep their timeouts, publications reach
//! subscribers on every host, and local messages stay local. Hosts say every heartbeat
//! that they are alive and which names they serve; a host that stops saying so is gone.
//!
//! **Guarantees**: plain NATS delivers at most once — a message in flight when a host
//! dies is lost (its sender's request times out). A mailbox marked durable
//! ([`ClusterConfig::durable`]) takes its tells through a JetStream stream: stored
//! before `send` returns, acknowledged only once handled, handed to another host when
//! one dies with it — at least once, with an id to deduplicate by
//! (`MessageEnvelope::message_id`). See `docs/actors.md`, "More than one machine".
//!
//! ```no_run
//! use airssys_wasm_actor::{ActorAddress, ActorSystem, MessageEnvelope};
//! use airssys_wasm_cluster::{ClusterConfig, NatsCluster};
//! use std::time::Duration;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let system = ActorSystem::default();
//! // … system.start(SupervisorSpec …) with this host's actors …
//! let cluster = NatsCluster::join(ClusterConfig::new("nats://127.0.0.1:4222"), &system).await?;
//! // `billing` lives on another host:
//! cluster.wait_for("billing", Duration::from_secs(5)).await;
//! let to = ActorAddress::named("billing")?;
//! let reply = system.request(&to, MessageEnvelope::text("total"), Duration::from_secs(1)).await?;
//! println!("{:?}", reply.payload_text());
//! cluster.leave().await;
//! system.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod batch;
mod cluster;
mod config;
mod directory;
mod durable;
mod error;
mod shared;
mod singleton;
mod subjects;
mod wire;

pub use cluster::NatsCluster;
pub use config::{ClusterConfig, Credentials};
pub use error::ClusterError;

/// The `tracing` target of the cluster's log lines.
pub const TARGET: &str = "airssys_wasm::cluster";
