//! The task of a cron project's job: what build-decision's cron task would create for it.
//! The branch tip and `.taskcluster.yml` at that revision are read from the repository
//! once per project per run (a tick firing several jobs of one project reads them once),
//! then rendered with build-decision's cron context (`crate::cron_decision`).

use crate::cron_decision::{self, Push, RepositoryInfo};
use crate::cron_hooks::managed;
use crate::cron_project::{CronProject, CronProjects};
use crate::cron_yml::{Job, JobKind};
use crate::fire::{SourceError, TaskSource};
use crate::model::HookRecord;
use crate::platform::KeyValue;
use crate::remote_queue::HttpClient;
use crate::render::{FireContext, FiredBy};
use crate::repository::{self, RepositoryHosts};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::rc::Rc;
use std::collections::BTreeMap;

/// What one run read of a project's repository.
#[derive(Clone)]
struct Checkout {
    push: Push,
    /// Parsed once for all of the project's jobs this run renders.
    taskcluster_yml: Rc<json_e::Template>,
}

pub struct CronSource<'a> {
    pub kv: &'a dyn KeyValue,
    pub http: &'a dyn HttpClient,
    pub hosts: &'a RepositoryHosts,
    /// `taskcluster_root_url` of the context: the deployment the tasks go to.
    pub root_url: &'a str,
    checkouts: RefCell<BTreeMap<String, Result<Checkout, SourceError>>>,
    tips: RefCell<BTreeMap<String, Push>>,
}

impl<'a> CronSource<'a> {
    pub fn new(kv: &'a dyn KeyValue, http: &'a dyn HttpClient, hosts: &'a RepositoryHosts, root_url: &'a str) -> Self {
        CronSource { kv, http, hosts, root_url, checkouts: RefCell::default(), tips: RefCell::default() }
    }

    /// The tip this run already read for `project` (the tick's sync of `.cron.yml`), so
    /// the job's task is made from the same revision without asking again.
    pub fn knows_tip(&self, project: &str, push: Push) {
        self.tips.borrow_mut().insert(project.to_string(), push);
    }

    fn checkout(&self, project: &CronProject) -> Result<Checkout, SourceError> {
        if let Some(done) = self.checkouts.borrow().get(&project.project) {
            return done.clone();
        }
        let read = || -> Result<Checkout, SourceError> {
            let r = &project.repository;
            let url = repository::parse_url(&r.url, r.kind, self.hosts)?;
            let known = self.tips.borrow().get(&project.project).cloned();
            let push = match known {
                Some(push) => push,
                None => repository::tip(self.http, &url, r.kind, &r.branch, self.hosts).map_err(read_error)?,
            };
            let text = repository::file(self.http, &url, r.kind, push.revision(), ".taskcluster.yml")
                .map_err(read_error)?
                .ok_or_else(|| format!("{} has no .taskcluster.yml at {}", r.url, push.revision()))?;
            let taskcluster_yml: Value = serde_norway::from_str(&text).map_err(|e| format!(".taskcluster.yml at {} is not valid YAML: {e}", push.revision()))?;
            Ok(Checkout { push, taskcluster_yml: Rc::new(json_e::Template::new(&taskcluster_yml)) })
        };
        let result = read();
        self.checkouts.borrow_mut().insert(project.project.clone(), result.clone());
        result
    }
}

impl TaskSource for CronSource<'_> {
    fn task(&self, hook: &HookRecord, ctx: &FireContext, task_id: &str, now: DateTime<Utc>) -> Option<Result<Option<Map<String, Value>>, SourceError>> {
        let job = managed(&hook.definition)?;
        Some((|| {
            if let Some(error) = &job.error {
                return Err(error.clone().into());
            }
            let project = CronProjects { kv: self.kv, sleep: &|_| {} }
                .get(&job.project)
                .map_err(|e| SourceError::Unavailable(e.to_string()))?
                .ok_or_else(|| format!("cron project `{}` no longer exists", job.project))?;
            let definition: Job = serde_json::from_value(job.definition.clone()).map_err(|e| format!("the job as recorded does not read: {e}"))?;
            let JobKind::DecisionTask(decision) = &definition.job else {
                return Err(SourceError::Failed("`trigger-action` jobs are not run by taskhooks (see the README's Cron projects)".into()));
            };
            let checkout = self.checkout(&project)?;
            let r = &project.repository;
            let repo = RepositoryInfo { url: r.url.clone(), project: project.project.clone(), level: r.level.clone(), kind: r.kind.as_str().into() };
            // A trigger's payload is the job's input (build-decision's HOOK_PAYLOAD).
            let input = ctx.payload.as_ref().filter(|_| ctx.fired_by != FiredBy::Schedule);
            let context = cron_decision::context(self.root_url, &repo, &checkout.push, &definition.name, decision, task_id, input);
            let (rendered_id, task) = cron_decision::render(&checkout.taskcluster_yml, &context, now)?;
            if rendered_id != task_id {
                return Err(SourceError::Failed(format!("the task's taskId must be `ownTaskId` ({task_id}), not {rendered_id}: taskhooks creates each job's task once per slot under that id")));
            }
            Ok(Some(task))
        })())
    }
}

/// A host that did not answer is worth another try; an answer that cannot be used is not.
fn read_error(e: repository::ReadError) -> SourceError {
    match e {
        repository::ReadError::Unavailable(e) => SourceError::Unavailable(e),
        repository::ReadError::Refused(e) => SourceError::Failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cron_project::CronProjectRequest;
    use crate::ids::{HookGroupId, HookId};
    use serde_json::json;
    use std::time::Duration;

    /// An hg host answering by URL, counting requests.
    struct Hg(RefCell<Vec<String>>);

    const TC_YML: &str = r#"
version: 1
tasks:
  - $if: 'tasks_for == "cron"'
    then:
      taskId: {$eval: ownTaskId}
      taskQueueId: "gecko-${repository.level}/decision"
      schedulerId: "-"
      created: {$fromNow: ''}
      deadline: {$fromNow: '1 day'}
      metadata:
        name: "Decision Task for cron job ${cron.job_name}"
        description: ""
        owner: "cron@noreply.mozilla.org"
        source: "${repository.url}/raw-file/${push.revision}/.taskcluster.yml"
      payload:
        command: "./mach taskgraph decision --pushlog-id='${push.pushlog_id}' ${cron.quoted_args}"
        input: {$eval: cron.input}
"#;

    impl HttpClient for Hg {
        fn send(&self, _m: &str, url: &str, _h: &[(String, String)], _b: &[u8]) -> Result<(u16, Vec<u8>), String> {
            self.0.borrow_mut().push(url.to_string());
            let pushes = r#"{"pushes": {"7": {"date": 1700000000, "changesets": [{"node": "aaaaaaaaaaaa", "parents": ["bbbbbbbbbbbb"]}]}}}"#;
            match url {
                "https://hg.mozilla.org/mozilla-central/json-pushes?version=2&changeset=default&full=1" => Ok((200, pushes.into())),
                "https://hg.mozilla.org/mozilla-central/raw-file/aaaaaaaaaaaa/.taskcluster.yml" => Ok((200, TC_YML.into())),
                _ => Ok((404, vec![])),
            }
        }
        fn sleep(&self, _: Duration) {}
    }

    #[test]
    fn a_jobs_task_is_its_repositorys_decision_task_read_once_per_run() {
        let fixture = crate::store::Fixture::new();
        let (kv, store) = (&fixture.kv, fixture.store());
        let hosts = RepositoryHosts::default();
        let req: CronProjectRequest = serde_json::from_value(json!({"repository": {"url": "https://hg.mozilla.org/mozilla-central", "type": "hg", "level": "3"}})).unwrap();
        let project = req.check("mozilla-central", &hosts, "t").unwrap();
        let projects = CronProjects { kv, sleep: &|_| {} };
        projects.put(&project).unwrap();
        let yml = "jobs:
  - {name: nightly, job: {type: decision-task, treeherder-symbol: N, target-tasks-method: nightly, include-cron-input: true}, when: [{hour: 5, minute: 0}]}
  - {name: merge, job: {type: trigger-action, action-name: merge}, when: []}";
        let jobs = crate::cron_yml::parse(yml, "mozilla-central").unwrap();
        crate::cron_hooks::sync(&store, &project, &jobs, &[], Utc::now()).unwrap();
        let group = HookGroupId::new("cron").unwrap();
        let nightly = store.hook(&group, &HookId::new("mozilla-central/nightly").unwrap()).unwrap().unwrap();
        let merge = store.hook(&group, &HookId::new("mozilla-central/merge").unwrap()).unwrap().unwrap();
        let http = Hg(RefCell::default());
        let source = CronSource::new(kv, &http, &hosts, "https://tc.example.com");
        let slot: DateTime<Utc> = "2026-12-01T05:00:00Z".parse().unwrap();
        let id = cron_decision::decision_task_id("mozilla-central", "nightly", slot);
        let scheduled = FireContext { fired_by: FiredBy::Schedule, payload: None, client_id: None };
        let task = source.task(&nightly, &scheduled, &id, slot).unwrap().unwrap().unwrap();
        assert_eq!(task["taskQueueId"], "gecko-3/decision");
        assert_eq!(task["payload"]["command"], "./mach taskgraph decision --pushlog-id='7' --target-tasks-method=nightly");
        assert_eq!(task["created"], "2026-12-01T05:00:00.000Z");
        // By hand, with a payload: it is the job's input. The repository is not read again.
        let by_hand = FireContext { fired_by: FiredBy::TriggerHook, payload: Some(json!({"version": "148.0"})), client_id: None };
        let task = source.task(&nightly, &by_hand, "fN1SmgV0T8WXX3LhKs2Gyw", slot).unwrap().unwrap().unwrap();
        assert_eq!(task["payload"]["input"], json!({"version": "148.0"}));
        assert_eq!(http.0.borrow().len(), 2, "the tip and .taskcluster.yml, once for the run");
        // trigger-action is refused with a reason; a plain hook is not this source's.
        assert!(matches!(source.task(&merge, &scheduled, &id, slot).unwrap(), Err(SourceError::Failed(e)) if e.contains("trigger-action")));
        let plain = HookRecord { definition: crate::model::HookDefinition { hook_group_id: "g".into(), ..nightly.definition.clone() }, ..nightly.clone() };
        assert!(source.task(&plain, &scheduled, &id, slot).is_none());
        // Fired through the pipeline: created with the job's own role, repo:<path>:cron:<job>.
        let roles = crate::scopes::Roles::new(vec![crate::scopes::Role {
            role_id: "repo:hg.mozilla.org/mozilla-central:cron:nightly".into(),
            scopes: vec!["queue:create-task:highest:gecko-3/decision".into(), "queue:create-task:project:none".into(), "queue:scheduler-id:-".into()],
        }]);
        let queue = crate::fire::EmbeddedTaskQueue { queue: crate::embedded_queue::EmbeddedQueue { kv }, roles: &roles };
        let options = crate::fire::FireOptions { conflict_means_created: true, scheduled_for: Some(slot), source: Some(&source), ..Default::default() };
        let fired = crate::fire::fire(&store, &queue, &nightly, &scheduled, &id, slot + chrono::Duration::minutes(3), options).unwrap();
        assert_eq!(fired, crate::fire::FireOutcome::Created { task_id: id.clone() });
        let stored = crate::embedded_queue::EmbeddedQueue { kv }.task(&id).unwrap().unwrap();
        assert_eq!(stored["created"], "2026-12-01T05:03:00.000Z", "created is the attempt, as for any scheduled fire");
        // Without the role's scopes it fails alone, naming what is missing.
        let none = crate::scopes::Roles::new(vec![]);
        let bare = crate::fire::EmbeddedTaskQueue { queue: crate::embedded_queue::EmbeddedQueue { kv }, roles: &none };
        let other = cron_decision::decision_task_id("mozilla-central", "nightly", slot + chrono::Duration::hours(1));
        let refused = crate::fire::fire(&store, &bare, &nightly, &scheduled, &other, slot, options).unwrap();
        assert!(matches!(&refused, crate::fire::FireOutcome::QueueFailed(crate::fire::QueueError::Api { code, .. }) if code == "InsufficientScopes"), "{refused:?}");
        // A project removed since: the job's fire says so.
        projects.delete("mozilla-central").unwrap();
        let fresh = CronSource::new(kv, &http, &hosts, "https://tc.example.com");
        assert!(matches!(fresh.task(&nightly, &scheduled, &id, slot).unwrap(), Err(SourceError::Failed(e)) if e.contains("no longer exists")));
    }
}
