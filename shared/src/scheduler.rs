//! The timer's tick (SPEC §7): fire every hook whose next scheduled date has come, once.
//!
//! Index: `due/<YYYY-MM-DDTHH>` holds the hooks whose next scheduled date falls in that
//! UTC hour, so a tick reads only the hours since the last tick (a point read each; Spin's
//! key-value store has no range scans) and then only the hooks in them. `timer/cursor` is
//! the first hour not yet finished.
//!
//! Exactly once without transactions: a scheduled fire uses the hook's `nextTaskId`, and a
//! 409 from the Queue on it counts as created. A tick that dies after creating the task
//! but before storing the next `nextTaskId` leaves the hook due, and the next tick's
//! attempt finds the task already there; two ticks at once both try the same taskId and
//! only one task exists. The new hour's index entry is written before the hook moves on,
//! and an hour's document is dropped only once all its hooks moved, so a crash anywhere
//! leaves every hook findable.
//!
//! An index document is read-modify-written, so two concurrent writes (a tick and an API
//! update, two API updates) can lose an entry; `rebuild_index` (run daily by the timer)
//! re-adds every scheduled hook.

use crate::fire::{fire, FireOptions, FireOutcome, TaskQueue};
use crate::ids::{nice_slugid, HookGroupId, HookId};
use crate::model::HookRecord;
use crate::notify::FailureReport;
use crate::platform::KeyValue;
use crate::render::{iso_time, FireContext, FiredBy};
use crate::schedule::Schedule;
use crate::store::{StorageError, Store};
use chrono::{DateTime, Duration, DurationRound, Utc};

const CURSOR_KEY: &str = "timer/cursor";
/// How far back the very first tick looks.
const FIRST_TICK_LOOKBACK_HOURS: i64 = 24;

fn hour_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::hours(1)).expect("an hour divides any UTC time")
}

fn bucket_key(hour: DateTime<Utc>) -> String {
    format!("due/{}", hour.format("%Y-%m-%dT%H"))
}

fn hook_ref(g: &str, h: &str) -> String {
    format!("{g}/{}", h.replace('%', "%25").replace('/', "%2F"))
}

fn parse_ref(r: &str) -> Option<(HookGroupId, HookId)> {
    let (g, h) = r.split_once('/')?;
    let h = percent_encoding::percent_decode_str(h).decode_utf8().ok()?;
    Some((HookGroupId::new(g).ok()?, HookId::new(&h).ok()?))
}

fn read_cursor(kv: &dyn KeyValue) -> Result<Option<DateTime<Utc>>, StorageError> {
    Ok(kv.get(CURSOR_KEY)?.and_then(|b| String::from_utf8(b).ok()).and_then(|s| s.parse::<DateTime<Utc>>().ok()))
}

fn read_bucket(kv: &dyn KeyValue, key: &str) -> Result<Vec<String>, StorageError> {
    match kv.get(key)? {
        None => Ok(vec![]),
        Some(b) => serde_json::from_slice(&b).map_err(|e| StorageError::Corrupt { key: key.into(), reason: e.to_string() }),
    }
}

fn parse_date(hook: &HookRecord) -> Option<DateTime<Utc>> {
    hook.next_scheduled_date.parse().ok()
}

/// Adds a scheduled hook to the index hour of its next scheduled date.
pub fn index_hook(kv: &dyn KeyValue, hook: &HookRecord) -> Result<(), StorageError> {
    index_many(kv, [hook])
}

/// Adds scheduled hooks to the index hours of their next dates, reading and writing each
/// hour's document once however many hooks go into it.
///
/// A hook already overdue for an hour the ticks have passed (the cursor) goes into the
/// cursor's hour, which the next tick reads: an entry lost and then repaired after its
/// hour still fires.
fn index_many<'h>(kv: &dyn KeyValue, hooks: impl IntoIterator<Item = &'h HookRecord>) -> Result<(), StorageError> {
    let floor = read_cursor(kv)?;
    let mut by_hour: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for hook in hooks {
        if let Some(next) = parse_date(hook).filter(|_| !hook.definition.schedule.is_empty()) {
            let hour = floor.map_or(hour_of(next), |floor| hour_of(next).max(floor));
            by_hour.entry(bucket_key(hour)).or_default().push(hook_ref(&hook.definition.hook_group_id, &hook.definition.hook_id));
        }
    }
    for (key, refs) in by_hour {
        let mut entries = read_bucket(kv, &key)?;
        let known: std::collections::HashSet<String> = entries.iter().cloned().collect();
        let before = entries.len();
        entries.extend(refs.into_iter().filter(|r| !known.contains(r)));
        if entries.len() != before {
            kv.set(&key, &serde_json::to_vec(&entries).expect("serialises"))?;
        }
    }
    Ok(())
}

/// Re-adds every scheduled hook to the index (repairs entries lost to concurrent writes).
pub fn rebuild_index(store: &Store<'_>) -> Result<usize, StorageError> {
    let mut hooks = Vec::new();
    for group in store.hook_groups()? {
        let Ok(g) = HookGroupId::new(&group) else { continue };
        hooks.extend(store.hooks_in_group(&g)?.into_iter().filter(|h| !h.definition.schedule.is_empty()));
    }
    index_many(store.kv, &hooks)?;
    Ok(hooks.len())
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TickReport {
    pub due: usize,
    pub fired: usize,
    pub declined: usize,
    pub failed: usize,
    /// Failed fires of hooks with `emailOnError`, for the caller to report.
    pub to_report: Vec<FailureReport>,
}

/// Fires every hook due at `now` (its next scheduled date ≤ `now`) once, then moves it
/// to its first slot after `now` with a fresh `nextTaskId`. Missed slots coalesce.
pub fn tick(store: &Store<'_>, queue: &dyn TaskQueue, now: DateTime<Utc>) -> Result<TickReport, StorageError> {
    let kv = store.kv;
    let now_hour = hour_of(now);
    let mut hour = match read_cursor(kv)? {
        Some(cursor) => cursor.min(now_hour),
        None => now_hour - Duration::hours(FIRST_TICK_LOOKBACK_HOURS),
    };
    let mut report = TickReport::default();
    while hour <= now_hour {
        let key = bucket_key(hour);
        let entries = read_bucket(kv, &key)?;
        let mut keep = Vec::new();
        let mut advanced = Vec::new();
        for entry in &entries {
            let Some((g, h)) = parse_ref(entry) else { continue };
            // Removed hooks, and hooks whose next date moved to a later hour (updated, or
            // already fired by a concurrent tick), leave this hour. An earlier date is an
            // overdue hook re-indexed here by a repair: due.
            let Some(hook) = store.hook(&g, &h)? else { continue };
            let Some(next) = parse_date(&hook) else { continue };
            if hook.definition.schedule.is_empty() || hour_of(next) > hour {
                continue;
            }
            if next > now {
                keep.push(entry.clone());
                continue;
            }
            report.due += 1;
            let ctx = FireContext { fired_by: FiredBy::Schedule, payload: None, client_id: None };
            let options = FireOptions { conflict_means_created: true, scheduled_for: Some(next) };
            match fire(store, queue, &hook, &ctx, &hook.next_task_id, now, options)? {
                FireOutcome::Created { .. } => report.fired += 1,
                FireOutcome::Declined => report.declined += 1,
                FireOutcome::RenderFailed(e) => failed(&mut report, &hook, e, now),
                FireOutcome::QueueFailed(e) => failed(&mut report, &hook, e.to_string(), now),
            }
            advanced.push(advance(hook, now)?);
        }
        // A hook that fires more often than hourly moves to a later slot of this same
        // hour: it stays in this hour's document (`keep`), which the write below stores.
        for hook in advanced.iter().filter(|h| parse_date(h).is_some_and(|next| hour_of(next) == hour)) {
            keep.push(hook_ref(&hook.definition.hook_group_id, &hook.definition.hook_id));
        }
        // The next hours' index entries first, then the hooks: a crash between the two
        // leaves hooks due in this hour, whose document is still there.
        index_many(kv, advanced.iter().filter(|h| parse_date(h).is_none_or(|next| hour_of(next) != hour)))?;
        for hook in &advanced {
            store_unless_changed(store, hook)?;
        }
        if hour < now_hour {
            // Everything in a past hour has moved on (or was re-indexed elsewhere first).
            kv.delete(&key)?;
        } else if keep != entries {
            kv.set(&key, &serde_json::to_vec(&keep).expect("serialises"))?;
        }
        hour += Duration::hours(1);
    }
    kv.set(CURSOR_KEY, iso_time(now_hour).as_bytes())?;
    Ok(report)
}

fn failed(report: &mut TickReport, hook: &HookRecord, error: String, now: DateTime<Utc>) {
    report.failed += 1;
    if hook.definition.metadata.email_on_error {
        report.to_report.push(FailureReport::new(hook, FiredBy::Schedule, &hook.next_task_id, now, &error));
    }
}

/// A fired hook moved to its first slot after `now`, with a fresh `nextTaskId`.
fn advance(mut hook: HookRecord, now: DateTime<Utc>) -> Result<HookRecord, StorageError> {
    let schedule = Schedule::parse(&hook.definition.schedule).map_err(|e| StorageError::Corrupt {
        key: format!("hook/{}/{}", hook.definition.hook_group_id, hook.definition.hook_id),
        reason: e.to_string(),
    })?;
    hook.next_scheduled_date = crate::api::next_scheduled_date(&schedule, now);
    hook.next_task_id = nice_slugid();
    Ok(hook)
}

/// Moves the stored hook to the advanced hook's schedule state, unless an API update
/// changed its definition since the tick read it (the update set its own schedule state,
/// which wins). Only the schedule state is taken from the tick's copy: anything else
/// changed meanwhile (a reset trigger token) stays as stored.
fn store_unless_changed(store: &Store<'_>, hook: &HookRecord) -> Result<(), StorageError> {
    let (Ok(g), Ok(h)) = (HookGroupId::new(&hook.definition.hook_group_id), HookId::new(&hook.definition.hook_id)) else {
        return Ok(());
    };
    match store.hook(&g, &h)? {
        Some(mut current) if current.definition == hook.definition => {
            current.next_scheduled_date = hook.next_scheduled_date.clone();
            current.next_task_id = hook.next_task_id.clone();
            store.put_hook(&current)
        }
        _ => Ok(()),
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
    use crate::sealed::SealingKey;
    use serde_json::json;

    struct World {
        kv: MemoryStore,
        key: SealingKey,
        roles: Roles,
    }

    impl World {
        fn new() -> Self {
            World {
                kv: MemoryStore::default(),
                key: SealingKey::from_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap(),
                roles: Roles::new(vec![Role { role_id: "hook-id:g/*".into(), scopes: vec!["queue:*".into()] }]),
            }
        }
        fn store(&self) -> Store<'_> {
            Store { kv: &self.kv, key: &self.key }
        }
        fn tick(&self, at: &str) -> TickReport {
            let queue = EmbeddedTaskQueue { queue: EmbeddedQueue { kv: &self.kv }, roles: &self.roles };
            tick(&self.store(), &queue, at.parse().unwrap()).unwrap()
        }
        /// Creates hook `g/<id>` with `schedule` as the API would at `at`.
        fn create(&self, id: &str, schedule: &[&str], at: &str) -> HookRecord {
            let schedule: Vec<String> = schedule.iter().map(|s| s.to_string()).collect();
            let parsed = Schedule::parse(&schedule).unwrap();
            let hook = HookRecord {
                definition: HookDefinition {
                    hook_group_id: "g".into(),
                    hook_id: id.into(),
                    metadata: HookMetadata { name: "n".into(), description: "d".into(), owner: "o@example.com".into(), email_on_error: false },
                    task: json!({"taskQueueId": "p/w", "payload": {"slot": {"$eval": "now"}},
                                 "metadata": {"name": "n", "description": "", "owner": "o@example.com", "source": "https://example.com"}})
                        .as_object().unwrap().clone(),
                    bindings: vec![],
                    schedule,
                    trigger_schema: crate::model::default_trigger_schema(),
                },
                trigger_token: "t".into(),
                next_task_id: nice_slugid(),
                next_scheduled_date: crate::api::next_scheduled_date(&parsed, at.parse().unwrap()),
            };
            index_hook(&self.kv, &hook).unwrap();
            self.store().put_hook(&hook).unwrap();
            hook
        }
        fn hook(&self, id: &str) -> HookRecord {
            self.store().hook(&HookGroupId::new("g").unwrap(), &HookId::new(id).unwrap()).unwrap().unwrap()
        }
        fn tasks(&self) -> Vec<serde_json::Value> {
            let q = EmbeddedQueue { kv: &self.kv };
            self.kv.keys("task/").unwrap().iter().map(|k| q.task(&k[5..]).unwrap().unwrap()).collect()
        }
    }

    fn report(due: usize, fired: usize) -> TickReport {
        TickReport { due, fired, ..TickReport::default() }
    }

    #[test]
    fn due_hooks_fire_once_with_their_next_task_id_and_move_on() {
        let w = World::new();
        let created = w.create("a/b", &["0 0 * * * *"], "2026-11-23T12:10:00Z");
        w.create("later", &["0 0 3 * * *"], "2026-11-23T12:10:00Z");
        assert_eq!(w.tick("2026-11-23T12:55:00Z"), report(0, 0));
        assert_eq!(w.tick("2026-11-23T13:05:00Z"), report(1, 1));
        let tasks = w.tasks();
        assert_eq!(tasks.len(), 1);
        assert_eq!(tasks[0]["taskGroupId"], created.next_task_id.as_str(), "fired with nextTaskId");
        assert_eq!(tasks[0]["payload"]["slot"], "2026-11-23T13:00:00.000Z");
        assert_eq!(tasks[0]["created"], "2026-11-23T13:05:00.000Z");
        let moved = w.hook("a/b");
        assert_eq!(moved.next_scheduled_date, "2026-11-23T14:00:00.000Z");
        assert_ne!(moved.next_task_id, created.next_task_id);
        assert_eq!(w.tick("2026-11-23T13:20:00Z"), report(0, 0), "not twice");
        assert_eq!(w.tick("2026-11-24T03:00:00Z"), report(2, 2), "missed slots coalesce into one fire each");
        assert_eq!(w.tasks().len(), 3);
        assert_eq!(w.hook("a/b").next_scheduled_date, "2026-11-24T04:00:00.000Z");
    }

    #[test]
    fn a_lost_entry_repaired_after_its_hour_still_fires_and_a_reset_token_survives_the_tick() {
        let w = World::new();
        w.create("lost", &["0 0 * * * *"], "2026-11-23T12:10:00Z");
        assert_eq!(w.tick("2026-11-23T12:30:00Z"), report(0, 0));
        w.kv.delete("due/2026-11-23T13").unwrap(); // lost to a racing write
        assert_eq!(w.tick("2026-11-23T14:30:00Z"), report(0, 0), "lost: not found");
        assert_eq!(rebuild_index(&w.store()).unwrap(), 1);
        assert!(w.kv.get("due/2026-11-23T14").unwrap().is_some(), "overdue: indexed at the cursor");
        // A token reset between the tick's read and its write is kept.
        let mut hook = w.hook("lost");
        hook.trigger_token = "reset-meanwhile".into();
        let advanced = advance(hook.clone(), "2026-11-23T14:31:00Z".parse().unwrap()).unwrap();
        w.store().put_hook(&hook).unwrap();
        store_unless_changed(&w.store(), &HookRecord { trigger_token: "stale".into(), ..advanced.clone() }).unwrap();
        assert_eq!(w.hook("lost").trigger_token, "reset-meanwhile");
        assert_eq!(w.hook("lost").next_scheduled_date, advanced.next_scheduled_date);
        // Back to the overdue hook: the next tick fires it.
        w.store().put_hook(&hook).unwrap();
        assert_eq!(w.tick("2026-11-23T14:45:00Z"), report(1, 1));
    }

    #[test]
    fn hooks_firing_more_often_than_hourly_stay_indexed_within_the_hour() {
        // Found by the crash drill: a hook moved to a later slot of the same hour used to
        // drop out of the hour's index and fired only once until the daily repair.
        let w = World::new();
        w.create("quarter", &["0 */15 * * * *"], "2026-11-23T12:01:00Z");
        w.create("two-seconds", &["*/2 * * * * *"], "2026-11-23T12:01:00Z");
        assert_eq!(w.tick("2026-11-23T12:15:00Z"), report(2, 2));
        assert_eq!(w.tick("2026-11-23T12:15:01Z"), report(0, 0));
        assert_eq!(w.tick("2026-11-23T12:15:02Z"), report(1, 1));
        assert_eq!(w.tick("2026-11-23T12:30:00Z"), report(2, 2));
        assert_eq!(w.tick("2026-11-23T12:45:00Z"), report(2, 2));
        assert_eq!(w.tick("2026-11-23T13:00:00Z"), report(2, 2), "and on into the next hour");
        assert_eq!(w.hook("quarter").next_scheduled_date, "2026-11-23T13:15:00.000Z");
        assert_eq!(w.tasks().len(), 9);
    }

    #[test]
    fn a_tick_that_died_after_creating_the_task_is_finished_by_the_next_without_a_second_task() {
        let w = World::new();
        let hook = w.create("h", &["0 0 * * * *"], "2026-11-23T12:10:00Z");
        // The dead tick created the task and stopped before moving the hook on.
        let queue = EmbeddedTaskQueue { queue: EmbeddedQueue { kv: &w.kv }, roles: &w.roles };
        let ctx = FireContext { fired_by: FiredBy::Schedule, payload: None, client_id: None };
        let options = FireOptions { conflict_means_created: true, scheduled_for: Some("2026-11-23T13:00:00Z".parse().unwrap()) };
        fire(&w.store(), &queue, &hook, &ctx, &hook.next_task_id, "2026-11-23T13:01:00Z".parse().unwrap(), options).unwrap();
        assert_eq!(w.tick("2026-11-23T13:15:00Z"), report(1, 1));
        assert_eq!(w.tasks().len(), 1, "exactly once");
        assert_eq!(w.hook("h").next_scheduled_date, "2026-11-23T14:00:00.000Z");
    }

    #[test]
    fn two_ticks_reading_the_same_state_create_one_task() {
        let w = World::new();
        w.create("h", &["0 0 * * * *"], "2026-11-23T12:10:00Z");
        let before: Vec<(String, Vec<u8>)> = w.kv.0.lock().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        assert_eq!(w.tick("2026-11-23T13:05:00Z"), report(1, 1));
        // The second tick saw the store as it was before the first one wrote anything
        // (hook, index, cursor), but the task exists now.
        for (k, v) in before.iter().filter(|(k, _)| !k.starts_with("task")) {
            w.kv.set(k, v).unwrap();
        }
        w.kv.delete(CURSOR_KEY).unwrap();
        assert_eq!(w.tick("2026-11-23T13:06:00Z"), report(1, 1), "the 409 counts as created");
        assert_eq!(w.tasks().len(), 1);
    }

    #[test]
    fn removed_rescheduled_and_lost_hooks() {
        let w = World::new();
        w.create("gone", &["0 0 * * * *"], "2026-11-23T12:10:00Z");
        w.store().delete_hook(&HookGroupId::new("g").unwrap(), &HookId::new("gone").unwrap()).unwrap();
        w.create("moved", &["0 0 * * * *"], "2026-11-23T12:10:00Z");
        // Updated between ticks to a daily schedule: fires at its new slot only.
        w.create("moved", &["0 30 15 * * *"], "2026-11-23T12:20:00Z");
        w.create("lost", &["0 0 * * * *"], "2026-11-23T12:10:00Z");
        w.kv.set("due/2026-11-23T13", br#"["g/gone", "g/moved"]"#).unwrap();
        assert_eq!(w.tick("2026-11-23T13:05:00Z"), report(0, 0), "`lost` dropped out of the index");
        assert_eq!(rebuild_index(&w.store()).unwrap(), 2);
        assert_eq!(w.tick("2026-11-23T13:06:00Z"), report(1, 1), "the repair pass finds `lost`");
        assert_eq!(w.tick("2026-11-23T15:31:00Z"), report(2, 2), "moved at 15:30; lost at 14:00 and 15:00, coalesced");
        assert_eq!(w.tasks().len(), 3);
    }

    #[test]
    fn failed_fires_are_counted_and_those_of_email_on_error_hooks_listed_for_reporting() {
        let w = World::new();
        let mut hook = w.create("broken", &["0 0 * * * *"], "2026-11-23T12:10:00Z");
        hook.definition.task.insert("payload".into(), json!({"x": "${payload.y}"}));
        hook.definition.metadata.email_on_error = true;
        w.store().put_hook(&hook).unwrap();
        let r = w.tick("2026-11-23T13:05:00Z");
        assert_eq!((r.due, r.fired, r.failed), (1, 0, 1));
        assert_eq!(r.to_report.len(), 1);
        assert!(r.to_report[0].error.contains("payload"), "{:?}", r.to_report[0]);
        assert_eq!(w.hook("broken").next_scheduled_date, "2026-11-23T14:00:00.000Z", "a failed fire still moves on");
    }
}
