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

use crate::fire::{fire, FireOptions, FireOutcome, TaskQueue};
use crate::ids::{slugid_from_parts, HookGroupId, HookId};
use crate::model::{Binding, HookRecord};
use crate::notify::FailureReport;
use crate::platform::{Clock, KeyValue};
use crate::pulse::{Message, PulseError, QueueBinding, RabbitMq};
use crate::render::{iso_time, FireContext, FiredBy};
use crate::store::{key_part, StorageError, Store};
use crate::trigger_schema::TriggerSchema;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// How long a handled-message marker is kept: far longer than a message waits in a queue
/// drained every minute, and than GitHub offers a delivery for redelivery (3 days).
pub const SEEN_RETENTION_DAYS: i64 = 7;

/// Messages read per management API call: large enough to amortise the HTTP round
/// trip, small enough that a crash redelivers little.
pub const DEFAULT_BATCH: usize = 200;

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

// --- which hooks are bound to which exchange, kept beside the hooks -----------------------
//
// One document per exchange, `binding/<exchange>`: `{"<g>/<h>": [patterns]}`. The GitHub
// path finds an exchange's hooks with one read (Spin's key-value store can only list
// every key, which grows with tasks and fires). A document is read-modify-written, so two
// API writes binding the same exchange at once can lose an entry; the timer's daily
// `rebuild_binding_index` restores it, as for the schedule index.

type BindingDoc = BTreeMap<String, Vec<String>>;

fn binding_key(exchange: &str) -> String {
    format!("binding/{}", key_part(exchange))
}

fn hook_entry(g: &str, h: &str) -> String {
    format!("{g}/{}", key_part(h))
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn read_doc(kv: &dyn KeyValue, key: &str) -> Result<BindingDoc, StorageError> {
    match kv.get(key)? {
        None => Ok(BindingDoc::new()),
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| StorageError::Corrupt { key: key.to_string(), reason: e.to_string() }),
    }
}

fn write_doc(kv: &dyn KeyValue, key: &str, doc: &BindingDoc) -> Result<(), StorageError> {
    if doc.is_empty() {
        Ok(kv.delete(key)?)
    } else {
        Ok(kv.set(key, &serde_json::to_vec(doc).expect("serialises"))?)
    }
}

/// Records hook `g/h`'s `new` bindings in the index, dropping exchanges only `old` had.
pub fn index_bindings(kv: &dyn KeyValue, g: &str, h: &str, old: &[Binding], new: &[Binding]) -> Result<(), StorageError> {
    let mut patterns: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for b in new {
        patterns.entry(b.exchange.as_str()).or_default().push(b.routing_key_pattern.clone());
    }
    let entry = hook_entry(g, h);
    for b in old.iter().filter(|b| !patterns.contains_key(b.exchange.as_str())) {
        let key = binding_key(&b.exchange);
        let mut doc = read_doc(kv, &key)?;
        if doc.remove(&entry).is_some() {
            write_doc(kv, &key, &doc)?;
        }
    }
    for (exchange, patterns) in patterns {
        let key = binding_key(exchange);
        let mut doc = read_doc(kv, &key)?;
        if doc.get(&entry) != Some(&patterns) {
            doc.insert(entry.clone(), patterns);
            write_doc(kv, &key, &doc)?;
        }
    }
    Ok(())
}

/// Every hook the index lists, as (hookGroupId, hookId).
pub fn bound_hooks(kv: &dyn KeyValue) -> Result<BTreeSet<(String, String)>, StorageError> {
    let mut hooks = BTreeSet::new();
    for key in kv.keys("binding/")? {
        for entry in read_doc(kv, &key)?.keys() {
            if let Some((g, h)) = entry.split_once('/') {
                hooks.insert((g.to_string(), decode(h)));
            }
        }
    }
    Ok(hooks)
}

/// Hooks with a binding on `exchange`, with their patterns for it: one read.
pub fn hooks_bound_to(kv: &dyn KeyValue, exchange: &str) -> Result<Vec<(String, String, Vec<String>)>, StorageError> {
    Ok(read_doc(kv, &binding_key(exchange))?
        .into_iter()
        .filter_map(|(entry, patterns)| entry.split_once('/').map(|(g, h)| (g.to_string(), decode(h), patterns)))
        .collect())
}

/// Drops hook `g/h` from every exchange's document (its index outlived it).
fn unindex_hook(kv: &dyn KeyValue, g: &str, h: &str) -> Result<(), StorageError> {
    let entry = hook_entry(g, h);
    for key in kv.keys("binding/")? {
        let mut doc = read_doc(kv, &key)?;
        if doc.remove(&entry).is_some() {
            write_doc(kv, &key, &doc)?;
        }
    }
    Ok(())
}

/// Rebuilds the index from the hooks themselves (the timer's daily pass): entries lost
/// to racing writes or to a crash between storing a hook and indexing it come back,
/// stale ones go. Returns how many hooks have bindings.
pub fn rebuild_binding_index(store: &Store<'_>) -> Result<usize, StorageError> {
    let mut wanted: BTreeMap<String, BindingDoc> = BTreeMap::new();
    let mut bound = 0;
    for g in store.hook_groups()? {
        let Ok(g) = HookGroupId::new(&g) else { continue };
        for hook in store.hooks_in_group(&g)? {
            let d = &hook.definition;
            bound += usize::from(!d.bindings.is_empty());
            for b in &d.bindings {
                wanted
                    .entry(binding_key(&b.exchange))
                    .or_default()
                    .entry(hook_entry(&d.hook_group_id, &d.hook_id))
                    .or_default()
                    .push(b.routing_key_pattern.clone());
            }
        }
    }
    for key in store.kv.keys("binding/")? {
        if !wanted.contains_key(&key) {
            store.kv.delete(&key)?;
        }
    }
    for (key, doc) in &wanted {
        if &read_doc(store.kv, key)? != doc {
            write_doc(store.kv, key, doc)?;
        }
    }
    Ok(bound)
}

// --- what the relay tells the hook's owner ---------------------------------------------------

/// One binding's state on the broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BindingState {
    pub exchange: String,
    pub routing_key_pattern: String,
    /// `bound`, or `failed` (with `error`) when the broker refused it, e.g. an exchange
    /// that does not exist (upstream skips those silently, quirk §15.14; fixed).
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Discards {
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<Value>,
}

fn status_key(kind: &str, g: &str, h: &str) -> String {
    format!("pulse/{kind}/{g}/{}", key_part(h))
}

/// The hook's Pulse state, for `GET /api/taskhooks/v1/hooks/<g>/<h>/pulse`.
pub fn pulse_status(kv: &dyn KeyValue, g: &str, h: &str) -> Result<Value, StorageError> {
    let read = |kind: &str| -> Result<Option<Value>, StorageError> {
        let key = status_key(kind, g, h);
        match kv.get(&key)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| StorageError::Corrupt { key, reason: e.to_string() }),
        }
    };
    let mut status = read("bindings")?.unwrap_or_else(|| serde_json::json!({"bindings": []}));
    status["discarded"] = read("discards")?.unwrap_or_else(|| serde_json::json!({"count": 0}));
    Ok(status)
}

/// Drops the hook's Pulse status (the hook was removed).
pub fn forget_state(kv: &dyn KeyValue, g: &str, h: &str) -> Result<(), StorageError> {
    kv.delete(&status_key("bindings", g, h))?;
    kv.delete(&status_key("discards", g, h))?;
    Ok(())
}

fn record_discard(kv: &dyn KeyValue, g: &str, h: &str, message: &Inbound<'_>, reason: &str, now: DateTime<Utc>) -> Result<(), StorageError> {
    let key = status_key("discards", g, h);
    let mut discards: Discards = kv.get(&key)?.and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    discards.count += 1;
    discards.last = Some(serde_json::json!({
        "time": iso_time(now), "exchange": message.exchange, "routingKey": message.routing_key, "reason": reason,
    }));
    kv.set(&key, &serde_json::to_vec(&discards).expect("serialises"))?;
    Ok(())
}

// --- handling one message ------------------------------------------------------------------------

/// A message on its way to a hook, from RabbitMQ or from a GitHub webhook.
pub struct Inbound<'a> {
    pub exchange: &'a str,
    pub routing_key: &'a str,
    /// Stable across redeliveries (`Message::identity`, or the GitHub delivery id).
    pub identity: &'a str,
    pub body: &'a [u8],
}

#[derive(Debug, Clone, PartialEq)]
pub enum MessageOutcome {
    Fired(FireOutcome),
    /// Handled before (a redelivery): nothing done.
    AlreadyHandled,
    /// Not JSON, or refused by the hook's `triggerSchema`: no task, no lastFire, but
    /// counted on the hook's Pulse status with the reason (SPEC §9.3 step 2).
    Discarded(String),
    /// The hook is gone: the message is dropped.
    NoHook,
}

fn seen_key(g: &str, h: &str, identity: &str) -> String {
    format!("pulse/seen/{g}/{}/{identity}", key_part(h))
}

/// The identity a GitHub delivery has, whichever way it arrives.
pub fn github_identity(delivery: &str) -> String {
    slugid_from_parts(&[b"github", delivery.as_bytes()])
}

/// A message's identity for the relay: a message of Taskcluster's GitHub service carries
/// the delivery id as `eventId`, and is then the same message as that delivery posted to
/// `/api/github/v1/github`, so a deployment receiving both fires the hook once.
fn relay_identity(message: &Message) -> String {
    if message.exchange.starts_with(crate::github::EXCHANGE_PREFIX) {
        if let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&message.payload) {
            if let Some(Value::String(delivery)) = body.get("eventId") {
                return github_identity(delivery);
            }
        }
    }
    message.identity()
}

/// The taskId a message fires hook `g/h` with: the same message, the same task.
pub fn message_task_id(g: &str, h: &str, identity: &str) -> String {
    slugid_from_parts(&[b"pulseMessage", g.as_bytes(), h.as_bytes(), identity.as_bytes()])
}

/// A marker says a message is being handled since `t` (`pending:<t ms>`) or was
/// (`done:<t ms>`).
fn parse_marker(bytes: &[u8]) -> Option<(bool, i64)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (state, t) = text.split_once(':')?;
    Some((state == "done", t.parse().ok()?))
}

/// A pending marker younger than this is re-fired with its original time, so the retry
/// renders the same task and overwrites the same lastFires entry; an older one is
/// re-fired now (its `created` would be outside the Queue's 15-minute window).
const PENDING_REUSE_MS: i64 = 10 * 60 * 1000;

/// SPEC §9.3: re-load the hook, validate the body against its `triggerSchema`, fire with
/// `{firedBy: "pulseMessage", payload: <body>}`.
///
/// The message's marker goes `pending:<t>` before the fire and `done:<t>` after it is
/// recorded. A crash in between leaves `pending:<t>`, and the redelivery fires again at
/// the same `t`: same taskId, same task (the Queue answers it as already created), and
/// the same lastFires key, so nothing is doubled even in lastFires.
pub fn handle_message(store: &Store<'_>, queue: &dyn TaskQueue, g: &str, h: &str, message: &Inbound<'_>, now: DateTime<Utc>) -> Result<MessageOutcome, StorageError> {
    let (Ok(gid), Ok(hid)) = (HookGroupId::new(g), HookId::new(h)) else { return Ok(MessageOutcome::NoHook) };
    let Some(hook) = store.hook(&gid, &hid)? else { return Ok(MessageOutcome::NoHook) };
    let seen = seen_key(g, h, message.identity);
    let at = match store.kv.get(&seen)?.as_deref().and_then(parse_marker) {
        Some((true, _)) => return Ok(MessageOutcome::AlreadyHandled),
        Some((false, t)) if now.timestamp_millis() - t < PENDING_REUSE_MS => DateTime::from_timestamp_millis(t).unwrap_or(now),
        _ => now,
    };
    let payload: Value = match serde_json::from_slice(message.body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return discard(store, g, h, message, "the message body is not a JSON object", now),
        Err(e) => return discard(store, g, h, message, &format!("the message body is not JSON: {e}"), now),
    };
    if let Err(e) = TriggerSchema::compile_checked(&hook.definition.trigger_schema).and_then(|s| s.validate(&payload)) {
        return discard(store, g, h, message, &format!("triggerSchema: {e}"), now);
    }
    store.kv.set(&seen, format!("pending:{}", at.timestamp_millis()).as_bytes())?;
    let ctx = FireContext { fired_by: FiredBy::PulseMessage, payload: Some(payload), client_id: None };
    let task_id = message_task_id(g, h, message.identity);
    let options = FireOptions { conflict_means_created: true, scheduled_for: None };
    let outcome = fire(store, queue, &hook, &ctx, &task_id, at, options)?;
    store.kv.set(&seen, format!("done:{}", at.timestamp_millis()).as_bytes())?;
    Ok(MessageOutcome::Fired(outcome))
}

fn discard(store: &Store<'_>, g: &str, h: &str, message: &Inbound<'_>, reason: &str, now: DateTime<Utc>) -> Result<MessageOutcome, StorageError> {
    record_discard(store.kv, g, h, message, reason, now)?;
    Ok(MessageOutcome::Discarded(reason.to_string()))
}

/// Drops handled-message markers older than `SEEN_RETENTION_DAYS` (the timer's daily pass).
pub fn prune_seen(kv: &dyn KeyValue, now: DateTime<Utc>) -> Result<usize, StorageError> {
    let cutoff = (now - chrono::Duration::days(SEEN_RETENTION_DAYS)).timestamp_millis();
    let mut pruned = 0;
    for key in kv.keys("pulse/seen/")? {
        let old = kv.get(&key)?.as_deref().and_then(parse_marker).is_none_or(|(_, t)| t < cutoff);
        if old {
            kv.delete(&key)?;
            pruned += 1;
        }
    }
    Ok(pruned)
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
        let status = serde_json::json!({"queue": queue, "bindings": states, "since": iso_time(now)});
        store.kv.set(&status_key("bindings", &d.hook_group_id, &d.hook_id), &serde_json::to_vec(&status).expect("serialises"))?;
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
    // Written only when it changed (`since` says when), not on every run.
    let key = status_key("bindings", &d.hook_group_id, &d.hook_id);
    let status = serde_json::json!({"queue": queue, "bindings": states});
    let stored: Option<Value> = store.kv.get(&key)?.and_then(|b| serde_json::from_slice(&b).ok());
    let unchanged = stored.as_ref().is_some_and(|s| s["queue"] == status["queue"] && s["bindings"] == status["bindings"]);
    if !unchanged {
        let mut status = status;
        status["since"] = Value::String(iso_time(now));
        store.kv.set(&key, &serde_json::to_vec(&status).expect("serialises"))?;
    }
    Ok(())
}

/// A removed hook, or one without bindings any more: its queue and state go.
pub fn forget_hook(store: &Store<'_>, mq: &RabbitMq<'_>, g: &str, h: &str) -> Result<(), RelayError> {
    mq.delete_queue(&queue_name(&mq.config.namespace, g, h))?;
    store.kv.delete(&status_key("bindings", g, h))?;
    Ok(())
}

pub struct Relay<'a> {
    pub store: &'a Store<'a>,
    pub mq: &'a RabbitMq<'a>,
    pub queue: &'a dyn TaskQueue,
    pub clock: &'a dyn Clock,
    /// Messages read per management API call.
    pub batch: usize,
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
        for (g, h) in bound_hooks(self.store.kv)? {
            let hook = match (HookGroupId::new(&g), HookId::new(&h)) {
                (Ok(gid), Ok(hid)) => self.store.hook(&gid, &hid)?,
                _ => None,
            };
            let Some(hook) = hook.filter(|hook| !hook.definition.bindings.is_empty()) else {
                // The index outlived the hook (or its bindings): repair it.
                unindex_hook(self.store.kv, &g, &h)?;
                continue;
            };
            let queue = queue_name(self.namespace(), &g, &h);
            wanted.insert(queue.clone());
            match sync_hook(self.store, self.mq, self.clock.now(), &hook, existing.contains(&queue), report) {
                Ok(()) => to_drain.push((g, h)),
                Err(e) => report.errors.push(format!("{g}/{h}: {e}")),
            }
        }
        for queue in existing.difference(&wanted) {
            let Some((g, h)) = queue[prefix.len()..].split_once('/') else { continue };
            // A queue is deleted only if its hook is really gone (or unbound): the index
            // may have lost the hook's entry (racing writes), and then it is repaired.
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
                report.errors.push(format!("{queue}: {e}"));
            }
        }
        report.queues = to_drain.len();
        Ok(to_drain)
    }

    fn handle(&self, g: &str, h: &str, message: &Message, report: &mut RelayReport) -> Result<(), StorageError> {
        let identity = relay_identity(message);
        let inbound = Inbound { exchange: &message.exchange, routing_key: &message.routing_key, identity: &identity, body: &message.payload };
        let now = self.clock.now();
        let outcome = handle_message(self.store, self.queue, g, h, &inbound, now)?;
        let hook = match (&outcome, HookGroupId::new(g), HookId::new(h)) {
            (MessageOutcome::Fired(FireOutcome::RenderFailed(_) | FireOutcome::QueueFailed(_)), Ok(gid), Ok(hid)) => self.store.hook(&gid, &hid)?,
            _ => None,
        };
        report.count(hook.as_ref(), &message_task_id(g, h, &identity), &outcome, now);
        Ok(())
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
            for message in &batch {
                // Lost the lease (this batch outlived it): stop before taking anything;
                // what was fired has its marker, the rest stays queued.
                if !lease.keep(self)? {
                    return Ok(());
                }
                self.handle(g, h, message, report)?;
                handled.insert(relay_identity(message));
            }
            let mut unseen: std::collections::VecDeque<Message> =
                self.mq.take(&queue, batch.len())?.into_iter().filter(|m| !handled.contains(&relay_identity(m))).collect();
            while let Some(message) = unseen.front() {
                report.out_of_order += 1;
                if let Err(e) = self.handle(g, h, message, report) {
                    // Taken but not fired: back into the queue rather than lost.
                    for m in &unseen {
                        if let Err(requeue) = self.mq.requeue(&queue, m) {
                            report.errors.push(format!("{g}/{h}: a taken message could not be requeued: {requeue}"));
                        }
                    }
                    return Err(e.into());
                }
                unseen.pop_front();
            }
            if batch.len() < self.batch {
                break;
            }
        }
        Ok(())
    }

    /// One run: reconcile, then drain every hook's queue, within `budget`; nothing if
    /// another relay is running (see `Lease`).
    pub fn run(&self, budget: chrono::Duration) -> Result<RelayReport, RelayError> {
        let until = self.clock.now() + budget;
        let mut report = RelayReport::default();
        let Some(lease) = Lease::acquire(self)? else {
            report.busy = true;
            return Ok(report);
        };
        for (g, h) in self.reconcile(&mut report)? {
            if !lease.renew(self)? {
                report.errors.push("the relay lease was lost to another relay; stopping".into());
                break;
            }
            if let Err(e) = self.drain(&lease, &g, &h, until, &mut report) {
                report.errors.push(format!("{g}/{h}: {e}"));
            }
        }
        lease.release(self)?;
        Ok(report)
    }
}

/// One relay at a time (cron on several hosts, an HTTP nudge during a cron run), so two
/// relays do not fire the same peeked batch side by side.
///
/// Spin's key-value interface has no compare-and-swap, so the lease is claimed by
/// writing it, letting concurrent claimants' writes land (`SETTLE`), and reading it back:
/// the store keeps one last write, and only its writer goes on. A relay that finds a live
/// lease of another does not write at all. The lease is short and renewed as the relay
/// works, so a killed relay blocks others for at most `TTL_MS`. Should the lease ever
/// fail, derived taskIds and message markers still keep tasks single.
struct Lease {
    owner: String,
    /// When the lease was last written (ms), so `keep` renews it every `RENEW_MS`.
    renewed: std::cell::Cell<i64>,
}

const LEASE_KEY: &str = "relay/lease";

impl Lease {
    const TTL_MS: i64 = 10_000;
    const RENEW_MS: i64 = 2_000;
    const SETTLE: std::time::Duration = std::time::Duration::from_millis(50);

    fn read(relay: &Relay<'_>) -> Result<Option<(String, i64)>, StorageError> {
        let Some(bytes) = relay.store.kv.get(LEASE_KEY)? else { return Ok(None) };
        let text = String::from_utf8_lossy(&bytes);
        Ok(text.split_once(' ').and_then(|(owner, until)| Some((owner.to_string(), until.parse().ok()?))))
    }

    fn write(&self, relay: &Relay<'_>) -> Result<(), StorageError> {
        let now = relay.clock.now().timestamp_millis();
        self.renewed.set(now);
        Ok(relay.store.kv.set(LEASE_KEY, format!("{} {}", self.owner, now + Self::TTL_MS).as_bytes())?)
    }

    /// Renews the lease if `RENEW_MS` have passed since it was last written (called per
    /// message, so a slow batch keeps it); `false` if it was lost meanwhile.
    fn keep(&self, relay: &Relay<'_>) -> Result<bool, StorageError> {
        if relay.clock.now().timestamp_millis() - self.renewed.get() < Self::RENEW_MS {
            return Ok(true);
        }
        self.renew(relay)
    }

    fn acquire(relay: &Relay<'_>) -> Result<Option<Lease>, StorageError> {
        if let Some((_, until)) = Self::read(relay)? {
            if until > relay.clock.now().timestamp_millis() {
                return Ok(None);
            }
        }
        let lease = Lease { owner: crate::ids::nice_slugid(), renewed: std::cell::Cell::new(0) };
        lease.write(relay)?;
        relay.mq.http.sleep(Self::SETTLE);
        Ok(match Self::read(relay)? {
            Some((owner, _)) if owner == lease.owner => Some(lease),
            _ => None,
        })
    }

    /// Extends the lease; `false` if another relay has taken it (ours had expired).
    fn renew(&self, relay: &Relay<'_>) -> Result<bool, StorageError> {
        match Self::read(relay)? {
            Some((owner, _)) if owner == self.owner => {
                self.write(relay)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn release(self, relay: &Relay<'_>) -> Result<(), StorageError> {
        if matches!(Self::read(relay)?, Some((owner, _)) if owner == self.owner) {
            relay.store.kv.delete(LEASE_KEY)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded_queue::EmbeddedQueue;
    use crate::fire::EmbeddedTaskQueue;
    use crate::model::{HookDefinition, HookMetadata};
    use crate::platform::MemoryStore;
    use crate::scopes::{Role, Roles};
    use serde_json::json;

    fn key() -> crate::sealed::SealingKey {
        crate::sealed::SealingKey::from_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap()
    }

    fn hook(h: &str, bindings: &[(&str, &str)], schema: Value) -> HookRecord {
        HookRecord {
            definition: HookDefinition {
                hook_group_id: "g".into(),
                hook_id: h.into(),
                metadata: HookMetadata { name: "n".into(), description: "d".into(), owner: "o@example.com".into(), email_on_error: false },
                task: json!({"taskQueueId": "p/w", "payload": {"got": {"$eval": "payload"}},
                             "metadata": {"name": "n", "description": "", "owner": "o@example.com", "source": "https://example.com"}})
                    .as_object().unwrap().clone(),
                bindings: bindings.iter().map(|(e, p)| Binding { exchange: e.to_string(), routing_key_pattern: p.to_string() }).collect(),
                schedule: vec![],
                trigger_schema: schema,
            },
            trigger_token: "t".into(),
            next_task_id: "fN1SmgV0T8WXX3LhKs2Gyw".into(),
            next_scheduled_date: crate::model::FAR_FUTURE.into(),
        }
    }

    #[test]
    fn a_taskcluster_github_message_is_the_same_message_as_its_webhook_delivery() {
        let via_pulse = Message {
            exchange: "exchange/taskcluster-github/v1/push".into(),
            routing_key: "primary.o.r".into(),
            payload: br#"{"eventId": "d-1", "body": {}}"#.to_vec(),
            properties: json!({}),
            redelivered: false,
        };
        assert_eq!(relay_identity(&via_pulse), github_identity("d-1"));
        let other = Message { exchange: "exchange/other/v1/push".into(), ..via_pulse.clone() };
        assert_eq!(relay_identity(&other), other.identity());
    }

    #[test]
    fn the_index_follows_bindings_and_is_rebuilt_from_the_hooks() {
        let kv = MemoryStore::default();
        let key = key();
        let store = Store { kv: &kv, key: &key };
        let a = hook("a/b", &[("exchange/x", "#"), ("exchange/x", "k.*"), ("exchange/y", "z")], json!({}));
        index_bindings(&kv, "g", "a/b", &[], &a.definition.bindings).unwrap();
        index_bindings(&kv, "g", "other", &[], &hook("other", &[("exchange/x", "q")], json!({})).definition.bindings).unwrap();
        assert_eq!(
            hooks_bound_to(&kv, "exchange/x").unwrap(),
            vec![("g".into(), "a/b".into(), vec!["#".into(), "k.*".into()]), ("g".into(), "other".into(), vec!["q".into()])]
        );
        assert_eq!(bound_hooks(&kv).unwrap(), BTreeSet::from([("g".to_string(), "a/b".to_string()), ("g".to_string(), "other".to_string())]));
        let fewer = hook("a/b", &[("exchange/x", "#")], json!({}));
        index_bindings(&kv, "g", "a/b", &a.definition.bindings, &fewer.definition.bindings).unwrap();
        assert!(hooks_bound_to(&kv, "exchange/y").unwrap().is_empty());
        assert_eq!(kv.get(&binding_key("exchange/y")).unwrap(), None, "an empty document goes");
        // Lost and stale entries (racing writes, crashes): rebuilt from the stored hooks.
        store.put_hook(&fewer).unwrap();
        kv.delete(&binding_key("exchange/x")).unwrap();
        kv.set(&binding_key("exchange/z"), br##"{"g/gone": ["#"]}"##).unwrap();
        assert_eq!(rebuild_binding_index(&store).unwrap(), 1);
        assert_eq!(hooks_bound_to(&kv, "exchange/x").unwrap(), vec![("g".into(), "a/b".into(), vec!["#".into()])]);
        assert!(hooks_bound_to(&kv, "exchange/z").unwrap().is_empty());
        unindex_hook(&kv, "g", "a/b").unwrap();
        assert!(bound_hooks(&kv).unwrap().is_empty());
    }

    #[test]
    fn a_message_fires_once_with_a_derived_task_id_and_bad_bodies_are_discarded_visibly() {
        let kv = MemoryStore::default();
        let key = key();
        let store = Store { kv: &kv, key: &key };
        let roles = Roles::new(vec![Role { role_id: "hook-id:g/*".into(), scopes: vec!["queue:*".into()] }]);
        let queue = EmbeddedTaskQueue { queue: EmbeddedQueue { kv: &kv }, roles: &roles };
        let schema = json!({"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}});
        store.put_hook(&hook("h", &[("exchange/x", "#")], schema)).unwrap();
        let now: DateTime<Utc> = "2026-11-24T10:00:00Z".parse().unwrap();
        let msg = |id: &'static str, body: &'static [u8]| Inbound { exchange: "exchange/x", routing_key: "a.b", identity: id, body };

        let first = handle_message(&store, &queue, "g", "h", &msg("m1", br#"{"n": 1}"#), now).unwrap();
        let task_id = message_task_id("g", "h", "m1");
        assert_eq!(first, MessageOutcome::Fired(FireOutcome::Created { task_id: task_id.clone() }));
        assert_eq!(EmbeddedQueue { kv: &kv }.task(&task_id).unwrap().unwrap()["payload"]["got"], json!({"n": 1}));
        let again = handle_message(&store, &queue, "g", "h", &msg("m1", br#"{"n": 1}"#), now + chrono::Duration::seconds(5)).unwrap();
        assert_eq!(again, MessageOutcome::AlreadyHandled);

        // A relay that died after the fire was recorded but before its marker said done:
        // the redelivery fires at the pending time, so the Queue sees the same task and
        // the lastFires entry is overwritten, not doubled.
        kv.set(&seen_key("g", "h", "m1"), format!("pending:{}", now.timestamp_millis()).as_bytes()).unwrap();
        let redelivered = handle_message(&store, &queue, "g", "h", &msg("m1", br#"{"n": 1}"#), now + chrono::Duration::seconds(9)).unwrap();
        assert_eq!(redelivered, MessageOutcome::Fired(FireOutcome::Created { task_id: task_id.clone() }));
        let (fires, _) = store.fires(&HookGroupId::new("g").unwrap(), &HookId::new("h").unwrap(), 0, 10).unwrap();
        assert_eq!(fires.len(), 1, "{fires:?}");
        // A pending marker too old to reuse: fired anew (the Queue's 409 counts as created).
        kv.set(&seen_key("g", "h", "m1"), format!("pending:{}", now.timestamp_millis()).as_bytes()).unwrap();
        let late = handle_message(&store, &queue, "g", "h", &msg("m1", br#"{"n": 1}"#), now + chrono::Duration::minutes(11)).unwrap();
        assert_eq!(late, MessageOutcome::Fired(FireOutcome::Created { task_id: task_id.clone() }));

        assert!(matches!(handle_message(&store, &queue, "g", "h", &msg("m2", br#"{"n": "x"}"#), now).unwrap(), MessageOutcome::Discarded(r) if r.starts_with("triggerSchema")));
        assert!(matches!(handle_message(&store, &queue, "g", "h", &msg("m3", b"not json"), now).unwrap(), MessageOutcome::Discarded(r) if r.contains("not JSON")));
        let status = pulse_status(&kv, "g", "h").unwrap();
        assert_eq!(status["discarded"]["count"], 2);
        assert_eq!(status["discarded"]["last"]["routingKey"], "a.b");
        assert_eq!(handle_message(&store, &queue, "g", "gone", &msg("m4", b"{}"), now).unwrap(), MessageOutcome::NoHook);

        // Markers older than the retention go; recent ones stay.
        assert_eq!(prune_seen(&kv, now + chrono::Duration::days(1)).unwrap(), 0);
        assert_eq!(prune_seen(&kv, now + chrono::Duration::days(SEEN_RETENTION_DAYS + 1)).unwrap(), 1);
    }
}
