//! What the Queue demands of a task before `createTask` accepts it (SPEC §6.4), and the
//! local queue the service uses when no Taskcluster deployment is configured.
//!
//! The scope requirement is computed here rather than left to the Queue so that a dry run
//! can say, before anything is created, which scopes a hook's role is missing.

use crate::scopes::ScopeExpr;
use serde_json::{Map, Value};

const PRIORITIES: [&str; 7] = ["highest", "very-high", "high", "medium", "low", "very-low", "lowest"];

/// The scope expression `createTask` requires for `task` (Queue's rules: the task's own
/// scopes, its routes, project, scheduler, and one priority scope at or above its own).
pub fn create_task_requirement(task: &Map<String, Value>) -> ScopeExpr {
    let strings = |field: &str| -> Vec<String> {
        task.get(field)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default()
    };
    let text = |field: &str, default: &str| task.get(field).and_then(Value::as_str).unwrap_or(default).to_string();
    let mut all: Vec<ScopeExpr> = strings("scopes").into_iter().map(ScopeExpr::Scope).collect();
    all.extend(strings("routes").into_iter().map(|r| ScopeExpr::Scope(format!("queue:route:{r}"))));
    all.push(ScopeExpr::Scope(format!("queue:create-task:project:{}", text("projectId", "none"))));
    all.push(ScopeExpr::Scope(format!("queue:scheduler-id:{}", text("schedulerId", "-"))));
    let task_queue = match task.get("taskQueueId").and_then(Value::as_str) {
        Some(q) => q.to_string(),
        None => format!("{}/{}", text("provisionerId", ""), text("workerType", "")),
    };
    let priority = text("priority", "lowest");
    let rank = PRIORITIES.iter().position(|p| *p == priority).unwrap_or(PRIORITIES.len() - 1);
    all.push(ScopeExpr::AnyOf(
        PRIORITIES[..=rank].iter().map(|p| ScopeExpr::Scope(format!("queue:create-task:{p}:{task_queue}"))).collect(),
    ));
    ScopeExpr::AllOf(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scopes::ScopeSet;
    use serde_json::json;

    fn task(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_spec_example_role_satisfies_it_and_each_missing_part_is_named() {
        // SPEC §13 rule 9.
        let t = task(json!({"taskQueueId": "proj-x/ci", "scopes": ["secrets:get:proj-x/token"]}));
        let req = create_task_requirement(&t);
        let role = ScopeSet::new([
            "secrets:get:proj-x/token",
            "queue:create-task:project:none",
            "queue:scheduler-id:-",
            "queue:create-task:highest:proj-x/*",
        ]);
        assert!(req.satisfied_by(&role));
        let without_secret = ScopeSet::new(["queue:create-task:project:none", "queue:scheduler-id:-", "queue:create-task:lowest:proj-x/ci"]);
        assert_eq!(req.unsatisfied(&without_secret), Some(ScopeExpr::Scope("secrets:get:proj-x/token".into())));
    }

    #[test]
    fn priority_routes_project_and_legacy_queue_fields() {
        let t = task(json!({"provisionerId": "p", "workerType": "w", "priority": "high", "routes": ["index.x"], "projectId": "proj", "schedulerId": "s"}));
        let req = create_task_requirement(&t);
        let base = ["queue:route:index.x", "queue:create-task:project:proj", "queue:scheduler-id:s"];
        let with = |p: &str| ScopeSet::new(base.iter().copied().chain([p]));
        assert!(req.satisfied_by(&with("queue:create-task:very-high:p/w")));
        assert!(!req.satisfied_by(&with("queue:create-task:medium:p/w")), "below the task's priority");
        assert!(!req.satisfied_by(&ScopeSet::new(["queue:create-task:high:p/w"])), "routes, project, scheduler are required");
    }
}
