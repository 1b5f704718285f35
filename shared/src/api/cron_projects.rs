//! `/api/taskhooks/v1/cron-projects/<project>`: register a repository whose `.cron.yml`
//! the service runs (see `crate::cron_project`).
//!
//! Creating or changing a project needs `hooks:modify-cron-project:<project>` (the route's
//! scope) and `assume:repo:<repoPath>:cron:*`, checked here because it depends on the
//! body: nobody registers jobs they could not run themselves.

use super::{insufficient_scopes, Call, Service};
use crate::cron_project::{CronProject, CronProjectRequest, CronProjects};
use crate::error::{ApiError, ErrorCode};
use crate::render::iso_time;
use crate::scopes::ScopeExpr;
use crate::store::Claimed;
use serde_json::{json, Value};

fn to_json(p: &CronProject) -> Value {
    serde_json::to_value(p).expect("serialises")
}

impl Service<'_> {
    /// What makes cron projects' jobs' tasks, where outbound HTTP is available.
    pub(crate) fn cron_source(&self) -> Option<crate::cron_source::CronSource<'_>> {
        self.http.map(|http| crate::cron_source::CronSource::new(self.kv, http, &self.config.repository_hosts, self.config.tasks_root_url()))
    }

    fn cron_projects(&self) -> CronProjects<'_> {
        CronProjects { kv: self.kv, sleep: &|_| {} }
    }

    pub(super) fn list_cron_projects(&self) -> Result<Value, ApiError> {
        Ok(json!({"cronProjects": self.cron_projects().list()?.iter().map(to_json).collect::<Vec<_>>()}))
    }

    pub(super) fn get_cron_project(&self, call: &Call) -> Result<Value, ApiError> {
        let project = call.param("project");
        let no_project = || ApiError::new(ErrorCode::ResourceNotFound, format!("cron project `{project}` not found"));
        let mut answer = to_json(&self.cron_projects().get(project)?.ok_or_else(no_project)?);
        if let Some(status) = crate::cron_tick::status(self.kv, project)? {
            answer["status"] = serde_json::to_value(status).expect("serialises");
        }
        Ok(answer)
    }

    pub(super) fn put_cron_project(&self, call: &Call) -> Result<Value, ApiError> {
        let project = call.param("project");
        let req: CronProjectRequest = serde_json::from_value(call.payload.clone())
            .map_err(|e| ApiError::new(ErrorCode::InputValidationError, format!("a cron project is {{\"repository\": {{\"url\", \"type\", \"branch\"?, \"level\"}}, \"bindings\"?, \"owner\"?}}: {e}")))?;
        let record = req
            .check(project, &self.config.repository_hosts, &iso_time(self.clock.now()))
            .map_err(|errors| ApiError::new(ErrorCode::InputError, errors.join("\n")))?;
        let needed = ScopeExpr::Scope(format!("assume:repo:{}:cron:*", record.repository.repo_path));
        if let Some(e) = insufficient_scopes(&call.caller, &needed) {
            return Err(e);
        }
        match self.cron_projects().put(&record)? {
            Claimed::Created => Ok(to_json(&record)),
            Claimed::Exists(changed) => Ok(to_json(&changed)),
        }
    }

    pub(super) fn delete_cron_project(&self, call: &Call) -> Result<Value, ApiError> {
        let project = call.param("project");
        // Its managed hooks go with it (removed as `.cron.yml` losing every job).
        if let Some(record) = self.cron_projects().get(project)? {
            let group = crate::ids::HookGroupId::new(crate::cron_hooks::GROUP).expect("a valid group");
            let existing = self.store().hook_ids(&group)?;
            crate::cron_hooks::sync(&self.store(), &record, &Default::default(), &existing, self.clock.now())?;
        }
        self.cron_projects().delete(project)?;
        self.kv.delete(&crate::layout::cron_status(project))?;
        Ok(json!({}))
    }
}

impl Service<'_> {
    /// Which jobs would run in the slot of `at`, and the task each would create; nothing is
    /// created or recorded (not even the managed hooks).
    pub(super) fn dry_run_cron_project(&self, call: &Call) -> Result<Value, ApiError> {
        let project = call.param("project");
        let record = self.cron_projects().get(project)?.ok_or_else(|| ApiError::new(ErrorCode::ResourceNotFound, format!("cron project `{project}` not found")))?;
        let at = match call.payload.get("at") {
            None => self.clock.now(),
            Some(Value::String(t)) => t.parse().map_err(|_| ApiError::new(ErrorCode::InputValidationError, format!("at must be an RFC 3339 time, got {t:?}")))?,
            Some(other) => return Err(ApiError::new(ErrorCode::InputValidationError, format!("at must be an RFC 3339 time, got {other}"))),
        };
        let http = self.http.ok_or_else(|| ApiError::new(ErrorCode::ServiceUnavailable, "this component cannot read repositories"))?;
        let slot = crate::cron_yml::slot_of(at);
        let hosts = &self.config.repository_hosts;
        // The host down is worth a retry (503); an answer that cannot be used is not (400).
        let unreadable = |e: crate::repository::ReadError| match e {
            crate::repository::ReadError::Unavailable(e) => ApiError::new(ErrorCode::ServiceUnavailable, format!("the repository could not be read: {e}")),
            crate::repository::ReadError::Refused(e) => ApiError::new(ErrorCode::InputError, format!("the repository could not be read: {e}")),
        };
        let r = &record.repository;
        let url = crate::repository::parse_url(&r.url, r.kind, hosts).map_err(|e| ApiError::new(ErrorCode::InputError, e))?;
        let push = crate::repository::tip(http, &url, r.kind, &r.branch, hosts).map_err(unreadable)?;
        let text = crate::repository::file(http, &url, r.kind, push.revision(), ".cron.yml").map_err(unreadable)?;
        let jobs = crate::cron_yml::parse(text.as_deref().unwrap_or("jobs: []"), project).map_err(|e| ApiError::new(ErrorCode::InputError, e.to_string()))?;
        let source = crate::cron_source::CronSource::new(self.kv, http, hosts, self.config.tasks_root_url());
        source.knows_tip(project, push.clone());
        let ctx = crate::render::FireContext { fired_by: crate::render::FiredBy::Schedule, payload: None, client_id: None };
        let mut due = Vec::new();
        for (name, job) in &jobs {
            if !job.due_at(project, slot) {
                continue;
            }
            let hook = crate::model::HookRecord {
                definition: crate::cron_hooks::definition(&record, job),
                trigger_token: String::new(),
                next_task_id: String::new(),
                next_scheduled_date: String::new(),
            };
            let task_id = crate::cron_decision::decision_task_id(project, name, slot);
            let made = crate::fire::TaskSource::task(&source, &hook, &ctx, &task_id, slot).unwrap_or_else(|| Err("not a cron job".to_string().into()));
            due.push(match made {
                Ok(Some(task)) => json!({"job": name, "taskId": task_id, "task": task}),
                Ok(None) => json!({"job": name, "declined": true}),
                Err(error) => json!({"job": name, "error": error.to_string()}),
            });
        }
        Ok(json!({"slot": iso_time(slot), "revision": push.revision(), "jobs": due}))
    }
}

