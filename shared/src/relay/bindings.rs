//! Which hooks are bound to which exchange: 16 index documents
//! `index/bindings/<shard of the exchange>` (`crate::layout`), each
//! `{exchange: {"<g>/<h>": [routing key patterns]}}`, changed only by compare-and-swap.
//! The GitHub path finds an exchange's hooks with one read; the relay's reconcile reads
//! the 16 documents.

use crate::cas;
use crate::layout;
use crate::model::Binding;
use crate::platform::KeyValue;
use crate::store::StorageError;
use std::collections::{BTreeMap, BTreeSet};

/// A shard: exchange -> hook ref -> patterns.
type BindingShard = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// Records hook `g/h`'s `new` bindings in the index, dropping exchanges only `old` had.
pub fn index_bindings(kv: &dyn KeyValue, g: &str, h: &str, old: &[Binding], new: &[Binding]) -> Result<(), StorageError> {
    let mut patterns: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for b in new {
        patterns.entry(b.exchange.as_str()).or_default().push(b.routing_key_pattern.clone());
    }
    // Per shard: the exchanges to set and the exchanges to drop, in one swap.
    let mut by_shard: BTreeMap<String, (Vec<(&str, Vec<String>)>, Vec<&str>)> = BTreeMap::new();
    for (exchange, p) in &patterns {
        by_shard.entry(layout::binding_index(exchange)).or_default().0.push((exchange, p.clone()));
    }
    for b in old.iter().filter(|b| !patterns.contains_key(b.exchange.as_str())) {
        by_shard.entry(layout::binding_index(&b.exchange)).or_default().1.push(&b.exchange);
    }
    let entry = layout::hook_ref(g, h);
    for (key, (set, drop)) in by_shard {
        cas::update_json(kv, &key, |shard: &mut BindingShard| {
            for (exchange, p) in &set {
                shard.entry(exchange.to_string()).or_default().insert(entry.clone(), p.clone());
            }
            for exchange in &drop {
                if let Some(hooks) = shard.get_mut(*exchange) {
                    hooks.remove(&entry);
                    if hooks.is_empty() {
                        shard.remove(*exchange);
                    }
                }
            }
        })?;
    }
    Ok(())
}

fn read_shards(kv: &dyn KeyValue) -> Result<Vec<BindingShard>, StorageError> {
    Ok(cas::get_many_json(kv, &layout::binding_index_shards())?.into_iter().flatten().collect())
}

/// Every hook the index lists, as (hookGroupId, hookId).
pub fn bound_hooks(kv: &dyn KeyValue) -> Result<BTreeSet<(String, String)>, StorageError> {
    Ok(read_shards(kv)?.into_iter().flat_map(|s| s.into_values()).flat_map(|hooks| hooks.into_keys()).filter_map(|r| layout::parse_hook_ref(&r)).collect())
}

/// Hooks with a binding on `exchange`, with their patterns for it: one read.
pub fn hooks_bound_to(kv: &dyn KeyValue, exchange: &str) -> Result<Vec<(String, String, Vec<String>)>, StorageError> {
    let mut shard: BindingShard = cas::read_json(kv, &layout::binding_index(exchange))?;
    Ok(shard
        .remove(exchange)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(entry, patterns)| layout::parse_hook_ref(&entry).map(|(g, h)| (g, h, patterns)))
        .collect())
}

/// Drops hook `g/h` from every exchange (its index outlived it).
pub fn unindex_hook(kv: &dyn KeyValue, g: &str, h: &str) -> Result<(), StorageError> {
    let entry = layout::hook_ref(g, h);
    for key in layout::binding_index_shards() {
        cas::update_json(kv, &key, |shard: &mut BindingShard| {
            shard.retain(|_, hooks| {
                hooks.remove(&entry);
                !hooks.is_empty()
            });
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::MemoryStore;

    fn bindings(list: &[(&str, &str)]) -> Vec<Binding> {
        list.iter().map(|(e, p)| Binding { exchange: e.to_string(), routing_key_pattern: p.to_string() }).collect()
    }

    #[test]
    fn the_index_follows_bindings() {
        let kv = MemoryStore::default();
        let a = bindings(&[("exchange/x", "#"), ("exchange/x", "k.*"), ("exchange/y", "z")]);
        index_bindings(&kv, "g", "a/b", &[], &a).unwrap();
        index_bindings(&kv, "g", "other", &[], &bindings(&[("exchange/x", "q")])).unwrap();
        assert_eq!(
            hooks_bound_to(&kv, "exchange/x").unwrap(),
            vec![("g".into(), "a/b".into(), vec!["#".into(), "k.*".into()]), ("g".into(), "other".into(), vec!["q".into()])]
        );
        assert_eq!(bound_hooks(&kv).unwrap(), BTreeSet::from([("g".to_string(), "a/b".to_string()), ("g".to_string(), "other".to_string())]));
        index_bindings(&kv, "g", "a/b", &a, &bindings(&[("exchange/x", "#")])).unwrap();
        assert!(hooks_bound_to(&kv, "exchange/y").unwrap().is_empty());
        unindex_hook(&kv, "g", "a/b").unwrap();
        assert_eq!(bound_hooks(&kv).unwrap(), BTreeSet::from([("g".to_string(), "other".to_string())]));
    }
}
