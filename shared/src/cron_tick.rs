//! A tick's part for cron projects, before it fires what is due: for each project, once,
//! read the branch tip and `.cron.yml` at that revision, and bring the project's managed
//! hooks in line with the file (`crate::cron_hooks::sync`). A project whose repository
//! does not answer, or whose file is not valid, keeps its hooks as they were and records
//! why on its status (`cronstatus/<project>`); the other projects are unaffected.

use crate::cron_decision::Push;
use crate::cron_hooks::{self, SyncReport};
use crate::cron_project::CronProjects;
use crate::ids::HookGroupId;
use crate::layout;
use crate::remote_queue::HttpClient;
use crate::render::iso_time;
use crate::repository::{self, RepositoryHosts};
use crate::store::{StorageError, Store};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How a project's last sync went, as `GET /cron-projects/<project>` shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectStatus {
    pub time: String,
    /// The revision `.cron.yml` was read at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The jobs the file declares.
    pub jobs: Vec<String>,
    /// Why the file could not be read or used; the hooks stay as they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The project's `lastModified` and `cron_hooks::DEFINITIONS` when its hooks were
    /// last brought in line: while they and the revision stay the same, the hooks are
    /// still in line, and the file is not read again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_modified: Option<String>,
    #[serde(default)]
    pub definitions: u32,
}

impl ProjectStatus {
    fn in_line_with(&self, project: &crate::cron_project::CronProject, revision: &str) -> bool {
        self.error.is_none()
            && self.revision.as_deref() == Some(revision)
            && self.project_modified.as_deref() == Some(project.last_modified.as_str())
            && self.definitions == cron_hooks::DEFINITIONS
    }
}

pub fn status(kv: &dyn crate::platform::KeyValue, project: &str) -> Result<Option<ProjectStatus>, StorageError> {
    crate::cas::read_json_opt(kv, &layout::cron_status(project))
}

/// What the sync of all projects did; the tips read, for the fires that follow.
#[derive(Debug, Default)]
pub struct TickSync {
    pub synced: Vec<(String, SyncReport)>,
    pub failed: Vec<(String, String)>,
    pub tips: Vec<(String, Push)>,
}

pub fn sync_projects(store: &Store<'_>, http: &dyn HttpClient, hosts: &RepositoryHosts, now: DateTime<Utc>) -> Result<TickSync, StorageError> {
    let projects = CronProjects { kv: store.kv, sleep: &|_| {} }.list()?;
    let mut out = TickSync::default();
    if projects.is_empty() {
        return Ok(out);
    }
    let group = HookGroupId::new(cron_hooks::GROUP).expect("a valid group");
    // The group's hookIds, read once, and only if some project's hooks need changing.
    let mut existing: Option<Vec<String>> = None;
    for project in projects {
        let r = &project.repository;
        let previous = status(store.kv, &project.project)?;
        let tip = repository::parse_url(&r.url, r.kind, hosts).and_then(|url| Ok((repository::tip(http, &url, r.kind, &r.branch, hosts)?, url)));
        let mut status = ProjectStatus { time: iso_time(now), project_modified: Some(project.last_modified.clone()), definitions: cron_hooks::DEFINITIONS, ..Default::default() };
        match tip {
            Err(e) => status.error = Some(e),
            // The revision the hooks were made from: a file at a revision never changes.
            Ok((push, _)) if previous.as_ref().is_some_and(|p| p.in_line_with(&project, push.revision())) => {
                status.revision = Some(push.revision().to_string());
                status.jobs = previous.map(|p| p.jobs).unwrap_or_default();
                out.synced.push((project.project.clone(), SyncReport::default()));
                out.tips.push((project.project.clone(), push));
            }
            Ok((push, url)) => {
                status.revision = Some(push.revision().to_string());
                // No `.cron.yml`: no jobs, as build-decision reads a 404.
                let parsed = repository::file(http, &url, r.kind, push.revision(), ".cron.yml")
                    .map_err(String::from)
                    .and_then(|text| crate::cron_yml::parse(text.as_deref().unwrap_or("jobs: []"), &project.project).map_err(|e| e.to_string()));
                match parsed {
                    Err(e) => status.error = Some(e),
                    Ok(jobs) => {
                        status.jobs = jobs.keys().cloned().collect();
                        let ids = match &existing {
                            Some(ids) => ids,
                            None => existing.insert(store.hook_ids(&group)?),
                        };
                        let report = cron_hooks::sync(store, &project, &jobs, ids, now)?;
                        out.synced.push((project.project.clone(), report));
                        out.tips.push((project.project.clone(), push));
                    }
                }
            }
        }
        if let Some(e) = &status.error {
            out.failed.push((project.project.clone(), e.clone()));
        }
        store.kv.set(&layout::cron_status(&project.project), &serde_json::to_vec(&status).expect("serialises"))?;
    }
    Ok(out)
}

/// What a whole tick did: the cron projects' sync, then the fires.
#[derive(Debug, Default)]
pub struct Tick {
    pub sync: TickSync,
    pub fires: crate::scheduler::TickReport,
}

/// One tick of the timer (and of `POST /api/taskhooks/v1/tick`): every cron project's
/// `.cron.yml` read once and its hooks brought in line, then every hook that came due
/// fired, the jobs' tasks made from the revisions just read. A project that could not be
/// read is reported as a failure of its own (hookId `<project>` in group `cron`) when it
/// has an owner; its jobs' fires are reported as any hook's.
pub fn run(store: &Store<'_>, queue: &dyn crate::fire::TaskQueue, http: &dyn HttpClient, hosts: &RepositoryHosts, root_url: &str, now: DateTime<Utc>) -> Result<Tick, StorageError> {
    let started = std::time::Instant::now();
    let tick = run_tick(store, queue, http, hosts, root_url, now);
    match &tick {
        Ok(t) => {
            let f = &t.fires;
            let items = [("due", f.due), ("fired", f.fired), ("declined", f.declined), ("failed", f.failed), ("retrying", f.retrying), ("projects", t.sync.synced.len()), ("projectsFailed", t.sync.failed.len())];
            crate::metrics::run(store.kv, "timer", true, started.elapsed(), &items);
        }
        Err(_) => crate::metrics::run(store.kv, "timer", false, started.elapsed(), &[]),
    }
    tick
}

fn run_tick(store: &Store<'_>, queue: &dyn crate::fire::TaskQueue, http: &dyn HttpClient, hosts: &RepositoryHosts, root_url: &str, now: DateTime<Utc>) -> Result<Tick, StorageError> {
    let sync = sync_projects(store, http, hosts, now)?;
    let source = crate::cron_source::CronSource::new(store.kv, http, hosts, root_url);
    for (project, push) in &sync.tips {
        source.knows_tip(project, push.clone());
    }
    let mut fires = crate::scheduler::tick_with(store, queue, Some(&source), now)?;
    for (project, error) in &sync.failed {
        let Some(owner) = CronProjects { kv: store.kv, sleep: &|_| {} }.get(project)?.and_then(|p| p.owner) else { continue };
        fires.to_report.push(crate::notify::FailureReport {
            hook_group_id: cron_hooks::GROUP.into(),
            hook_id: project.clone(),
            owner,
            fired_by: crate::render::FiredBy::Schedule,
            task_id: String::new(),
            time: now,
            error: format!("cron project `{project}`: {error}"),
        });
    }
    Ok(Tick { sync, fires })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cron_project::CronProjectRequest;
    use serde_json::{json, Value};
    use std::cell::RefCell;
    use std::time::Duration;

    /// GitHub with one repository whose `.cron.yml` the test changes.
    struct GitHub {
        cron_yml: RefCell<Option<&'static str>>,
        up: RefCell<bool>,
    }

    impl HttpClient for GitHub {
        fn send(&self, _m: &str, url: &str, _h: &[(String, String)], _b: &[u8]) -> Result<(u16, Vec<u8>), String> {
            if !*self.up.borrow() {
                return Err("connection refused".into());
            }
            // A revision per content, as a real repository has: a changed file is a new tip.
            let sha = {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                self.cron_yml.borrow().hash(&mut h);
                format!("{:016x}", h.finish())
            };
            if url == "https://api.github.com/repos/org/repo/git/ref/heads/main" {
                return Ok((200, format!(r#"{{"object": {{"sha": "{sha}"}}}}"#).into_bytes()));
            }
            if url == format!("https://github.com/org/repo/raw/{sha}/.taskcluster.yml") {
                let tc = r#"{"version": 1, "tasks": [{"taskId": {"$eval": "ownTaskId"}, "taskQueueId": "proj-${repository.level}/decision",
                    "schedulerId": "-", "created": {"$fromNow": ""}, "deadline": {"$fromNow": "1 day"},
                    "metadata": {"name": "${cron.job_name}", "description": "", "owner": "cron@example.com", "source": "${repository.url}"},
                    "payload": {"args": "${cron.quoted_args}", "revision": "${push.revision}"}}]}"#;
                return Ok((200, tc.as_bytes().to_vec()));
            }
            if url == format!("https://github.com/org/repo/raw/{sha}/.cron.yml") {
                return Ok(match *self.cron_yml.borrow() {
                    Some(text) => (200, text.as_bytes().to_vec()),
                    None => (404, vec![]),
                });
            }
            Ok((404, vec![]))
        }
        fn sleep(&self, _: Duration) {}
    }

    #[test]
    fn each_tick_brings_the_hooks_in_line_with_the_file_and_failures_stay_local() {
        let fixture = crate::store::Fixture::new();
        let (kv, store) = (&fixture.kv, fixture.store());
        let hosts = RepositoryHosts::default();
        let projects = CronProjects { kv, sleep: &|_| {} };
        for (name, url) in [("fenix", "https://github.com/org/repo"), ("elsewhere", "https://github.com/org/gone")] {
            let req: CronProjectRequest = serde_json::from_value(json!({"repository": {"url": url, "type": "git", "level": "3"}})).unwrap();
            projects.put(&req.check(name, &hosts, "t").unwrap()).unwrap();
        }
        let gh = GitHub { cron_yml: RefCell::new(Some("jobs: [{name: nightly, job: {type: decision-task, treeherder-symbol: N, target-tasks-method: n}, when: [{hour: 5}]}]")), up: RefCell::new(true) };
        let now: DateTime<Utc> = "2026-12-01T04:00:00Z".parse().unwrap();
        let sync = sync_projects(&store, &gh, &hosts, now).unwrap();
        assert_eq!(sync.synced.len(), 1);
        assert_eq!(sync.synced[0].1.created, ["fenix/nightly"]);
        assert_eq!(sync.failed.len(), 1, "the repository without a branch fails alone: {:?}", sync.failed);
        assert!(status(kv, "elsewhere").unwrap().unwrap().error.unwrap().contains("no branch main"));
        assert_eq!(status(kv, "fenix").unwrap().unwrap().jobs, ["nightly"]);
        // The file changes at the next tick: a job added, the first removed.
        *gh.cron_yml.borrow_mut() = Some("jobs: [{name: weekly, job: {type: decision-task, treeherder-symbol: W, target-tasks-method: w}, when: [{weekday: Monday, hour: 0, minute: 0}]}]");
        let sync = sync_projects(&store, &gh, &hosts, now).unwrap();
        assert_eq!((sync.synced[0].1.created.clone(), sync.synced[0].1.removed.clone()), (vec!["fenix/weekly".to_string()], vec!["fenix/nightly".to_string()]));
        // An invalid file, or the host down: the hooks stay as they were, the status says why.
        *gh.cron_yml.borrow_mut() = Some("jobs: [{name: broken}]");
        assert_eq!(sync_projects(&store, &gh, &hosts, now).unwrap().failed.len(), 2);
        assert!(status(kv, "fenix").unwrap().unwrap().error.unwrap().contains("schema"));
        *gh.up.borrow_mut() = false;
        sync_projects(&store, &gh, &hosts, now).unwrap();
        assert!(status(kv, "fenix").unwrap().unwrap().error.unwrap().contains("connection refused"));
        let group = HookGroupId::new("cron").unwrap();
        assert_eq!(store.hook_ids(&group).unwrap(), ["fenix/weekly"], "kept through both failures");
        // No .cron.yml at all: no jobs, as build-decision reads a 404.
        *gh.up.borrow_mut() = true;
        *gh.cron_yml.borrow_mut() = None;
        sync_projects(&store, &gh, &hosts, now).unwrap();
        assert!(store.hook_ids(&group).unwrap().is_empty());
    }

    #[test]
    fn a_simulated_day_of_ticks_fires_exactly_the_jobs_the_rules_select_once_per_slot() {
        let fixture = crate::store::Fixture::new();
        let (kv, store) = (&fixture.kv, fixture.store());
        let hosts = RepositoryHosts::default();
        let req: CronProjectRequest = serde_json::from_value(json!({"repository": {"url": "https://github.com/org/repo", "type": "git", "level": "3"}})).unwrap();
        CronProjects { kv, sleep: &|_| {} }.put(&req.check("fenix", &hosts, "t").unwrap()).unwrap();
        let gh = GitHub {
            cron_yml: RefCell::new(Some(
                "jobs:
  - {name: nightly, job: {type: decision-task, treeherder-symbol: N, target-tasks-method: nightly}, when: [{hour: 5, minute: 0}, {hour: 17, minute: 0}]}
  - {name: quarter, job: {type: decision-task, treeherder-symbol: Q, target-tasks-method: q}, when: [{minute: 15}]}
  - {name: tuesday, job: {type: decision-task, treeherder-symbol: T, target-tasks-method: t}, when: [{weekday: Tuesday, hour: 9, minute: 45}]}
  - {name: by-hand, job: {type: decision-task, treeherder-symbol: H, target-tasks-method: h}, when: []}",
            )),
            up: RefCell::new(true),
        };
        let roles = crate::scopes::Roles::new(vec![crate::scopes::Role {
            role_id: "repo:github.com/org/repo:cron:*".into(),
            scopes: vec!["queue:create-task:highest:proj-3/decision".into(), "queue:create-task:project:none".into(), "queue:scheduler-id:-".into()],
        }]);
        let queue = crate::fire::EmbeddedTaskQueue { queue: crate::embedded_queue::EmbeddedQueue { kv }, roles: &roles };
        // 2026-12-01 is a Tuesday; a tick every 15 minutes, each run twice (an overlap).
        let start: DateTime<Utc> = "2026-12-01T00:00:00Z".parse().unwrap();
        let sync = sync_projects(&store, &gh, &hosts, start - chrono::Duration::minutes(15)).unwrap();
        assert_eq!(sync.synced[0].1.created.len(), 4);
        let mut fired = 0;
        for i in 0..96 {
            let at = start + chrono::Duration::minutes(15 * i) + chrono::Duration::seconds(20);
            for _ in 0..2 {
                fired += run(&store, &queue, &gh, &hosts, "https://tc.example.com", at).unwrap().fires.fired;
            }
        }
        let tasks = kv.keys_with_prefix("task/");
        // nightly twice, quarter 24 times, tuesday once; the overlapping second ticks found
        // nothing due (or re-found it and the Queue's answer counted it as created).
        assert_eq!(tasks.len(), 2 + 24 + 1, "{tasks:?}");
        assert!(fired >= 27);
        let q = crate::embedded_queue::EmbeddedQueue { kv };
        let names: Vec<String> = tasks.iter().map(|k| q.task(&k[5..]).unwrap().unwrap()["metadata"]["name"].as_str().unwrap().to_string()).collect();
        assert_eq!(names.iter().filter(|n| *n == "nightly").count(), 2);
        assert_eq!(names.iter().filter(|n| *n == "tuesday").count(), 1);
        assert_eq!(names.iter().filter(|n| *n == "by-hand").count(), 0, "when: [] never fires by itself");
        // Each task under its slot's id.
        let slot = "2026-12-01T05:00:00Z".parse().unwrap();
        assert!(q.task(&crate::cron_decision::decision_task_id("fenix", "nightly", slot)).unwrap().is_some());
    }

    #[test]
    fn a_repository_outage_at_a_jobs_slot_is_a_retry_not_a_loss() {
        let fixture = crate::store::Fixture::new();
        let (kv, store) = (&fixture.kv, fixture.store());
        let hosts = RepositoryHosts::default();
        let req: CronProjectRequest =
            serde_json::from_value(json!({"repository": {"url": "https://github.com/org/repo", "type": "git", "level": "3"}, "owner": "releng@example.com"})).unwrap();
        CronProjects { kv, sleep: &|_| {} }.put(&req.check("fenix", &hosts, "t").unwrap()).unwrap();
        let gh = GitHub { cron_yml: RefCell::new(Some("jobs: [{name: nightly, job: {type: decision-task, treeherder-symbol: N, target-tasks-method: n}, when: [{hour: 5, minute: 0}]}]")), up: RefCell::new(true) };
        let roles = crate::scopes::Roles::new(vec![crate::scopes::Role { role_id: "repo:github.com/org/repo:cron:*".into(), scopes: vec!["queue:*".into()] }]);
        let queue = crate::fire::EmbeddedTaskQueue { queue: crate::embedded_queue::EmbeddedQueue { kv }, roles: &roles };
        let at = |t: &str| -> DateTime<Utc> { t.parse().unwrap() };
        run(&store, &queue, &gh, &hosts, "https://tc.example.com", at("2026-12-01T04:45:10Z")).unwrap();
        // Down at the job's slot: the project's failure is reported (it has an owner), the
        // job stays due.
        *gh.up.borrow_mut() = false;
        let down = run(&store, &queue, &gh, &hosts, "https://tc.example.com", at("2026-12-01T05:00:10Z")).unwrap();
        assert_eq!((down.fires.due, down.fires.retrying, down.fires.fired), (1, 1, 0));
        assert_eq!(down.fires.to_report.len(), 1, "{:?}", down.fires.to_report);
        assert_eq!((down.fires.to_report[0].hook_id.as_str(), down.fires.to_report[0].owner.as_str()), ("fenix", "releng@example.com"));
        assert!(kv.keys_with_prefix("task/").is_empty());
        // Back at the next tick: the 05:00 task is created, under the 05:00 slot's id.
        *gh.up.borrow_mut() = true;
        let back = run(&store, &queue, &gh, &hosts, "https://tc.example.com", at("2026-12-01T05:15:10Z")).unwrap();
        assert_eq!((back.fires.fired, back.fires.retrying), (1, 0));
        let id = crate::cron_decision::decision_task_id("fenix", "nightly", at("2026-12-01T05:00:00Z"));
        assert_eq!(kv.keys_with_prefix("task/"), [format!("task/{id}")]);
        let group = HookGroupId::new("cron").unwrap();
        let hook = store.hook(&group, &crate::ids::HookId::new("fenix/nightly").unwrap()).unwrap().unwrap();
        assert_eq!(hook.next_scheduled_date, "2026-12-02T05:00:00.000Z");
        assert!(hook.definition.metadata.email_on_error, "a project with an owner: its jobs' failures are reported");
    }

    #[test]
    fn an_unchanged_revision_is_not_read_again_unless_the_project_changed() {
        let fixture = crate::store::Fixture::new();
        let (kv, store) = (&fixture.kv, fixture.store());
        let hosts = RepositoryHosts::default();
        let projects = CronProjects { kv, sleep: &|_| {} };
        let put = |bindings: Value, modified: &str| {
            let req: CronProjectRequest = serde_json::from_value(json!({"repository": {"url": "https://github.com/org/repo", "type": "git", "level": "3"}, "bindings": bindings})).unwrap();
            projects.put(&req.check("fenix", &hosts, modified).unwrap()).unwrap();
        };
        put(json!({}), "2026-12-01T00:00:00.000Z");
        /// Counts the reads of `.cron.yml`.
        struct Counting(GitHub, RefCell<usize>);
        impl HttpClient for Counting {
            fn send(&self, m: &str, url: &str, h: &[(String, String)], b: &[u8]) -> Result<(u16, Vec<u8>), String> {
                *self.1.borrow_mut() += usize::from(url.ends_with("/.cron.yml"));
                self.0.send(m, url, h, b)
            }
            fn sleep(&self, _: Duration) {}
        }
        let gh = Counting(GitHub { cron_yml: RefCell::new(Some("jobs: [{name: nightly, job: {type: decision-task, treeherder-symbol: N, target-tasks-method: n}, when: []}]")), up: RefCell::new(true) }, RefCell::new(0));
        let now: DateTime<Utc> = "2026-12-01T04:00:00Z".parse().unwrap();
        for _ in 0..3 {
            sync_projects(&store, &gh, &hosts, now).unwrap();
        }
        assert_eq!(*gh.1.borrow(), 1, "one revision, read once");
        // The project changed (a binding for the job): read again, the hook updated.
        put(json!({"nightly": [{"exchange": "exchange/x", "routingKeyPattern": "#"}]}), "2026-12-01T04:05:00.000Z");
        let sync = sync_projects(&store, &gh, &hosts, now).unwrap();
        assert_eq!((*gh.1.borrow(), sync.synced[0].1.updated.clone()), (2, vec!["fenix/nightly".to_string()]));
        let group = HookGroupId::new("cron").unwrap();
        assert_eq!(store.hook(&group, &crate::ids::HookId::new("fenix/nightly").unwrap()).unwrap().unwrap().definition.bindings.len(), 1);
    }
}
