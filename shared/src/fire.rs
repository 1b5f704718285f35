//! Firing a hook (SPEC §6), one pipeline for every way a hook fires: render, decline or
//! go on, create the task in a Queue on behalf of the hook's role, record the attempt.
//!
//! The Queue is a trait so the same pipeline runs against the embedded queue (standalone)
//! and a remote Taskcluster deployment. Every attempt that reaches rendering is recorded
//! in lastFires under a sequence number of its own, so a retry of the same taskId is a
//! second record rather than a collision (upstream quirk §7.4, fixed); a caller that
//! retries the same fire (the timer, the relay) passes the number again and the record is
//! replaced.
//!
//! The record is written twice: first as "unfinished", then with the result. Rendering a
//! template can take more CPU time or memory than the platform gives a request (the host
//! stops the component; JSON-e cannot be interrupted from inside), and then the first
//! write is what lastFires shows. A caller that retries a fire whose earlier attempts were
//! stopped that way gives up after [`MAX_STOPPED_ATTEMPTS`] instead of stopping again,
//! so one such hook cannot hold back the timer's or the relay's other work for long. Only
//! a stop during rendering counts: a retried fire records that it rendered before it asks
//! the Queue.

use crate::embedded_queue::{CreateTaskError, EmbeddedQueue};
use crate::model::{FireResult, HookRecord, LastFire};
use crate::render::{iso_time, render_task, FireContext, Rendered};
use crate::scopes::{Roles, ScopeSet};
use crate::store::{StorageError, Store};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

const MAX_ERROR_CHARS: usize = 131_072;

/// The largest task a fire creates, serialised: the Queue's request body limit
/// (Taskcluster's API library accepts JSON bodies of up to 10 MB).
pub const MAX_TASK_BYTES: usize = 10 * 1024 * 1024;

/// Attempts at one fire that may be stopped while rendering before the fire is given up
/// as failed. More than one, because a crash of the component (a restart, a deploy) looks
/// the same from inside; a render takes a fraction of a fire's time, so a crash rarely
/// lands in one, and three in a row on the same fire are the platform's limit.
pub const MAX_STOPPED_ATTEMPTS: u32 = 3;

/// What lastFires shows for a fire whose component was stopped before it finished, with
/// how many attempts were.
const UNFINISHED: &str = "The fire did not finish: the component was stopped while rendering the template or creating the task, \
which happens when a fire exceeds the CPU-time or memory limit of a request. Attempts stopped: ";

/// What lastFires shows for a retried fire between its render and the Queue's answer.
const CREATING: &str = "The fire did not finish: the task was rendered, and the Queue had not answered when the fire was interrupted.";

fn unfinished(attempts: u32) -> String {
    format!("{UNFINISHED}{attempts}")
}

/// How many attempts at a fire were stopped, if `error` is an unfinished record's.
fn stopped_attempts(error: &str) -> Option<u32> {
    error.strip_prefix(UNFINISHED)?.parse().ok()
}

/// Why a Queue did not create a task.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueueError {
    /// The Queue answered with a Taskcluster error.
    #[error("{code}: {message}")]
    Api { status: u16, code: String, message: String, body: Value, url: String },
    /// No answer: network failure, timeout, or an answer that was not Taskcluster's.
    #[error("{0}")]
    Transport(String),
}

impl QueueError {
    /// A 5xx or no answer: the Queue may do it later, so the fire is tried again with the
    /// same taskId (SPEC §7.1 step 2). A 4xx is the Queue's final word.
    pub fn is_retryable(&self) -> bool {
        match self {
            QueueError::Api { status, .. } => *status >= 500,
            QueueError::Transport(_) => true,
        }
    }
}

/// Whether a fire's taskId may already name a task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TaskIdOrigin {
    /// Given by the caller, or kept across attempts (a scheduled fire's `nextTaskId`, a
    /// redelivered message's): an earlier create may have used it.
    #[default]
    Given,
    /// Drawn from the random source for this one fire (`crate::ids::nice_slugid`, 121
    /// random bits) and known to nobody else: no task can have it yet, so the embedded
    /// queue writes the task without looking for one first.
    Fresh,
}

/// A Queue's `createTask`, as the hooks service calls it: on behalf of `role` (the hook's
/// `hook-id:<g>/<h>`, passed upstream as `authorizedScopes: ["assume:<role>"]`).
pub trait TaskQueue {
    fn create_task(&self, task_id: &str, task: &Map<String, Value>, role: &str, now: DateTime<Utc>, origin: TaskIdOrigin) -> Result<(), QueueError>;

    /// [`Self::create_task`], and `with` (key-value records that say the task exists) in
    /// the same write where the queue can make one: answers whether it did. A queue
    /// elsewhere cannot, and the caller writes them itself.
    fn create_task_with(
        &self,
        task_id: &str,
        task: &Map<String, Value>,
        role: &str,
        now: DateTime<Utc>,
        origin: TaskIdOrigin,
        with: Vec<(String, Vec<u8>)>,
    ) -> Result<bool, QueueError> {
        let _ = with;
        self.create_task(task_id, task, role, now, origin).map(|()| false)
    }
}

/// The embedded queue, creating tasks with the role's expanded scopes.
pub struct EmbeddedTaskQueue<'a> {
    pub queue: EmbeddedQueue<'a>,
    pub roles: &'a Roles,
}

impl TaskQueue for EmbeddedTaskQueue<'_> {
    fn create_task(&self, task_id: &str, task: &Map<String, Value>, role: &str, now: DateTime<Utc>, origin: TaskIdOrigin) -> Result<(), QueueError> {
        self.create_task_with(task_id, task, role, now, origin, Vec::new()).map(|_| ())
    }

    fn create_task_with(
        &self,
        task_id: &str,
        task: &Map<String, Value>,
        role: &str,
        now: DateTime<Utc>,
        origin: TaskIdOrigin,
        with: Vec<(String, Vec<u8>)>,
    ) -> Result<bool, QueueError> {
        let expanded = self.roles.expand([format!("assume:{role}"), "assume:anonymous".to_string()]).map_err(|e| QueueError::Api {
            status: 400,
            code: "InputError".into(),
            body: json!({"code": "InputError", "message": e.to_string()}),
            message: e.to_string(),
            url: format!("/api/queue/v1/task/{task_id}"),
        })?;
        let scopes = ScopeSet::new(expanded);
        match self.queue.create_task_with(task_id, task, &scopes, now, origin, with) {
            Ok((_, written)) => Ok(written),
            Err(CreateTaskError::Refused(r)) => Err(QueueError::Api {
                status: r.status,
                code: r.code.to_string(),
                body: json!({"code": r.code, "message": r.message}),
                message: r.message,
                url: format!("/api/queue/v1/task/{task_id}"),
            }),
            Err(CreateTaskError::Storage(e)) => Err(QueueError::Transport(e.to_string())),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum FireOutcome {
    /// The template rendered to nothing; nothing was recorded.
    Declined,
    Created { task_id: String },
    RenderFailed(String),
    QueueFailed(QueueError),
    /// Something the task is made from did not answer (a cron job's repository): tried
    /// again later with the same taskId, as a Queue outage is.
    Unavailable(String),
}

/// Where a hook's task comes from when it is not its own template: a cron project's job
/// renders its repository's `.taskcluster.yml` (`crate::cron_source`).
pub trait TaskSource {
    /// The task for `hook` (`Ok(None)`: it declines), or why there is none; `None` if this
    /// source does not make the hook's task.
    fn task(&self, hook: &HookRecord, ctx: &FireContext, task_id: &str, now: DateTime<Utc>) -> Option<Result<Option<Map<String, Value>>, SourceError>>;
}

/// Why a [`TaskSource`] made no task.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SourceError {
    /// Final for this fire: recorded as its error.
    #[error("{0}")]
    Failed(String),
    /// What the task is made from did not answer: the fire is tried again.
    #[error("{0}")]
    Unavailable(String),
}

impl From<String> for SourceError {
    fn from(e: String) -> Self {
        SourceError::Failed(e)
    }
}

#[derive(Clone, Copy, Default)]
pub struct FireOptions<'a> {
    /// A scheduled fire uses the hook's `nextTaskId`: a 409 on it means an earlier
    /// attempt already created the task, which counts as created.
    pub conflict_means_created: bool,
    /// For a scheduled fire, the slot it fires for: the template's `now` (SPEC §6.2). The
    /// task's `created` is still the attempt time, so a late tick is not refused by the
    /// Queue's 15-minute `created` window (upstream quirk §15.11, fixed).
    pub scheduled_for: Option<DateTime<Utc>>,
    /// The lastFires sequence number to record at (a retry of the same fire keeps one
    /// record); `None`: a new one.
    pub record_at: Option<i64>,
    /// Makes the tasks of hooks that are not templates (cron projects' jobs).
    pub source: Option<&'a dyn TaskSource>,
    /// Where the taskId comes from.
    pub task_id_origin: TaskIdOrigin,
    /// Where to leave the fire's metrics instead of writing them: an API request that
    /// fires writes them with its own count, in one counter (`crate::metrics::request`).
    pub metric_to: Option<&'a std::cell::RefCell<Option<crate::metrics::FireMetric>>>,
}

impl FireOutcome {
    /// A Queue failure that a later attempt with the same taskId may overcome.
    pub fn is_retryable(&self) -> bool {
        match self {
            FireOutcome::QueueFailed(e) => e.is_retryable(),
            FireOutcome::Unavailable(_) => true,
            _ => false,
        }
    }

    /// The error a failed fire records, if it failed.
    pub fn error(&self) -> Option<String> {
        match self {
            FireOutcome::RenderFailed(e) | FireOutcome::Unavailable(e) => Some(e.clone()),
            FireOutcome::QueueFailed(e) => Some(e.to_string()),
            FireOutcome::Declined | FireOutcome::Created { .. } => None,
        }
    }
}

/// The lastFires text of a Queue failure (SPEC §6.6): the error as the client library
/// would describe it, as indented JSON.
fn describe(e: &QueueError) -> String {
    match e {
        QueueError::Api { status, code, message, body, url } => serde_json::to_string_pretty(&json!({
            "name": format!("{code}Error"), "message": message, "code": code, "statusCode": status, "url": url, "body": body,
        }))
        .expect("serialises"),
        QueueError::Transport(m) => m.clone(),
    }
}

/// Fires `hook` at `now` with `task_id`, records the attempt, and logs it (`hook-fire`).
pub fn fire(
    store: &Store<'_>,
    queue: &dyn TaskQueue,
    hook: &HookRecord,
    ctx: &FireContext,
    task_id: &str,
    now: DateTime<Utc>,
    options: FireOptions,
) -> Result<FireOutcome, StorageError> {
    let mut timings = Timings::default();
    let outcome = fire_and_record(store, queue, hook, ctx, task_id, now, options, &mut timings)?;
    let d = &hook.definition;
    crate::log::emit(&crate::log::hook_fire(&d.hook_group_id, &d.hook_id, ctx.fired_by, task_id, &outcome));
    // The metric's `result` label, and the chart's result (lastFires' words).
    let (result, stat) = match &outcome {
        FireOutcome::Created { .. } => ("created", "success"),
        FireOutcome::Declined => ("declined", "declined"),
        _ => ("failed", "error"),
    };
    let metric = crate::metrics::FireMetric { fired_by: ctx.fired_by.as_str(), result, render: timings.render, create: timings.create };
    match options.metric_to {
        Some(slot) => *slot.borrow_mut() = Some(metric),
        None => crate::metrics::fire(store.kv, &metric),
    }
    crate::fire_stats::record(store.kv, &d.hook_group_id, &d.hook_id, stat, now);
    Ok(outcome)
}

/// How long a fire's steps took, for `crate::metrics`.
#[derive(Default)]
struct Timings {
    render: Option<std::time::Duration>,
    create: Option<std::time::Duration>,
}

#[allow(clippy::too_many_arguments)]
fn fire_and_record(
    store: &Store<'_>,
    queue: &dyn TaskQueue,
    hook: &HookRecord,
    ctx: &FireContext,
    task_id: &str,
    now: DateTime<Utc>,
    options: FireOptions,
    timings: &mut Timings,
) -> Result<FireOutcome, StorageError> {
    let d = &hook.definition;
    let (g, h) = (&d.hook_group_id, &d.hook_id);
    let mut record = LastFire {
        hook_group_id: g.clone(),
        hook_id: h.clone(),
        fired_by: ctx.fired_by,
        task_id: task_id.to_string(),
        task_create_time: iso_time(now),
        result: FireResult::Error,
        task_state: "unknown".into(),
        error: String::new(),
    };
    let (seq, previous) = match options.record_at {
        Some(seq) => (seq, store.fire_record(g, h, seq)?),
        None => (store.next_fire_seq(g, h)?, None),
    };
    let stopped = previous.as_ref().filter(|f| f.task_id == task_id).and_then(|f| stopped_attempts(&f.error)).unwrap_or(0);
    // A record rewritten by a retry keeps the expiry scheduled for it, unless the retry is
    // on a later day (the day's bucket would find the record too young and keep it for
    // ever): one expiry entry per record and day, however often the fire is retried.
    let expiry_scheduled = previous.as_ref().is_some_and(|f| f.task_create_time.get(..10) == Some(&record.task_create_time[..10]));
    let first_write = |record: &LastFire| -> Result<(), StorageError> {
        if expiry_scheduled {
            store.write_fire_record(record, seq)
        } else {
            store.record_fire(record, now.timestamp_millis(), Some(seq)).map(|_| ())
        }
    };
    let outcome = if stopped >= MAX_STOPPED_ATTEMPTS {
        FireOutcome::RenderFailed(format!(
            "Given up after {stopped} attempts at this fire were stopped by the platform for exceeding the CPU-time or memory limit of a request"
        ))
    } else {
        record.error = unfinished(stopped + 1);
        first_write(&record)?;
        let started = std::time::Instant::now();
        let rendered = render(hook, ctx, task_id, now, options);
        timings.render = Some(started.elapsed());
        match rendered {
            Err(failed) => failed,
            Ok(None) => {
                store.delete_fire_record(g, h, seq)?;
                return Ok(FireOutcome::Declined);
            }
            Ok(Some(task)) => {
                // Rendered: a fire retried from here on was not stopped while rendering
                // (a crash, a redelivery), so its next attempt is not counted as stopped.
                if options.record_at.is_some() {
                    record.error = CREATING.into();
                    store.write_fire_record(&record, seq)?;
                }
                // The record of a created task goes in the task's own write where the
                // queue can make one (the embedded queue, for a fresh taskId): a trigger
                // makes one write fewer, and no reader sees the task before its record.
                let done = LastFire { result: FireResult::Success, error: String::new(), ..record.clone() };
                let with = vec![(crate::layout::fire(g, h, seq), serde_json::to_vec(&done).expect("records serialise"))];
                let started = std::time::Instant::now();
                let (created, written) = create(queue, hook, &task, task_id, now, options, with);
                timings.create = Some(started.elapsed());
                if written {
                    return Ok(created);
                }
                created
            }
        }
    };
    (record.result, record.error) = match &outcome {
        FireOutcome::Created { .. } => (FireResult::Success, String::new()),
        FireOutcome::RenderFailed(e) | FireOutcome::Unavailable(e) => (FireResult::Error, e.chars().take(MAX_ERROR_CHARS).collect()),
        FireOutcome::QueueFailed(e) => (FireResult::Error, describe(e).chars().take(MAX_ERROR_CHARS).collect()),
        FireOutcome::Declined => unreachable!("returned above"),
    };
    if stopped >= MAX_STOPPED_ATTEMPTS {
        first_write(&record)?;
    } else {
        store.write_fire_record(&record, seq)?;
    }
    Ok(outcome)
}

/// The task the hook renders to (`None`: it declined), or the failed outcome.
fn render(hook: &HookRecord, ctx: &FireContext, task_id: &str, now: DateTime<Utc>, options: FireOptions<'_>) -> Result<Option<Map<String, Value>>, FireOutcome> {
    let at = options.scheduled_for.unwrap_or(now);
    let made = options.source.and_then(|source| source.task(hook, ctx, task_id, at));
    let mut task = match made {
        Some(Ok(Some(task))) => task,
        Some(Ok(None)) => return Ok(None),
        Some(Err(SourceError::Failed(e))) => return Err(FireOutcome::RenderFailed(e)),
        Some(Err(SourceError::Unavailable(e))) => return Err(FireOutcome::Unavailable(e)),
        None if crate::cron_hooks::managed(&hook.definition).is_some() => {
            return Err(FireOutcome::RenderFailed("a cron project's job can only be fired where its repository can be read (the timer, a trigger)".into()));
        }
        None => match render_task(&hook.definition.task, ctx, task_id, at) {
            Ok(Rendered::Declined) => return Ok(None),
            Err(e) => return Err(FireOutcome::RenderFailed(e.to_string())),
            Ok(Rendered::Task(task)) => task,
        },
    };
    if options.scheduled_for.is_some() {
        task.insert("created".into(), json!(iso_time(now)));
    }
    let size = serde_json::to_vec(&task).map_or(0, |b| b.len());
    if size > MAX_TASK_BYTES {
        return Err(FireOutcome::RenderFailed(format!(
            "The rendered task is {size} bytes; the Queue accepts tasks of at most {MAX_TASK_BYTES} bytes"
        )));
    }
    Ok(Some(task))
}

/// The role a hook's tasks are created with. A cron project's job: that job's own
/// scopes only (build-decision's cron task holds the union `...:cron:*`); any other hook:
/// its `hook-id:<g>/<h>`.
pub fn role_of(d: &crate::model::HookDefinition) -> String {
    match crate::cron_hooks::managed(d) {
        Some(job) => format!("repo:{}:cron:{}", job.repo_path, job.job),
        None => format!("hook-id:{}/{}", d.hook_group_id, d.hook_id),
    }
}

/// The outcome, and whether the queue wrote `with` (the created fire's record) itself.
fn create(
    queue: &dyn TaskQueue,
    hook: &HookRecord,
    task: &Map<String, Value>,
    task_id: &str,
    now: DateTime<Utc>,
    options: FireOptions<'_>,
    with: Vec<(String, Vec<u8>)>,
) -> (FireOutcome, bool) {
    let created = || FireOutcome::Created { task_id: task_id.to_string() };
    match queue.create_task_with(task_id, task, &role_of(&hook.definition), now, options.task_id_origin, with) {
        Ok(written) => (created(), written),
        Err(QueueError::Api { status: 409, .. }) if options.conflict_means_created => (created(), false),
        Err(e) => (FireOutcome::QueueFailed(e), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{HookDefinition, HookMetadata};
    use crate::platform::MemoryStore;
    use crate::render::FiredBy;
    use crate::scopes::Role;

    fn hook() -> HookRecord {
        HookRecord {
            definition: HookDefinition {
                hook_group_id: "g".into(),
                hook_id: "h".into(),
                metadata: HookMetadata { name: "n".into(), description: "d".into(), owner: "o@example.com".into(), email_on_error: true },
                task: json!({"taskQueueId": "p/w", "payload": {"slot": {"$eval": "now"}},
                             "metadata": {"name": "n", "description": "", "owner": "o@example.com", "source": "https://example.com"}})
                    .as_object().unwrap().clone(),
                bindings: vec![],
                schedule: vec!["0 0 * * * *".into()],
                trigger_schema: crate::model::default_trigger_schema(),
            },
            trigger_token: "t".into(),
            next_task_id: "fN1SmgV0T8WXX3LhKs2Gyw".into(),
            next_scheduled_date: "2026-11-23T12:00:00.000Z".into(),
        }
    }

    #[test]
    fn a_late_scheduled_fire_is_created_now_and_a_repeat_counts_as_created() {
        let kv = MemoryStore::default();
        let key = crate::sealed::SealingKey::from_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap();
        let store = Store { kv: &kv, key: &key };
        let roles = Roles::new(vec![Role { role_id: "hook-id:g/*".into(), scopes: vec!["queue:*".into()] }]);
        let queue = EmbeddedTaskQueue { queue: EmbeddedQueue { kv: &kv }, roles: &roles };
        let hook = hook();
        let ctx = FireContext { fired_by: FiredBy::Schedule, payload: None, client_id: None };
        let slot: DateTime<Utc> = "2026-11-23T12:00:00Z".parse().unwrap();
        let late = slot + chrono::Duration::minutes(20);
        let scheduled = FireOptions { conflict_means_created: true, scheduled_for: Some(slot), ..FireOptions::default() };
        let id = hook.next_task_id.clone();
        assert_eq!(fire(&store, &queue, &hook, &ctx, &id, late, scheduled).unwrap(), FireOutcome::Created { task_id: id.clone() });
        let task = EmbeddedQueue { kv: &kv }.task(&id).unwrap().unwrap();
        assert_eq!(task["created"], "2026-11-23T12:20:00.000Z", "created is the attempt");
        assert_eq!(task["payload"]["slot"], "2026-11-23T12:00:00.000Z", "the template's now is the slot");
        // A second tick retrying the same slot a minute later: a different `created`, so
        // the Queue answers 409, which for a scheduled fire means "already created".
        let again = fire(&store, &queue, &hook, &ctx, &id, late + chrono::Duration::minutes(1), scheduled).unwrap();
        assert_eq!(again, FireOutcome::Created { task_id: id.clone() });
        let unscheduled = fire(&store, &queue, &hook, &ctx, &id, late + chrono::Duration::minutes(2), FireOptions::default()).unwrap();
        assert!(matches!(unscheduled, FireOutcome::QueueFailed(QueueError::Api { status: 409, .. })), "{unscheduled:?}");
        let g = crate::ids::HookGroupId::new("g").unwrap();
        let h = crate::ids::HookId::new("h").unwrap();
        let (fires, _) = store.fires(&g, &h, None, 10).unwrap();
        assert_eq!(fires.len(), 3, "every attempt recorded, none colliding");
        assert_eq!(fires.iter().filter(|f| f.result == FireResult::Success).count(), 2);
    }

    /// A memory store that logs the keys of each write (`set`, `set_many`, `compare_and_swap`).
    #[derive(Default)]
    struct WriteLog(MemoryStore, std::cell::RefCell<Vec<Vec<String>>>);

    impl crate::platform::KeyValue for WriteLog {
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, crate::platform::StoreError> {
            self.0.get(key)
        }
        fn set(&self, key: &str, value: &[u8]) -> Result<(), crate::platform::StoreError> {
            self.1.borrow_mut().push(vec![key.to_string()]);
            self.0.set(key, value)
        }
        fn delete(&self, key: &str) -> Result<(), crate::platform::StoreError> {
            self.0.delete(key)
        }
        fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, crate::platform::StoreError> {
            self.0.get_many(keys)
        }
        fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), crate::platform::StoreError> {
            self.1.borrow_mut().push(entries.iter().map(|(k, _)| k.clone()).collect());
            self.0.set_many(entries)
        }
        fn increment(&self, key: &str, delta: i64) -> Result<i64, crate::platform::StoreError> {
            self.0.increment(key, delta)
        }
        fn compare_and_swap(&self, key: &str, update: &mut dyn FnMut(Option<&[u8]>) -> Option<Vec<u8>>) -> Result<crate::platform::CasAttempt, crate::platform::StoreError> {
            self.1.borrow_mut().push(vec![key.to_string()]);
            self.0.compare_and_swap(key, update)
        }
    }

    #[test]
    fn a_fresh_task_and_its_fire_record_are_one_write_and_a_given_one_is_recorded_after() {
        let key = crate::sealed::SealingKey::from_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap();
        let roles = Roles::new(vec![Role { role_id: "hook-id:g/*".into(), scopes: vec!["queue:*".into()] }]);
        let ctx = FireContext { fired_by: FiredBy::TriggerHook, payload: None, client_id: None };
        let now: DateTime<Utc> = "2026-11-23T12:00:00Z".parse().unwrap();
        let (g, h) = (crate::ids::HookGroupId::new("g").unwrap(), crate::ids::HookId::new("h").unwrap());
        for origin in [TaskIdOrigin::Fresh, TaskIdOrigin::Given] {
            let kv = WriteLog::default();
            let store = Store { kv: &kv, key: &key };
            let queue = EmbeddedTaskQueue { queue: EmbeddedQueue { kv: &kv }, roles: &roles };
            let id = "fN1SmgV0T8WXX3LhKs2Gyw";
            let options = FireOptions { task_id_origin: origin, ..FireOptions::default() };
            assert_eq!(fire(&store, &queue, &hook(), &ctx, id, now, options).unwrap(), FireOutcome::Created { task_id: id.into() });
            let (fires, _) = store.fires(&g, &h, None, 10).unwrap();
            assert_eq!((fires.len(), fires[0].result, fires[0].error.as_str()), (1, FireResult::Success, ""), "{origin:?}");
            let writes = kv.1.borrow();
            let fire_key = crate::layout::fire("g", "h", 1);
            let of_record: Vec<&Vec<String>> = writes.iter().filter(|w| w.contains(&fire_key)).collect();
            assert_eq!(of_record.len(), 2, "{origin:?}: unfinished, then done: {writes:?}");
            let with_task = of_record[1].contains(&crate::layout::task(id));
            assert_eq!(with_task, origin == TaskIdOrigin::Fresh, "{origin:?}: {writes:?}");
            let last = writes.iter().rposition(|w| w.contains(&fire_key)).unwrap();
            let task_written = writes.iter().rposition(|w| w.contains(&crate::layout::task(id))).unwrap();
            assert!(last >= task_written, "{origin:?}: the record says created only once the task is stored: {writes:?}");
        }
        // A refused task is recorded as the failure it is, by a write of its own.
        let kv = WriteLog::default();
        let store = Store { kv: &kv, key: &key };
        let none = Roles::new(vec![]);
        let queue = EmbeddedTaskQueue { queue: EmbeddedQueue { kv: &kv }, roles: &none };
        let options = FireOptions { task_id_origin: TaskIdOrigin::Fresh, ..FireOptions::default() };
        let refused = fire(&store, &queue, &hook(), &ctx, "fN1SmgV0T8WXX3LhKs2Gyw", now, options).unwrap();
        assert!(matches!(refused, FireOutcome::QueueFailed(QueueError::Api { status: 403, .. })), "{refused:?}");
        let (fires, _) = store.fires(&g, &h, None, 10).unwrap();
        assert_eq!(fires[0].result, FireResult::Error);
        assert!(fires[0].error.contains("InsufficientScopes"), "{}", fires[0].error);
        assert!(EmbeddedQueue { kv: &kv }.task("fN1SmgV0T8WXX3LhKs2Gyw").unwrap().is_none());
    }

    #[test]
    fn only_a_stop_while_rendering_counts() {
        assert_eq!(stopped_attempts(&unfinished(2)), Some(2));
        assert_eq!(stopped_attempts(CREATING), None, "a fire interrupted after rendering is retried like new");
        assert_eq!(stopped_attempts("InterpreterError at template.payload"), None);
    }
}
