//! `taskhooks kv upgrade` and `taskhooks kv verify`: the offline maintenance of the
//! key-value store, run natively over the same backends the components use. These are
//! the only code that lists the store's keys (see `taskhooks_shared::platform`).

use crate::kv::KvBackend;
use anyhow::{bail, Result};
use std::sync::Arc;
use taskhooks_shared::platform::{CasAttempt, KeyListing, KeyValue, StoreError};

/// A host backend as the shared crate's `KeyValue`, with Spin's semantics (it is the very
/// code that serves `wasi:keyvalue` to the components).
pub struct BackendKv(pub Arc<dyn KvBackend>);

fn err(e: anyhow::Error) -> StoreError {
    StoreError(format!("{e:#}"))
}

impl KeyValue for BackendKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.get(key).map_err(err)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.0.set(key, value).map_err(err)
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.0.delete(key).map_err(err)
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        Ok(taskhooks_shared::platform::align_found(keys, self.0.get_many(keys).map_err(err)?))
    }
    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        self.0.set_many(entries).map_err(err)
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.0.increment(key, delta).map_err(err)
    }
    fn compare_and_swap(&self, key: &str, update: &mut dyn FnMut(Option<&[u8]>) -> Option<Vec<u8>>) -> Result<CasAttempt, StoreError> {
        let mut cas = self.0.new_cas(key).map_err(err)?;
        let current = cas.current().map_err(err)?;
        let Some(new) = update(current.as_deref()) else { return Ok(CasAttempt::Unchanged) };
        Ok(if cas.swap(&new).map_err(err)? { CasAttempt::Swapped } else { CasAttempt::Conflict })
    }
}

impl KeyListing for BackendKv {
    fn all_keys(&self) -> Result<Vec<String>, StoreError> {
        self.0.keys().map_err(err)
    }
}

pub fn run(what: &str, store: &BackendKv, repair: bool) -> Result<()> {
    match what {
        "upgrade" => {
            let r = taskhooks_shared::migrate::upgrade(store, chrono::Utc::now())?;
            if r.upgraded {
                println!(
                    "taskhooks: store upgraded to layout {}: {} hooks, {} fires, {} clients, {} roles, {} tasks, {} message markers",
                    taskhooks_shared::layout::VERSION, r.hooks, r.fires, r.clients, r.roles, r.tasks, r.markers
                );
            } else {
                println!("taskhooks: store already has layout {}", taskhooks_shared::layout::VERSION);
            }
            Ok(())
        }
        "verify" => {
            let r = taskhooks_shared::verify::verify(store, repair)?;
            for p in &r.problems {
                println!("taskhooks: {p}");
            }
            println!(
                "taskhooks: verified {} hooks, {} clients, {} roles, {} tasks: {} differences, {} repaired",
                r.hooks, r.clients, r.roles, r.tasks, r.problems.len(), r.repaired
            );
            if r.problems.len() > r.repaired {
                std::process::exit(1);
            }
            Ok(())
        }
        other => bail!("`kv` needs `upgrade` or `verify`, not `{other}`"),
    }
}
