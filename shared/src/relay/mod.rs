//! Pulse listeners (SPEC §9) as a relay that runs on a schedule: keep one durable queue
//! per hook with bindings, bound exactly to those bindings, and turn the messages in it
//! into fires. GitHub webhooks reach the same `handle_message`, matched in-process.
//!
//! Nothing lost, nothing doubled, without acknowledging deliveries by tag (the management
//! API cannot):
//! * a batch is first *peeked* (read and left at the head of the queue), each message is
//!   fired and its fire recorded, and only then is the same number *taken* from the head;
//! * a message's taskId is derived from the hook and the message's identity, and a
//!   marker records each message handled, so a redelivery (a relay that died before the
//!   take, or two relays peeking the same batch) creates no second task and no second
//!   lastFires entry;
//! * the take returns what it removed: a message that was not in the peeked batch (the
//!   head moved because another relay took first) is handled there and then.
//!
//! The parts: [`bindings`] (which hooks an exchange feeds), [`status`] (what the hook's
//! owner sees), [`message`] (one message, once), [`lease`] (one relay at a time), and here
//! the run itself: reconcile the broker with the hooks, then drain.

pub mod bindings;
mod lease;
pub mod message;
pub mod status;

pub use bindings::{hooks_bound_to, index_bindings};
pub use message::{github_identity, handle_message, handle_message_with, message_task_id, Inbound, MessageOutcome, SEEN_RETENTION_DAYS};

use crate::fire::{FireOutcome, TaskQueue};
use crate::ids::{HookGroupId, HookId};
use crate::model::{Binding, HookRecord};
use crate::notify::FailureReport;
use crate::platform::Clock;
use crate::pulse::{Message, PulseError, QueueBinding, RabbitMq};
use crate::render::FiredBy;
use crate::store::{StorageError, Store};
use chrono::{DateTime, Utc};
use lease::Lease;
use message::relay_identity;
use serde::Serialize;
use status::BindingState;
use std::collections::{BTreeSet, HashSet};

/// Messages read per management API call: large enough to amortise the HTTP round
/// trip, small enough that a crash redelivers little.
pub const DEFAULT_BATCH: usize = 200;

/// Hooks whose errors one run records for their Pulse status.
const MAX_HOOK_ERRORS: usize = 1_000;
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Pulse(#[from] PulseError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<crate::platform::StoreError> for RelayError {
    fn from(e: crate::platform::StoreError) -> Self {
        RelayError::Storage(e.into())
    }
}

pub fn queue_prefix(namespace: &str) -> String {
    format!("queue/{namespace}/hooks/")
}

/// RabbitMQ's limit on queue names.
pub const MAX_QUEUE_NAME_BYTES: usize = 255;

/// The hook's queue on the broker (Pulse's naming rule `queue/<namespace>/<name>`).
pub fn queue_name(namespace: &str, g: &str, h: &str) -> String {
    format!("{}{g}/{h}", queue_prefix(namespace))
}

// --- the relay run ------------------------------------------------------------------------------

/// What one relay run did, for its log line and the HTTP nudge's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayReport {
    pub queues: usize,
    pub bound: usize,
    pub unbound: usize,
    pub deleted: usize,
    pub binding_errors: usize,
    pub fired: usize,
    pub declined: usize,
    pub failed: usize,
    pub discarded: usize,
    pub duplicates: usize,
    /// Messages whose fire the Queue did not take (a 5xx or no answer): left in their
    /// queue for the next run, which fires them with the same taskId.
    pub retrying: usize,
    /// What the Queue answered them (the first few).
    pub queue_errors: Vec<String>,
    /// The first error of each hook that had one (its `hook_ref`), for that hook's Pulse
    /// status only: a hook's owner sees the run's outcome for their hook, not others'.
    #[serde(skip)]
    pub hook_errors: std::collections::BTreeMap<String, String>,
    /// Errors of the run as a whole, shown on every hook's status.
    #[serde(skip)]
    pub run_errors: Vec<String>,
    /// Messages that a take removed without the peek having shown them (the queue head
    /// moved under a concurrent relay), handled at once.
    pub out_of_order: usize,
    /// Another relay held the lease: this run did nothing.
    pub busy: bool,
    /// Problems that stopped one hook's sync or drain; the run went on with the others.
    pub errors: Vec<String>,
    #[serde(skip)]
    pub to_report: Vec<FailureReport>,
}

impl RelayReport {
    /// A problem with one hook's queue or messages: in the run's errors (the log, the
    /// nudge's answer) and on that hook's status.
    fn hook_error(&mut self, g: &str, h: &str, error: String) {
        self.errors.push(format!("{g}/{h}: {error}"));
        if self.hook_errors.len() < MAX_HOOK_ERRORS {
            self.hook_errors.entry(crate::layout::hook_ref(g, h)).or_insert(error);
        }
    }

    fn count(&mut self, hook: Option<&HookRecord>, task_id: &str, outcome: &MessageOutcome, now: DateTime<Utc>) {
        match outcome {
            MessageOutcome::Fired(FireOutcome::Created { .. }) => self.fired += 1,
            MessageOutcome::Fired(FireOutcome::Declined) => self.declined += 1,
            MessageOutcome::Fired(failure) => {
                self.failed += 1;
                let error = match failure {
                    FireOutcome::RenderFailed(e) => e.clone(),
                    FireOutcome::QueueFailed(e) => e.to_string(),
                    _ => String::new(),
                };
                if let Some(hook) = hook.filter(|h| h.definition.metadata.email_on_error) {
                    self.to_report.push(FailureReport::new(hook, FiredBy::PulseMessage, task_id, now, &error));
                }
            }
            MessageOutcome::AlreadyHandled => self.duplicates += 1,
            MessageOutcome::Discarded(_) => self.discarded += 1,
            MessageOutcome::NoHook => {}
        }
    }
}

/// Brings the hook's queue and bindings on the broker in line with its definition,
/// and records each binding's state. `exists`: whether the broker has the queue.
pub fn sync_hook(store: &Store<'_>, mq: &RabbitMq<'_>, now: DateTime<Utc>, hook: &HookRecord, exists: bool, report: &mut RelayReport) -> Result<(), RelayError> {
    let d = &hook.definition;
    let queue = queue_name(&mq.config.namespace, &d.hook_group_id, &d.hook_id);
    if queue.len() > MAX_QUEUE_NAME_BYTES {
        // RabbitMQ refuses longer names: say so on the hook's status instead of failing
        // every run with nothing to show.
        let error = format!("the hook's queue name would be {} bytes; RabbitMQ allows {MAX_QUEUE_NAME_BYTES}", queue.len());
        let states: Vec<BindingState> = d
            .bindings
            .iter()
            .map(|b| BindingState { exchange: b.exchange.clone(), routing_key_pattern: b.routing_key_pattern.clone(), state: "failed".into(), error: Some(error.clone()) })
            .collect();
        report.binding_errors += states.len();
        status::record_bindings(store.kv, &d.hook_group_id, &d.hook_id, &queue, &states, now)?;
        return Ok(());
    }
    if !exists {
        mq.declare_queue(&queue)?;
    }
    let actual = mq.bindings(&queue)?;
    for stale in actual.iter().filter(|b| !d.bindings.iter().any(|d| same_binding(b, d))) {
        mq.unbind(&queue, stale)?;
        report.unbound += 1;
    }
    let mut states = Vec::new();
    for wanted in &d.bindings {
        let state = if actual.iter().any(|b| same_binding(b, wanted)) {
            None
        } else {
            match mq.bind(&wanted.exchange, &queue, &wanted.routing_key_pattern) {
                Ok(()) => {
                    report.bound += 1;
                    None
                }
                // No such exchange (404) or no permission (403): the hook's owner
                // needs to know; later runs try again.
                Err(e @ PulseError::Refused { status: 403 | 404, .. }) => {
                    report.binding_errors += 1;
                    Some(match &e {
                        PulseError::Refused { reason, .. } => reason.clone(),
                        other => other.to_string(),
                    })
                }
                Err(e) => return Err(e.into()),
            }
        };
        states.push(BindingState {
            exchange: wanted.exchange.clone(),
            routing_key_pattern: wanted.routing_key_pattern.clone(),
            state: if state.is_some() { "failed" } else { "bound" }.into(),
            error: state,
        });
    }
    status::record_bindings(store.kv, &d.hook_group_id, &d.hook_id, &queue, &states, now)?;
    Ok(())
}

/// A removed hook, or one without bindings any more: its queue and state go.
pub fn forget_hook(store: &Store<'_>, mq: &RabbitMq<'_>, g: &str, h: &str) -> Result<(), RelayError> {
    mq.delete_queue(&queue_name(&mq.config.namespace, g, h))?;
    store.kv.delete(&crate::layout::pulse_bindings(g, h))?;
    Ok(())
}

pub struct Relay<'a> {
    pub store: &'a Store<'a>,
    pub mq: &'a RabbitMq<'a>,
    pub queue: &'a dyn TaskQueue,
    pub clock: &'a dyn Clock,
    /// Messages read per management API call.
    pub batch: usize,
    /// Makes the tasks of cron projects' jobs (`None`: such hooks' fires fail).
    pub source: Option<&'a dyn crate::fire::TaskSource>,
}

fn same_binding(b: &QueueBinding, d: &Binding) -> bool {
    b.exchange == d.exchange && b.routing_key == d.routing_key_pattern
}

impl Relay<'_> {
    fn namespace(&self) -> &str {
        &self.mq.config.namespace
    }

    /// SPEC §9.1's three-way sync, with the broker as the record of what is in place:
    /// every hook with bindings gets its queue and exactly its bindings, and queues in
    /// our namespace that belong to no such hook are deleted. Returns the hooks to drain.
    pub fn reconcile(&self, report: &mut RelayReport) -> Result<Vec<(String, String)>, RelayError> {
        let prefix = queue_prefix(self.namespace());
        let existing: BTreeSet<String> = self.mq.queue_names(&prefix)?.into_iter().collect();
        let mut wanted = BTreeSet::new();
        let mut to_drain = Vec::new();
        for (g, h) in bindings::bound_hooks(self.store.kv)? {
            let hook = match (HookGroupId::new(&g), HookId::new(&h)) {
                (Ok(gid), Ok(hid)) => self.store.hook(&gid, &hid)?,
                _ => None,
            };
            let Some(hook) = hook.filter(|hook| !hook.definition.bindings.is_empty()) else {
                // The index outlived the hook (or its bindings): repair it.
                bindings::unindex_hook(self.store.kv, &g, &h)?;
                continue;
            };
            let queue = queue_name(self.namespace(), &g, &h);
            wanted.insert(queue.clone());
            match sync_hook(self.store, self.mq, self.clock.now(), &hook, existing.contains(&queue), report) {
                Ok(()) => to_drain.push((g, h)),
                Err(e) => report.hook_error(&g, &h, e.to_string()),
            }
        }
        for queue in existing.difference(&wanted) {
            let Some((g, h)) = queue[prefix.len()..].split_once('/') else { continue };
            // A queue is deleted only if its hook is really gone (or unbound): a hook
            // stored by a writer that died before indexing it is indexed here.
            let stored = match (HookGroupId::new(g), HookId::new(h)) {
                (Ok(gid), Ok(hid)) => self.store.hook(&gid, &hid)?.filter(|hook| !hook.definition.bindings.is_empty()),
                _ => None,
            };
            let result = match stored {
                Some(hook) => {
                    index_bindings(self.store.kv, g, h, &[], &hook.definition.bindings)?;
                    sync_hook(self.store, self.mq, self.clock.now(), &hook, true, report).map(|()| to_drain.push((g.to_string(), h.to_string())))
                }
                None => forget_hook(self.store, self.mq, g, h).map(|()| report.deleted += 1),
            };
            if let Err(e) = result {
                report.hook_error(g, h, e.to_string());
            }
        }
        report.queues = to_drain.len();
        Ok(to_drain)
    }

    /// Handles one message; `false` if the Queue failed and the message must stay queued.
    fn handle(&self, g: &str, h: &str, message: &Message, report: &mut RelayReport) -> Result<bool, StorageError> {
        let identity = relay_identity(message);
        let inbound = Inbound { exchange: &message.exchange, routing_key: &message.routing_key, identity: &identity, body: &message.payload };
        let now = self.clock.now();
        let outcome = handle_message_with(self.store, self.queue, self.source, g, h, &inbound, now)?;
        if let MessageOutcome::Fired(fired) = &outcome {
            if fired.is_retryable() {
                report.retrying += 1;
                if let Some(error) = fired.error() {
                    if report.queue_errors.len() < 10 {
                        report.queue_errors.push(format!("{g}/{h}: {error}"));
                    }
                    if report.hook_errors.len() < MAX_HOOK_ERRORS {
                        report.hook_errors.entry(crate::layout::hook_ref(g, h)).or_insert(error);
                    }
                }
                return Ok(false);
            }
        }
        let hook = match (&outcome, HookGroupId::new(g), HookId::new(h)) {
            (MessageOutcome::Fired(FireOutcome::RenderFailed(_) | FireOutcome::QueueFailed(_)), Ok(gid), Ok(hid)) => self.store.hook(&gid, &hid)?,
            _ => None,
        };
        report.count(hook.as_ref(), &message_task_id(g, h, &identity), &outcome, now);
        Ok(true)
    }

    /// Drains the hook's queue batch by batch until it is empty or `until` has passed.
    fn drain(&self, lease: &Lease, g: &str, h: &str, until: DateTime<Utc>, report: &mut RelayReport) -> Result<(), RelayError> {
        let queue = queue_name(self.namespace(), g, h);
        if queue.len() > MAX_QUEUE_NAME_BYTES {
            return Ok(()); // no queue: its status says why
        }
        while self.clock.now() < until && lease.renew(self)? {
            let batch = self.mq.peek(&queue, self.batch)?;
            if batch.is_empty() {
                break;
            }
            let mut handled = HashSet::new();
            let mut queue_failed = false;
            for message in &batch {
                // Lost the lease (this batch outlived it): stop before taking anything;
                // what was fired has its marker, the rest stays queued.
                if !lease.keep(self)? {
                    return Ok(());
                }
                if !self.handle(g, h, message, report)? {
                    // The Queue failed: this message and those behind it stay at the head
                    // of the queue for the next run (in their order), and the run goes on
                    // with the other hooks' queues.
                    queue_failed = true;
                    break;
                }
                handled.insert(relay_identity(message));
            }
            if handled.is_empty() {
                break;
            }
            let mut unseen: std::collections::VecDeque<Message> =
                self.mq.take(&queue, handled.len())?.into_iter().filter(|m| !handled.contains(&relay_identity(m))).collect();
            while let Some(message) = unseen.front() {
                report.out_of_order += 1;
                let handled = self.handle(g, h, message, report);
                if !matches!(handled, Ok(true)) {
                    // Taken but not fired: back into the queue rather than lost.
                    for m in &unseen {
                        if let Err(requeue) = self.mq.requeue(&queue, m) {
                            report.hook_error(g, h, format!("a taken message could not be requeued: {requeue}"));
                        }
                    }
                    return handled.map(|_| ()).map_err(Into::into);
                }
                unseen.pop_front();
            }
            if queue_failed || batch.len() < self.batch {
                break;
            }
        }
        Ok(())
    }

    /// One run (see `run_once`), whose outcome is recorded for the hooks' Pulse status:
    /// a broker or Queue outage is visible there, not only in the relay's log.
    pub fn run(&self, budget: chrono::Duration) -> Result<RelayReport, RelayError> {
        let started = std::time::Instant::now();
        let result = self.run_once(budget);
        match &result {
            Ok(r) if r.busy => {}
            Ok(r) => {
                let items = [("queues", r.queues), ("fired", r.fired), ("declined", r.declined), ("failed", r.failed), ("retrying", r.retrying), ("discarded", r.discarded), ("duplicates", r.duplicates)];
                crate::metrics::run(self.store.kv, "relay", r.run_errors.is_empty(), started.elapsed(), &items);
            }
            Err(_) => crate::metrics::run(self.store.kv, "relay", false, started.elapsed(), &[]),
        }
        let outcome = match &result {
            Ok(report) if report.busy => None,
            Ok(report) => Some(status::RunOutcome {
                time: crate::render::iso_time(self.clock.now()),
                errors: report.run_errors.clone(),
                hooks: report.hook_errors.clone(),
            }),
            Err(e) => Some(status::RunOutcome { time: crate::render::iso_time(self.clock.now()), errors: vec![e.to_string()], hooks: Default::default() }),
        };
        if let Some(outcome) = outcome {
            // Best effort: with the store down too there is nowhere to say it.
            let _ = status::record_run(self.store.kv, &outcome);
        }
        result
    }

    /// One run: reconcile, then drain every hook's queue, within `budget`; nothing if
    /// another relay is running (see `Lease`).
    fn run_once(&self, budget: chrono::Duration) -> Result<RelayReport, RelayError> {
        let until = self.clock.now() + budget;
        let mut report = RelayReport::default();
        let Some(lease) = Lease::acquire(self)? else {
            report.busy = true;
            return Ok(report);
        };
        let mut to_drain = self.reconcile(&mut report)?;
        // Hooks that failed in the last run go last, so that one whose messages the Queue
        // keeps failing (which makes the rest of a run skip the Queue) cannot hold back
        // the others.
        let failed_before = status::last_run(self.store.kv)?.map(|run| run.hooks).unwrap_or_default();
        to_drain.sort_by_key(|(g, h)| failed_before.contains_key(&crate::layout::hook_ref(g, h)));
        for (g, h) in to_drain {
            if !lease.renew(self)? {
                let lost = "the relay lease was lost to another relay; stopping".to_string();
                report.errors.push(lost.clone());
                report.run_errors.push(lost);
                break;
            }
            if let Err(e) = self.drain(&lease, &g, &h, until, &mut report) {
                report.hook_error(&g, &h, e.to_string());
            }
        }
        lease.release(self)?;
        Ok(report)
    }
}

