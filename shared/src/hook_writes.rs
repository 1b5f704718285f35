//! Creating, changing and removing a hook with every index that lists it (the hook shard,
//! the schedule's due slots, the Pulse binding shards), in the order that leaves a hook
//! findable whatever point a crash stops at. The Hooks API and the cron projects' managed
//! hooks both write hooks through here.

use crate::ids::{HookGroupId, HookId};
use crate::model::{Binding, HookDefinition, HookRecord};
use crate::store::{Created, StorageError, Store};

/// Creates `record`: the schedule index before the record (a crash between leaves the
/// hook findable; an entry of a creator that lost to another is dropped by the tick), the
/// binding index after it (an entry must never give a hook patterns it does not have).
pub fn create(store: &Store<'_>, record: &HookRecord) -> Result<Created, StorageError> {
    let d = &record.definition;
    crate::scheduler::index_hook(store.kv, record)?;
    let created = store.create_hook(record)?;
    if let Created::Created = created {
        crate::relay::bindings::index_bindings(store.kv, &d.hook_group_id, &d.hook_id, &[], &d.bindings)?;
    }
    Ok(created)
}

/// Replaces the stored hook's definition and schedule state with `updated`'s (keeping its
/// trigger token; with `keep_bindings`, its bindings as stored), applied to the hook as
/// stored: if it was removed meanwhile, nothing is written (`None`). Returns the bindings
/// it had and the hook as now stored.
pub fn replace(store: &Store<'_>, g: &HookGroupId, h: &HookId, updated: &HookRecord, keep_bindings: bool) -> Result<Option<(Vec<Binding>, HookRecord)>, StorageError> {
    crate::scheduler::index_hook(store.kv, updated)?;
    let mut old = Vec::new();
    let hook = store.update_hook(g, h, |hook| {
        let mut definition: HookDefinition = updated.definition.clone();
        if keep_bindings {
            definition.bindings.clone_from(&hook.definition.bindings);
        }
        old = std::mem::replace(&mut hook.definition, definition).bindings;
        hook.next_task_id.clone_from(&updated.next_task_id);
        hook.next_scheduled_date.clone_from(&updated.next_scheduled_date);
        true
    })?;
    let Some(hook) = hook else { return Ok(None) };
    crate::relay::bindings::index_bindings(store.kv, g.as_str(), h.as_str(), &old, &hook.definition.bindings)?;
    Ok(Some((old, hook)))
}

/// Removes the hook, its fires and its index entries; the hook as it was, if it was.
pub fn remove(store: &Store<'_>, g: &HookGroupId, h: &HookId) -> Result<Option<HookRecord>, StorageError> {
    let removed = store.hook(g, h)?;
    store.delete_hook(g, h)?;
    if let Some(hook) = &removed {
        crate::scheduler::unindex_hook(store.kv, hook)?;
    }
    let old = removed.as_ref().map(|hook| hook.definition.bindings.clone()).unwrap_or_default();
    crate::relay::bindings::index_bindings(store.kv, g.as_str(), h.as_str(), &old, &[])?;
    crate::relay::status::forget_state(store.kv, g.as_str(), h.as_str())?;
    Ok(removed)
}
