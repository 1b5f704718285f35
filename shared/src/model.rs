//! The hook model, field for field as the Hooks v1 schemas (`create-hook-request`,
//! `hook-definition`, `hook-metadata`, `bindings`).

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

/// What is stored for a hook: the definition plus its secrets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookRecord {
    pub definition: HookDefinition,
    pub trigger_token: String,
    pub next_task_id: String,
}
