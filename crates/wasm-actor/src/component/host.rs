//! The host side of `airssys:actor/messaging`: each call checked against the actor's
//! [`ActorGrants`] (a refusal is the interface's `denied` and goes to the audit trail),
//! bounded by the system's [`SystemLimits`](crate::SystemLimits) (payload size, pending
//! requests, request timeout, subscriptions), and never waiting longer than the guest's
//! call may (a blocking mailbox's wait is inside the call's deadline).

use std::sync::Arc;
use std::time::Duration;

use airssys_wasm_engine::HostCtx;

use super::airssys::actor::messaging::Host;
use super::airssys::actor::types::{self as wit, Host as TypesHost};
use crate::actor::ActorContext;
use crate::address::{ActorAddress, cut};
use crate::error::SendError;
use crate::message::{MessageEnvelope, MessagePriority};
use airssys_wasm_core::actor::ActorGrants;

/// A component actor's state in the host.
pub(crate) struct ActorHost {
    pub(crate) ctx: ActorContext,
    pub(crate) grants: Arc<ActorGrants>,
}

type Answer<T> = wasmtime::Result<Result<T, wit::SendError>>;

impl TypesHost for HostCtx<'_, ActorHost> {}

impl Host for HostCtx<'_, ActorHost> {
    async fn self_address(&mut self) -> wasmtime::Result<String> {
        Ok(self.state().ctx.address().to_string())
    }

    async fn send(
        &mut self,
        to: String,
        content_type: String,
        payload: Vec<u8>,
        priority: wit::Priority,
    ) -> Answer<()> {
        let to = match target(self, &to) {
            Ok(to) => to,
            Err(e) => return Ok(Err(e)),
        };
        let env = MessageEnvelope::new(content_type, payload)
            .with_priority(priority_of(priority))
            .with_sender(self.state().ctx.address().clone());
        let system = self.state().ctx.system.clone();
        Ok(system.send(&to, env).await.map_err(to_wit))
    }

    async fn request(
        &mut self,
        to: String,
        content_type: String,
        payload: Vec<u8>,
        timeout_ms: u32,
    ) -> Answer<u64> {
        let to = match target(self, &to) {
            Ok(to) => to,
            Err(e) => return Ok(Err(e)),
        };
        let env = MessageEnvelope::new(content_type, payload);
        let ctx = &self.state().ctx;
        Ok(ctx
            .system
            .request_from(
                &ctx.cell,
                &to,
                env,
                Duration::from_millis(u64::from(timeout_ms)),
            )
            .map_err(to_wit))
    }

    async fn publish(
        &mut self,
        topic: String,
        content_type: String,
        payload: Vec<u8>,
    ) -> Answer<u32> {
        if !ActorGrants::check(&self.state().grants.publish, &topic) {
            return Ok(Err(refuse(self, "actor.publish", &topic)));
        }
        let ctx = &self.state().ctx;
        let env = MessageEnvelope::new(content_type, payload).with_sender(ctx.address().clone());
        Ok(ctx.system.publish(&topic, env).map_err(to_wit))
    }

    async fn subscribe(&mut self, topic: String) -> Answer<()> {
        if !ActorGrants::check(&self.state().grants.subscribe, &topic) {
            return Ok(Err(refuse(self, "actor.subscribe", &topic)));
        }
        let ctx = &self.state().ctx;
        Ok(ctx.system.subscribe(&ctx.cell, &topic).map_err(to_wit))
    }

    async fn unsubscribe(&mut self, topic: String) -> wasmtime::Result<()> {
        let ctx = &self.state().ctx;
        ctx.system.unsubscribe(&ctx.cell, &topic);
        Ok(())
    }

    async fn spawn(&mut self, component: String) -> Answer<String> {
        if !ActorGrants::check(&self.state().grants.spawn, &component) {
            return Ok(Err(refuse(self, "actor.spawn", &component)));
        }
        let ctx = &self.state().ctx;
        Ok(ctx
            .system
            .spawn_component(&ctx.supervisor, &component)
            .map(|a| a.to_string())
            .map_err(to_wit))
    }
}

/// The address `to`, if it parses and the actor may message it.
fn target(host: &mut HostCtx<'_, ActorHost>, to: &str) -> Result<ActorAddress, wit::SendError> {
    let address = ActorAddress::parse(to)
        .map_err(|e| wit::SendError::Invalid(format!("bad address: {e}")))?;
    if !ActorGrants::check(&host.state().grants.send, to) {
        return Err(refuse(host, "actor.send", to));
    }
    Ok(address)
}

/// The refusal of an ungranted call, audited.
#[cold]
fn refuse(host: &mut HostCtx<'_, ActorHost>, grant: &'static str, what: &str) -> wit::SendError {
    let key = grant.trim_start_matches("actor.");
    let reason = format!(
        "`{}` is not granted: add a matching pattern to `{key}` in the component's [actor] \
         grants",
        cut(what)
    );
    host.deny(grant, what, reason.clone());
    wit::SendError::Denied(reason)
}

fn priority_of(p: wit::Priority) -> MessagePriority {
    match p {
        wit::Priority::Low => MessagePriority::Low,
        wit::Priority::Normal => MessagePriority::Normal,
        wit::Priority::High => MessagePriority::High,
        wit::Priority::Critical => MessagePriority::Critical,
    }
}

fn to_wit(e: SendError) -> wit::SendError {
    match e {
        SendError::Denied(s) => wit::SendError::Denied(s),
        SendError::NotFound(s) => wit::SendError::NotFound(s),
        SendError::MailboxFull(s) => wit::SendError::MailboxFull(s),
        SendError::Closed(s) => wit::SendError::Closed(s),
        SendError::Invalid(s) => wit::SendError::Invalid(s),
        // The contract (0.1.0) has no case of its own for a host out of reach: it is
        // as good as closed, with the words saying why.
        e @ SendError::Unreachable { .. } => wit::SendError::Closed(e.to_string()),
    }
}
