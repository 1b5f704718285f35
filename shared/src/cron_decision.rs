//! A cron job's decision task, as build-decision's `run_decision_task` makes it
//! (`build-decision/src/build_decision/cron/decision.py` and `decision.py` in
//! mozilla-releng/fxci-config): the repository's `.taskcluster.yml` rendered with JSON-e
//! and `tasks_for: "cron"`, holding exactly one task, whose `taskId` is taken out of it.
//!
//! Two differences, both because there is no cron task here: `cron.task_id` (the cron
//! task's id there) is the decision task's own id, and `ownTaskId` is not random but
//! derived from (project, job, slot), with JSON-e's `now` the slot's time, so that ticks
//! that repeat or overlap render the identical task and the Queue creates it once.

use crate::cron_yml::DecisionTask;
use crate::ids::slugid_from_parts;
use crate::render::iso_time;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

/// The repository as `.taskcluster.yml` sees it (build-decision's `Repository.to_json`).
#[derive(Debug, Clone, PartialEq)]
pub struct RepositoryInfo {
    pub url: String,
    pub project: String,
    pub level: String,
    /// `git` or `hg`.
    pub kind: String,
}

/// What build-decision's `get_push_info` reports for the branch tip.
#[derive(Debug, Clone, PartialEq)]
pub enum Push {
    Git { branch: String, revision: String },
    Hg { revision: String, base_revision: String, pushlog_id: String, pushdate: i64 },
}

impl Push {
    pub fn revision(&self) -> &str {
        match self {
            Push::Git { revision, .. } | Push::Hg { revision, .. } => revision,
        }
    }

    /// The `push` of the context, with `owner: "cron"` as build-decision sets it.
    fn context(&self) -> Value {
        match self {
            Push::Git { branch, revision } => json!({"branch": branch, "revision": revision, "owner": "cron"}),
            Push::Hg { revision, base_revision, pushlog_id, pushdate } => json!({
                "revision": revision, "base_revision": base_revision, "pushlog_id": pushlog_id, "pushdate": pushdate, "owner": "cron",
            }),
        }
    }
}

/// build-decision's `make_arguments`.
pub fn make_arguments(job: &DecisionTask) -> Vec<String> {
    let mut arguments = vec![format!("--target-tasks-method={}", job.target_tasks_method)];
    if let Some(optimize) = job.optimize_target_tasks {
        arguments.push(format!("--optimize-target-tasks={optimize}"));
    }
    if job.include_push_tasks {
        arguments.push("--include-push-tasks".into());
    }
    for kind in job.rebuild_kinds.iter().flatten() {
        arguments.push(format!("--rebuild-kind={kind}"));
    }
    arguments
}

/// Python's `shlex.quote`, which build-decision applies to each argument: unchanged if
/// it holds only `[A-Za-z0-9_@%+=:,./-]` (and is not empty), else single-quoted with
/// each `'` written as `'"'"'`.
pub fn shell_quote(s: &str) -> String {
    if s.is_empty() {
        return "''".into();
    }
    let safe = s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(&b));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\"'\"'"))
    }
}

/// The decision task's id for `job` of `project` in `slot`: the same for every tick of
/// that slot.
pub fn decision_task_id(project: &str, job: &str, slot: DateTime<Utc>) -> String {
    slugid_from_parts(&[b"cron-decision", project.as_bytes(), job.as_bytes(), iso_time(slot).as_bytes()])
}

/// The JSON-e context build-decision renders `.taskcluster.yml` with for a cron job.
pub fn context(root_url: &str, repository: &RepositoryInfo, push: &Push, job_name: &str, job: &DecisionTask, task_id: &str, input: Option<&Value>) -> Value {
    let quoted_args: Vec<String> = make_arguments(job).iter().map(|a| shell_quote(a)).collect();
    let input = match (job.include_cron_input, input) {
        (Some(true), Some(Value::Object(o))) => Value::Object(o.clone()),
        _ => json!({}),
    };
    json!({
        "tasks_for": "cron",
        "taskcluster_root_url": root_url,
        "repository": {"url": repository.url, "project": repository.project, "level": repository.level, "type": repository.kind},
        "push": push.context(),
        "cron": {"task_id": task_id, "job_name": job_name, "job_symbol": job.treeherder_symbol, "quoted_args": quoted_args.join(" "), "input": input},
        "ownTaskId": task_id,
    })
}

/// Renders `.taskcluster.yml` (read and parsed once per checkout, for all of the
/// project's jobs) with `context` at `now`: the one task of its `tasks`, with its
/// `taskId` taken out, or why not (build-decision's rules).
pub fn render(taskcluster_yml: &json_e::Template, context: &Value, now: DateTime<Utc>) -> Result<(String, Map<String, Value>), String> {
    let mut context = context.clone();
    if let Value::Object(c) = &mut context {
        c.insert("now".into(), json!(iso_time(now)));
    }
    let rendered = taskcluster_yml.render(&context).map_err(|e| format!(".taskcluster.yml does not render: {e}"))?;
    let tasks = rendered.get("tasks").and_then(Value::as_array).ok_or(".taskcluster.yml rendered without a `tasks` list")?;
    let [task] = tasks.as_slice() else {
        return Err(format!(".taskcluster.yml rendered {} tasks; exactly one is supported", tasks.len()));
    };
    let mut task = task.as_object().cloned().ok_or(".taskcluster.yml rendered a task that is not an object")?;
    let task_id = match task.remove("taskId") {
        Some(Value::String(id)) if crate::ids::is_slugid(&id) => id,
        Some(other) => return Err(format!("the rendered task's taskId {other} is not a slugid")),
        None => return Err("the rendered task has no taskId".into()),
    };
    Ok((task_id, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(v: Value) -> DecisionTask {
        let mut v = v;
        v["treeherder-symbol"] = json!("Nd");
        v.as_object_mut().unwrap().entry("target-tasks-method").or_insert(json!("nightly"));
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn arguments_as_build_decision_makes_them() {
        // tests/test_cron_decision.py (target-tasks-method is required by the schema).
        assert_eq!(make_arguments(&job(json!({"target-tasks-method": "target"}))), ["--target-tasks-method=target"]);
        assert_eq!(
            make_arguments(&job(json!({"target-tasks-method": "target", "include-push-tasks": true}))),
            ["--target-tasks-method=target", "--include-push-tasks"]
        );
        assert_eq!(
            make_arguments(&job(json!({"optimize-target-tasks": false, "rebuild-kinds": ["three", "four"]}))),
            ["--target-tasks-method=nightly", "--optimize-target-tasks=false", "--rebuild-kind=three", "--rebuild-kind=four"]
        );
    }

    #[test]
    fn shell_quoting_is_pythons_shlex_quote() {
        assert_eq!(shell_quote("--target-tasks-method=nightly_desktop"), "--target-tasks-method=nightly_desktop");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\"'\"'s'");
        assert_eq!(shell_quote("--x=$HOME"), "'--x=$HOME'");
        assert_eq!(shell_quote("é"), "'é'", "ASCII only, as shlex's re.ASCII");
    }

    fn tc_yml() -> Value {
        // The shape of a taskgraph project's .taskcluster.yml, cut down.
        serde_json::from_str(
            r#"{"version": 1, "tasks": [{"$if": "tasks_for == 'cron'", "then": {
                "taskId": {"$eval": "ownTaskId"},
                "taskQueueId": "proj-${repository.level}/decision",
                "created": {"$fromNow": ""},
                "deadline": {"$fromNow": "1 day"},
                "metadata": {"name": "Decision Task for cron job ${cron.job_name}", "description": "", "owner": "cron@noreply.mozilla.org", "source": "${repository.url}/raw/${push.revision}/.taskcluster.yml"},
                "payload": {"command": "taskgraph decision --pushlog-id='${push.pushlog_id}' ${cron.quoted_args}", "input": {"$eval": "cron.input"}},
                "extra": {"treeherder": {"symbol": "${cron.job_symbol}"}, "cronTaskId": "${cron.task_id}"}
            }}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn a_decision_task_renders_once_per_slot_with_its_own_id() {
        let repository = RepositoryInfo { url: "https://hg.mozilla.org/mozilla-central".into(), project: "mozilla-central".into(), level: "3".into(), kind: "hg".into() };
        let push = Push::Hg { revision: "abc".into(), base_revision: "def".into(), pushlog_id: "42".into(), pushdate: 1_700_000_000 };
        let slot: DateTime<Utc> = "2026-12-01T05:00:00Z".parse().unwrap();
        let id = decision_task_id("mozilla-central", "nightly", slot);
        let nightly = job(json!({"include-cron-input": true, "rebuild-kinds": ["a b"]}));
        let ctx = context("https://tc.example.com", &repository, &push, "nightly", &nightly, &id, Some(&json!({"x": 1})));
        let (task_id, task) = render(&json_e::Template::new(&tc_yml()), &ctx, slot).unwrap();
        assert_eq!(task_id, id);
        assert!(!task.contains_key("taskId"), "taken out, as build-decision does");
        assert_eq!(task["created"], "2026-12-01T05:00:00.000Z", "JSON-e's now is the slot");
        assert_eq!(task["payload"]["command"], "taskgraph decision --pushlog-id='42' --target-tasks-method=nightly '--rebuild-kind=a b'");
        assert_eq!(task["payload"]["input"], json!({"x": 1}));
        assert_eq!(task["extra"]["cronTaskId"], id.as_str());
        assert_eq!(task["metadata"]["source"], "https://hg.mozilla.org/mozilla-central/raw/abc/.taskcluster.yml");
        // The same slot again: the identical task. Another slot: another id.
        let (again, task_again) = render(&json_e::Template::new(&tc_yml()), &ctx, slot).unwrap();
        assert_eq!((again, task_again), (task_id.clone(), task));
        assert_ne!(decision_task_id("mozilla-central", "nightly", slot + chrono::Duration::minutes(15)), task_id);
        // Without include-cron-input the payload is not the job's input.
        let plain = job(json!({}));
        let ctx = context("https://tc.example.com", &repository, &push, "nightly", &plain, &id, Some(&json!({"x": 1})));
        assert_eq!(render(&json_e::Template::new(&tc_yml()), &ctx, slot).unwrap().1["payload"]["input"], json!({}));
    }

    #[test]
    fn a_taskcluster_yml_must_render_exactly_one_task_with_a_task_id() {
        let ctx = json!({"tasks_for": "cron", "ownTaskId": "fN1SmgV0T8WXX3LhKs2Gyw"});
        let now = Utc::now();
        assert!(render(&json_e::Template::new(&json!({"tasks": []})), &ctx, now).unwrap_err().contains("0 tasks"));
        assert!(render(&json_e::Template::new(&json!({"tasks": [{}, {}]})), &ctx, now).unwrap_err().contains("2 tasks"));
        assert!(render(&json_e::Template::new(&json!({"tasks": [{"payload": {}}]})), &ctx, now).unwrap_err().contains("no taskId"));
        assert!(render(&json_e::Template::new(&json!({"tasks": [{"taskId": {"$eval": "nope"}}]})), &ctx, now).unwrap_err().contains("does not render"));
        assert!(render(&json_e::Template::new(&json!({"version": 1})), &ctx, now).unwrap_err().contains("without a `tasks` list"));
    }
}
