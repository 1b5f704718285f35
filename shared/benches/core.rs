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
    let expanded = roles.expand(&client);
    let missing = expr.unsatisfied(&ScopeSet::new(&expanded));
    assert!(missing.is_none(), "the benchmark expression must be satisfiable; missing {missing:?}");
    eprintln!("scopes: {} client scopes expand to {} over {} roles", client.len(), expanded.len(), s["roles"].as_array().unwrap().len());
    c.bench_function("scopes/expand_and_satisfy", |b| {
        b.iter(|| expr.satisfied_by_list(&roles.expand(black_box(&client))))
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

criterion_group!(benches, render, scopes, schedule);
criterion_main!(benches);
