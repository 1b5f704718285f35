//! The key layout: every key the service writes, what it holds, and what lists it. No
//! other module spells a key.
//!
//! Nothing is ever found by listing keys (a listing costs the whole store: see
//! `crate::platform`). Every list is an index read by point reads, kept with
//! compare-and-swap (`crate::cas`) or with `increment`-allocated sequence numbers.
//!
//! | key | value | listed by / kept with |
//! | --- | --- | --- |
//! | `layout/version` | `"2"` once the store has this layout | written by `setup` or the upgrade |
//! | `layout/setup` | counter: elects the one component that runs `setup` | `increment` |
//! | `index/hooks/<shard of g>` (64) | `{hookGroupId: {hookId: claim token}}` | fixed; CAS |
//! | `hook/<g>/<h>` | a hook: definition, sealed trigger token and nextTaskId, nextScheduledDate | `index/hooks/<shard of g>` |
//! | `fireseq/<g>/<h>` | counter: the hook's newest fire's sequence number | `increment` |
//! | `firefloor/<g>/<h>` | lowest sequence number that may still exist | CAS (daily pass) |
//! | `fire/<g>/<h>/<seq, 20 digits>` | one `LastFire` | `fireseq`..`firefloor`; `expiry/<day>` |
//! | `scheduledfire/<g>/<h>` | `<taskId> <seq>`: the fire record of the scheduled fire being tried, kept while the Queue fails | tick; the hook's delete |
//! | `index/clients` | `{clientId: claim token}` | fixed; CAS |
//! | `client/<clientId>` | a client, its access token sealed | `index/clients` |
//! | `index/roles` | `{roleId: claim token}` | fixed; CAS |
//! | `role/<roleId>` | a role | `index/roles` |
//! | `task/<taskId>` | an embedded-queue task with its status | `taskgroup/<group>/<n>`, or its own key when its taskGroupId is its taskId; `expiry/<day>` |
//! | `taskgroupseq/<group>` | counter: the group's members but the task named like it | `increment` |
//! | `taskgroup/<group>/<n>` | a member taskId | `taskgroupseq/<group>`; `expiry/<day>` |
//! | `due/<hour of week>` (168) | `{"<g>/<h>": next scheduled ms}`, hooks due in that hour of any week | fixed; CAS |
//! | `timer/cursor` | first UTC hour the ticks have not finished | tick |
//! | `timer/last-daily` | the day the daily pass last ran | daily pass |
//! | `index/bindings/<shard>` (16) | `{exchange: {"<g>/<h>": [routing key patterns]}}` | fixed; CAS |
//! | `pulse/bindings/<g>/<h>` | the hook's binding states on the broker | relay |
//! | `pulse/discards/<g>/<h>` | messages discarded for the hook: count and last | CAS |
//! | `pulse/seen/<g>/<h>/<identity>` | `pending:<ms>:<fire seq>` or `done:<ms>:<fire seq>`: a message handled | `expiry/<day>` |
//! | `relay/lease` | `free`, or `<owner> <until ms>` | fixed; CAS |
//! | `relay/last-run` | the last relay run's outcome: when, whether the broker and the Queue answered | relay |
//! | `index/cronprojects` | `{project: claim token}` | created on first use; CAS |
//! | `cronproject/<project>` | a cron project: its repository, job bindings and owner | `index/cronprojects` |
//! | `cronstatus/<project>` | the project's last sync: time, revision, jobs, error, and what its hooks were made from (a tick at the same revision does not read `.cron.yml` again) | tick |
//! | `notified/<g>/<h>` | ms of the last delivered failure report, and a sender's lease while one is sending (`<ms>` or `<ms> sending <until ms>`) | CAS |
//! | `expiryseq/<day>` | counter: entries in the day's expiry bucket | `increment` |
//! | `expiry/<day>/<n>` | one thing that may go that day (a fire, a task with its group entry, a marker) | `expiryseq/<day>` |
//! | `expiry/cursor` | first day the daily pass has not pruned | daily pass |
//! | `auditseq/<stream>` | counter: entries in an audit stream (`e/<entityType>/<entityId>` or `c/<clientId>`) | `increment` |
//! | `auditfloor/<stream>` | lowest entry number that may still exist | CAS (daily pass) |
//! | `audit/<stream>/<n, 20 digits>` | one audit entry (the entity's stream also holds the definition before and after) | `auditseq`..`auditfloor`; `expiry/<day>` |
//! | `firestats/<g>/<h>/<YYYY-MM-DDTHH>/<result>` | counter: the hook's fires of that result (`success`, `error`, `declined`) in that hour, for its charts | `increment`; `expiry/<day>` |
//! | `index/metrics` | the metric series that exist (`name{labels}:part`) | created on first use; CAS when a series' counter is new |
//! | `metric/<series>/<shard>` (8 per series) | counter: one shard of a metric series | `index/metrics`; `increment` |
//! | `service/started` | the build that runs (version, commit) and when it first ran: `ping`'s uptime | `crate::health` |
//! | `migrate/<step>/<id>` | an upgrade step done for one hook or task group | the upgrade, which deletes them at its end |
//!
//! The keys of layout 1 that only the upgrade reads are in [`v1`].
//!
//! `<h>` (a hookId may contain `/`) and other free-form parts are %-encoded by
//! [`part`], so that one key is never a prefix of an unrelated one's.
//!
//! Shared documents (the `fixed` rows) are created once by [`setup`] and never deleted:
//! Spin's SQLite compare-and-swap from "absent" is unconditional, so a document many
//! writers update must exist before the first of them (see `crate::cas`).

use crate::platform::{KeyValue, StoreError};
use chrono::{DateTime, Datelike, Timelike, Utc};
use sha2::Digest;

pub const VERSION: &str = "2";
pub const VERSION_KEY: &str = "layout/version";
/// The build that runs and when it first ran (`crate::health`).
pub const SERVICE_STARTED: &str = "service/started";
const SETUP_KEY: &str = "layout/setup";

pub const HOOK_SHARDS: usize = 64;
pub const BINDING_SHARDS: usize = 16;
pub const DUE_SLOTS: i64 = 168;

/// Encodes the characters that would make one key a prefix of an unrelated one.
pub fn part(s: &str) -> String {
    s.replace('%', "%25").replace('/', "%2F")
}

pub fn unpart(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn shard(s: &str, shards: usize) -> usize {
    let d = sha2::Sha256::digest(s.as_bytes());
    u16::from_be_bytes([d[0], d[1]]) as usize % shards
}

/// `<g>/<h>`: how indexes name a hook.
pub fn hook_ref(g: &str, h: &str) -> String {
    format!("{g}/{}", part(h))
}

/// The (hookGroupId, hookId) a `hook_ref` names.
pub fn parse_hook_ref(r: &str) -> Option<(String, String)> {
    let (g, h) = r.split_once('/')?;
    Some((g.to_string(), unpart(h)))
}

/// What every key of a kind starts with (for the offline commands, which list them).
pub const HOOKS: &str = "hook/";
pub const CLIENTS: &str = "client/";
pub const ROLES: &str = "role/";
pub const TASKS: &str = "task/";

pub fn hook(g: &str, h: &str) -> String {
    format!("{HOOKS}{}", hook_ref(g, h))
}

pub fn hook_index(g: &str) -> String {
    format!("index/hooks/{}", shard(g, HOOK_SHARDS))
}

/// `<prefix>0` .. `<prefix><count - 1>`: a family of fixed documents.
fn numbered(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|n| format!("{prefix}{n}")).collect()
}

pub fn hook_index_shards() -> Vec<String> {
    numbered("index/hooks/", HOOK_SHARDS)
}

pub fn fire_seq(g: &str, h: &str) -> String {
    format!("fireseq/{}", hook_ref(g, h))
}

pub fn fire_floor(g: &str, h: &str) -> String {
    format!("firefloor/{}", hook_ref(g, h))
}

pub fn fire(g: &str, h: &str, seq: i64) -> String {
    format!("fire/{}/{seq:020}", hook_ref(g, h))
}

pub fn scheduled_fire(g: &str, h: &str) -> String {
    format!("scheduledfire/{}", hook_ref(g, h))
}

pub const CLIENT_INDEX: &str = "index/clients";

pub fn client(id: &str) -> String {
    format!("{CLIENTS}{id}")
}

pub const ROLE_INDEX: &str = "index/roles";

pub fn role(id: &str) -> String {
    format!("{ROLES}{}", part(id))
}

pub fn task(id: &str) -> String {
    format!("{TASKS}{id}")
}

pub fn task_group_seq(group: &str) -> String {
    format!("taskgroupseq/{group}")
}

pub fn task_group_member(group: &str, n: i64) -> String {
    format!("taskgroup/{group}/{n}")
}

/// The schedule slot of an hour: its hour of the week.
pub fn due_slot(hour: DateTime<Utc>) -> String {
    let slot = i64::from(hour.weekday().num_days_from_monday()) * 24 + i64::from(hour.hour());
    format!("due/{slot}")
}

pub fn due_slots() -> Vec<String> {
    numbered("due/", DUE_SLOTS as usize)
}

pub const TIMER_CURSOR: &str = "timer/cursor";
pub const TIMER_LAST_DAILY: &str = "timer/last-daily";

pub fn binding_index(exchange: &str) -> String {
    format!("index/bindings/{}", shard(exchange, BINDING_SHARDS))
}

pub fn binding_index_shards() -> Vec<String> {
    numbered("index/bindings/", BINDING_SHARDS)
}

pub fn pulse_bindings(g: &str, h: &str) -> String {
    format!("pulse/bindings/{}", hook_ref(g, h))
}

pub fn pulse_discards(g: &str, h: &str) -> String {
    format!("pulse/discards/{}", hook_ref(g, h))
}

pub fn pulse_seen(g: &str, h: &str, identity: &str) -> String {
    format!("pulse/seen/{}/{}", hook_ref(g, h), part(identity))
}

pub const RELAY_LEASE: &str = "relay/lease";
pub const LEASE_FREE: &[u8] = b"free";

pub const CRON_PROJECT_INDEX: &str = "index/cronprojects";

pub fn cron_project(project: &str) -> String {
    format!("cronproject/{}", part(project))
}

pub fn cron_status(project: &str) -> String {
    format!("cronstatus/{}", part(project))
}

/// The last relay run's outcome, shown on every hook's Pulse status.
pub const RELAY_LAST_RUN: &str = "relay/last-run";

pub fn notified(g: &str, h: &str) -> String {
    format!("notified/{}", hook_ref(g, h))
}

/// A hook's fires of one result in one hour (`crate::fire_stats`).
pub fn fire_stat(g: &str, h: &str, hour: &str, result: &str) -> String {
    format!("firestats/{}/{hour}/{result}", hook_ref(g, h))
}

/// The series `index/metrics` lists (`crate::metrics`).
pub const METRICS_INDEX: &str = "index/metrics";

pub fn metric(series: &str, shard: u64) -> String {
    format!("metric/{}/{shard}", part(series))
}

/// `stream`: `crate::audit::entity_stream` or `client_stream` (already escaped).
pub fn audit_seq(stream: &str) -> String {
    format!("auditseq/{stream}")
}

pub fn audit_floor(stream: &str) -> String {
    format!("auditfloor/{stream}")
}

pub fn audit_entry(stream: &str, n: i64) -> String {
    format!("audit/{stream}/{n:020}")
}

pub fn expiry_seq(day: &str) -> String {
    format!("expiryseq/{day}")
}

pub fn expiry_entry(day: &str, n: i64) -> String {
    format!("expiry/{day}/{n}")
}

pub const EXPIRY_CURSOR: &str = "expiry/cursor";

/// Marks an upgrade step done for one hook or group (`crate::migrate`).
pub fn upgrade_mark(step: &str, id: &str) -> String {
    format!("{UPGRADE_MARKS}{step}/{id}")
}

pub const UPGRADE_MARKS: &str = "migrate/";

/// The keys of layout 1 (taskhooks before 0.2), which only the upgrade reads.
pub mod v1 {
    /// Every role, one document.
    pub const ROLES: &str = "roles";
    /// `hook/<g>/<h>`: the same records as now.
    pub const HOOKS: &str = "hook/";
    /// `fire/<g>/<h>/<9999999999999 - ms, 13 digits>/<taskId>`.
    pub const FIRES: &str = "fire/";
    /// `client/<clientId>`: the same records as now.
    pub const CLIENTS: &str = "client/";
    /// `taskgroup/<group>/<taskId>`, an empty value per member.
    pub const TASK_GROUP_MEMBERS: &str = "taskgroup/";
    /// `pulse/seen/<g>/<h>/<identity>`: the same markers, without a fire sequence number.
    pub const SEEN: &str = "pulse/seen/";
    /// `due/<YYYY-MM-DDTHH>`: the hooks due in that UTC hour.
    pub const DUE_HOURS: &str = "due/";
    /// `binding/<exchange>`: `{"<g>/<h>": [patterns]}`.
    pub const BINDINGS: &str = "binding/";

    pub fn task_group_member(group: &str, task_id: &str) -> String {
        format!("{TASK_GROUP_MEMBERS}{group}/{task_id}")
    }

    /// The ms of a fire from its key's countdown part.
    pub fn fire_ms(countdown: &str) -> i64 {
        9_999_999_999_999 - countdown.parse::<i64>().unwrap_or(0)
    }
}

/// The documents `setup` creates, with their empty value.
fn fixed_documents() -> Vec<(String, &'static [u8])> {
    let mut docs: Vec<(String, &'static [u8])> = vec![(CLIENT_INDEX.into(), b"{}"), (ROLE_INDEX.into(), b"{}"), (RELAY_LEASE.into(), LEASE_FREE)];
    docs.extend(hook_index_shards().into_iter().map(|k| (k, &b"{}"[..])));
    docs.extend(binding_index_shards().into_iter().map(|k| (k, &b"{}"[..])));
    docs.extend(due_slots().into_iter().map(|k| (k, &b"{}"[..])));
    docs
}

/// Creates the shared documents that are missing (none are overwritten).
pub fn create_fixed_documents(kv: &dyn KeyValue) -> Result<(), StoreError> {
    let docs = fixed_documents();
    let keys: Vec<String> = docs.iter().map(|(k, _)| k.clone()).collect();
    let present = crate::cas::get_many(kv, &keys)?;
    for ((key, empty), value) in docs.iter().zip(present) {
        if value.is_none() {
            kv.set(key, empty)?;
        }
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LayoutError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the key-value store holds data in the layout of taskhooks before 0.2 and must be upgraded first: run `taskhooks kv upgrade` (see the README)")]
    NeedsUpgrade,
    #[error("the key-value store's layout is being set up by another instance; try again")]
    SettingUp,
    #[error("the key-value store has layout version {0}, which this version of taskhooks does not know")]
    Unknown(String),
}

/// Keys a store of the layout before version 2 has once it has run (the roles document,
/// the timer's cursor and daily mark), while a new store has none: how an un-upgraded
/// store is told from a new one without listing it.
const V1_MARKERS: &[&str] = &[v1::ROLES, TIMER_CURSOR, TIMER_LAST_DAILY];

/// Makes sure the store has this layout before a component touches it: one read when it
/// has. A new store is set up by exactly one component (elected with `increment`); the
/// others wait for it briefly. A store of an older layout is refused with a message that
/// names the upgrade command.
pub fn ensure(kv: &dyn KeyValue, sleep: &dyn Fn(std::time::Duration)) -> Result<(), LayoutError> {
    for attempt in 0..50 {
        match kv.get(VERSION_KEY)? {
            Some(v) if v == VERSION.as_bytes() => return Ok(()),
            Some(v) => return Err(LayoutError::Unknown(String::from_utf8_lossy(&v).into_owned())),
            None => {}
        }
        if attempt == 0 {
            let markers: Vec<String> = V1_MARKERS.iter().map(|k| k.to_string()).collect();
            if crate::cas::get_many(kv, &markers)?.iter().any(Option::is_some) {
                return Err(LayoutError::NeedsUpgrade);
            }
            if kv.increment(SETUP_KEY, 1)? == 1 {
                create_fixed_documents(kv)?;
                kv.set(VERSION_KEY, VERSION.as_bytes())?;
                return Ok(());
            }
        }
        sleep(std::time::Duration::from_millis(20));
    }
    Err(LayoutError::SettingUp)
}

/// Makes sure the shared document `key` exists, for a document newer than the store's
/// set-up: the first caller (elected with `increment`, as `ensure` elects) writes `{}`,
/// the others wait for it. Compare-and-swap on a document that does not exist yet would
/// be an unconditional write on Spin's SQLite.
pub fn ensure_document(kv: &dyn KeyValue, key: &str, sleep: &dyn Fn(std::time::Duration)) -> Result<(), StoreError> {
    for attempt in 0..50 {
        if kv.get(key)?.is_some() {
            return Ok(());
        }
        if attempt == 0 && kv.increment(&format!("{key}/setup"), 1)? == 1 {
            kv.set(key, b"{}")?;
            return Ok(());
        }
        sleep(std::time::Duration::from_millis(20));
    }
    Err(StoreError(format!("the shared document {key} is being created by another instance; try again")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::MemoryStore;

    #[test]
    fn keys_of_one_hook_never_prefix_another_hooks() {
        assert_eq!(hook("g", "a/b"), "hook/g/a%2Fb");
        assert!(!fire("g", "a/b", 1).starts_with(&format!("fire/{}/", hook_ref("g", "a"))));
        assert_eq!(parse_hook_ref(&hook_ref("g", "a/%b")), Some(("g".into(), "a/%b".into())));
        assert_eq!(fire("g", "h", 42), "fire/g/h/00000000000000000042");
        assert_eq!(due_slot("2026-11-23T13:00:00Z".parse().unwrap()), "due/13", "a Monday");
        assert_eq!(due_slot("2026-11-29T23:00:00Z".parse().unwrap()), "due/167", "a Sunday");
    }

    #[test]
    fn a_new_store_is_set_up_once_and_an_old_one_is_refused() {
        let kv = MemoryStore::default();
        ensure(&kv, &|_| ()).unwrap();
        assert_eq!(kv.get(VERSION_KEY).unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(kv.get(&hook_index("g")).unwrap().as_deref(), Some(&b"{}"[..]));
        kv.set(&hook_index("g"), br#"{"g": {"h": "t"}}"#).unwrap();
        ensure(&kv, &|_| ()).unwrap();
        assert_eq!(kv.get(&hook_index("g")).unwrap().as_deref(), Some(&br#"{"g": {"h": "t"}}"#[..]), "never set up twice");

        let old = MemoryStore::default();
        old.set("roles", b"[]").unwrap();
        assert_eq!(ensure(&old, &|_| ()), Err(LayoutError::NeedsUpgrade));
        let busy = MemoryStore::default();
        busy.increment(SETUP_KEY, 1).unwrap();
        assert_eq!(ensure(&busy, &|_| ()), Err(LayoutError::SettingUp), "another instance is setting it up");
    }
}
