//! The timer's daily pass (the first tick of each UTC day): what expired goes, read from
//! the expiry buckets of the days since the last pass (`crate::expiry`), so its cost is
//! what expires, not what the store holds: fires older than a year, embedded-queue tasks
//! past their `expires`, and Pulse message markers older than a week.

use crate::embedded_queue::EmbeddedQueue;
use crate::expiry::{self, Expiring};
use crate::layout;
use crate::relay::message::expire_seen;
use crate::store::{StorageError, Store, FIRE_RETENTION_DAYS};
use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DailyReport {
    /// Days whose buckets were pruned.
    pub days: usize,
    /// Entries read from them.
    pub entries: usize,
    pub fires: usize,
    pub tasks: usize,
    pub markers: usize,
    pub audit: usize,
    pub counters: usize,
}

/// Runs the pass if it has not run today; `None` if it had.
pub fn run_once_a_day(store: &Store<'_>, now: DateTime<Utc>) -> Result<Option<DailyReport>, StorageError> {
    let today = expiry::day_of(now);
    if store.kv.get(layout::TIMER_LAST_DAILY)?.as_deref() == Some(today.as_bytes()) {
        return Ok(None);
    }
    let report = prune(store, now)?;
    store.kv.set(layout::TIMER_LAST_DAILY, today.as_bytes())?;
    Ok(Some(report))
}

/// Prunes every bucket that is due at `now`. Safe to run twice or to kill: each deletion
/// is checked against the record, and a bucket goes only after all its entries.
pub fn prune(store: &Store<'_>, now: DateTime<Utc>) -> Result<DailyReport, StorageError> {
    let mut report = DailyReport::default();
    let queue = EmbeddedQueue { kv: store.kv };
    let fire_cutoff = now - Duration::days(FIRE_RETENTION_DAYS);
    let today = expiry::day_of(now);
    if store.kv.get(layout::EXPIRY_CURSOR)?.is_none() {
        // A new store: every bucket is in the future of its first pass.
        store.kv.set(layout::EXPIRY_CURSOR, today.as_bytes())?;
    }
    for day in expiry::due_days(store.kv, now)? {
        // Today's bucket fills all day; it is pruned tomorrow.
        if day == today {
            break;
        }
        // A bucket's fires are handled per hook: one batch read and one floor update each.
        let mut fires: std::collections::BTreeMap<(String, String), Vec<i64>> = Default::default();
        for entry in expiry::bucket(store.kv, &day)? {
            report.entries += 1;
            match entry {
                Expiring::Fire { hook_group_id, hook_id, seq } => fires.entry((hook_group_id, hook_id)).or_default().push(seq),
                Expiring::Task { task_id, task_group_id, member } => report.tasks += usize::from(queue.expire_task(&task_id, &task_group_id, member, now)?),
                Expiring::Seen { key } => report.markers += usize::from(expire_seen(store.kv, &key, now)?),
                Expiring::Audit { stream, seq } => report.audit += usize::from(crate::audit::expire(store.kv, &stream, seq, now)?),
                Expiring::Counter { key } => report.counters += usize::from(crate::fire_stats::expire(store.kv, &key, now)?),
            }
        }
        for ((g, h), seqs) in fires {
            for chunk in seqs.chunks(500) {
                report.fires += store.expire_fires(&g, &h, chunk, fire_cutoff)?;
            }
        }
        expiry::drop_bucket(store.kv, &day)?;
        expiry::advance_cursor(store.kv, &day)?;
        report.days += 1;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FireResult, LastFire};
    use crate::platform::{KeyValue, MemoryStore};
    use crate::render::FiredBy;

    #[test]
    fn the_pass_deletes_what_expired_and_reads_only_its_buckets() {
        let kv = MemoryStore::default();
        let key = crate::sealed::SealingKey::from_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap();
        let store = Store { kv: &kv, key: &key };
        let start: DateTime<Utc> = "2025-11-20T10:00:00Z".parse().unwrap();
        kv.set(layout::EXPIRY_CURSOR, b"2025-11-20").unwrap();
        for (i, task_id) in ["a", "b", "c"].iter().enumerate() {
            let at = start + Duration::days(i as i64);
            let fire = LastFire {
                hook_group_id: "g".into(),
                hook_id: "h".into(),
                fired_by: FiredBy::TriggerHook,
                task_id: task_id.to_string(),
                task_create_time: crate::render::iso_time(at),
                result: FireResult::Success,
                task_state: "unknown".into(),
                error: String::new(),
            };
            store.record_fire(&fire, at.timestamp_millis(), None).unwrap();
        }
        // The first two fires' buckets are due; the third's is today's, pruned tomorrow.
        let now = start + Duration::days(FIRE_RETENTION_DAYS + 3) + Duration::hours(1);
        let report = prune(&store, now).unwrap();
        assert_eq!((report.fires, report.entries), (2, 2), "{report:?}");
        let (g, h) = (crate::ids::HookGroupId::new("g").unwrap(), crate::ids::HookId::new("h").unwrap());
        let (left, _) = store.fires(&g, &h, None, 10).unwrap();
        assert_eq!(left.iter().map(|f| f.task_id.as_str()).collect::<Vec<_>>(), ["c"]);
        assert_eq!(prune(&store, now).unwrap().entries, 0, "buckets go once pruned");
        assert!(run_once_a_day(&store, now).unwrap().is_some());
        assert!(run_once_a_day(&store, now).unwrap().is_none(), "once a day");
    }
}
