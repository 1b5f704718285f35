//! Expiry buckets: what expires on a day is appended to that day's bucket when it is
//! written, so the daily pass reads exactly what expires (not the store) and deletes it.
//!
//! A bucket is a counter (`expiryseq/<day>`, allocated with `increment`, so concurrent
//! writers never collide) and one entry per slot (`expiry/<day>/<n>`). Deleting is
//! checked against the record itself (its time, or its `expires`), so an entry that
//! outlived its record, or whose key was reused by a newer record, deletes nothing it
//! should not.

use crate::layout;
use crate::platform::KeyValue;
use crate::store::StorageError;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// One thing that expires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Expiring {
    /// A recorded fire (kept a year).
    #[serde(rename_all = "camelCase")]
    Fire { hook_group_id: String, hook_id: String, seq: i64 },
    /// An embedded-queue task and its task-group entry.
    #[serde(rename_all = "camelCase")]
    Task { task_id: String, task_group_id: String, member: i64 },
    /// A handled-message marker of the relay.
    #[serde(rename_all = "camelCase")]
    Seen { key: String },
    /// An audit entry (kept 30 days).
    #[serde(rename_all = "camelCase")]
    Audit { stream: String, seq: i64 },
    /// An hour's fire counter of a hook's charts (kept 31 days).
    #[serde(rename_all = "camelCase")]
    Counter { key: String },
}

pub fn day_of(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// Puts `what` in the bucket of the day of `at` (the first day on which it may go).
pub fn schedule(kv: &dyn KeyValue, at: DateTime<Utc>, what: &Expiring) -> Result<(), StorageError> {
    schedule_with(kv, at, what, Vec::new())
}

/// [`schedule`], writing `records` (what expires) in the same batch as the entry: one
/// write for both, and neither is stored without the other.
pub fn schedule_with(kv: &dyn KeyValue, at: DateTime<Utc>, what: &Expiring, mut records: Vec<(String, Vec<u8>)>) -> Result<(), StorageError> {
    // The day after: a bucket is pruned once its whole day has passed.
    let day = day_of(at + Duration::days(1));
    let n = kv.increment(&layout::expiry_seq(&day), 1)?;
    records.push((layout::expiry_entry(&day, n), serde_json::to_vec(what).expect("serialises")));
    if let [(key, value)] = records.as_slice() {
        kv.set(key, value)?;
    } else {
        kv.set_many(&records)?;
    }
    Ok(())
}

/// Everything in `day`'s bucket.
pub fn bucket(kv: &dyn KeyValue, day: &str) -> Result<Vec<Expiring>, StorageError> {
    let n = crate::cas::read_counter(kv, &layout::expiry_seq(day))?;
    let keys: Vec<String> = (1..=n).map(|i| layout::expiry_entry(day, i)).collect();
    let mut entries = Vec::new();
    for chunk in keys.chunks(500) {
        for value in crate::cas::get_many(kv, chunk)?.into_iter().flatten() {
            // An entry that does not parse is dropped with its bucket: it can only be
            // from a newer layout, whose own pass deals with it.
            if let Ok(e) = serde_json::from_slice(&value) {
                entries.push(e);
            }
        }
    }
    Ok(entries)
}

/// Drops `day`'s bucket once its entries are dealt with.
pub fn drop_bucket(kv: &dyn KeyValue, day: &str) -> Result<(), StorageError> {
    let n = crate::cas::read_counter(kv, &layout::expiry_seq(day))?;
    for i in 1..=n {
        kv.delete(&layout::expiry_entry(day, i))?;
    }
    kv.delete(&layout::expiry_seq(day))?;
    Ok(())
}

/// The days whose buckets are due at `now` and not yet pruned, oldest first; a store
/// that never pruned starts at today.
pub fn due_days(kv: &dyn KeyValue, now: DateTime<Utc>) -> Result<Vec<String>, StorageError> {
    let today = now.date_naive();
    let cursor = kv
        .get(layout::EXPIRY_CURSOR)?
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok())
        .unwrap_or(today);
    Ok(cursor.iter_days().take_while(|d| *d <= today).map(|d| d.format("%Y-%m-%d").to_string()).collect())
}

/// Records that every bucket before `day` is pruned.
pub fn advance_cursor(kv: &dyn KeyValue, day: &str) -> Result<(), StorageError> {
    let next = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok().and_then(|d| d.succ_opt()).map(|d| d.format("%Y-%m-%d").to_string());
    if let Some(next) = next {
        kv.set(layout::EXPIRY_CURSOR, next.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::MemoryStore;

    #[test]
    fn a_bucket_holds_what_expires_that_day_and_goes_once_pruned() {
        let kv = MemoryStore::default();
        let at: DateTime<Utc> = "2026-11-23T10:00:00Z".parse().unwrap();
        let seen = |k: &str| Expiring::Seen { key: k.into() };
        schedule(&kv, at, &seen("a")).unwrap();
        schedule(&kv, at + Duration::hours(1), &seen("b")).unwrap();
        schedule(&kv, at + Duration::days(1), &seen("c")).unwrap();
        assert_eq!(bucket(&kv, "2026-11-24").unwrap(), vec![seen("a"), seen("b")]);
        assert_eq!(due_days(&kv, at).unwrap(), ["2026-11-23"], "a new store starts today");
        advance_cursor(&kv, "2026-11-23").unwrap();
        assert_eq!(due_days(&kv, at + Duration::days(2)).unwrap(), ["2026-11-24", "2026-11-25"]);
        drop_bucket(&kv, "2026-11-24").unwrap();
        assert!(bucket(&kv, "2026-11-24").unwrap().is_empty());
        assert_eq!(kv.keys_with_prefix("expiry").len(), 3, "the 25th's entry and counter, and the cursor");
    }
}
