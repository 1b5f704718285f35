//! A hook's fires over time, for its page's charts: a counter per hook, hour and result
//! (`firestats/<g>/<h>/<YYYY-MM-DDTHH>/<result>`), added to with `increment` when a fire is
//! recorded, so a fire costs one key-value operation here. A chart reads the counters of
//! the hours it shows: 24 for the last day, 720 for the last 30 days (summed per day). Each
//! hour's counter goes in the daily pass once it is [`RETENTION_DAYS`] old, scheduled when
//! the counter is new.
//!
//! Declined fires are counted too: upstream's last fires do not record them, so this is
//! the only place they show.

use crate::cas;
use crate::expiry::{self, Expiring};
use crate::layout;
use crate::platform::KeyValue;
use crate::store::StorageError;
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::Serialize;

/// How long an hour's counters are kept.
pub const RETENTION_DAYS: i64 = 31;

pub const RESULTS: [&str; 3] = ["success", "error", "declined"];

fn hour_key(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H").to_string()
}

/// Counts one fire of `g/h` at `at`. A failure is logged, never passed on: a chart does
/// not fail a fire.
pub fn record(kv: &dyn KeyValue, g: &str, h: &str, result: &str, at: DateTime<Utc>) {
    let key = layout::fire_stat(g, h, &hour_key(at), result);
    let counted = kv.increment(&key, 1).map_err(StorageError::from).and_then(|n| {
        if n == 1 {
            expiry::schedule(kv, at + Duration::days(RETENTION_DAYS), &Expiring::Counter { key: key.clone() })?;
        }
        Ok(())
    });
    if let Err(e) = counted {
        eprintln!("fire stats: {g}/{h}: {e}");
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Bar {
    /// The hour (`2026-12-02T13:00:00.000Z`) or day (`2026-12-02`) it covers.
    pub start: String,
    pub success: i64,
    pub error: i64,
    pub declined: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Charts {
    /// The last 24 hours, oldest first, the current hour last.
    pub hours: Vec<Bar>,
    /// The last 30 days, oldest first, today last.
    pub days: Vec<Bar>,
}

/// The counts of today and the 29 days before it, up to `now`: one read of at most 720
/// hours x 3 results.
pub fn charts(kv: &dyn KeyValue, g: &str, h: &str, now: DateTime<Utc>) -> Result<Charts, StorageError> {
    let this_hour = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
    let first = now.duration_trunc(Duration::days(1)).unwrap_or(now) - Duration::days(29);
    let count = (this_hour - first).num_hours() + 1;
    let hours: Vec<DateTime<Utc>> = (0..count).map(|i| first + Duration::hours(i)).collect();
    let keys: Vec<String> = hours.iter().flat_map(|t| RESULTS.iter().map(move |r| layout::fire_stat(g, h, &hour_key(*t), r))).collect();
    let mut values = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(300) {
        values.extend(cas::get_many(kv, chunk)?.into_iter().map(|v| v.and_then(|b| cas::counter_value(&b)).unwrap_or(0)));
    }
    let bar = |start: String, at: usize| Bar { start, success: values[at * 3], error: values[at * 3 + 1], declined: values[at * 3 + 2] };
    let per_hour: Vec<Bar> = hours.iter().enumerate().map(|(i, t)| bar(crate::render::iso_time(*t), i)).collect();
    let mut days: Vec<Bar> = Vec::new();
    for (t, b) in hours.iter().zip(&per_hour) {
        let day = t.format("%Y-%m-%d").to_string();
        if days.last().is_none_or(|d| d.start != day) {
            days.push(Bar { start: day, ..Default::default() });
        }
        let d = days.last_mut().expect("pushed");
        d.success += b.success;
        d.error += b.error;
        d.declined += b.declined;
    }
    // The last 24 hours reach into yesterday; on the first day of a store they are all
    // there, as zeros.
    let last_day: Vec<Bar> = (0..24)
        .map(|i| this_hour - Duration::hours(23 - i))
        .map(|t| {
            let at = hours.iter().position(|h| *h == t);
            at.map_or_else(|| Bar { start: crate::render::iso_time(t), ..Default::default() }, |i| per_hour[i].clone())
        })
        .collect();
    Ok(Charts { hours: last_day, days })
}

/// The daily pass's part: an hour's counter past its retention goes.
pub fn expire(kv: &dyn KeyValue, key: &str, now: DateTime<Utc>) -> Result<bool, StorageError> {
    // The hour is in the key: `firestats/<g>/<h>/<hour>/<result>`.
    let hour = key.rsplit('/').nth(1).and_then(|h| chrono::NaiveDateTime::parse_from_str(&format!("{h}:00"), "%Y-%m-%dT%H:%M").ok());
    match hour {
        Some(t) if t.and_utc() + Duration::days(RETENTION_DAYS) <= now => {
            kv.delete(key)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::MemoryStore;

    #[test]
    fn fires_are_counted_per_hour_and_shown_per_hour_and_day() {
        let kv = MemoryStore::default();
        let now: DateTime<Utc> = "2026-12-02T13:40:00Z".parse().unwrap();
        for (ago_h, result) in [(0, "success"), (0, "success"), (0, "error"), (1, "declined"), (23, "success"), (24, "error"), (40, "success"), (719, "error"), (720, "error")] {
            record(&kv, "g", "h/1", result, now - Duration::hours(ago_h));
        }
        record(&kv, "g", "other", "success", now);
        let c = charts(&kv, "g", "h/1", now).unwrap();
        assert_eq!(c.hours.len(), 24);
        assert_eq!(c.hours[23], Bar { start: "2026-12-02T13:00:00.000Z".into(), success: 2, error: 1, declined: 0 });
        assert_eq!(c.hours[22].declined, 1);
        assert_eq!(c.hours[0].success, 1, "23 hours ago is the first bar");
        assert_eq!(c.days.len(), 30);
        assert_eq!(c.days[29].start, "2026-12-02");
        assert_eq!((c.days[29].success, c.days[29].error, c.days[29].declined), (2, 1, 1));
        assert_eq!((c.days[28].success, c.days[28].error), (1, 1), "yesterday: 23 and 24 hours ago");
        assert_eq!(c.days[27].success, 1, "40 hours ago");
        let total: i64 = c.days.iter().map(|d| d.success + d.error + d.declined).sum();
        assert_eq!(total, 7, "719 and 720 hours ago are on 2026-11-02, before the 30 days (2026-11-03 on)");
        assert_eq!(c.days[0].start, "2026-11-03");
        // Each hour's counter goes after 31 days.
        let old = layout::fire_stat("g", "h/1", &hour_key(now - Duration::hours(720)), "error");
        assert!(!expire(&kv, &old, now).unwrap());
        assert!(expire(&kv, &old, now + Duration::days(2)).unwrap());
        assert!(kv.get(&old).unwrap().is_none());
    }
}
