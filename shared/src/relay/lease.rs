//! One relay at a time (cron on several hosts, an HTTP nudge during a cron run), so two
//! relays do not fire the same peeked batch side by side.
//!
//! The lease is `relay/lease` (`crate::layout`): `free`, or `<owner> <until ms>`, taken,
//! renewed and released by compare-and-swap from the value read, so of relays starting
//! together exactly one holds it (`crate::cas` reads every swap back, for Spin's Redis
//! backend, which reports a lost swap as done). It is short and renewed as the relay
//! works, so a killed relay blocks others for at most `TTL_MS`. Should it ever fail,
//! derived taskIds and message markers still keep tasks single.

use super::Relay;
use crate::cas;
use crate::layout;
use crate::store::StorageError;

pub(super) struct Lease {
    owner: String,
    /// When the lease was last written (ms), so `keep` renews it every `RENEW_MS`.
    renewed: std::cell::Cell<i64>,
}

fn holder(value: Option<&[u8]>) -> Option<(String, i64)> {
    let text = std::str::from_utf8(value?).ok()?;
    text.split_once(' ').and_then(|(owner, until)| Some((owner.to_string(), until.parse().ok()?)))
}

impl Lease {
    const TTL_MS: i64 = 10_000;
    const RENEW_MS: i64 = 2_000;

    fn value(&self, now: i64) -> Vec<u8> {
        format!("{} {}", self.owner, now + Self::TTL_MS).into_bytes()
    }

    /// The lease, unless another relay holds a live one.
    pub(super) fn acquire(relay: &Relay<'_>) -> Result<Option<Lease>, StorageError> {
        let lease = Lease { owner: crate::ids::nice_slugid(), renewed: std::cell::Cell::new(0) };
        let now = relay.clock.now().timestamp_millis();
        let mine = lease.value(now);
        let got = cas::update(relay.store.kv, layout::RELAY_LEASE, |current| match holder(current) {
            Some((owner, _)) if owner == lease.owner => (None, true),
            Some((_, until)) if until > now => (None, false),
            _ => (Some(mine.clone()), true),
        })?;
        lease.renewed.set(now);
        Ok(got.then_some(lease))
    }

    /// Extends the lease; `false` if another relay has taken it (ours had expired).
    pub(super) fn renew(&self, relay: &Relay<'_>) -> Result<bool, StorageError> {
        let now = relay.clock.now().timestamp_millis();
        let mine = self.value(now);
        let mut wrote = false;
        let held = cas::update(relay.store.kv, layout::RELAY_LEASE, |current| match holder(current) {
            // Written by this very attempt (a read-back): done.
            _ if wrote && current == Some(mine.as_slice()) => (None, true),
            Some((owner, _)) if owner == self.owner => {
                wrote = true;
                (Some(mine.clone()), true)
            }
            _ => (None, false),
        })?;
        if held {
            self.renewed.set(now);
        }
        Ok(held)
    }

    /// Renews the lease if `RENEW_MS` have passed since it was last written (called per
    /// message, so a slow batch keeps it); `false` if it was lost meanwhile.
    pub(super) fn keep(&self, relay: &Relay<'_>) -> Result<bool, StorageError> {
        if relay.clock.now().timestamp_millis() - self.renewed.get() < Self::RENEW_MS {
            return Ok(true);
        }
        self.renew(relay)
    }

    pub(super) fn release(self, relay: &Relay<'_>) -> Result<(), StorageError> {
        cas::update(relay.store.kv, layout::RELAY_LEASE, |current| match holder(current) {
            Some((owner, _)) if owner == self.owner => (Some(layout::LEASE_FREE.to_vec()), ()),
            _ => (None, ()),
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::{FixedClock, KeyValue, MemoryStore};

    #[test]
    fn one_holder_at_a_time_until_it_expires_or_is_released() {
        let kv = MemoryStore::default();
        kv.set(layout::RELAY_LEASE, layout::LEASE_FREE).unwrap();
        let key = crate::sealed::SealingKey::from_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap();
        let store = crate::store::Store { kv: &kv, key: &key };
        struct NoHttp;
        impl crate::remote_queue::HttpClient for NoHttp {
            fn send(&self, _: &str, _: &str, _: &[(String, String)], _: &[u8]) -> Result<(u16, Vec<u8>), String> {
                Err("no network in this test".into())
            }
            fn sleep(&self, _: std::time::Duration) {}
        }
        let http = NoHttp;
        let config = crate::pulse::PulseConfig {
            api_url: "http://127.0.0.1:9".into(),
            username: String::new(),
            password: String::new(),
            vhost: "/".into(),
            namespace: "taskhooks".into(),
        };
        let mq = crate::pulse::RabbitMq { http: &http, config: &config };
        let roles = crate::scopes::Roles::new(vec![]);
        let queue = crate::fire::EmbeddedTaskQueue { queue: crate::embedded_queue::EmbeddedQueue { kv: &kv }, roles: &roles };
        let clock = FixedClock::at("2026-11-23T12:00:00Z");
        let relay = Relay { store: &store, mq: &mq, queue: &queue, clock: &clock, batch: 10, source: None };
        let first = Lease::acquire(&relay).unwrap().expect("free: taken");
        assert!(Lease::acquire(&relay).unwrap().is_none(), "held");
        assert!(first.renew(&relay).unwrap());
        *clock.0.lock().unwrap() += chrono::Duration::seconds(11);
        let second = Lease::acquire(&relay).unwrap().expect("expired: taken over");
        assert!(!first.renew(&relay).unwrap(), "the first relay learns it lost the lease");
        first.release(&relay).unwrap();
        assert!(Lease::acquire(&relay).unwrap().is_none(), "a stale holder's release frees nothing");
        second.release(&relay).unwrap();
        assert!(Lease::acquire(&relay).unwrap().is_some());
    }
}
