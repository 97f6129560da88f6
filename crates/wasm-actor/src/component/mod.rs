//! Component actors: a [`ComponentActor`] is a compiled component with its sandbox
//! (limits and WASI grants), its [`ActorGrants`] and its mailbox; each start and
//! restart instantiates it afresh (fresh memory, no recompilation: the engine keeps it
//! pre-instantiated) and calls its `airssys:actor/handler` exports. The host side of
//! `airssys:actor/messaging` is `host.rs`; the WIT is `wit/actor.wit`.

pub(crate) mod host;

use std::sync::Arc;

use airssys_wasm_core::InterfaceGrant;
use airssys_wasm_engine::{
    CompiledComponent, ComponentInstance, Sandbox, TypedExport, WasmEngineBuilder,
};

use crate::actor::{ActorContext, BoxFuture, ErrorAction, Factory, Instance};
use crate::error::ActorSystemError;
use crate::exit::{Failure, FailureKind};
use crate::mailbox::MailboxConfig;
use crate::message::{MessageEnvelope, MessageKind, MessagePriority, Reply};
use airssys_wasm_core::actor::ActorGrants;
use host::ActorHost;

wasmtime::component::bindgen!({
    world: "actor",
    path: "wit",
    imports: { default: async | trappable },
});

use airssys::actor::types as wit;

/// The interface an actor imports to message others.
pub const MESSAGING_INTERFACE: &str = "airssys:actor/messaging@0.1.0";
/// The interface of the types both sides share.
pub const TYPES_INTERFACE: &str = "airssys:actor/types@0.1.0";
/// The interface an actor exports.
pub const HANDLER_INTERFACE: &str = "airssys:actor/handler@0.1.0";

const HANDLE: &str = "airssys:actor/handler@0.1.0#handle";
const INIT: &str = "airssys:actor/handler@0.1.0#init";
const STOP: &str = "airssys:actor/handler@0.1.0#stop";

/// Registers the host side of `airssys:actor` on an engine: every engine that runs
/// component actors needs it.
pub fn register(builder: WasmEngineBuilder) -> WasmEngineBuilder {
    builder
        .host_interface(TYPES_INTERFACE, |linker, getter| {
            airssys::actor::types::add_to_linker::<_, airssys_wasm_engine::HasHostCtx<ActorHost>>(
                linker, getter,
            )
        })
        .host_interface(MESSAGING_INTERFACE, |linker, getter| {
            airssys::actor::messaging::add_to_linker::<
                _,
                airssys_wasm_engine::HasHostCtx<ActorHost>,
            >(linker, getter)
        })
}

/// A component that runs as an actor.
#[derive(Clone)]
pub struct ComponentActor {
    component: CompiledComponent,
    sandbox: Arc<Sandbox>,
    grants: Arc<ActorGrants>,
    mailbox: MailboxConfig,
}

impl std::fmt::Debug for ComponentActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentActor")
            .field("component", &self.component.name())
            .field("grants", &self.grants)
            .finish_non_exhaustive()
    }
}

impl ComponentActor {
    /// `component` as an actor under `sandbox` (its limits and WASI grants; the
    /// `airssys:actor` interfaces are added) with `grants`.
    ///
    /// # Errors
    ///
    /// [`ActorSystemError::NotAnActor`] when the component does not export
    /// `airssys:actor/handler@0.1.0` (`init`, `handle`, `stop`).
    pub fn new(
        component: CompiledComponent,
        sandbox: Sandbox,
        grants: ActorGrants,
    ) -> Result<Self, ActorSystemError> {
        let exports = component.exports();
        let missing: Vec<&str> = [INIT, HANDLE, STOP]
            .into_iter()
            .filter(|want| !exports.iter().any(|e| e.name == *want))
            .collect();
        if !missing.is_empty() {
            return Err(ActorSystemError::NotAnActor {
                component: component.name().to_owned(),
                reason: format!(
                    "it does not export {}; an actor exports `{HANDLER_INTERFACE}` (world \
                     `airssys:actor/actor`, see docs/actors.md)",
                    missing.join(", ")
                ),
            });
        }
        let mut caps = sandbox.capabilities().clone();
        for name in [MESSAGING_INTERFACE, TYPES_INTERFACE] {
            if let Ok(grant) = InterfaceGrant::parse(name) {
                caps.interfaces
                    .push(grant.with_origin("an actor's own interface"));
            }
        }
        Ok(Self {
            component,
            sandbox: Arc::new(sandbox.with_capabilities(caps)),
            grants: Arc::new(grants),
            mailbox: MailboxConfig::default(),
        })
    }

    /// With this mailbox.
    #[must_use]
    pub fn with_mailbox(mut self, mailbox: MailboxConfig) -> Self {
        self.mailbox = mailbox;
        self
    }

    /// Its mailbox.
    pub fn mailbox(&self) -> MailboxConfig {
        self.mailbox
    }

    /// The component.
    pub fn component(&self) -> &CompiledComponent {
        &self.component
    }

    /// Makes an instance per start.
    pub(crate) fn factory(&self) -> Factory {
        let me = self.clone();
        Arc::new(move |ctx: &ActorContext| {
            let me = me.clone();
            let host = ActorHost {
                ctx: ctx.clone(),
                grants: me.grants.clone(),
            };
            Box::pin(async move {
                let start = |e: &airssys_wasm_core::WasmError| {
                    let mut f = Failure::from_wasm(e);
                    if matches!(f.kind, FailureKind::Other) {
                        f.kind = FailureKind::StartFailed;
                    }
                    f
                };
                let mut instance = me
                    .component
                    .instantiate_with(&me.sandbox, host)
                    .await
                    .map_err(|e| start(&e))?;
                let handle = instance.typed_export(HANDLE).map_err(|e| start(&e))?;
                let init = instance.typed_export(INIT).map_err(|e| start(&e))?;
                let stop = instance.typed_export(STOP).map_err(|e| start(&e))?;
                Ok(Instance::Component(Box::new(ComponentBehaviour {
                    instance,
                    handle,
                    init,
                    stop,
                })))
            }) as BoxFuture<'static, _>
        })
    }
}

type HandleParams = (wit::Envelope, Vec<u8>);
type HandleResults = (Result<Option<wit::Reply>, String>,);

/// A live instance of a component actor.
pub(crate) struct ComponentBehaviour {
    instance: ComponentInstance,
    handle: TypedExport<HandleParams, HandleResults>,
    init: TypedExport<(), (Result<(), String>,)>,
    stop: TypedExport<(), ()>,
}

impl ComponentBehaviour {
    pub(crate) async fn start(&mut self) -> Result<(), Failure> {
        match self.instance.call_export(&self.init, ()).await {
            Ok(((Ok(()),), _)) => Ok(()),
            Ok(((Err(why),), _)) => Err(Failure::new(
                FailureKind::StartFailed,
                format!("init returned an error: {}", crate::address::cut(&why)),
            )),
            Err(e) => Err(Failure::from_wasm(&e)),
        }
    }

    pub(crate) async fn handle(
        &mut self,
        env: &MessageEnvelope,
    ) -> Result<Option<Reply>, (Failure, ErrorAction)> {
        let params = (to_wit(env), env.payload.to_vec());
        match self.instance.call_export(&self.handle, params).await {
            Ok(((Ok(reply),), _)) => Ok(reply.map(|r| Reply::new(r.content_type, r.payload))),
            Ok(((Err(why),), _)) => Err((
                Failure::new(
                    FailureKind::HandlerError,
                    format!("handle returned an error: {}", crate::address::cut(&why)),
                ),
                ErrorAction::Restart,
            )),
            Err(e) => Err((Failure::from_wasm(&e), ErrorAction::Restart)),
        }
    }

    pub(crate) async fn stop(&mut self) {
        if let Err(e) = self.instance.call_export(&self.stop, ()).await {
            tracing::warn!(
                target: crate::ACTOR_TARGET,
                component = self.instance.component().name(),
                "the stop hook failed: {e}"
            );
        }
    }
}

fn to_wit(env: &MessageEnvelope) -> wit::Envelope {
    wit::Envelope {
        kind: match env.kind {
            MessageKind::Tell => wit::MessageKind::Tell,
            MessageKind::Request => wit::MessageKind::Request,
            MessageKind::Reply => wit::MessageKind::Reply,
            MessageKind::RequestFailed => wit::MessageKind::RequestFailed,
        },
        sender: env.sender.as_ref().map(ToString::to_string),
        // A tell from a durable mailbox carries its store id here (docs/actors.md).
        correlation_id: env.correlation_id.or(env.message_id),
        priority: match env.priority {
            MessagePriority::Low => wit::Priority::Low,
            MessagePriority::Normal => wit::Priority::Normal,
            MessagePriority::High => wit::Priority::High,
            MessagePriority::Critical => wit::Priority::Critical,
        },
        content_type: env.content_type.to_string(),
        topic: env.topic.as_ref().map(ToString::to_string),
        sent_at_ms: env
            .timestamp
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    }
}
