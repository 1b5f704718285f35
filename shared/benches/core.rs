//! The shared crate's hot paths, on the inputs in `inputs.json`, which
//! `benches/js-reference/compare.mjs` also feeds to the JavaScript reference libraries.

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::Value;
use std::hint::black_box;
use taskhooks_shared::render::{render_task, FireContext, FiredBy};
use taskhooks_shared::schedule::Schedule;
use taskhooks_shared::scopes::{Role, Roles, ScopeExpr, ScopeSet};

fn inputs() -> Value {
    serde_json::from_str(include_str!("inputs.json")).expect("inputs.json")
}

fn render(c: &mut Criterion) {
    let inputs = inputs();
    let r = &inputs["render"];
    let template = r["template"].as_object().unwrap().clone();
    let ctx = FireContext { fired_by: FiredBy::TriggerHook, payload: Some(r["payload"].clone()), client_id: None };
    let task_id = r["taskId"].as_str().unwrap();
    let now = r["now"].as_str().unwrap().parse().unwrap();
    c.bench_function("render/decision_task", |b| {
        b.iter(|| render_task(black_box(&template), black_box(&ctx), task_id, now).unwrap())
    });
    // json-e's own render against its render of a template parsed once (a cron project's
    // `.taskcluster.yml`, rendered for each of its jobs)
    let context = serde_json::json!({"firedBy": "triggerHook", "payload": r["payload"], "taskId": task_id, "now": r["now"]});
    let value = serde_json::Value::Object(template.clone());
    c.bench_function("render/json_e_render", |b| b.iter(|| json_e::render(black_box(&value), black_box(&context)).unwrap()));
    let parsed = json_e::Template::new(&value);
    c.bench_function("render/json_e_template_parsed_once", |b| b.iter(|| parsed.render(black_box(&context)).unwrap()));
}

fn scopes(c: &mut Criterion) {
    let inputs = inputs();
    let s = &inputs["scopes"];
    let client: Vec<String> = serde_json::from_value(s["clientScopes"].clone()).unwrap();
    let roles = Roles::new(
        s["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| Role {
                role_id: r["roleId"].as_str().unwrap().to_string(),
                scopes: serde_json::from_value(r["scopes"].clone()).unwrap(),
            })
            .collect(),
    );
    let expr = ScopeExpr::from_json(&s["expression"]).unwrap();
    let expanded = roles.expand(&client).expect("the benchmark's roles expand");
    let missing = expr.unsatisfied(&ScopeSet::new(&expanded));
    assert!(missing.is_none(), "the benchmark expression must be satisfiable; missing {missing:?}");
    eprintln!("scopes: {} client scopes expand to {} over {} roles", client.len(), expanded.len(), s["roles"].as_array().unwrap().len());
    c.bench_function("scopes/expand_and_satisfy", |b| {
        b.iter(|| expr.satisfied_by_list(&roles.expand(black_box(&client)).unwrap()))
    });
    c.bench_function("scopes/satisfy_expanded", |b| b.iter(|| expr.satisfied_by_list(black_box(&expanded))));
}

fn schedule(c: &mut Criterion) {
    let inputs = inputs();
    let sc = &inputs["schedule"];
    let patterns: Vec<String> = serde_json::from_value(sc["patterns"].clone()).unwrap();
    let schedule = Schedule::parse(&patterns).unwrap();
    let from = sc["from"].as_str().unwrap().parse().unwrap();
    c.bench_function("schedule/next_fire_3_patterns", |b| {
        b.iter(|| schedule.next_fire_after(black_box(from)).unwrap())
    });
}

/// The two request paths the load run drives (`hook` GET, `triggerHook`), natively on an
/// in-memory store, with their pieces: what a request costs before the host and the
/// key-value store add theirs.
fn api(c: &mut Criterion) {
    use taskhooks_shared::api::{ApiRequest, Service, ServiceConfig};
    use taskhooks_shared::hawk::{self, Artifacts};
    use taskhooks_shared::platform::{MemoryStore, SystemClock};
    use taskhooks_shared::sealed::SealingKey;
    use taskhooks_shared::trigger_schema::TriggerSchema;

    let config = ServiceConfig {
        root_client_id: "root".into(),
        root_access_token: Some("root-token".into()),
        sealing_key: SealingKey::from_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap(),
        build: taskhooks_shared::health::Build { version: "bench".into(), ..Default::default() },
        taskcluster: None,
        failure_channel: None,
        pulse: None,
        github_webhook_secret: None,
        repository_hosts: Default::default(),
        public_url: None,
        metrics_token: None,
    };
    let kv = MemoryStore::default();
    let signed = |method: &str, path: &str, body: &str| {
        let ts = chrono::Utc::now().timestamp();
        let ct = if body.is_empty() { "" } else { "application/json" };
        let hash = hawk::payload_hash(ct, body.as_bytes());
        let a = Artifacts { ts, nonce: "n", method, resource: path, host: "localhost", port: 3000, hash: Some(&hash), ext: None };
        let mac = hawk::mac(b"root-token", "header", &a);
        let mut headers = vec![
            ("host".to_string(), "localhost:3000".to_string()),
            ("authorization".to_string(), format!(r#"Hawk id="root", ts="{ts}", nonce="n", hash="{hash}", mac="{mac}""#)),
        ];
        if !body.is_empty() {
            headers.push(("content-type".into(), ct.into()));
        }
        ApiRequest { method: method.into(), path: path.into(), headers, body: body.as_bytes().to_vec() }
    };
    let svc = || Service::new(&kv, &SystemClock, &config);
    let role = r#"{"description": "", "scopes": ["queue:create-task:highest:load/*", "queue:create-task:project:none", "queue:scheduler-id:-"]}"#;
    assert_eq!(svc().handle(&signed("PUT", "/api/auth/v1/roles/hook-id:load%2F*", role)).status, 200);
    let schema = serde_json::json!({"type": "object", "properties": {"n": {"type": "integer"}}, "additionalProperties": false});
    let hook = serde_json::json!({
        "metadata": {"name": "load", "description": "load run", "owner": "ops@example.com"},
        "task": {"taskQueueId": "load/ci", "schedulerId": "-", "payload": {"n": "${payload.n}"},
                 "metadata": {"name": "load", "description": "", "owner": "ops@example.com", "source": "https://example.com"},
                 "deadline": {"$fromNow": "1 hour"}},
        "triggerSchema": schema,
    });
    assert_eq!(svc().handle(&signed("PUT", "/api/hooks/v1/hooks/load/h", &hook.to_string())).status, 200);
    let get = signed("GET", "/api/hooks/v1/hooks/load/h", "");
    c.bench_function("api/hook_get_signed", |b| b.iter(|| assert_eq!(svc().handle(black_box(&get)).status, 200)));
    let trigger = signed("POST", "/api/hooks/v1/hooks/load/h/trigger", r#"{"n": 1}"#);
    c.bench_function("api/trigger_hook_signed", |b| b.iter(|| assert_eq!(svc().handle(black_box(&trigger)).status, 200)));
    c.bench_function("api/trigger_schema_compile", |b| b.iter(|| TriggerSchema::compile(black_box(&schema)).unwrap()));
}

criterion_group!(benches, render, scopes, schedule, api);
criterion_main!(benches);
