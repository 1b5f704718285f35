//! Rendering a hook's task template with JSON-e (SPEC §6.2–§6.3).
//!
//! Decisions:
//! - `now` is an ISO-8601 UTC string with milliseconds (upstream passes a JS Date, which
//!   breaks `"${now}"`); the string form is a strict superset of what works upstream.
//! - The `json-e` crate always sets `now` to the wall clock, whatever the context says. We
//!   need the fire's own time (scheduled fires, tests, dry runs), so the template is
//!   wrapped as `{"$let": {"now": <now>}, "in": <template>}`: `$let` binds `now` in a child
//!   context, which `$fromNow` and `${now}` then read. No fork of the crate needed.
//! - A falsy result (`null`, `false`, `0`, `""`) means the hook declined to fire; `{}`
//!   does not (it gets defaults and is left for the queue to judge), and any other
//!   non-object result is an error.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FiredBy {
    Schedule,
    TriggerHook,
    TriggerHookWithToken,
    PulseMessage,
}

impl FiredBy {
    pub fn as_str(self) -> &'static str {
        match self {
            FiredBy::Schedule => "schedule",
            FiredBy::TriggerHook => "triggerHook",
            FiredBy::TriggerHookWithToken => "triggerHookWithToken",
            FiredBy::PulseMessage => "pulseMessage",
        }
    }
}

/// What a fire knows about how it was caused; becomes the JSON-e context.
#[derive(Debug, Clone, PartialEq)]
pub struct FireContext {
    pub fired_by: FiredBy,
    /// The trigger body or message; absent for scheduled fires.
    pub payload: Option<Value>,
    /// The authenticated caller, for `triggerHook` only.
    pub client_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Rendered {
    /// The template rendered to a falsy value: no task.
    Declined,
    /// The task definition, with the post-render defaults applied.
    Task(Map<String, Value>),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RenderError {
    /// JSON-e failed; the text names the template location, as json-e reports it.
    #[error("{0}")]
    Template(String),
    #[error("the task template rendered to {0}, not an object")]
    NotAnObject(&'static str),
}

/// ISO-8601 UTC with milliseconds, as JavaScript's `Date.toISOString()` and the Queue use.
pub fn iso_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Milliseconds since the epoch of an RFC 3339 time, or `None` if it is not one.
pub fn parse_time_ms(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp_millis())
}

fn is_falsy(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(_) | Value::Object(_) => false,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Finds where a template that failed to render fails: the first part that fails when
/// rendered on its own, as a path in upstream's form (`template.payload.env[1]`). The
/// `json-e` crate reports only why, not where. An operator object (`$let`, `$map`, ...)
/// is one unit, so variables it binds stay in scope for everything inside it.
fn locate_failure(
    template: &Value,
    path: &str,
    fails: &dyn Fn(&Value) -> bool,
) -> Option<String> {
    match template {
        Value::Object(o) if o.keys().any(|k| k.starts_with('$') && !k.starts_with("$$")) => {
            fails(template).then(|| path.to_string())
        }
        Value::Object(o) => o.iter().find_map(|(k, v)| {
            if k.contains("${") && fails(&Value::String(k.clone())) {
                Some(format!("{path}[{k:?}]"))
            } else {
                locate_failure(v, &format!("{path}.{k}"), fails)
            }
        }),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| locate_failure(v, &format!("{path}[{i}]"), fails)),
        Value::String(s) if s.contains("${") => fails(template).then(|| path.to_string()),
        _ => None,
    }
}

/// Renders `template` for one fire with `taskId` and `now`, then fills in the defaults
/// for `created`, `deadline`, `expires` and `taskGroupId` where they are falsy.
pub fn render_task(
    template: &Map<String, Value>,
    ctx: &FireContext,
    task_id: &str,
    now: DateTime<Utc>,
) -> Result<Rendered, RenderError> {
    let now_iso = iso_time(now);
    let mut context = Map::new();
    context.insert("firedBy".into(), json!(ctx.fired_by.as_str()));
    context.insert("taskId".into(), json!(task_id));
    context.insert("now".into(), json!(now_iso));
    if let Some(payload) = &ctx.payload {
        context.insert("payload".into(), payload.clone());
    }
    if let Some(client_id) = ctx.client_id.as_deref().filter(|c| !c.is_empty()) {
        context.insert("clientId".into(), json!(client_id));
    }
    let context = Value::Object(context);
    // `now` comes from the context: the fire time, not the wall clock at render.
    let template = Value::Object(template.clone());
    let rendered = json_e::render(&template, &context).map_err(|e| {
        let why = e.to_string();
        let why = why.strip_prefix("Interpreter Error: ").or_else(|| why.strip_prefix("Template Error: ")).unwrap_or(&why);
        match locate_failure(&template, "template", &|t: &Value| json_e::render(t, &context).is_err()) {
            Some(path) => RenderError::Template(format!("InterpreterError at {path}: {why}")),
            None => RenderError::Template(format!("InterpreterError: {why}")),
        }
    })?;
    if is_falsy(&rendered) {
        return Ok(Rendered::Declined);
    }
    let Value::Object(mut task) = rendered else {
        return Err(RenderError::NotAnObject(kind(&rendered)));
    };
    // Each default made only when it is needed: most templates set all four.
    let mut default = |field: &str, value: &dyn Fn() -> String| {
        if task.get(field).is_none_or(is_falsy) {
            task.insert(field.to_string(), Value::String(value()));
        }
    };
    default("created", &|| now_iso.clone());
    default("deadline", &|| iso_time(now + Duration::days(1)));
    default("expires", &|| iso_time(now + Duration::days(30)));
    default("taskGroupId", &|| task_id.to_string());
    Ok(Rendered::Task(task))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        "2026-03-10T10:00:00Z".parse().unwrap()
    }

    fn ctx(fired_by: FiredBy, payload: Option<Value>) -> FireContext {
        FireContext { fired_by, payload, client_id: Some("me".into()) }
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn renders_with_context_and_fire_time_not_wall_clock() {
        let template = obj(json!({
            "payload": {"n": {"$eval": "payload.n + 1"}, "who": "${clientId}", "by": "${firedBy}"},
            "metadata": {"name": "built at ${now}"},
            "deadline": {"$fromNow": "2 hours"},
            "taskId": "${taskId}"
        }));
        let out = render_task(&template, &ctx(FiredBy::TriggerHook, Some(json!({"n": 41}))), "abc", at()).unwrap();
        let Rendered::Task(task) = out else { panic!("declined") };
        assert_eq!(task["payload"], json!({"n": 42, "who": "me", "by": "triggerHook"}));
        assert_eq!(task["metadata"]["name"], "built at 2026-03-10T10:00:00.000Z");
        assert_eq!(task["deadline"], "2026-03-10T12:00:00.000Z");
        assert_eq!(task["created"], "2026-03-10T10:00:00.000Z");
        assert_eq!(task["expires"], "2026-04-09T10:00:00.000Z");
        assert_eq!(task["taskGroupId"], "abc");
    }

    #[test]
    fn falsy_results_decline_and_non_objects_fail() {
        for t in [json!({"$if": "false", "then": {"a": 1}}), json!({"$eval": "false"}), json!({"$eval": "0"})] {
            assert_eq!(render_task(&obj(t), &ctx(FiredBy::Schedule, None), "x", at()).unwrap(), Rendered::Declined);
        }
        let err = render_task(&obj(json!({"$eval": "'str'"})), &ctx(FiredBy::Schedule, None), "x", at()).unwrap_err();
        assert_eq!(err, RenderError::NotAnObject("a string"));
        // An empty object is a task (with defaults), not a decline.
        let Rendered::Task(t) = render_task(&Map::new(), &ctx(FiredBy::Schedule, None), "x", at()).unwrap() else {
            panic!()
        };
        assert_eq!(t.len(), 4);
    }

    #[test]
    fn scheduled_fires_have_no_payload_and_errors_name_the_problem() {
        let t = obj(json!({"env": {"$eval": "payload.x"}}));
        let err = render_task(&t, &ctx(FiredBy::Schedule, None), "x", at()).unwrap_err();
        assert_eq!(err.to_string(), "InterpreterError at template.env: unknown context value payload");
        // The path goes down through plain objects and arrays to the failing string.
        let t = obj(json!({"payload": {"env": ["ok ${taskId}", "bad ${nope}"]}}));
        let err = render_task(&t, &ctx(FiredBy::TriggerHook, Some(json!({}))), "x", at()).unwrap_err();
        assert_eq!(err.to_string(), "InterpreterError at template.payload.env[1]: unknown context value nope");
        // Variables bound by an operator stay in scope: the whole `$map` is the unit.
        let t = obj(json!({"cmds": {"$map": [1, 2], "each(n)": "${n + missing}"}}));
        let err = render_task(&t, &ctx(FiredBy::TriggerHook, Some(json!({}))), "x", at()).unwrap_err();
        assert!(err.to_string().starts_with("InterpreterError at template.cmds: "), "{err}");
    }

    #[test]
    fn given_fields_are_kept_and_falsy_ones_replaced() {
        let t = obj(json!({"created": "2026-01-01T00:00:00.000Z", "taskGroupId": ""}));
        let Rendered::Task(task) = render_task(&t, &ctx(FiredBy::TriggerHook, Some(json!({}))), "tid", at()).unwrap() else {
            panic!()
        };
        assert_eq!(task["created"], "2026-01-01T00:00:00.000Z");
        assert_eq!(task["taskGroupId"], "tid");
    }
}
