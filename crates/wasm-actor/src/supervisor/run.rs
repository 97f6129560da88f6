//! A supervisor at work: one task that starts its children in order, learns of every
//! exit, and restarts by its strategy, policy, intensity and backoff — or gives up and
//! escalates to its parent. Children's mailboxes and addresses are kept across restarts;
//! a child removed for good has its mailbox emptied into the dead letters.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;

use crate::actor::{ActorContext, Factory, Instance};
use crate::cell::{Cell, StopSignal};
use crate::error::ActorSystemError;
use crate::exit::{ExitReason, Failure, FailureKind};
use crate::incarnation;
use crate::mailbox::InHand;
use crate::supervisor::SupervisorEvent;
use crate::supervisor::spec::{
    ChildKind, RestartBackoff, RestartIntensity, RestartPolicy, ShutdownPolicy,
    SupervisionStrategy, SupervisorSpec,
};
use crate::system::ActorSystem;

/// What a supervisor is told by its parent, the system, or an actor spawning.
pub(crate) enum Control {
    /// Restart the whole subtree (the parent's strategy said so).
    Restart,
    /// Drain and stop every child, in reverse start order; then this supervisor ends.
    Shutdown(oneshot::Sender<()>),
    /// Start a child on a cell already registered (a spawned actor: temporary).
    Spawn {
        cell: Arc<Cell>,
        factory: Factory,
        restart: RestartPolicy,
        shutdown: ShutdownPolicy,
    },
    /// Drain and stop the child of this name and retire it; whether there was one.
    Stop(String, oneshot::Sender<bool>),
}

/// A handle to a supervisor.
#[derive(Clone)]
pub(crate) struct SupervisorLink {
    pub(crate) name: Arc<str>,
    control: mpsc::UnboundedSender<Control>,
}

impl std::fmt::Debug for SupervisorLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SupervisorLink").field(&self.name).finish()
    }
}

impl SupervisorLink {
    /// Tells it; false when it has ended.
    pub(crate) fn tell(&self, control: Control) -> bool {
        self.control.send(control).is_ok()
    }

    /// Shuts it down and waits.
    pub(crate) async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tell(Control::Shutdown(tx)) {
            let _ = rx.await;
        }
    }
}

/// An exit, as a child reports it (with the message it failed on still counted as in
/// hand, until the supervisor has dealt with the exit).
pub(crate) struct Exit {
    index: usize,
    incarnation: u64,
    reason: ExitReason,
    in_hand: Option<InHand>,
}

/// Where a child reports its exit.
#[derive(Clone)]
pub(crate) struct Reporter {
    tx: mpsc::UnboundedSender<Exit>,
    index: usize,
    incarnation: u64,
}

impl Reporter {
    pub(crate) fn report(&self, reason: ExitReason, in_hand: Option<InHand>) {
        let _ = self.tx.send(Exit {
            index: self.index,
            incarnation: self.incarnation,
            reason,
            in_hand,
        });
    }
}

struct Child {
    name: String,
    restart: RestartPolicy,
    shutdown: ShutdownPolicy,
    incarnation: u64,
    running: bool,
    gone: bool,
    run: ChildRun,
}

/// A child's instance, started, whose task is not spawned yet (see
/// [`Supervisor::batching`]).
struct Started {
    index: usize,
    ctx: ActorContext,
    instance: Instance,
    stop: Arc<StopSignal>,
    reporter: Reporter,
}

enum ChildRun {
    Actor {
        cell: Arc<Cell>,
        factory: Factory,
        stop: Arc<StopSignal>,
        abort: Option<AbortHandle>,
    },
    Supervisor(SupervisorLink),
}

/// How children are stopped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stopping {
    /// After the message in hand (a sibling's restart, an escalation).
    Now,
    /// After the mailbox is empty (shutdown); new messages are refused.
    Drain,
}

pub(crate) struct Supervisor {
    name: Arc<str>,
    strategy: SupervisionStrategy,
    intensity: RestartIntensity,
    backoff: RestartBackoff,
    system: ActorSystem,
    children: Vec<Child>,
    exits_tx: mpsc::UnboundedSender<Exit>,
    exits: mpsc::UnboundedReceiver<Exit>,
    deferred: VecDeque<Exit>,
    control: mpsc::UnboundedReceiver<Control>,
    link: SupervisorLink,
    parent: Option<Reporter>,
    restarts: VecDeque<Instant>,
    /// Control messages that came during a restart's backoff, for after it.
    held: VecDeque<Control>,
    /// Shut down (during a backoff): the task ends.
    ended: bool,
    /// Starting several children in a row (at its start, a subtree's restart): their
    /// tasks are spawned together when the row is done, or as soon as a start has to
    /// wait — so nothing started waits on a task not yet running. Spawned one by one,
    /// each would wake an idle worker of the runtime (a system call) only for it to
    /// find an empty mailbox; together, the first wakes it and it takes the rest.
    batching: bool,
    started: Vec<Started>,
}

/// Starts the supervisor of `spec` and its children, in order; its link once all have
/// started. On a failure, what had started is stopped again.
pub(crate) async fn start(
    spec: SupervisorSpec,
    system: ActorSystem,
    parent: Option<Reporter>,
) -> Result<SupervisorLink, ActorSystemError> {
    let (exits_tx, exits) = mpsc::unbounded_channel();
    let (control_tx, control) = mpsc::unbounded_channel();
    let name: Arc<str> = spec.name.as_str().into();
    let link = SupervisorLink {
        name: name.clone(),
        control: control_tx,
    };
    let mut sup = Supervisor {
        name,
        strategy: spec.strategy,
        intensity: spec.intensity,
        backoff: spec.backoff,
        system,
        children: Vec::with_capacity(spec.children.len()),
        exits_tx,
        exits,
        deferred: VecDeque::new(),
        control,
        link: link.clone(),
        parent,
        restarts: VecDeque::new(),
        held: VecDeque::new(),
        ended: false,
        batching: true,
        started: Vec::new(),
    };
    for child in spec.children {
        let index = sup.children.len();
        let run = match child.kind {
            ChildKind::Actor(factory) => {
                let cell = match sup.system.register_named(&child.name, child.mailbox) {
                    Ok(cell) => cell,
                    Err(e) => {
                        sup.shutdown_all().await;
                        return Err(e);
                    }
                };
                ChildRun::Actor {
                    cell,
                    factory,
                    stop: Arc::default(),
                    abort: None,
                }
            }
            ChildKind::Supervisor(sub) => {
                let reporter = Reporter {
                    tx: sup.exits_tx.clone(),
                    index,
                    incarnation: 0,
                };
                let starting = Box::pin(start(sub, sup.system.clone(), Some(reporter)));
                match sup.awaiting(starting).await {
                    Ok(link) => ChildRun::Supervisor(link),
                    Err(e) => {
                        sup.shutdown_all().await;
                        return Err(e);
                    }
                }
            }
        };
        let is_actor = matches!(run, ChildRun::Actor { .. });
        sup.children.push(Child {
            name: child.name.clone(),
            restart: child.restart,
            shutdown: child.shutdown,
            incarnation: 0,
            running: !is_actor,
            gone: false,
            run,
        });
        if is_actor && let Err(failure) = sup.start_child(index).await {
            sup.shutdown_all().await;
            return Err(ActorSystemError::StartFailed {
                actor: child.name,
                reason: failure.to_string(),
            });
        }
    }
    sup.end_batch();
    tokio::spawn(sup.run());
    Ok(link)
}

impl Supervisor {
    async fn run(mut self) {
        while !self.ended {
            if let Some(control) = self.held.pop_front() {
                self.on_control(control).await;
                continue;
            }
            let exit = match self.deferred.pop_front() {
                Some(exit) => exit,
                // Exits first: a failure already reported is dealt with (and logged as
                // one) before a shutdown or restart that came after it.
                None => tokio::select! {
                    biased;
                    Some(exit) = self.exits.recv() => exit,
                    control = self.control.recv() => {
                        match control {
                            Some(control) => self.on_control(control).await,
                            None => self.ended = true,
                        }
                        continue;
                    }
                },
            };
            self.on_exit(exit).await;
        }
    }

    async fn on_control(&mut self, control: Control) {
        match control {
            Control::Restart => self.restart_subtree().await,
            Control::Shutdown(done) => {
                self.shutdown_all().await;
                let _ = done.send(());
                self.ended = true;
            }
            Control::Spawn {
                cell,
                factory,
                restart,
                shutdown,
            } => self.spawn_child(cell, factory, restart, shutdown).await,
            Control::Stop(name, done) => {
                let found = self.children.iter().position(|c| !c.gone && c.name == name);
                if let Some(i) = found {
                    self.stop_children(&[i], Stopping::Drain).await;
                    self.retire(i);
                }
                let _ = done.send(found.is_some());
            }
        }
    }

    /// Waits out a restart's backoff; a shutdown that comes meanwhile is carried out at
    /// once (other control messages wait for the restart). Whether to go on restarting.
    async fn back_off(&mut self, delay: std::time::Duration) -> bool {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return true,
                control = self.control.recv() => match control {
                    Some(shutdown @ Control::Shutdown(_)) => {
                        self.on_control(shutdown).await;
                        return false;
                    }
                    Some(other) => self.held.push_back(other),
                    None => {
                        self.ended = true;
                        return false;
                    }
                },
            }
        }
    }

    fn emit(&self, event: SupervisorEvent) {
        self.system.emit(event);
    }

    /// Spawns the tasks of the children started and not yet running.
    fn run_started(&mut self) {
        for s in std::mem::take(&mut self.started) {
            self.run_child(s);
        }
    }

    /// Spawns a started child's task.
    fn run_child(&mut self, s: Started) {
        let abort = incarnation::spawn(s.ctx, s.instance, s.stop, s.reporter);
        if let ChildRun::Actor { abort: slot, .. } = &mut self.children[s.index].run {
            *slot = Some(abort);
        }
    }

    /// A row of starts is done: their tasks are spawned.
    fn end_batch(&mut self) {
        self.batching = false;
        self.run_started();
    }

    /// Awaits `fut`; should it have to wait, the children already started get their
    /// tasks first (it may be waiting on one of them).
    async fn awaiting<F: Future>(&mut self, fut: F) -> F::Output {
        let mut fut = pin!(fut);
        std::future::poll_fn(|cx| {
            let poll = fut.as_mut().poll(cx);
            if poll.is_pending() {
                self.run_started();
            }
            poll
        })
        .await
    }

    /// Starts child `index`'s next instance and waits until it has started (or not).
    async fn start_child(&mut self, index: usize) -> Result<(), Failure> {
        let incarnation = self.system.next_id();
        let exits = self.exits_tx.clone();
        let ctx_system = self.system.clone();
        let link = self.link.clone();
        let child = &mut self.children[index];
        match &mut child.run {
            ChildRun::Supervisor(sub) => {
                sub.tell(Control::Restart);
                child.running = true;
                Ok(())
            }
            ChildRun::Actor {
                cell,
                factory,
                stop,
                abort,
            } => {
                *stop = Arc::default();
                *abort = None;
                let mut ctx = ActorContext {
                    cell: cell.clone(),
                    system: ctx_system,
                    supervisor: link,
                };
                let reporter = Reporter {
                    tx: exits,
                    index,
                    incarnation,
                };
                child.incarnation = incarnation;
                child.running = true;
                let name = child.name.clone();
                let stop = stop.clone();
                let factory = factory.clone();
                match self.awaiting(incarnation::start(&mut ctx, &factory)).await {
                    Ok(instance) => {
                        let started = Started {
                            index,
                            ctx,
                            instance,
                            stop,
                            reporter,
                        };
                        if self.batching {
                            self.started.push(started);
                        } else {
                            self.run_child(started);
                        }
                        tracing::debug!(target: crate::ACTOR_TARGET, supervisor = %self.name, actor = %name, incarnation, "started");
                        self.emit(SupervisorEvent::Started {
                            supervisor: self.name.clone(),
                            child: name,
                            incarnation,
                        });
                        Ok(())
                    }
                    // A start that fails is an exit like any other, which the supervisor
                    // deals with next.
                    Err(failure) => {
                        reporter.report(ExitReason::Failed(failure.clone()), None);
                        Err(failure)
                    }
                }
            }
        }
    }

    /// Logs an exit: a failure at `warn` with its kind, anything else at `info`.
    fn log_exit(&self, name: &str, reason: &ExitReason, restart: bool) {
        match reason {
            ExitReason::Failed(failure) => tracing::warn!(
                target: crate::ACTOR_TARGET,
                supervisor = %self.name,
                actor = %name,
                reason = failure.kind.as_str(),
                restart,
                "actor failed: {}",
                failure.message
            ),
            other => tracing::info!(
                target: crate::ACTOR_TARGET,
                supervisor = %self.name,
                actor = %name,
                restart,
                "actor ended: {other}"
            ),
        }
    }

    async fn on_exit(&mut self, mut exit: Exit) {
        let Some(child) = self.children.get_mut(exit.index) else {
            return;
        };
        let is_actor = matches!(child.run, ChildRun::Actor { .. });
        if child.gone || !child.running || (is_actor && child.incarnation != exit.incarnation) {
            return;
        }
        child.running = false;
        let restart = match child.restart {
            RestartPolicy::Permanent => true,
            RestartPolicy::Transient => exit.reason.is_failure(),
            RestartPolicy::Temporary => false,
        };
        let name = child.name.clone();
        self.log_exit(&name, &exit.reason, restart);
        if !restart {
            // Its name is free by the time anyone hears it ended.
            self.retire(exit.index);
        }
        self.emit(SupervisorEvent::Exited {
            supervisor: self.name.clone(),
            child: name.clone(),
            reason: exit.reason.clone(),
            restart,
        });
        if !restart {
            return;
        }
        if let ExitReason::Failed(f) = &exit.reason
            && f.escalate
        {
            let reason = format!("`{name}` asked to escalate: {f}");
            self.escalate(reason, exit.in_hand.take()).await;
            return;
        }
        let now = Instant::now();
        self.restarts.push_back(now);
        while self
            .restarts
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.intensity.within)
        {
            self.restarts.pop_front();
        }
        let in_window = u32::try_from(self.restarts.len()).unwrap_or(u32::MAX);
        if in_window > self.intensity.max_restarts {
            let reason = format!(
                "more than {} restarts within {:?}; the last: `{name}` {}",
                self.intensity.max_restarts, self.intensity.within, exit.reason
            );
            self.escalate(reason, exit.in_hand.take()).await;
            return;
        }
        let delay = self.backoff.delay(in_window);
        self.emit(SupervisorEvent::Restarting {
            supervisor: self.name.clone(),
            child: name,
            delay,
            restarts_in_window: in_window,
        });
        if !delay.is_zero() && !self.back_off(delay).await {
            return;
        }
        let n = self.children.len();
        let (stop, start): (Vec<usize>, std::ops::Range<usize>) = match self.strategy {
            SupervisionStrategy::OneForOne => (Vec::new(), exit.index..exit.index + 1),
            SupervisionStrategy::OneForAll => {
                ((0..n).rev().filter(|i| *i != exit.index).collect(), 0..n)
            }
            SupervisionStrategy::RestForOne => ((exit.index + 1..n).rev().collect(), exit.index..n),
        };
        self.stop_children(&stop, Stopping::Now).await;
        self.batching = true;
        for i in start {
            let c = &self.children[i];
            if c.gone {
                continue;
            }
            // A temporary sibling stopped for this restart is not started again (OTP).
            if i != exit.index && c.restart == RestartPolicy::Temporary && !c.running {
                self.retire(i);
                continue;
            }
            // A subtree restarts itself when told to (stopping it did nothing).
            if !c.running || matches!(c.run, ChildRun::Supervisor(_)) {
                // A start that fails ends in an exit like any other failure.
                let _ = self.start_child(i).await;
            }
        }
        self.end_batch();
    }

    /// Stops the listed children, in the order given, each within its shutdown policy.
    async fn stop_children(&mut self, indices: &[usize], how: Stopping) {
        // Their exits are awaited: every started child has its task.
        self.run_started();
        for &i in indices {
            let child = &self.children[i];
            if child.gone || !child.running {
                continue;
            }
            match &child.run {
                ChildRun::Supervisor(sub) => {
                    if how == Stopping::Drain {
                        sub.shutdown().await;
                    }
                    // Stopping::Now: the subtree restarts itself when started again.
                }
                ChildRun::Actor { cell, stop, .. } => {
                    match how {
                        Stopping::Drain => cell.mailbox.close(),
                        Stopping::Now => stop.fire(),
                    }
                    self.await_exit(i).await;
                }
            }
        }
    }

    /// Waits for child `i`'s current instance to end, within its shutdown policy;
    /// past it, the instance is stopped where it is.
    async fn await_exit(&mut self, i: usize) {
        let deadline = match self.children[i].shutdown {
            ShutdownPolicy::Graceful(d) => Some(tokio::time::Instant::now() + d),
            ShutdownPolicy::Immediate => Some(tokio::time::Instant::now()),
            ShutdownPolicy::Infinity => None,
        };
        let incarnation = self.children[i].incarnation;
        let mine = |e: &Exit| e.index == i && e.incarnation == incarnation;
        if let Some(at) = self.deferred.iter().position(mine) {
            self.deferred.remove(at);
            self.children[i].running = false;
            return;
        }
        loop {
            let next = match deadline {
                Some(d) => tokio::time::timeout_at(d, self.exits.recv()).await,
                None => Ok(self.exits.recv().await),
            };
            match next {
                Ok(Some(exit)) if mine(&exit) => {
                    self.children[i].running = false;
                    let name = self.children[i].name.clone();
                    self.log_exit(&name, &exit.reason, false);
                    self.emit(SupervisorEvent::Exited {
                        supervisor: self.name.clone(),
                        child: self.children[i].name.clone(),
                        reason: exit.reason,
                        restart: false,
                    });
                    return;
                }
                Ok(Some(other)) => self.deferred.push_back(other),
                Ok(None) => return,
                Err(_elapsed) => {
                    let child = &mut self.children[i];
                    if let ChildRun::Actor { abort, .. } = &mut child.run
                        && let Some(abort) = abort.take()
                    {
                        abort.abort();
                    }
                    child.running = false;
                    let name = child.name.clone();
                    tracing::warn!(
                        target: crate::ACTOR_TARGET,
                        supervisor = %self.name,
                        actor = %name,
                        "stopped where it was: its shutdown time ran out"
                    );
                    self.emit(SupervisorEvent::Exited {
                        supervisor: self.name.clone(),
                        child: name,
                        reason: ExitReason::Shutdown,
                        restart: false,
                    });
                    return;
                }
            }
        }
    }

    /// Removes child `i` for good: its address is released, its mailbox emptied into
    /// the dead letters.
    fn retire(&mut self, i: usize) {
        let child = &mut self.children[i];
        child.gone = true;
        if let ChildRun::Actor { cell, .. } = &child.run {
            self.system.unregister(cell);
            cell.retire();
        }
    }

    /// Gives up: stops every child and tells the parent (or ends the system), handing
    /// on the failed message's in-hand count for the parent to settle.
    async fn escalate(&mut self, reason: String, in_hand: Option<InHand>) {
        let all: Vec<usize> = (0..self.children.len()).rev().collect();
        self.stop_children(&all, Stopping::Now).await;
        self.restarts.clear();
        tracing::error!(target: crate::ACTOR_TARGET, supervisor = %self.name, "escalating: {reason}");
        self.emit(SupervisorEvent::Escalated {
            supervisor: self.name.clone(),
            reason: reason.clone(),
        });
        match &self.parent {
            Some(parent) => parent.report(
                ExitReason::Failed(Failure::new(
                    FailureKind::Escalated,
                    format!("supervisor `{}` escalated: {reason}", self.name),
                )),
                in_hand,
            ),
            None => self.system.terminate(reason),
        }
    }

    /// The parent restarts this subtree: every child stopped, then started in order.
    async fn restart_subtree(&mut self) {
        let all: Vec<usize> = (0..self.children.len()).rev().collect();
        self.stop_children(&all, Stopping::Now).await;
        self.restarts.clear();
        self.batching = true;
        for i in 0..self.children.len() {
            if !self.children[i].gone {
                let _ = self.start_child(i).await;
            }
        }
        self.end_batch();
    }

    /// Every child drained and stopped, in reverse start order, and retired.
    async fn shutdown_all(&mut self) {
        let all: Vec<usize> = (0..self.children.len()).rev().collect();
        self.stop_children(&all, Stopping::Drain).await;
        for i in all {
            if !self.children[i].gone {
                self.retire(i);
            }
        }
    }

    async fn spawn_child(
        &mut self,
        cell: Arc<Cell>,
        factory: Factory,
        restart: RestartPolicy,
        shutdown: ShutdownPolicy,
    ) {
        let index = self.children.len();
        self.children.push(Child {
            name: cell.address.to_string(),
            restart,
            shutdown,
            incarnation: 0,
            running: false,
            gone: false,
            run: ChildRun::Actor {
                cell,
                factory,
                stop: Arc::default(),
                abort: None,
            },
        });
        // A start that fails ends in an exit; a temporary child is then retired.
        let _ = self.start_child(index).await;
    }
}
