//! What the relay tells a hook's owner: each binding's state on the broker, and the
//! messages it discarded (`GET /api/taskhooks/v1/hooks/<g>/<h>/pulse`).

use super::message::Inbound;
use crate::cas;
use crate::layout;
use crate::platform::KeyValue;
use crate::render::iso_time;
use crate::store::StorageError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

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


/// How the last relay run went, as stored: what failed for the run as a whole (the
/// broker unreachable, the lease lost) and for each hook (its queue on the broker, the
/// Queue refusing or not answering its fire). Each hook's status shows the first and its
/// own, never another hook's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunOutcome {
    pub time: String,
    pub errors: Vec<String>,
    /// `hook_ref` -> the hook's first error in the run.
    pub hooks: std::collections::BTreeMap<String, String>,
}

pub(super) fn last_run(kv: &dyn KeyValue) -> Result<Option<RunOutcome>, StorageError> {
    cas::read_json_opt(kv, layout::RELAY_LAST_RUN)
}

pub(super) fn record_run(kv: &dyn KeyValue, outcome: &RunOutcome) -> Result<(), StorageError> {
    Ok(kv.set(layout::RELAY_LAST_RUN, &serde_json::to_vec(outcome).expect("serialises"))?)
}

/// The hook's Pulse state, with the last relay run's outcome for it (`lastRelayRun`:
/// `{time, ok, errors}`).
pub fn pulse_status(kv: &dyn KeyValue, g: &str, h: &str) -> Result<Value, StorageError> {
    let mut status: Value = cas::read_json::<Option<Value>>(kv, &layout::pulse_bindings(g, h))?.unwrap_or_else(|| serde_json::json!({"bindings": []}));
    status["discarded"] = cas::read_json::<Option<Value>>(kv, &layout::pulse_discards(g, h))?.unwrap_or_else(|| serde_json::json!({"count": 0}));
    if let Some(run) = last_run(kv)? {
        let mut errors = run.errors;
        errors.extend(run.hooks.get(&layout::hook_ref(g, h)).cloned());
        status["lastRelayRun"] = serde_json::json!({"time": run.time, "ok": errors.is_empty(), "errors": errors});
    }
    Ok(status)
}

/// Drops the hook's Pulse status (the hook was removed).
pub fn forget_state(kv: &dyn KeyValue, g: &str, h: &str) -> Result<(), StorageError> {
    kv.delete(&layout::pulse_bindings(g, h))?;
    kv.delete(&layout::pulse_discards(g, h))?;
    Ok(())
}

/// Counts a discarded message (the relay and GitHub deliveries may discard at once).
pub(super) fn record_discard(kv: &dyn KeyValue, g: &str, h: &str, message: &Inbound<'_>, reason: &str, now: DateTime<Utc>) -> Result<(), StorageError> {
    let last = serde_json::json!({
        "time": iso_time(now), "exchange": message.exchange, "routingKey": message.routing_key, "reason": reason,
    });
    cas::update_json(kv, &layout::pulse_discards(g, h), |d: &mut Discards| {
        d.count += 1;
        d.last = Some(last.clone());
    })
}

/// Stores the hook's binding states, if they changed (`since` says when).
pub(super) fn record_bindings(kv: &dyn KeyValue, g: &str, h: &str, queue: &str, states: &[BindingState], now: DateTime<Utc>) -> Result<(), StorageError> {
    let bindings = serde_json::to_value(states).expect("serialises");
    cas::update_json(kv, &layout::pulse_bindings(g, h), |status: &mut Option<Value>| {
        let unchanged = status.as_ref().is_some_and(|s| s["queue"] == queue && s["bindings"] == bindings);
        if !unchanged {
            *status = Some(serde_json::json!({"queue": queue, "bindings": bindings, "since": iso_time(now)}));
        }
    })
}
