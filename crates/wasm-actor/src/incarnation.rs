//! One instance of an actor, from start to exit: made by its factory, started, fed its
//! mailbox one message at a time — an expired message and the message in hand when it
//! fails go to the dead letters, a request is always answered — until it is told to
//! stop, its mailbox closes and drains, or it fails. The exit goes to its supervisor.

use std::sync::Arc;

use tokio::task::AbortHandle;

use std::pin::pin;

use crate::actor::{ActorContext, ErrorAction, Factory, Instance};
use crate::cell::{CatchUnwind, StopSignal};
use crate::dead_letters::DeadLetterReason;
use crate::exit::{ExitReason, Failure, FailureKind};
use crate::mailbox::InHand;
use crate::message::RequestError;
use crate::supervisor::Reporter;

/// Makes an instance by its factory and starts it (`pre_start`, or the component's
/// `init`), on the caller's task — its supervisor's, which waits for the start anyway:
/// no hop to another task and back before the actor counts as started.
pub(crate) async fn start(ctx: &mut ActorContext, factory: &Factory) -> Result<Instance, Failure> {
    // The factory may run an embedder's constructor before its future: a panic there
    // is the start's failure too, not the supervisor's.
    let made = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| factory(ctx))) {
        Ok(making) => CatchUnwind(making).await,
        Err(panic) => Err(crate::cell::panic_message(&*panic)),
    };
    let mut instance = match made {
        Ok(Ok(i)) => i,
        Ok(Err(failure)) => return Err(failure),
        Err(panic) => return Err(Failure::new(FailureKind::Panicked, panic)),
    };
    let start = match &mut instance {
        Instance::Rust(b) => CatchUnwind(b.start(ctx)).await,
        Instance::Component(c) => CatchUnwind(pin!(c.start())).await,
    };
    let start = match start {
        Ok(r) => r,
        Err(panic) => Err(Failure::new(FailureKind::Panicked, panic)),
    };
    match start {
        Ok(()) => Ok(instance),
        Err(mut failure) => {
            failure.kind = match failure.kind {
                FailureKind::HandlerError | FailureKind::Other => FailureKind::StartFailed,
                kind => kind,
            };
            Err(failure)
        }
    }
}

/// Runs a started instance on its own task until it exits; the exit goes to its
/// supervisor through `reporter`.
pub(crate) fn spawn(
    ctx: ActorContext,
    instance: Instance,
    stop: Arc<StopSignal>,
    reporter: Reporter,
) -> AbortHandle {
    tokio::spawn(async move {
        let (reason, in_hand) = match CatchUnwind(Box::pin(run(ctx, instance, stop))).await {
            Ok(ended) => ended,
            Err(panic) => (
                ExitReason::Failed(Failure::new(FailureKind::Panicked, panic)),
                None,
            ),
        };
        // The message that failed stays in hand until the supervisor has dealt with
        // the failure (restarted the actor): until then the system is not idle.
        reporter.report(reason, in_hand);
    })
    .abort_handle()
}

async fn run(
    mut ctx: ActorContext,
    mut instance: Instance,
    stop: Arc<StopSignal>,
) -> (ExitReason, Option<InHand>) {
    let cell = ctx.cell.clone();
    let reason = loop {
        if stop.fired() {
            break ExitReason::Shutdown;
        }
        let mut env = match cell.mailbox.try_pop() {
            Ok(Some(env)) => env,
            Ok(None) => break ExitReason::Shutdown,
            Err(()) => tokio::select! {
                biased;
                () = stop.wait() => break ExitReason::Shutdown,
                next = cell.mailbox.pop() => match next {
                    Some(env) => env,
                    None => break ExitReason::Shutdown,
                },
            },
        };
        // In hand until this iteration ends — or the instance is stopped where it is.
        let in_hand = cell.mailbox.in_hand();
        if env.expired() {
            cell.dead_letter(env, DeadLetterReason::Expired);
            continue;
        }
        let reply_to = env.reply_to.take();
        let outcome = match &mut instance {
            Instance::Rust(b) => CatchUnwind(b.handle(&mut ctx, &env)).await,
            Instance::Component(c) => CatchUnwind(pin!(c.handle(&env))).await,
        };
        match outcome {
            Ok(Ok(reply)) => {
                // A reply to a tell has nowhere to go: dropped, as documented.
                if let Some(reply_to) = reply_to {
                    let to = reply_to.to().to_owned();
                    let max = ctx.system.limits().max_message_bytes;
                    let answer = match reply {
                        None => Err(RequestError::NoReply { to }),
                        Some(r) if r.payload.len() > max => Err(RequestError::Undelivered {
                            to,
                            reason: format!(
                                "the reply is {} bytes: replies are at most {max}",
                                r.payload.len()
                            ),
                        }),
                        Some(r) => Ok(r),
                    };
                    reply_to.answer(answer);
                }
            }
            Ok(Err((failure, action))) => {
                env.reply_to = reply_to;
                cell.dead_letter(env, DeadLetterReason::HandlerFailed(failure.to_string()));
                match action {
                    ErrorAction::Resume => {}
                    ErrorAction::Stop => break ExitReason::Normal,
                    ErrorAction::Restart => return (ExitReason::Failed(failure), Some(in_hand)),
                    ErrorAction::Escalate => {
                        let failure = Failure {
                            escalate: true,
                            ..failure
                        };
                        return (ExitReason::Failed(failure), Some(in_hand));
                    }
                }
            }
            Err(panic) => {
                let failure = Failure::new(FailureKind::Panicked, panic);
                env.reply_to = reply_to;
                cell.dead_letter(env, DeadLetterReason::HandlerFailed(failure.to_string()));
                return (ExitReason::Failed(failure), Some(in_hand));
            }
        }
    };
    let stopped = match &mut instance {
        Instance::Rust(b) => CatchUnwind(b.stop(&mut ctx)).await,
        Instance::Component(c) => CatchUnwind(pin!(c.stop())).await,
    };
    if stopped.is_err() {
        tracing::warn!(target: crate::ACTOR_TARGET, actor = %cell.address, "the stop hook panicked");
    }
    (reason, None)
}
