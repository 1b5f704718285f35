//! Handling one message for one hook, from RabbitMQ or a GitHub webhook (SPEC §9.3),
//! once: a marker per message (`pulse/seen/...`) says it is being handled or was, and
//! expires with the day's bucket a week on.

use super::status::record_discard;
use crate::cas;
use crate::expiry::{self, Expiring};
use crate::fire::{fire, FireOptions, FireOutcome, TaskQueue};
use crate::ids::{slugid_from_parts, HookGroupId, HookId};
use crate::layout;
use crate::platform::KeyValue;
use crate::pulse::Message;
use crate::render::{FireContext, FiredBy};
use crate::store::{StorageError, Store};
use crate::trigger_schema::TriggerSchema;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// How long a handled-message marker is kept: far longer than a message waits in a queue
/// drained every minute, and than GitHub offers a delivery for redelivery (3 days).
pub const SEEN_RETENTION_DAYS: i64 = 7;

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
    /// Fired; if the outcome `is_retryable`, the message is not handled yet: it must be
    /// delivered again.
    Fired(FireOutcome),
    /// Handled before (a redelivery): nothing done.
    AlreadyHandled,
    /// Not JSON, or refused by the hook's `triggerSchema`: no task, no lastFire, but
    /// counted on the hook's Pulse status with the reason (SPEC §9.3 step 2).
    Discarded(String),
    /// The hook is gone: the message is dropped.
    NoHook,
}

/// The identity a GitHub delivery has, whichever way it arrives.
pub fn github_identity(delivery: &str) -> String {
    slugid_from_parts(&[b"github", delivery.as_bytes()])
}

/// A message's identity for the relay: a message of Taskcluster's GitHub service carries
/// the delivery id as `eventId`, and is then the same message as that delivery posted to
/// `/api/github/v1/github`, so a deployment receiving both fires the hook once.
pub(super) fn relay_identity(message: &Message) -> String {
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

/// A marker: the message is being handled since `t` (`pending:<t ms>:<fire seq>`) or was
/// (`done:<t ms>:<fire seq>`); the sequence number is the lastFires record its fire uses.
struct Marker {
    done: bool,
    at_ms: i64,
    seq: Option<i64>,
}

fn parse_marker(bytes: &[u8]) -> Option<Marker> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut parts = text.split(':');
    let done = parts.next()? == "done";
    let at_ms = parts.next()?.parse().ok()?;
    Some(Marker { done, at_ms, seq: parts.next().and_then(|s| s.parse().ok()) })
}

fn marker(done: bool, at_ms: i64, seq: i64) -> Vec<u8> {
    format!("{}:{at_ms}:{seq}", if done { "done" } else { "pending" }).into_bytes()
}


/// A pending marker younger than this is re-fired with its original time, so the retry
/// renders the same task and overwrites the same lastFires entry; an older one is
/// re-fired now (its `created` would be outside the Queue's 15-minute window).
const PENDING_REUSE_MS: i64 = 10 * 60 * 1000;

/// SPEC §9.3: re-load the hook, validate the body against its `triggerSchema`, fire with
/// `{firedBy: "pulseMessage", payload: <body>}`.
///
/// The message's marker goes `pending:<t>` before the fire and `done:<t>` after it is
/// recorded (and stays pending when the Queue failed, for the message's next delivery). A crash in between leaves `pending:<t>`, and the redelivery fires again at
/// the same `t`: same taskId, same task (the Queue answers it as already created), and
/// the same lastFires key, so nothing is doubled even in lastFires.
pub fn handle_message(store: &Store<'_>, queue: &dyn TaskQueue, g: &str, h: &str, message: &Inbound<'_>, now: DateTime<Utc>) -> Result<MessageOutcome, StorageError> {
    handle_message_with(store, queue, None, g, h, message, now)
}

/// `handle_message`, with the source of the tasks of hooks that are not templates (cron
/// projects' jobs bound to exchanges, `crate::cron_source`).
pub fn handle_message_with(
    store: &Store<'_>,
    queue: &dyn TaskQueue,
    source: Option<&dyn crate::fire::TaskSource>,
    g: &str,
    h: &str,
    message: &Inbound<'_>,
    now: DateTime<Utc>,
) -> Result<MessageOutcome, StorageError> {
    let (Ok(gid), Ok(hid)) = (HookGroupId::new(g), HookId::new(h)) else { return Ok(MessageOutcome::NoHook) };
    let Some(hook) = store.hook(&gid, &hid)? else { return Ok(MessageOutcome::NoHook) };
    let seen = layout::pulse_seen(g, h, message.identity);
    let previous = store.kv.get(&seen)?.as_deref().and_then(parse_marker);
    let (at, seq) = match previous {
        Some(Marker { done: true, .. }) => return Ok(MessageOutcome::AlreadyHandled),
        Some(Marker { at_ms, seq, .. }) if now.timestamp_millis() - at_ms < PENDING_REUSE_MS => (DateTime::from_timestamp_millis(at_ms).unwrap_or(now), seq),
        Some(Marker { seq, .. }) => (now, seq),
        None => (now, None),
    };
    let payload: Value = match serde_json::from_slice(message.body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return discard(store, g, h, message, "the message body is not a JSON object", now),
        Err(e) => return discard(store, g, h, message, &format!("the message body is not JSON: {e}"), now),
    };
    if let Err(e) = TriggerSchema::compile_checked(&hook.definition.trigger_schema).and_then(|s| s.validate(&payload)) {
        crate::metrics::trigger_schema_rejection(store.kv, "pulseMessage");
        return discard(store, g, h, message, &format!("triggerSchema: {e}"), now);
    }
    let seq = match seq {
        Some(seq) => seq,
        None => store.next_fire_seq(g, h)?,
    };
    // A concurrent handler of the same message that finished first wins.
    let pending = marker(false, at.timestamp_millis(), seq);
    let claimed = cas::update(store.kv, &seen, |current| match current.and_then(parse_marker) {
        Some(Marker { done: true, .. }) => (None, false),
        _ => (Some(pending.clone()), true),
    })?;
    if !claimed {
        return Ok(MessageOutcome::AlreadyHandled);
    }
    if previous.is_none() {
        expiry::schedule(store.kv, now + chrono::Duration::days(SEEN_RETENTION_DAYS), &Expiring::Seen { key: seen.clone() })?;
    }
    let ctx = FireContext { fired_by: FiredBy::PulseMessage, payload: Some(payload), client_id: None };
    let task_id = message_task_id(g, h, message.identity);
    let options = FireOptions { conflict_means_created: true, record_at: Some(seq), source, ..FireOptions::default() };
    let outcome = fire(store, queue, &hook, &ctx, &task_id, at, options)?;
    // The Queue failed (5xx, no answer): the marker stays pending, so the message's next
    // delivery fires again with the same taskId and replaces this record.
    if !outcome.is_retryable() {
        store.kv.set(&seen, &marker(true, at.timestamp_millis(), seq))?;
    }
    Ok(MessageOutcome::Fired(outcome))
}

fn discard(store: &Store<'_>, g: &str, h: &str, message: &Inbound<'_>, reason: &str, now: DateTime<Utc>) -> Result<MessageOutcome, StorageError> {
    record_discard(store.kv, g, h, message, reason, now)?;
    Ok(MessageOutcome::Discarded(reason.to_string()))
}

/// The daily pass's part for one marker: deleted once older than the retention.
pub fn expire_seen(kv: &dyn KeyValue, key: &str, now: DateTime<Utc>) -> Result<bool, StorageError> {
    let cutoff = (now - chrono::Duration::days(SEEN_RETENTION_DAYS)).timestamp_millis();
    let old = kv.get(key)?.as_deref().and_then(parse_marker).is_none_or(|m| m.at_ms < cutoff);
    if old {
        kv.delete(key)?;
    }
    Ok(old)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded_queue::EmbeddedQueue;
    use crate::fire::EmbeddedTaskQueue;
    use crate::model::{Binding, HookDefinition, HookMetadata, HookRecord};
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
    fn a_message_fires_once_with_a_derived_task_id_and_bad_bodies_are_discarded_visibly() {
        let kv = MemoryStore::default();
        let key = key();
        let store = Store { kv: &kv, key: &key };
        let roles = Roles::new(vec![Role { role_id: "hook-id:g/*".into(), scopes: vec!["queue:*".into()] }]);
        let queue = EmbeddedTaskQueue { queue: EmbeddedQueue { kv: &kv }, roles: &roles };
        let schema = json!({"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}});
        store.create_hook(&hook("h", &[("exchange/x", "#")], schema)).unwrap();
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
        kv.set(&layout::pulse_seen("g", "h", "m1"), format!("pending:{}:1", now.timestamp_millis()).as_bytes()).unwrap();
        let redelivered = handle_message(&store, &queue, "g", "h", &msg("m1", br#"{"n": 1}"#), now + chrono::Duration::seconds(9)).unwrap();
        assert_eq!(redelivered, MessageOutcome::Fired(FireOutcome::Created { task_id: task_id.clone() }));
        let (fires, _) = store.fires(&HookGroupId::new("g").unwrap(), &HookId::new("h").unwrap(), None, 10).unwrap();
        assert_eq!(fires.len(), 1, "{fires:?}");
        // A pending marker too old to reuse: fired anew (the Queue's 409 counts as created).
        kv.set(&layout::pulse_seen("g", "h", "m1"), format!("pending:{}:1", now.timestamp_millis()).as_bytes()).unwrap();
        let late = handle_message(&store, &queue, "g", "h", &msg("m1", br#"{"n": 1}"#), now + chrono::Duration::minutes(11)).unwrap();
        assert_eq!(late, MessageOutcome::Fired(FireOutcome::Created { task_id: task_id.clone() }));

        assert!(matches!(handle_message(&store, &queue, "g", "h", &msg("m2", br#"{"n": "x"}"#), now).unwrap(), MessageOutcome::Discarded(r) if r.starts_with("triggerSchema")));
        assert!(matches!(handle_message(&store, &queue, "g", "h", &msg("m3", b"not json"), now).unwrap(), MessageOutcome::Discarded(r) if r.contains("not JSON")));
        let status = crate::relay::status::pulse_status(&kv, "g", "h").unwrap();
        assert_eq!(status["discarded"]["count"], 2);
        assert_eq!(status["discarded"]["last"]["routingKey"], "a.b");
        assert_eq!(handle_message(&store, &queue, "g", "gone", &msg("m4", b"{}"), now).unwrap(), MessageOutcome::NoHook);

        // Markers older than the retention go; recent ones stay.
        let seen = layout::pulse_seen("g", "h", "m1");
        assert!(!expire_seen(&kv, &seen, now + chrono::Duration::days(1)).unwrap());
        assert!(expire_seen(&kv, &seen, now + chrono::Duration::days(SEEN_RETENTION_DAYS + 1)).unwrap());
        assert_eq!(kv.get(&seen).unwrap(), None);
        let day = crate::expiry::day_of(now + chrono::Duration::days(SEEN_RETENTION_DAYS + 1));
        assert!(crate::expiry::bucket(&kv, &day).unwrap().contains(&Expiring::Seen { key: seen }), "scheduled to expire");
    }

    #[test]
    fn a_message_the_queue_did_not_take_stays_unhandled_and_its_retry_replaces_the_record() {
        struct Down;
        impl TaskQueue for Down {
            fn create_task(&self, _: &str, _: &serde_json::Map<String, Value>, _: &str, _: DateTime<Utc>, _: crate::fire::TaskIdOrigin) -> Result<(), crate::fire::QueueError> {
                Err(crate::fire::QueueError::Transport("connection reset".into()))
            }
        }
        let kv = MemoryStore::default();
        let key = key();
        let store = Store { kv: &kv, key: &key };
        let roles = Roles::new(vec![Role { role_id: "hook-id:g/*".into(), scopes: vec!["queue:*".into()] }]);
        let up = EmbeddedTaskQueue { queue: EmbeddedQueue { kv: &kv }, roles: &roles };
        store.create_hook(&hook("h", &[("exchange/x", "#")], json!({"type": "object"}))).unwrap();
        let now: DateTime<Utc> = "2026-11-24T10:00:00Z".parse().unwrap();
        let msg = Inbound { exchange: "exchange/x", routing_key: "a.b", identity: "m1", body: br#"{"n": 1}"# };
        let failed = handle_message(&store, &Down, "g", "h", &msg, now).unwrap();
        assert!(matches!(&failed, MessageOutcome::Fired(f) if f.is_retryable()), "{failed:?}");
        assert!(kv.get(&layout::pulse_seen("g", "h", "m1")).unwrap().unwrap().starts_with(b"pending:"));
        let again = handle_message(&store, &Down, "g", "h", &msg, now + chrono::Duration::minutes(20)).unwrap();
        assert!(matches!(again, MessageOutcome::Fired(_)), "not taken for a duplicate while unhandled");
        let done = handle_message(&store, &up, "g", "h", &msg, now + chrono::Duration::minutes(40)).unwrap();
        let task_id = message_task_id("g", "h", "m1");
        assert_eq!(done, MessageOutcome::Fired(FireOutcome::Created { task_id }));
        let (fires, _) = store.fires(&HookGroupId::new("g").unwrap(), &HookId::new("h").unwrap(), None, 10).unwrap();
        assert_eq!(fires.len(), 1, "three attempts, one record: {fires:?}");
        assert_eq!(fires[0].result, crate::model::FireResult::Success);
        assert_eq!(handle_message(&store, &up, "g", "h", &msg, now + chrono::Duration::minutes(41)).unwrap(), MessageOutcome::AlreadyHandled);
    }
}
