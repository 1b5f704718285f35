//! The Hooks v1 methods (SPEC §5) and firing a hook into the local queue (§6).

use super::{Call, Service};
use crate::auth::Caller;
use crate::error::{ApiError, ErrorCode};
use crate::ids::{is_slugid, nice_slugid, secrets_equal, HookGroupId, HookId};
use crate::model::{
    FireResult, HookCreationRequest, HookDefinition, HookRecord, HookStatus, ListHookGroupsResponse,
    ListHooksResponse, ListLastFiresResponse, StatusLastFire, TriggerHookResponse, TriggerTokenResponse, FAR_FUTURE,
};
use crate::embedded_queue::EmbeddedQueue;
use crate::store::Created;
use crate::fire::{fire, EmbeddedTaskQueue, FireOptions, FireOutcome, QueueError, TaskIdOrigin, TaskQueue};
use crate::queue::create_task_requirement;
use crate::notify::{report_failure, FailureReport};
use crate::remote_queue::RemoteTaskQueue;
use crate::render::{iso_time, render_task, FireContext, FiredBy, Rendered};
use crate::schedule::Schedule;
use crate::scopes::{ScopeExpr, ScopeSet};
use crate::trigger_schema::TriggerSchema;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Map, Value};

/// Exchanges no hook may bind to (SPEC §5.1 step 4, upstream's default denylist): the
/// queue's task-created firehose and the hooks service's own exchanges.
const DENIED_EXCHANGE_PREFIXES: [&str; 2] = ["exchange/taskcluster-queue/v1/task-created", "exchange/taskcluster-hooks/"];

const MAX_FIRES_PAGE: usize = 1000;

fn to_json<T: Serialize>(v: T) -> Value {
    serde_json::to_value(v).expect("API types serialise")
}

pub(super) fn ids(call: &Call) -> Result<(HookGroupId, HookId), ApiError> {
    let bad = |e: crate::ids::InvalidId| ApiError::new(ErrorCode::InvalidRequestArguments, e.to_string());
    Ok((HookGroupId::new(call.param("hookGroupId")).map_err(bad)?, HookId::new(call.param("hookId")).map_err(bad)?))
}

pub(super) fn no_such_hook() -> ApiError {
    ApiError::new(ErrorCode::ResourceNotFound, "No such hook")
}

/// `nextScheduledDate` for a schedule from `now` (SPEC §7.2); far future without one.
pub(crate) fn next_scheduled_date(schedule: &Schedule, now: DateTime<Utc>) -> String {
    schedule.next_fire_after(now).map(iso_time).unwrap_or_else(|| FAR_FUTURE.to_string())
}

/// A createHook/updateHook body, checked in upstream's order, as the definition to store.
fn checked_definition(g: &HookGroupId, h: &HookId, payload: &Value, keep_bindings: Option<&[crate::model::Binding]>) -> Result<(HookDefinition, Schedule), ApiError> {
    let req: HookCreationRequest = serde_json::from_value(payload.clone())
        .map_err(|e| ApiError::new(ErrorCode::InputValidationError, e.to_string()))?;
    req.check_constraints().map_err(|errors| ApiError::new(ErrorCode::InputValidationError, errors.join("\n")))?;
    if req.hook_group_id.as_deref().is_some_and(|x| x != g.as_str()) {
        return Err(ApiError::new(ErrorCode::InputError, "Hook Group Ids do not match"));
    }
    if req.hook_id.as_deref().is_some_and(|x| x != h.as_str()) {
        return Err(ApiError::new(ErrorCode::InputError, "Hook Ids do not match"));
    }
    let schedule = Schedule::parse(&req.schedule).map_err(|e| ApiError::new(ErrorCode::InputError, e.to_string()))?;
    TriggerSchema::compile(&req.trigger_schema).map_err(|e| ApiError::new(ErrorCode::InputError, e.to_string()))?;
    let bindings = req.bindings.or_else(|| keep_bindings.map(<[_]>::to_vec)).unwrap_or_default();
    if bindings.iter().any(|b| DENIED_EXCHANGE_PREFIXES.iter().any(|p| b.exchange.starts_with(p))) {
        return Err(ApiError::new(
            ErrorCode::InputError,
            format!(
                "One or more of the exchanges below have been denied access to hooks:\n{}",
                serde_json::to_string_pretty(&bindings).expect("serialises")
            ),
        ));
    }
    let definition = HookDefinition {
        hook_group_id: g.to_string(),
        hook_id: h.to_string(),
        metadata: req.metadata,
        task: req.task,
        bindings,
        schedule: req.schedule,
        trigger_schema: req.trigger_schema,
    };
    Ok((definition, schedule))
}

/// The continuation token of `listLastFires`: an opaque encoding of the next offset.
fn encode_offset(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("fires:{offset}"))
}

fn decode_offset(token: &str) -> Option<usize> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    text.strip_prefix("fires:")?.parse().ok()
}

/// How a fire is going to end, worked out without side effects: a dry run reports it, a
/// real fire then carries it out.
pub(super) enum Attempt {
    Declined,
    RenderFailed(String),
    /// The rendered task breaks the Queue's rules (fields, dates).
    InvalidTask(String),
    /// The rendered task and what the hook's role lacks to create it (`None`: nothing).
    Task { task: Map<String, Value>, missing: Option<ScopeExpr>, required: ScopeExpr },
}

impl Service<'_> {
    pub(super) fn list_hook_groups(&self, _call: &Call) -> Result<Value, ApiError> {
        Ok(to_json(ListHookGroupsResponse { groups: self.store().hook_groups()? }))
    }

    pub(super) fn list_hooks(&self, call: &Call) -> Result<Value, ApiError> {
        let g = HookGroupId::new(call.param("hookGroupId")).map_err(|e| ApiError::new(ErrorCode::InvalidRequestArguments, e.to_string()))?;
        let hooks: Vec<HookDefinition> = self.store().hooks_in_group(&g)?.into_iter().map(|h| h.definition).collect();
        if hooks.is_empty() {
            return Err(ApiError::new(ErrorCode::ResourceNotFound, "No such group"));
        }
        Ok(to_json(ListHooksResponse { hooks }))
    }

    pub(super) fn hook(&self, call: &Call) -> Result<Value, ApiError> {
        let (g, h) = ids(call)?;
        Ok(to_json(self.store().hook_definition(&g, &h)?.ok_or_else(no_such_hook)?))
    }

    pub(super) fn remove_hook(&self, call: &Call) -> Result<Value, ApiError> {
        self.refuse_managed(call, false)?;
        let (g, h) = ids(call)?;
        let removed = crate::hook_writes::remove(&self.store(), &g, &h)?;
        if let Some(hook) = &removed {
            self.audit(call, "hook", &format!("{g}/{h}"), crate::audit::action::DELETED, Some(to_json(&hook.definition)), None)?;
        }
        let old = removed.map(|hook| hook.definition.bindings).unwrap_or_default();
        self.hook_changed("hook-deleted", &old, None, g.as_str(), h.as_str());
        Ok(json!({}))
    }

    pub(super) fn get_trigger_token(&self, call: &Call) -> Result<Value, ApiError> {
        let (g, h) = ids(call)?;
        let hook = self.store().hook(&g, &h)?.ok_or_else(no_such_hook)?;
        Ok(to_json(TriggerTokenResponse { token: hook.trigger_token }))
    }

    pub(super) fn reset_trigger_token(&self, call: &Call) -> Result<Value, ApiError> {
        let (g, h) = ids(call)?;
        let token = nice_slugid();
        let hook = self
            .store()
            .update_hook(&g, &h, |hook| {
                hook.trigger_token.clone_from(&token);
                true
            })?
            .ok_or_else(no_such_hook)?;
        self.audit(call, "hook", &format!("{g}/{h}"), crate::audit::action::TRIGGER_TOKEN_RESET, None, None)?;
        Ok(to_json(TriggerTokenResponse { token: hook.trigger_token }))
    }

    /// Refuses (409) writing a cron project's managed hook, or creating any hook in the
    /// `cron` group, which is theirs: the project's `.cron.yml` decides them.
    fn refuse_managed(&self, call: &Call, creating: bool) -> Result<(), ApiError> {
        let (g, h) = ids(call)?;
        if g.as_str() != crate::cron_hooks::GROUP {
            return Ok(());
        }
        let hook = self.store().hook(&g, &h)?;
        let owner = hook.as_ref().and_then(|hook| crate::cron_hooks::managed(&hook.definition)).map(|job| job.project);
        match (owner, creating) {
            (Some(project), _) => Err(ApiError::new(
                ErrorCode::RequestConflict,
                format!("hook `{g}/{h}` is managed by cron project `{project}`: change the job in the repository's .cron.yml (or the project), not the hook"),
            )),
            (None, true) => Err(ApiError::new(
                ErrorCode::RequestConflict,
                format!("the hook group `{g}` holds the managed hooks of cron projects; hooks cannot be created in it"),
            )),
            (None, false) => Ok(()),
        }
    }

    pub(super) fn create_hook(&self, call: &Call) -> Result<Value, ApiError> {
        self.refuse_managed(call, true)?;
        let (g, h) = ids(call)?;
        let (definition, schedule) = checked_definition(&g, &h, &call.payload, None)?;
        let store = self.store();
        let record = HookRecord {
            definition: definition.clone(),
            trigger_token: nice_slugid(),
            next_task_id: nice_slugid(),
            next_scheduled_date: next_scheduled_date(&schedule, self.clock.now()),
        };
        // Of concurrent creators one creates the hook; the others see it exist.
        if let Created::Exists(existing) = crate::hook_writes::create(&store, &record)? {
            // Re-creating an identical hook succeeds and keeps its secrets; `bindings`
            // omitted and `bindings: []` count as the same (upstream quirk §15.3, fixed).
            if existing.definition != definition {
                return Err(ApiError::new(ErrorCode::RequestConflict, format!("hook `{g}/{h}` already exists.")));
            }
            self.hook_changed("hook-created", &existing.definition.bindings, Some(&existing), g.as_str(), h.as_str());
            return Ok(to_json(definition));
        }
        self.hook_changed("hook-created", &[], Some(&record), g.as_str(), h.as_str());
        self.audit(call, "hook", &format!("{g}/{h}"), crate::audit::action::CREATED, None, Some(to_json(&definition)))?;
        Ok(to_json(definition))
    }

    /// Upstream's update semantics (SPEC §5.2): omitted `bindings` are kept, omitted
    /// `schedule`/`triggerSchema` reset; `nextTaskId` is always renewed.
    pub(super) fn update_hook(&self, call: &Call) -> Result<Value, ApiError> {
        self.refuse_managed(call, false)?;
        let (g, h) = ids(call)?;
        let store = self.store();
        let current = store.hook(&g, &h)?.ok_or_else(no_such_hook)?;
        let (definition, schedule) = checked_definition(&g, &h, &call.payload, Some(&current.definition.bindings))?;
        let updated = HookRecord {
            definition,
            trigger_token: current.trigger_token,
            next_task_id: nice_slugid(),
            next_scheduled_date: next_scheduled_date(&schedule, self.clock.now()),
        };
        // Applied to the hook as stored: if it was removed meanwhile, the update fails
        // rather than bringing it back. Omitted bindings are the stored hook's, which a
        // concurrent update may have changed since it was read.
        let keep_bindings = call.payload.get("bindings").is_none();
        let (old, hook) = crate::hook_writes::replace(&store, &g, &h, &updated, keep_bindings)?.ok_or_else(no_such_hook)?;
        self.hook_changed("hook-updated", &old, Some(&hook), g.as_str(), h.as_str());
        self.audit(call, "hook", &format!("{g}/{h}"), crate::audit::action::UPDATED, Some(to_json(&current.definition)), Some(to_json(&hook.definition)))?;
        Ok(to_json(hook.definition))
    }

    /// After a hook changed, with Pulse configured: its queue on the broker follows its
    /// bindings at once (so a message published right after createHook is not missed
    /// while the relay's next run is still to come), and the hook-changed event goes out
    /// (SPEC §10). Neither can fail the call: the change is stored, and the relay's
    /// next run syncs the queue again.
    fn hook_changed(&self, event: &str, old: &[crate::model::Binding], hook: Option<&HookRecord>, g: &str, h: &str) {
        let (Some(pulse), Some(http)) = (&self.config.pulse, self.http) else { return };
        let mq = crate::pulse::RabbitMq { http, config: pulse };
        let store = self.store();
        let synced = match hook {
            Some(hook) if !hook.definition.bindings.is_empty() => {
                crate::relay::sync_hook(&store, &mq, self.clock.now(), hook, false, &mut Default::default())
            }
            _ if !old.is_empty() => crate::relay::forget_hook(&store, &mq, g, h),
            _ => Ok(()),
        };
        if let Err(e) = synced {
            eprintln!("hook {g}/{h}: syncing its Pulse queue failed, the relay will retry: {e}");
        }
        let exchange = format!("exchange/{}/v1/{event}", pulse.namespace);
        if let Err(e) = mq.publish(&exchange, "_", &json!({"hookGroupId": g, "hookId": h})) {
            eprintln!("hook {g}/{h}: publishing {event} failed: {e}");
        }
    }

    pub(super) fn hook_status(&self, call: &Call) -> Result<Value, ApiError> {
        let (g, h) = ids(call)?;
        let store = self.store();
        let hook = store.hook(&g, &h)?.ok_or_else(no_such_hook)?;
        let (fires, _) = store.fires(&g, &h, None, 1)?;
        let last_fire = match fires.into_iter().next() {
            None => StatusLastFire::NoFire,
            Some(f) if f.result == FireResult::Success => StatusLastFire::Success { task_id: f.task_id, time: f.task_create_time },
            Some(f) => StatusLastFire::Error {
                error: serde_json::from_str(&f.error).unwrap_or_else(|_| json!({"message": f.error})),
                time: f.task_create_time,
            },
        };
        let next = (!hook.definition.schedule.is_empty()).then_some(hook.next_scheduled_date);
        Ok(to_json(HookStatus { last_fire, next_scheduled_date: next }))
    }

    pub(super) fn list_last_fires(&self, call: &Call) -> Result<Value, ApiError> {
        let (g, h) = ids(call)?;
        // `limit=0` means the default page (upstream answers 404, quirk §5.8, fixed).
        let limit = match call.query.get("limit").and_then(|l| l.parse::<usize>().ok()) {
            None | Some(0) => MAX_FIRES_PAGE,
            Some(l) => l.min(MAX_FIRES_PAGE),
        };
        // The token is the sequence number the next page starts below. One that does not
        // decode starts at the first page, as upstream's paging does.
        let before = call.query.get("continuationToken").and_then(|t| decode_offset(t)).and_then(|n| i64::try_from(n).ok());
        let store = self.store();
        let (mut fires, more) = store.fires(&g, &h, before, limit)?;
        if fires.is_empty() {
            return Err(ApiError::new(ErrorCode::ResourceNotFound, "No such hook or never fired"));
        }
        let states = match (&self.config.taskcluster, self.http) {
            // Only a fire that succeeded has a task to ask about.
            (Some(credentials), Some(http)) => {
                let ids: Vec<Option<&str>> = fires.iter().map(|f| (f.result == crate::model::FireResult::Success).then_some(f.task_id.as_str())).collect();
                crate::remote_queue::task_states(http, credentials, &ids, crate::remote_queue::STATE_BUDGET)
            }
            _ => {
                let task_ids: Vec<String> = fires.iter().map(|f| f.task_id.clone()).collect();
                EmbeddedQueue { kv: self.kv }.states(&task_ids)?
            }
        };
        for (fire, state) in fires.iter_mut().zip(states) {
            fire.task_state = state.unwrap_or_else(|| "unknown".to_string());
        }
        let continuation_token = more.map(|seq| encode_offset(seq.max(0) as usize));
        Ok(to_json(ListLastFiresResponse { last_fires: fires, continuation_token }))
    }

    /// `triggerHook` (`fired_by` `TriggerHook`) and `triggerHookWithToken`.
    pub(super) fn trigger(&self, call: &Call, fired_by: FiredBy) -> Result<Value, ApiError> {
        let (g, h) = ids(call)?;
        let hook = self.store().hook(&g, &h)?.ok_or_else(no_such_hook)?;
        // Existence is checked first (upstream order); the token in constant time.
        if fired_by == FiredBy::TriggerHookWithToken && !secrets_equal(call.param("token").as_bytes(), hook.trigger_token.as_bytes()) {
            return Err(ApiError::new(ErrorCode::AuthenticationFailed, "invalid hook token"));
        }
        let payload = self.checked_payload(&hook, &call.payload)?;
        let (task_id, origin) = match payload_task_id(&payload)? {
            Some(given) => (given, TaskIdOrigin::Given),
            None => (nice_slugid(), TaskIdOrigin::Fresh),
        };
        let client_id = match fired_by {
            FiredBy::TriggerHook => client_id_of(&call.caller),
            _ => None,
        };
        let ctx = FireContext { fired_by, payload: Some(payload), client_id };
        self.fire(&hook, &ctx, &task_id, origin)
    }

    /// The body against the hook's `triggerSchema` (SPEC §5.10 step 4).
    pub(super) fn checked_payload(&self, hook: &HookRecord, payload: &Value) -> Result<Value, ApiError> {
        if !payload.is_object() {
            return Err(ApiError::new(ErrorCode::InputValidationError, "the trigger payload must be a JSON object"));
        }
        TriggerSchema::compile_checked(&hook.definition.trigger_schema).and_then(|schema| schema.validate(payload)).map_err(|e| {
            crate::metrics::trigger_schema_rejection(self.kv, "trigger");
            ApiError::new(ErrorCode::InputError, e.to_string())
        })?;
        Ok(payload.clone())
    }

    /// Renders the hook and works out whether the local queue would accept the task.
    pub(super) fn attempt(&self, hook: &HookRecord, ctx: &FireContext, task_id: &str, now: DateTime<Utc>) -> Result<Attempt, ApiError> {
        let task = match render_task(&hook.definition.task, ctx, task_id, now) {
            Ok(Rendered::Declined) => return Ok(Attempt::Declined),
            Ok(Rendered::Task(task)) => task,
            Err(e) => return Ok(Attempt::RenderFailed(e.to_string())),
        };
        if let Err(e) = crate::embedded_queue::normalize_task(&task) {
            return Ok(Attempt::InvalidTask(e.message));
        }
        let required = create_task_requirement(&task);
        // With a remote deployment its roles decide, and only its Queue can tell.
        let missing = if self.config.taskcluster.is_some() {
            None
        } else {
            let role = format!("assume:hook-id:{}/{}", hook.definition.hook_group_id, hook.definition.hook_id);
            let role_scopes = self.roles()?.expand([role.as_str(), "assume:anonymous"]).map_err(|e| ApiError::new(ErrorCode::InputError, e.to_string()))?;
            required.unsatisfied(&ScopeSet::new(&role_scopes))
        };
        Ok(Attempt::Task { task, missing, required })
    }

    /// Runs `f` with the deployment's queue: the remote one when configured, else the
    /// embedded one creating tasks with the roles' scopes.
    pub(crate) fn with_queue<R>(&self, f: impl FnOnce(&dyn TaskQueue) -> Result<R, ApiError>) -> Result<R, ApiError> {
        match (&self.config.taskcluster, self.http) {
            (Some(credentials), Some(http)) => f(&RemoteTaskQueue::new(http, credentials)),
            _ => f(&EmbeddedTaskQueue { queue: EmbeddedQueue { kv: self.kv }, roles: self.roles()? }),
        }
    }

    /// Fires `hook` through the one pipeline (`crate::fire`) into the embedded queue and
    /// answers as upstream's triggerHook does (SPEC §5.10 step 7).
    pub(crate) fn fire(&self, hook: &HookRecord, ctx: &FireContext, task_id: &str, task_id_origin: TaskIdOrigin) -> Result<Value, ApiError> {
        // A cron project's job runs now (build-decision's `--force-run`), made from its
        // repository as read now.
        let source = self.cron_source();
        let options = FireOptions {
            source: source.as_ref().map(|s| s as &dyn crate::fire::TaskSource),
            task_id_origin,
            metric_to: Some(&self.fired),
            ..FireOptions::default()
        };
        let outcome = self.with_queue(|queue| Ok(fire(&self.store(), queue, hook, ctx, task_id, self.clock.now(), options)?))?;
        let d = &hook.definition;
        // A Queue outage is the caller's to retry (it sees the error), not the owner's.
        let failure = outcome.error().filter(|_| !outcome.is_retryable());
        if let (Some(error), true, Some(channel), Some(http)) = (failure, d.metadata.email_on_error, &self.config.failure_channel, self.http) {
            let report = FailureReport::new(hook, ctx.fired_by, task_id, self.clock.now(), &error);
            if let Err(e) = report_failure(self.kv, http, channel, &report) {
                eprintln!("hook {}/{}: {e}", d.hook_group_id, d.hook_id);
            }
        }
        match outcome {
            FireOutcome::Declined => Ok(to_json(TriggerHookResponse::Declined {})),
            FireOutcome::Created { task_id } => Ok(to_json(TriggerHookResponse::created(&task_id))),
            FireOutcome::RenderFailed(e) => Err(ApiError::new(ErrorCode::InputError, format!("While firing hook:\n{e}"))),
            FireOutcome::Unavailable(e) => Err(ApiError::new(
                ErrorCode::ServiceUnavailable,
                format!("Task `{task_id}` could not be made, so nothing was created; try again later.\n{e}"),
            )),
            FireOutcome::QueueFailed(e) if e.is_retryable() => Err(ApiError::new(
                ErrorCode::ServiceUnavailable,
                format!(
                    "The Queue did not create task `{task_id}`, so nothing was created; try again later. \
                     A retry with `\"taskId\": \"{task_id}\"` in the payload cannot create a second task.\n{e}"
                ),
            )),
            FireOutcome::QueueFailed(QueueError::Api { code, message, .. }) if code == "InsufficientScopes" => Err(ApiError::new(
                ErrorCode::InsufficientScopes,
                format!("The role `{}` does not have sufficient scopes to create the task:\n{message}", crate::fire::role_of(d)),
            )),
            FireOutcome::QueueFailed(QueueError::Api { code, message, .. }) => {
                Err(ApiError::new(ErrorCode::InputError, format!("While calling `createTask`: `{code}`\n{message}")))
            }
            FireOutcome::QueueFailed(QueueError::Transport(e)) => Err(ApiError::new(ErrorCode::InputError, format!("While firing hook:\n{e}"))),
        }
    }
}

pub(super) fn client_id_of(caller: &Caller) -> Option<String> {
    caller.client_id.clone().filter(|c| !c.is_empty())
}

/// A truthy `payload.taskId` becomes the task's id, if it is a valid slugid (SPEC §5.10).
pub(super) fn payload_task_id(payload: &Value) -> Result<Option<String>, ApiError> {
    match payload.get("taskId") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if is_slugid(s) => Ok(Some(s.clone())),
        Some(other) => Err(ApiError::new(ErrorCode::InputError, format!("Invalid taskId format: {other}"))),
    }
}
