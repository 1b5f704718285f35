//! The HTTP API as plain data in, plain data out: the trigger component converts Spin's
//! request into an `ApiRequest`, calls `handle`, and sends back the `ApiResponse`. Keeping
//! it here lets the whole API run in native unit tests.

use crate::error::{ApiError, ErrorCode};
use crate::ids::{nice_slugid, HookGroupId, HookId};
use crate::model::{HookCreationRequest, HookDefinition, HookRecord, TriggerHookResponse};
use crate::platform::{Clock, KeyValue};
use crate::schedule::Schedule;
use crate::trigger_schema::TriggerSchema;
use crate::render::{iso_time, render_task, FireContext, FiredBy, Rendered};
use percent_encoding::percent_decode_str;
use serde_json::{json, Value};

const MAX_BODY: usize = 10 * 1024 * 1024;

#[derive(Debug, Clone, Default)]
pub struct ApiRequest {
    pub method: String,
    /// Raw path and query, still percent-encoded (a hookId's `/` arrives as `%2F`).
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ApiResponse {
    pub fn json(status: u16, body: &Value) -> Self {
        Self {
            status,
            headers: vec![
                ("content-type".into(), "application/json; charset=utf-8".into()),
                ("cache-control".into(), "no-store no-cache must-revalidate".into()),
                ("access-control-allow-origin".into(), "*".into()),
            ],
            body: serde_json::to_vec(body).expect("JSON values serialise"),
        }
    }

    pub fn body_json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// One matched API method with its decoded URL parameters.
#[derive(Debug, Clone, PartialEq)]
enum Route {
    Ping,
    CreateHook { group: String, hook: String },
    Hook { group: String, hook: String },
    TriggerHook { group: String, hook: String },
    QueueTask { task_id: String },
}

impl Route {
    fn method_name(&self) -> &'static str {
        match self {
            Route::Ping => "ping",
            Route::CreateHook { .. } => "createHook",
            Route::Hook { .. } => "hook",
            Route::TriggerHook { .. } => "triggerHook",
            Route::QueueTask { .. } => "task",
        }
    }

    fn params(&self) -> Value {
        match self {
            Route::Ping => json!({}),
            Route::CreateHook { group, hook } | Route::Hook { group, hook } | Route::TriggerHook { group, hook } => {
                json!({"hookGroupId": group, "hookId": hook})
            }
            Route::QueueTask { task_id } => json!({"taskId": task_id}),
        }
    }
}

fn decode(segment: &str) -> String {
    percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

/// Matches on raw path segments, then decodes each parameter, so `%2F` stays inside one.
fn match_route(method: &str, path: &str) -> Option<Route> {
    let path = path.split('?').next().unwrap_or_default();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let d = |i: usize| decode(segs[i]);
    match (method, segs.as_slice()) {
        ("GET", ["api", "hooks", "v1", "ping"]) => Some(Route::Ping),
        ("PUT", ["api", "hooks", "v1", "hooks", _, _]) => Some(Route::CreateHook { group: d(4), hook: d(5) }),
        ("GET", ["api", "hooks", "v1", "hooks", _, _]) => Some(Route::Hook { group: d(4), hook: d(5) }),
        ("POST", ["api", "hooks", "v1", "hooks", _, _, "trigger"]) => {
            Some(Route::TriggerHook { group: d(4), hook: d(5) })
        }
        ("GET", ["api", "queue", "v1", "task", _]) => Some(Route::QueueTask { task_id: d(4) }),
        _ => None,
    }
}

pub struct Service<'a> {
    pub kv: &'a dyn KeyValue,
    pub clock: &'a dyn Clock,
}

fn hook_key(group: &HookGroupId, hook: &HookId) -> String {
    format!("hook/{group}/{hook}")
}

fn task_key(task_id: &str) -> String {
    format!("task/{task_id}")
}

impl Service<'_> {
    pub fn handle(&self, req: &ApiRequest) -> ApiResponse {
        let now = iso_time(self.clock.now());
        let Some(route) = match_route(&req.method, &req.path) else {
            let err = ApiError::new(ErrorCode::ResourceNotFound, format!("No such API endpoint: {} {}", req.method, req.path));
            return ApiResponse::json(404, &err.body("", json!({}), json!({}), &now));
        };
        let payload: Result<Value, ApiError> = if req.body.len() > MAX_BODY {
            Err(ApiError::new(ErrorCode::MalformedPayload, "request body is larger than 10 MB"))
        } else if req.body.iter().all(u8::is_ascii_whitespace) {
            Ok(json!({}))
        } else {
            match serde_json::from_slice::<Value>(&req.body) {
                Ok(v @ (Value::Object(_) | Value::Array(_))) => Ok(v),
                Ok(_) => Err(ApiError::new(ErrorCode::MalformedPayload, "request body must be a JSON object or array")),
                Err(e) => Err(ApiError::new(ErrorCode::MalformedPayload, format!("request body is not valid JSON: {e}"))),
            }
        };
        let result = payload.clone().and_then(|p| self.dispatch(&route, p));
        match result {
            Ok(body) => ApiResponse::json(200, &body),
            Err(err) => {
                let body = err.body(route.method_name(), route.params(), payload.unwrap_or(json!({})), &now);
                ApiResponse::json(err.code.status(), &body)
            }
        }
    }

    fn dispatch(&self, route: &Route, payload: Value) -> Result<Value, ApiError> {
        let ids = |group: &str, hook: &str| -> Result<(HookGroupId, HookId), ApiError> {
            let g = HookGroupId::new(group);
            let h = HookId::new(hook);
            let errors: Vec<String> = [g.as_ref().err(), h.as_ref().err()].into_iter().flatten().map(|e| e.to_string()).collect();
            if errors.is_empty() {
                Ok((g.unwrap(), h.unwrap()))
            } else {
                Err(ApiError::new(ErrorCode::InvalidRequestArguments, errors.join("\n")))
            }
        };
        match route {
            Route::Ping => Ok(json!({"alive": true, "uptime": 0})),
            Route::CreateHook { group, hook } => {
                let (g, h) = ids(group, hook)?;
                self.create_hook(&g, &h, payload)
            }
            Route::Hook { group, hook } => {
                let (g, h) = ids(group, hook)?;
                Ok(serde_json::to_value(self.load_hook(&g, &h)?.definition).expect("serialises"))
            }
            Route::TriggerHook { group, hook } => {
                let (g, h) = ids(group, hook)?;
                self.trigger_hook(&g, &h, payload)
            }
            Route::QueueTask { task_id } => match self.kv.get(&task_key(task_id))? {
                Some(bytes) => serde_json::from_slice(&bytes)
                    .map_err(|e| ApiError::new(ErrorCode::InternalServerError, format!("stored task is corrupt: {e}"))),
                None => Err(ApiError::new(ErrorCode::ResourceNotFound, format!("task `{task_id}` not found"))),
            },
        }
    }

    fn load_hook(&self, g: &HookGroupId, h: &HookId) -> Result<HookRecord, ApiError> {
        let bytes = self
            .kv
            .get(&hook_key(g, h))?
            .ok_or_else(|| ApiError::new(ErrorCode::ResourceNotFound, format!("No such hook {g}/{h}")))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::new(ErrorCode::InternalServerError, format!("stored hook {g}/{h} is corrupt: {e}")))
    }

    fn create_hook(&self, g: &HookGroupId, h: &HookId, payload: Value) -> Result<Value, ApiError> {
        let req: HookCreationRequest = serde_json::from_value(payload)
            .map_err(|e| ApiError::new(ErrorCode::InputValidationError, e.to_string()))?;
        req.check_constraints()
            .map_err(|errors| ApiError::new(ErrorCode::InputValidationError, errors.join("\n")))?;
        if req.hook_group_id.as_deref().is_some_and(|x| x != g.as_str()) {
            return Err(ApiError::new(ErrorCode::InputError, "Hook Group Ids do not match"));
        }
        if req.hook_id.as_deref().is_some_and(|x| x != h.as_str()) {
            return Err(ApiError::new(ErrorCode::InputError, "Hook Ids do not match"));
        }
        Schedule::parse(&req.schedule).map_err(|e| ApiError::new(ErrorCode::InputError, e.to_string()))?;
        TriggerSchema::compile(&req.trigger_schema).map_err(|e| ApiError::new(ErrorCode::InputError, e.to_string()))?;
        let definition = HookDefinition {
            hook_group_id: g.to_string(),
            hook_id: h.to_string(),
            metadata: req.metadata,
            task: req.task,
            bindings: req.bindings.unwrap_or_default(),
            schedule: req.schedule,
            trigger_schema: req.trigger_schema,
        };
        let key = hook_key(g, h);
        if let Some(existing) = self.kv.get(&key)? {
            let existing: HookRecord = serde_json::from_slice(&existing)
                .map_err(|e| ApiError::new(ErrorCode::InternalServerError, format!("stored hook is corrupt: {e}")))?;
            // Re-creating an identical hook succeeds (idempotent); `bindings` omitted and
            // `bindings: []` count as the same (upstream quirk §5.1 fixed).
            if existing.definition != definition {
                return Err(ApiError::new(ErrorCode::RequestConflict, format!("hook `{g}/{h}` already exists.")));
            }
        } else {
            let record = HookRecord { definition: definition.clone(), trigger_token: nice_slugid(), next_task_id: nice_slugid() };
            self.kv.set(&key, &serde_json::to_vec(&record).expect("serialises"))?;
        }
        Ok(serde_json::to_value(definition).expect("serialises"))
    }

    fn trigger_hook(&self, g: &HookGroupId, h: &HookId, payload: Value) -> Result<Value, ApiError> {
        let hook = self.load_hook(g, h)?;
        TriggerSchema::compile(&hook.definition.trigger_schema)
            .and_then(|schema| schema.validate(&payload))
            .map_err(|e| ApiError::new(ErrorCode::InputError, e.to_string()))?;
        let task_id = nice_slugid();
        let ctx = FireContext { fired_by: FiredBy::TriggerHook, payload: Some(payload), client_id: None };
        match render_task(&hook.definition.task, &ctx, &task_id, self.clock.now()) {
            Ok(Rendered::Declined) => Ok(serde_json::to_value(TriggerHookResponse::Declined {}).expect("serialises")),
            Ok(Rendered::Task(task)) => {
                self.kv.set(&task_key(&task_id), &serde_json::to_vec(&Value::Object(task)).expect("serialises"))?;
                Ok(serde_json::to_value(TriggerHookResponse::created(&task_id)).expect("serialises"))
            }
            Err(e) => Err(ApiError::new(ErrorCode::InputError, format!("While firing hook:\n{e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::{FixedClock, MemoryStore};

    fn request(method: &str, path: &str, body: Value) -> ApiRequest {
        let body = if body.is_null() { vec![] } else { serde_json::to_vec(&body).unwrap() };
        ApiRequest { method: method.into(), path: path.into(), headers: vec![], body }
    }

    fn hook_body() -> Value {
        json!({
            "metadata": {"name": "n", "description": "d", "owner": "o@example.com"},
            "task": {"payload": {"v": "${payload.v}"}, "provisionerId": "p", "workerType": "w"},
            "triggerSchema": {"type": "object"}
        })
    }

    #[test]
    fn create_get_trigger_and_read_the_task() {
        let kv = MemoryStore::default();
        let clock = FixedClock::at("2026-11-23T12:00:00Z");
        let svc = Service { kv: &kv, clock: &clock };

        let created = svc.handle(&request("PUT", "/api/hooks/v1/hooks/g/a%2Fb", hook_body()));
        assert_eq!(created.status, 200, "{:?}", created.body_json());
        assert_eq!(created.body_json()["hookId"], "a/b");
        assert_eq!(created.body_json()["metadata"]["emailOnError"], true);
        assert_eq!(created.body_json()["triggerSchema"], json!({"type": "object"}));
        let mut plain = hook_body();
        plain.as_object_mut().unwrap().remove("triggerSchema");
        let defaulted = svc.handle(&request("PUT", "/api/hooks/v1/hooks/g/plain", plain));
        assert_eq!(defaulted.body_json()["triggerSchema"], json!({"type": "object", "additionalProperties": false}));

        let got = svc.handle(&request("GET", "/api/hooks/v1/hooks/g/a%2Fb", json!(null)));
        assert_eq!(got.body_json(), created.body_json());
        assert!(got.body_json().get("triggerToken").is_none());

        let fired = svc.handle(&request("POST", "/api/hooks/v1/hooks/g/a%2Fb/trigger", json!({"v": "x"})));
        assert_eq!(fired.status, 200, "{:?}", fired.body_json());
        let task_id = fired.body_json()["taskId"].as_str().unwrap().to_string();
        let task = svc.handle(&request("GET", &format!("/api/queue/v1/task/{task_id}"), json!(null)));
        assert_eq!(task.body_json()["payload"], json!({"v": "x"}));
        assert_eq!(task.body_json()["created"], "2026-11-23T12:00:00.000Z");
        assert_eq!(task.body_json()["taskGroupId"], task_id);
    }

    #[test]
    fn errors_use_the_taskcluster_format() {
        let kv = MemoryStore::default();
        let clock = FixedClock::at("2026-11-23T12:00:00Z");
        let svc = Service { kv: &kv, clock: &clock };

        let missing = svc.handle(&request("GET", "/api/hooks/v1/hooks/g/nope", json!(null)));
        assert_eq!(missing.status, 404);
        let body = missing.body_json();
        assert_eq!(body["code"], "ResourceNotFound");
        assert_eq!(body["requestInfo"]["method"], "hook");
        assert_eq!(body["requestInfo"]["params"], json!({"hookGroupId": "g", "hookId": "nope"}));

        let bad_id = svc.handle(&request("PUT", "/api/hooks/v1/hooks/g%20x/h", hook_body()));
        assert_eq!(bad_id.status, 400);
        assert_eq!(bad_id.body_json()["code"], "InvalidRequestArguments");

        let mut bad_json = request("PUT", "/api/hooks/v1/hooks/g/h", json!(null));
        bad_json.body = b"{nope".to_vec();
        assert_eq!(svc.handle(&bad_json).body_json()["code"], "MalformedPayload");

        let mut extra = hook_body();
        extra["surprise"] = json!(1);
        let refused = svc.handle(&request("PUT", "/api/hooks/v1/hooks/g/h", extra));
        assert_eq!(refused.status, 400);
        assert!(refused.body_json()["message"].as_str().unwrap().contains("surprise"));
        assert_eq!(svc.handle(&request("GET", "/api/hooks/v1/hooks/g/h", json!(null))).status, 404, "nothing half-written");
    }

    #[test]
    fn create_is_idempotent_but_conflicts_on_a_different_body() {
        let kv = MemoryStore::default();
        let clock = FixedClock::at("2026-11-23T12:00:00Z");
        let svc = Service { kv: &kv, clock: &clock };
        assert_eq!(svc.handle(&request("PUT", "/api/hooks/v1/hooks/g/h", hook_body())).status, 200);
        let stored = kv.get("hook/g/h").unwrap().unwrap();
        assert_eq!(svc.handle(&request("PUT", "/api/hooks/v1/hooks/g/h", hook_body())).status, 200);
        assert_eq!(kv.get("hook/g/h").unwrap().unwrap(), stored, "secrets unchanged by an identical create");
        let mut changed = hook_body();
        changed["metadata"]["name"] = json!("other");
        let conflict = svc.handle(&request("PUT", "/api/hooks/v1/hooks/g/h", changed));
        assert_eq!(conflict.status, 409);
        assert_eq!(conflict.body_json()["code"], "RequestConflict");
    }

    #[test]
    fn bad_schedules_are_refused_with_the_entry_named() {
        let kv = MemoryStore::default();
        let clock = FixedClock::at("2026-11-23T12:00:00Z");
        let svc = Service { kv: &kv, clock: &clock };
        let mut body = hook_body();
        body["schedule"] = json!(["0 0 9 * * 1-5", "0 0 3 0 * *"]);
        let refused = svc.handle(&request("PUT", "/api/hooks/v1/hooks/g/h", body));
        assert_eq!(refused.status, 400);
        assert_eq!(refused.body_json()["code"], "InputError");
        assert!(refused.body_json()["message"].as_str().unwrap().contains("\"0 0 3 0 * *\""));
        assert!(kv.get("hook/g/h").unwrap().is_none());
    }

    #[test]
    fn trigger_schemas_are_checked_at_create_and_payloads_at_trigger() {
        let kv = MemoryStore::default();
        let clock = FixedClock::at("2026-11-23T12:00:00Z");
        let svc = Service { kv: &kv, clock: &clock };
        let mut bad = hook_body();
        bad["triggerSchema"] = json!({"type": "beer"});
        let refused = svc.handle(&request("PUT", "/api/hooks/v1/hooks/g/h", bad));
        assert_eq!(refused.status, 400);
        assert!(refused.body_json()["message"].as_str().unwrap().starts_with("triggerSchema is not a valid JSON schema:"));

        let mut body = hook_body();
        body["triggerSchema"] = json!({"type": "object", "properties": {"v": {"type": "string"}}, "additionalProperties": false});
        assert_eq!(svc.handle(&request("PUT", "/api/hooks/v1/hooks/g/h", body)).status, 200);
        let rejected = svc.handle(&request("POST", "/api/hooks/v1/hooks/g/h/trigger", json!({"v": 1, "w": 2})));
        assert_eq!(rejected.status, 400);
        let message = rejected.body_json()["message"].as_str().unwrap().to_string();
        assert!(message.contains("data/v:") && message.contains("'w' not allowed"), "{message}");
        assert!(!kv.0.lock().unwrap().keys().any(|k| k.starts_with("task/")), "no task for a rejected payload");
        assert_eq!(svc.handle(&request("POST", "/api/hooks/v1/hooks/g/h/trigger", json!({"v": "ok"}))).status, 200);
    }

    #[test]
    fn declined_and_failed_renders() {
        let kv = MemoryStore::default();
        let clock = FixedClock::at("2026-11-23T12:00:00Z");
        let svc = Service { kv: &kv, clock: &clock };
        let mut body = hook_body();
        body["task"] = json!({"$if": "payload.go", "then": {"a": 1}});
        svc.handle(&request("PUT", "/api/hooks/v1/hooks/g/h", body));
        let declined = svc.handle(&request("POST", "/api/hooks/v1/hooks/g/h/trigger", json!({"go": false})));
        assert_eq!((declined.status, declined.body_json()), (200, json!({})));
        let failed = svc.handle(&request("POST", "/api/hooks/v1/hooks/g/h/trigger", json!({})));
        assert_eq!(failed.status, 400);
        assert!(failed.body_json()["message"].as_str().unwrap().starts_with("While firing hook:"));
    }
}
