//! Cron projects (`/api/taskhooks/v1/cron-projects/<project>`): a repository whose
//! `.cron.yml` the service runs itself, as build-decision's cron task would, one managed
//! hook per job. This module holds the record and its index; `crate::cron_yml` reads the
//! file and `crate::cron_decision` makes a job's task.
//!
//! Index: `index/cronprojects` (`{project: claim token}`), a shared document created on
//! first use (it is newer than the layout's set-up; see `layout::ensure_document`).

use crate::cas::{self, Claim, IndexDoc};
use crate::layout;
use crate::platform::KeyValue;
use crate::repository::{self, Kind, RepositoryHosts};
use crate::store::{Claimed, StorageError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most cron projects a deployment holds (a listing reads them all).
pub const MAX_PROJECTS: usize = 1_000;

/// `<project>`: as Taskcluster names projects (`mozilla-central`, `fenix`).
pub fn valid_project(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
}

/// The repository of a cron project, as the API takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepositoryRequest {
    pub url: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    #[serde(default)]
    pub branch: Option<String>,
    /// `"1"` to `"3"` (Taskcluster's SCM levels), given to `.taskcluster.yml`.
    pub level: String,
}

/// A Pulse binding of one job's hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobBinding {
    pub exchange: String,
    pub routing_key_pattern: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CronProjectRequest {
    pub repository: RepositoryRequest,
    /// job name -> the Pulse bindings that fire that job per message.
    #[serde(default)]
    pub bindings: BTreeMap<String, Vec<JobBinding>>,
    /// Who hears of failures (an e-mail address): the project's (repository unreadable,
    /// `.cron.yml` invalid) and its jobs' failed fires, as a hook's owner with
    /// `emailOnError` does. None: failures are only recorded.
    #[serde(default)]
    pub owner: Option<String>,
}

/// A cron project as stored and served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CronProject {
    pub project: String,
    pub repository: RepositoryRecord,
    pub bindings: BTreeMap<String, Vec<JobBinding>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub created: String,
    pub last_modified: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryRecord {
    pub url: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub branch: String,
    pub level: String,
    /// The URL without its scheme: the `<repoPath>` of `assume:repo:<repoPath>:cron:*`.
    pub repo_path: String,
}

impl CronProjectRequest {
    /// The request checked (URL on an allowed host, level, branch, bindings), as the record
    /// it makes; `Err` lists each problem.
    pub fn check(&self, project: &str, hosts: &RepositoryHosts, now: &str) -> Result<CronProject, Vec<String>> {
        let mut errors = Vec::new();
        let r = &self.repository;
        let url = repository::parse_url(&r.url, r.kind, hosts).map_err(|e| errors.push(format!("repository.url: {e}"))).ok();
        if !matches!(r.level.as_str(), "1" | "2" | "3") {
            errors.push(format!("repository.level must be \"1\", \"2\" or \"3\" (got {:?})", r.level));
        }
        let branch = r.branch.clone().unwrap_or_else(|| r.kind.default_branch().to_string());
        let plain_branch = !branch.is_empty()
            && branch.len() <= 255
            && !branch.starts_with('/')
            && !branch.contains("..")
            && branch.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
        if !plain_branch {
            errors.push(format!("repository.branch {branch:?} is not a plain branch name"));
        }
        let count: usize = self.bindings.values().map(Vec::len).sum();
        if count > crate::model::MAX_BINDINGS {
            errors.push(format!("bindings: {count} in all; at most {} are allowed", crate::model::MAX_BINDINGS));
        }
        for (job, bindings) in &self.bindings {
            if bindings.iter().any(|b| b.exchange.is_empty() || b.routing_key_pattern.is_empty()) {
                errors.push(format!("bindings.{job}: exchange and routingKeyPattern must not be empty"));
            }
        }
        if let Some(owner) = &self.owner {
            if owner.len() > 255 || !crate::model::is_email(owner) {
                errors.push(format!("owner must be an e-mail address (got {owner:?})"));
            }
        }
        match (url, errors.is_empty()) {
            (Some(url), true) => Ok(CronProject {
                project: project.to_string(),
                repository: RepositoryRecord { url: url.url, kind: r.kind, branch, level: r.level.clone(), repo_path: url.repo_path },
                bindings: self.bindings.clone(),
                owner: self.owner.clone(),
                created: now.to_string(),
                last_modified: now.to_string(),
            }),
            _ => Err(errors),
        }
    }
}

/// The cron projects' records in a store.
pub struct CronProjects<'a> {
    pub kv: &'a dyn KeyValue,
    /// How to wait for a concurrent first writer of the index (see `index`).
    pub sleep: &'a dyn Fn(std::time::Duration),
}

impl CronProjects<'_> {
    fn index(&self) -> Result<(), StorageError> {
        Ok(layout::ensure_document(self.kv, layout::CRON_PROJECT_INDEX, self.sleep)?)
    }

    pub fn get(&self, project: &str) -> Result<Option<CronProject>, StorageError> {
        cas::read_json_opt(self.kv, &layout::cron_project(project))
    }

    /// All projects, sorted by name.
    pub fn list(&self) -> Result<Vec<CronProject>, StorageError> {
        let index: IndexDoc<String> = cas::read_json(self.kv, layout::CRON_PROJECT_INDEX)?;
        let keys: Vec<String> = index.keys().map(|p| layout::cron_project(p)).collect();
        cas::get_many_json(self.kv, &keys).map(|found| found.into_iter().flatten().collect())
    }

    /// Creates `project`, or changes it (keeping `created`): of concurrent creators one
    /// creates it; a change applies to the record as stored.
    pub fn put(&self, record: &CronProject) -> Result<Claimed<CronProject>, StorageError> {
        self.index()?;
        let key = layout::cron_project(&record.project);
        let index: IndexDoc<String> = cas::read_json(self.kv, layout::CRON_PROJECT_INDEX)?;
        if !index.contains_key(&record.project) && index.len() >= MAX_PROJECTS {
            return Err(StorageError::Corrupt { key: layout::CRON_PROJECT_INDEX.into(), reason: format!("at most {MAX_PROJECTS} cron projects") });
        }
        let token = crate::ids::nice_slugid();
        match cas::claim(self.kv, layout::CRON_PROJECT_INDEX, &record.project, &token)? {
            Claim::Won => {
                self.kv.set(&key, &serde_json::to_vec(record).expect("serialises"))?;
                Ok(Claimed::Created)
            }
            Claim::Held(_) => {
                let changed = cas::update_record(
                    self.kv,
                    &key,
                    |bytes| serde_json::from_slice::<CronProject>(bytes).map_err(|e| StorageError::Corrupt { key: key.clone(), reason: e.to_string() }),
                    |p| serde_json::to_vec(p).expect("serialises"),
                    |stored: &mut CronProject| {
                        stored.repository = record.repository.clone();
                        stored.bindings = record.bindings.clone();
                        stored.owner.clone_from(&record.owner);
                        stored.last_modified.clone_from(&record.last_modified);
                        true
                    },
                )?;
                match changed {
                    Some(p) => Ok(Claimed::Exists(p)),
                    // Claimed by a creator that has not written the record yet.
                    None => {
                        self.kv.set(&key, &serde_json::to_vec(record).expect("serialises"))?;
                        Ok(Claimed::Exists(record.clone()))
                    }
                }
            }
        }
    }

    pub fn delete(&self, project: &str) -> Result<bool, StorageError> {
        let existed = self.get(project)?.is_some();
        self.index()?;
        cas::release(self.kv, layout::CRON_PROJECT_INDEX, project)?;
        self.kv.delete(&layout::cron_project(project))?;
        Ok(existed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::MemoryStore;
    use serde_json::json;

    fn request(v: serde_json::Value) -> CronProjectRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn requests_are_checked_and_default_their_branch() {
        let hosts = RepositoryHosts::default();
        let p = request(json!({"repository": {"url": "https://github.com/org/repo", "type": "git", "level": "3"}})).check("fenix", &hosts, "t").unwrap();
        assert_eq!((p.repository.branch.as_str(), p.repository.repo_path.as_str()), ("main", "github.com/org/repo"));
        let hg = request(json!({"repository": {"url": "https://hg.mozilla.org/mozilla-central", "type": "hg", "level": "3"}})).check("mozilla-central", &hosts, "t").unwrap();
        assert_eq!(hg.repository.branch, "default");
        let bad = request(json!({"repository": {"url": "https://example.com/org/repo", "type": "git", "level": "4", "branch": "../x"}}));
        let errors = bad.check("p", &hosts, "t").unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(serde_json::from_value::<CronProjectRequest>(json!({"repository": {"url": "u", "type": "svn", "level": "1"}})).is_err());
        assert!(valid_project("mozilla-central") && !valid_project("a/b") && !valid_project(""));
    }

    #[test]
    fn put_creates_then_changes_and_delete_removes() {
        let kv = MemoryStore::default();
        let projects = CronProjects { kv: &kv, sleep: &|_| {} };
        let hosts = RepositoryHosts::default();
        let mut record = request(json!({"repository": {"url": "https://github.com/org/repo", "type": "git", "level": "1"}})).check("p", &hosts, "t1").unwrap();
        assert_eq!(projects.put(&record).unwrap(), Claimed::Created);
        record.repository.level = "3".into();
        record.last_modified = "t2".into();
        record.created = "t2".into();
        let Claimed::Exists(changed) = projects.put(&record).unwrap() else { panic!("exists") };
        assert_eq!((changed.created.as_str(), changed.last_modified.as_str(), changed.repository.level.as_str()), ("t1", "t2", "3"));
        assert_eq!(projects.list().unwrap().len(), 1);
        assert!(projects.delete("p").unwrap());
        assert!(projects.list().unwrap().is_empty());
        assert_eq!(projects.get("p").unwrap(), None);
        assert!(!projects.delete("p").unwrap());
    }
}
