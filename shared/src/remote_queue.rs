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
    /// Sends one request within the client's default timeout; `Err` is a transport
    /// failure (no HTTP answer, or none in time).
    fn send(&self, method: &str, url: &str, headers: &[(String, String)], body: &[u8]) -> Result<(u16, Vec<u8>), String>;
    /// Sends one request that must be answered within `timeout`.
    fn send_within(&self, method: &str, url: &str, headers: &[(String, String)], body: &[u8], _timeout: Duration) -> Result<(u16, Vec<u8>), String> {
        self.send(method, url, headers, body)
    }
    /// `GET` within `timeout`, also giving the answer's `location` header, so a caller can
    /// follow a redirect (wasi-http does not follow them; GitHub's `raw` URLs redirect).
    /// A client that cannot see headers answers `None` for it.
    fn get_within(&self, url: &str, headers: &[(String, String)], timeout: Duration) -> Result<(u16, Option<String>, Vec<u8>), String> {
        self.send_within("GET", url, headers, &[], timeout).map(|(status, body)| (status, None, body))
    }
    fn sleep(&self, d: Duration);
}

#[derive(Debug, Clone)]
pub struct TaskclusterCredentials {
    pub root_url: String,
    pub client_id: String,
    pub access_token: String,
    /// How long one call to the deployment may take, retries included
    /// (`taskcluster_timeout_seconds`; default [`RemoteTaskQueue::DEFAULT_BUDGET`]).
    pub request_timeout: Duration,
}

pub struct RemoteTaskQueue<'a> {
    pub http: &'a dyn HttpClient,
    pub credentials: &'a TaskclusterCredentials,
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    pub first_backoff: Duration,
    /// How long one `createTask` may take with its retries: each attempt gets what is left.
    pub budget: Duration,
    /// Set when a create exhausted its retries on a 5xx or no answer: the Queue is down,
    /// so the rest of this run (a tick's other hooks, a relay's other messages) does not
    /// wait for it again; those fires are kept for the next run like the first.
    down: std::cell::RefCell<Option<String>>,
}

impl<'a> RemoteTaskQueue<'a> {
    pub const DEFAULT_ATTEMPTS: u32 = 5;
    pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(100);
    pub const DEFAULT_BUDGET: Duration = Duration::from_secs(30);

    pub fn new(http: &'a dyn HttpClient, credentials: &'a TaskclusterCredentials) -> Self {
        RemoteTaskQueue {
            http,
            credentials,
            attempts: Self::DEFAULT_ATTEMPTS,
            first_backoff: Self::DEFAULT_BACKOFF,
            budget: credentials.request_timeout,
            down: Default::default(),
        }
    }
}

impl TaskQueue for RemoteTaskQueue<'_> {
    // A fresh taskId changes nothing here: the Queue checks for an earlier task itself.
    fn create_task(&self, task_id: &str, task: &Map<String, Value>, role: &str, _now: DateTime<Utc>, _origin: crate::fire::TaskIdOrigin) -> Result<(), QueueError> {
        let url = format!("{}/api/queue/v1/task/{task_id}", self.credentials.root_url.trim_end_matches('/'));
        if let Some(earlier) = self.down.borrow().as_ref() {
            return Err(QueueError::Transport(format!("PUT {url}: not tried, the Queue failed earlier in this run: {earlier}")));
        }
        let body = serde_json::to_vec(task).expect("serialises");
        let ext = json!({"authorizedScopes": [format!("assume:{role}")]});
        let mut last = QueueError::Transport("no attempt was made".into());
        let started = std::time::Instant::now();
        for attempt in 0..self.attempts.max(1) {
            if attempt > 0 {
                let wait = self.first_backoff.saturating_mul(2u32.saturating_pow(attempt - 1));
                if started.elapsed() + wait >= self.budget {
                    break;
                }
                self.http.sleep(wait);
            }
            let remaining = self.budget.saturating_sub(started.elapsed());
            if remaining.is_zero() {
                break;
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
            match self.http.send_within("PUT", &url, &headers, &body, remaining) {
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
        *self.down.borrow_mut() = Some(last.to_string());
        Err(last)
    }
}

/// How long `listLastFires` may spend asking the Queue for task states, in all.
pub const STATE_BUDGET: Duration = Duration::from_secs(5);

/// Each task's state (`GET <rootUrl>/api/queue/v1/task/<taskId>/status`, which needs no
/// scopes), `None` for an id that is `None`, that the Queue does not know, or that could
/// not be asked within `budget` (the calls share it): one slow or failed answer makes that
/// entry unknown, never the page an error.
pub fn task_states(http: &dyn HttpClient, credentials: &TaskclusterCredentials, task_ids: &[Option<&str>], budget: Duration) -> Vec<Option<String>> {
    let started = std::time::Instant::now();
    let root = credentials.root_url.trim_end_matches('/');
    task_ids
        .iter()
        .map(|id| {
            let id = (*id)?;
            let remaining = budget.saturating_sub(started.elapsed());
            if remaining.is_zero() || !crate::ids::is_slugid(id) {
                return None;
            }
            let url = format!("{root}/api/queue/v1/task/{id}/status");
            match http.send_within("GET", &url, &[], &[], remaining) {
                Ok((200, body)) => serde_json::from_slice::<Value>(&body).ok()?["status"]["state"].as_str().map(str::to_string),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fire::TaskIdOrigin;
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
        TaskclusterCredentials { root_url: "http://127.0.0.1:9/".into(), client_id: "static/hooks".into(), access_token: "tok".into(), request_timeout: Duration::from_secs(30) }
    }

    fn create(http: &Scripted) -> Result<(), QueueError> {
        let c = creds();
        let q = RemoteTaskQueue { attempts: 4, first_backoff: Duration::from_millis(10), ..RemoteTaskQueue::new(http, &c) };
        q.create_task("fN1SmgV0T8WXX3LhKs2Gyw", &Map::new(), "hook-id:g/h", Utc::now(), TaskIdOrigin::Given)
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

    #[test]
    fn a_queue_that_exhausted_its_retries_is_not_waited_for_again_in_the_same_run() {
        let http = scripted(vec![Err("timed out".into()), Err("timed out".into())]);
        let c = creds();
        let q = RemoteTaskQueue { attempts: 2, first_backoff: Duration::from_millis(1), ..RemoteTaskQueue::new(&http, &c) };
        assert!(matches!(q.create_task("t1", &Map::new(), "hook-id:g/a", Utc::now(), TaskIdOrigin::Given), Err(QueueError::Transport(_))));
        let second = q.create_task("t2", &Map::new(), "hook-id:g/b", Utc::now(), TaskIdOrigin::Given).unwrap_err();
        assert!(second.is_retryable() && second.to_string().contains("failed earlier in this run"), "{second}");
        assert_eq!(http.sent.borrow().len(), 2, "the second create sent nothing");
        // The budget bounds the retries as a whole.
        let slow = scripted(vec![Ok((503, vec![])); 5]);
        let q = RemoteTaskQueue { first_backoff: Duration::from_secs(20), budget: Duration::from_secs(30), ..RemoteTaskQueue::new(&slow, &c) };
        assert!(q.create_task("t3", &Map::new(), "hook-id:g/c", Utc::now(), TaskIdOrigin::Given).is_err());
        assert_eq!(*slow.slept.borrow(), [Duration::from_secs(20)], "no wait that would end past the budget");
    }

    #[test]
    fn task_states_are_asked_of_the_queue_and_failures_are_unknown() {
        let http = scripted(vec![
            Ok((200, br#"{"status": {"state": "completed"}}"#.to_vec())),
            Ok((404, br#"{"code": "ResourceNotFound"}"#.to_vec())),
            Err("timed out".into()),
        ]);
        let ids = [Some("fN1SmgV0T8WXX3LhKs2Gyw"), None, Some("fN1SmgV0T8WXX3LhKs2GyA"), Some("fN1SmgV0T8WXX3LhKs2GyQ"), Some("not a slugid")];
        let states = task_states(&http, &creds(), &ids, Duration::from_secs(5));
        assert_eq!(states, vec![Some("completed".into()), None, None, None, None]);
        assert_eq!(http.sent.borrow()[0].0, "http://127.0.0.1:9/api/queue/v1/task/fN1SmgV0T8WXX3LhKs2Gyw/status");
        assert_eq!(http.sent.borrow().len(), 3, "no call for a fire without a task, nor for a bad id");
        assert_eq!(task_states(&http, &creds(), &ids[..1], Duration::ZERO), vec![None], "no budget, no call");
    }
}
