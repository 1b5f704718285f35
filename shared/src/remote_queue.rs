//! Creating tasks in a remote Taskcluster deployment (SPEC §6.4): a Hawk-signed
//! `PUT <rootUrl>/api/queue/v1/task/<taskId>` with the service's own credentials and
//! `authorizedScopes: ["assume:<hook role>"]` in `ext`, so the Queue checks the task
//! against the hook's role. 5xx answers and network failures are retried with
//! exponential back-off (a fixed taskId makes a retry safe: the Queue answers an
//! identical create with the existing task); 4xx answers are final.

use crate::fire::{QueueError, TaskQueue};
use crate::hawk::{client_header, Outgoing};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// Outbound HTTP, as a component makes it.
pub trait HttpClient {
    /// Sends one request; `Err` is a transport failure (no HTTP answer).
    fn send(&self, method: &str, url: &str, headers: &[(String, String)], body: &[u8]) -> Result<(u16, Vec<u8>), String>;
    fn sleep(&self, d: Duration);
}

#[derive(Debug, Clone)]
pub struct TaskclusterCredentials {
    pub root_url: String,
    pub client_id: String,
    pub access_token: String,
}

pub struct RemoteTaskQueue<'a> {
    pub http: &'a dyn HttpClient,
    pub credentials: &'a TaskclusterCredentials,
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    pub first_backoff: Duration,
}

impl RemoteTaskQueue<'_> {
    pub const DEFAULT_ATTEMPTS: u32 = 5;
    pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(100);
}

impl TaskQueue for RemoteTaskQueue<'_> {
    fn create_task(&self, task_id: &str, task: &Map<String, Value>, role: &str, _now: DateTime<Utc>) -> Result<(), QueueError> {
        let url = format!("{}/api/queue/v1/task/{task_id}", self.credentials.root_url.trim_end_matches('/'));
        let body = serde_json::to_vec(task).expect("serialises");
        let ext = json!({"authorizedScopes": [format!("assume:{role}")]});
        let mut last = QueueError::Transport("no attempt was made".into());
        for attempt in 0..self.attempts.max(1) {
            if attempt > 0 {
                self.http.sleep(self.first_backoff * 2u32.pow(attempt - 1));
            }
            let nonce = crate::ids::nice_slugid();
            let outgoing = Outgoing { method: "PUT", url: &url, content_type: "application/json", body: &body };
            let header = client_header(&self.credentials.client_id, &self.credentials.access_token, &outgoing, Some(&ext), Utc::now().timestamp(), &nonce[..12])
            .ok_or_else(|| QueueError::Transport(format!("taskcluster_root_url is not an absolute URL: {url}")))?;
            let headers = [
                ("authorization".to_string(), header),
                ("content-type".to_string(), "application/json".to_string()),
                ("content-length".to_string(), body.len().to_string()),
            ];
            match self.http.send("PUT", &url, &headers, &body) {
                Ok((200..=299, _)) => return Ok(()),
                Ok((status, answer)) => {
                    let parsed: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
                    let code = parsed.get("code").and_then(Value::as_str).unwrap_or("UnknownError").to_string();
                    let message = parsed.get("message").and_then(Value::as_str).map(str::to_string)
                        .unwrap_or_else(|| String::from_utf8_lossy(&answer).chars().take(1000).collect());
                    last = QueueError::Api { status, code, message, body: parsed, url: url.clone() };
                    if status < 500 {
                        return Err(last);
                    }
                }
                Err(e) => last = QueueError::Transport(format!("PUT {url}: {e}")),
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Answers from a script and records what was sent and slept.
    struct Scripted {
        answers: RefCell<Vec<Result<(u16, Vec<u8>), String>>>,
        sent: RefCell<Vec<(String, Vec<(String, String)>, Vec<u8>)>>,
        slept: RefCell<Vec<Duration>>,
    }

    impl HttpClient for Scripted {
        fn send(&self, _method: &str, url: &str, headers: &[(String, String)], body: &[u8]) -> Result<(u16, Vec<u8>), String> {
            self.sent.borrow_mut().push((url.to_string(), headers.to_vec(), body.to_vec()));
            self.answers.borrow_mut().remove(0)
        }
        fn sleep(&self, d: Duration) {
            self.slept.borrow_mut().push(d);
        }
    }

    fn scripted(answers: Vec<Result<(u16, Vec<u8>), String>>) -> Scripted {
        Scripted { answers: RefCell::new(answers), sent: RefCell::default(), slept: RefCell::default() }
    }

    fn creds() -> TaskclusterCredentials {
        TaskclusterCredentials { root_url: "http://127.0.0.1:9/".into(), client_id: "static/hooks".into(), access_token: "tok".into() }
    }

    fn create(http: &Scripted) -> Result<(), QueueError> {
        let c = creds();
        let q = RemoteTaskQueue { http, credentials: &c, attempts: 4, first_backoff: Duration::from_millis(10) };
        q.create_task("fN1SmgV0T8WXX3LhKs2Gyw", &Map::new(), "hook-id:g/h", Utc::now())
    }

    #[test]
    fn retries_5xx_and_transport_failures_with_backoff_then_succeeds() {
        let http = scripted(vec![Err("refused".into()), Ok((503, b"{}".to_vec())), Ok((200, b"{}".to_vec()))]);
        assert_eq!(create(&http), Ok(()));
        assert_eq!(*http.slept.borrow(), [Duration::from_millis(10), Duration::from_millis(20)]);
        let sent = http.sent.borrow();
        assert_eq!(sent[0].0, "http://127.0.0.1:9/api/queue/v1/task/fN1SmgV0T8WXX3LhKs2Gyw");
        let auth = &sent[0].1[0].1;
        let h = crate::hawk::parse_header(auth).unwrap();
        assert_eq!(h.id, "static/hooks");
        let ext = crate::hawk::decode_ext(h.ext.as_deref().unwrap()).unwrap();
        assert_eq!(ext.authorized_scopes, Some(vec!["assume:hook-id:g/h".to_string()]));
        assert_ne!(sent[0].1[0].1, sent[1].1[0].1, "each attempt signed afresh");
    }

    #[test]
    fn client_errors_are_final_and_keep_the_queues_answer() {
        let http = scripted(vec![Ok((409, br#"{"code": "RequestConflict", "message": "taskId already used"}"#.to_vec()))]);
        match create(&http) {
            Err(QueueError::Api { status: 409, code, message, .. }) => assert_eq!((code.as_str(), message.as_str()), ("RequestConflict", "taskId already used")),
            other => panic!("{other:?}"),
        }
        assert!(http.slept.borrow().is_empty(), "no retry on 4xx");
        let down = scripted(vec![Ok((500, b"oops".to_vec())); 4]);
        match create(&down) {
            Err(QueueError::Api { status: 500, message, .. }) => assert_eq!(message, "oops"),
            other => panic!("{other:?}"),
        }
        assert_eq!(down.sent.borrow().len(), 4, "bounded");
    }
}
