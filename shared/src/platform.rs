//! The narrow platform traits the domain code runs on: a key-value store and a clock.
//! Components implement them over Spin's key-value store (`wasi:keyvalue`) and the WASI
//! clock; unit tests use `MemoryStore` and `FixedClock`.
//!
//! `KeyValue` has no way to list keys: nothing a component runs may cost more than its
//! answer, and a listing costs everything the store holds. Lists are indexes
//! (`crate::layout`). `KeyListing` is for the host's offline maintenance commands only
//! (`taskhooks kv upgrade`, `taskhooks kv verify`), which the components cannot reach.

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("key-value store: {0}")]
pub struct StoreError(pub String);

/// What one compare-and-swap attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasAttempt {
    /// The update asked for no change; nothing was written.
    Unchanged,
    /// The platform reported the swap done. Spin's Redis backend reports an aborted swap
    /// as done too, so callers that must know read the key back (`crate::cas`).
    Swapped,
    /// The value changed between the read and the swap.
    Conflict,
}

pub trait KeyValue {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// The values of `keys`, in their order (`None` for an absent key), in one round trip
    /// where the platform can.
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError>;
    /// Writes `entries` in one operation (`wasi:keyvalue/batch.set-many`: one transaction
    /// on Spin's SQLite, MSET on its Redis): records written together, such as a record
    /// and its expiry entry, cost one write instead of one each.
    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), StoreError>;
    /// Adds `delta` to the counter at `key` (absent = 0) atomically and returns the new
    /// value. A counter's bytes differ per backend: touch it only through `increment`.
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError>;
    /// One compare-and-swap attempt: reads the current value, asks `update` for the new
    /// one (`None`: leave it), and swaps it in if the value has not changed meanwhile.
    /// Spin's semantics: when the key was absent the swap is an unconditional write.
    fn compare_and_swap(&self, key: &str, update: &mut dyn FnMut(Option<&[u8]>) -> Option<Vec<u8>>) -> Result<CasAttempt, StoreError>;
}

/// Spin's get-many answers only the keys that exist, in no promised order: this lines
/// them up with the keys asked for, as `KeyValue::get_many` answers.
pub fn align_found(keys: &[String], found: Vec<(String, Option<Vec<u8>>)>) -> Vec<Option<Vec<u8>>> {
    let mut found: std::collections::HashMap<String, Option<Vec<u8>>> = found.into_iter().collect();
    keys.iter().map(|k| found.remove(k).flatten()).collect()
}

/// Listing every key: offline maintenance only (see the module comment).
pub trait KeyListing: KeyValue {
    fn all_keys(&self) -> Result<Vec<String>, StoreError>;
}

pub trait Clock {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that says what it is told, for tests.
pub struct FixedClock(pub Mutex<DateTime<Utc>>);

impl FixedClock {
    pub fn at(t: &str) -> Self {
        Self(Mutex::new(t.parse().expect("RFC 3339 time")))
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// An in-memory store, for tests, with the weak spots of Spin's backends switchable on:
/// a swap from "absent" is unconditional (SQLite, always), and `report_aborted_swaps`
/// makes a conflicting swap report success without writing (Redis).
#[derive(Default)]
pub struct MemoryStore {
    pub data: Mutex<BTreeMap<String, Vec<u8>>>,
    pub report_aborted_swaps: bool,
    /// Makes `get_many` fail, as Spin's Redis backend does (the callers fall back).
    pub failing_get_many: bool,
    /// Called between a compare-and-swap's read and its swap: a test's racing writer.
    #[allow(clippy::type_complexity)]
    pub between_read_and_swap: Mutex<Option<Box<dyn FnMut(&mut BTreeMap<String, Vec<u8>>, &str) + Send>>>,
}

impl MemoryStore {
    pub fn keys_with_prefix(&self, prefix: &str) -> Vec<String> {
        self.data.lock().unwrap().keys().filter(|k| k.starts_with(prefix)).cloned().collect()
    }
}

impl KeyValue for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.data.lock().unwrap().get(key).cloned())
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.data.lock().unwrap().insert(key.to_string(), value.to_vec());
        Ok(())
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.data.lock().unwrap().remove(key);
        Ok(())
    }
    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        let mut data = self.data.lock().unwrap();
        for (k, v) in entries {
            data.insert(k.clone(), v.clone());
        }
        Ok(())
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if self.failing_get_many && keys.len() > 1 {
            return Err(StoreError("get-many: ERR wrong number of arguments for 'keys' command".into()));
        }
        let data = self.data.lock().unwrap();
        Ok(keys.iter().map(|k| data.get(k).cloned()).collect())
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        let mut data = self.data.lock().unwrap();
        let n = match data.get(key) {
            None => 0,
            Some(b) => i64::from_le_bytes(b.as_slice().try_into().map_err(|_| StoreError(format!("`{key}` is not a counter")))?),
        };
        let next = n.checked_add(delta).ok_or_else(|| StoreError("counter overflow".into()))?;
        data.insert(key.to_string(), next.to_le_bytes().to_vec());
        Ok(next)
    }
    fn compare_and_swap(&self, key: &str, update: &mut dyn FnMut(Option<&[u8]>) -> Option<Vec<u8>>) -> Result<CasAttempt, StoreError> {
        let seen = self.data.lock().unwrap().get(key).cloned();
        let Some(new) = update(seen.as_deref()) else { return Ok(CasAttempt::Unchanged) };
        let mut data = self.data.lock().unwrap();
        if let Some(race) = self.between_read_and_swap.lock().unwrap().as_mut() {
            race(&mut data, key);
        }
        let unchanged = seen.is_none() || data.get(key) == seen.as_ref();
        if unchanged {
            data.insert(key.to_string(), new);
            Ok(CasAttempt::Swapped)
        } else if self.report_aborted_swaps {
            Ok(CasAttempt::Swapped)
        } else {
            Ok(CasAttempt::Conflict)
        }
    }
}

impl KeyListing for MemoryStore {
    fn all_keys(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.data.lock().unwrap().keys().cloned().collect())
    }
}
