//! The hook model, field for field as the Hooks v1 schemas (`create-hook-request`,
//! `hook-definition`, `hook-metadata`, `bindings`).

use crate::render::FiredBy;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HookMetadata {
    pub name: String,
    pub description: String,
    pub owner: String,
    #[serde(default = "default_true")]
    pub email_on_error: bool,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Binding {
    pub exchange: String,
    pub routing_key_pattern: String,
}

/// The default `triggerSchema`: accepts only `{}`.
pub fn default_trigger_schema() -> Value {
    json!({"type": "object", "additionalProperties": false})
}

/// Body of createHook / updateHook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HookCreationRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_group_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_id: Option<String>,
    pub metadata: HookMetadata,
    pub task: serde_json::Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bindings: Option<Vec<Binding>>,
    #[serde(default)]
    pub schedule: Vec<String>,
    #[serde(default = "default_trigger_schema")]
    pub trigger_schema: Value,
}

/// The public view of a hook (`hook-definition`): never its secrets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HookDefinition {
    pub hook_group_id: String,
    pub hook_id: String,
    pub metadata: HookMetadata,
    pub task: serde_json::Map<String, Value>,
    #[serde(default)]
    pub bindings: Vec<Binding>,
    pub schedule: Vec<String>,
    pub trigger_schema: Value,
}

/// A hook with its secrets and schedule state, as the service works with it (the store
/// encrypts the secrets at rest).
#[derive(Debug, Clone, PartialEq)]
pub struct HookRecord {
    pub definition: HookDefinition,
    pub trigger_token: String,
    /// The taskId of the next scheduled fire; never exposed by the API.
    pub next_task_id: String,
    /// ISO time of the next scheduled fire; `FAR_FUTURE` when there is no schedule.
    pub next_scheduled_date: String,
}

/// `nextScheduledDate` of a hook without a schedule (SPEC §1.2: year 4000).
pub const FAR_FUTURE: &str = "4000-01-01T00:00:00.000Z";

/// The most schedule entries a hook (or a schedule preview) may have. Upstream sets no
/// limit; a hook with more than a few is rare, and each entry costs every tick.
pub const MAX_SCHEDULE_ENTRIES: usize = 1_000;

/// The most bindings a hook may have: each is a binding on the broker.
pub const MAX_BINDINGS: usize = 1_000;

impl HookCreationRequest {
    /// The schema constraints serde cannot express: lengths, the owner's e-mail format,
    /// unique schedule entries and bindings, non-empty binding fields. Every violation is
    /// listed, each naming its field.
    pub fn check_constraints(&self) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        let m = &self.metadata;
        let max = |field: &str, value: &str, limit: usize, errors: &mut Vec<String>| {
            let len = value.chars().count();
            if len > limit {
                errors.push(format!("metadata.{field} must NOT have more than {limit} characters (has {len})"));
            }
        };
        max("name", &m.name, 255, &mut errors);
        max("description", &m.description, 32768, &mut errors);
        max("owner", &m.owner, 255, &mut errors);
        if !is_email(&m.owner) {
            errors.push(format!("metadata.owner must be an e-mail address (got {:?})", m.owner));
        }
        if self.schedule.len() > MAX_SCHEDULE_ENTRIES {
            errors.push(format!("schedule has {} entries; at most {MAX_SCHEDULE_ENTRIES} are allowed", self.schedule.len()));
        }
        // One error per distinct repeated entry, found in one pass (a quadratic scan of a
        // long list would be the request's whole cost).
        let mut seen = std::collections::HashMap::new();
        for (i, entry) in self.schedule.iter().enumerate() {
            match seen.entry(entry.as_str()) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(false);
                }
                std::collections::hash_map::Entry::Occupied(mut o) if !*o.get() => {
                    o.insert(true);
                    errors.push(format!("schedule[{i}] repeats {entry:?}: entries must be unique"));
                }
                std::collections::hash_map::Entry::Occupied(_) => {}
            }
        }
        if let Some(bindings) = &self.bindings {
            if bindings.len() > MAX_BINDINGS {
                errors.push(format!("bindings has {} entries; at most {MAX_BINDINGS} are allowed", bindings.len()));
            }
            let mut seen = std::collections::HashSet::new();
            for (i, b) in bindings.iter().enumerate() {
                if b.exchange.is_empty() {
                    errors.push(format!("bindings[{i}].exchange must not be empty"));
                }
                if b.routing_key_pattern.is_empty() {
                    errors.push(format!("bindings[{i}].routingKeyPattern must not be empty"));
                }
                if !seen.insert((&b.exchange, &b.routing_key_pattern)) {
                    errors.push(format!("bindings[{i}] repeats an earlier binding: bindings must be unique"));
                }
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

/// The `email` format as JSON Schema validators check it (ajv-formats' fast mode): one
/// `@`, a non-empty local part without spaces, a domain of dot-separated labels.
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    !local.is_empty()
        && !domain.contains('@')
        && !s.chars().any(char::is_whitespace)
        && domain.split('.').count() >= 2
        && domain.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// `result` of a recorded fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FireResult {
    Success,
    Error,
}

/// One entry of `listLastFires` (`list-lastFires-response` items).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LastFire {
    pub hook_group_id: String,
    pub hook_id: String,
    pub fired_by: FiredBy,
    pub task_id: String,
    pub task_create_time: String,
    pub result: FireResult,
    /// `unknown` unless the queue was asked.
    pub task_state: String,
    /// Empty on success.
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListLastFiresResponse {
    pub last_fires: Vec<LastFire>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuation_token: Option<String>,
}

/// `hook-status`'s `lastFire`: one of three shapes, told apart by `result`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case", deny_unknown_fields)]
pub enum StatusLastFire {
    #[serde(rename_all = "camelCase")]
    Success { task_id: String, time: String },
    Error { error: Value, time: String },
    NoFire,
}

/// `getHookStatus` (`hook-status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HookStatus {
    pub last_fire: StatusLastFire,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_scheduled_date: Option<String>,
}

/// `triggerHook` / `triggerHookWithToken` (`trigger-hook-response`): the created task,
/// or nothing when the template declined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TriggerHookResponse {
    #[serde(rename_all = "camelCase")]
    Created { task_id: String, status: TaskIdOnly },
    Declined {},
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskIdOnly {
    pub task_id: String,
}

impl TriggerHookResponse {
    pub fn created(task_id: &str) -> Self {
        TriggerHookResponse::Created { task_id: task_id.to_string(), status: TaskIdOnly { task_id: task_id.to_string() } }
    }
}

/// `getTriggerToken` / `resetTriggerToken` (`trigger-token-response`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerTokenResponse {
    pub token: String,
}

/// `listHookGroups` (`list-hook-groups-response`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListHookGroupsResponse {
    pub groups: Vec<String>,
}

/// `listHooks` (`list-hooks-response`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListHooksResponse {
    pub hooks: Vec<HookDefinition>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(v: Value) -> Result<HookCreationRequest, serde_json::Error> {
        serde_json::from_value(v)
    }

    fn minimal() -> Value {
        json!({"metadata": {"name": "n", "description": "d", "owner": "a@example.com"}, "task": {}})
    }

    #[test]
    fn defaults_follow_the_schema() {
        let r = request(minimal()).unwrap();
        assert!(r.metadata.email_on_error);
        assert_eq!(r.schedule, Vec::<String>::new());
        assert_eq!(r.bindings, None);
        assert_eq!(r.trigger_schema, json!({"type": "object", "additionalProperties": false}));
    }

    #[test]
    fn unknown_and_missing_fields_are_named() {
        let mut extra = minimal();
        extra["metadata"]["colour"] = json!("red");
        assert!(request(extra).unwrap_err().to_string().contains("colour"));
        let mut top = minimal();
        top["trigger"] = json!({});
        assert!(request(top).unwrap_err().to_string().contains("trigger"));
        let mut missing = minimal();
        missing["metadata"].as_object_mut().unwrap().remove("owner");
        assert!(request(missing).unwrap_err().to_string().contains("owner"));
        let mut binding = minimal();
        binding["bindings"] = json!([{"exchange": "e"}]);
        assert!(request(binding).unwrap_err().to_string().contains("routingKeyPattern"));
        let mut not_object = minimal();
        not_object["task"] = json!([1]);
        assert!(request(not_object).is_err());
    }

    #[test]
    fn constraints_are_all_listed() {
        let mut v = minimal();
        v["metadata"]["name"] = json!("x".repeat(256));
        v["metadata"]["owner"] = json!("not an email");
        v["schedule"] = json!(["0 0 * * * *", "0 0 * * * *"]);
        v["bindings"] = json!([{"exchange": "e", "routingKeyPattern": "#"}, {"exchange": "e", "routingKeyPattern": "#"}, {"exchange": "", "routingKeyPattern": "a"}]);
        let errors = request(v).unwrap().check_constraints().unwrap_err();
        assert_eq!(errors.len(), 5, "{errors:#?}");
        assert!(errors[0].starts_with("metadata.name"));
        assert!(errors[1].starts_with("metadata.owner"));
        assert!(errors[2].starts_with("schedule[1]"));
        assert!(request(minimal()).unwrap().check_constraints().is_ok());
    }

    #[test]
    fn email_format() {
        for ok in ["a@example.com", "first.last+tag@sub.example.org", "x@a-b.co"] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in ["", "a", "a@", "@example.com", "a@example", "a b@example.com", "a@-x.com", "a@x..com", "a@b@c.com"] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn response_shapes_match_the_schemas() {
        assert_eq!(serde_json::to_value(TriggerHookResponse::created("abc")).unwrap(), json!({"taskId": "abc", "status": {"taskId": "abc"}}));
        assert_eq!(serde_json::to_value(TriggerHookResponse::Declined {}).unwrap(), json!({}));
        let status = HookStatus { last_fire: StatusLastFire::Success { task_id: "t".into(), time: "2026-01-01T00:00:00.000Z".into() }, next_scheduled_date: None };
        assert_eq!(serde_json::to_value(&status).unwrap(), json!({"lastFire": {"result": "success", "taskId": "t", "time": "2026-01-01T00:00:00.000Z"}}));
        let none = HookStatus { last_fire: StatusLastFire::NoFire, next_scheduled_date: Some("2026-01-01T00:00:00.000Z".into()) };
        assert_eq!(serde_json::to_value(&none).unwrap(), json!({"lastFire": {"result": "no-fire"}, "nextScheduledDate": "2026-01-01T00:00:00.000Z"}));
        let fire: LastFire = serde_json::from_value(json!({
            "hookGroupId": "g", "hookId": "h", "firedBy": "pulseMessage", "taskId": "t",
            "taskCreateTime": "2026-01-01T00:00:00.000Z", "result": "error", "taskState": "unknown", "error": "boom"
        })).unwrap();
        assert_eq!(fire.fired_by, FiredBy::PulseMessage);
        assert_eq!(fire.result, FireResult::Error);
    }
}
