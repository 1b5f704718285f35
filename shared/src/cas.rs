//! Read-modify-write without lost updates, on the compare-and-swap Spin 3 really has.
//!
//! `update` retries a change until it lands. Two weak spots of Spin's backends shape it:
//! * Redis reports a swap aborted by its WATCH as done, so a reported swap is read back:
//!   if the key does not hold what was written, the change is applied again to what it
//!   does hold. Changes must therefore be idempotent (insert a member, remove a member,
//!   move a record from the state that was read), which every caller's is.
//! * SQLite's swap from "absent" is an unconditional write: two writers that both saw
//!   nothing both win. Documents that many writers share are therefore never absent:
//!   `crate::layout::setup` creates them once, and only records that one writer creates
//!   (after winning a claim in an index) are ever written from absent.

use crate::platform::{CasAttempt, KeyValue, StoreError};
use crate::store::StorageError;
use serde::{de::DeserializeOwned, Serialize};
use std::collections::BTreeMap;

/// Attempts before giving up: each failed attempt means another writer's change landed,
/// so this many concurrent writers on one key all get through.
const MAX_ATTEMPTS: usize = 500;

/// Applies `change` to the bytes at `key` until it has landed; returns its answer from the
/// attempt that did. `change(current)` gives the bytes to write (`None`: nothing to do)
/// and an answer.
pub fn update<R>(kv: &dyn KeyValue, key: &str, mut change: impl FnMut(Option<&[u8]>) -> (Option<Vec<u8>>, R)) -> Result<R, StoreError> {
    for _ in 0..MAX_ATTEMPTS {
        let mut answer = None;
        let mut written = None;
        let attempt = kv.compare_and_swap(key, &mut |current| {
            let (write, r) = change(current);
            answer = Some(r);
            written.clone_from(&write);
            write
        })?;
        let answer = answer.expect("compare_and_swap calls the update");
        match attempt {
            CasAttempt::Unchanged => return Ok(answer),
            CasAttempt::Conflict => continue,
            CasAttempt::Swapped => {
                let now = kv.get(key)?;
                if now == written {
                    return Ok(answer);
                }
                // Not what we wrote: either the swap did not land, or a later writer
                // changed it again. If the change is already there, it landed.
                if let (None, r) = change(now.as_deref()) {
                    return Ok(r);
                }
            }
        }
    }
    Err(StoreError(format!("`{key}`: still contended after {MAX_ATTEMPTS} compare-and-swap attempts")))
}

/// `update` over a JSON value (`T::default()` when absent, see the module comment). The
/// change edits the value in place; it is written only if it changed.
pub fn update_json<T, R>(kv: &dyn KeyValue, key: &str, mut change: impl FnMut(&mut T) -> R) -> Result<R, StorageError>
where
    T: Serialize + DeserializeOwned + Default + PartialEq + Clone,
{
    let mut corrupt = None;
    let r = update(kv, key, |current| {
        let before: T = match current.map(serde_json::from_slice::<T>) {
            None => T::default(),
            Some(Ok(v)) => v,
            Some(Err(e)) => {
                corrupt = Some(e.to_string());
                return (None, None);
            }
        };
        let mut after = before.clone();
        let r = change(&mut after);
        let write = (after != before || current.is_none()).then(|| serde_json::to_vec(&after).expect("serialises"));
        (write, Some(r))
    })?;
    match (r, corrupt) {
        (Some(r), _) => Ok(r),
        (None, reason) => Err(StorageError::Corrupt { key: key.to_string(), reason: reason.unwrap_or_default() }),
    }
}

/// An index document: member -> what the index keeps about it.
pub type IndexDoc<V> = BTreeMap<String, V>;

/// Reads a JSON document (`T::default()` when absent).
pub fn read_json<T: DeserializeOwned + Default>(kv: &dyn KeyValue, key: &str) -> Result<T, StorageError> {
    match kv.get(key)? {
        None => Ok(T::default()),
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| StorageError::Corrupt { key: key.to_string(), reason: e.to_string() }),
    }
}

/// Reads a JSON record, `None` if absent.
pub fn read_json_opt<T: DeserializeOwned>(kv: &dyn KeyValue, key: &str) -> Result<Option<T>, StorageError> {
    match kv.get(key)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| StorageError::Corrupt { key: key.to_string(), reason: e.to_string() }),
    }
}

/// Reads a counter that `increment` keeps, without creating it (`increment(key, 0)`
/// would write a zero counter for every key it is asked about, so a probe of an unknown
/// hook would grow the store). The bytes differ per backend: Spin's SQLite keeps 8
/// little-endian bytes, Redis the decimal string INCRBY keeps. 8 bytes that are all ASCII
/// digits are read as decimal: as little-endian they would be a count above 3 * 10^18.
pub fn read_counter(kv: &dyn KeyValue, key: &str) -> Result<i64, StorageError> {
    let Some(bytes) = kv.get(key)? else { return Ok(0) };
    counter_value(&bytes).ok_or_else(|| StorageError::Corrupt { key: key.to_string(), reason: "not a counter".into() })
}

/// A counter's value from its bytes, as either backend keeps them (see `read_counter`).
pub fn counter_value(bytes: &[u8]) -> Option<i64> {
    if bytes.len() == 8 && !bytes.iter().all(u8::is_ascii_digit) {
        return Some(i64::from_le_bytes(bytes.try_into().expect("8 bytes")));
    }
    std::str::from_utf8(bytes).ok().and_then(|s| s.parse().ok())
}

/// Who holds a member of an index after trying to claim it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This caller's claim is the one in the index.
    Won,
    /// Another claim was there first (its token).
    Held(String),
}

/// Claims `member` in the index at `key` with `token` (unique to the caller): exactly one
/// of several concurrent claimants wins, even where a swap is misreported, because the
/// winner is whoever's token the index holds.
pub fn claim(kv: &dyn KeyValue, key: &str, member: &str, token: &str) -> Result<Claim, StorageError> {
    update_json(kv, key, |doc: &mut IndexDoc<String>| match doc.get(member) {
        None => {
            doc.insert(member.to_string(), token.to_string());
            Claim::Won
        }
        Some(t) if t == token => Claim::Won,
        Some(t) => Claim::Held(t.clone()),
    })
}

/// Removes `member` from the index at `key`; whether it was there.
pub fn release(kv: &dyn KeyValue, key: &str, member: &str) -> Result<bool, StorageError> {
    update_json(kv, key, |doc: &mut IndexDoc<String>| doc.remove(member).is_some())
}

/// The values at `keys`, one round trip where the platform has one. Spin's Redis
/// backend fails every get-many of more than one key (it sends them to KEYS), so a failed
/// batch is read key by key.
pub fn get_many(kv: &dyn KeyValue, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
    match keys.len() {
        0 => Ok(vec![]),
        1 => Ok(vec![kv.get(&keys[0])?]),
        _ => match kv.get_many(keys) {
            Ok(values) if values.len() == keys.len() => Ok(values),
            _ => keys.iter().map(|k| kv.get(k)).collect(),
        },
    }
}

/// The JSON values at `keys` (`None` where absent), one batch read; a value that does not
/// parse is a corrupt record, named by its key.
pub fn get_many_json<T: DeserializeOwned>(kv: &dyn KeyValue, keys: &[String]) -> Result<Vec<Option<T>>, StorageError> {
    keys.iter()
        .zip(get_many(kv, keys)?)
        .map(|(key, value)| match value {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| StorageError::Corrupt { key: key.clone(), reason: e.to_string() }),
        })
        .collect()
}

/// Applies `change` to the record at `key` as stored, with compare-and-swap: `Ok(None)`
/// if there is no record, or if `change` returns false (nothing to do); otherwise the
/// record as written. `decode` and `encode` are the record's stored form (a sealed secret,
/// say); a record that does not decode is an error, not a retry. `change` may run more
/// than once.
pub fn update_record<T>(
    kv: &dyn KeyValue,
    key: &str,
    decode: impl Fn(&[u8]) -> Result<T, StorageError>,
    encode: impl Fn(&T) -> Vec<u8>,
    mut change: impl FnMut(&mut T) -> bool,
) -> Result<Option<T>, StorageError> {
    let mut failure = None;
    let result = update(kv, key, |current| {
        let Some(bytes) = current else { return (None, None) };
        let mut record = match decode(bytes) {
            Ok(r) => r,
            Err(e) => {
                failure = Some(e);
                return (None, None);
            }
        };
        if !change(&mut record) {
            return (None, None);
        }
        (Some(encode(&record)), Some(record))
    })?;
    match failure {
        Some(e) => Err(e),
        None => Ok(result),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::MemoryStore;

    #[test]
    fn a_change_lost_to_a_racing_writer_is_applied_again() {
        let kv = MemoryStore::default();
        kv.set("doc", b"{}").unwrap();
        let mut races = 3;
        *kv.between_read_and_swap.lock().unwrap() = Some(Box::new(move |data, key| {
            if races > 0 {
                races -= 1;
                let mut doc: IndexDoc<String> = serde_json::from_slice(&data[key]).unwrap();
                doc.insert(format!("racer{races}"), "t".into());
                data.insert(key.to_string(), serde_json::to_vec(&doc).unwrap());
            }
        }));
        assert_eq!(claim(&kv, "doc", "mine", "tok").unwrap(), Claim::Won);
        let doc: IndexDoc<String> = read_json(&kv, "doc").unwrap();
        assert_eq!(doc.keys().collect::<Vec<_>>(), ["mine", "racer0", "racer1", "racer2"], "nobody's entry lost");
    }

    #[test]
    fn a_swap_misreported_as_done_is_caught_by_reading_back() {
        // Redis: the racing write wins and our swap is reported done anyway.
        let kv = MemoryStore { report_aborted_swaps: true, ..Default::default() };
        kv.set("doc", b"{}").unwrap();
        let mut raced = false;
        *kv.between_read_and_swap.lock().unwrap() = Some(Box::new(move |data, key| {
            if !raced {
                raced = true;
                data.insert(key.to_string(), br#"{"m": "theirs"}"#.to_vec());
            }
        }));
        assert_eq!(claim(&kv, "doc", "m", "mine").unwrap(), Claim::Held("theirs".into()), "their claim landed, not ours");
        assert_eq!(claim(&kv, "doc", "other", "mine").unwrap(), Claim::Won);
        assert!(release(&kv, "doc", "m").unwrap());
        let doc: IndexDoc<String> = read_json(&kv, "doc").unwrap();
        assert_eq!(doc.into_iter().collect::<Vec<_>>(), [("other".to_string(), "mine".to_string())]);
    }

    #[test]
    fn counters_read_in_either_backends_bytes_without_being_created() {
        let kv = MemoryStore::default();
        assert_eq!(read_counter(&kv, "n").unwrap(), 0);
        assert_eq!(kv.get("n").unwrap(), None, "not created by reading");
        kv.increment("n", 300).unwrap();
        assert_eq!(read_counter(&kv, "n").unwrap(), 300, "SQLite's little-endian bytes");
        kv.set("r", b"12345678").unwrap();
        assert_eq!(read_counter(&kv, "r").unwrap(), 12_345_678, "Redis's decimal string of 8 digits");
        kv.set("r", b"7").unwrap();
        assert_eq!(read_counter(&kv, "r").unwrap(), 7);
        kv.set("x", b"{}").unwrap();
        assert!(read_counter(&kv, "x").is_err());
    }

    #[test]
    fn get_many_falls_back_to_single_reads() {
        let kv = MemoryStore { failing_get_many: true, ..Default::default() };
        kv.set("a", b"1").unwrap();
        let keys = ["a".to_string(), "b".to_string()];
        assert_eq!(get_many(&kv, &keys).unwrap(), vec![Some(b"1".to_vec()), None]);
    }
}
