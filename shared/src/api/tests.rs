//! The API end to end in memory: signed requests through the whole pipeline.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use super::*;
use crate::hawk::{self, Artifacts};
use crate::platform::{FixedClock, MemoryStore};
use serde_json::json;

const ROOT: &str = "static/taskhooks/root";
const ROOT_TOKEN: &str = "root-access-token-for-tests";
const NOW: &str = "2026-11-23T12:00:00Z";

struct World {
    kv: MemoryStore,
    clock: FixedClock,
    config: ServiceConfig,
}

impl World {
    fn new() -> Self {
        World {
            kv: MemoryStore::default(),
            clock: FixedClock::at(NOW),
            config: ServiceConfig {
                root_client_id: ROOT.into(),
                root_access_token: Some(ROOT_TOKEN.into()),
                sealing_key: SealingKey::from_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap(),
                build: crate::health::Build { version: "test".into(), ..Default::default() },
                taskcluster: None,
                failure_channel: None,
                pulse: None,
                github_webhook_secret: None,
                repository_hosts: Default::default(),
                public_url: None,
        metrics_token: None,
            },
        }
    }

    fn svc(&self) -> Service<'_> {
        Service::new(&self.kv, &self.clock, &self.config)
    }

    fn anon(&self, method: &str, path: &str, body: Value) -> ApiResponse {
        let req = unsigned(method, path, body);
        output_checked(&req, self.svc().handle(&req))
    }

    fn root(&self, method: &str, path: &str, body: Value) -> ApiResponse {
        self.as_client(ROOT, ROOT_TOKEN, method, path, body)
    }

    fn as_client(&self, id: &str, token: &str, method: &str, path: &str, body: Value) -> ApiResponse {
        let mut req = unsigned(method, path, body);
        sign(&mut req, id, token, self.clock.now().timestamp());
        output_checked(&req, self.svc().handle(&req))
    }

    /// A client with exactly `scopes`, created through the Auth API; returns its token.
    fn client_with(&self, id: &str, scopes: &[&str]) -> String {
        let r = self.root("PUT", &format!("/api/auth/v1/clients/{}", id.replace('/', "%2F")), json!({"description": "t", "expires": "2030-01-01T00:00:00.000Z", "scopes": scopes}));
        assert_eq!(r.status, 200, "{:?}", r.body_json());
        r.body_json()["accessToken"].as_str().unwrap().to_string()
    }
}

/// Every successful answer of every test against its method's output schema (SPEC §2.2
/// step 8), from the endpoint table.
fn output_checked(req: &ApiRequest, resp: ApiResponse) -> ApiResponse {
    let (path, _) = split_query(&req.path);
    if let (200, false, Some((ep, _))) = (resp.status, req.method == "HEAD", match_endpoint(&req.method, path)) {
        if let Some(output) = ep.output {
            let schema = super::schemas::path_of(ep.service, output);
            if let Err(errors) = super::schemas::validate(&schema, &resp.body_json()) {
                panic!("{} {path}: the answer does not match {schema}:\n{}\n{}", req.method, errors.join("\n"), serde_json::to_string_pretty(&resp.body_json()).unwrap());
            }
        }
    }
    resp
}

fn unsigned(method: &str, path: &str, body: Value) -> ApiRequest {
    let body = if body.is_null() { vec![] } else { serde_json::to_vec(&body).unwrap() };
    let mut headers = vec![("host".to_string(), "localhost:3000".to_string())];
    if !body.is_empty() {
        headers.push(("content-type".into(), "application/json".into()));
        headers.push(("content-length".into(), body.len().to_string()));
    }
    ApiRequest { method: method.into(), path: path.into(), headers, body }
}

fn sign(req: &mut ApiRequest, id: &str, token: &str, ts: i64) {
    let content_type = req.header("content-type").unwrap_or_default().to_string();
    let hash = hawk::payload_hash(&content_type, &req.body);
    let a = Artifacts { ts, nonce: "n0nce", method: &req.method, resource: &req.path, host: "localhost", port: 3000, hash: Some(&hash), ext: None };
    let mac = hawk::mac(token.as_bytes(), "header", &a);
    req.headers.push(("authorization".into(), format!(r#"Hawk id="{id}", ts="{ts}", nonce="n0nce", hash="{hash}", mac="{mac}""#)));
}

fn hook_body() -> Value {
    json!({
        "metadata": {"name": "n", "description": "d", "owner": "o@example.com"},
        "task": {"taskQueueId": "proj/ci", "payload": {"v": "${payload.v}", "by": "${firedBy}"},
                 "metadata": {"name": "n", "description": "d", "owner": "o@example.com", "source": "https://example.com"}},
        "triggerSchema": {"type": "object", "properties": {"v": {"type": "string"}, "taskId": {"type": "string"}}, "additionalProperties": false}
    })
}

const HOOK: &str = "/api/hooks/v1/hooks/g/a%2Fb";

/// The role that lets hook g/a/b create its tasks.
fn grant_hook_role(w: &World) {
    let r = w.root("PUT", "/api/auth/v1/roles/hook-id:g%2F*", json!({"description": "g's hooks", "scopes": ["queue:create-task:*", "queue:scheduler-id:-"]}));
    assert_eq!(r.status, 200, "{:?}", r.body_json());
}

#[test]
fn create_get_trigger_read_task_and_list() {
    let w = World::new();
    grant_hook_role(&w);
    let created = w.root("PUT", HOOK, hook_body());
    assert_eq!(created.status, 200, "{:?}", created.body_json());
    assert_eq!(created.body_json()["hookId"], "a/b");
    assert_eq!(created.body_json()["metadata"]["emailOnError"], true);
    let got = w.root("GET", HOOK, Value::Null);
    assert_eq!(got.body_json(), created.body_json());
    assert!(got.body_json().get("triggerToken").is_none());

    let fired = w.root("POST", &format!("{HOOK}/trigger"), json!({"v": "x"}));
    assert_eq!(fired.status, 200, "{:?}", fired.body_json());
    let task_id = fired.body_json()["taskId"].as_str().unwrap().to_string();
    assert_eq!(fired.body_json()["status"]["taskId"], task_id);
    let task = w.anon("GET", &format!("/api/queue/v1/task/{task_id}"), Value::Null).body_json();
    assert_eq!(task["payload"], json!({"v": "x", "by": "triggerHook"}));
    assert_eq!(task["taskGroupId"], task_id.as_str(), "each fire starts its own group");
    let status = w.anon("GET", &format!("/api/queue/v1/task/{task_id}/status"), Value::Null).body_json();
    assert_eq!(status["status"]["state"], "pending");
    let group = w.anon("GET", &format!("/api/queue/v1/task-group/{task_id}/list"), Value::Null).body_json();
    assert_eq!(group["tasks"][0]["status"]["taskId"], task_id.as_str());
    // A continuation token at the end of the range pages past the end, without overflow.
    let huge = URL_SAFE_NO_PAD.encode(format!("tasks:{}", usize::MAX));
    let past = w.anon("GET", &format!("/api/queue/v1/task-group/{task_id}/list?limit=1000&continuationToken={huge}"), Value::Null);
    assert_eq!((past.status, past.body_json()["tasks"].clone()), (200, json!([])));
    let mut who = hook_body();
    who["task"]["payload"] = json!({"who": "${clientId}"});
    w.root("PUT", "/api/hooks/v1/hooks/g/who", who);
    w.root("PUT", "/api/auth/v1/roles/hook-id:g%2Fwho", json!({"description": "", "scopes": ["queue:create-task:*", "queue:scheduler-id:-"]}));
    let fired = w.root("POST", "/api/hooks/v1/hooks/g/who/trigger", json!({}));
    let task = w.anon("GET", &format!("/api/queue/v1/task/{}", fired.body_json()["taskId"].as_str().unwrap()), Value::Null).body_json();
    assert_eq!(task["payload"]["who"], ROOT, "clientId is the caller");
    assert_eq!(task["created"], "2026-11-23T12:00:00.000Z");

    assert_eq!(w.root("GET", "/api/hooks/v1/hooks", Value::Null).body_json(), json!({"groups": ["g"]}));
    let listed = w.root("GET", "/api/hooks/v1/hooks/g", Value::Null).body_json();
    assert_eq!(listed["hooks"][0]["hookId"], "a/b");
    assert_eq!(listed["hooks"][1]["hookId"], "who");
    assert_eq!(w.root("GET", "/api/hooks/v1/hooks/nope", Value::Null).status, 404);

    let fires = w.root("GET", &format!("{HOOK}/last-fires"), Value::Null).body_json();
    assert_eq!(fires["lastFires"][0]["taskId"], task_id);
    assert_eq!(fires["lastFires"][0]["taskState"], "pending");
    assert_eq!(fires["lastFires"][0]["firedBy"], "triggerHook");
    let status = w.root("GET", &format!("{HOOK}/status"), Value::Null).body_json();
    assert_eq!(status, json!({"lastFire": {"result": "success", "taskId": task_id, "time": "2026-11-23T12:00:00.000Z"}}));
}

#[test]
fn scopes_are_checked_before_ids_and_existence_and_403_names_whats_missing() {
    let w = World::new();
    let anon = w.anon("GET", "/api/hooks/v1/hooks/bad%20id/x", Value::Null);
    assert_eq!(anon.status, 403, "403 beats 400 for a bad id");
    let message = anon.body_json()["message"].as_str().unwrap().to_string();
    assert!(message.contains("hooks:get:bad id:x"), "{message}");
    assert_eq!(w.root("GET", "/api/hooks/v1/hooks/bad%20id/x", Value::Null).body_json()["code"], "InvalidRequestArguments");

    let token = w.client_with("project/alice", &["hooks:modify-hook:g/*"]);
    let create = w.as_client("project/alice", &token, "PUT", HOOK, hook_body());
    assert_eq!(create.status, 403);
    let message = create.body_json()["message"].as_str().unwrap().to_string();
    assert!(message.contains("Client ID project/alice") && message.contains("assume:hook-id:g/a/b"), "{message}");
    assert!(!message.contains("missing the following scopes:\n\n```\nhooks:modify-hook"), "only the missing part first: {message}");
    assert_eq!(w.root("GET", HOOK, Value::Null).status, 404, "nothing written by a refused create");
}

#[test]
fn hawk_failures_are_401_with_www_authenticate() {
    let w = World::new();
    let mut bad_mac = unsigned("GET", "/api/hooks/v1/hooks", Value::Null);
    sign(&mut bad_mac, ROOT, "wrong-token", w.clock.now().timestamp());
    let r = w.svc().handle(&bad_mac);
    assert_eq!((r.status, r.body_json()["code"].as_str()), (401, Some("AuthenticationFailed")));
    assert!(r.headers.contains(&("www-authenticate".into(), "hawk".into())));
    let mut stale = unsigned("GET", "/api/hooks/v1/hooks", Value::Null);
    sign(&mut stale, ROOT, ROOT_TOKEN, w.clock.now().timestamp() - 16 * 60);
    assert_eq!(w.svc().handle(&stale).status, 401);
    let mut unknown = unsigned("GET", "/api/hooks/v1/hooks", Value::Null);
    sign(&mut unknown, "nobody", ROOT_TOKEN, w.clock.now().timestamp());
    assert!(w.svc().handle(&unknown).body_json()["message"].as_str().unwrap().contains("unknown client"));
    // A public method ignores a bad header entirely.
    let mut ping = unsigned("GET", "/api/hooks/v1/ping", Value::Null);
    sign(&mut ping, ROOT, "wrong-token", 0);
    assert_eq!(w.svc().handle(&ping).status, 200);
}

#[test]
fn anonymous_role_grants_public_reads() {
    let w = World::new();
    grant_hook_role(&w);
    w.root("PUT", HOOK, hook_body());
    assert_eq!(w.anon("GET", HOOK, Value::Null).status, 403);
    w.root("PUT", "/api/auth/v1/roles/anonymous", json!({"description": "public", "scopes": ["hooks:get:*", "hooks:list-hooks:*"]}));
    assert_eq!(w.anon("GET", HOOK, Value::Null).status, 200);
    assert_eq!(w.anon("GET", "/api/hooks/v1/hooks", Value::Null).status, 200);
    assert_eq!(w.anon("DELETE", HOOK, Value::Null).status, 403);
}

#[test]
fn a_hook_role_without_queue_scopes_gets_403_and_an_error_fire() {
    let w = World::new();
    w.root("PUT", HOOK, hook_body());
    let r = w.root("POST", &format!("{HOOK}/trigger"), json!({"v": "x"}));
    assert_eq!(r.status, 403, "{:?}", r.body_json());
    let message = r.body_json()["message"].as_str().unwrap().to_string();
    assert!(message.starts_with("The role `hook-id:g/a/b` does not have sufficient scopes to create the task:"), "{message}");
    assert!(message.contains("queue:create-task:project:none"), "{message}");
    let fires = w.root("GET", &format!("{HOOK}/last-fires"), Value::Null).body_json();
    assert_eq!(fires["lastFires"][0]["result"], "error");
    assert_eq!(fires["lastFires"][0]["taskState"], "unknown");
    let status = w.root("GET", &format!("{HOOK}/status"), Value::Null).body_json();
    assert_eq!(status["lastFire"]["error"]["code"], "InsufficientScopes");
}

#[test]
fn trigger_with_token_and_reset() {
    let w = World::new();
    grant_hook_role(&w);
    w.root("PUT", HOOK, hook_body());
    let token = w.root("GET", &format!("{HOOK}/token"), Value::Null).body_json()["token"].as_str().unwrap().to_string();
    assert_eq!(w.root("GET", &format!("{HOOK}/token"), Value::Null).body_json()["token"], token.as_str(), "stable");
    assert!(!String::from_utf8_lossy(&w.kv.get("hook/g/a%2Fb").unwrap().unwrap()).contains(&token), "sealed at rest");
    let fired = w.anon("POST", &format!("{HOOK}/trigger/{token}"), json!({"v": "t"}));
    assert_eq!(fired.status, 200, "{:?}", fired.body_json());
    let task = w.anon("GET", &format!("/api/queue/v1/task/{}", fired.body_json()["taskId"].as_str().unwrap()), Value::Null).body_json();
    assert_eq!(task["payload"]["by"], "triggerHookWithToken");
    let wrong = w.anon("POST", &format!("{HOOK}/trigger/wrong"), json!({}));
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.body_json()["requestInfo"]["params"]["token"], "<redacted>");
    let bad_payload = w.anon("POST", &format!("{HOOK}/trigger/{token}"), json!({"v": 1}));
    assert_eq!(bad_payload.status, 400);
    assert!(!String::from_utf8_lossy(&bad_payload.body).contains(&token), "the token is not echoed");
    assert_eq!(w.anon("POST", "/api/hooks/v1/hooks/g/none/trigger/wrong", json!({})).status, 404, "existence first (upstream)");
    let new = w.root("POST", &format!("{HOOK}/token"), Value::Null).body_json()["token"].as_str().unwrap().to_string();
    assert_ne!(new, token);
    assert_eq!(w.anon("POST", &format!("{HOOK}/trigger/{token}"), json!({"v": "t"})).status, 401, "old token dead");
    assert_eq!(w.anon("POST", &format!("{HOOK}/trigger/{new}"), json!({"v": "t"})).status, 200);
}

#[test]
fn payload_task_id_schema_and_content_type() {
    let w = World::new();
    grant_hook_role(&w);
    w.root("PUT", HOOK, hook_body());
    let chosen = "fN1SmgV0T8WXX3LhKs2Gyw";
    let r = w.root("POST", &format!("{HOOK}/trigger"), json!({"v": "x", "taskId": chosen}));
    assert_eq!(r.body_json()["taskId"], chosen);
    let again = w.root("POST", &format!("{HOOK}/trigger"), json!({"v": "x", "taskId": chosen}));
    assert_eq!(again.status, 200, "same task again is idempotent");
    let conflict = w.root("POST", &format!("{HOOK}/trigger"), json!({"v": "other", "taskId": chosen}));
    assert_eq!(conflict.status, 400);
    assert!(conflict.body_json()["message"].as_str().unwrap().contains("RequestConflict"));
    let bad = w.root("POST", &format!("{HOOK}/trigger"), json!({"taskId": "nope"}));
    assert!(bad.body_json()["message"].as_str().unwrap().starts_with("Invalid taskId format"));
    let rejected = w.root("POST", &format!("{HOOK}/trigger"), json!({"v": 1}));
    assert_eq!((rejected.status, rejected.body_json()["code"].as_str()), (400, Some("InputError")));

    let mut no_type = unsigned("POST", &format!("{HOOK}/trigger"), json!({"v": "x"}));
    no_type.headers.retain(|(k, _)| k != "content-type");
    sign(&mut no_type, ROOT, ROOT_TOKEN, w.clock.now().timestamp());
    assert_eq!(w.svc().handle(&no_type).body_json()["code"], "MalformedPayload");
}

#[test]
fn create_is_idempotent_update_keeps_bindings_remove_never_404s() {
    let w = World::new();
    let mut body = hook_body();
    body["bindings"] = json!([{"exchange": "exchange/x", "routingKeyPattern": "#"}]);
    body["schedule"] = json!(["0 0 3 * * *"]);
    assert_eq!(w.root("PUT", HOOK, body.clone()).status, 200);
    let stored = w.kv.get("hook/g/a%2Fb").unwrap();
    assert_eq!(w.root("PUT", HOOK, body.clone()).status, 200);
    assert_eq!(w.kv.get("hook/g/a%2Fb").unwrap(), stored, "identical create changes nothing");
    let mut other = body.clone();
    other["metadata"]["name"] = json!("other");
    assert_eq!(w.root("PUT", HOOK, other.clone()).status, 409);
    let status = w.root("GET", &format!("{HOOK}/status"), Value::Null).body_json();
    assert_eq!(status, json!({"lastFire": {"result": "no-fire"}, "nextScheduledDate": "2026-11-24T03:00:00.000Z"}));

    other.as_object_mut().unwrap().remove("bindings");
    other.as_object_mut().unwrap().remove("schedule");
    let updated = w.root("POST", HOOK, other).body_json();
    assert_eq!(updated["bindings"], body["bindings"], "omitted bindings are kept");
    assert_eq!(updated["schedule"], json!([]), "omitted schedule is cleared");
    assert!(w.root("GET", &format!("{HOOK}/status"), Value::Null).body_json().get("nextScheduledDate").is_none());
    assert_eq!(w.root("POST", "/api/hooks/v1/hooks/g/none", hook_body()).status, 404);

    let mut denied = hook_body();
    denied["bindings"] = json!([{"exchange": "exchange/taskcluster-hooks/v1/hook-created", "routingKeyPattern": "#"}]);
    assert_eq!(w.root("PUT", "/api/hooks/v1/hooks/g/denied", denied).body_json()["code"], "InputError");

    assert_eq!(w.root("DELETE", HOOK, Value::Null).body_json(), json!({}));
    assert_eq!(w.root("DELETE", HOOK, Value::Null).status, 200);
    assert_eq!(w.root("GET", HOOK, Value::Null).status, 404);
    assert_eq!(w.root("GET", "/api/hooks/v1/hooks", Value::Null).body_json(), json!({"groups": []}));
}

#[test]
fn last_fires_page_newest_first() {
    let w = World::new();
    grant_hook_role(&w);
    w.root("PUT", HOOK, hook_body());
    let mut ids = vec![];
    for i in 0..5 {
        *w.clock.0.lock().unwrap() = NOW.parse::<chrono::DateTime<chrono::Utc>>().unwrap() + chrono::Duration::seconds(i);
        ids.push(w.root("POST", &format!("{HOOK}/trigger"), json!({"v": "x"})).body_json()["taskId"].as_str().unwrap().to_string());
    }
    ids.reverse();
    let mut seen = vec![];
    let mut path = format!("{HOOK}/last-fires?limit=2");
    loop {
        let page = w.root("GET", &path, Value::Null).body_json();
        seen.extend(page["lastFires"].as_array().unwrap().iter().map(|f| f["taskId"].as_str().unwrap().to_string()));
        match page["continuationToken"].as_str() {
            Some(t) => path = format!("{HOOK}/last-fires?limit=2&continuationToken={t}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    // A token taskhooks did not issue starts at the first page, as upstream's paging does
    // (a number beyond i64 is not read as a wrapped negative one).
    let first = w.root("GET", &format!("{HOOK}/last-fires?limit=2"), Value::Null).body_json()["lastFires"].clone();
    for bad in ["!!".to_string(), URL_SAFE_NO_PAD.encode(format!("fires:{}", u64::MAX)), URL_SAFE_NO_PAD.encode("tasks:3")] {
        let page = w.root("GET", &format!("{HOOK}/last-fires?limit=2&continuationToken={bad}"), Value::Null);
        assert_eq!((page.status, page.body_json()["lastFires"].clone()), (200, first.clone()), "{bad}");
    }
    assert_eq!(w.root("GET", &format!("{HOOK}/last-fires?limit=x"), Value::Null).body_json()["code"], "InvalidRequestArguments");
    assert_eq!(w.root("GET", &format!("{HOOK}/last-fires?colour=red"), Value::Null).body_json()["code"], "InvalidRequestArguments");
    assert_eq!(w.root("GET", "/api/hooks/v1/hooks/g/never/last-fires", Value::Null).status, 404);
}

#[test]
fn clients_and_roles_through_the_auth_api() {
    let w = World::new();
    let token = w.client_with("project/bob", &["hooks:trigger-hook:g/*", "auth:create-client:project/bob/*"]);
    let got = w.anon("GET", "/api/auth/v1/clients/project%2Fbob", Value::Null).body_json();
    assert_eq!(got["scopes"], json!(["auth:create-client:project/bob/*", "hooks:trigger-hook:g/*"]));
    assert!(got.get("accessToken").is_none(), "only create/reset return the token");
    assert!(!String::from_utf8_lossy(&w.kv.get("client/project/bob").unwrap().unwrap()).contains(&token), "sealed at rest");
    let current = w.as_client("project/bob", &token, "GET", "/api/auth/v1/scopes/current", Value::Null).body_json();
    assert!(current["scopes"].as_array().unwrap().contains(&json!("hooks:trigger-hook:g/*")));

    // Bob may create clients under his prefix, but not give them more than he has.
    let escalate = w.as_client("project/bob", &token, "PUT", "/api/auth/v1/clients/project%2Fbob%2Fci", json!({"description": "ci", "expires": "2030-01-01T00:00:00.000Z", "scopes": ["hooks:*"]}));
    assert_eq!(escalate.status, 403);
    let ok = w.as_client("project/bob", &token, "PUT", "/api/auth/v1/clients/project%2Fbob%2Fci", json!({"description": "ci", "expires": "2030-01-01T00:00:00.000Z", "scopes": ["hooks:trigger-hook:g/x"]}));
    assert_eq!(ok.status, 200, "{:?}", ok.body_json());
    assert_eq!(w.root("PUT", "/api/auth/v1/clients/project%2Fbob", json!({"description": "x", "expires": "2030-01-01T00:00:00.000Z"})).status, 409);

    let reset = w.root("POST", "/api/auth/v1/clients/project%2Fbob/reset", Value::Null).body_json();
    let new_token = reset["accessToken"].as_str().unwrap();
    assert_eq!(w.as_client("project/bob", &token, "GET", "/api/auth/v1/scopes/current", Value::Null).status, 401, "old token dead");
    assert_eq!(w.as_client("project/bob", new_token, "GET", "/api/auth/v1/scopes/current", Value::Null).status, 200);

    let role = w.root("PUT", "/api/auth/v1/roles/project-admin:*", json!({"description": "admins", "scopes": ["hooks:modify-hook:project-<..>/*"]})).body_json();
    assert_eq!(role["roleId"], "project-admin:*");
    assert!(role["expandedScopes"].as_array().unwrap().contains(&json!("hooks:modify-hook:project-*")), "expanded with the new role: {role}");
    let expanded = w.anon("POST", "/api/auth/v1/scopes/expand", json!({"scopes": ["assume:project-admin:zap"]})).body_json();
    assert_eq!(expanded["scopes"], json!(["assume:project-admin:zap", "hooks:modify-hook:project-zap/*"]));
    assert_eq!(w.root("PUT", "/api/auth/v1/roles/project-admin:*", json!({"description": "changed", "scopes": []})).status, 409);
    let updated = w.root("POST", "/api/auth/v1/roles/project-admin:*", json!({"description": "changed", "scopes": ["hooks:get:*"]})).body_json();
    assert_eq!(updated["scopes"], json!(["hooks:get:*"]));
    assert_eq!(w.anon("GET", "/api/auth/v1/roles/", Value::Null).body_json().as_array().unwrap().len(), 1);
    assert_eq!(w.root("DELETE", "/api/auth/v1/roles/project-admin:*", Value::Null).status, 200);
    assert_eq!(w.anon("GET", "/api/auth/v1/roles/project-admin:*", Value::Null).status, 404);
    assert_eq!(w.root("PUT", "/api/auth/v1/roles/r", json!({"description": "d", "scopes": ["a:**"]})).status, 400);

    assert_eq!(w.root("DELETE", "/api/auth/v1/clients/project%2Fbob", Value::Null).status, 200);
    assert_eq!(w.as_client("project/bob", new_token, "GET", "/api/auth/v1/scopes/current", Value::Null).status, 401);
}

#[test]
fn create_task_through_the_queue_api_needs_the_tasks_scopes() {
    let w = World::new();
    let task = json!({"taskQueueId": "proj/ci", "created": NOW, "deadline": "2026-11-23T13:00:00Z", "scopes": ["secrets:get:x"], "payload": {},
                      "metadata": {"name": "n", "description": "d", "owner": "o@example.com", "source": "https://example.com"}});
    let id = "fN1SmgV0T8WXX3LhKs2Gyw";
    let token = w.client_with("queue-user", &["queue:create-task:*", "queue:scheduler-id:-"]);
    let refused = w.as_client("queue-user", &token, "PUT", &format!("/api/queue/v1/task/{id}"), task.clone());
    assert_eq!(refused.status, 403, "{:?}", refused.body_json());
    assert!(refused.body_json()["message"].as_str().unwrap().contains("secrets:get:x"));
    assert_eq!(w.anon("PUT", &format!("/api/queue/v1/task/{id}"), task.clone()).status, 403);
    let created = w.root("PUT", &format!("/api/queue/v1/task/{id}"), task.clone());
    assert_eq!(created.body_json()["status"]["state"], "pending", "{:?}", created.body_json());
    assert_eq!(w.root("PUT", &format!("/api/queue/v1/task/{id}"), task.clone()).status, 200, "idempotent");
    let mut other = task.clone();
    other["payload"] = json!({"x": 1});
    assert_eq!(w.root("PUT", &format!("/api/queue/v1/task/{id}"), other).body_json()["code"], "RequestConflict");
    let mut stale = task;
    stale["created"] = json!("2026-11-23T11:00:00Z");
    assert_eq!(w.root("PUT", "/api/queue/v1/task/aN1SmgV0T8WXX3LhKs2Gyw", stale).body_json()["code"], "InputError");
    assert_eq!(w.anon("GET", "/api/queue/v1/task-group/nope/list", Value::Null).body_json()["code"], "InvalidRequestArguments");
    assert_eq!(w.anon("GET", "/api/queue/v1/task-group/bN1SmgV0T8WXX3LhKs2Gyw/list", Value::Null).status, 404);
}

#[test]
fn dry_run_and_schedule_previews_have_no_side_effects() {
    let w = World::new();
    let mut body = hook_body();
    body["schedule"] = json!(["0 0 3 * * *"]);
    w.root("PUT", HOOK, body);
    let dry = |b: Value| w.root("POST", "/api/taskhooks/v1/hooks/g/a%2Fb/dry-run", b).body_json();
    let missing = dry(json!({"payload": {"v": "x"}}));
    assert_eq!(missing["outcome"], "insufficient-scopes", "{missing}");
    assert_eq!(missing["role"], "hook-id:g/a/b");
    grant_hook_role(&w);
    let ok = dry(json!({"payload": {"v": "x"}}));
    assert_eq!(ok["outcome"], "task");
    assert_eq!(ok["task"]["payload"], json!({"v": "x", "by": "triggerHook"}));
    assert_eq!(dry(json!({"payload": {"v": 1}}))["outcome"], "invalid-payload");
    assert_eq!(dry(json!({"firedBy": "schedule"}))["outcome"], "render-error", "no payload when scheduled");
    let mut no_metadata = hook_body();
    no_metadata["task"].as_object_mut().unwrap().remove("metadata");
    w.root("PUT", "/api/hooks/v1/hooks/g/bare", no_metadata);
    let bare = w.root("POST", "/api/taskhooks/v1/hooks/g/bare/dry-run", json!({"payload": {"v": "x"}})).body_json();
    assert_eq!(bare["outcome"], "invalid-task", "{bare}");
    assert_eq!(w.root("GET", &format!("{HOOK}/last-fires"), Value::Null).status, 404, "nothing recorded");
    assert!(w.kv.keys_with_prefix("task/").is_empty(), "nothing created");

    let next = w.root("GET", "/api/taskhooks/v1/hooks/g/a%2Fb/next-fires?count=2", Value::Null).body_json();
    assert_eq!(next["nextFires"], json!(["2026-11-24T03:00:00.000Z", "2026-11-25T03:00:00.000Z"]));
    let preview = w.anon("POST", "/api/taskhooks/v1/schedule-preview", json!({"schedule": ["0 30 9 * * 1"], "count": 1, "from": "2026-11-23T00:00:00Z"})).body_json();
    assert_eq!(preview["nextFires"], json!(["2026-11-23T09:30:00.000Z"]));
    assert_eq!(w.anon("POST", "/api/taskhooks/v1/schedule-preview", json!({"schedule": ["0 0 3 0 * *"]})).body_json()["code"], "InputError");
}

#[test]
fn the_http_tick_fires_due_hooks_and_needs_hooks_tick() {
    let w = World::new();
    grant_hook_role(&w);
    let mut body = hook_body();
    body["schedule"] = json!(["0 0 * * * *"]);
    body["triggerSchema"] = json!({"type": "object"});
    body["task"]["payload"] = json!({"at": {"$eval": "now"}});
    assert_eq!(w.root("PUT", HOOK, body).status, 200);
    let token = w.client_with("cron-caller", &["hooks:list-hooks:"]);
    assert_eq!(w.as_client("cron-caller", &token, "POST", "/api/taskhooks/v1/tick", Value::Null).status, 403);
    assert_eq!(w.root("POST", "/api/taskhooks/v1/tick", Value::Null).body_json(), json!({"due": 0, "fired": 0, "declined": 0, "failed": 0, "retrying": 0, "cronProjects": {"synced": 0, "failed": []}}));
    *w.clock.0.lock().unwrap() = "2026-11-23T13:01:00Z".parse().unwrap();
    assert_eq!(w.root("POST", "/api/taskhooks/v1/tick", Value::Null).body_json(), json!({"due": 1, "fired": 1, "declined": 0, "failed": 0, "retrying": 0, "cronProjects": {"synced": 0, "failed": []}}));
    let fires = w.root("GET", &format!("{HOOK}/last-fires"), Value::Null).body_json();
    assert_eq!(fires["lastFires"][0]["firedBy"], "schedule");
    let task = w.anon("GET", &format!("/api/queue/v1/task/{}", fires["lastFires"][0]["taskId"].as_str().unwrap()), Value::Null).body_json();
    assert_eq!(task["payload"]["at"], "2026-11-23T13:00:00.000Z");
    assert_eq!(w.root("GET", &format!("{HOOK}/status"), Value::Null).body_json()["nextScheduledDate"], "2026-11-23T14:00:00.000Z");
}

#[test]
fn errors_use_the_taskcluster_format() {
    let w = World::new();
    let missing = w.root("GET", "/api/hooks/v1/hooks/g/nope", Value::Null);
    assert_eq!(missing.status, 404);
    let body = missing.body_json();
    assert_eq!(body["code"], "ResourceNotFound");
    assert_eq!(body["requestInfo"]["method"], "hook");
    assert_eq!(body["requestInfo"]["params"], json!({"hookGroupId": "g", "hookId": "nope"}));

    let mut bad_json = unsigned("PUT", "/api/hooks/v1/hooks/g/h", Value::Null);
    bad_json.body = b"{nope".to_vec();
    assert_eq!(w.svc().handle(&bad_json).body_json()["code"], "MalformedPayload", "body errors come before auth");

    let mut extra = hook_body();
    extra["surprise"] = json!(1);
    let refused = w.root("PUT", "/api/hooks/v1/hooks/g/h", extra);
    assert_eq!(refused.body_json()["code"], "InputValidationError");
    assert!(refused.body_json()["message"].as_str().unwrap().contains("surprise"));
    let mut bad_schedule = hook_body();
    bad_schedule["schedule"] = json!(["0 0 3 0 * *"]);
    assert!(w.root("PUT", "/api/hooks/v1/hooks/g/h", bad_schedule).body_json()["message"].as_str().unwrap().contains("0 0 3 0 * *"));
    let mut bad_schema = hook_body();
    bad_schema["triggerSchema"] = json!({"type": "beer"});
    assert!(w.root("PUT", "/api/hooks/v1/hooks/g/h", bad_schema).body_json()["message"].as_str().unwrap().starts_with("triggerSchema is not a valid JSON schema:"));
    assert_eq!(w.root("GET", "/api/hooks/v1/hooks/g/h", Value::Null).status, 404, "nothing half-written");
    assert_eq!(w.anon("GET", "/api/hooks/v1/nowhere", Value::Null).status, 404);
    assert_eq!(w.anon("GET", "/api/hooks/v1/__heartbeat__", Value::Null).body_json(), json!({}));
}

#[test]
fn github_deliveries_need_the_secret_and_a_matching_signature_and_fire_bound_hooks() {
    use hmac::Mac;
    let mut w = World::new();
    let push = json!({"ref": "refs/heads/main", "after": "abc", "repository": {"name": "r", "owner": {"login": "o"}}});
    let delivery = |w: &World, secret: &str, event: &str, id: &str| {
        let mut req = unsigned("POST", "/api/github/v1/github", push.clone());
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(&req.body);
        let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        req.headers.push(("x-hub-signature-256".into(), format!("sha256={hex}")));
        req.headers.push(("x-github-event".into(), event.into()));
        req.headers.push(("x-github-delivery".into(), id.into()));
        w.svc().handle(&req)
    };
    let off = delivery(&w, "s", "push", "d1");
    assert_eq!(off.status, 404, "off until a secret is configured");
    assert!(off.body_json()["message"].as_str().unwrap().contains("github_webhook_secret"));

    w.config.github_webhook_secret = Some("s".into());
    let forged = delivery(&w, "not-s", "push", "d1");
    assert_eq!(forged.status, 401);
    assert_eq!(forged.body_json()["code"], "AuthenticationFailed");
    assert!(forged.body_json()["requestInfo"].is_object());
    assert_eq!(delivery(&w, "s", "ping", "d0").status, 200);

    w.root("PUT", "/api/auth/v1/roles/hook-id:g%2F*", json!({"description": "d", "scopes": ["queue:*"]}));
    let mut body = hook_body();
    body["bindings"] = json!([{"exchange": "exchange/taskcluster-github/v1/push", "routingKeyPattern": "primary.o.*"}]);
    body["triggerSchema"] = json!({"type": "object"});
    body["task"]["payload"] = json!({"branch": "${payload.branch}", "missing": "${payload.v}"});
    assert_eq!(w.root("PUT", "/api/hooks/v1/hooks/g/h", body.clone()).status, 200);
    let failed = delivery(&w, "s", "push", "d0").body_json();
    assert_eq!(failed["hooks"][0]["outcome"], "error");
    assert!(failed["hooks"][0]["error"].as_str().unwrap().contains("template.payload.missing"), "{failed}");
    body["task"]["payload"] = json!({"branch": "${payload.branch}"});
    assert_eq!(w.root("POST", "/api/hooks/v1/hooks/g/h", body).status, 200);
    let fired = delivery(&w, "s", "push", "d1").body_json();
    assert_eq!(fired["hooks"][0]["outcome"], "created", "{fired}");
    assert_eq!(delivery(&w, "s", "push", "d1").body_json()["hooks"][0]["outcome"], "duplicate");
    // Removing the hook unbinds it: the next delivery fires nothing.
    assert_eq!(w.root("DELETE", "/api/hooks/v1/hooks/g/h", Value::Null).status, 200);
    assert_eq!(delivery(&w, "s", "push", "d2").body_json()["hooks"], json!([]));
}

#[test]
fn the_ui_is_served_at_the_root_with_a_same_origin_policy() {
    let w = World::new();
    let page = w.anon("GET", "/", Value::Null);
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("/ui/app.js"));
    let csp = page.headers.iter().find(|(k, _)| k == "content-security-policy").map(|(_, v)| v.as_str()).unwrap();
    assert!(csp.contains("connect-src 'self'") && csp.contains("script-src 'self'"), "{csp}");
    let script = w.anon("GET", "/ui/app.js", Value::Null);
    assert_eq!(script.headers.iter().find(|(k, _)| k == "content-type").unwrap().1, "text/javascript; charset=utf-8");
    assert_eq!(w.anon("GET", "/ui/missing.js", Value::Null).status, 404);
    assert_eq!(w.anon("POST", "/", Value::Null).status, 404);
}

/// Every endpoint that needs a caller, against every way of failing to authenticate:
/// each is refused with the right status, in the Taskcluster error format, and no
/// secret appears in any answer.
#[test]
fn the_auth_matrix_refuses_every_forged_or_stale_caller_on_every_endpoint() {
    use base64::Engine;
    let w = World::new();
    let limited_token = w.client_with("limited", &["hooks:list-hooks:*"]);
    let now = w.clock.now().timestamp();
    let now_ms = now * 1000;

    // Temporary credentials issued by the root client, expired an hour ago.
    let mut cert = crate::hawk::Certificate {
        version: 1,
        scopes: vec!["*".into()],
        start: now_ms - 3 * 3600 * 1000,
        expiry: now_ms - 3600 * 1000,
        seed: "a".repeat(44),
        signature: String::new(),
        issuer: None,
    };
    cert.signature = cert.signature_for(ROOT, ROOT_TOKEN.as_bytes());
    let temp_token = crate::hawk::temporary_access_token(ROOT_TOKEN.as_bytes(), &cert.seed);
    let cert_json = json!({"version": 1, "scopes": cert.scopes, "start": cert.start, "expiry": cert.expiry, "seed": cert.seed, "signature": cert.signature});
    let b64 = |v: &Value| base64::engine::general_purpose::STANDARD.encode(v.to_string());

    let header = |req: &ApiRequest, id: &str, key: &str, ts: i64, ext: Option<String>| {
        let content_type = req.header("content-type").unwrap_or_default().to_string();
        let hash = hawk::payload_hash(&content_type, &req.body);
        let a = Artifacts { ts, nonce: "n0nce", method: &req.method, resource: &req.path, host: "localhost", port: 3000, hash: Some(&hash), ext: ext.as_deref() };
        let mac = hawk::mac(key.as_bytes(), "header", &a);
        let ext = ext.map(|e| format!(r#", ext="{e}""#)).unwrap_or_default();
        format!(r#"Hawk id="{id}", ts="{ts}", nonce="n0nce", hash="{hash}"{ext}, mac="{mac}""#)
    };
    type Case<'a> = (&'a str, Box<dyn Fn(&mut ApiRequest) + 'a>, u16);
    let cases: Vec<Case> = vec![
        ("no credentials", Box::new(|_r: &mut ApiRequest| {}), 403),
        ("bad MAC", Box::new(|r: &mut ApiRequest| {
            let h = header(r, ROOT, ROOT_TOKEN, now, None);
            let forged = h.replace(r#"mac=""#, r#"mac="AAAA"#);
            r.headers.push(("authorization".into(), forged));
        }), 401),
        ("wrong key", Box::new(|r: &mut ApiRequest| {
            let h = header(r, ROOT, "not-the-root-token", now, None);
            r.headers.push(("authorization".into(), h));
        }), 401),
        ("unknown client", Box::new(|r: &mut ApiRequest| {
            let h = header(r, "nobody", ROOT_TOKEN, now, None);
            r.headers.push(("authorization".into(), h));
        }), 401),
        ("stale timestamp", Box::new(|r: &mut ApiRequest| {
            let h = header(r, ROOT, ROOT_TOKEN, now - 16 * 60, None);
            r.headers.push(("authorization".into(), h));
        }), 401),
        ("future timestamp", Box::new(|r: &mut ApiRequest| {
            let h = header(r, ROOT, ROOT_TOKEN, now + 16 * 60, None);
            r.headers.push(("authorization".into(), h));
        }), 401),
        ("tampered body", Box::new(|r: &mut ApiRequest| {
            let h = header(r, ROOT, ROOT_TOKEN, now, None);
            r.headers.push(("authorization".into(), h));
            r.body.extend_from_slice(b" ");
        }), 401),
        ("bad ext", Box::new(|r: &mut ApiRequest| {
            let h = header(r, ROOT, ROOT_TOKEN, now, Some("!!not-base64!!".into()));
            r.headers.push(("authorization".into(), h));
        }), 401),
        ("expired certificate", Box::new(|r: &mut ApiRequest| {
            let h = header(r, ROOT, &temp_token, now, Some(b64(&json!({"certificate": cert_json}))));
            r.headers.push(("authorization".into(), h));
        }), 401),
        ("authorizedScopes escalation", Box::new(|r: &mut ApiRequest| {
            let h = header(r, "limited", &limited_token, now, Some(b64(&json!({"authorizedScopes": ["*"]}))));
            r.headers.push(("authorization".into(), h));
        }), 401),
        ("bewit replayed on another resource", Box::new(|r: &mut ApiRequest| {
            let other = "/api/hooks/v1/hooks/another-group";
            let exp = now + 600;
            let a = Artifacts { ts: exp, nonce: "", method: "GET", resource: other, host: "localhost", port: 3000, hash: None, ext: None };
            let mac = hawk::mac(ROOT_TOKEN.as_bytes(), "bewit", &a);
            let bewit = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{ROOT}\\{exp}\\{mac}\\"));
            let sep = if r.path.contains('?') { '&' } else { '?' };
            r.path = format!("{}{sep}bewit={bewit}", r.path);
        }), 401),
    ];

    let mut checked = 0;
    for ep in super::endpoints::ENDPOINTS.iter().filter(|ep| !matches!(ep.access, Access::Public | Access::GithubSignature)) {
        let path = ep
            .route
            .split('/')
            .map(|seg| match seg {
                "<hookGroupId>" => "g",
                "<hookId>" => "h",
                "<clientId>" => "c",
                "<roleId>" => "r",
                s if s.starts_with('<') => "x",
                s => s,
            })
            .collect::<Vec<_>>()
            .join("/");
        let path = format!("/api/{}/v1{path}", ep.service);
        for (name, apply, status) in &cases {
            let mut req = unsigned(ep.method, &path, if ep.input == Input::None { Value::Null } else { json!({}) });
            apply(&mut req);
            let resp = w.svc().handle(&req);
            if *name == "no credentials" && ep.access == Access::Authenticated {
                // Methods open to any caller (currentScopes, createTask) let the anonymous
                // one through, to be judged on its scopes (`assume:anonymous`) later.
                assert_ne!(resp.status, 401, "{} {path}", ep.method);
                continue;
            }
            // A bewit on anything but GET is refused too, but as a bewit misuse: 401 either way.
            assert_eq!(resp.status, *status, "{} {path} with {name}: {}", ep.method, String::from_utf8_lossy(&resp.body));
            let body = resp.body_json();
            let code = if *status == 401 { "AuthenticationFailed" } else { "InsufficientScopes" };
            assert_eq!(body["code"], code, "{} {path} with {name}", ep.method);
            assert!(body["requestInfo"].is_object());
            let text = String::from_utf8_lossy(&resp.body);
            for secret in [ROOT_TOKEN, limited_token.as_str(), temp_token.as_str()] {
                assert!(!text.contains(secret), "{} {path} with {name} leaks a secret", ep.method);
            }
            checked += 1;
        }
    }
    assert!(checked >= 250, "{checked} cases");
}

/// A store written by layout 1's code (`tests/fixtures/layout-v1`), upgraded, answers every
/// call as that code did: hooks, fires, clients, roles, tasks and bindings read back the
/// same. An upgrade killed partway and run again (or run twice) gives the same.
#[test]
fn a_layout_1_store_upgrades_in_place_and_reads_back_the_same() {
    use base64::Engine as _;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/layout-v1");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(format!("{dir}/store.json")).unwrap()).unwrap();
    let answers: Value = serde_json::from_str(&std::fs::read_to_string(format!("{dir}/answers.json")).unwrap()).unwrap();
    let load = |w: &World| {
        for (k, v) in fixture["keys"].as_object().unwrap() {
            w.kv.set(k, &base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap()).unwrap();
        }
        *w.clock.0.lock().unwrap() = fixture["now"].as_str().unwrap().parse().unwrap();
    };
    for interrupted_after in [None, Some(3), Some(40)] {
        let w = World::new();
        load(&w);
        assert_eq!(crate::layout::ensure(&w.kv, &|_| ()), Err(crate::layout::LayoutError::NeedsUpgrade), "components refuse it");
        if let Some(n) = interrupted_after {
            // A run killed after `n` writes: nothing after the n-th write happens.
            let dying = Dying { inner: &w.kv, left: std::cell::Cell::new(n) };
            assert!(crate::migrate::upgrade(&dying, w.clock.now()).is_err(), "the run was cut short");
        }
        let report = crate::migrate::upgrade(&w.kv, w.clock.now()).unwrap();
        assert!(report.upgraded);
        if interrupted_after.is_none() {
            assert_eq!((report.hooks, report.fires, report.clients, report.roles, report.tasks), (4, 6, 3, 3, 5), "{report:?}");
        }
        assert!(!crate::migrate::upgrade(&w.kv, w.clock.now()).unwrap().upgraded, "a second run has nothing to do");
        crate::layout::ensure(&w.kv, &|_| ()).unwrap();
        let old_keys = w.kv.keys_with_prefix("").into_iter().filter(|k| k == "roles" || k.starts_with("binding/") || k.starts_with("migrate/") || (k.starts_with("fire/") && k.matches('/').count() == 4)).count();
        assert_eq!(old_keys, 0, "no layout-1 key is left");
        for (what, expected) in answers.as_object().unwrap() {
            let got = if what == "bindings" {
                let mut b = serde_json::Map::new();
                for exchange in expected.as_object().unwrap().keys() {
                    b.insert(exchange.clone(), json!(crate::relay::hooks_bound_to(&w.kv, exchange).unwrap()));
                }
                Value::Object(b)
            } else {
                let (method, rest) = what.split_once(' ').unwrap_or((what, ""));
                let path = match method {
                    "listHookGroups" => "/api/hooks/v1/hooks".to_string(),
                    "listHooks" => format!("/api/hooks/v1/hooks/{rest}"),
                    "hook" => format!("/api/hooks/v1/hooks/{rest}"),
                    "getHookStatus" => format!("/api/hooks/v1/hooks/{rest}/status"),
                    "listLastFires" if rest == "page 1" => format!("{HOOK}/last-fires?limit=2"),
                    "listLastFires" => format!("/api/hooks/v1/hooks/{rest}/last-fires"),
                    "pulse" => format!("/api/taskhooks/v1/hooks/{rest}/pulse"),
                    "listClients" if rest.is_empty() => "/api/auth/v1/clients/".to_string(),
                    "listClients" => "/api/auth/v1/clients/?prefix=project%2F".to_string(),
                    "client" => "/api/auth/v1/clients/project%2Fbob".to_string(),
                    "listRoles" => "/api/auth/v1/roles/".to_string(),
                    "role" => "/api/auth/v1/roles/project:ci".to_string(),
                    "task" => format!("/api/queue/v1/task/{rest}"),
                    "status" => format!("/api/queue/v1/task/{rest}/status"),
                    "listTaskGroup" => format!("/api/queue/v1/task-group/{rest}/list"),
                    other => panic!("unknown call {other}"),
                };
                let r = w.root("GET", &path, Value::Null);
                json!({"status": r.status, "body": r.body_json()})
            };
            let mut got = got;
            let mut expected = expected.clone();
            // Continuation tokens name a position in the layout: present in both, not equal.
            for v in [&mut got, &mut expected] {
                if let Some(t) = v.pointer_mut("/body/continuationToken") {
                    *t = json!("<token>");
                }
            }
            assert_eq!(got, expected, "{what} after an upgrade interrupted after {interrupted_after:?}");
        }
        // And the next page of the paged call continues where the first ended.
        let first = w.root("GET", &format!("{HOOK}/last-fires?limit=2"), Value::Null).body_json();
        let token = first["continuationToken"].as_str().unwrap();
        let next = w.root("GET", &format!("{HOOK}/last-fires?limit=2&continuationToken={token}"), Value::Null).body_json();
        assert_eq!(next["lastFires"].as_array().unwrap().len(), 1, "{next}");
    }
}

/// A store that dies after a number of writes (a killed process, as far as the writer sees).
struct Dying<'a> {
    inner: &'a MemoryStore,
    left: std::cell::Cell<usize>,
}

impl Dying<'_> {
    fn write(&self) -> Result<(), crate::platform::StoreError> {
        if self.left.get() == 0 {
            return Err(crate::platform::StoreError("killed".into()));
        }
        self.left.set(self.left.get() - 1);
        Ok(())
    }
}

impl KeyValue for Dying<'_> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, crate::platform::StoreError> {
        self.inner.get(key)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), crate::platform::StoreError> {
        self.write()?;
        self.inner.set(key, value)
    }
    fn delete(&self, key: &str) -> Result<(), crate::platform::StoreError> {
        self.write()?;
        self.inner.delete(key)
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, crate::platform::StoreError> {
        self.inner.get_many(keys)
    }
    /// One write: a batch lands whole or not at all, as on Spin's SQLite and Redis.
    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), crate::platform::StoreError> {
        self.write()?;
        self.inner.set_many(entries)
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, crate::platform::StoreError> {
        self.write()?;
        self.inner.increment(key, delta)
    }
    fn compare_and_swap(&self, key: &str, update: &mut dyn FnMut(Option<&[u8]>) -> Option<Vec<u8>>) -> Result<crate::platform::CasAttempt, crate::platform::StoreError> {
        self.write()?;
        self.inner.compare_and_swap(key, update)
    }
}

impl crate::platform::KeyListing for Dying<'_> {
    fn all_keys(&self) -> Result<Vec<String>, crate::platform::StoreError> {
        crate::platform::KeyListing::all_keys(self.inner)
    }
}

#[test]
fn abuse_cases_answer_clear_errors_and_store_nothing() {
    let w = World::new();
    assert_eq!(w.root("PUT", HOOK, hook_body()).status, 200);
    let token = w.root("GET", &format!("{HOOK}/token"), Value::Null).body_json()["token"].as_str().unwrap().to_string();
    // A trigger token on a route that does not exist (a GET, a trailing slash) is never echoed.
    for (method, path) in [("GET", format!("{HOOK}/trigger/{token}")), ("POST", format!("{HOOK}/trigger/{token}/"))] {
        let r = w.anon(method, &path, json!({}));
        assert_eq!(r.status, 404);
        let text = String::from_utf8_lossy(&r.body).to_string();
        assert!(!text.contains(&token), "{text}");
        assert!(text.contains("/trigger/<redacted>"), "{text}");
    }

    // A role set that would expand without end is refused, with upstream's error, and not stored.
    let r = w.root("PUT", "/api/auth/v1/roles/probe-star*", json!({"description": "", "scopes": ["assume:probe-star<..>x"]}));
    assert_eq!(r.status, 400, "{:?}", r.body_json());
    assert!(r.body_json()["message"].as_str().unwrap().starts_with("Roles may not contain dependency cycles"), "{:?}", r.body_json());
    assert_eq!(w.root("GET", "/api/auth/v1/roles/probe-star*", Value::Null).status, 404);
    // One written past the check (a store from before it): expansion answers an error,
    // and a client that would need it is not created.
    let store = Store { kv: &w.kv, key: &w.config.sealing_key };
    let now = "2026-11-23T12:00:00.000Z".to_string();
    store
        .create_role(&crate::store::RoleRecord { role_id: "probe-star*".into(), scopes: vec!["assume:probe-star<..>x".into()], description: String::new(), created: now.clone(), last_modified: now })
        .unwrap();
    let r = w.anon("POST", "/api/auth/v1/scopes/expand", json!({"scopes": ["assume:probe-star"]}));
    assert_eq!(r.status, 400, "{:?}", r.body_json());
    assert!(r.body_json()["message"].as_str().unwrap().contains("more than 100000 scopes"));
    let r = w.root("PUT", "/api/auth/v1/clients/prober", json!({"description": "", "expires": "2030-01-01T00:00:00.000Z", "scopes": ["assume:probe-star"]}));
    assert_eq!(r.status, 400, "{:?}", r.body_json());
    assert_eq!(w.root("GET", "/api/auth/v1/clients/prober", Value::Null).status, 404, "a failed create stores nothing");

    // `static/` is reserved, as upstream reserves it.
    let r = w.root("PUT", "/api/auth/v1/clients/static%2Fmine", json!({"description": "", "expires": "2030-01-01T00:00:00.000Z", "scopes": []}));
    assert_eq!(r.status, 400);
    assert!(r.body_json()["message"].as_str().unwrap().contains("reserved for statically configured clients"));

    // A trigger schema that can never validate is refused when the hook is created.
    let mut looped = hook_body();
    looped["triggerSchema"] = json!({"$ref": "#"});
    let r = w.root("PUT", "/api/hooks/v1/hooks/g/looped", looped);
    assert_eq!(r.status, 400, "{:?}", r.body_json());
    assert!(r.body_json()["message"].as_str().unwrap().contains("reference cycle"));

    // A repeated schedule entry is one error however often it repeats (upstream's schema
    // has `uniqueItems`); a huge list is refused.
    let mut repeated = hook_body();
    repeated["schedule"] = json!(vec!["0 0 * * * *"; 500]);
    let message = w.root("PUT", "/api/hooks/v1/hooks/g/repeated", repeated).body_json()["message"].as_str().unwrap().to_string();
    assert_eq!(message.matches("/schedule").count(), 1, "{message}");
    let mut many = hook_body();
    many["schedule"] = json!((0..1001).map(|i| format!("{} {} * * * *", i % 60, i / 60)).collect::<Vec<_>>());
    let message = w.root("PUT", "/api/hooks/v1/hooks/g/many", many).body_json()["message"].as_str().unwrap().to_string();
    assert!(message.contains("at most 1000"), "{message}");
    let r = w.anon("POST", "/api/taskhooks/v1/schedule-preview", json!({"schedule": ["0 0 * * * *"], "count": 1000}));
    assert_eq!(r.status, 400, "{:?}", r.body_json());
}

#[test]
fn two_role_writes_that_make_a_cycle_together_are_not_both_kept() {
    let w = World::new();
    // The shared documents exist, as in every store (compare-and-swap from absent is
    // unconditional on Spin's SQLite).
    crate::layout::ensure(&w.kv, &|_| {}).unwrap();
    // While createRole `b` (assume:a) claims its index entry, another writer creates `a`
    // (assume:b): each alone is fine, together they are a cycle.
    let racer = serde_json::to_vec(&crate::store::RoleRecord {
        role_id: "a".into(),
        scopes: vec!["assume:b".into()],
        description: String::new(),
        created: NOW.into(),
        last_modified: NOW.into(),
    })
    .unwrap();
    let mut raced = false;
    *w.kv.between_read_and_swap.lock().unwrap() = Some(Box::new(move |data, key| {
        if key == crate::layout::ROLE_INDEX && !raced {
            raced = true;
            let mut index: BTreeMap<String, String> = data.get(key).map(|v| serde_json::from_slice(v).unwrap()).unwrap_or_default();
            index.insert("a".into(), "racer".into());
            data.insert(key.to_string(), serde_json::to_vec(&index).unwrap());
            data.insert(crate::layout::role("a"), racer.clone());
        }
    }));
    let r = w.root("PUT", "/api/auth/v1/roles/b", json!({"description": "", "scopes": ["assume:a"]}));
    *w.kv.between_read_and_swap.lock().unwrap() = None;
    assert_eq!(r.status, 400, "{:?}", r.body_json());
    assert!(r.body_json()["message"].as_str().unwrap().contains("dependency cycles"));
    assert_eq!(w.root("GET", "/api/auth/v1/roles/b", Value::Null).status, 404, "the later write was undone");
    assert_eq!(w.root("GET", "/api/auth/v1/roles/a", Value::Null).status, 200);
    assert_eq!(w.anon("POST", "/api/auth/v1/scopes/expand", json!({"scopes": ["assume:a"]})).status, 200, "expansion works again");
}

#[test]
fn cron_projects_are_registered_by_those_who_could_run_their_jobs() {
    let w = World::new();
    crate::layout::ensure(&w.kv, &|_| {}).unwrap();
    let body = json!({"repository": {"url": "https://github.com/mozilla-mobile/fenix", "type": "git", "level": "3"}});
    // The route's scope alone is not enough: the caller must hold the jobs' scopes too.
    let token = w.client_with("project/admin", &["hooks:modify-cron-project:fenix"]);
    let r = w.as_client("project/admin", &token, "PUT", "/api/taskhooks/v1/cron-projects/fenix", body.clone());
    assert_eq!(r.status, 403, "{:?}", r.body_json());
    assert!(r.body_json()["message"].as_str().unwrap().contains("assume:repo:github.com/mozilla-mobile/fenix:cron:*"));
    let token = w.client_with("project/fenix-admin", &["hooks:modify-cron-project:fenix", "assume:repo:github.com/mozilla-mobile/fenix:cron:*"]);
    let r = w.as_client("project/fenix-admin", &token, "PUT", "/api/taskhooks/v1/cron-projects/fenix", body.clone());
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    assert_eq!(r.body_json()["repository"]["branch"], "main", "git's default branch");
    assert_eq!(r.body_json()["repository"]["repoPath"], "github.com/mozilla-mobile/fenix");
    // Changed: the same record, new level, `created` kept.
    let mut changed = body.clone();
    changed["repository"]["level"] = json!("1");
    *w.clock.0.lock().unwrap() = "2026-11-23T13:00:00Z".parse().unwrap();
    let r = w.root("PUT", "/api/taskhooks/v1/cron-projects/fenix", changed).body_json();
    assert_eq!((r["repository"]["level"].clone(), r["created"].clone(), r["lastModified"].clone()), (json!("1"), json!("2026-11-23T12:00:00.000Z"), json!("2026-11-23T13:00:00.000Z")));
    // The owner is changed and cleared like the rest of the record.
    let mut owned = body.clone();
    owned["owner"] = json!("releng@example.com");
    assert_eq!(w.root("PUT", "/api/taskhooks/v1/cron-projects/fenix", owned).body_json()["owner"], "releng@example.com");
    assert!(w.root("PUT", "/api/taskhooks/v1/cron-projects/fenix", body.clone()).body_json().get("owner").is_none_or(Value::is_null));
    let listed = w.root("GET", "/api/taskhooks/v1/cron-projects", Value::Null).body_json();
    assert_eq!(listed["cronProjects"].as_array().unwrap().len(), 1);
    assert_eq!(w.root("GET", "/api/taskhooks/v1/cron-projects/fenix", Value::Null).body_json()["project"], "fenix");
    // Bad input: a host not configured, a bad name, an unknown field.
    let elsewhere = json!({"repository": {"url": "https://gitlab.example.com/org/repo", "type": "git", "level": "3"}});
    let r = w.root("PUT", "/api/taskhooks/v1/cron-projects/other", elsewhere);
    assert_eq!((r.status, r.body_json()["code"].clone()), (400, json!("InputError")));
    assert_eq!(w.root("PUT", "/api/taskhooks/v1/cron-projects/a%2Fb", body.clone()).body_json()["code"], "InvalidRequestArguments");
    let extra = json!({"repository": {"url": "https://github.com/o/r", "type": "git", "level": "3"}, "colour": "red"});
    assert_eq!(w.root("PUT", "/api/taskhooks/v1/cron-projects/x", extra).body_json()["code"], "InputValidationError");
    assert_eq!(w.anon("GET", "/api/taskhooks/v1/cron-projects/fenix", Value::Null).status, 403);
    assert_eq!(w.root("DELETE", "/api/taskhooks/v1/cron-projects/fenix", Value::Null).status, 200);
    assert_eq!(w.root("GET", "/api/taskhooks/v1/cron-projects/fenix", Value::Null).status, 404);
}

#[test]
fn managed_hooks_are_the_cron_projects_to_change() {
    let w = World::new();
    crate::layout::ensure(&w.kv, &|_| {}).unwrap();
    let body = json!({"repository": {"url": "https://hg.mozilla.org/mozilla-central", "type": "hg", "level": "3"}});
    assert_eq!(w.root("PUT", "/api/taskhooks/v1/cron-projects/mozilla-central", body).status, 200);
    let store = Store { kv: &w.kv, key: &w.config.sealing_key };
    let project = crate::cron_project::CronProjects { kv: &w.kv, sleep: &|_| {} }.get("mozilla-central").unwrap().unwrap();
    let jobs = crate::cron_yml::parse("jobs: [{name: nightly, job: {type: decision-task, treeherder-symbol: N, target-tasks-method: n}, when: [{hour: 5}]}]", "mozilla-central").unwrap();
    crate::cron_hooks::sync(&store, &project, &jobs, &[], w.clock.now()).unwrap();
    let path = "/api/hooks/v1/hooks/cron/mozilla-central%2Fnightly";
    // Readable like any hook, refused for writes, with the owner named.
    assert_eq!(w.root("GET", path, Value::Null).status, 200);
    assert_eq!(w.root("GET", &format!("{path}/status"), Value::Null).body_json()["nextScheduledDate"], "2026-11-24T05:00:00.000Z");
    for (method, body) in [("POST", hook_body()), ("DELETE", Value::Null), ("PUT", hook_body())] {
        let r = w.root(method, path, body);
        assert_eq!(r.status, 409, "{method}: {:?}", r.body_json());
        assert!(r.body_json()["message"].as_str().unwrap().contains("managed by cron project `mozilla-central`"));
    }
    assert_eq!(w.root("PUT", "/api/hooks/v1/hooks/cron/mine", hook_body()).status, 409, "the group is the cron projects'");
    // Removing the project removes its hooks.
    assert_eq!(w.root("DELETE", "/api/taskhooks/v1/cron-projects/mozilla-central", Value::Null).status, 200);
    assert_eq!(w.root("GET", path, Value::Null).status, 404);
}

#[test]
fn a_cron_projects_dry_run_shows_the_slots_jobs_and_their_tasks_creating_nothing() {
    struct GitHub;
    impl crate::remote_queue::HttpClient for GitHub {
        fn send(&self, _m: &str, url: &str, _h: &[(String, String)], _b: &[u8]) -> Result<(u16, Vec<u8>), String> {
            let sha = "0123456789abcdef0123456789abcdef01234567";
            let answer = match url {
                "https://api.github.com/repos/org/repo/git/ref/heads/main" => format!(r#"{{"object": {{"sha": "{sha}"}}}}"#),
                u if u.ends_with("/.cron.yml") => "jobs:
  - {name: nightly, job: {type: decision-task, treeherder-symbol: N, target-tasks-method: nightly}, when: [{hour: 5, minute: 0}]}
  - {name: merge, job: {type: trigger-action, action-name: merge}, when: [{hour: 5}]}
  - {name: later, job: {type: decision-task, treeherder-symbol: L, target-tasks-method: l}, when: [{hour: 6}]}".into(),
                u if u.ends_with("/.taskcluster.yml") => r#"{"tasks": [{"taskId": {"$eval": "ownTaskId"}, "payload": {"args": "${cron.quoted_args}"}}]}"#.into(),
                _ => return Ok((404, vec![])),
            };
            Ok((200, answer.into_bytes()))
        }
        fn sleep(&self, _: std::time::Duration) {}
    }
    let w = World::new();
    crate::layout::ensure(&w.kv, &|_| {}).unwrap();
    let body = json!({"repository": {"url": "https://github.com/org/repo", "type": "git", "level": "3"}});
    assert_eq!(w.root("PUT", "/api/taskhooks/v1/cron-projects/fenix", body).status, 200);
    let mut req = unsigned("POST", "/api/taskhooks/v1/cron-projects/fenix/dry-run", json!({"at": "2026-12-01T05:07:00Z"}));
    sign(&mut req, ROOT, ROOT_TOKEN, w.clock.now().timestamp());
    let answer = Service::new(&w.kv, &w.clock, &w.config).with_http(&GitHub).handle(&req);
    assert_eq!(answer.status, 200, "{:?}", answer.body_json());
    let answer = answer.body_json();
    assert_eq!(answer["slot"], "2026-12-01T05:00:00.000Z");
    let jobs = answer["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2, "the slot's jobs only: {jobs:?}");
    let merge = jobs.iter().find(|j| j["job"] == "merge").unwrap();
    assert!(merge["error"].as_str().unwrap().contains("trigger-action"));
    let nightly = jobs.iter().find(|j| j["job"] == "nightly").unwrap();
    assert_eq!(nightly["task"]["payload"]["args"], "--target-tasks-method=nightly");
    assert!(w.kv.keys_with_prefix("task/").is_empty() && w.kv.keys_with_prefix("hook/cron/").is_empty(), "nothing created");
}

#[test]
fn list_clients_pages_by_client_id() {
    let w = World::new();
    for id in ["p/a", "p/b", "p/c", "q/a"] {
        w.client_with(id, &[]);
    }
    let first = w.anon("GET", "/api/auth/v1/clients/?prefix=p%2F&limit=2", Value::Null).body_json();
    let ids = |page: &Value| page["clients"].as_array().unwrap().iter().map(|c| c["clientId"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(ids(&first), ["p/a", "p/b"]);
    let token = first["continuationToken"].as_str().unwrap();
    // A client created meanwhile before the position does not shift the next page.
    w.client_with("p/0", &[]);
    let second = w.anon("GET", &format!("/api/auth/v1/clients/?prefix=p%2F&limit=2&continuationToken={token}"), Value::Null).body_json();
    assert_eq!(ids(&second), ["p/c"]);
    assert!(second.get("continuationToken").is_none());
    let all = w.anon("GET", "/api/auth/v1/clients?continuationToken=bogus", Value::Null).body_json();
    assert_eq!(ids(&all).len(), 5);
}

#[test]
fn head_answers_every_get_route_without_a_body() {
    let w = World::new();
    let ping = w.anon("HEAD", "/api/hooks/v1/ping", Value::Null);
    assert_eq!((ping.status, ping.body.len()), (200, 0));
    assert_eq!(w.anon("HEAD", "/api/hooks/v1/hooks/g/nope", Value::Null).status, 403, "scopes are checked as for GET");
    let found = w.root("HEAD", "/api/hooks/v1/hooks/g/nope", Value::Null);
    assert_eq!((found.status, found.body.len()), (404, 0));
}

#[test]
fn request_headers_are_lower_case_and_a_repeated_one_keeps_its_last_value() {
    let entries = vec![
        ("Authorization".to_string(), b"Hawk id=\"first\"".to_vec()),
        ("content-type".to_string(), b"application/json".to_vec()),
        ("authorization".to_string(), b"Hawk id=\"last\"".to_vec()),
        ("x-bytes".to_string(), vec![0xff, b'a']),
    ];
    assert_eq!(
        ApiRequest::headers_from(entries),
        vec![
            ("authorization".to_string(), "Hawk id=\"last\"".to_string()),
            ("content-type".to_string(), "application/json".to_string()),
            ("x-bytes".to_string(), "\u{fffd}a".to_string()),
        ]
    );
}

/// A store that logs each operation as `<op> <key>` (a batch: one entry, its keys joined).
struct OperationLog<'a> {
    inner: &'a MemoryStore,
    log: std::cell::RefCell<Vec<String>>,
}

impl OperationLog<'_> {
    fn note(&self, op: &str, keys: &[&str]) {
        self.log.borrow_mut().push(format!("{op} {}", keys.join(",")));
    }
}

impl KeyValue for OperationLog<'_> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, crate::platform::StoreError> {
        self.note("get", &[key]);
        self.inner.get(key)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), crate::platform::StoreError> {
        self.note("set", &[key]);
        self.inner.set(key, value)
    }
    fn delete(&self, key: &str) -> Result<(), crate::platform::StoreError> {
        self.note("delete", &[key]);
        self.inner.delete(key)
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, crate::platform::StoreError> {
        self.note("get_many", &keys.iter().map(String::as_str).collect::<Vec<_>>());
        self.inner.get_many(keys)
    }
    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), crate::platform::StoreError> {
        self.note("set_many", &entries.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>());
        self.inner.set_many(entries)
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, crate::platform::StoreError> {
        self.note("increment", &[key]);
        self.inner.increment(key, delta)
    }
    fn compare_and_swap(&self, key: &str, update: &mut dyn FnMut(Option<&[u8]>) -> Option<Vec<u8>>) -> Result<crate::platform::CasAttempt, crate::platform::StoreError> {
        self.note("compare_and_swap", &[key]);
        self.inner.compare_and_swap(key, update)
    }
}

/// Every key-value operation of a `triggerHook` in steady state (its counters exist),
/// which is what a trigger's cost is mostly made of (docs/benchmarks.md): a change that
/// adds one shows here.
#[test]
fn a_steady_state_trigger_makes_twelve_key_value_operations() {
    let w = World::new();
    grant_hook_role(&w);
    assert_eq!(w.root("PUT", HOOK, hook_body()).status, 200);
    let trigger = |kv: &dyn KeyValue| {
        let mut req = unsigned("POST", &format!("{HOOK}/trigger"), json!({"v": "x"}));
        sign(&mut req, ROOT, ROOT_TOKEN, w.clock.now().timestamp());
        Service::new(kv, &w.clock, &w.config).handle(&req)
    };
    assert_eq!(trigger(&w.kv).status, 200, "the first trigger makes the counters");
    let logged = OperationLog { inner: &w.kv, log: Default::default() };
    let r = trigger(&logged);
    assert_eq!(r.status, 200, "{:?}", r.body_json());
    let task_id = r.body_json()["status"]["taskId"].as_str().unwrap().to_string();
    // A series that is new in this request's shard looks at the metrics index once.
    let log: Vec<String> = logged.log.take().into_iter().filter(|op| op != "compare_and_swap index/metrics").collect();
    let count = |op: &str, prefix: &str| log.iter().filter(|l| l.starts_with(&format!("{op} {prefix}"))).count();
    assert_eq!(log.len(), 12, "{log:#?}");
    assert_eq!(log.iter().filter(|l| l.starts_with("get")).count(), 3, "the roles' index, the role, the hook: {log:#?}");
    assert_eq!(count("increment", "metric/"), 3, "the fire with its request's count, and two sums: {log:#?}");
    assert_eq!(count("increment", "firestats/"), 1, "{log:#?}");
    let batch = log.iter().find(|l| l.contains(&crate::layout::task(&task_id))).unwrap();
    assert!(batch.starts_with("set_many ") && batch.contains("fire/g/a%2Fb/"), "the task and its fire record in one write: {batch}");
    assert_eq!(log.iter().filter(|l| l.contains("fire/g/a%2Fb/")).count(), 2, "the record written unfinished, then with the task: {log:#?}");
    // And what the request and its fire count is served as two series.
    let text = crate::metrics::exposition(&w.kv).unwrap();
    assert!(text.contains("taskhooks_api_requests_total{method=\"triggerHook\",status=\"200\"} 2\n"), "{text}");
    assert!(text.contains("taskhooks_hook_fires_total{fired_by=\"triggerHook\",result=\"created\"} 2\n"), "{text}");
}
