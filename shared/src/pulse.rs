//! RabbitMQ (which is what Pulse is) through its management HTTP API: a Wasm component
//! cannot hold an AMQP connection, but it can make HTTP requests. Queues, bindings,
//! reading and publishing all have management endpoints; what they lack is acknowledging
//! one delivery by its tag, which is why the relay reads in two steps (see `relay`).

use crate::remote_queue::HttpClient;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Where the relay finds RabbitMQ, from the Spin variables `pulse_*`.
#[derive(Clone)]
pub struct PulseConfig {
    /// The management API's base URL, e.g. `http://127.0.0.1:15672`.
    pub api_url: String,
    pub username: String,
    pub password: String,
    pub vhost: String,
    /// Pulse's naming rule: queues are `queue/<namespace>/...` and exchanges
    /// `exchange/<namespace>/...`.
    pub namespace: String,
}

impl std::fmt::Debug for PulseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PulseConfig")
            .field("api_url", &self.api_url)
            .field("username", &self.username)
            .field("password", &"<secret>")
            .field("vhost", &self.vhost)
            .field("namespace", &self.namespace)
            .finish()
    }
}

pub const DEFAULT_NAMESPACE: &str = "taskcluster-hooks";

/// Longest a hook's queue may grow while nobody drains it; beyond it the oldest messages
/// are dropped (RabbitMQ's `drop-head`). Upstream keeps 50; a relay that drains once a
/// minute needs room for bursts.
pub const MAX_QUEUE_LENGTH: u64 = 10_000;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PulseError {
    /// RabbitMQ answered with an error status.
    #[error("RabbitMQ answered {method} {path} with {status}: {reason}")]
    Refused { method: String, path: String, status: u16, reason: String },
    #[error("RabbitMQ is unreachable ({method} {path}): {reason}")]
    Transport { method: String, path: String, reason: String },
    #[error("RabbitMQ's answer to {path} is not what its management API sends: {reason}")]
    Unexpected { path: String, reason: String },
}

impl PulseError {
    pub fn status(&self) -> Option<u16> {
        match self {
            PulseError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A message as the management API returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub exchange: String,
    pub routing_key: String,
    pub payload: Vec<u8>,
    pub properties: Value,
    pub redelivered: bool,
}

#[derive(Deserialize)]
struct RawMessage {
    exchange: String,
    routing_key: String,
    payload: String,
    payload_encoding: String,
    #[serde(default)]
    properties: Value,
    #[serde(default)]
    redelivered: bool,
}

impl Message {
    /// What makes this message itself, stable across redeliveries: its exchange, routing
    /// key, properties (including any `message_id`, timestamp and CC headers) and body.
    /// Two publications identical in all of these are taken as one message delivered
    /// twice, which is what at-least-once publishing produces.
    pub fn identity(&self) -> String {
        let mut hasher = Sha256::new();
        for part in [self.exchange.as_bytes(), self.routing_key.as_bytes(), self.properties.to_string().as_bytes(), &self.payload] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

const ORIGINAL_EXCHANGE: &str = "x-taskhooks-exchange";
const ORIGINAL_ROUTING_KEY: &str = "x-taskhooks-routing-key";
const HAD_HEADERS: &str = "x-taskhooks-had-headers";

/// A requeued message goes back through the default exchange, which would change its
/// exchange and routing key, and so its identity: the originals ride along in headers.
fn requeued_properties(message: &Message) -> Value {
    let mut properties = message.properties.clone();
    if !properties.is_object() {
        properties = json!({});
    }
    let had_headers = properties.get("headers").is_some();
    let headers = properties.as_object_mut().expect("an object").entry("headers").or_insert_with(|| json!({}));
    if let Some(h) = headers.as_object_mut() {
        h.insert(ORIGINAL_EXCHANGE.into(), json!(message.exchange));
        h.insert(ORIGINAL_ROUTING_KEY.into(), json!(message.routing_key));
        h.insert(HAD_HEADERS.into(), json!(had_headers));
    }
    properties
}

/// Undoes `requeued_properties`: the message as it was first published.
fn restore_requeued(mut message: Message) -> Message {
    let Some(headers) = message.properties.get_mut("headers").and_then(Value::as_object_mut) else { return message };
    let (Some(Value::String(exchange)), Some(Value::String(routing_key))) = (headers.remove(ORIGINAL_EXCHANGE), headers.remove(ORIGINAL_ROUTING_KEY)) else {
        return message;
    };
    let had_headers = headers.remove(HAD_HEADERS).and_then(|v| v.as_bool()).unwrap_or(true);
    if !had_headers {
        message.properties.as_object_mut().expect("has headers, so an object").remove("headers");
    }
    message.exchange = exchange;
    message.routing_key = routing_key;
    message
}

/// Path segments: everything but unreserved characters is encoded, so `/` in names and
/// the default vhost `/` become `%2F` as the management API wants.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

fn seg(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// A binding as RabbitMQ reports it; `properties_key` names it for deletion.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct QueueBinding {
    pub exchange: String,
    pub routing_key: String,
    pub properties_key: String,
}

pub struct RabbitMq<'a> {
    pub http: &'a dyn HttpClient,
    pub config: &'a PulseConfig,
}

impl RabbitMq<'_> {
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, PulseError> {
        let url = format!("{}{path}", self.config.api_url.trim_end_matches('/'));
        let credentials = STANDARD.encode(format!("{}:{}", self.config.username, self.config.password));
        let body = body.map(|b| serde_json::to_vec(b).expect("serialises")).unwrap_or_default();
        let headers = [
            ("authorization".to_string(), format!("Basic {credentials}")),
            ("content-type".to_string(), "application/json".to_string()),
            ("content-length".to_string(), body.len().to_string()),
        ];
        let (status, answer) = self.http.send(method, &url, &headers, &body).map_err(|reason| PulseError::Transport {
            method: method.into(),
            path: path.into(),
            reason,
        })?;
        if !(200..300).contains(&status) {
            let parsed: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
            let reason = parsed
                .get("reason")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| String::from_utf8_lossy(&answer).chars().take(300).collect());
            return Err(PulseError::Refused { method: method.into(), path: path.into(), status, reason });
        }
        if answer.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&answer).map_err(|e| PulseError::Unexpected { path: path.into(), reason: e.to_string() })
    }

    /// Whether the management API answers, and takes the service's credentials, within
    /// `timeout` (the heartbeat). `whoami` is open to every user with the management tag.
    pub fn alive(&self, timeout: std::time::Duration) -> Result<(), PulseError> {
        let path = "/api/whoami".to_string();
        let url = format!("{}{path}", self.config.api_url.trim_end_matches('/'));
        let credentials = STANDARD.encode(format!("{}:{}", self.config.username, self.config.password));
        let headers = [("authorization".to_string(), format!("Basic {credentials}"))];
        match self.http.send_within("GET", &url, &headers, &[], timeout) {
            Ok((200, _)) => Ok(()),
            Ok((status, _)) => Err(PulseError::Refused { method: "GET".into(), path, status, reason: format!("HTTP {status}") }),
            Err(reason) => Err(PulseError::Transport { method: "GET".into(), path, reason }),
        }
    }

    fn vhost(&self) -> String {
        seg(&self.config.vhost)
    }

    /// Names of the vhost's queues starting with `prefix`.
    pub fn queue_names(&self, prefix: &str) -> Result<Vec<String>, PulseError> {
        let path = format!("/api/queues/{}?columns=name", self.vhost());
        let answer = self.call("GET", &path, None)?;
        let list = answer.as_array().ok_or_else(|| PulseError::Unexpected { path: path.clone(), reason: "not a list".into() })?;
        Ok(list.iter().filter_map(|q| q["name"].as_str()).filter(|n| n.starts_with(prefix)).map(str::to_string).collect())
    }

    /// A durable queue, bounded by `MAX_QUEUE_LENGTH`. Declaring an existing one is a
    /// no-op.
    pub fn declare_queue(&self, name: &str) -> Result<(), PulseError> {
        let body = json!({"durable": true, "auto_delete": false, "arguments": {"x-max-length": MAX_QUEUE_LENGTH}});
        self.call("PUT", &format!("/api/queues/{}/{}", self.vhost(), seg(name)), Some(&body)).map(drop)
    }

    /// Deletes a queue and whatever it holds; a queue already gone is fine.
    pub fn delete_queue(&self, name: &str) -> Result<(), PulseError> {
        match self.call("DELETE", &format!("/api/queues/{}/{}", self.vhost(), seg(name)), None) {
            Err(e) if e.status() == Some(404) => Ok(()),
            other => other.map(drop),
        }
    }

    /// The queue's bindings from exchanges (not the default exchange's implicit one).
    pub fn bindings(&self, queue: &str) -> Result<Vec<QueueBinding>, PulseError> {
        let path = format!("/api/queues/{}/{}/bindings", self.vhost(), seg(queue));
        let answer = self.call("GET", &path, None)?;
        let list = answer.as_array().ok_or_else(|| PulseError::Unexpected { path: path.clone(), reason: "not a list".into() })?;
        let mut bindings: Vec<QueueBinding> = list
            .iter()
            .filter(|b| b["source"].as_str().is_some_and(|s| !s.is_empty()))
            .map(|b| QueueBinding {
                exchange: b["source"].as_str().unwrap_or_default().to_string(),
                routing_key: b["routing_key"].as_str().unwrap_or_default().to_string(),
                properties_key: b["properties_key"].as_str().unwrap_or_default().to_string(),
            })
            .collect();
        bindings.sort();
        Ok(bindings)
    }

    /// Binds `queue` to `exchange` with `pattern`. A missing exchange is a 404, a
    /// forbidden one a 403 (`PulseError::status`).
    pub fn bind(&self, exchange: &str, queue: &str, pattern: &str) -> Result<(), PulseError> {
        let path = format!("/api/bindings/{}/e/{}/q/{}", self.vhost(), seg(exchange), seg(queue));
        self.call("POST", &path, Some(&json!({"routing_key": pattern}))).map(drop)
    }

    pub fn unbind(&self, queue: &str, binding: &QueueBinding) -> Result<(), PulseError> {
        let path = format!("/api/bindings/{}/e/{}/q/{}/{}", self.vhost(), seg(&binding.exchange), seg(queue), seg(&binding.properties_key));
        match self.call("DELETE", &path, None) {
            Err(e) if e.status() == Some(404) => Ok(()),
            other => other.map(drop),
        }
    }

    fn get(&self, queue: &str, count: usize, ackmode: &str) -> Result<Vec<Message>, PulseError> {
        let path = format!("/api/queues/{}/{}/get", self.vhost(), seg(queue));
        let answer = self.call("POST", &path, Some(&json!({"count": count, "ackmode": ackmode, "encoding": "auto"})))?;
        let raw: Vec<RawMessage> = serde_json::from_value(answer).map_err(|e| PulseError::Unexpected { path: path.clone(), reason: e.to_string() })?;
        raw.into_iter()
            .map(|m| {
                let payload = match m.payload_encoding.as_str() {
                    "base64" => STANDARD.decode(&m.payload).map_err(|e| PulseError::Unexpected { path: path.clone(), reason: e.to_string() })?,
                    _ => m.payload.into_bytes(),
                };
                Ok(restore_requeued(Message { exchange: m.exchange, routing_key: m.routing_key, payload, properties: m.properties, redelivered: m.redelivered }))
            })
            .collect()
    }

    /// Reads up to `count` messages from the head of `queue` and leaves them there.
    pub fn peek(&self, queue: &str, count: usize) -> Result<Vec<Message>, PulseError> {
        self.get(queue, count, "reject_requeue_true")
    }

    /// Removes up to `count` messages from the head of `queue`, returning them.
    pub fn take(&self, queue: &str, count: usize) -> Result<Vec<Message>, PulseError> {
        self.get(queue, count, "ack_requeue_false")
    }

    /// Puts a message taken from `queue` back at its tail (through the default exchange),
    /// body and properties unchanged, so its identity is the same.
    pub fn requeue(&self, queue: &str, message: &Message) -> Result<(), PulseError> {
        let path = format!("/api/exchanges/{}/amq.default/publish", self.vhost());
        let body = json!({
            "properties": requeued_properties(message),
            "routing_key": queue,
            "payload": STANDARD.encode(&message.payload),
            "payload_encoding": "base64",
        });
        let answer = self.call("POST", &path, Some(&body))?;
        if answer["routed"].as_bool() == Some(true) {
            Ok(())
        } else {
            Err(PulseError::Unexpected { path, reason: format!("the message was not routed back to {queue}") })
        }
    }

    pub fn declare_exchange(&self, name: &str) -> Result<(), PulseError> {
        let body = json!({"type": "topic", "durable": true, "auto_delete": false});
        self.call("PUT", &format!("/api/exchanges/{}/{}", self.vhost(), seg(name)), Some(&body)).map(drop)
    }

    /// Publishes a persistent JSON message; declares the (topic) exchange first if it
    /// does not exist yet. Returns whether any queue received it.
    pub fn publish(&self, exchange: &str, routing_key: &str, body: &Value) -> Result<bool, PulseError> {
        let path = format!("/api/exchanges/{}/{}/publish", self.vhost(), seg(exchange));
        let message = json!({
            "properties": {"content_type": "application/json", "delivery_mode": 2},
            "routing_key": routing_key,
            "payload": body.to_string(),
            "payload_encoding": "string",
        });
        let answer = match self.call("POST", &path, Some(&message)) {
            Err(e) if e.status() == Some(404) => {
                self.declare_exchange(exchange)?;
                self.call("POST", &path, Some(&message))?
            }
            other => other?,
        };
        Ok(answer["routed"].as_bool().unwrap_or(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(payload: &str) -> Message {
        Message { exchange: "exchange/x".into(), routing_key: "a.b".into(), payload: payload.into(), properties: json!({"delivery_mode": 2}), redelivered: false }
    }

    #[test]
    fn identity_ignores_redelivery_but_not_content() {
        let first = message("{}");
        let redelivered = Message { redelivered: true, ..first.clone() };
        assert_eq!(first.identity(), redelivered.identity());
        assert_ne!(first.identity(), message("{ }").identity());
        assert_ne!(first.identity(), Message { routing_key: "a.c".into(), ..first.clone() }.identity());
        assert_ne!(first.identity(), Message { properties: json!({"message_id": "2"}), ..first.clone() }.identity());
    }

    #[test]
    fn a_requeued_message_keeps_its_identity() {
        for properties in [json!({"delivery_mode": 2}), json!({"headers": {"CC": ["route.x"]}}), json!({"headers": {}})] {
            let first = Message { properties, ..message("{}") };
            let back = Message {
                exchange: String::new(),
                routing_key: "queue/ns/hooks/g/h".into(),
                properties: requeued_properties(&first),
                redelivered: false,
                payload: first.payload.clone(),
            };
            assert_ne!(back.identity(), first.identity());
            assert_eq!(restore_requeued(back).identity(), first.identity());
        }
    }

    #[test]
    fn names_with_slashes_are_one_segment() {
        assert_eq!(seg("exchange/taskcluster-github/v1/push"), "exchange%2Ftaskcluster-github%2Fv1%2Fpush");
        assert_eq!(seg("/"), "%2F");
        assert_eq!(seg("route.x.%23"), "route.x.%2523");
    }

    #[test]
    fn the_password_stays_out_of_debug_output() {
        let config = PulseConfig { api_url: "u".into(), username: "n".into(), password: "hunter2".into(), vhost: "/".into(), namespace: "ns".into() };
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
