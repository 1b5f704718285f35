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
use hmac::{Hmac, Mac};
use serde_json::{json, Value};

const QUIET_HOURS: i64 = 12;

/// How long one sender holds the right to send a hook's report: longer than a send takes
/// (the remote client's timeouts), short enough that a sender that died releases it soon.
const SENDING_LEASE_MS: i64 = 120_000;

/// The header a signed webhook report carries: `sha256=<hex HMAC-SHA256 of the body>`,
/// computed as GitHub computes `X-Hub-Signature-256`, so the same verification code works.
pub const SIGNATURE_HEADER: &str = "x-taskhooks-signature-256";

/// The value of [`SIGNATURE_HEADER`] for `body`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The `notified/<g>/<h>` record: when a report was last delivered, and who is sending
/// one now (until when), as `<delivered ms>` or `<delivered ms> sending <until ms>`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Notified {
    delivered: Option<i64>,
    sending_until: Option<i64>,
}

impl Notified {
    fn parse(bytes: Option<&[u8]>) -> Self {
        let text = bytes.and_then(|b| std::str::from_utf8(b).ok()).unwrap_or("");
        let mut parts = text.split(' ');
        let delivered = parts.next().and_then(|s| s.parse().ok()).filter(|ms| *ms > 0);
        let sending_until = (parts.next() == Some("sending")).then(|| parts.next().and_then(|s| s.parse().ok())).flatten();
        Notified { delivered, sending_until }
    }

    fn encode(self) -> Vec<u8> {
        let delivered = self.delivered.unwrap_or(0);
        match self.sending_until {
            Some(until) => format!("{delivered} sending {until}"),
            None => delivered.to_string(),
        }
        .into_bytes()
    }
}

/// Where failure reports go.
#[derive(Debug, Clone)]
pub enum FailureChannel {
    /// `POST <url>` with the report as JSON, signed with `secret` when one is set.
    Webhook { url: String, secret: Option<String> },
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
/// whether it was sent.
///
/// The quiet window starts only when a report was delivered: a send that fails leaves it
/// open, so the next failure is reported (the fire itself is in lastFires either way).
/// While one sender is sending, a concurrent failure of the same hook sends nothing (a
/// short lease, taken by compare-and-swap), so two failures at once send one report.
pub fn report_failure(kv: &dyn KeyValue, http: &dyn HttpClient, channel: &FailureChannel, report: &FailureReport) -> Result<bool, String> {
    let key = crate::layout::notified(&report.hook_group_id, &report.hook_id);
    let at = report.time.timestamp_millis();
    let quiet = Duration::hours(QUIET_HOURS).num_milliseconds();
    let lease = at.saturating_add(SENDING_LEASE_MS);
    let claimed = crate::cas::update(kv, &key, |current| {
        let state = Notified::parse(current);
        let recently_told = state.delivered.is_some_and(|ms| at.saturating_sub(ms) < quiet);
        let being_sent = state.sending_until.is_some_and(|until| until > at);
        if recently_told || being_sent {
            return (None, false);
        }
        (Some(Notified { sending_until: Some(lease), ..state }.encode()), true)
    })
    .map_err(|e| e.to_string())?;
    if !claimed {
        return Ok(false);
    }
    let sent = send(http, channel, report);
    // Delivered: the window starts now (never earlier than a delivery recorded since).
    // The lease is cleared only if it is still this sender's: one that outlived it must
    // not end the next sender's.
    let delivered = sent.is_ok();
    crate::cas::update(kv, &key, |current| {
        let state = Notified::parse(current);
        let next = Notified {
            delivered: if delivered { state.delivered.max(Some(at)) } else { state.delivered },
            sending_until: state.sending_until.filter(|until| *until != lease),
        };
        (Some(next.encode()), ())
    })
    .map_err(|e| e.to_string())?;
    sent.map(|()| true)
}

fn send(http: &dyn HttpClient, channel: &FailureChannel, report: &FailureReport) -> Result<(), String> {
    let (url, body, auth, secret) = match channel {
        FailureChannel::Webhook { url, secret } => (url.clone(), report.json(), None, secret.as_deref()),
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
            (url, body, auth, None)
        }
    };
    let bytes = body.to_string().into_bytes();
    let mut headers = vec![("content-type".to_string(), "application/json".to_string()), ("content-length".to_string(), bytes.len().to_string())];
    headers.extend(auth.map(|a| ("authorization".to_string(), a)));
    headers.extend(secret.filter(|s| !s.is_empty()).map(|s| (SIGNATURE_HEADER.to_string(), signature(s, &bytes))));
    match http.send("POST", &url, &headers, &bytes) {
        Ok((200..=299, _)) => Ok(()),
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

    /// Records what is sent; answers each with the next status of `answers` (200 when
    /// they run out), or a transport failure for 0.
    #[derive(Default)]
    struct Recorder(RefCell<Vec<Sent>>, RefCell<Vec<u16>>, RefCell<Vec<Vec<u8>>>);

    impl HttpClient for Recorder {
        fn send(&self, _m: &str, url: &str, headers: &[(String, String)], body: &[u8]) -> Result<(u16, Vec<u8>), String> {
            self.0.borrow_mut().push((url.into(), headers.to_vec(), serde_json::from_slice(body).unwrap()));
            self.2.borrow_mut().push(body.to_vec());
            let status = if self.1.borrow().is_empty() { 200 } else { self.1.borrow_mut().remove(0) };
            if status == 0 {
                return Err("connection refused".into());
            }
            Ok((status, vec![]))
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
        let hook = FailureChannel::Webhook { url: "http://127.0.0.1:9/report".into(), secret: None };
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
        let creds = TaskclusterCredentials { root_url: "https://tc.example.com".into(), client_id: "static/hooks".into(), access_token: "t".into(), request_timeout: std::time::Duration::from_secs(30) };
        report_failure(&kv, &http, &FailureChannel::TaskclusterNotify(creds), &report("2026-11-23T00:00:00Z")).unwrap();
        let (url, headers, body) = &http.0.borrow()[0];
        assert_eq!(url, "https://tc.example.com/api/notify/v1/email");
        assert_eq!(body["address"], "o@example.com");
        assert!(body["content"].as_str().unwrap().contains("boom"));
        assert!(headers.iter().any(|(k, v)| k == "authorization" && v.starts_with("Hawk id=\"static/hooks\"")));
    }

    #[test]
    fn a_report_that_was_not_delivered_does_not_start_the_quiet_window() {
        let kv = MemoryStore::default();
        let http = Recorder::default();
        http.1.borrow_mut().extend([503, 0]);
        let hook = FailureChannel::Webhook { url: "http://127.0.0.1:9/report".into(), secret: None };
        assert!(report_failure(&kv, &http, &hook, &report("2026-11-23T00:00:00Z")).unwrap_err().contains("HTTP 503"));
        assert!(report_failure(&kv, &http, &hook, &report("2026-11-23T00:01:00Z")).unwrap_err().contains("connection refused"));
        assert_eq!(report_failure(&kv, &http, &hook, &report("2026-11-23T00:02:00Z")), Ok(true), "retried at the next failure");
        assert_eq!(report_failure(&kv, &http, &hook, &report("2026-11-23T00:03:00Z")), Ok(false), "delivered: quiet now");
        assert_eq!(http.0.borrow().len(), 3);
        // A sender that died while sending holds the hook only for its lease.
        let key = crate::layout::notified("g", "other");
        let at: DateTime<Utc> = "2026-11-23T00:00:00Z".parse().unwrap();
        kv.set(&key, format!("0 sending {}", at.timestamp_millis() + SENDING_LEASE_MS).as_bytes()).unwrap();
        let other = |t: &str| FailureReport { hook_id: "other".into(), ..report(t) };
        assert_eq!(report_failure(&kv, &http, &hook, &other("2026-11-23T00:01:00Z")), Ok(false), "someone is sending");
        assert_eq!(report_failure(&kv, &http, &hook, &other("2026-11-23T00:03:00Z")), Ok(true), "the lease ran out");
    }

    #[test]
    fn webhook_reports_are_signed_like_github_deliveries() {
        let kv = MemoryStore::default();
        let http = Recorder::default();
        let hook = FailureChannel::Webhook { url: "http://127.0.0.1:9/report".into(), secret: Some("It's a Secret to Everybody".into()) };
        report_failure(&kv, &http, &hook, &report("2026-11-23T00:00:00Z")).unwrap();
        let headers = &http.0.borrow()[0].1;
        let body = &http.2.borrow()[0];
        let sig = headers.iter().find(|(k, _)| k == SIGNATURE_HEADER).map(|(_, v)| v.clone()).unwrap();
        assert_eq!(sig, signature("It's a Secret to Everybody", body));
        // GitHub's documented example: secret "It's a Secret to Everybody", body
        // "Hello, World!".
        assert_eq!(
            signature("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }
}
