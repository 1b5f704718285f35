//! Telling a hook's owner that a fire failed (when `metadata.emailOnError` is true), at
//! most once per hook per 12 hours so a broken hook firing every minute does not flood
//! anyone: by e-mail through the Taskcluster Notify service of a remote deployment, or as
//! a JSON report POSTed to a webhook when running standalone.

use crate::hawk::{client_header, Outgoing};
use crate::model::HookRecord;
use crate::platform::KeyValue;
use crate::remote_queue::{HttpClient, TaskclusterCredentials};
use crate::render::{iso_time, FiredBy};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

const QUIET_HOURS: i64 = 12;

/// Where failure reports go.
#[derive(Debug, Clone)]
pub enum FailureChannel {
    /// `POST <url>` with the report as JSON.
    Webhook(String),
    /// `POST <rootUrl>/api/notify/v1/email` to the hook's owner.
    TaskclusterNotify(TaskclusterCredentials),
}

/// One failed fire, as reported.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureReport {
    pub hook_group_id: String,
    pub hook_id: String,
    pub owner: String,
    pub fired_by: FiredBy,
    pub task_id: String,
    pub time: DateTime<Utc>,
    pub error: String,
}

impl FailureReport {
    pub fn new(hook: &HookRecord, fired_by: FiredBy, task_id: &str, time: DateTime<Utc>, error: &str) -> Self {
        let d = &hook.definition;
        Self {
            hook_group_id: d.hook_group_id.clone(),
            hook_id: d.hook_id.clone(),
            owner: d.metadata.owner.clone(),
            fired_by,
            task_id: task_id.to_string(),
            time,
            error: error.to_string(),
        }
    }

    fn json(&self) -> Value {
        json!({
            "hookGroupId": self.hook_group_id, "hookId": self.hook_id, "owner": self.owner,
            "firedBy": self.fired_by.as_str(), "taskId": self.task_id, "time": iso_time(self.time), "error": self.error,
        })
    }
}


/// Sends `report` unless this hook's owner was told within the last 12 hours. Returns
/// whether it was sent. A failed send is not retried (the fire is already recorded).
pub fn report_failure(kv: &dyn KeyValue, http: &dyn HttpClient, channel: &FailureChannel, report: &FailureReport) -> Result<bool, String> {
    let key = crate::layout::notified(&report.hook_group_id, &report.hook_id);
    let at = report.time.timestamp_millis();
    // Claimed (compare-and-swap) before sending: two failures at once send one report.
    let claimed = crate::cas::update(kv, &key, |current| {
        let last = current.and_then(|b| std::str::from_utf8(b).ok()).and_then(|s| s.parse::<i64>().ok());
        if last.is_some_and(|ms| at - ms < Duration::hours(QUIET_HOURS).num_milliseconds()) {
            return (None, false);
        }
        (Some(at.to_string().into_bytes()), true)
    })
    .map_err(|e| e.to_string())?;
    if !claimed {
        return Ok(false);
    }
    let (url, body, auth) = match channel {
        FailureChannel::Webhook(url) => (url.clone(), report.json(), None),
        FailureChannel::TaskclusterNotify(c) => {
            let url = format!("{}/api/notify/v1/email", c.root_url.trim_end_matches('/'));
            let body = json!({
                "address": report.owner,
                "subject": format!("Hook {}/{} failed to fire", report.hook_group_id, report.hook_id),
                "content": format!(
                    "The hook `{}/{}` failed to fire ({}) at {}, taskId `{}`:\n\n```\n{}\n```\n\nFurther failures of this hook in the next {QUIET_HOURS} hours are not reported.",
                    report.hook_group_id, report.hook_id, report.fired_by.as_str(), iso_time(report.time), report.task_id, report.error
                ),
            });
            let bytes = body.to_string();
            let nonce = crate::ids::nice_slugid();
            let outgoing = Outgoing { method: "POST", url: &url, content_type: "application/json", body: bytes.as_bytes() };
            let auth = client_header(&c.client_id, &c.access_token, &outgoing, None, Utc::now().timestamp(), &nonce[..12]);
            (url, body, auth)
        }
    };
    let bytes = body.to_string().into_bytes();
    let mut headers = vec![("content-type".to_string(), "application/json".to_string()), ("content-length".to_string(), bytes.len().to_string())];
    headers.extend(auth.map(|a| ("authorization".to_string(), a)));
    match http.send("POST", &url, &headers, &bytes) {
        Ok((200..=299, _)) => Ok(true),
        Ok((status, _)) => Err(format!("failure report to {url}: HTTP {status}")),
        Err(e) => Err(format!("failure report to {url}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::MemoryStore;
    use std::cell::RefCell;

    /// (url, headers, body) of each request sent.
    type Sent = (String, Vec<(String, String)>, Value);

    #[derive(Default)]
    struct Recorder(RefCell<Vec<Sent>>);

    impl HttpClient for Recorder {
        fn send(&self, _m: &str, url: &str, headers: &[(String, String)], body: &[u8]) -> Result<(u16, Vec<u8>), String> {
            self.0.borrow_mut().push((url.into(), headers.to_vec(), serde_json::from_slice(body).unwrap()));
            Ok((200, vec![]))
        }
        fn sleep(&self, _: std::time::Duration) {}
    }

    fn report(at: &str) -> FailureReport {
        FailureReport {
            hook_group_id: "g".into(),
            hook_id: "a/b".into(),
            owner: "o@example.com".into(),
            fired_by: FiredBy::Schedule,
            task_id: "t".into(),
            time: at.parse().unwrap(),
            error: "boom".into(),
        }
    }

    #[test]
    fn at_most_one_report_per_hook_per_12_hours() {
        let kv = MemoryStore::default();
        let http = Recorder::default();
        let hook = FailureChannel::Webhook("http://127.0.0.1:9/report".into());
        assert_eq!(report_failure(&kv, &http, &hook, &report("2026-11-23T00:00:00Z")), Ok(true));
        assert_eq!(report_failure(&kv, &http, &hook, &report("2026-11-23T11:59:00Z")), Ok(false));
        assert_eq!(report_failure(&kv, &http, &hook, &report("2026-11-23T12:00:00Z")), Ok(true));
        let sent = http.0.borrow();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0].2["hookId"], "a/b");
        assert_eq!(sent[0].2["error"], "boom");
    }

    #[test]
    fn taskcluster_notify_gets_a_signed_email_to_the_owner() {
        let kv = MemoryStore::default();
        let http = Recorder::default();
        let creds = TaskclusterCredentials { root_url: "https://tc.example.com".into(), client_id: "static/hooks".into(), access_token: "t".into() };
        report_failure(&kv, &http, &FailureChannel::TaskclusterNotify(creds), &report("2026-11-23T00:00:00Z")).unwrap();
        let (url, headers, body) = &http.0.borrow()[0];
        assert_eq!(url, "https://tc.example.com/api/notify/v1/email");
        assert_eq!(body["address"], "o@example.com");
        assert!(body["content"].as_str().unwrap().contains("boom"));
        assert!(headers.iter().any(|(k, v)| k == "authorization" && v.starts_with("Hawk id=\"static/hooks\"")));
    }
}
