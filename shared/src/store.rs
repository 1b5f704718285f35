//! The typed records the service keeps in the key-value store, and their keys:
//!
//! | key | value |
//! | --- | --- |
//! | `hook/<hookGroupId>/<hookId, %-encoded>` | definition, sealed trigger token and nextTaskId, nextScheduledDate |
//! | `fire/<hookGroupId>/<hookId, %-encoded>/<inverted ms>/<taskId>` | one `LastFire` |
//! | `client/<clientId>` | a client, its access token sealed |
//! | `roles` | every role, one document |
//! | `task/<taskId>`, `taskgroup/...` | the embedded queue's tasks (`crate::embedded_queue`) |
//!
//! Lists come from key prefixes rather than index records: Spin's key-value interface has
//! no compare-and-swap, so a read-modify-write index would lose entries under concurrent
//! writes, while one key per record never does. The `/` inside a hookId is encoded in
//! keys so that hook `a`'s prefix never matches hook `a/b`'s records. Fire keys sort
//! newest first because the time part counts down.
//!
//! Roles are one document because every authenticated request needs all of them: one
//! read instead of a listing plus a read per role. Role edits are rare administrative
//! calls; two racing edits can lose one (last writer wins).

use crate::ids::{HookGroupId, HookId};
use crate::model::{HookDefinition, HookRecord, LastFire};
use crate::platform::{KeyValue, StoreError};
use crate::sealed::{SealError, SealingKey};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StorageError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored record `{key}` is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("record `{key}`: {source}")]
    Sealed { key: String, source: SealError },
}

/// A permanent client of the Auth API subset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientRecord {
    pub client_id: String,
    pub description: String,
    pub scopes: Vec<String>,
    pub expires: String,
    pub created: String,
    pub last_modified: String,
    pub last_date_used: String,
    pub last_rotated: String,
    pub delete_on_expiration: bool,
    pub disabled: bool,
    /// Plain in memory; sealed in the store.
    pub access_token: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleRecord {
    pub role_id: String,
    pub scopes: Vec<String>,
    pub description: String,
    pub created: String,
    pub last_modified: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredHook {
    definition: HookDefinition,
    trigger_token: String,
    next_task_id: String,
    next_scheduled_date: String,
}

/// Encodes the characters that would make one key a prefix of an unrelated one.
pub(crate) fn key_part(s: &str) -> String {
    s.replace('%', "%25").replace('/', "%2F")
}

fn hook_key(g: &HookGroupId, h: &HookId) -> String {
    format!("hook/{g}/{}", key_part(h.as_str()))
}

fn fires_prefix(g: &HookGroupId, h: &HookId) -> String {
    format!("fire/{g}/{}/", key_part(h.as_str()))
}

const ROLES_KEY: &str = "roles";

pub struct Store<'a> {
    pub kv: &'a dyn KeyValue,
    pub key: &'a SealingKey,
}

impl Store<'_> {
    fn read<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StorageError> {
        match self.kv.get(key)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StorageError::Corrupt { key: key.to_string(), reason: e.to_string() }),
        }
    }

    fn write<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StorageError> {
        Ok(self.kv.set(key, &serde_json::to_vec(value).expect("records serialise"))?)
    }

    fn open(&self, key: &str, sealed: &str) -> Result<String, StorageError> {
        self.key.open(key, sealed).map_err(|source| StorageError::Sealed { key: key.to_string(), source })
    }

    pub fn hook(&self, g: &HookGroupId, h: &HookId) -> Result<Option<HookRecord>, StorageError> {
        let key = hook_key(g, h);
        let Some(stored) = self.read::<StoredHook>(&key)? else { return Ok(None) };
        Ok(Some(HookRecord {
            trigger_token: self.open(&key, &stored.trigger_token)?,
            next_task_id: self.open(&key, &stored.next_task_id)?,
            definition: stored.definition,
            next_scheduled_date: stored.next_scheduled_date,
        }))
    }

    pub fn put_hook(&self, hook: &HookRecord) -> Result<(), StorageError> {
        let d = &hook.definition;
        let (g, h) = (HookGroupId::new(&d.hook_group_id), HookId::new(&d.hook_id));
        let (Ok(g), Ok(h)) = (g, h) else {
            return Err(StorageError::Corrupt { key: format!("hook/{}/{}", d.hook_group_id, d.hook_id), reason: "invalid ids".into() });
        };
        let key = hook_key(&g, &h);
        let stored = StoredHook {
            definition: hook.definition.clone(),
            trigger_token: self.key.seal(&key, &hook.trigger_token),
            next_task_id: self.key.seal(&key, &hook.next_task_id),
            next_scheduled_date: hook.next_scheduled_date.clone(),
        };
        self.write(&key, &stored)
    }

    /// Deletes the hook and all its recorded fires.
    pub fn delete_hook(&self, g: &HookGroupId, h: &HookId) -> Result<(), StorageError> {
        self.kv.delete(&hook_key(g, h))?;
        for key in self.kv.keys(&fires_prefix(g, h))? {
            self.kv.delete(&key)?;
        }
        Ok(())
    }

    /// Groups having at least one hook, sorted.
    pub fn hook_groups(&self) -> Result<Vec<String>, StorageError> {
        let mut groups: Vec<String> = self
            .kv
            .keys("hook/")?
            .into_iter()
            .filter_map(|k| k["hook/".len()..].split_once('/').map(|(g, _)| g.to_string()))
            .collect();
        groups.sort();
        groups.dedup();
        Ok(groups)
    }

    /// A group's hooks ordered by hookId.
    pub fn hooks_in_group(&self, g: &HookGroupId) -> Result<Vec<HookRecord>, StorageError> {
        let mut hooks = Vec::new();
        for key in self.kv.keys(&format!("hook/{g}/"))? {
            let id = percent_encoding::percent_decode_str(&key[format!("hook/{g}/").len()..]).decode_utf8_lossy().into_owned();
            if let Ok(h) = HookId::new(&id) {
                // A hook deleted between the listing and the read is simply not listed.
                if let Some(hook) = self.hook(g, &h)? {
                    hooks.push(hook);
                }
            }
        }
        hooks.sort_by(|a, b| a.definition.hook_id.cmp(&b.definition.hook_id));
        Ok(hooks)
    }

    pub fn record_fire(&self, fire: &LastFire, at_ms: i64) -> Result<(), StorageError> {
        let (Ok(g), Ok(h)) = (HookGroupId::new(&fire.hook_group_id), HookId::new(&fire.hook_id)) else {
            return Err(StorageError::Corrupt { key: "fire/".into(), reason: "invalid ids".into() });
        };
        let countdown = 9_999_999_999_999i64 - at_ms.clamp(0, 9_999_999_999_999);
        self.write(&format!("{}{countdown:013}/{}", fires_prefix(&g, &h), fire.task_id), fire)
    }

    /// The hook's recorded fires, newest first, from `offset`, at most `limit`; and
    /// whether more follow.
    pub fn fires(&self, g: &HookGroupId, h: &HookId, offset: usize, limit: usize) -> Result<(Vec<LastFire>, bool), StorageError> {
        let mut keys = self.kv.keys(&fires_prefix(g, h))?;
        keys.sort();
        let more = keys.len() > offset.saturating_add(limit);
        let mut fires = Vec::new();
        for key in keys.iter().skip(offset).take(limit) {
            if let Some(fire) = self.read::<LastFire>(key)? {
                fires.push(fire);
            }
        }
        Ok((fires, more))
    }

    /// Deletes every recorded fire older than `before_ms` (lastFires are kept for a year,
    /// SPEC §1.3); returns how many went. The time is read from the key, not the record.
    pub fn prune_fires(kv: &dyn KeyValue, before_ms: i64) -> Result<usize, StorageError> {
        let mut pruned = 0;
        for key in kv.keys("fire/")? {
            let countdown = key.rsplit('/').nth(1).and_then(|c| c.parse::<i64>().ok());
            if let Some(countdown) = countdown {
                if 9_999_999_999_999 - countdown < before_ms {
                    kv.delete(&key)?;
                    pruned += 1;
                }
            }
        }
        Ok(pruned)
    }

    pub fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, StorageError> {
        let key = format!("client/{client_id}");
        let Some(mut client) = self.read::<ClientRecord>(&key)? else { return Ok(None) };
        client.access_token = self.open(&key, &client.access_token)?;
        Ok(Some(client))
    }

    pub fn put_client(&self, client: &ClientRecord) -> Result<(), StorageError> {
        let key = format!("client/{}", client.client_id);
        let mut stored = client.clone();
        stored.access_token = self.key.seal(&key, &client.access_token);
        self.write(&key, &stored)
    }

    pub fn delete_client(&self, client_id: &str) -> Result<(), StorageError> {
        Ok(self.kv.delete(&format!("client/{client_id}"))?)
    }

    /// Client ids starting with `prefix`, sorted.
    pub fn client_ids(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let mut ids: Vec<String> = self.kv.keys(&format!("client/{prefix}"))?.into_iter().map(|k| k["client/".len()..].to_string()).collect();
        ids.sort();
        Ok(ids)
    }

    /// All roles, sorted by roleId.
    pub fn roles(&self) -> Result<Vec<RoleRecord>, StorageError> {
        Ok(self.read::<Vec<RoleRecord>>(ROLES_KEY)?.unwrap_or_default())
    }

    pub fn put_roles(&self, roles: &mut Vec<RoleRecord>) -> Result<(), StorageError> {
        roles.sort_by(|a, b| a.role_id.cmp(&b.role_id));
        self.write(ROLES_KEY, roles)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FireResult, HookMetadata};
    use crate::platform::MemoryStore;
    use crate::render::FiredBy;

    fn key() -> SealingKey {
        SealingKey::from_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap()
    }

    fn hook(g: &str, h: &str) -> HookRecord {
        HookRecord {
            definition: HookDefinition {
                hook_group_id: g.into(),
                hook_id: h.into(),
                metadata: HookMetadata { name: "n".into(), description: "d".into(), owner: "o@example.com".into(), email_on_error: true },
                task: Default::default(),
                bindings: vec![],
                schedule: vec![],
                trigger_schema: crate::model::default_trigger_schema(),
            },
            trigger_token: format!("token-of-{h}"),
            next_task_id: "next".into(),
            next_scheduled_date: crate::model::FAR_FUTURE.into(),
        }
    }

    fn fire(g: &str, h: &str, task_id: &str) -> LastFire {
        LastFire {
            hook_group_id: g.into(),
            hook_id: h.into(),
            fired_by: FiredBy::TriggerHook,
            task_id: task_id.into(),
            task_create_time: "t".into(),
            result: FireResult::Success,
            task_state: "unknown".into(),
            error: String::new(),
        }
    }

    #[test]
    fn hooks_round_trip_with_secrets_sealed_and_slashes_kept_apart() {
        let kv = MemoryStore::default();
        let k = key();
        let store = Store { kv: &kv, key: &k };
        for (g, h) in [("g", "a"), ("g", "a/b"), ("g2", "x"), ("g", "a-b")] {
            store.put_hook(&hook(g, h)).unwrap();
        }
        let (g, a, ab) = (HookGroupId::new("g").unwrap(), HookId::new("a").unwrap(), HookId::new("a/b").unwrap());
        assert_eq!(store.hook(&g, &ab).unwrap().unwrap(), hook("g", "a/b"));
        let raw = String::from_utf8(kv.get("hook/g/a%2Fb").unwrap().unwrap()).unwrap();
        assert!(!raw.contains("token-of") && !raw.contains("\"next\""), "secrets are sealed: {raw}");
        assert_eq!(store.hook_groups().unwrap(), ["g", "g2"]);
        let ids: Vec<String> = store.hooks_in_group(&g).unwrap().into_iter().map(|h| h.definition.hook_id).collect();
        assert_eq!(ids, ["a", "a-b", "a/b"]);

        store.record_fire(&fire("g", "a", "t1"), 1_000).unwrap();
        store.record_fire(&fire("g", "a", "t2"), 2_000).unwrap();
        store.record_fire(&fire("g", "a/b", "t3"), 3_000).unwrap();
        let (fires, more) = store.fires(&g, &a, 0, 10).unwrap();
        assert_eq!(fires.iter().map(|f| f.task_id.as_str()).collect::<Vec<_>>(), ["t2", "t1"], "newest first, only hook a");
        assert!(!more);
        let (page, more) = store.fires(&g, &a, 0, 1).unwrap();
        assert_eq!((page[0].task_id.as_str(), more), ("t2", true));

        assert_eq!(Store::prune_fires(&kv, 1_500).unwrap(), 1, "only t1 is older");
        assert_eq!(store.fires(&g, &a, 0, 10).unwrap().0.iter().map(|f| f.task_id.as_str()).collect::<Vec<_>>(), ["t2"]);
        store.delete_hook(&g, &a).unwrap();
        assert!(store.hook(&g, &a).unwrap().is_none());
        assert!(store.fires(&g, &a, 0, 10).unwrap().0.is_empty());
        assert_eq!(store.fires(&g, &ab, 0, 10).unwrap().0.len(), 1, "hook a/b's fires untouched");
    }

    #[test]
    fn a_record_copied_to_another_key_does_not_open() {
        let kv = MemoryStore::default();
        let k = key();
        let store = Store { kv: &kv, key: &k };
        store.put_hook(&hook("g", "a")).unwrap();
        let bytes = kv.get("hook/g/a").unwrap().unwrap();
        kv.set("hook/g/b", &bytes).unwrap();
        let err = store.hook(&HookGroupId::new("g").unwrap(), &HookId::new("b").unwrap()).unwrap_err();
        assert!(matches!(err, StorageError::Sealed { .. }), "{err}");
    }
}
