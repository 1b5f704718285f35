//! Audit history, as Taskcluster keeps it (`services/auth/src/api.js`: `getEntityHistory`,
//! `listAuditHistory`): every create, update and delete of a hook, role or client, and
//! every token reset, with the caller's clientId, the time and the action, kept
//! [`RETENTION_DAYS`] days.
//!
//! Each action is appended to two streams: the entity's (`e/<entityType>/<entityId>`) and
//! the caller's (`c/<clientId>`). A stream is a counter (`auditseq/<stream>`, allocated
//! with `increment`, so concurrent writers never collide), one entry per number
//! (`audit/<stream>/<n>`), and a floor (`auditfloor/<stream>`) below which the daily pass
//! has pruned. A page is read by number, oldest first, as upstream orders it: no listing.
//!
//! The entity's entry also keeps what changed: the definition before and after (for a
//! client: description, scopes, expiry, flags; never its access token), served by the
//! extension `GET /api/taskhooks/v1/audit/<entityType>/<entityId>`; upstream's methods
//! answer only its five fields.

use crate::cas;
use crate::layout;
use crate::platform::KeyValue;
use crate::store::StorageError;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How long entries are kept (upstream's `auditHistoryRetention`).
pub const RETENTION_DAYS: i64 = 30;
/// The most entries one page holds (upstream's `maxLimit`).
pub const MAX_LIMIT: usize = 1000;

/// The entity types upstream's `getEntityHistory` takes, of which taskhooks has three.
pub const ENTITY_TYPES: [&str; 5] = ["client", "role", "secret", "hook", "worker-pool"];

/// Upstream's action types (`AUDIT_ENTRY_TYPE`), and the trigger token's reset, which
/// upstream does not record.
pub mod action {
    pub const CREATED: &str = "created";
    pub const UPDATED: &str = "updated";
    pub const DELETED: &str = "deleted";
    pub const ACCESS_TOKEN_RESET: &str = "access token reset";
    pub const TRIGGER_TOKEN_RESET: &str = "trigger token reset";
}

/// The clientId recorded for what the service does itself: a cron project's hooks
/// brought in line with its `.cron.yml`.
pub const SERVICE_CLIENT_ID: &str = "static/taskhooks/cron";

/// One recorded action, as upstream serves it, plus what changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub client_id: String,
    pub action_type: String,
    pub created: String,
    pub entity_id: String,
    pub entity_type: String,
    /// The entity before and after (absent for a token reset, and in a client's stream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

impl Entry {
    /// Upstream's five fields only (`get-entity-history-response.json`).
    pub fn upstream(&self) -> Value {
        serde_json::json!({
            "clientId": self.client_id, "actionType": self.action_type, "created": self.created,
            "entityId": self.entity_id, "entityType": self.entity_type,
        })
    }
}

/// A stream's name: an entity's, or a caller's.
pub fn entity_stream(entity_type: &str, entity_id: &str) -> String {
    format!("e/{}/{}", layout::part(entity_type), layout::part(entity_id))
}

pub fn client_stream(client_id: &str) -> String {
    format!("c/{}", layout::part(client_id))
}

/// Records one action. An anonymous caller cannot write, so `client_id` is always a
/// client's (or [`SERVICE_CLIENT_ID`]).
pub fn record(kv: &dyn KeyValue, entry: &Entry, now: DateTime<Utc>) -> Result<(), StorageError> {
    let brief = Entry { before: None, after: None, ..entry.clone() };
    for (stream, value) in [(entity_stream(&entry.entity_type, &entry.entity_id), entry), (client_stream(&entry.client_id), &brief)] {
        let n = kv.increment(&layout::audit_seq(&stream), 1)?;
        kv.set(&layout::audit_entry(&stream, n), &serde_json::to_vec(value).expect("serialises"))?;
        crate::expiry::schedule(kv, now + Duration::days(RETENTION_DAYS), &crate::expiry::Expiring::Audit { stream, seq: n })?;
    }
    Ok(())
}

/// A page of a stream, oldest first, from the continuation point `from` (a number the
/// previous page gave), and where the next page starts, if anything may follow.
pub fn page(kv: &dyn KeyValue, stream: &str, from: Option<i64>, limit: usize) -> Result<(Vec<Entry>, Option<i64>), StorageError> {
    let last = cas::read_counter(kv, &layout::audit_seq(stream))?;
    let floor: i64 = cas::read_json::<Option<i64>>(kv, &layout::audit_floor(stream))?.unwrap_or(1);
    let mut at = from.unwrap_or(1).max(floor);
    let mut out = Vec::new();
    // Entries pruned above the floor (a daily pass partway) are skipped; each round reads
    // at most what the page still needs.
    while at <= last && out.len() < limit {
        let end = last.min(at.saturating_add((limit - out.len()) as i64 - 1));
        let keys: Vec<String> = (at..=end).map(|n| layout::audit_entry(stream, n)).collect();
        out.extend(cas::get_many_json::<Entry>(kv, &keys)?.into_iter().flatten());
        at = end + 1;
    }
    Ok((out, (at <= last).then_some(at)))
}

/// The daily pass's part: deletes the stream's entry `seq` if it is older than the
/// retention, and raises the floor past it. Returns whether it deleted it.
pub fn expire(kv: &dyn KeyValue, stream: &str, seq: i64, now: DateTime<Utc>) -> Result<bool, StorageError> {
    let key = layout::audit_entry(stream, seq);
    let Some(entry) = cas::read_json_opt::<Entry>(kv, &key)? else { return Ok(false) };
    let cutoff = now - Duration::days(RETENTION_DAYS);
    if crate::render::parse_time_ms(&entry.created).is_some_and(|t| t > cutoff.timestamp_millis()) {
        return Ok(false);
    }
    kv.delete(&key)?;
    cas::update_json(kv, &layout::audit_floor(stream), |floor: &mut Option<i64>| {
        if floor.unwrap_or(1) <= seq {
            *floor = Some(seq + 1);
            true
        } else {
            false
        }
    })?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::MemoryStore;
    use serde_json::json;

    fn entry(client: &str, action: &str, id: &str, at: DateTime<Utc>) -> Entry {
        Entry {
            client_id: client.into(),
            action_type: action.into(),
            created: crate::render::iso_time(at),
            entity_id: id.into(),
            entity_type: "hook".into(),
            before: None,
            after: Some(json!({"metadata": {"name": id}})),
        }
    }

    #[test]
    fn actions_are_kept_per_entity_and_per_caller_and_paged_oldest_first() {
        let kv = MemoryStore::default();
        let t0: DateTime<Utc> = "2026-12-01T00:00:00Z".parse().unwrap();
        for i in 0..5 {
            let who = if i % 2 == 0 { "alice" } else { "bob" };
            record(&kv, &entry(who, if i == 0 { action::CREATED } else { action::UPDATED }, "g/h", t0 + Duration::minutes(i)), t0).unwrap();
        }
        record(&kv, &entry("alice", action::CREATED, "g/other", t0 + Duration::minutes(9)), t0).unwrap();
        let hook = entity_stream("hook", "g/h");
        let (first, next) = page(&kv, &hook, None, 2).unwrap();
        assert_eq!(first.iter().map(|e| e.client_id.as_str()).collect::<Vec<_>>(), ["alice", "bob"]);
        assert_eq!(first[0].action_type, "created");
        let (rest, end) = page(&kv, &hook, next, 10).unwrap();
        assert_eq!((rest.len(), end), (3, None));
        let (alice, _) = page(&kv, &client_stream("alice"), None, 10).unwrap();
        assert_eq!(alice.iter().map(|e| e.entity_id.as_str()).collect::<Vec<_>>(), ["g/h", "g/h", "g/h", "g/other"]);
        assert!(alice.iter().all(|e| e.after.is_none()), "the caller's stream holds no definitions");
        assert_eq!(first[0].upstream().as_object().unwrap().len(), 5);
        // "g/h" and "g%2Fh" are different entities.
        assert!(page(&kv, &entity_stream("hook", "g%2Fh"), None, 10).unwrap().0.is_empty());
    }

    #[test]
    fn entries_go_after_thirty_days_and_pages_start_past_them() {
        let kv = MemoryStore::default();
        let t0: DateTime<Utc> = "2026-10-01T00:00:00Z".parse().unwrap();
        for i in 0..3 {
            record(&kv, &entry("alice", action::UPDATED, "g/h", t0 + Duration::days(i * 20)), t0 + Duration::days(i * 20)).unwrap();
        }
        let hook = entity_stream("hook", "g/h");
        let now = t0 + Duration::days(45);
        assert!(expire(&kv, &hook, 1, now).unwrap(), "45 days old");
        assert!(!expire(&kv, &hook, 2, now).unwrap(), "25 days old: kept");
        let (left, _) = page(&kv, &hook, None, 10).unwrap();
        assert_eq!(left.len(), 2);
        assert_eq!(cas::read_json::<Option<i64>>(&kv, &layout::audit_floor(&hook)).unwrap(), Some(2));
    }
}
