//! The timer's tick (SPEC §7): fire every hook whose next scheduled date has come, once.
//!
//! Index: 168 documents `due/<hour of the week>` (`crate::layout`), each holding the hooks
//! whose next scheduled date falls in that hour of some week, with that date. A tick reads
//! the documents of the hours since the last tick (`timer/cursor`), normally one, and only
//! the hooks in them that are due: its cost is what is due, not how many hooks exist or
//! what the store has kept. The documents exist from the store's set-up and are only ever
//! changed by compare-and-swap, so no entry is lost to a concurrent writer.
//!
//! Exactly once without transactions: a scheduled fire uses the hook's `nextTaskId`, and a
//! 409 from the Queue on it counts as created. A tick that dies after creating the task
//! but before storing the next `nextTaskId` leaves the hook due, and the next tick's
//! attempt finds the task already there; two ticks at once both try the same taskId and
//! only one task exists. Every write that moves a hook adds its new index entry first, so
//! a crash anywhere leaves every hook findable; an entry that outlived its hook's move is
//! dropped by the tick that finds it.

use crate::cas;
use crate::fire::{fire, FireOptions, FireOutcome, TaskQueue};
use crate::ids::{nice_slugid, HookGroupId, HookId};
use crate::layout;
use crate::model::HookRecord;
use crate::notify::FailureReport;
use crate::platform::KeyValue;
use crate::render::{iso_time, FireContext, FiredBy};
use crate::schedule::Schedule;
use crate::store::{StorageError, Store};
use chrono::{DateTime, Duration, DurationRound, Utc};
use std::collections::BTreeMap;

/// A slot document: hook ref -> its next scheduled date (ms).
type Slot = BTreeMap<String, i64>;

/// How far back the very first tick looks.
const FIRST_TICK_LOOKBACK_HOURS: i64 = 24;

fn hour_of(t: DateTime<Utc>) -> DateTime<Utc> {
    // Only dates past chrono's range (never a scheduled date) fail to truncate.
    t.duration_trunc(Duration::hours(1)).unwrap_or(t)
}

fn read_cursor(kv: &dyn KeyValue) -> Result<Option<DateTime<Utc>>, StorageError> {
    Ok(kv.get(layout::TIMER_CURSOR)?.and_then(|b| String::from_utf8(b).ok()).and_then(|s| s.parse::<DateTime<Utc>>().ok()))
}

fn parse_date(hook: &HookRecord) -> Option<DateTime<Utc>> {
    hook.next_scheduled_date.parse().ok()
}

fn hook_ref(hook: &HookRecord) -> String {
    layout::hook_ref(&hook.definition.hook_group_id, &hook.definition.hook_id)
}

/// The slot a scheduled hook belongs in: its next date's hour, or, for a hook already
/// overdue for an hour the ticks have passed, the cursor's hour, which the next tick
/// reads.
fn slot_of(next: DateTime<Utc>, floor: Option<DateTime<Utc>>) -> String {
    layout::due_slot(floor.map_or(hour_of(next), |floor| hour_of(next).max(floor)))
}

/// Adds a scheduled hook to the index slot of its next scheduled date.
pub fn index_hook(kv: &dyn KeyValue, hook: &HookRecord) -> Result<(), StorageError> {
    index_many(kv, [hook])
}

/// Adds scheduled hooks to the slots of their next dates, one compare-and-swap per slot
/// however many hooks go into it.
fn index_many<'h>(kv: &dyn KeyValue, hooks: impl IntoIterator<Item = &'h HookRecord>) -> Result<(), StorageError> {
    let floor = read_cursor(kv)?;
    let mut by_slot: BTreeMap<String, Vec<(String, i64)>> = BTreeMap::new();
    for hook in hooks {
        if let Some(next) = parse_date(hook).filter(|_| !hook.definition.schedule.is_empty()) {
            by_slot.entry(slot_of(next, floor)).or_default().push((hook_ref(hook), next.timestamp_millis()));
        }
    }
    // An entry keeps the earlier of two dates: one written by a writer that then lost (a
    // re-create refused with 409) must not delay the hook, and an early one only makes a
    // tick look at the hook's record and correct it.
    for (key, entries) in by_slot {
        cas::update_json(kv, &key, |slot: &mut Slot| {
            for (entry, ms) in &entries {
                let at = slot.entry(entry.clone()).or_insert(*ms);
                *at = (*at).min(*ms);
            }
        })?;
    }
    Ok(())
}

/// Drops a removed hook's entry (a tick would drop it too, on finding no hook).
pub fn unindex_hook(kv: &dyn KeyValue, hook: &HookRecord) -> Result<(), StorageError> {
    let Some(next) = parse_date(hook).filter(|_| !hook.definition.schedule.is_empty()) else { return Ok(()) };
    let entry = hook_ref(hook);
    cas::update_json(kv, &slot_of(next, read_cursor(kv)?), |slot: &mut Slot| {
        slot.remove(&entry);
    })?;
    Ok(())
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TickReport {
    pub due: usize,
    pub fired: usize,
    pub declined: usize,
    pub failed: usize,
    /// Fires the Queue did not take (a 5xx or no answer): the hooks stay due.
    pub retrying: usize,
    /// Failed fires of hooks with `emailOnError`, for the caller to report.
    pub to_report: Vec<FailureReport>,
}

/// Fires every hook due at `now` (its next scheduled date ≤ `now`) once, then moves it
/// to its first slot after `now` with a fresh `nextTaskId`. Missed slots coalesce.
pub fn tick(store: &Store<'_>, queue: &dyn TaskQueue, now: DateTime<Utc>) -> Result<TickReport, StorageError> {
    tick_with(store, queue, None, now)
}

/// `tick`, with the source of the tasks of hooks that are not templates (cron projects'
/// jobs, `crate::cron_source`).
pub fn tick_with(store: &Store<'_>, queue: &dyn TaskQueue, source: Option<&dyn crate::fire::TaskSource>, now: DateTime<Utc>) -> Result<TickReport, StorageError> {
    let kv = store.kv;
    let now_hour = hour_of(now);
    let first = match read_cursor(kv)? {
        Some(cursor) => cursor.min(now_hour),
        None => now_hour - Duration::hours(FIRST_TICK_LOOKBACK_HOURS),
    };
    // Each slot once, even after a week without ticks.
    let mut hour = first.max(now_hour - Duration::hours(layout::DUE_SLOTS - 1));
    let mut report = TickReport::default();
    // A hook kept due is moved to the current hour's slot, read after the earlier ones:
    // tried once per tick.
    let mut tried = std::collections::HashSet::new();
    while hour <= now_hour {
        tick_slot(store, queue, source, &layout::due_slot(hour), now, &mut report, &mut tried)?;
        hour += Duration::hours(1);
    }
    kv.set(layout::TIMER_CURSOR, iso_time(now_hour).as_bytes())?;
    Ok(report)
}

fn tick_slot(
    store: &Store<'_>,
    queue: &dyn TaskQueue,
    source: Option<&dyn crate::fire::TaskSource>,
    key: &str,
    now: DateTime<Utc>,
    report: &mut TickReport,
    tried: &mut std::collections::HashSet<String>,
) -> Result<(), StorageError> {
    let kv = store.kv;
    let slot: Slot = cas::read_json(kv, key)?;
    let now_ms = now.timestamp_millis();
    // Entries to drop (hook gone, unscheduled, or moved to another slot) and entries whose
    // date is stale, by the value the slot held: a change made meanwhile stays.
    let mut stale: Vec<(String, i64, Option<i64>)> = Vec::new();
    let mut due = Vec::new();
    for (entry, &at_ms) in slot.iter().filter(|(_, &at)| at <= now_ms) {
        if tried.contains(entry) {
            continue;
        }
        let Some((g, h)) = layout::parse_hook_ref(entry) else { continue };
        let (Ok(gid), Ok(hid)) = (HookGroupId::new(&g), HookId::new(&h)) else { continue };
        let hook = store.hook(&gid, &hid)?;
        let Some(hook) = hook.filter(|h| !h.definition.schedule.is_empty()) else {
            stale.push((entry.clone(), at_ms, None));
            continue;
        };
        let Some(next) = parse_date(&hook) else { continue };
        if next > now {
            // Moved by an update: indexed where its date is now.
            let same_slot = slot_of(next, None) == key;
            stale.push((entry.clone(), at_ms, same_slot.then_some(next.timestamp_millis())));
            continue;
        }
        tried.insert(entry.clone());
        // A cron project's job fires under an id of its (project, job, slot), so a hook
        // re-synced between two overlapping ticks still creates the slot's task once.
        let task_id = match crate::cron_hooks::managed(&hook.definition) {
            Some(job) => crate::cron_decision::decision_task_id(&job.project, &job.job, next),
            None => hook.next_task_id.clone(),
        };
        let earlier = scheduled_fire_seq(kv, &g, &h, &task_id)?;
        due.push((entry.clone(), at_ms, hook, next, earlier, task_id));
    }
    // Fires tried before (the Queue failed, or the component was stopped mid-fire) go
    // last, so a fire that stops the component cannot keep the others from firing.
    due.sort_by_key(|(_, _, _, _, earlier, _)| earlier.is_some());
    let mut advanced = Vec::new();
    let mut moved_on = 0;
    let mut retrying = Vec::new();
    for (entry, at_ms, hook, next, earlier, task_id) in due {
        report.due += 1;
        let (g, h) = (&hook.definition.hook_group_id, &hook.definition.hook_id);
        // The fire's record number is kept before the fire, so that a retry (of a Queue
        // failure, or after the component was stopped) replaces its record.
        let seq = match earlier {
            Some(seq) => seq,
            None => {
                let seq = store.next_fire_seq(g, h)?;
                kv.set(&layout::scheduled_fire(g, h), format!("{task_id} {seq}").as_bytes())?;
                seq
            }
        };
        let ctx = FireContext { fired_by: FiredBy::Schedule, payload: None, client_id: None };
        let options = FireOptions { conflict_means_created: true, scheduled_for: Some(next), record_at: Some(seq), source, ..FireOptions::default() };
        let outcome = fire(store, queue, &hook, &ctx, &task_id, now, options)?;
        if outcome.is_retryable() {
            // SPEC §7.1 step 2: the hook stays due with the same nextTaskId, and every
            // tick tries again until the Queue answers; missed slots then coalesce.
            report.retrying += 1;
            retrying.push((entry, at_ms));
            continue;
        }
        match outcome {
            FireOutcome::Created { .. } => report.fired += 1,
            FireOutcome::Declined => report.declined += 1,
            FireOutcome::RenderFailed(e) | FireOutcome::Unavailable(e) => failed(report, &hook, &task_id, e, now),
            FireOutcome::QueueFailed(e) => failed(report, &hook, &task_id, e.to_string(), now),
        }
        let moved = advance(hook.clone(), now)?;
        advanced.push((entry, at_ms, hook, moved));
        // Moved on in chunks: a tick stopped partway (a crash, the platform's time limit)
        // keeps what it did, and the next one does not redo the whole slot.
        if advanced.len() - moved_on >= MOVE_CHUNK {
            move_on(store, key, now, &advanced[moved_on..])?;
            moved_on = advanced.len();
        }
    }
    move_on(store, key, now, &advanced[moved_on..])?;
    // A hook kept due waits in the slot of the current hour, which the next tick reads.
    let current = layout::due_slot(hour_of(now));
    if current != key && !retrying.is_empty() {
        cas::update_json(kv, &current, |slot: &mut Slot| {
            for (entry, ms) in &retrying {
                let at = slot.entry(entry.clone()).or_insert(*ms);
                *at = (*at).min(*ms);
            }
        })?;
        stale.extend(retrying.iter().map(|(entry, ms)| (entry.clone(), *ms, None)));
    }
    for (entry, at_ms, _, moved) in &advanced {
        let next = parse_date(moved).map(|d| d.timestamp_millis());
        let keep = next.filter(|_| slot_of(parse_date(moved).unwrap_or(now), None) == key);
        stale.push((entry.clone(), *at_ms, keep));
    }
    if !stale.is_empty() {
        cas::update_json(kv, key, |slot: &mut Slot| {
            for (entry, seen, keep) in &stale {
                if slot.get(entry) == Some(seen) {
                    match keep {
                        Some(ms) => slot.insert(entry.clone(), *ms),
                        None => slot.remove(entry),
                    };
                }
            }
        })?;
    }
    Ok(())
}

/// How many fired hooks a tick moves on at once.
const MOVE_CHUNK: usize = 25;

/// Fired hooks moved on: the new slots' entries first, then the hooks, then their attempt
/// markers (this slot's own entries are updated at the end of the slot): a crash between
/// leaves every hook due or indexed where it moved.
fn move_on(store: &Store<'_>, key: &str, now: DateTime<Utc>, fired: &[(String, i64, HookRecord, HookRecord)]) -> Result<(), StorageError> {
    let kv = store.kv;
    index_many(kv, fired.iter().map(|(_, _, _, moved)| moved).filter(|m| slot_of(parse_date(m).unwrap_or(now), None) != key))?;
    for (_, _, hook, moved) in fired {
        store_unless_changed(store, hook, moved)?;
        kv.delete(&layout::scheduled_fire(&hook.definition.hook_group_id, &hook.definition.hook_id))?;
    }
    Ok(())
}

/// The record number of an earlier attempt at the hook's scheduled fire with `task_id`.
fn scheduled_fire_seq(kv: &dyn KeyValue, g: &str, h: &str, task_id: &str) -> Result<Option<i64>, StorageError> {
    let Some(bytes) = kv.get(&layout::scheduled_fire(g, h))? else { return Ok(None) };
    let text = String::from_utf8_lossy(&bytes);
    Ok(text.split_once(' ').filter(|(t, _)| *t == task_id).and_then(|(_, seq)| seq.parse().ok()))
}

fn failed(report: &mut TickReport, hook: &HookRecord, task_id: &str, error: String, now: DateTime<Utc>) {
    report.failed += 1;
    if hook.definition.metadata.email_on_error {
        report.to_report.push(FailureReport::new(hook, FiredBy::Schedule, task_id, now, &error));
    }
}

/// A fired hook moved to its first slot after `now`, with a fresh `nextTaskId`.
fn advance(mut hook: HookRecord, now: DateTime<Utc>) -> Result<HookRecord, StorageError> {
    // A cron project's job: its next slot from `.cron.yml`'s `when`, not from the cron text
    // shown for it (which cannot say "both day and weekday").
    if let Some(job) = crate::cron_hooks::managed(&hook.definition) {
        hook.next_scheduled_date = crate::cron_hooks::next_date(&job, now);
        hook.next_task_id = nice_slugid();
        return Ok(hook);
    }
    let schedule = Schedule::parse(&hook.definition.schedule).map_err(|e| StorageError::Corrupt {
        key: layout::hook(&hook.definition.hook_group_id, &hook.definition.hook_id),
        reason: e.to_string(),
    })?;
    hook.next_scheduled_date = crate::api::next_scheduled_date(&schedule, now);
    hook.next_task_id = nice_slugid();
    Ok(hook)
}

/// Moves the stored hook to the advanced hook's schedule state, if it is still in the
/// state the tick fired (same definition, same `nextTaskId`): an API update made since
/// set its own schedule state, which wins, and a second tick that fired the same state
/// moves it once. Only the schedule state is taken from the tick's copy: anything else
/// changed meanwhile (a reset trigger token) stays as stored.
fn store_unless_changed(store: &Store<'_>, fired: &HookRecord, moved: &HookRecord) -> Result<(), StorageError> {
    let (Ok(g), Ok(h)) = (HookGroupId::new(&fired.definition.hook_group_id), HookId::new(&fired.definition.hook_id)) else {
        return Ok(());
    };
    store.update_hook(&g, &h, |current| {
        if current.definition != fired.definition || current.next_task_id != fired.next_task_id {
            return false;
        }
        current.next_scheduled_date.clone_from(&moved.next_scheduled_date);
        current.next_task_id.clone_from(&moved.next_task_id);
        true
    })?;
    Ok(())
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
        /// A tick against a Queue that fails every create with `failure` (as the remote
        /// queue reports a 503 or a connection refused after its retries).
        fn tick_failing(&self, at: &str, failure: crate::fire::QueueError) -> TickReport {
            struct Down(crate::fire::QueueError);
            impl TaskQueue for Down {
                fn create_task(&self, _: &str, _: &serde_json::Map<String, serde_json::Value>, _: &str, _: DateTime<Utc>, _: crate::fire::TaskIdOrigin) -> Result<(), crate::fire::QueueError> {
                    Err(self.0.clone())
                }
            }
            tick(&self.store(), &Down(failure), at.parse().unwrap()).unwrap()
        }
        fn fires(&self, id: &str) -> Vec<crate::model::LastFire> {
            self.store().fires(&HookGroupId::new("g").unwrap(), &HookId::new(id).unwrap(), None, 100).unwrap().0
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
            crate::cas::update_json(&self.kv, &layout::hook_index("g"), |s: &mut BTreeMap<String, BTreeMap<String, String>>| {
                s.entry("g".into()).or_default().insert(id.into(), "t".into());
            })
            .unwrap();
            hook
        }
        fn hook(&self, id: &str) -> HookRecord {
            self.store().hook(&HookGroupId::new("g").unwrap(), &HookId::new(id).unwrap()).unwrap().unwrap()
        }
        fn tasks(&self) -> Vec<serde_json::Value> {
            let q = EmbeddedQueue { kv: &self.kv };
            self.kv.keys_with_prefix("task/").iter().map(|k| q.task(&k[5..]).unwrap().unwrap()).collect()
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
    fn a_token_reset_during_a_tick_survives_it_and_an_overdue_hook_fires() {
        let w = World::new();
        let hook = w.create("h", &["0 0 * * * *"], "2026-11-23T12:10:00Z");
        let advanced = advance(hook.clone(), "2026-11-23T13:01:00Z".parse().unwrap()).unwrap();
        let mut reset = hook.clone();
        reset.trigger_token = "reset-meanwhile".into();
        w.store().put_hook(&reset).unwrap();
        store_unless_changed(&w.store(), &hook, &advanced).unwrap();
        assert_eq!(w.hook("h").trigger_token, "reset-meanwhile");
        assert_eq!(w.hook("h").next_scheduled_date, advanced.next_scheduled_date);
        store_unless_changed(&w.store(), &hook, &advance(hook.clone(), "2026-11-23T13:02:00Z".parse().unwrap()).unwrap()).unwrap();
        assert_eq!(w.hook("h").next_task_id, advanced.next_task_id, "a second tick of the same state moves it once");
        // Ticks stopped for hours: the hook fires once, at the next tick.
        assert_eq!(w.tick("2026-11-23T12:30:00Z"), report(0, 0));
        assert_eq!(w.tick("2026-11-23T16:45:00Z"), report(1, 1));
        assert_eq!(w.hook("h").next_scheduled_date, "2026-11-23T17:00:00.000Z");
        assert_eq!(w.tick("2026-11-23T17:00:00Z"), report(1, 1));
    }

    #[test]
    fn a_weekly_hook_waits_in_its_slot_for_its_week() {
        let w = World::new();
        w.create("weekly", &["0 0 9 * * 1"], "2026-11-23T08:00:00Z"); // Mondays 09:00
        w.create("hourly", &["0 0 * * * *"], "2026-11-23T08:00:00Z");
        assert_eq!(w.tick("2026-11-23T09:00:00Z"), report(2, 2));
        assert_eq!(w.hook("weekly").next_scheduled_date, "2026-11-30T09:00:00.000Z");
        let slot: Slot = cas::read_json(&w.kv, "due/9").unwrap();
        assert_eq!(slot.keys().collect::<Vec<_>>(), ["g/weekly"], "still in Monday 09:00, for next week");
        for day in 0..7 {
            let at = "2026-11-23T10:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::days(day);
            assert_eq!(w.tick(&iso_time(at)).fired, 1, "only the hourly hook until next Monday");
        }
        assert_eq!(w.tick("2026-11-30T09:00:01Z").fired, 2);
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
        let options = FireOptions { conflict_means_created: true, scheduled_for: Some("2026-11-23T13:00:00Z".parse().unwrap()), ..FireOptions::default() };
        fire(&w.store(), &queue, &hook, &ctx, &hook.next_task_id, "2026-11-23T13:01:00Z".parse().unwrap(), options).unwrap();
        assert_eq!(w.tick("2026-11-23T13:15:00Z"), report(1, 1));
        assert_eq!(w.tasks().len(), 1, "exactly once");
        assert_eq!(w.hook("h").next_scheduled_date, "2026-11-23T14:00:00.000Z");
    }

    #[test]
    fn two_ticks_reading_the_same_state_create_one_task() {
        let w = World::new();
        w.create("h", &["0 0 * * * *"], "2026-11-23T12:10:00Z");
        let before: Vec<(String, Vec<u8>)> = w.kv.data.lock().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        assert_eq!(w.tick("2026-11-23T13:05:00Z"), report(1, 1));
        // The second tick saw the store as it was before the first one wrote anything
        // (hook, index, cursor), but the task exists now.
        for (k, v) in before.iter().filter(|(k, _)| !k.starts_with("task")) {
            w.kv.set(k, v).unwrap();
        }
        w.kv.delete(layout::TIMER_CURSOR).unwrap();
        assert_eq!(w.tick("2026-11-23T13:06:00Z"), report(1, 1), "the 409 counts as created");
        assert_eq!(w.tasks().len(), 1);
    }

    #[test]
    fn an_index_entry_of_a_refused_re_create_does_not_delay_the_hook() {
        let w = World::new();
        let hook = w.create("h", &["0 0 * * * *"], "2026-11-23T12:10:00Z");
        // createHook indexes before it learns the hook exists (409): a later date, same slot.
        index_hook(&w.kv, &HookRecord { next_scheduled_date: "2026-11-23T13:30:00.000Z".into(), ..hook }).unwrap();
        assert_eq!(w.tick("2026-11-23T13:15:00Z"), report(1, 1), "fires at its own date");
    }

    #[test]
    fn removed_and_rescheduled_hooks() {
        let w = World::new();
        w.create("gone", &["0 0 * * * *"], "2026-11-23T12:10:00Z");
        w.store().delete_hook(&HookGroupId::new("g").unwrap(), &HookId::new("gone").unwrap()).unwrap();
        w.create("moved", &["0 0 * * * *"], "2026-11-23T12:10:00Z");
        // Updated between ticks to a daily schedule: fires at its new slot only.
        w.create("moved", &["0 30 15 * * *"], "2026-11-23T12:20:00Z");
        assert_eq!(w.tick("2026-11-23T13:05:00Z"), report(0, 0));
        let slot: Slot = cas::read_json(&w.kv, "due/13").unwrap();
        assert!(slot.is_empty(), "entries of the removed and the moved hook dropped: {slot:?}");
        assert_eq!(w.tick("2026-11-23T15:31:00Z"), report(1, 1), "moved at 15:30");
        assert_eq!(w.tasks().len(), 1);
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

    fn unavailable() -> crate::fire::QueueError {
        crate::fire::QueueError::Api { status: 503, code: "ServiceUnavailable".into(), message: "down".into(), body: json!({}), url: "u".into() }
    }

    #[test]
    fn a_queue_outage_keeps_hooks_due_with_their_task_id_until_the_queue_answers() {
        let w = World::new();
        let first = w.create("h", &["0 0 * * * *"], "2026-11-23T12:10:00Z");
        w.create("q", &["0 */15 * * * *"], "2026-11-23T12:50:00Z");
        // 13:00 and 13:15 during the outage (a 503, then no answer at all), over the hour.
        let r = w.tick_failing("2026-11-23T13:00:00Z", unavailable());
        assert_eq!((r.due, r.fired, r.retrying, r.failed), (2, 0, 2, 0), "{r:?}");
        assert!(r.to_report.is_empty(), "an outage is not the hook's failure");
        let r = w.tick_failing("2026-11-23T13:15:00Z", crate::fire::QueueError::Transport("connection refused".into()));
        assert_eq!((r.due, r.retrying), (2, 2));
        assert_eq!(w.hook("h").next_task_id, first.next_task_id, "still due with the same nextTaskId");
        assert_eq!(w.fires("h").len(), 1, "each retry replaces the attempt's record: {:?}", w.fires("h"));
        let year_on = crate::expiry::day_of("2027-11-24T13:00:00Z".parse().unwrap()); // a year on, the day after
        let entries = crate::expiry::bucket(&w.kv, &year_on).unwrap();
        assert_eq!(entries.len(), 2, "one expiry entry per hook's record, not per retry: {entries:?}");
        assert!(w.fires("h")[0].error.contains("connection refused"));
        // Still failing at 14:05: the hooks wait in the current hour's slot.
        assert_eq!(w.tick_failing("2026-11-23T14:05:00Z", unavailable()).retrying, 2);
        let slot: Slot = cas::read_json(&w.kv, "due/14").unwrap();
        assert!(slot.contains_key("g/h") && slot.contains_key("g/q"), "{slot:?}");
        // The Queue is back: one fire each for every slot missed, with the original taskId.
        assert_eq!(w.tick("2026-11-23T14:20:00Z"), report(2, 2));
        let tasks = w.tasks();
        assert_eq!(tasks.len(), 2);
        assert!(tasks.iter().any(|t| t["taskGroupId"] == first.next_task_id.as_str()));
        let fires = w.fires("h");
        assert_eq!(fires.len(), 1, "the successful retry replaced the failed attempts: {fires:?}");
        assert_eq!((fires[0].result.clone(), fires[0].task_id.as_str()), (crate::model::FireResult::Success, first.next_task_id.as_str()));
        assert_eq!(w.hook("h").next_scheduled_date, "2026-11-23T15:00:00.000Z", "moved on past the missed slots");
        assert_eq!(w.hook("q").next_scheduled_date, "2026-11-23T14:30:00.000Z");
        assert_eq!(w.kv.get(&layout::scheduled_fire("g", "h")).unwrap(), None, "the attempt's marker goes with it");
        assert_eq!(w.tick("2026-11-23T14:25:00Z"), report(0, 0), "not twice");
        // A 4xx is final: recorded, and the hook moves on.
        let r = w.tick_failing("2026-11-23T15:00:00Z", crate::fire::QueueError::Api { status: 400, code: "InputError".into(), message: "no".into(), body: json!({}), url: "u".into() });
        assert_eq!((r.failed, r.retrying), (2, 0));
        assert_eq!(w.hook("h").next_scheduled_date, "2026-11-23T16:00:00.000Z");
    }

    #[test]
    fn a_fire_the_platform_stopped_goes_last_and_is_given_up_after_the_third_stop() {
        let w = World::new();
        let poison = w.create("a-poison", &["0 0 * * * *"], "2026-11-23T12:10:00Z");
        w.create("b-fine", &["0 0 * * * *"], "2026-11-23T12:10:00Z");
        // What a tick stopped while rendering a-poison leaves: its attempt's marker and an
        // unfinished record. Simulated by a fire whose queue never returns... here by
        // writing the same state the stopped attempt writes.
        let seq = w.store().next_fire_seq("g", "a-poison").unwrap();
        w.kv.set(&layout::scheduled_fire("g", "a-poison"), format!("{} {seq}", poison.next_task_id).as_bytes()).unwrap();
        let stopped = |n: u32| crate::model::LastFire {
            hook_group_id: "g".into(),
            hook_id: "a-poison".into(),
            fired_by: FiredBy::Schedule,
            task_id: poison.next_task_id.clone(),
            task_create_time: "2026-11-23T13:00:00.000Z".into(),
            result: crate::model::FireResult::Error,
            task_state: "unknown".into(),
            error: format!("The fire did not finish: the component was stopped while rendering the template or creating the task, which happens when a fire exceeds the CPU-time or memory limit of a request. Attempts stopped: {n}"),
        };
        w.store().record_fire(&stopped(3), 0, Some(seq)).unwrap();
        let r = w.tick("2026-11-23T13:05:00Z");
        assert_eq!((r.due, r.fired, r.failed), (2, 1, 1), "{r:?}");
        let fires = w.fires("a-poison");
        assert_eq!(fires.len(), 1);
        assert!(fires[0].error.starts_with("Given up after 3 attempts"), "{}", fires[0].error);
        assert_eq!(w.hook("a-poison").next_scheduled_date, "2026-11-23T14:00:00.000Z", "moved on");
        assert_eq!(w.tasks().len(), 1, "b-fine fired, a-poison did not");
        // Stopped fewer times: tried again (last in its tick), and it renders fine this time.
        let next = w.hook("a-poison");
        let seq = w.store().next_fire_seq("g", "a-poison").unwrap();
        w.kv.set(&layout::scheduled_fire("g", "a-poison"), format!("{} {seq}", next.next_task_id).as_bytes()).unwrap();
        w.store().record_fire(&crate::model::LastFire { task_id: next.next_task_id.clone(), ..stopped(2) }, 0, Some(seq)).unwrap();
        assert_eq!(w.tick("2026-11-23T14:05:00Z"), report(2, 2));
        assert_eq!(w.fires("a-poison")[0].result, crate::model::FireResult::Success);
        assert_eq!(w.fires("a-poison").len(), 2, "the retry replaced the stopped attempt's record");
    }

    #[test]
    fn a_tick_stopped_partway_keeps_the_hooks_it_moved_on() {
        let w = World::new();
        for i in 0..40 {
            w.create(&format!("h{i:02}"), &["0 0 * * * *"], "2026-11-23T12:10:00Z");
        }
        // A queue that stops the tick (as the platform would) at its 30th create.
        struct Stopping<'a>(EmbeddedTaskQueue<'a>, std::cell::Cell<usize>);
        impl TaskQueue for Stopping<'_> {
            fn create_task(&self, id: &str, task: &serde_json::Map<String, serde_json::Value>, role: &str, now: DateTime<Utc>, origin: crate::fire::TaskIdOrigin) -> Result<(), crate::fire::QueueError> {
                self.1.set(self.1.get() + 1);
                assert!(self.1.get() < 30, "stopped");
                self.0.create_task(id, task, role, now, origin)
            }
        }
        let queue = Stopping(EmbeddedTaskQueue { queue: EmbeddedQueue { kv: &w.kv }, roles: &w.roles }, Default::default());
        let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tick(&w.store(), &queue, "2026-11-23T13:05:00Z".parse().unwrap())));
        assert!(stopped.is_err());
        let moved = (0..40).filter(|i| w.hook(&format!("h{i:02}")).next_scheduled_date == "2026-11-23T14:00:00.000Z").count();
        assert_eq!(moved, MOVE_CHUNK, "the first chunk was moved on before the stop");
        assert_eq!(w.tick("2026-11-23T13:06:00Z"), report(40 - MOVE_CHUNK, 40 - MOVE_CHUNK), "the next tick does the rest only");
        assert_eq!(w.tasks().len(), 40, "each once");
    }
}
