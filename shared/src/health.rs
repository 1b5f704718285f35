//! What `ping`, `__heartbeat__` and `__version__` report. Components are stateless, so the
//! service's uptime is kept in the store: `service/started` names the build (version and
//! commit) that runs and when it first ran (the first tick or request that saw it), and
//! `ping`'s `uptime` is the seconds since then. The heartbeat asks each dependency that is
//! configured (the key-value store, the remote Queue, RabbitMQ's management API) and names
//! every one that did not answer.

use crate::layout;
use crate::platform::KeyValue;
use crate::remote_queue::HttpClient;
use crate::render::{iso_time, parse_time_ms};
use crate::store::StorageError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::Duration;

/// What was built: baked in at build time (`functions/spin-adapter/build.rs`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Build {
    pub version: String,
    /// The source commit (`git rev-parse HEAD`), or empty when built outside git.
    pub commit: String,
    /// RFC 3339 (`SOURCE_DATE_EPOCH` when set, for reproducible builds).
    pub time: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Started {
    version: String,
    commit: String,
    time: String,
}

/// Notes that `build` runs (once per build: a key read when it is already noted), and
/// answers since when.
pub fn note_start(kv: &dyn KeyValue, build: &Build, now: DateTime<Utc>) -> Result<DateTime<Utc>, StorageError> {
    let noted = |s: &Option<Started>| {
        s.as_ref()
            .filter(|s| s.version == build.version && s.commit == build.commit)
            .and_then(|s| parse_time_ms(&s.time))
            .and_then(DateTime::from_timestamp_millis)
    };
    let current: Option<Started> = crate::cas::read_json_opt(kv, layout::SERVICE_STARTED)?;
    if let Some(t) = noted(&current) {
        return Ok(t);
    }
    // Another build ran before (or nothing did): this one starts now, by compare-and-swap,
    // so of two components noting it at once the first one's time stands.
    crate::cas::update_json(kv, layout::SERVICE_STARTED, |s: &mut Option<Started>| match noted(s) {
        Some(t) => t,
        None => {
            *s = Some(Started { version: build.version.clone(), commit: build.commit.clone(), time: iso_time(now) });
            now
        }
    })
}

/// `ping`'s `uptime`: seconds since this build first ran; 0 when the store cannot say (a
/// `ping` answers whatever the store does).
pub fn uptime(kv: &dyn KeyValue, build: &Build, now: DateTime<Utc>) -> f64 {
    match note_start(kv, build, now) {
        Ok(started) => (now - started).num_milliseconds().max(0) as f64 / 1000.0,
        Err(_) => 0.0,
    }
}

/// How long each dependency may take to answer the heartbeat (the request's own limit is
/// 10 s, and there are up to three).
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// The dependencies the heartbeat asks, as configured.
pub struct Dependencies<'a> {
    pub kv: &'a dyn KeyValue,
    pub http: Option<&'a dyn HttpClient>,
    /// The remote Queue's root URL.
    pub queue: Option<&'a str>,
    pub pulse: Option<&'a crate::pulse::PulseConfig>,
}

/// Each dependency's state (`"ok"` or why not), and whether all are ok.
pub fn heartbeat(deps: &Dependencies<'_>) -> (bool, Value) {
    let mut checks = serde_json::Map::new();
    let kv = deps.kv.get(layout::VERSION_KEY).map(|_| ()).map_err(|e| e.to_string());
    checks.insert("keyValueStore".into(), verdict(kv));
    if let (Some(root), Some(http)) = (deps.queue, deps.http) {
        let url = format!("{}/api/queue/v1/ping", root.trim_end_matches('/'));
        let answer = match http.send_within("GET", &url, &[], &[], CHECK_TIMEOUT) {
            Ok((200, _)) => Ok(()),
            Ok((status, _)) => Err(format!("GET {url}: HTTP {status}")),
            Err(e) => Err(format!("GET {url}: {e}")),
        };
        checks.insert("queue".into(), verdict(answer));
    }
    if let (Some(pulse), Some(http)) = (deps.pulse, deps.http) {
        let mq = crate::pulse::RabbitMq { http, config: pulse };
        checks.insert("pulse".into(), verdict(mq.alive(CHECK_TIMEOUT).map_err(|e| e.to_string())));
    }
    let healthy = checks.values().all(|v| v == "ok");
    (healthy, Value::Object(checks))
}

fn verdict(r: Result<(), String>) -> Value {
    match r {
        Ok(()) => json!("ok"),
        Err(e) => json!(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::MemoryStore;
    use std::cell::RefCell;

    #[test]
    fn uptime_counts_from_the_first_run_of_this_build() {
        let kv = MemoryStore::default();
        let build = Build { version: "0.2.0".into(), commit: "abc".into(), time: "2026-12-01T00:00:00Z".into() };
        let t0: DateTime<Utc> = "2026-12-02T10:00:00Z".parse().unwrap();
        assert_eq!(uptime(&kv, &build, t0), 0.0);
        assert_eq!(uptime(&kv, &build, t0 + chrono::Duration::milliseconds(90_500)), 90.5);
        // A new build (a deploy) starts again.
        let next = Build { commit: "def".into(), ..build.clone() };
        assert_eq!(uptime(&kv, &next, t0 + chrono::Duration::hours(1)), 0.0);
        assert_eq!(uptime(&kv, &next, t0 + chrono::Duration::hours(2)), 3600.0);
    }

    /// The Queue answers as told; RabbitMQ is down.
    struct Deps(RefCell<Vec<String>>, u16);
    impl HttpClient for Deps {
        fn send(&self, _m: &str, url: &str, h: &[(String, String)], _b: &[u8]) -> Result<(u16, Vec<u8>), String> {
            self.0.borrow_mut().push(format!("{url} {}", h.len()));
            if url.contains("/api/queue/v1/ping") {
                Ok((self.1, b"{}".to_vec()))
            } else {
                Err("connection refused".into())
            }
        }
        fn sleep(&self, _: Duration) {}
    }

    #[test]
    fn the_heartbeat_names_each_dependency_that_did_not_answer() {
        let kv = MemoryStore::default();
        let pulse = crate::pulse::PulseConfig {
            api_url: "http://mq.example:15672".into(),
            username: "u".into(),
            password: "sekrit".into(),
            vhost: "/".into(),
            namespace: "n".into(),
        };
        let http = Deps(RefCell::default(), 200);
        let alone = Dependencies { kv: &kv, http: Some(&http), queue: None, pulse: None };
        assert_eq!(heartbeat(&alone), (true, json!({"keyValueStore": "ok"})));
        let all = Dependencies { kv: &kv, http: Some(&http), queue: Some("https://tc.example.com/"), pulse: Some(&pulse) };
        let (healthy, checks) = heartbeat(&all);
        assert!(!healthy);
        assert_eq!(checks["queue"], "ok");
        let mq = checks["pulse"].as_str().unwrap();
        assert!(mq.contains("connection refused") && !mq.contains("sekrit"), "{mq}");
        let down = Deps(RefCell::default(), 503);
        let (healthy, checks) = heartbeat(&Dependencies { http: Some(&down), pulse: None, ..all });
        assert!(!healthy && checks["queue"].as_str().unwrap().contains("HTTP 503"), "{checks}");
        assert!(down.0.borrow()[0].starts_with("https://tc.example.com/api/queue/v1/ping"), "{:?}", down.0.borrow());
    }
}
