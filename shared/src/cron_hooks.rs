//! The managed hooks of cron projects: one hook per `.cron.yml` job, `cron/<project>/<job>`
//! (hookGroupId `cron`, hookId `<project>/<job>`), kept in line with the file: created
//! for a new job, changed when the job changes, removed when it goes.
//!
//! A managed hook is an ordinary hook to everything that reads it (status, lastFires,
//! triggers, tokens, the UI). What makes it managed is its `task`, which is not a JSON-e
//! template but a marker, `{"$taskhooksCronJob": {project, job, when, definition, error?}}`:
//! its task is the repository's `.taskcluster.yml`, rendered when it fires. JSON-e has no
//! such operator, so a managed hook can never be rendered as a template by mistake. Its
//! `schedule` shows the job's `when` in cron syntax; its next fire is computed from `when`
//! itself (`cron_yml::next_slot`), because `.cron.yml` requires day and weekday to both
//! match where cron accepts either.

use crate::cron_project::CronProject;
use crate::cron_yml::{next_slot, ProjectJob, Sched};
use crate::ids::{nice_slugid, HookGroupId, HookId};
use crate::model::{Binding, HookDefinition, HookMetadata, HookRecord, FAR_FUTURE};
use crate::render::iso_time;
use crate::store::{Created, StorageError, Store};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The hook group of every managed hook.
pub const GROUP: &str = "cron";
const MARKER: &str = "$taskhooksCronJob";

pub fn hook_id(project: &str, job: &str) -> String {
    format!("{project}/{job}")
}

/// What a managed hook's `task` records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedJob {
    pub project: String,
    pub job: String,
    /// The repository without its scheme: the job's tasks are created with
    /// `assume:repo:<repoPath>:cron:<job>`.
    pub repo_path: String,
    /// The job's `when`, resolved for the project.
    pub when: Vec<Sched>,
    /// The job as `.cron.yml` writes it.
    pub definition: Value,
    /// Why the job cannot run (its `when` does not resolve); its fires record this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The job a hook runs, if it is a managed hook.
pub fn managed(definition: &HookDefinition) -> Option<ManagedJob> {
    if definition.hook_group_id != GROUP || definition.task.len() != 1 {
        return None;
    }
    serde_json::from_value(definition.task.get(MARKER)?.clone()).ok()
}

/// `when` in cron syntax, for people to read (`0 0 5 * * *`); an entry with both a day and
/// a weekday is shown with both, which cron would read as either.
fn schedule_text(when: &[Sched]) -> Vec<String> {
    let field = |v: Option<i64>, any: &str| v.map_or(any.to_string(), |v| v.to_string());
    let mut out: Vec<String> = when
        .iter()
        .map(|s| {
            let weekday = s.weekday.map_or("*".to_string(), |w| format!("{w:?}")[..3].to_uppercase());
            format!("0 {} {} {} * {weekday}", field(s.minute, "*/15"), field(s.hour, "*"), field(s.day, "*"))
        })
        .collect();
    out.dedup();
    out
}

/// The hook `job` of `project` should be.
pub fn definition(project: &CronProject, job: &ProjectJob) -> HookDefinition {
    let name = &job.job.name;
    // A job whose `run-on-projects` leaves this project out never comes due here (it can
    // still be run by hand, as build-decision's `--force-run` runs it).
    let (when, error) = match &job.when {
        Ok(_) if !job.runs_on(&project.project) => (vec![], None),
        Ok(when) => (when.clone(), None),
        Err(e) => (vec![], Some(e.clone())),
    };
    let marker = ManagedJob {
        project: project.project.clone(),
        job: name.clone(),
        repo_path: project.repository.repo_path.clone(),
        when: when.clone(),
        definition: job.raw.clone(),
        error,
    };
    let mut task = serde_json::Map::new();
    task.insert(MARKER.into(), serde_json::to_value(&marker).expect("serialises"));
    HookDefinition {
        hook_group_id: GROUP.into(),
        hook_id: hook_id(&project.project, name),
        metadata: HookMetadata {
            name: format!("{}: {name}", project.project),
            description: format!(
                "The `.cron.yml` job `{name}` of {} (cron project `{}`), managed by taskhooks: change the file, not this hook.",
                project.repository.url, project.project
            ),
            owner: project.owner.clone().unwrap_or_else(|| NO_OWNER.into()),
            email_on_error: project.owner.is_some(),
        },
        task,
        bindings: project
            .bindings
            .get(name)
            .map(|b| b.iter().map(|b| Binding { exchange: b.exchange.clone(), routing_key_pattern: b.routing_key_pattern.clone() }).collect())
            .unwrap_or_default(),
        schedule: schedule_text(&when),
        trigger_schema: json!({"type": "object"}),
    }
}

/// The version of what `definition` makes of a job: bump it when that changes, so every
/// project's hooks are brought in line at the next tick even where the file has not.
pub const DEFINITIONS: u32 = 1;

/// The owner of a project's jobs' hooks when the project names none.
pub const NO_OWNER: &str = "noreply@taskhooks.invalid";

/// A managed hook's next fire after `now`, from its `when`.
pub fn next_date(job: &ManagedJob, now: DateTime<Utc>) -> String {
    next_slot(&job.when, now).map_or_else(|| FAR_FUTURE.to_string(), iso_time)
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncReport {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub removed: Vec<String>,
}

/// The managed hooks of `project` brought in line with `jobs` (the project's `.cron.yml`
/// as read now; empty when the project is removed). `existing`: the hookIds of group
/// `cron` (read once for all projects of a tick).
pub fn sync(store: &Store<'_>, project: &CronProject, jobs: &BTreeMap<String, ProjectJob>, existing: &[String], now: DateTime<Utc>) -> Result<SyncReport, StorageError> {
    let group = HookGroupId::new(GROUP).expect("a valid group");
    let prefix = format!("{}/", project.project);
    let mut report = SyncReport::default();
    // A job new in this slot's file is due in this slot already, as build-decision would
    // run it: its first fire is the first matching slot from the current one on.
    let from = crate::cron_yml::slot_of(now) - chrono::Duration::seconds(1);
    for job in jobs.values() {
        let wanted = definition(project, job);
        let marker = managed(&wanted).expect("a managed definition");
        let Ok(h) = HookId::new(&wanted.hook_id) else { continue };
        let record = HookRecord { next_scheduled_date: next_date(&marker, from), next_task_id: nice_slugid(), trigger_token: nice_slugid(), definition: wanted.clone() };
        match store.hook(&group, &h)? {
            Some(current) if current.definition == wanted => {}
            Some(current) => {
                crate::hook_writes::replace(store, &group, &h, &record, false)?;
                audit(store, &wanted.hook_id, crate::audit::action::UPDATED, Some(&current.definition), Some(&wanted), now)?;
                report.updated.push(wanted.hook_id);
            }
            None => {
                if let Created::Created = crate::hook_writes::create(store, &record)? {
                    audit(store, &wanted.hook_id, crate::audit::action::CREATED, None, Some(&wanted), now)?;
                    report.created.push(wanted.hook_id);
                }
            }
        }
    }
    for hook in existing.iter().filter(|h| h.strip_prefix(&prefix).is_some_and(|job| !jobs.contains_key(job))) {
        let Ok(h) = HookId::new(hook) else { continue };
        // Only hooks this project manages (a hand-made `cron/...` hook from before stays).
        if let Some(current) = store.hook(&group, &h)?.filter(|hook| managed(&hook.definition).is_some_and(|m| m.project == project.project)) {
            crate::hook_writes::remove(store, &group, &h)?;
            audit(store, hook, crate::audit::action::DELETED, Some(&current.definition), None, now)?;
            report.removed.push(hook.clone());
        }
    }
    Ok(report)
}

/// A managed hook's change, in the audit history as the service's own
/// (`crate::audit::SERVICE_CLIENT_ID`).
fn audit(store: &Store<'_>, hook_id: &str, action: &str, before: Option<&HookDefinition>, after: Option<&HookDefinition>, now: DateTime<Utc>) -> Result<(), StorageError> {
    let value = |d: Option<&HookDefinition>| d.map(|d| serde_json::to_value(d).expect("serialises"));
    let entry = crate::audit::Entry {
        client_id: crate::audit::SERVICE_CLIENT_ID.into(),
        action_type: action.into(),
        created: iso_time(now),
        entity_id: format!("{GROUP}/{hook_id}"),
        entity_type: "hook".into(),
        before: value(before),
        after: value(after),
    };
    crate::audit::record(store.kv, &entry, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repository::RepositoryHosts;

    const YML: &str = "
jobs:
    - name: nightly
      job: {type: decision-task, treeherder-symbol: Nd, target-tasks-method: nightly}
      when: [{hour: 5, minute: 0}, {weekday: Friday, day: 13, hour: 0, minute: 0}]
    - name: by-hand
      job: {type: decision-task, treeherder-symbol: H, target-tasks-method: h}
      when: []
";

    fn project() -> CronProject {
        let req: crate::cron_project::CronProjectRequest = serde_json::from_value(json!({
            "repository": {"url": "https://hg.mozilla.org/mozilla-central", "type": "hg", "level": "3"},
            "bindings": {"by-hand": [{"exchange": "exchange/x/v1/y", "routingKeyPattern": "#"}]},
        }))
        .unwrap();
        req.check("mozilla-central", &RepositoryHosts::default(), "t").unwrap()
    }

    #[test]
    fn a_projects_jobs_become_managed_hooks_that_follow_the_file() {
        let fixture = crate::store::Fixture::new();
        let store = fixture.store();
        let now: DateTime<Utc> = "2026-12-01T05:07:00Z".parse().unwrap();
        let group = HookGroupId::new(GROUP).unwrap();
        let ids = |store: &Store<'_>| store.hook_ids(&group).unwrap();
        let jobs = crate::cron_yml::parse(YML, "mozilla-central").unwrap();
        let r = sync(&store, &project(), &jobs, &ids(&store), now).unwrap();
        assert_eq!(r.created, ["mozilla-central/by-hand", "mozilla-central/nightly"]);
        let nightly = store.hook(&group, &HookId::new("mozilla-central/nightly").unwrap()).unwrap().unwrap();
        assert_eq!(nightly.next_scheduled_date, "2026-12-01T05:00:00.000Z", "new in the 05:00 slot's file: due in that slot");
        assert_eq!(nightly.definition.schedule, ["0 0 5 * * *", "0 0 0 13 * FRI"]);
        let m = managed(&nightly.definition).unwrap();
        assert_eq!((m.project.as_str(), m.job.as_str(), m.definition["job"]["treeherder-symbol"].clone()), ("mozilla-central", "nightly", json!("Nd")));
        let by_hand = store.hook(&group, &HookId::new("mozilla-central/by-hand").unwrap()).unwrap().unwrap();
        assert_eq!(by_hand.next_scheduled_date, FAR_FUTURE, "when: [] is never scheduled");
        let beta_only = "jobs: [{name: beta-only, job: {type: decision-task, treeherder-symbol: B, target-tasks-method: b}, run-on-projects: [mozilla-beta], when: [{minute: 0}]}]";
        let beta = definition(&project(), &crate::cron_yml::parse(beta_only, "mozilla-central").unwrap()["beta-only"]);
        assert!(managed(&beta).unwrap().when.is_empty(), "run-on-projects leaves mozilla-central out: never due here");
        assert_eq!(by_hand.definition.bindings.len(), 1, "the project's bindings for the job");
        // The same file again: nothing written, tokens kept.
        assert_eq!(sync(&store, &project(), &jobs, &ids(&store), now).unwrap(), SyncReport::default());
        // The job changes, another goes.
        let changed = YML.replace("hour: 5, minute: 0", "hour: 6, minute: 30").replace("    - name: by-hand\n      job: {type: decision-task, treeherder-symbol: H, target-tasks-method: h}\n      when: []\n", "");
        let jobs = crate::cron_yml::parse(&changed, "mozilla-central").unwrap();
        let r = sync(&store, &project(), &jobs, &ids(&store), now).unwrap();
        assert_eq!((r.updated.as_slice(), r.removed.as_slice()), (&["mozilla-central/nightly".to_string()][..], &["mozilla-central/by-hand".to_string()][..]));
        let nightly_now = store.hook(&group, &HookId::new("mozilla-central/nightly").unwrap()).unwrap().unwrap();
        assert_eq!(nightly_now.next_scheduled_date, "2026-12-01T06:30:00.000Z");
        assert_eq!(nightly_now.trigger_token, nightly.trigger_token, "a change keeps the hook's trigger token");
        assert_eq!(ids(&store), ["mozilla-central/nightly"]);
        // The project removed: its hooks go.
        let r = sync(&store, &project(), &BTreeMap::new(), &ids(&store), now).unwrap();
        assert_eq!(r.removed, ["mozilla-central/nightly"]);
        assert!(ids(&store).is_empty());
    }

    #[test]
    fn only_marked_hooks_of_group_cron_are_managed() {
        let jobs = crate::cron_yml::parse(YML, "mozilla-central").unwrap();
        let mut d = definition(&project(), &jobs["nightly"]);
        assert!(managed(&d).is_some());
        d.hook_group_id = "other".into();
        assert!(managed(&d).is_none());
        let plain = HookDefinition { hook_group_id: GROUP.into(), task: serde_json::Map::new(), ..d };
        assert!(managed(&plain).is_none());
    }
}
