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
    fn cron_projects(&self) -> CronProjects<'_> {
        CronProjects { kv: self.kv, sleep: &|_| {} }
    }

    pub(super) fn cron_project_method(&self, call: &Call) -> Result<Value, ApiError> {
        let project = call.param("project");
        let no_project = || ApiError::new(ErrorCode::ResourceNotFound, format!("cron project `{project}` not found"));
        match call.endpoint.name {
            "x-listCronProjects" => Ok(json!({"cronProjects": self.cron_projects().list()?.iter().map(to_json).collect::<Vec<_>>()})),
            "x-getCronProject" => {
                let mut answer = to_json(&self.cron_projects().get(project)?.ok_or_else(no_project)?);
                if let Some(status) = crate::cron_tick::status(self.kv, project)? {
                    answer["status"] = serde_json::to_value(status).expect("serialises");
                }
                Ok(answer)
            }
            "x-putCronProject" => {
                let req: CronProjectRequest = serde_json::from_value(call.payload.clone())
                    .map_err(|e| ApiError::new(ErrorCode::InputValidationError, format!("a cron project is {{\"repository\": {{\"url\", \"type\", \"branch\"?, \"level\"}}, \"bindings\"?}}: {e}")))?;
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
            "x-deleteCronProject" => {
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
            other => Err(ApiError::new(ErrorCode::InternalServerError, format!("method {other} has no handler"))),
        }
    }
}
