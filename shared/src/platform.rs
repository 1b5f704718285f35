//! The narrow platform traits the domain code runs on: a key-value store and a clock.
//! Components implement them over Spin's key-value store and the WASI clock; unit tests
//! use `MemoryStore` and `FixedClock`.

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("key-value store: {0}")]
pub struct StoreError(pub String);

pub trait KeyValue {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Every key starting with `prefix`, in no particular order. Spin's key-value
    /// interface can only list all keys, so implementations filter.
    fn keys(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
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

/// An in-memory store, for tests.
#[derive(Default)]
pub struct MemoryStore(pub Mutex<BTreeMap<String, Vec<u8>>>);

impl KeyValue for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.0.lock().unwrap().get(key).cloned())
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.0.lock().unwrap().insert(key.to_string(), value.to_vec());
        Ok(())
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.0.lock().unwrap().remove(key);
        Ok(())
    }
    fn keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self.0.lock().unwrap().keys().filter(|k| k.starts_with(prefix)).cloned().collect())
    }
}
