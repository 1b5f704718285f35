//! The embedded queue: the part of the Taskcluster Queue a standalone deployment needs,
//! in the key-value store, with the Queue's own createTask semantics (SPEC §6.4):
//! defaults and date normalisation, the `created` ±15 minutes and deadline rules,
//! idempotency on an identical definition, 409 on a different one, and the scope
//! requirement checked against the creator's scopes.
//!
//! Keys (`crate::layout`): `task/<taskId>` holds `{task, status}`; a task group's members
//! are numbered with `increment` (`taskgroupseq/<group>`, `taskgroup/<group>/<n>`), so
//! concurrent creates never lose one and `listTaskGroup` reads only its group. A task
//! whose taskGroupId is its own taskId is member 0, listed by its own key. Each task
//! goes into the expiry bucket of its `expires` day, with its group entry.

use crate::expiry::{self, Expiring};
use crate::fire::TaskIdOrigin;
use crate::layout;
use crate::platform::KeyValue;
use crate::queue::create_task_requirement;
use crate::render::iso_time;
use crate::scopes::ScopeSet;
use crate::store::StorageError;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};

const MAX_DRIFT_MINUTES: i64 = 15;
const MAX_DEADLINE_DAYS: i64 = 5;

/// A refusal in the Queue's terms: the HTTP status and Taskcluster error code it answers.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct QueueRefusal {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl QueueRefusal {
    fn input(message: impl Into<String>) -> Self {
        Self { status: 400, code: "InputError", message: message.into() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CreateTaskError {
    #[error(transparent)]
    Refused(#[from] QueueRefusal),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

fn parse_time(task: &Map<String, Value>, field: &str) -> Result<DateTime<Utc>, QueueRefusal> {
    task.get(field)
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| QueueRefusal { status: 400, code: "InputValidationError", message: format!("`{field}` must be a date-time") })
}

/// The definition as the Queue stores it: its defaults filled in, dates as millisecond
/// ISO strings, `provisionerId`/`workerType` and `taskQueueId` both present. Two creates
/// are "the same task" when their normalised definitions are equal.
pub fn normalize_task(task: &Map<String, Value>) -> Result<Map<String, Value>, QueueRefusal> {
    let mut t = task.clone();
    let text = |t: &Map<String, Value>, k: &str| t.get(k).and_then(Value::as_str).map(str::to_string);
    let queue = match (text(&t, "taskQueueId"), text(&t, "provisionerId"), text(&t, "workerType")) {
        (Some(q), _, _) if q.split_once('/').is_some_and(|(p, w)| !p.is_empty() && !w.is_empty()) => q,
        (None, Some(p), Some(w)) if !p.is_empty() && !w.is_empty() => format!("{p}/{w}"),
        _ => return Err(QueueRefusal { status: 400, code: "InputValidationError", message: "a task needs `taskQueueId` (`<provisionerId>/<workerType>`), or `provisionerId` and `workerType`".into() }),
    };
    let (p, w) = queue.split_once('/').expect("checked above");
    t.insert("taskQueueId".into(), json!(queue));
    t.insert("provisionerId".into(), json!(p));
    t.insert("workerType".into(), json!(w));
    for (field, default) in [
        ("schedulerId", json!("-")),
        ("projectId", json!("none")),
        ("routes", json!([])),
        ("dependencies", json!([])),
        ("requires", json!("all-completed")),
        ("priority", json!("lowest")),
        ("retries", json!(5)),
        ("scopes", json!([])),
        ("tags", json!({})),
        ("extra", json!({})),
        ("payload", json!({})),
    ] {
        t.entry(field).or_insert(default);
    }
    if !t.get("metadata").is_some_and(|m| ["name", "description", "owner", "source"].iter().all(|k| m.get(k).is_some_and(Value::is_string))) {
        return Err(QueueRefusal { status: 400, code: "InputValidationError", message: "`metadata` must have string `name`, `description`, `owner` and `source`".into() });
    }
    for field in ["created", "deadline"] {
        let at = parse_time(&t, field)?;
        t.insert(field.into(), json!(iso_time(at)));
    }
    let deadline = parse_time(&t, "deadline")?;
    let expires = match t.get("expires") {
        // Checked: `deadline` is the caller's (RFC 3339 keeps it far from chrono's end,
        // but an overflow here would be a panic).
        None => deadline.checked_add_signed(Duration::days(365)).ok_or_else(|| QueueRefusal::input("deadline is out of range"))?,
        Some(_) => parse_time(&t, "expires")?,
    };
    t.insert("expires".into(), json!(iso_time(expires)));
    if let Some(s) = t.get("scopes").and_then(Value::as_array).and_then(|a| a.iter().find(|s| s.as_str().is_none_or(|s| s.ends_with("**")))) {
        return Err(QueueRefusal::input(format!("task scope {s} is not allowed (scopes must be strings and may not end in `**`)")));
    }
    Ok(t)
}

/// The task's status in a queue that runs nothing: pending until its deadline.
fn status(task_id: &str, t: &Map<String, Value>) -> Value {
    json!({
        "taskId": task_id,
        "provisionerId": t["provisionerId"],
        "workerType": t["workerType"],
        "taskQueueId": t["taskQueueId"],
        "schedulerId": t["schedulerId"],
        "projectId": t["projectId"],
        "taskGroupId": t["taskGroupId"],
        "deadline": t["deadline"],
        "expires": t["expires"],
        "retriesLeft": t["retries"],
        "state": "pending",
        "runs": [],
    })
}

pub struct EmbeddedQueue<'a> {
    pub kv: &'a dyn KeyValue,
}

/// One page of `listTaskGroup`.
pub struct TaskGroupPage {
    pub tasks: Vec<Value>,
    pub more: bool,
    pub scheduler_id: String,
    /// The latest `expires` of its tasks (ISO strings of one format compare as times).
    pub expires: String,
}

impl EmbeddedQueue<'_> {
    fn read(&self, task_id: &str) -> Result<Option<Value>, StorageError> {
        let key = layout::task(task_id);
        match self.kv.get(&key)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| StorageError::Corrupt { key, reason: e.to_string() }),
        }
    }

    /// createTask for a creator holding `scopes` (expanded), at `now`. Answers the Queue's
    /// `{status}` response. A [`TaskIdOrigin::Fresh`] taskId names no task yet, so the
    /// task is written without the duplicate check and the compare-and-swap: three reads
    /// and a conditional write fewer per fire.
    pub fn create_task(&self, task_id: &str, task: &Map<String, Value>, scopes: &ScopeSet, now: DateTime<Utc>, origin: TaskIdOrigin) -> Result<Value, CreateTaskError> {
        self.create_task_with(task_id, task, scopes, now, origin, Vec::new()).map(|(answer, _)| answer)
    }

    /// [`Self::create_task`], writing `with` (records that say the task exists: a fire's
    /// record of its result) in the same batch as a fresh task, so a trigger makes one
    /// write fewer. Answers whether `with` was written: only for a fresh taskId, as a
    /// checked create ends with a compare-and-swap of the task's key alone.
    pub fn create_task_with(
        &self,
        task_id: &str,
        task: &Map<String, Value>,
        scopes: &ScopeSet,
        now: DateTime<Utc>,
        origin: TaskIdOrigin,
        with: Vec<(String, Vec<u8>)>,
    ) -> Result<(Value, bool), CreateTaskError> {
        if !crate::ids::is_slugid(task_id) {
            return Err(QueueRefusal { status: 400, code: "InvalidRequestArguments", message: format!("taskId `{task_id}` is not a slugid") }.into());
        }
        let mut t = normalize_task(task)?;
        t.entry("taskGroupId").or_insert_with(|| json!(task_id));
        let required = create_task_requirement(&t);
        if let Some(missing) = required.unsatisfied(scopes) {
            return Err(QueueRefusal {
                status: 403,
                code: "InsufficientScopes",
                message: format!("the task needs scopes that were not granted:\n{missing}"),
            }
            .into());
        }
        let created = parse_time(&t, "created")?;
        let deadline = parse_time(&t, "deadline")?;
        let expires = parse_time(&t, "expires")?;
        let drift = Duration::minutes(MAX_DRIFT_MINUTES);
        if created < now - drift || created > now + drift {
            return Err(QueueRefusal::input(format!("`created` must be within {MAX_DRIFT_MINUTES} minutes of the queue's clock ({}); it is {}", iso_time(now), iso_time(created))).into());
        }
        if deadline < created || deadline < now {
            return Err(QueueRefusal::input("`deadline` cannot be before `created` or in the past").into());
        }
        if deadline > now + Duration::days(MAX_DEADLINE_DAYS) + drift {
            return Err(QueueRefusal::input(format!("`deadline` cannot be more than {MAX_DEADLINE_DAYS} days into the future")).into());
        }
        if expires < deadline {
            return Err(QueueRefusal::input("`expires` cannot be before `deadline`").into());
        }
        let answer = |existing: &Value| -> Result<Value, CreateTaskError> {
            if existing["task"] == Value::Object(t.clone()) {
                return Ok(json!({"status": existing["status"]}));
            }
            Err(QueueRefusal { status: 409, code: "RequestConflict", message: format!("taskId `{task_id}` already used by another task") }.into())
        };
        if origin == TaskIdOrigin::Given {
            if let Some(existing) = self.read(task_id)? {
                return answer(&existing).map(|a| (a, false));
            }
        }
        let status = status(task_id, &t);
        let group = t["taskGroupId"].as_str().unwrap_or(task_id).to_string();
        let record = json!({"task": t, "status": status});
        let bytes = serde_json::to_vec(&record).expect("serialises");
        // Membership first: a task is never stored without being listable in its group.
        // A task that is its own group (a hook's task, a decision task: the usual case) is
        // listed by its own key, member 0, with no entry to write.
        let mut records = Vec::new();
        let member = if group == task_id {
            0
        } else {
            let n = self.kv.increment(&layout::task_group_seq(&group), 1).map_err(StorageError::from)?;
            records.push((layout::task_group_member(&group, n), task_id.as_bytes().to_vec()));
            n
        };
        let expiring = Expiring::Task { task_id: task_id.to_string(), task_group_id: group, member };
        // A fresh task is written in the same batch (one write: no other create can race
        // it); any other is created below, only if its taskId is still free.
        if origin == TaskIdOrigin::Fresh {
            records.push((layout::task(task_id), bytes));
            records.extend(with);
            expiry::schedule_with(self.kv, expires, &expiring, records)?;
            return Ok((json!({"status": status}), true));
        }
        expiry::schedule_with(self.kv, expires, &expiring, records)?;
        // Created only if still absent (a concurrent create of the same taskId).
        let raced = crate::cas::update(self.kv, &layout::task(task_id), |current| match current {
            None => (Some(bytes.clone()), None),
            Some(existing) => (None, Some(serde_json::from_slice::<Value>(existing).unwrap_or(Value::Null))),
        })
        .map_err(StorageError::from)?;
        match raced {
            Some(existing) => answer(&existing).map(|a| (a, false)),
            None => Ok((json!({"status": status}), false)),
        }
    }

    pub fn task(&self, task_id: &str) -> Result<Option<Value>, StorageError> {
        Ok(self.read(task_id)?.map(|r| r["task"].clone()))
    }

    pub fn status(&self, task_id: &str) -> Result<Option<Value>, StorageError> {
        Ok(self.read(task_id)?.map(|r| json!({"status": r["status"]})))
    }

    /// The states of `task_ids` (`None` for a task not here), one batch read.
    pub fn states(&self, task_ids: &[String]) -> Result<Vec<Option<String>>, StorageError> {
        let keys: Vec<String> = task_ids.iter().map(|id| layout::task(id)).collect();
        let records: Vec<Option<Value>> = crate::cas::get_many_json(self.kv, &keys)?;
        Ok(records.into_iter().map(|r| r.and_then(|r| r["status"]["state"].as_str().map(str::to_string))).collect())
    }

    /// `listTaskGroup`: the group's tasks in taskId order, `limit` at a time.
    pub fn list_task_group(&self, group: &str, offset: usize, limit: usize) -> Result<Option<TaskGroupPage>, StorageError> {
        let n = crate::cas::read_counter(self.kv, &layout::task_group_seq(group))?;
        let slots: Vec<String> = (1..=n).map(|i| layout::task_group_member(group, i)).collect();
        let mut ids: Vec<String> = crate::cas::get_many(self.kv, &slots)?.into_iter().flatten().filter_map(|b| String::from_utf8(b).ok()).collect();
        // Member 0: the task whose taskId is the group's, if it is in the group (a store of
        // an earlier build may also hold an entry for it).
        ids.push(group.to_string());
        ids.sort();
        ids.dedup();
        let keys: Vec<String> = ids.iter().map(|id| layout::task(id)).collect();
        let records: Vec<Value> = crate::cas::get_many_json(self.kv, &keys)?.into_iter().flatten().filter(|r: &Value| r["task"]["taskGroupId"] == group).collect();
        if records.is_empty() {
            return Ok(None);
        }
        let more = records.len() > offset.saturating_add(limit);
        let tasks = records.iter().skip(offset).take(limit).map(|r| json!({"status": r["status"], "task": r["task"]})).collect();
        // The Queue's task group is one scheduler's, and lasts as long as its last task.
        let scheduler_id = records[0]["task"]["schedulerId"].as_str().unwrap_or("-").to_string();
        let expires = records.iter().filter_map(|r| r["task"]["expires"].as_str()).max().unwrap_or_default().to_string();
        Ok(Some(TaskGroupPage { tasks, more, scheduler_id, expires }))
    }

    /// The daily pass's part for one task from an expiry bucket: deleted with its group
    /// entry (none for member 0) once its `expires` has passed, as the Queue expires
    /// tasks; the group's counter goes with its last entry.
    pub fn expire_task(&self, task_id: &str, group: &str, member: i64, now: DateTime<Utc>) -> Result<bool, StorageError> {
        if let Some(record) = self.read(task_id)? {
            let expires = record["task"]["expires"].as_str().and_then(|t| t.parse::<DateTime<Utc>>().ok());
            if expires.is_none_or(|t| t >= now) {
                return Ok(false);
            }
        }
        self.kv.delete(&layout::task(task_id))?;
        if member == 0 {
            return Ok(true);
        }
        self.kv.delete(&layout::task_group_member(group, member))?;
        let n = crate::cas::read_counter(self.kv, &layout::task_group_seq(group))?;
        let slots: Vec<String> = (1..=n).map(|i| layout::task_group_member(group, i)).collect();
        if crate::cas::get_many(self.kv, &slots)?.iter().all(Option::is_none) {
            self.kv.delete(&layout::task_group_seq(group))?;
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::MemoryStore;
    use TaskIdOrigin::Given;

    const ID: &str = "fN1SmgV0T8WXX3LhKs2Gyw";

    fn now() -> DateTime<Utc> {
        "2026-11-23T12:00:00Z".parse().unwrap()
    }

    fn task(created: &str) -> Map<String, Value> {
        json!({
            "taskQueueId": "proj/ci", "created": created, "deadline": "2026-11-23T13:00:00Z",
            "payload": {}, "metadata": {"name": "n", "description": "d", "owner": "o@example.com", "source": "https://example.com"}
        })
        .as_object()
        .unwrap()
        .clone()
    }

    /// A second task of the group `ID` (its decision task's), as a decision task creates.
    const MEMBER: &str = "Yivoj_y3SJygz9zfVwhXDQ";

    fn member_task(created: &str) -> Map<String, Value> {
        let mut t = task(created);
        t.insert("taskGroupId".into(), json!(ID));
        t
    }

    fn all() -> ScopeSet {
        ScopeSet::new(["*"])
    }

    #[test]
    fn expired_tasks_go_with_their_group_entries() {
        let kv = MemoryStore::default();
        let q = EmbeddedQueue { kv: &kv };
        q.create_task(ID, &task("2026-11-23T12:00:00.000Z"), &all(), now(), Given).unwrap();
        q.create_task(MEMBER, &member_task("2026-11-23T12:00:00.000Z"), &all(), now(), Given).unwrap();
        assert_eq!(kv.keys_with_prefix("taskgroup"), vec![layout::task_group_member(ID, 1), layout::task_group_seq(ID)], "an entry for the member only");
        let expires: DateTime<Utc> = q.task(ID).unwrap().unwrap()["expires"].as_str().unwrap().parse().unwrap();
        let bucket = crate::expiry::bucket(&kv, &crate::expiry::day_of(expires + chrono::Duration::days(1))).unwrap();
        assert_eq!(
            bucket,
            vec![
                Expiring::Task { task_id: ID.into(), task_group_id: ID.into(), member: 0 },
                Expiring::Task { task_id: MEMBER.into(), task_group_id: ID.into(), member: 1 },
            ],
            "in its expiry day's bucket"
        );
        assert!(!q.expire_task(ID, ID, 0, expires - chrono::Duration::seconds(1)).unwrap());
        assert!(q.task(ID).unwrap().is_some());
        let later = expires + chrono::Duration::seconds(1);
        assert!(q.expire_task(ID, ID, 0, later).unwrap());
        assert_eq!(q.task(ID).unwrap(), None);
        assert_eq!(q.list_task_group(ID, 0, 10).unwrap().unwrap().tasks.len(), 1, "the member is still listed");
        assert!(q.expire_task(MEMBER, ID, 1, later).unwrap());
        assert!(kv.keys_with_prefix("taskgroup").is_empty(), "entry and counter gone");
        assert!(q.list_task_group(ID, 0, 10).unwrap().is_none());
    }

    #[test]
    fn a_task_that_is_its_own_group_is_listed_by_its_key_and_only_in_its_group() {
        let kv = MemoryStore::default();
        let q = EmbeddedQueue { kv: &kv };
        q.create_task(ID, &task("2026-11-23T12:00:00Z"), &all(), now(), Given).unwrap();
        q.create_task(MEMBER, &member_task("2026-11-23T12:00:00Z"), &all(), now(), Given).unwrap();
        let listed = |group: &str| q.list_task_group(group, 0, 10).unwrap().map(|p| p.tasks.iter().map(|t| t["status"]["taskId"].as_str().unwrap().to_string()).collect::<Vec<_>>());
        assert_eq!(listed(ID), Some(vec![MEMBER.to_string(), ID.to_string()]), "in taskId order");
        assert_eq!(listed(MEMBER), None, "a member is not a group of its own");
        // A store written by an earlier build holds an entry for the group's own task too.
        kv.set(&layout::task_group_member(ID, 2), ID.as_bytes()).unwrap();
        kv.increment(&layout::task_group_seq(ID), 1).unwrap();
        assert_eq!(listed(ID), Some(vec![MEMBER.to_string(), ID.to_string()]), "listed once");
    }

    /// A memory store that counts the reads and compare-and-swaps made, and can fail every
    /// `increment` (a membership that cannot be written).
    #[derive(Default)]
    struct Wrapped(MemoryStore, std::cell::Cell<usize>, bool);

    impl KeyValue for Wrapped {
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, crate::platform::StoreError> {
            self.1.set(self.1.get() + 1);
            self.0.get(key)
        }
        fn set(&self, key: &str, value: &[u8]) -> Result<(), crate::platform::StoreError> {
            self.0.set(key, value)
        }
        fn delete(&self, key: &str) -> Result<(), crate::platform::StoreError> {
            self.0.delete(key)
        }
        fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, crate::platform::StoreError> {
            self.1.set(self.1.get() + 1);
            self.0.get_many(keys)
        }
        fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), crate::platform::StoreError> {
            self.0.set_many(entries)
        }
        fn increment(&self, key: &str, delta: i64) -> Result<i64, crate::platform::StoreError> {
            if self.2 {
                return Err(crate::platform::StoreError("the store is down".into()));
            }
            self.0.increment(key, delta)
        }
        fn compare_and_swap(&self, key: &str, update: &mut dyn FnMut(Option<&[u8]>) -> Option<Vec<u8>>) -> Result<crate::platform::CasAttempt, crate::platform::StoreError> {
            self.1.set(self.1.get() + 1);
            self.0.compare_and_swap(key, update)
        }
    }

    #[test]
    fn a_fresh_task_is_written_without_reading_and_as_a_given_one_is() {
        let fresh = Wrapped::default();
        let a = EmbeddedQueue { kv: &fresh }.create_task(ID, &task("2026-11-23T12:00:00Z"), &all(), now(), TaskIdOrigin::Fresh).unwrap();
        assert_eq!(fresh.1.get(), 0, "no read, no compare-and-swap");
        let given = Wrapped::default();
        let b = EmbeddedQueue { kv: &given }.create_task(ID, &task("2026-11-23T12:00:00Z"), &all(), now(), Given).unwrap();
        assert!(given.1.get() >= 2, "a given taskId is looked up and swapped in");
        assert_eq!(a, b);
        assert_eq!(*fresh.0.data.lock().unwrap(), *given.0.data.lock().unwrap(), "the same keys and values");
        // A fresh member of another group: its entry, the task and the expiry entry.
        let q = EmbeddedQueue { kv: &fresh };
        q.create_task(MEMBER, &member_task("2026-11-23T12:00:00Z"), &all(), now(), TaskIdOrigin::Fresh).unwrap();
        assert_eq!(fresh.1.get(), 0);
        assert_eq!(q.list_task_group(ID, 0, 10).unwrap().unwrap().tasks.len(), 2);
    }

    #[test]
    fn create_is_idempotent_and_conflicts_on_a_different_definition() {
        let kv = MemoryStore::default();
        let q = EmbeddedQueue { kv: &kv };
        let first = q.create_task(ID, &task("2026-11-23T12:00:00Z"), &all(), now(), Given).unwrap();
        assert_eq!(first["status"]["state"], "pending");
        assert_eq!(first["status"]["taskGroupId"], ID);
        let stored = q.task(ID).unwrap().unwrap();
        assert_eq!(stored["created"], "2026-11-23T12:00:00.000Z", "dates normalised");
        assert_eq!(stored["expires"], "2027-11-23T13:00:00.000Z", "expires defaults to deadline + 1 year");
        assert_eq!((stored["provisionerId"].as_str(), stored["priority"].as_str()), (Some("proj"), Some("lowest")));
        // The same task written differently (no milliseconds, explicit default) is the same task.
        let mut same = task("2026-11-23T12:00:00.000Z");
        same.insert("priority".into(), json!("lowest"));
        assert_eq!(q.create_task(ID, &same, &all(), now(), Given).unwrap(), first);
        let mut other = task("2026-11-23T12:00:00Z");
        other.insert("payload".into(), json!({"x": 1}));
        let conflict = q.create_task(ID, &other, &all(), now(), Given).unwrap_err();
        assert!(matches!(conflict, CreateTaskError::Refused(QueueRefusal { status: 409, code: "RequestConflict", .. })), "{conflict}");
        q.create_task(MEMBER, &member_task("2026-11-23T12:00:00Z"), &all(), now(), Given).unwrap();
        q.create_task(MEMBER, &member_task("2026-11-23T12:00:00Z"), &all(), now(), Given).unwrap();
        let TaskGroupPage { tasks, more, .. } = q.list_task_group(ID, 0, 10).unwrap().unwrap();
        assert_eq!((tasks.len(), more), (2, false));
        assert_eq!(crate::cas::read_counter(&kv, &layout::task_group_seq(ID)).unwrap(), 1, "a repeated create lists nothing again");
        assert!(q.list_task_group("nope", 0, 10).unwrap().is_none());
    }

    #[test]
    fn a_task_whose_membership_cannot_be_written_is_not_stored() {
        let kv = Wrapped(MemoryStore::default(), Default::default(), true);
        let err = EmbeddedQueue { kv: &kv }.create_task(MEMBER, &member_task("2026-11-23T12:00:00Z"), &all(), now(), Given).unwrap_err();
        assert!(err.to_string().contains("the store is down"), "{err}");
        assert!(kv.0.data.lock().unwrap().is_empty(), "nothing written");
    }

    #[test]
    fn a_corrupt_record_under_the_taskid_is_an_error_not_a_conflict() {
        let kv = MemoryStore::default();
        kv.set(&layout::task(ID), b"{not json").unwrap();
        let err = EmbeddedQueue { kv: &kv }.create_task(ID, &task("2026-11-23T12:00:00Z"), &all(), now(), Given).unwrap_err();
        assert!(matches!(err, CreateTaskError::Storage(StorageError::Corrupt { .. })), "{err:?}");
        assert_eq!(crate::cas::read_counter(&kv, &layout::task_group_seq(ID)).unwrap(), 0, "no membership");
    }

    #[test]
    fn a_create_racing_another_of_the_same_task_lists_it_once() {
        let kv = MemoryStore::default();
        let q = EmbeddedQueue { kv: &kv };
        let first = q.create_task(MEMBER, &member_task("2026-11-23T12:00:00Z"), &all(), now(), Given).unwrap();
        let record = kv.get(&layout::task(MEMBER)).unwrap().unwrap();
        kv.delete(&layout::task(MEMBER)).unwrap();
        // Another create of the same task lands between this one's read and its swap (on
        // SQLite both swaps from absent land; the record is the same).
        *kv.between_read_and_swap.lock().unwrap() = Some(Box::new(move |data, key| {
            data.insert(key.to_string(), record.clone());
        }));
        assert_eq!(q.create_task(MEMBER, &member_task("2026-11-23T12:00:00Z"), &all(), now(), Given).unwrap(), first);
        assert_eq!(crate::cas::read_counter(&kv, &layout::task_group_seq(ID)).unwrap(), 2, "one membership per create that found the taskId free");
        let TaskGroupPage { tasks, .. } = q.list_task_group(ID, 0, 10).unwrap().unwrap();
        assert_eq!(tasks.len(), 1, "listed once");
    }

    #[test]
    fn the_queues_rules_are_enforced() {
        let kv = MemoryStore::default();
        let q = EmbeddedQueue { kv: &kv };
        let refused = |t: Map<String, Value>, scopes: &ScopeSet| match q.create_task(ID, &t, scopes, now(), Given) {
            Err(CreateTaskError::Refused(r)) => (r.status, r.code),
            other => panic!("{other:?}"),
        };
        assert_eq!(refused(task("2026-11-23T11:44:00Z"), &all()), (400, "InputError"), "created 16 minutes ago");
        assert_eq!(refused(task("2026-11-23T12:16:00Z"), &all()), (400, "InputError"), "created 16 minutes ahead");
        let mut far = task("2026-11-23T12:00:00Z");
        far.insert("deadline".into(), json!("2026-11-30T12:00:00Z"));
        assert_eq!(refused(far, &all()), (400, "InputError"));
        let mut no_queue = task("2026-11-23T12:00:00Z");
        no_queue.remove("taskQueueId");
        assert_eq!(refused(no_queue, &all()), (400, "InputValidationError"));
        let mut star = task("2026-11-23T12:00:00Z");
        star.insert("scopes".into(), json!(["secrets:**"]));
        assert_eq!(refused(star, &all()), (400, "InputError"));
        let narrow = ScopeSet::new(["queue:create-task:project:none", "queue:scheduler-id:-"]);
        assert_eq!(refused(task("2026-11-23T12:00:00Z"), &narrow), (403, "InsufficientScopes"));
        assert!(q.task(ID).unwrap().is_none(), "nothing stored by a refusal");
    }
}
