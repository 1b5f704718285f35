//! `POST /api/github/v1/github`: the webhook URL of a GitHub App or repository (the path
//! Taskcluster's own GitHub service uses). It authenticates by `X-Hub-Signature-256`
//! over the raw body rather than Hawk (`Access::GithubSignature`, `Input::Raw`).

use super::{parse_query, ApiRequest, Service};
use crate::error::{ApiError, ErrorCode};
use crate::fire::FireOutcome;
use crate::github::{message, signature_matches};
use crate::relay::{handle_message_with, hooks_bound_to, message_task_id, Inbound, MessageOutcome};
use crate::render::FiredBy;
use crate::topic::routing_key_matches;
use serde_json::{json, Value};

/// The longest `X-GitHub-Delivery` accepted (GitHub sends 36-character GUIDs).
const MAX_DELIVERY_ID: usize = 128;

/// GitHub caps webhook payloads at 25 MB.
pub(crate) const MAX_GITHUB_BODY: usize = 25 * 1024 * 1024;

impl Service<'_> {
    pub(super) fn github_delivery(&self, req: &ApiRequest) -> Result<Value, ApiError> {
        let Some(secret) = &self.config.github_webhook_secret else {
            return Err(ApiError::new(ErrorCode::ResourceNotFound, "GitHub webhooks are not enabled here: set the `github_webhook_secret` variable"));
        };
        if req.body.len() > MAX_GITHUB_BODY {
            return Err(ApiError::new(ErrorCode::MalformedPayload, "request body is larger than 25 MB"));
        }
        if !signature_matches(secret.as_bytes(), &req.body, req.header("x-hub-signature-256")) {
            return Err(ApiError::new(ErrorCode::AuthenticationFailed, "X-Hub-Signature-256 is missing or is not the body's HMAC-SHA256 under the webhook secret"));
        }
        let event = req.header("x-github-event").ok_or_else(|| ApiError::new(ErrorCode::InputError, "X-GitHub-Event is missing"))?;
        let delivery = req.header("x-github-delivery").filter(|d| !d.is_empty()).ok_or_else(|| ApiError::new(ErrorCode::InputError, "X-GitHub-Delivery is missing"))?;
        // GitHub's delivery ids are GUIDs; the id is stored with the message, so it is capped.
        if delivery.len() > MAX_DELIVERY_ID {
            return Err(ApiError::new(ErrorCode::InputError, format!("X-GitHub-Delivery is {} bytes; at most {MAX_DELIVERY_ID} are accepted", delivery.len())));
        }
        // GitHub sends JSON, or the same JSON as the `payload` form field.
        let form = req.header("content-type").is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        let payload: Value = if form {
            let fields = parse_query(&String::from_utf8_lossy(&req.body));
            let json = fields.into_iter().find(|(k, _)| k == "payload").map(|(_, v)| v).unwrap_or_default();
            serde_json::from_str(&json)
        } else {
            serde_json::from_slice(&req.body)
        }
        .map_err(|e| ApiError::new(ErrorCode::MalformedPayload, format!("the webhook payload is not JSON: {e}")))?;
        if event == "ping" {
            return Ok(json!({"event": "ping", "delivery": delivery, "hookId": payload.get("hook_id")}));
        }
        let Some(msg) = message(event, delivery, &payload).map_err(|e| ApiError::new(ErrorCode::InputError, e))? else {
            return Ok(json!({"event": event, "delivery": delivery, "ignored": "no Taskcluster GitHub exchange carries this event"}));
        };
        // A redelivery of the same delivery id fires nothing again.
        let identity = crate::relay::github_identity(delivery);
        let body = serde_json::to_vec(&msg.body).expect("serialises");
        let inbound = Inbound { exchange: &msg.exchange, routing_key: &msg.routing_key, identity: &identity, body: &body };
        let store = self.store();
        let mut hooks = Vec::new();
        let mut retry = Vec::new();
        let source = self.cron_source();
        let source = source.as_ref().map(|s| s as &dyn crate::fire::TaskSource);
        for (g, h, patterns) in hooks_bound_to(self.kv, &msg.exchange)? {
            if !patterns.iter().any(|p| routing_key_matches(p, &msg.routing_key)) {
                continue;
            }
            let now = self.clock.now();
            let outcome = self.with_queue(|queue| Ok(handle_message_with(&store, queue, source, &g, &h, &inbound, now)?))?;
            let task_id = message_task_id(&g, &h, &identity);
            let answer = match &outcome {
                MessageOutcome::Fired(FireOutcome::Created { task_id }) => json!({"outcome": "created", "taskId": task_id}),
                MessageOutcome::Fired(FireOutcome::Declined) => json!({"outcome": "declined"}),
                MessageOutcome::Fired(failure) if failure.is_retryable() => {
                    retry.push(format!("{g}/{h}: {}", failure.error().unwrap_or_default()));
                    continue;
                }
                MessageOutcome::Fired(failure) => {
                    let error = self.report_fire_failure(&g, &h, failure, &task_id, now)?;
                    json!({"outcome": "error", "taskId": task_id, "error": error})
                }
                MessageOutcome::AlreadyHandled => json!({"outcome": "duplicate", "taskId": task_id}),
                MessageOutcome::Discarded(reason) => json!({"outcome": "discarded", "reason": reason}),
                MessageOutcome::NoHook => continue,
            };
            let mut answer = answer;
            answer["hookGroupId"] = json!(g);
            answer["hookId"] = json!(h);
            hooks.push(answer);
        }
        if !retry.is_empty() {
            // Not handled yet: a redelivery fires these (with the same taskIds) and counts
            // the others as duplicates.
            return Err(ApiError::new(
                ErrorCode::ServiceUnavailable,
                format!("The Queue did not take the fires of {} hook(s); redeliver this delivery later:\n{}", retry.len(), retry.join("\n")),
            ));
        }
        Ok(json!({"event": event, "delivery": delivery, "exchange": msg.exchange, "routingKey": msg.routing_key, "hooks": hooks}))
    }

    /// Reports a failed fire to the hook's owner (when it asks for that); returns the
    /// failure's text for the answer (the same as in lastFires).
    fn report_fire_failure(&self, g: &str, h: &str, failure: &FireOutcome, task_id: &str, now: chrono::DateTime<chrono::Utc>) -> Result<String, ApiError> {
        let error = match failure {
            FireOutcome::RenderFailed(e) => e.clone(),
            FireOutcome::QueueFailed(e) => e.to_string(),
            _ => String::new(),
        };
        let (Some(channel), Some(http)) = (&self.config.failure_channel, self.http) else { return Ok(error) };
        let (Ok(gid), Ok(hid)) = (crate::ids::HookGroupId::new(g), crate::ids::HookId::new(h)) else { return Ok(error) };
        let Some(hook) = self.store().hook(&gid, &hid)?.filter(|hook| hook.definition.metadata.email_on_error) else { return Ok(error) };
        let report = crate::notify::FailureReport::new(&hook, FiredBy::PulseMessage, task_id, now, &error);
        if let Err(e) = crate::notify::report_failure(self.kv, http, channel, &report) {
            eprintln!("hook {g}/{h}: {e}");
        }
        Ok(error)
    }
}
