//! A repository's `.cron.yml`, read as build-decision reads it
//! (`build-decision/src/build_decision/cron/` in mozilla-releng/fxci-config): the file's
//! shape, which jobs are due in a 15-minute slot (`should_run`, `match_utc`), and
//! taskgraph's `keyed-by` resolution of `when` (`util/keyed_by.py`).
//!
//! Written here rather than taken from a library because no Rust crate implements
//! build-decision's rules; each rule is tested against build-decision's own test cases
//! (`tests/test_cron*.py`, `tests/test_util_keyed_by.py`).
//!
//! Where build-decision defers a check to the moment a job would run (a minute that is
//! not a multiple of 15 raises in `match_utc`, a `by-project` without a match raises in
//! `evaluate_keyed_by`), this checks when the file is read, per job: a cron project shows
//! the problem at once rather than at the job's first due slot, and only that job is
//! affected.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The longest `.cron.yml` read (real ones are a few kilobytes).
pub const MAX_CRON_YML_BYTES: usize = 1 << 20;
/// The most jobs one `.cron.yml` may declare.
pub const MAX_JOBS: usize = 500;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CronYmlError {
    #[error(".cron.yml is not valid YAML: {0}")]
    Yaml(String),
    #[error(".cron.yml does not match build-decision's schema: {0}")]
    Schema(String),
    #[error(".cron.yml is {0} bytes; at most {MAX_CRON_YML_BYTES} are read")]
    TooLarge(usize),
}

/// build-decision's `job.type`s.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum JobKind {
    /// Render `.taskcluster.yml` with `tasks_for: "cron"` into one decision task.
    DecisionTask(DecisionTask),
    /// Trigger an action of an earlier decision task (not run by taskhooks: see
    /// `crate::cron_project`).
    TriggerAction(TriggerAction),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DecisionTask {
    pub treeherder_symbol: String,
    pub target_tasks_method: String,
    #[serde(default)]
    pub optimize_target_tasks: Option<bool>,
    /// Present (whatever its value) means `--include-push-tasks`, as build-decision tests
    /// `"include-push-tasks" in job`.
    #[serde(default, deserialize_with = "present")]
    pub include_push_tasks: bool,
    #[serde(default)]
    pub rebuild_kinds: Option<Vec<String>>,
    #[serde(default)]
    pub include_cron_input: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TriggerAction {
    pub action_name: String,
    #[serde(flatten)]
    pub rest: BTreeMap<String, Value>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    bool::deserialize(d).map(|_| true)
}

/// One entry of a `when` list: every field it gives must equal the slot's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Sched {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekday: Option<Weekday>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hour: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minute: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Weekday {
    fn of(t: DateTime<Utc>) -> Self {
        use chrono::Weekday as W;
        match t.weekday() {
            W::Mon => Weekday::Monday,
            W::Tue => Weekday::Tuesday,
            W::Wed => Weekday::Wednesday,
            W::Thu => Weekday::Thursday,
            W::Fri => Weekday::Friday,
            W::Sat => Weekday::Saturday,
            W::Sun => Weekday::Sunday,
        }
    }
}

/// A job as `.cron.yml` declares it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Job {
    pub name: String,
    pub job: JobKind,
    #[serde(default)]
    pub run_on_projects: Option<Vec<String>>,
    /// A list of `Sched`, or `{"by-project": {...}}` (possibly nested); absent: never.
    #[serde(default)]
    pub when: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct CronYml {
    jobs: Vec<Value>,
}

/// A job as it applies to one project: its `when` resolved for the project, or why it
/// cannot be (the job's own error; the project's other jobs are unaffected).
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectJob {
    pub job: Job,
    /// The job as the file writes it (what its managed hook records).
    pub raw: Value,
    pub when: Result<Vec<Sched>, String>,
}

impl ProjectJob {
    /// build-decision's `should_run` for slot `t` (already rounded to 15 minutes).
    /// The job's `run-on-projects` (if given) names `project`.
    pub fn runs_on(&self, project: &str) -> bool {
        self.job.run_on_projects.as_ref().is_none_or(|projects| projects.iter().any(|p| p == project))
    }

    pub fn due_at(&self, project: &str, t: DateTime<Utc>) -> bool {
        if !self.runs_on(project) {
            return false;
        }
        self.when.as_ref().is_ok_and(|when| when.iter().any(|s| matches(s, t)))
    }
}

/// Parses and checks `.cron.yml` for `project`: the jobs by name. A file that does not
/// parse or does not have build-decision's shape is refused whole (build-decision then
/// runs no job); a job whose `when` does not resolve keeps its error.
pub fn parse(text: &str, project: &str) -> Result<BTreeMap<String, ProjectJob>, CronYmlError> {
    if text.len() > MAX_CRON_YML_BYTES {
        return Err(CronYmlError::TooLarge(text.len()));
    }
    let value: Value = serde_norway::from_str(text).map_err(|e| CronYmlError::Yaml(e.to_string()))?;
    let file: CronYml = serde_json::from_value(value).map_err(|e| CronYmlError::Schema(e.to_string()))?;
    if file.jobs.len() > MAX_JOBS {
        return Err(CronYmlError::Schema(format!("{} jobs; at most {MAX_JOBS} are allowed", file.jobs.len())));
    }
    let mut jobs = BTreeMap::new();
    for (i, raw) in file.jobs.into_iter().enumerate() {
        let job: Job = serde_json::from_value(raw.clone()).map_err(|e| CronYmlError::Schema(format!("jobs[{i}]: {e}")))?;
        if jobs.contains_key(&job.name) {
            return Err(CronYmlError::Schema(format!("job name {:?} is used twice", job.name)));
        }
        let when = resolve_when(&job, project);
        jobs.insert(job.name.clone(), ProjectJob { job, raw, when });
    }
    Ok(jobs)
}

/// The job's `when` for `project`, checked as build-decision checks it when it runs.
fn resolve_when(job: &Job, project: &str) -> Result<Vec<Sched>, String> {
    let item = format!("Cron job {}", job.name);
    let value = match &job.when {
        None => return Ok(vec![]),
        Some(v) => evaluate_keyed_by(v, &item, &BTreeMap::from([("project", project)]))?,
    };
    let when: Vec<Sched> = serde_json::from_value(value).map_err(|e| format!("{item}: `when` must be a list of {{weekday, day, hour, minute}}: {e}"))?;
    for s in &when {
        check_sched(s).map_err(|e| format!("{item}: {e}"))?;
    }
    Ok(when)
}

/// The schema's limits on a `when` entry (as build-decision's schema enforces them:
/// maximums, and minutes in steps of 15).
fn check_sched(s: &Sched) -> Result<(), String> {
    if let Some(m) = s.minute {
        if m % 15 != 0 || m >= 60 {
            return Err(format!("minute {m}: cron jobs only run on multiples of 15 minutes past the hour"));
        }
    }
    if s.hour.is_some_and(|h| h >= 24) {
        return Err(format!("hour {} is not below 24", s.hour.unwrap_or_default()));
    }
    if s.day.is_some_and(|d| d > 31) {
        return Err(format!("day {} is above 31", s.day.unwrap_or_default()));
    }
    Ok(())
}

/// build-decision's `match_utc`: every field given equals the slot's.
pub fn matches(s: &Sched, t: DateTime<Utc>) -> bool {
    s.minute.is_none_or(|m| m == i64::from(t.minute()))
        && s.hour.is_none_or(|h| h == i64::from(t.hour()))
        && s.day.is_none_or(|d| d == i64::from(t.day()))
        && s.weekday.is_none_or(|w| w == Weekday::of(t))
}

/// How far ahead `next_slot` looks: long enough for any combination of weekday and day
/// of month to come round (a Friday the 13th recurs within 14 months; a day 31 that is
/// some weekday, within 3 years).
const LOOKAHEAD_DAYS: i64 = 5 * 366;

/// The first slot strictly after `after` that some entry of `when` matches, as the ticks
/// would find it (what a job's hook shows as its next fire); `None` for `when: []` or an
/// entry that never matches (`day: 31, weekday: ...` is found; `hour: -1` is not).
/// Day by day rather than slot by slot: a day's slots are checked only on a day whose
/// date and weekday match.
pub fn next_slot(when: &[Sched], after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let first = slot_of(after) + chrono::Duration::minutes(15);
    let start_of = |t: DateTime<Utc>| t.date_naive().and_hms_opt(0, 0, 0).map(|d| d.and_utc());
    let mut day = start_of(first)?;
    for _ in 0..LOOKAHEAD_DAYS {
        let candidates = when.iter().filter(|s| s.day.is_none_or(|d| d == i64::from(day.day())) && s.weekday.is_none_or(|w| w == Weekday::of(day)));
        let mut best: Option<DateTime<Utc>> = None;
        for s in candidates {
            let hours: Vec<i64> = s.hour.map_or_else(|| (0..24).collect(), |h| vec![h]);
            let minutes: Vec<i64> = s.minute.map_or_else(|| vec![0, 15, 30, 45], |m| vec![m]);
            for h in &hours {
                for m in &minutes {
                    let Some(t) = (0..24).contains(h).then(|| day + chrono::Duration::hours(*h) + chrono::Duration::minutes(*m)) else { continue };
                    if (0..60).contains(m) && t >= first && best.is_none_or(|b| t < b) {
                        best = Some(t);
                    }
                }
            }
        }
        if best.is_some() {
            return best;
        }
        day += chrono::Duration::days(1);
    }
    None
}

/// The 15-minute slot of `t`, as build-decision's `calculate_time` rounds it.
pub fn slot_of(t: DateTime<Utc>) -> DateTime<Utc> {
    let minute = t.minute() - t.minute() % 15;
    t.with_minute(minute).and_then(|t| t.with_second(0)).and_then(|t| t.with_nanosecond(0)).unwrap_or(t)
}

/// taskgraph's `keymatch`: the value of the key equal to `target`, else those of the keys
/// that, read as regular expressions, match all of `target`, else `default`.
fn keymatch<'v>(alternatives: &'v serde_json::Map<String, Value>, target: &str) -> Result<Vec<&'v Value>, String> {
    if let Some(v) = alternatives.get(target) {
        return Ok(vec![v]);
    }
    let mut matches = Vec::new();
    for (key, value) in alternatives {
        // `re.match(k + "$", target)`: anchored at both ends.
        let re = regex::Regex::new(&format!("^(?:{key})$")).map_err(|e| format!("key {key:?} is not a regular expression: {e}"))?;
        if re.is_match(target) {
            matches.push(value);
        }
    }
    if matches.is_empty() {
        if let Some(v) = alternatives.get("default") {
            matches.push(v);
        }
    }
    Ok(matches)
}

/// taskgraph's `evaluate_keyed_by`, with its error messages.
pub fn evaluate_keyed_by(value: &Value, item_name: &str, attributes: &BTreeMap<&str, &str>) -> Result<Value, String> {
    let mut value = value;
    loop {
        let Some((by, alternatives)) = value.as_object().filter(|o| o.len() == 1).and_then(|o| o.iter().next()).filter(|(k, _)| k.starts_with("by-")) else {
            return Ok(value.clone());
        };
        let keyed_by = &by[3..];
        let Some(alternatives) = alternatives.as_object() else { return Ok(value.clone()) };
        if alternatives.len() == 1 && alternatives.contains_key("default") {
            return Err(format!("Keyed-by '{keyed_by}' unnecessary with only value 'default' found, when determining item {item_name}"));
        }
        let Some(key) = attributes.get(keyed_by) else {
            match alternatives.get("default") {
                Some(v) => {
                    value = v;
                    continue;
                }
                None => return Err(format!("No attribute {keyed_by} and no value for 'default' found while determining item {item_name}")),
            }
        };
        let matches = keymatch(alternatives, key)?;
        match matches.as_slice() {
            [one] => value = one,
            [] => return Err(format!("No {keyed_by} matching '{key}' nor 'default' found while determining item {item_name}")),
            _ => return Err(format!("Multiple matching values for {keyed_by} '{key}' found while determining item {item_name}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn sched(v: Value) -> Sched {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn match_utc_as_build_decision_tests_it() {
        // tests/test_cron_util.py: UTCNOW = 2022-04-14 20:45:50 (a Thursday).
        let now = slot_of(t("2022-04-14T20:45:50.123Z"));
        assert!(matches(&sched(json!({"minute": 45})), now));
        assert!(!matches(&sched(json!({"minute": 30})), now));
        assert!(!matches(&sched(json!({"hour": 17, "minute": 45})), now));
        assert!(!matches(&sched(json!({"day": 10})), now));
        assert!(!matches(&sched(json!({"weekday": "Wednesday"})), now));
        assert!(matches(&sched(json!({"weekday": "Thursday", "day": 14, "hour": 20, "minute": 45})), now));
        // A minute that is not a multiple of 15 is refused (build-decision raises).
        assert!(check_sched(&sched(json!({"minute": 17}))).unwrap_err().contains("multiples of 15"));
        // A weekday that is not one of the schema's names does not parse.
        assert!(serde_json::from_value::<Sched>(json!({"weekday": {"one": "two"}})).is_err());
        assert!(serde_json::from_value::<Sched>(json!({"weekday": "thursday"})).is_err(), "the schema's enum is capitalised");
    }

    #[test]
    fn the_next_slot_is_the_first_the_ticks_would_match() {
        let s = |v: Value| -> Vec<Sched> { serde_json::from_value(v).unwrap() };
        let after = t("2026-12-01T05:07:00Z"); // a Tuesday
        assert_eq!(next_slot(&s(json!([{"hour": 5, "minute": 0}, {"hour": 17, "minute": 0}])), after), Some(t("2026-12-01T17:00:00Z")));
        assert_eq!(next_slot(&s(json!([{"minute": 30}])), after), Some(t("2026-12-01T05:30:00Z")));
        assert_eq!(next_slot(&s(json!([{}])), after), Some(t("2026-12-01T05:15:00Z")), "every slot");
        assert_eq!(next_slot(&s(json!([{"minute": 0}])), t("2026-12-01T05:00:00Z")), Some(t("2026-12-01T06:00:00Z")), "strictly after");
        assert_eq!(next_slot(&s(json!([{"weekday": "Monday", "hour": 10, "minute": 0}])), after), Some(t("2026-12-07T10:00:00Z")));
        // Both day and weekday must match, as build-decision's match_utc requires (not
        // classic cron's "either"): the next Friday the 13th.
        assert_eq!(next_slot(&s(json!([{"weekday": "Friday", "day": 13, "hour": 0, "minute": 0}])), after), Some(t("2027-08-13T00:00:00Z")));
        assert_eq!(next_slot(&s(json!([{"day": 31, "hour": 1}])), after), Some(t("2026-12-31T01:00:00Z")));
        assert_eq!(next_slot(&s(json!([])), after), None, "when: [] never fires by itself");
        assert_eq!(next_slot(&s(json!([{"hour": -1}])), after), None, "an hour the schema lets through but no slot has");
        // Agrees with matching, slot by slot, over a week.
        let when = s(json!([{"weekday": "Wednesday", "minute": 45}, {"day": 2, "hour": 3, "minute": 15}]));
        let mut at = after;
        for _ in 0..50 {
            let next = next_slot(&when, at).unwrap();
            let mut probe = slot_of(at) + chrono::Duration::minutes(15);
            while probe < next {
                assert!(!when.iter().any(|w| matches(w, probe)), "{probe} matches but {next} was named");
                probe += chrono::Duration::minutes(15);
            }
            assert!(when.iter().any(|w| matches(w, next)));
            at = next;
        }
    }

    #[test]
    fn slots_are_rounded_down_to_15_minutes() {
        assert_eq!(slot_of(t("2022-04-14T19:08:37.357Z")), t("2022-04-14T19:00:00Z"));
        assert_eq!(slot_of(t("2022-04-14T19:59:59Z")), t("2022-04-14T19:45:00Z"));
    }

    #[test]
    fn keyed_by_as_taskgraph_resolves_it() {
        // tests/test_util_keyed_by.py
        let attrs = |k: &'static str, v: &'static str| BTreeMap::from([(k, v)]);
        let none = BTreeMap::new();
        assert_eq!(evaluate_keyed_by(&json!("not_a_dict"), "i", &none), Ok(json!("not_a_dict")));
        assert_eq!(evaluate_keyed_by(&json!({"key1": "value1", "key2": "value2"}), "i", &none), Ok(json!({"key1": "value1", "key2": "value2"})));
        assert_eq!(evaluate_keyed_by(&json!({"key1": "value1"}), "i", &none), Ok(json!({"key1": "value1"})));
        assert_eq!(evaluate_keyed_by(&json!({"by-level": {"1": "level1", "3": "level3"}}), "i", &attrs("level", "1")), Ok(json!("level1")));
        assert!(evaluate_keyed_by(&json!({"by-level": {"default": "d"}}), "i", &attrs("level", "1")).unwrap_err().contains("unnecessary with only value 'default'"));
        assert!(evaluate_keyed_by(&json!({"by-level": {"1": "level1", "3": "level3"}}), "i", &none).unwrap_err().contains("No attribute level and no value for 'default'"));
        assert_eq!(evaluate_keyed_by(&json!({"by-level": {"1": "level1", "default": "d"}}), "i", &none), Ok(json!("d")));
        // keymatch: exact, then regular expressions (whole name), then default.
        let alternatives = json!({"mozilla-central": 1, "mozilla-.*": 2, "default": 3});
        let by = |p: &'static str| evaluate_keyed_by(&json!({"by-project": alternatives}), "i", &attrs("project", p));
        assert_eq!(by("mozilla-central"), Ok(json!(1)));
        assert_eq!(by("mozilla-beta"), Ok(json!(2)));
        assert_eq!(by("xmozilla-beta"), Ok(json!(3)), "anchored at the start too (re.match)");
        assert_eq!(by("try"), Ok(json!(3)));
        let ambiguous = json!({"by-project": {"a.*": 1, ".*b": 2}});
        assert!(evaluate_keyed_by(&ambiguous, "i", &attrs("project", "ab")).unwrap_err().contains("Multiple matching values for project 'ab'"));
        assert!(evaluate_keyed_by(&json!({"by-project": {"a": 1, "b": 2}}), "i", &attrs("project", "c")).unwrap_err().contains("No project matching 'c' nor 'default'"));
        // Nested: by-level inside by-project.
        let nested = json!({"by-project": {"try": {"by-level": {"1": "l1", "default": "ld"}}, "default": "d"}});
        assert_eq!(evaluate_keyed_by(&nested, "i", &BTreeMap::from([("project", "try"), ("level", "1")])), Ok(json!("l1")));
    }

    const CRON_YML: &str = r#"
# The shapes real projects use.
---
jobs:
    - name: nightly
      job:
          type: decision-task
          treeherder-symbol: Nd
          target-tasks-method: nightly
      when:
          - {hour: 5, minute: 0}
          - {hour: 17, minute: 0}
    - name: force-only
      job: {type: decision-task, treeherder-symbol: F, target-tasks-method: f}
      when: []
    - name: screenshots
      job: {type: decision-task, treeherder-symbol: S, target-tasks-method: s, include-push-tasks: false}
      when: [{weekday: 'Monday', hour: 10, minute: 0}]
    - name: monthly
      job: {type: decision-task, treeherder-symbol: M, target-tasks-method: m}
      when: [{day: 1, hour: 0, minute: 15}]
    - name: by-project
      run-on-projects: [mozilla-central, mozilla-beta]
      job: {type: decision-task, treeherder-symbol: B, target-tasks-method: b}
      when:
          by-project:
              mozilla-central: [{minute: 30}]
              mozilla-.*: [{hour: 12, minute: 0}]
    - name: broken-minute
      job: {type: decision-task, treeherder-symbol: X, target-tasks-method: x}
      when: [{minute: 10}]
"#;

    #[test]
    fn a_real_shaped_file_selects_the_jobs_build_decision_would() {
        let jobs = parse(CRON_YML, "mozilla-central").unwrap();
        let due = |p: &str, at: &str| -> Vec<String> {
            let jobs = parse(CRON_YML, p).unwrap();
            jobs.iter().filter(|(_, j)| j.due_at(p, t(at))).map(|(n, _)| n.clone()).collect()
        };
        assert_eq!(due("mozilla-central", "2026-11-30T05:00:00Z"), ["nightly"]);
        assert_eq!(due("mozilla-central", "2026-11-30T10:00:00Z"), ["screenshots"], "2026-11-30 is a Monday");
        assert_eq!(due("mozilla-central", "2026-12-01T00:15:00Z"), ["monthly"]);
        assert_eq!(due("mozilla-central", "2026-12-01T07:30:00Z"), ["by-project"], "every hour at :30 on central");
        assert_eq!(due("mozilla-beta", "2026-12-01T12:00:00Z"), ["by-project"], "the regular expression on beta");
        assert!(due("mozilla-beta", "2026-12-01T07:30:00Z").is_empty());
        assert!(due("autoland", "2026-12-01T12:00:00Z").is_empty(), "not in run-on-projects");
        assert_eq!(jobs["force-only"].when, Ok(vec![]), "when: [] is never: only by hand");
        assert!(jobs["broken-minute"].when.as_ref().unwrap_err().contains("Cron job broken-minute"), "the job's own error");
        assert!(matches!(&jobs["screenshots"].job.job, JobKind::DecisionTask(DecisionTask { include_push_tasks: true, .. })), "present, even false");
        // The project's regular expression keys do not apply to a project they do not match.
        let try_jobs = parse(CRON_YML, "try").unwrap();
        assert!(try_jobs["by-project"].when.as_ref().unwrap_err().contains("No project matching 'try'"));
    }

    #[test]
    fn files_without_build_decisions_shape_are_refused_whole() {
        assert!(matches!(parse("jobs: [", "p"), Err(CronYmlError::Yaml(_))));
        assert!(matches!(parse("jobs: []\nextra: 1", "p"), Err(CronYmlError::Schema(_))));
        let unknown_type = "jobs: [{name: a, job: {type: other}, when: []}]";
        assert!(matches!(parse(unknown_type, "p"), Err(CronYmlError::Schema(_))));
        let missing_symbol = "jobs: [{name: a, job: {type: decision-task, target-tasks-method: x}}]";
        assert!(matches!(parse(missing_symbol, "p"), Err(CronYmlError::Schema(_))));
        let twice = "jobs: [{name: a, job: {type: trigger-action, action-name: x}}, {name: a, job: {type: trigger-action, action-name: y}}]";
        assert!(parse(twice, "p").unwrap_err().to_string().contains("used twice"));
        assert!(matches!(parse(&"#".repeat(MAX_CRON_YML_BYTES + 1), "p"), Err(CronYmlError::TooLarge(_))));
    }
}
