//! Structured log lines, one JSON object per line on standard output (Spin keeps each
//! component's output), in the shape Taskcluster's services write (`taskcluster-lib-monitor`:
//! `Type`, `Logger`, `Severity`, `Fields` with a version `v`), so the same log pipelines
//! read them:
//!
//! * `hook-fire`, once per fire, with upstream's fields: `hookGroupId`, `hookId`,
//!   `firedBy`, `taskId`, `result` (`success`, `failure` or `declined`). The error is not
//!   included, as upstream: it is in the hook's last fires.
//! * `monitor.apiMethod`, once per request: the method's name, the HTTP method and path
//!   (a trigger token redacted), the status, the caller's clientId and the duration in
//!   milliseconds. Never a header, a token or a payload.

use crate::fire::FireOutcome;
use crate::render::FiredBy;
use serde_json::{json, Value};

const LOGGER: &str = "taskcluster.taskhooks";
/// syslog's "info".
const INFO: u8 = 6;

fn line(kind: &str, fields: Value) -> Value {
    let mut fields = fields;
    fields["v"] = json!(1);
    json!({"Type": kind, "Logger": LOGGER, "Severity": INFO, "EnvVersion": "2.0", "Fields": fields})
}

/// upstream's `result` of a fire.
pub fn fire_result(outcome: &FireOutcome) -> &'static str {
    match outcome {
        FireOutcome::Created { .. } => "success",
        FireOutcome::Declined => "declined",
        FireOutcome::RenderFailed(_) | FireOutcome::QueueFailed(_) | FireOutcome::Unavailable(_) => "failure",
    }
}

pub fn hook_fire(hook_group_id: &str, hook_id: &str, fired_by: FiredBy, task_id: &str, outcome: &FireOutcome) -> Value {
    line(
        "hook-fire",
        json!({"hookGroupId": hook_group_id, "hookId": hook_id, "firedBy": fired_by.as_str(), "taskId": task_id, "result": fire_result(outcome)}),
    )
}

/// One request, as `Service::handle` answered it.
pub struct Request<'a> {
    /// The API method's name (`triggerHook`), or what else answered (`ui`, `github`,
    /// `notFound`).
    pub name: &'a str,
    pub method: &'a str,
    /// The path, a trigger token already redacted.
    pub resource: &'a str,
    pub status: u16,
    pub client_id: Option<&'a str>,
    pub duration_ms: f64,
}

pub fn api_method(r: &Request<'_>) -> Value {
    line(
        "monitor.apiMethod",
        json!({
            "name": r.name,
            "method": r.method,
            "resource": r.resource,
            "statusCode": r.status,
            "clientId": r.client_id.unwrap_or(""),
            "duration": (r.duration_ms * 1000.0).round() / 1000.0,
        }),
    )
}

/// An audit event (`crate::audit`), as upstream's services log theirs (`auditEvent`):
/// who did what to which entity; not what changed.
pub fn audit_event(e: &crate::audit::Entry) -> Value {
    line("audit-event", json!({"entity": e.entity_type, "entityId": e.entity_id, "clientId": e.client_id, "action": e.action_type}))
}

/// Writes one line. Tests read the components' output; unit tests (which capture it)
/// check the lines' builders above.
pub fn emit(line: &Value) {
    // Serialised first, then printed as one string: `println!("{line}")` runs a `Value`
    // through `fmt::Write` piece by piece, 3% of a `ping`'s CPU in a component.
    let mut text = serde_json::to_string(line).expect("a Value serialises");
    text.push('\n');
    print!("{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fire_is_logged_with_upstreams_fields_and_no_error() {
        let failed = FireOutcome::RenderFailed("secret detail".into());
        let l = hook_fire("g", "h/1", FiredBy::TriggerHookWithToken, "fN1SmgV0T8WXX3LhKs2Gyw", &failed);
        assert_eq!(l["Type"], "hook-fire");
        assert_eq!(
            l["Fields"],
            json!({"hookGroupId": "g", "hookId": "h/1", "firedBy": "triggerHookWithToken", "taskId": "fN1SmgV0T8WXX3LhKs2Gyw", "result": "failure", "v": 1})
        );
        assert!(!l.to_string().contains("secret detail"));
        assert_eq!(fire_result(&FireOutcome::Declined), "declined");
        assert_eq!(fire_result(&FireOutcome::Created { task_id: "t".into() }), "success");
    }

    #[test]
    fn a_request_line_names_the_method_status_caller_and_duration() {
        let l = api_method(&Request { name: "hook", method: "GET", resource: "/api/hooks/v1/hooks/g/h", status: 200, client_id: Some("c"), duration_ms: 1.23456 });
        assert_eq!(l["Fields"]["duration"], 1.235);
        assert_eq!((l["Fields"]["name"].as_str(), l["Fields"]["statusCode"].as_u64(), l["Fields"]["clientId"].as_str()), (Some("hook"), Some(200), Some("c")));
        assert_eq!(l["Type"], "monitor.apiMethod");
    }
}
