//! The embedded queue's API under `/api/queue/v1/`: enough of the Taskcluster Queue that
//! the official `Queue` client can create tasks and see every task a hook created.

use super::{Call, Service};
use crate::embedded_queue::{CreateTaskError, EmbeddedQueue};
use crate::error::{ApiError, ErrorCode};
use crate::fire::TaskIdOrigin;
use crate::scopes::ScopeSet;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

const MAX_PAGE: usize = 1000;

fn error_code(code: &str) -> ErrorCode {
    match code {
        "InvalidRequestArguments" => ErrorCode::InvalidRequestArguments,
        "InputValidationError" => ErrorCode::InputValidationError,
        "InsufficientScopes" => ErrorCode::InsufficientScopes,
        "RequestConflict" => ErrorCode::RequestConflict,
        _ => ErrorCode::InputError,
    }
}

impl Service<'_> {
    fn queue(&self) -> EmbeddedQueue<'_> {
        EmbeddedQueue { kv: self.kv }
    }

    pub(super) fn create_task(&self, call: &Call) -> Result<Value, ApiError> {
        let task_id = call.param("taskId");
        let task = call.payload.as_object().ok_or_else(|| ApiError::new(ErrorCode::InputValidationError, "a task definition is a JSON object"))?;
        self.queue().create_task(task_id, task, &ScopeSet::new(&call.caller.scopes), self.clock.now(), TaskIdOrigin::Given).map_err(|e| match e {
            CreateTaskError::Refused(r) => ApiError::new(error_code(r.code), r.message),
            CreateTaskError::Storage(s) => s.into(),
        })
    }

    pub(super) fn task(&self, call: &Call) -> Result<Value, ApiError> {
        let task_id = call.param("taskId");
        let not_found = || ApiError::new(ErrorCode::ResourceNotFound, format!("task `{task_id}` not found"));
        self.queue().task(task_id)?.ok_or_else(not_found)
    }

    pub(super) fn task_status(&self, call: &Call) -> Result<Value, ApiError> {
        let task_id = call.param("taskId");
        let not_found = || ApiError::new(ErrorCode::ResourceNotFound, format!("task `{task_id}` not found"));
        self.queue().status(task_id)?.ok_or_else(not_found)
    }

    pub(super) fn list_task_group(&self, call: &Call) -> Result<Value, ApiError> {
        let group = call.param("taskGroupId");
        let limit = call.query.get("limit").and_then(|l| l.parse::<usize>().ok()).filter(|l| *l > 0).unwrap_or(MAX_PAGE).min(MAX_PAGE);
        // A token that does not decode starts at the first page, as upstream's.
        let offset = call
            .query
            .get("continuationToken")
            .and_then(|t| URL_SAFE_NO_PAD.decode(t).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("tasks:").and_then(|n| n.parse().ok()))
            .unwrap_or(0);
        let page = self
            .queue()
            .list_task_group(group, offset, limit)?
            .ok_or_else(|| ApiError::new(ErrorCode::ResourceNotFound, format!("task group `{group}` not found")))?;
        let more = page.more;
        let mut page = json!({"taskGroupId": group, "schedulerId": page.scheduler_id, "expires": page.expires, "tasks": page.tasks});
        if more {
            page["continuationToken"] = json!(URL_SAFE_NO_PAD.encode(format!("tasks:{}", offset.saturating_add(limit))));
        }
        Ok(page)
    }
}
