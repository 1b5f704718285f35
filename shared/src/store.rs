//! The typed records the service keeps, read and written through the key layout of
//! `crate::layout` (which says which key holds what and which index lists it).
//!
//! Every write that depends on what was read is a compare-and-swap (`crate::cas`): an
//! update applies to the record as it is, so a delete is never undone by a write that read
//! the record before it, and no index entry is lost to a concurrent writer.

use crate::ids::{HookGroupId, HookId};
use crate::model::{HookDefinition, HookRecord, LastFire};
use crate::cas::{self, Claim, IndexDoc};
use crate::expiry::{self, Expiring};
use crate::layout;
use crate::platform::{KeyValue, StoreError};
use crate::sealed::{SealError, SealingKey};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::BTreeMap;

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

/// How long a recorded fire is kept (SPEC §1.3: a year).
pub const FIRE_RETENTION_DAYS: i64 = 365;

/// A hook index shard: `{hookGroupId: {hookId: claim token}}`.
type HookShard = BTreeMap<String, IndexDoc<String>>;

/// What `create_hook` found.
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    Created,
    /// The hook already exists, as stored.
    Exists(Box<HookRecord>),
}

/// What `create_role` / `create_client` found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claimed<T> {
    Created,
    Exists(T),
}

/// A set-up store for tests: memory, with the layout's shared documents and a key.
#[cfg(test)]
pub(crate) struct Fixture {
    pub kv: crate::platform::MemoryStore,
    pub key: crate::sealed::SealingKey,
}

#[cfg(test)]
impl Fixture {
    pub fn new() -> Self {
        let kv = crate::platform::MemoryStore::default();
        crate::layout::ensure(&kv, &|_| {}).unwrap();
        Fixture { kv, key: crate::sealed::SealingKey::from_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap() }
    }

    pub fn store(&self) -> Store<'_> {
        Store { kv: &self.kv, key: &self.key }
    }
}

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

    fn seal_hook(&self, hook: &HookRecord) -> Vec<u8> {
        let key = layout::hook(&hook.definition.hook_group_id, &hook.definition.hook_id);
        let stored = StoredHook {
            definition: hook.definition.clone(),
            trigger_token: self.key.seal(&key, &hook.trigger_token),
            next_task_id: self.key.seal(&key, &hook.next_task_id),
            next_scheduled_date: hook.next_scheduled_date.clone(),
        };
        serde_json::to_vec(&stored).expect("records serialise")
    }

    fn open_hook(&self, key: &str, bytes: &[u8]) -> Result<HookRecord, StorageError> {
        let stored: StoredHook = serde_json::from_slice(bytes).map_err(|e| StorageError::Corrupt { key: key.to_string(), reason: e.to_string() })?;
        Ok(HookRecord {
            trigger_token: self.open(key, &stored.trigger_token)?,
            next_task_id: self.open(key, &stored.next_task_id)?,
            definition: stored.definition,
            next_scheduled_date: stored.next_scheduled_date,
        })
    }

    pub fn hook(&self, g: &HookGroupId, h: &HookId) -> Result<Option<HookRecord>, StorageError> {
        let key = layout::hook(g.as_str(), h.as_str());
        match self.kv.get(&key)? {
            None => Ok(None),
            Some(bytes) => self.open_hook(&key, &bytes).map(Some),
        }
    }

    /// A hook's definition alone, its sealed fields left sealed: the `hook` GET answers
    /// nothing else, and opening the trigger token and next taskId (AES-GCM-SIV, in
    /// software in a component) is most of the cost of reading a hook.
    pub fn hook_definition(&self, g: &HookGroupId, h: &HookId) -> Result<Option<HookDefinition>, StorageError> {
        Ok(self.read::<StoredHook>(&layout::hook(g.as_str(), h.as_str()))?.map(|stored| stored.definition))
    }

    /// Writes a hook record as it is, without its index entry: for upgrades and tests.
    pub fn put_hook(&self, hook: &HookRecord) -> Result<(), StorageError> {
        let key = layout::hook(&hook.definition.hook_group_id, &hook.definition.hook_id);
        Ok(self.kv.set(&key, &self.seal_hook(hook))?)
    }

    /// Creates the hook unless it exists: of concurrent creators exactly one creates it
    /// (the one whose claim the group's index holds); the others get what it stored.
    pub fn create_hook(&self, hook: &HookRecord) -> Result<Created, StorageError> {
        let (g, h) = (&hook.definition.hook_group_id, &hook.definition.hook_id);
        let token = crate::ids::nice_slugid();
        let claim = cas::update_json(self.kv, &layout::hook_index(g), |shard: &mut HookShard| {
            let hooks = shard.entry(g.clone()).or_default();
            match hooks.get(h) {
                None => {
                    hooks.insert(h.clone(), token.clone());
                    Claim::Won
                }
                Some(t) if *t == token => Claim::Won,
                Some(t) => Claim::Held(t.clone()),
            }
        })?;
        let key = layout::hook(g, h);
        if claim == Claim::Won {
            self.kv.set(&key, &self.seal_hook(hook))?;
            return Ok(Created::Created);
        }
        // Claimed by another creator, who writes the record right after its claim.
        for _ in 0..100 {
            if let Some(bytes) = self.kv.get(&key)? {
                return Ok(Created::Exists(Box::new(self.open_hook(&key, &bytes)?)));
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // A claim whose creator died before writing: this creator's record is the hook.
        self.kv.set(&key, &self.seal_hook(hook))?;
        Ok(Created::Created)
    }

    /// Applies `change` to the hook as stored (compare-and-swap, retried on conflict):
    /// `Ok(None)` if there is no such hook, or if `change` returns false (nothing to do);
    /// otherwise the hook as written. `change` may run more than once.
    pub fn update_hook(&self, g: &HookGroupId, h: &HookId, change: impl FnMut(&mut HookRecord) -> bool) -> Result<Option<HookRecord>, StorageError> {
        let key = layout::hook(g.as_str(), h.as_str());
        cas::update_record(self.kv, &key, |bytes| self.open_hook(&key, bytes), |hook| self.seal_hook(hook), change)
    }

    /// Deletes the hook, its index entry and all its recorded fires.
    pub fn delete_hook(&self, g: &HookGroupId, h: &HookId) -> Result<(), StorageError> {
        let (gs, hs) = (g.as_str().to_string(), h.as_str().to_string());
        cas::update_json(self.kv, &layout::hook_index(&gs), |shard: &mut HookShard| {
            if let Some(hooks) = shard.get_mut(&gs) {
                hooks.remove(&hs);
                if hooks.is_empty() {
                    shard.remove(&gs);
                }
            }
        })?;
        self.kv.delete(&layout::hook(&gs, &hs))?;
        let (floor, top) = self.fire_range(&gs, &hs)?;
        for seq in floor..=top {
            self.kv.delete(&layout::fire(&gs, &hs, seq))?;
        }
        self.kv.delete(&layout::fire_seq(&gs, &hs))?;
        self.kv.delete(&layout::fire_floor(&gs, &hs))?;
        self.kv.delete(&layout::scheduled_fire(&gs, &hs))?;
        Ok(())
    }

    /// Groups having at least one hook, sorted.
    pub fn hook_groups(&self) -> Result<Vec<String>, StorageError> {
        let shards: Vec<Option<HookShard>> = cas::get_many_json(self.kv, &layout::hook_index_shards())?;
        let mut groups: Vec<String> = shards.into_iter().flatten().flat_map(|shard| shard.into_iter().filter(|(_, hooks)| !hooks.is_empty()).map(|(g, _)| g)).collect();
        groups.sort();
        Ok(groups)
    }

    /// The hookIds of a group, sorted.
    pub fn hook_ids(&self, g: &HookGroupId) -> Result<Vec<String>, StorageError> {
        let shard: HookShard = cas::read_json(self.kv, &layout::hook_index(g.as_str()))?;
        Ok(shard.get(g.as_str()).map(|hooks| hooks.keys().cloned().collect()).unwrap_or_default())
    }

    /// A group's hooks ordered by hookId.
    pub fn hooks_in_group(&self, g: &HookGroupId) -> Result<Vec<HookRecord>, StorageError> {
        let keys: Vec<String> = self.hook_ids(g)?.iter().map(|h| layout::hook(g.as_str(), h)).collect();
        let mut hooks = Vec::new();
        for (key, value) in keys.iter().zip(cas::get_many(self.kv, &keys)?) {
            // Claimed but not yet written, or deleted since the index was read: not listed.
            if let Some(bytes) = value {
                hooks.push(self.open_hook(key, &bytes)?);
            }
        }
        hooks.sort_by(|a, b| a.definition.hook_id.cmp(&b.definition.hook_id));
        Ok(hooks)
    }

    /// The sequence numbers a hook's fires may have: (lowest, newest).
    fn fire_range(&self, g: &str, h: &str) -> Result<(i64, i64), StorageError> {
        let top = crate::cas::read_counter(self.kv, &layout::fire_seq(g, h))?;
        let floor: i64 = cas::read_json::<Option<i64>>(self.kv, &layout::fire_floor(g, h))?.unwrap_or(1);
        Ok((floor.max(1), top))
    }

    /// A sequence number for the hook's next fire record.
    pub fn next_fire_seq(&self, g: &str, h: &str) -> Result<i64, StorageError> {
        Ok(self.kv.increment(&layout::fire_seq(g, h), 1)?)
    }

    /// Records a fire at sequence number `seq` (from `next_fire_seq`; the same number again
    /// overwrites, which is how a redelivered message's retry keeps one record), or at a
    /// new one; schedules its expiry a year on.
    pub fn record_fire(&self, fire: &LastFire, at_ms: i64, seq: Option<i64>) -> Result<i64, StorageError> {
        let (g, h) = (&fire.hook_group_id, &fire.hook_id);
        let seq = match seq {
            Some(seq) => seq,
            None => self.next_fire_seq(g, h)?,
        };
        let at = chrono::DateTime::from_timestamp_millis(at_ms).unwrap_or_default();
        let record = (layout::fire(g, h, seq), serde_json::to_vec(fire).expect("records serialise"));
        expiry::schedule_with(
            self.kv,
            at + chrono::Duration::days(FIRE_RETENTION_DAYS),
            &Expiring::Fire { hook_group_id: g.clone(), hook_id: h.clone(), seq },
            vec![record],
        )?;
        Ok(seq)
    }

    /// The fire recorded at `seq`, if any.
    pub fn fire_record(&self, g: &str, h: &str, seq: i64) -> Result<Option<LastFire>, StorageError> {
        cas::read_json_opt(self.kv, &layout::fire(g, h, seq))
    }

    /// Replaces the fire recorded at `seq` (its expiry is already scheduled).
    pub fn write_fire_record(&self, fire: &LastFire, seq: i64) -> Result<(), StorageError> {
        self.write(&layout::fire(&fire.hook_group_id, &fire.hook_id, seq), fire)
    }

    /// Drops a fire record (a fire that declined after its unfinished record was written).
    pub fn delete_fire_record(&self, g: &str, h: &str, seq: i64) -> Result<(), StorageError> {
        Ok(self.kv.delete(&layout::fire(g, h, seq))?)
    }

    /// The hook's recorded fires, newest first, starting below sequence number `before`
    /// (`None`: the newest), at most `limit`; and where the next page starts, if any.
    pub fn fires(&self, g: &HookGroupId, h: &HookId, before: Option<i64>, limit: usize) -> Result<(Vec<LastFire>, Option<i64>), StorageError> {
        let (gs, hs) = (g.as_str(), h.as_str());
        let (floor, top) = self.fire_range(gs, hs)?;
        let mut next = before.map_or(top, |b| b.saturating_sub(1).min(top));
        let mut fires = Vec::new();
        // Pages of point reads down from the newest; gaps (a record never written, or
        // pruned) are skipped. One read past `limit` says whether more follow.
        while fires.len() <= limit && next >= floor {
            let want = (limit + 1 - fires.len()) as i64;
            let low = (next - want + 1).max(floor);
            let keys: Vec<String> = (low..=next).rev().map(|seq| layout::fire(gs, hs, seq)).collect();
            let found: Vec<Option<LastFire>> = cas::get_many_json(self.kv, &keys)?;
            fires.extend((low..=next).rev().zip(found).filter_map(|(seq, fire)| Some((seq, fire?))));
            next = low - 1;
        }
        let more = fires.len() > limit;
        fires.truncate(limit);
        let continue_below = if more { fires.last().map(|(seq, _)| *seq) } else { None };
        Ok((fires.into_iter().map(|(_, f)| f).collect(), continue_below))
    }

    /// The daily pass's part for a hook's fires from an expiry bucket: each is deleted if it
    /// is older than the retention (a newer record that reused the number stays), and the
    /// hook's floor raised past the newest that went, once; how many went.
    pub fn expire_fires(&self, g: &str, h: &str, seqs: &[i64], cutoff: chrono::DateTime<chrono::Utc>) -> Result<usize, StorageError> {
        let keys: Vec<String> = seqs.iter().map(|&seq| layout::fire(g, h, seq)).collect();
        let fires: Vec<Option<LastFire>> = cas::get_many_json(self.kv, &keys)?;
        let mut newest_gone = None;
        let mut gone = 0;
        for ((key, &seq), fire) in keys.iter().zip(seqs).zip(fires) {
            let old = fire.is_none_or(|f| f.task_create_time.parse::<chrono::DateTime<chrono::Utc>>().is_ok_and(|t| t < cutoff));
            if old {
                self.kv.delete(key)?;
                newest_gone = newest_gone.max(Some(seq));
                gone += 1;
            }
        }
        if let Some(seq) = newest_gone {
            cas::update_json(self.kv, &layout::fire_floor(g, h), |floor: &mut Option<i64>| {
                if floor.is_none_or(|f| f <= seq) {
                    *floor = Some(seq + 1);
                }
            })?;
        }
        Ok(gone)
    }

    fn open_client(&self, key: &str, bytes: &[u8]) -> Result<ClientRecord, StorageError> {
        let mut client: ClientRecord = serde_json::from_slice(bytes).map_err(|e| StorageError::Corrupt { key: key.to_string(), reason: e.to_string() })?;
        client.access_token = self.open(key, &client.access_token)?;
        Ok(client)
    }

    pub fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, StorageError> {
        let key = layout::client(client_id);
        match self.kv.get(&key)? {
            None => Ok(None),
            Some(bytes) => self.open_client(&key, &bytes).map(Some),
        }
    }

    fn seal_client(&self, client: &ClientRecord) -> Vec<u8> {
        let mut stored = client.clone();
        stored.access_token = self.key.seal(&layout::client(&client.client_id), &client.access_token);
        serde_json::to_vec(&stored).expect("records serialise")
    }

    /// Writes a client record as it is, without its index entry: for upgrades and tests.
    pub fn put_client(&self, client: &ClientRecord) -> Result<(), StorageError> {
        Ok(self.kv.set(&layout::client(&client.client_id), &self.seal_client(client))?)
    }

    /// Creates the client unless its id is taken (exactly one concurrent creator wins).
    pub fn create_client(&self, client: &ClientRecord) -> Result<Claimed<()>, StorageError> {
        let token = crate::ids::nice_slugid();
        match cas::claim(self.kv, layout::CLIENT_INDEX, &client.client_id, &token)? {
            Claim::Won => {
                self.put_client(client)?;
                Ok(Claimed::Created)
            }
            Claim::Held(_) => Ok(Claimed::Exists(())),
        }
    }

    /// Applies `change` to the client as stored; `Ok(None)` if there is none.
    pub fn update_client(&self, client_id: &str, mut change: impl FnMut(&mut ClientRecord)) -> Result<Option<ClientRecord>, StorageError> {
        let key = layout::client(client_id);
        let change = |client: &mut ClientRecord| {
            change(client);
            true
        };
        cas::update_record(self.kv, &key, |bytes| self.open_client(&key, bytes), |client| self.seal_client(client), change)
    }

    pub fn delete_client(&self, client_id: &str) -> Result<(), StorageError> {
        cas::release(self.kv, layout::CLIENT_INDEX, client_id)?;
        Ok(self.kv.delete(&layout::client(client_id))?)
    }

    /// The clients of `ids` that exist, in that order: one batch read.
    pub fn clients(&self, ids: &[String]) -> Result<Vec<ClientRecord>, StorageError> {
        let keys: Vec<String> = ids.iter().map(|id| layout::client(id)).collect();
        let mut clients = Vec::new();
        for (key, value) in keys.iter().zip(cas::get_many(self.kv, &keys)?) {
            if let Some(bytes) = value {
                clients.push(self.open_client(key, &bytes)?);
            }
        }
        Ok(clients)
    }

    /// Client ids starting with `prefix`, sorted.
    pub fn client_ids(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let index: IndexDoc<String> = cas::read_json(self.kv, layout::CLIENT_INDEX)?;
        Ok(index.into_keys().filter(|id| id.starts_with(prefix)).collect())
    }

    /// All roles, sorted by roleId: the index, then one batch read of the records.
    pub fn roles(&self) -> Result<Vec<RoleRecord>, StorageError> {
        let index: IndexDoc<String> = cas::read_json(self.kv, layout::ROLE_INDEX)?;
        let keys: Vec<String> = index.keys().map(|id| layout::role(id)).collect();
        Ok(cas::get_many_json(self.kv, &keys)?.into_iter().flatten().collect())
    }

    pub fn role(&self, role_id: &str) -> Result<Option<RoleRecord>, StorageError> {
        self.read(&layout::role(role_id))
    }

    /// Writes a role record as it is, without its index entry: for upgrades and tests.
    pub fn put_role(&self, role: &RoleRecord) -> Result<(), StorageError> {
        self.write(&layout::role(&role.role_id), role)
    }

    /// Creates the role unless it exists (exactly one concurrent creator wins); otherwise
    /// the role as stored.
    pub fn create_role(&self, role: &RoleRecord) -> Result<Claimed<Option<RoleRecord>>, StorageError> {
        let token = crate::ids::nice_slugid();
        match cas::claim(self.kv, layout::ROLE_INDEX, &role.role_id, &token)? {
            Claim::Won => {
                self.put_role(role)?;
                Ok(Claimed::Created)
            }
            Claim::Held(_) => Ok(Claimed::Exists(self.role(&role.role_id)?)),
        }
    }

    /// Applies `change` to the role as stored; `Ok(None)` if there is none.
    pub fn update_role(&self, role_id: &str, mut change: impl FnMut(&mut RoleRecord)) -> Result<Option<RoleRecord>, StorageError> {
        let key = layout::role(role_id);
        let decode = |bytes: &[u8]| serde_json::from_slice::<RoleRecord>(bytes).map_err(|e| StorageError::Corrupt { key: key.clone(), reason: e.to_string() });
        let change = |role: &mut RoleRecord| {
            change(role);
            true
        };
        cas::update_record(self.kv, &key, decode, |role| serde_json::to_vec(role).expect("serialises"), change)
    }

    /// Deletes the role: out of the index first (no request sees it from then on), then
    /// the record, so an update that read it before fails its swap.
    pub fn delete_role(&self, role_id: &str) -> Result<bool, StorageError> {
        let was = cas::release(self.kv, layout::ROLE_INDEX, role_id)?;
        self.kv.delete(&layout::role(role_id))?;
        Ok(was)
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
            assert_eq!(store.create_hook(&hook(g, h)).unwrap(), Created::Created);
        }
        assert!(matches!(store.create_hook(&hook("g", "a")).unwrap(), Created::Exists(_)));
        let (g, a, ab) = (HookGroupId::new("g").unwrap(), HookId::new("a").unwrap(), HookId::new("a/b").unwrap());
        assert_eq!(store.hook(&g, &ab).unwrap().unwrap(), hook("g", "a/b"));
        assert_eq!(store.hook_definition(&g, &ab).unwrap().unwrap(), hook("g", "a/b").definition, "the definition without opening the secrets");
        assert!(store.hook_definition(&g, &HookId::new("nope").unwrap()).unwrap().is_none());
        let raw = String::from_utf8(kv.get("hook/g/a%2Fb").unwrap().unwrap()).unwrap();
        assert!(!raw.contains("token-of") && !raw.contains("\"next\""), "secrets are sealed: {raw}");
        assert_eq!(store.hook_groups().unwrap(), ["g", "g2"]);
        let ids: Vec<String> = store.hooks_in_group(&g).unwrap().into_iter().map(|h| h.definition.hook_id).collect();
        assert_eq!(ids, ["a", "a-b", "a/b"]);

        let day = 86_400_000;
        store.record_fire(&fire("g", "a", "t1"), day, None).unwrap();
        store.record_fire(&fire("g", "a", "t2"), 2 * day, None).unwrap();
        store.record_fire(&fire("g", "a/b", "t3"), 3 * day, None).unwrap();
        let (fires, more) = store.fires(&g, &a, None, 10).unwrap();
        assert_eq!(fires.iter().map(|f| f.task_id.as_str()).collect::<Vec<_>>(), ["t2", "t1"], "newest first, only hook a");
        assert!(more.is_none());
        let (page, more) = store.fires(&g, &a, None, 1).unwrap();
        assert_eq!((page[0].task_id.as_str(), more), ("t2", Some(2)));
        let (rest, more) = store.fires(&g, &a, Some(2), 1).unwrap();
        assert_eq!((rest[0].task_id.as_str(), more), ("t1", None));

        store.delete_hook(&g, &a).unwrap();
        assert!(store.hook(&g, &a).unwrap().is_none());
        assert!(store.fires(&g, &a, None, 10).unwrap().0.is_empty());
        assert!(kv.keys_with_prefix("fire/g/a/").is_empty() && kv.get("fireseq/g/a").unwrap().is_none());
        assert_eq!(store.fires(&g, &ab, None, 10).unwrap().0.len(), 1, "hook a/b's fires untouched");
        assert_eq!(store.hook_ids(&g).unwrap(), ["a-b", "a/b"]);
        store.delete_hook(&HookGroupId::new("g2").unwrap(), &HookId::new("x").unwrap()).unwrap();
        assert_eq!(store.hook_groups().unwrap(), ["g"], "an emptied group is not listed");
    }

    #[test]
    fn an_update_applies_to_the_record_as_stored_and_never_revives_a_deleted_one() {
        let kv = MemoryStore::default();
        let k = key();
        let store = Store { kv: &kv, key: &k };
        store.create_hook(&hook("g", "h")).unwrap();
        let (g, h) = (HookGroupId::new("g").unwrap(), HookId::new("h").unwrap());
        // A removal lands between the update's read and its swap: the swap fails, the
        // retry finds nothing, and the hook stays removed.
        *kv.between_read_and_swap.lock().unwrap() = Some(Box::new(|data, key| {
            if key == "hook/g/h" {
                data.remove(key);
            }
        }));
        let updated = store.update_hook(&g, &h, |hook| {
            hook.trigger_token = "new".into();
            true
        });
        assert_eq!(updated.unwrap(), None);
        assert!(store.hook(&g, &h).unwrap().is_none());
    }

    #[test]
    fn expired_fires_go_and_raise_the_floor() {
        let kv = MemoryStore::default();
        let k = key();
        let store = Store { kv: &kv, key: &k };
        let (g, h) = (HookGroupId::new("g").unwrap(), HookId::new("h").unwrap());
        let mut old = fire("g", "h", "old");
        old.task_create_time = "2025-01-01T00:00:00.000Z".into();
        let mut new = fire("g", "h", "new");
        new.task_create_time = "2026-11-01T00:00:00.000Z".into();
        store.record_fire(&old, 0, None).unwrap();
        store.record_fire(&new, 0, None).unwrap();
        let cutoff = "2026-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(store.expire_fires("g", "h", &[1, 2], cutoff).unwrap(), 1, "the younger one is kept");
        assert_eq!(store.fire_range("g", "h").unwrap(), (2, 2));
        assert_eq!(store.fires(&g, &h, None, 10).unwrap().0.len(), 1);
    }

    #[test]
    fn roles_and_clients_are_claimed_once() {
        let kv = MemoryStore::default();
        let k = key();
        let store = Store { kv: &kv, key: &k };
        let role = |id: &str| RoleRecord { role_id: id.into(), scopes: vec!["a".into()], description: String::new(), created: String::new(), last_modified: String::new() };
        assert_eq!(store.create_role(&role("r/1")).unwrap(), Claimed::Created);
        assert_eq!(store.create_role(&role("r/1")).unwrap(), Claimed::Exists(Some(role("r/1"))));
        store.create_role(&role("a")).unwrap();
        assert_eq!(store.roles().unwrap().iter().map(|r| r.role_id.as_str()).collect::<Vec<_>>(), ["a", "r/1"]);
        assert!(store.delete_role("a").unwrap());
        assert_eq!(store.update_role("a", |r| r.scopes.clear()).unwrap(), None, "a deleted role is not revived");
        assert_eq!(store.roles().unwrap().len(), 1);
    }

    #[test]
    fn a_record_copied_to_another_key_does_not_open() {
        let kv = MemoryStore::default();
        let k = key();
        let store = Store { kv: &kv, key: &k };
        store.create_hook(&hook("g", "a")).unwrap();
        let bytes = kv.get("hook/g/a").unwrap().unwrap();
        kv.set("hook/g/b", &bytes).unwrap();
        let err = store.hook(&HookGroupId::new("g").unwrap(), &HookId::new("b").unwrap()).unwrap_err();
        assert!(matches!(err, StorageError::Sealed { .. }), "{err}");
    }
}
