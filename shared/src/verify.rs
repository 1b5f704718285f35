//! Checking every index against the records it lists (`taskhooks kv verify`), and
//! optionally repairing what differs. Offline maintenance: it lists the store, so only the
//! host runs it. With compare-and-swap no concurrent writer loses an index entry; what it
//! can find is a writer killed between writing a record and indexing it.

use crate::cas::{self, IndexDoc};
use crate::layout;
use crate::model::HookDefinition;
use crate::platform::KeyListing;
use crate::store::StorageError;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub hooks: usize,
    pub clients: usize,
    pub roles: usize,
    pub tasks: usize,
    /// Every difference found, one line each.
    pub problems: Vec<String>,
    pub repaired: usize,
}

/// Checks (and with `repair`, fixes) the hook, schedule, binding, client, role and
/// task-group indexes against the records.
pub fn verify(kv: &dyn KeyListing, repair: bool) -> Result<VerifyReport, StorageError> {
    let mut r = VerifyReport::default();
    let keys = kv.all_keys()?;
    let mut hooks: BTreeMap<(String, String), (HookDefinition, String)> = BTreeMap::new();
    for key in keys.iter().filter(|k| k.starts_with(layout::HOOKS)) {
        let Some(bytes) = kv.get(key)? else { continue };
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| StorageError::Corrupt { key: key.clone(), reason: e.to_string() })?;
        let d: HookDefinition = serde_json::from_value(v["definition"].clone()).map_err(|e| StorageError::Corrupt { key: key.clone(), reason: e.to_string() })?;
        let next = v["nextScheduledDate"].as_str().unwrap_or_default().to_string();
        hooks.insert((d.hook_group_id.clone(), d.hook_id.clone()), (d, next));
    }
    r.hooks = hooks.len();

    // Hook index: exactly the stored hooks.
    let mut indexed = BTreeSet::new();
    for shard in layout::hook_index_shards() {
        let doc: BTreeMap<String, IndexDoc<String>> = cas::read_json(kv, &shard)?;
        for (g, ids) in doc {
            indexed.extend(ids.into_keys().map(|h| (g.clone(), h)));
        }
    }
    for (g, h) in indexed.iter().filter(|id| !hooks.contains_key(*id)) {
        r.problems.push(format!("index/hooks lists {g}/{h}, which has no record"));
        if repair {
            let (g, h) = (g.clone(), h.clone());
            cas::update_json(kv, &layout::hook_index(&g), |s: &mut BTreeMap<String, IndexDoc<String>>| {
                if let Some(ids) = s.get_mut(&g) {
                    ids.remove(&h);
                    if ids.is_empty() {
                        s.remove(&g);
                    }
                }
            })?;
            r.repaired += 1;
        }
    }
    for ((g, h), (d, next)) in &hooks {
        if !indexed.contains(&(g.clone(), h.clone())) {
            r.problems.push(format!("hook {g}/{h} is missing from index/hooks"));
            if repair {
                cas::update_json(kv, &layout::hook_index(g), |s: &mut BTreeMap<String, IndexDoc<String>>| {
                    s.entry(g.clone()).or_default().entry(h.clone()).or_insert_with(|| "repaired".into());
                })?;
                r.repaired += 1;
            }
        }
        let record = crate::model::HookRecord { definition: d.clone(), trigger_token: String::new(), next_task_id: String::new(), next_scheduled_date: next.clone() };
        // Schedule: a scheduled hook is in the slot of its date or, overdue, of the cursor.
        if !d.schedule.is_empty() {
            let entry = layout::hook_ref(g, h);
            let mut found = false;
            if let Ok(at) = next.parse::<chrono::DateTime<chrono::Utc>>() {
                let hour = chrono::DurationRound::duration_trunc(at, chrono::Duration::hours(1)).unwrap_or(at);
                let cursor = kv.get(layout::TIMER_CURSOR)?.and_then(|b| String::from_utf8(b).ok()).and_then(|s| s.parse::<chrono::DateTime<chrono::Utc>>().ok());
                for slot in [Some(hour), cursor].into_iter().flatten() {
                    let doc: BTreeMap<String, i64> = cas::read_json(kv, &layout::due_slot(slot))?;
                    found |= doc.contains_key(&entry);
                }
            }
            if !found {
                r.problems.push(format!("scheduled hook {g}/{h} is missing from the schedule index"));
                if repair {
                    crate::scheduler::index_hook(kv, &record)?;
                    r.repaired += 1;
                }
            }
        }
        // Bindings: every exchange of the hook lists it with its patterns.
        let mut wanted: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for b in &d.bindings {
            wanted.entry(b.exchange.as_str()).or_default().push(b.routing_key_pattern.clone());
        }
        for (exchange, patterns) in wanted {
            let listed = crate::relay::hooks_bound_to(kv, exchange)?.into_iter().any(|(bg, bh, p)| (&bg, &bh) == (g, h) && p == patterns);
            if !listed {
                r.problems.push(format!("hook {g}/{h} is missing from the binding index of {exchange}"));
                if repair {
                    crate::relay::index_bindings(kv, g, h, &[], &d.bindings)?;
                    r.repaired += 1;
                }
            }
        }
    }
    for (g, h) in crate::relay::bindings::bound_hooks(kv)? {
        if hooks.get(&(g.clone(), h.clone())).is_none_or(|(d, _)| d.bindings.is_empty()) {
            r.problems.push(format!("the binding index lists {g}/{h}, which has no bindings"));
            if repair {
                crate::relay::bindings::unindex_hook(kv, &g, &h)?;
                r.repaired += 1;
            }
        }
    }

    // Clients and roles: index = records.
    for (index, prefix, name, count) in [(layout::CLIENT_INDEX, layout::CLIENTS, "client", &mut r.clients), (layout::ROLE_INDEX, layout::ROLES, "role", &mut r.roles)] {
        let doc: IndexDoc<String> = cas::read_json(kv, index)?;
        let records: BTreeSet<String> = keys.iter().filter_map(|k| k.strip_prefix(prefix)).map(|id| if name == "role" { layout::unpart(id) } else { id.to_string() }).collect();
        *count = records.len();
        for id in records.iter().filter(|id| !doc.contains_key(*id)) {
            r.problems.push(format!("{name} {id} is missing from {index}"));
            if repair {
                cas::update_json(kv, index, |d: &mut IndexDoc<String>| {
                    d.entry(id.clone()).or_insert_with(|| "repaired".into());
                })?;
                r.repaired += 1;
            }
        }
        for id in doc.keys().filter(|id| !records.contains(*id)) {
            r.problems.push(format!("{index} lists {name} {id}, which has no record"));
            if repair {
                cas::release(kv, index, id)?;
                r.repaired += 1;
            }
        }
    }

    // Tasks: each is listed in its group.
    for key in keys.iter().filter(|k| k.starts_with(layout::TASKS)) {
        r.tasks += 1;
        let task_id = &key[layout::TASKS.len()..];
        let Some(bytes) = kv.get(key)? else { continue };
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| StorageError::Corrupt { key: key.clone(), reason: e.to_string() })?;
        let group = v["task"]["taskGroupId"].as_str().unwrap_or(task_id).to_string();
        if group == task_id {
            continue; // Member 0: listed by its own key.
        }
        let n = cas::read_counter(kv, &layout::task_group_seq(&group))?;
        let slots: Vec<String> = (1..=n).map(|i| layout::task_group_member(&group, i)).collect();
        let listed = cas::get_many(kv, &slots)?.into_iter().flatten().any(|m| m == task_id.as_bytes());
        if !listed {
            r.problems.push(format!("task {task_id} is missing from task group {group}"));
            if repair {
                let member = kv.increment(&layout::task_group_seq(&group), 1)?;
                kv.set(&layout::task_group_member(&group, member), task_id.as_bytes())?;
                r.repaired += 1;
            }
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::{KeyValue, MemoryStore};

    #[test]
    fn differences_are_found_and_repaired() {
        let kv = MemoryStore::default();
        layout::create_fixed_documents(&kv).unwrap();
        kv.set("client/orphan", b"{}").unwrap();
        cas::claim(&kv, layout::ROLE_INDEX, "ghost", "t").unwrap();
        kv.set("task/T", br#"{"task": {"taskGroupId": "G"}, "status": {}}"#).unwrap();
        kv.set("task/G", br#"{"task": {"taskGroupId": "G"}, "status": {}}"#).unwrap();
        let found = verify(&kv, false).unwrap();
        assert_eq!(found.problems.len(), 3, "{:?}", found.problems);
        let fixed = verify(&kv, true).unwrap();
        assert_eq!(fixed.repaired, 3);
        assert!(verify(&kv, false).unwrap().problems.is_empty());
    }
}
