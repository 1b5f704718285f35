//! Methods beyond the upstream API, under `/api/taskhooks/v1/` so no official client can
//! mistake them for Hooks v1 methods:
//!
//! * `POST /hooks/<g>/<h>/dry-run`: what firing the hook would do for a given payload,
//!   with no side effects (no task, no recorded fire).
//! * `GET /hooks/<g>/<h>/next-fires?count=N`: the hook's next scheduled fire times.
//! * `POST /schedule-preview`: the next fire times of any schedule, before creating a
//!   hook with it.
//! * `POST /tick` (scope `hooks:tick`): one scheduler tick now, for platforms that can
//!   only make scheduled HTTP calls.
//! * `POST /relay` (scope `hooks:relay`): one Pulse relay run now (sync queues, drain
//!   them), for the same platforms and for tests.
//! * `GET /hooks/<g>/<h>/pulse`: the hook's queue, each binding's state on the broker
//!   (an unknown exchange shows as `failed` with RabbitMQ's reason), and the messages
//!   discarded by its `triggerSchema`.

use super::hooks::{ids, no_such_hook, payload_task_id, Attempt};
use super::{Call, Service};
use crate::error::{ApiError, ErrorCode};
use crate::ids::nice_slugid;
use crate::render::{iso_time, FireContext, FiredBy};
use crate::schedule::Schedule;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

const DEFAULT_COUNT: usize = 5;
const MAX_COUNT: usize = 100;
/// An HTTP-nudged relay run stops draining after this long (what is left waits in the
/// queues for the next run).
const RELAY_BUDGET_SECONDS: i64 = 20;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DryRunRequest {
    #[serde(default)]
    payload: Option<Value>,
    #[serde(default = "default_fired_by")]
    fired_by: FiredBy,
    #[serde(default)]
    client_id: Option<String>,
}

fn default_fired_by() -> FiredBy {
    FiredBy::TriggerHook
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SchedulePreviewRequest {
    schedule: Vec<String>,
    #[serde(default)]
    count: Option<usize>,
    #[serde(default)]
    from: Option<String>,
}

fn fires(schedule: &Schedule, from: DateTime<Utc>, count: usize) -> Result<Value, ApiError> {
    if !(1..=MAX_COUNT).contains(&count) {
        return Err(ApiError::new(ErrorCode::InputError, format!("count must be between 1 and {MAX_COUNT} (got {count})")));
    }
    Ok(json!({"nextFires": schedule.next_fires(from, count).into_iter().map(iso_time).collect::<Vec<_>>()}))
}

impl Service<'_> {
    pub(super) fn next_fires(&self, call: &Call) -> Result<Value, ApiError> {
        let (g, h) = ids(call)?;
        let hook = self.store().hook(&g, &h)?.ok_or_else(no_such_hook)?;
        let count = match call.query.get("count") {
            None => DEFAULT_COUNT,
            Some(c) => c.parse().map_err(|_| ApiError::new(ErrorCode::InputError, format!("count must be a number between 1 and {MAX_COUNT}")))?,
        };
        // A cron project's job: its slots from `.cron.yml`'s `when` (which the cron
        // text shown as its schedule cannot say exactly: "day and weekday").
        if let Some(job) = crate::cron_hooks::managed(&hook.definition) {
            if !(1..=MAX_COUNT).contains(&count) {
                return Err(ApiError::new(ErrorCode::InputError, format!("count must be between 1 and {MAX_COUNT} (got {count})")));
            }
            let mut at = self.clock.now();
            let mut next = Vec::new();
            while let Some(t) = (next.len() < count).then(|| crate::cron_yml::next_slot(&job.when, at)).flatten() {
                next.push(iso_time(t));
                at = t;
            }
            return Ok(json!({"nextFires": next}));
        }
        let schedule = Schedule::parse(&hook.definition.schedule).map_err(|e| ApiError::new(ErrorCode::InternalServerError, e.to_string()))?;
        fires(&schedule, self.clock.now(), count)
    }

    pub(super) fn tick_now(&self) -> Result<Value, ApiError> {
        let (store, now) = (self.store(), self.clock.now());
        let tick = self.with_queue(|queue| match self.http {
            Some(http) => Ok(crate::cron_tick::run(&store, queue, http, &self.config.repository_hosts, self.config.tasks_root_url(), now)?),
            // Without outbound HTTP no repository can be read: the hooks only.
            None => Ok(crate::cron_tick::Tick { sync: Default::default(), fires: crate::scheduler::tick(&store, queue, now)? }),
        })?;
        let report = &tick.fires;
        if let (Some(channel), Some(http)) = (&self.config.failure_channel, self.http) {
            for failure in &report.to_report {
                if let Err(e) = crate::notify::report_failure(self.kv, http, channel, failure) {
                    eprintln!("tick: hook {}/{}: {e}", failure.hook_group_id, failure.hook_id);
                }
            }
        }
        let failed: Vec<Value> = tick.sync.failed.iter().map(|(project, error)| json!({"project": project, "error": error})).collect();
        Ok(json!({
            "due": report.due, "fired": report.fired, "declined": report.declined, "failed": report.failed, "retrying": report.retrying,
            "cronProjects": {"synced": tick.sync.synced.len(), "failed": failed},
        }))
    }

    pub(super) fn fire_stats(&self, call: &Call) -> Result<Value, ApiError> {
        let (g, h) = ids(call)?;
        self.store().hook(&g, &h)?.ok_or_else(no_such_hook)?;
        Ok(serde_json::to_value(crate::fire_stats::charts(self.kv, g.as_str(), h.as_str(), self.clock.now())?).expect("serialises"))
    }

    pub(super) fn last_fire_results(&self, call: &Call) -> Result<Value, ApiError> {
        // The explorer's marks: each hook's last fire, `success`, `error` or `none`.
        let g = crate::ids::HookGroupId::new(call.param("hookGroupId")).map_err(|e| ApiError::new(ErrorCode::InvalidRequestArguments, e.to_string()))?;
        let store = self.store();
        let mut results = serde_json::Map::new();
        for hook in store.hooks_in_group(&g)? {
            let h = crate::ids::HookId::new(&hook.definition.hook_id).map_err(|e| ApiError::new(ErrorCode::InternalServerError, e.to_string()))?;
            let (last, _) = store.fires(&g, &h, None, 1)?;
            let result = last.first().map_or("none", |f| if f.result == crate::model::FireResult::Success { "success" } else { "error" });
            results.insert(hook.definition.hook_id.clone(), json!(result));
        }
        Ok(json!({"lastFires": results}))
    }

    pub(super) fn pulse_status(&self, call: &Call) -> Result<Value, ApiError> {
        let (g, h) = ids(call)?;
        self.store().hook(&g, &h)?.ok_or_else(no_such_hook)?;
        Ok(crate::relay::status::pulse_status(self.kv, g.as_str(), h.as_str())?)
    }

    pub(super) fn schedule_preview(&self, call: &Call) -> Result<Value, ApiError> {
        let req: SchedulePreviewRequest = serde_json::from_value(call.payload.clone())
            .map_err(|e| ApiError::new(ErrorCode::InputValidationError, e.to_string()))?;
        if req.schedule.len() > crate::model::MAX_SCHEDULE_ENTRIES {
            return Err(ApiError::new(
                ErrorCode::InputError,
                format!("schedule has {} entries; at most {} are allowed", req.schedule.len(), crate::model::MAX_SCHEDULE_ENTRIES),
            ));
        }
        let schedule = Schedule::parse(&req.schedule).map_err(|e| ApiError::new(ErrorCode::InputError, e.to_string()))?;
        let from = match &req.from {
            None => self.clock.now(),
            Some(t) => t.parse().map_err(|_| ApiError::new(ErrorCode::InputValidationError, format!("from must be an RFC 3339 time, got {t:?}")))?,
        };
        fires(&schedule, from, req.count.unwrap_or(DEFAULT_COUNT))
    }

    pub(super) fn relay_now(&self) -> Result<Value, ApiError> {
        let (Some(pulse), Some(http)) = (&self.config.pulse, self.http) else {
            return Err(ApiError::new(ErrorCode::InputError, "Pulse is not configured: set the `pulse_api_url` variable"));
        };
        let mq = crate::pulse::RabbitMq { http, config: pulse };
        let store = self.store();
        let source = self.cron_source();
        let report = self.with_queue(|queue| {
            let source = source.as_ref().map(|s| s as &dyn crate::fire::TaskSource);
            let relay = crate::relay::Relay { store: &store, mq: &mq, queue, clock: self.clock, batch: crate::relay::DEFAULT_BATCH, source };
            relay.run(chrono::Duration::seconds(RELAY_BUDGET_SECONDS)).map_err(|e| ApiError::new(ErrorCode::InternalServerError, e.to_string()))
        })?;
        if let Some(channel) = &self.config.failure_channel {
            for failure in &report.to_report {
                if let Err(e) = crate::notify::report_failure(self.kv, http, channel, failure) {
                    eprintln!("relay: hook {}/{}: {e}", failure.hook_group_id, failure.hook_id);
                }
            }
        }
        Ok(serde_json::to_value(&report).expect("serialises"))
    }

    /// `outcome` is one of `task` (would be created), `declined`, `invalid-payload`,
    /// `render-error`, `invalid-task`, `insufficient-scopes`; nothing is created or recorded.
    pub(super) fn dry_run(&self, call: &Call) -> Result<Value, ApiError> {
        let (g, h) = ids(call)?;
        let req: DryRunRequest = serde_json::from_value(call.payload.clone())
            .map_err(|e| ApiError::new(ErrorCode::InputValidationError, e.to_string()))?;
        let hook = self.store().hook(&g, &h)?.ok_or_else(no_such_hook)?;
        let payload = match req.fired_by {
            FiredBy::Schedule => None,
            _ => {
                let payload = req.payload.unwrap_or_else(|| json!({}));
                let checked = match req.fired_by {
                    FiredBy::PulseMessage => Ok(payload),
                    _ => self.checked_payload(&hook, &payload),
                };
                match checked {
                    Ok(p) => Some(p),
                    Err(e) => return Ok(json!({"outcome": "invalid-payload", "error": e.message})),
                }
            }
        };
        // A scheduled fire's real taskId (nextTaskId) is secret; a placeholder stands in.
        let task_id = match &payload {
            Some(p) if req.fired_by != FiredBy::PulseMessage => payload_task_id(p)?.unwrap_or_else(nice_slugid),
            _ => nice_slugid(),
        };
        let client_id = (req.fired_by == FiredBy::TriggerHook).then_some(req.client_id).flatten();
        let ctx = FireContext { fired_by: req.fired_by, payload, client_id };
        let now = match req.fired_by {
            FiredBy::Schedule => hook.next_scheduled_date.parse().unwrap_or_else(|_| self.clock.now()),
            _ => self.clock.now(),
        };
        Ok(match self.attempt(&hook, &ctx, &task_id, now)? {
            Attempt::Declined => json!({"outcome": "declined"}),
            Attempt::RenderFailed(e) => json!({"outcome": "render-error", "error": e}),
            Attempt::InvalidTask(e) => json!({"outcome": "invalid-task", "taskId": task_id, "error": e}),
            Attempt::Task { task, missing: Some(missing), required } => json!({
                "outcome": "insufficient-scopes",
                "taskId": task_id,
                "task": task,
                "role": format!("hook-id:{g}/{h}"),
                "missingScopes": missing.to_json(),
                "requiredScopes": required.to_json(),
            }),
            Attempt::Task { task, missing: None, .. } => {
                let mut answer = json!({"outcome": "task", "taskId": task_id, "task": task});
                if self.config.taskcluster.is_some() {
                    answer["scopesCheckedBy"] = json!("the remote Queue, at creation");
                }
                answer
            }
        })
    }
}
