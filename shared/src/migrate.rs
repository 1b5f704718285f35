//! Upgrading a store written by taskhooks before 0.2 (layout 1: lists found by listing
//! keys) to the indexed layout of `crate::layout`, in place. Offline maintenance: it
//! lists the store, so only the host's `taskhooks kv upgrade` runs it, never a component
//! (they refuse an old store until it is upgraded).
//!
//! Idempotent and safe to kill anywhere: every step writes the new form before deleting
//! the old, steps that number things (a hook's fires, a task group's members) are done
//! per hook or group and marked done before their old keys go, and the layout version is
//! written last. Running it again finishes what a killed run left.
//!
//! What moves: the fires of each hook get sequence numbers (oldest first); `roles`
//! becomes one record per role; clients, hooks and task groups get their indexes; the
//! hourly `due/<hour>` documents and `binding/<exchange>` documents are rebuilt from the
//! hooks as the new indexes; everything that expires gets its expiry bucket. Hook, client
//! and task records keep their keys and values (sealed secrets are bound to the key name,
//! which does not change).

use crate::cas::{self, IndexDoc};
use crate::expiry::{self, Expiring};
use crate::layout;
use crate::model::{HookDefinition, HookRecord};
use crate::platform::KeyListing;
use crate::store::{RoleRecord, StorageError, FIRE_RETENTION_DAYS};
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpgradeReport {
    /// Whether the store was of layout 1 (false: already current; set-up completed).
    pub upgraded: bool,
    pub hooks: usize,
    pub fires: usize,
    pub clients: usize,
    pub roles: usize,
    pub tasks: usize,
    pub markers: usize,
}

fn corrupt(key: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt { key: key.to_string(), reason: e.to_string() }
}

fn json(kv: &dyn KeyListing, key: &str) -> Result<Option<Value>, StorageError> {
    match kv.get(key)? {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b).map(Some).map_err(|e| corrupt(key, e)),
    }
}

/// Upgrades the store to the current layout (or finishes an interrupted set-up).
pub fn upgrade(kv: &dyn KeyListing, now: DateTime<Utc>) -> Result<UpgradeReport, StorageError> {
    let mut report = UpgradeReport::default();
    layout::create_fixed_documents(kv)?;
    if kv.get(layout::VERSION_KEY)?.as_deref() == Some(layout::VERSION.as_bytes()) {
        return Ok(report);
    }
    report.upgraded = true;
    let keys = kv.all_keys()?;
    let with = |prefix: &'static str| keys.iter().filter(move |k| k.starts_with(prefix)).cloned();

    // Hooks: indexes (group, schedule, bindings) from the records.
    for key in with(layout::v1::HOOKS) {
        let Some(value) = json(kv, &key)? else { continue };
        let definition: HookDefinition = serde_json::from_value(value["definition"].clone()).map_err(|e| corrupt(&key, e))?;
        let (g, h) = (definition.hook_group_id.clone(), definition.hook_id.clone());
        cas::update_json(kv, &layout::hook_index(&g), |shard: &mut BTreeMap<String, IndexDoc<String>>| {
            shard.entry(g.clone()).or_default().entry(h.clone()).or_insert_with(|| "upgraded".into());
        })?;
        let bindings = definition.bindings.clone();
        // The schedule index needs the definition and the date only; secrets stay sealed.
        let record = HookRecord {
            definition,
            trigger_token: String::new(),
            next_task_id: String::new(),
            next_scheduled_date: value["nextScheduledDate"].as_str().unwrap_or_default().to_string(),
        };
        crate::scheduler::index_hook(kv, &record)?;
        crate::relay::bindings::index_bindings(kv, &g, &h, &[], &bindings)?;
        report.hooks += 1;
    }

    // Fires: `fire/<g>/<h>/<countdown ms>/<taskId>` -> sequence numbers, oldest first.
    let mut fires: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
    for key in with(layout::v1::FIRES) {
        let parts: Vec<&str> = key[layout::v1::FIRES.len()..].split('/').collect();
        if let [g, h, countdown, _task] = parts[..] {
            fires.entry((g.to_string(), h.to_string())).or_default().push((countdown.to_string(), key.clone()));
        }
    }
    for ((g, h_part), mut old) in fires {
        let h = layout::unpart(&h_part);
        let mark = layout::upgrade_mark("fires", &layout::hook_ref(&g, &h));
        old.sort_by(|a, b| b.0.cmp(&a.0)); // a larger countdown is an older fire
        if kv.get(&mark)?.is_none() {
            let mut seq = 0;
            for (countdown, key) in &old {
                let Some(fire) = json(kv, key)? else { continue };
                seq += 1;
                kv.set(&layout::fire(&g, &h, seq), &serde_json::to_vec(&fire).expect("serialises"))?;
                let at_ms = layout::v1::fire_ms(countdown);
                let at = DateTime::from_timestamp_millis(at_ms).unwrap_or(now);
                expiry::schedule(kv, at.max(now - Duration::days(FIRE_RETENTION_DAYS)) + Duration::days(FIRE_RETENTION_DAYS), &Expiring::Fire {
                    hook_group_id: g.clone(),
                    hook_id: h.clone(),
                    seq,
                })?;
            }
            let counter = layout::fire_seq(&g, &h);
            let current = cas::read_counter(kv, &counter)?;
            kv.increment(&counter, seq - current)?;
            kv.set(&mark, b"done")?;
            report.fires += seq as usize;
        }
        for (_, key) in &old {
            kv.delete(key)?;
        }
    }

    // Clients: the index.
    for key in with(layout::v1::CLIENTS) {
        let id = key[layout::v1::CLIENTS.len()..].to_string();
        cas::update_json(kv, layout::CLIENT_INDEX, |index: &mut IndexDoc<String>| {
            index.entry(id.clone()).or_insert_with(|| "upgraded".into());
        })?;
        report.clients += 1;
    }

    // Roles: one document -> a record each, and the index.
    if let Some(roles) = json(kv, layout::v1::ROLES)? {
        let roles: Vec<RoleRecord> = serde_json::from_value(roles).map_err(|e| corrupt(layout::v1::ROLES, e))?;
        for role in &roles {
            kv.set(&layout::role(&role.role_id), &serde_json::to_vec(role).expect("serialises"))?;
            cas::update_json(kv, layout::ROLE_INDEX, |index: &mut IndexDoc<String>| {
                index.entry(role.role_id.clone()).or_insert_with(|| "upgraded".into());
            })?;
        }
        report.roles = roles.len();
        kv.delete(layout::v1::ROLES)?;
    }

    // Tasks: group members numbered per group, and expiry.
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for key in with(layout::v1::TASK_GROUP_MEMBERS) {
        let parts: Vec<&str> = key[layout::v1::TASK_GROUP_MEMBERS.len()..].split('/').collect();
        // Layout 1's member keys are empty markers named by the taskId.
        if let [group, task_id] = parts[..] {
            if kv.get(&key)?.is_some_and(|v| v.is_empty()) {
                groups.entry(group.to_string()).or_default().push(task_id.to_string());
            }
        }
    }
    for (group, mut members) in groups {
        members.sort();
        let mark = layout::upgrade_mark("taskgroup", &group);
        if kv.get(&mark)?.is_none() {
            for (i, task_id) in members.iter().enumerate() {
                let n = i as i64 + 1;
                kv.set(&layout::task_group_member(&group, n), task_id.as_bytes())?;
                let expires = json(kv, &layout::task(task_id))?
                    .and_then(|t| t["task"]["expires"].as_str().and_then(|e| e.parse::<DateTime<Utc>>().ok()))
                    .unwrap_or(now);
                expiry::schedule(kv, expires.max(now), &Expiring::Task { task_id: task_id.clone(), task_group_id: group.clone(), member: n })?;
            }
            let counter = layout::task_group_seq(&group);
            let current = cas::read_counter(kv, &counter)?;
            kv.increment(&counter, members.len() as i64 - current)?;
            kv.set(&mark, b"done")?;
            report.tasks += members.len();
        }
        for task_id in &members {
            kv.delete(&layout::v1::task_group_member(&group, task_id))?;
        }
    }

    // Relay markers: expiry.
    for key in with(layout::v1::SEEN) {
        let at = kv
            .get(&key)?
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| t.split(':').nth(1).and_then(|ms| ms.parse::<i64>().ok()))
            .and_then(DateTime::from_timestamp_millis)
            .unwrap_or(now);
        expiry::schedule(kv, at.max(now - Duration::days(6)) + Duration::days(crate::relay::SEEN_RETENTION_DAYS), &Expiring::Seen { key: key.clone() })?;
        report.markers += 1;
    }

    // The old index documents, rebuilt above.
    for key in with(layout::v1::DUE_HOURS).filter(|k| k[layout::v1::DUE_HOURS.len()..].contains('T')).chain(with(layout::v1::BINDINGS)) {
        kv.delete(&key)?;
    }
    if kv.get(layout::EXPIRY_CURSOR)?.is_none() {
        kv.set(layout::EXPIRY_CURSOR, expiry::day_of(now).as_bytes())?;
    }
    // Layout 1 kept the day as days since the epoch; the next tick runs the daily pass.
    kv.delete(layout::TIMER_LAST_DAILY)?;
    kv.set(layout::VERSION_KEY, layout::VERSION.as_bytes())?;
    for key in kv.all_keys()?.into_iter().filter(|k| k.starts_with(layout::UPGRADE_MARKS)) {
        kv.delete(&key)?;
    }
    Ok(report)
}
