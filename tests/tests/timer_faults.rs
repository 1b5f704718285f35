//! The timer's exactly-once promise on the real host: ticks killed at arbitrary points,
//! and ticks running at the same time, still create each due task exactly once.

use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;
use taskhooks_e2e::{run_cron, spawn_cron, temp_dir, Host, HostOptions};

const HOOKS: usize = 300;

fn hook_path(i: usize) -> String {
    format!("/api/hooks/v1/hooks/faults/h{i:03}")
}

/// Creates `HOOKS` hourly hooks and returns the first full hour after now (unix seconds).
fn setup(state_dir: &std::path::Path) -> u64 {
    let host = Host::start_with(HostOptions { state_dir: state_dir.to_path_buf(), ..HostOptions::default() });
    let role = json!({"description": "", "scopes": ["queue:create-task:highest:proj/ci", "queue:create-task:project:none", "queue:scheduler-id:-"]});
    assert_eq!(host.request("PUT", "/api/auth/v1/roles/hook-id:faults%2F*", Some(&role)).status, 200);
    let body = json!({
        "metadata": {"name": "f", "description": "", "owner": "o@example.com"},
        "schedule": ["0 0 * * * *"],
        "task": {"taskQueueId": "proj/ci", "payload": {},
                 "metadata": {"name": "f", "description": "", "owner": "o@example.com", "source": "https://example.com"}},
    });
    for i in 0..HOOKS {
        assert_eq!(host.request("PUT", &hook_path(i), Some(&body)).status, 200);
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    (now / 3600 + 1) * 3600
}

/// For every hook: the distinct taskIds its schedule fires used, each checked to exist in
/// the queue, and its next scheduled date. A fire a killed tick left unfinished shows as
/// such (it is replaced when the fire is retried); `finished`: there must be none.
fn audit(state_dir: &std::path::Path, finished: bool) -> Vec<(HashSet<String>, String)> {
    let host = Host::start_with(HostOptions { state_dir: state_dir.to_path_buf(), ..HostOptions::default() });
    (0..HOOKS)
        .map(|i| {
            let fires = host.request("GET", &format!("{}/last-fires", hook_path(i)), None);
            let ids: HashSet<String> = if fires.status == 404 {
                HashSet::new()
            } else {
                fires.json()["lastFires"].as_array().unwrap().iter().filter_map(|f| {
                    let unfinished = f["error"].as_str().is_some_and(|e| e.starts_with("The fire did not finish"));
                    if unfinished && !finished {
                        return None;
                    }
                    assert_eq!(f["result"], "success", "{f}");
                    Some(f["taskId"].as_str().unwrap().to_string())
                }).collect()
            };
            for id in &ids {
                assert_eq!(host.request("GET", &format!("/api/queue/v1/task/{id}"), None).status, 200, "fired task {id} exists");
            }
            let status = host.request("GET", &format!("{}/status", hook_path(i)), None).json();
            (ids, status["nextScheduledDate"].as_str().unwrap().to_string())
        })
        .collect()
}

/// Tasks in the embedded queue, counted in the host's key-value database itself: a task
/// created by a tick that died before recording the fire is counted too.
fn tasks_in_queue(state_dir: &std::path::Path) -> usize {
    let db = rusqlite::Connection::open(state_dir.join("sqlite_key_value.db")).unwrap();
    db.query_row("SELECT count(*) FROM spin_key_value WHERE key LIKE 'task/%'", [], |r| r.get::<_, i64>(0)).unwrap() as usize
}

fn iso(secs: u64) -> String {
    chrono::DateTime::from_timestamp(secs as i64, 0).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[test]
fn ticks_killed_anywhere_then_finished_create_each_task_once() {
    let state_dir = temp_dir("killed-ticks");
    let hour = setup(&state_dir);
    // The day's first tick (its daily pass) out of the way, before the hour.
    assert!(run_cron(&state_dir, "timer", &(hour - 60).to_string(), &[]).status.success());
    let at = (hour + 60).to_string();
    // Kill each tick partway, once it has fired 40 more hooks than were fired before it
    // started (re-fired ones rewrite their record: a tick's attempts share its time),
    // watching the host's key-value database as the tick writes. Every killed tick dies
    // after creating tasks and before moving any hook on.
    let db = rusqlite::Connection::open(state_dir.join("sqlite_key_value.db")).unwrap();
    let attempts = || -> usize {
        db.query_row("SELECT count(*) FROM spin_key_value WHERE key LIKE 'fire/%'", [], |r| r.get::<_, i64>(0)).unwrap_or(0) as usize
    };
    for step in 1..=6 {
        let before = attempts();
        let mut child = spawn_cron(&state_dir, "timer", &at);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while attempts() < before + 40 && std::time::Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(1));
        }
        let exited = child.try_wait().unwrap().is_some();
        let _ = child.kill();
        let _ = child.wait();
        eprintln!("killed tick {step}: {} attempts recorded (was {before}); exited by itself: {exited}", attempts());
    }
    // Where the kills landed varies from run to run; what follows must hold wherever.
    let partial = audit(&state_dir, false);
    let fired = partial.iter().filter(|(ids, _)| !ids.is_empty()).count();
    let moved = partial.iter().filter(|(_, next)| *next == iso(hour + 3600)).count();
    eprintln!("after the killed ticks: {fired} of {HOOKS} hooks had fired, {moved} had moved on");
    assert!(fired > 0 && moved < HOOKS, "the kills landed inside ticks ({fired} fired, {moved} moved)");
    let finished = run_cron(&state_dir, "timer", &at, &[]);
    assert!(finished.status.success(), "{finished:?}");
    for (i, (ids, next)) in audit(&state_dir, true).into_iter().enumerate() {
        assert_eq!(ids.len(), 1, "hook {i}: exactly one task for the slot, got {ids:?}");
        assert_eq!(next, iso(hour + 3600), "hook {i} moved on");
    }
    assert_eq!(tasks_in_queue(&state_dir), HOOKS);
}

#[test]
fn overlapping_ticks_create_each_task_once() {
    let state_dir = temp_dir("overlapping-ticks");
    let hour = setup(&state_dir);
    assert!(run_cron(&state_dir, "timer", &(hour - 60).to_string(), &[]).status.success());
    let ticks: Vec<_> = [60, 61, 62].iter().map(|s| spawn_cron(&state_dir, "timer", &(hour + s).to_string())).collect();
    let mut due_total = 0;
    for t in ticks {
        let out = t.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let line = String::from_utf8_lossy(&out.stdout).to_string();
        due_total += line.split("due ").nth(1).and_then(|r| r.split(' ').next()).and_then(|n| n.parse::<usize>().ok()).unwrap_or(0);
    }
    // More than HOOKS hooks found due in all means the ticks did overlap.
    eprintln!("overlapping ticks found {due_total} due hooks in all, for {HOOKS} hooks");
    for (i, (ids, next)) in audit(&state_dir, true).into_iter().enumerate() {
        assert_eq!(ids.len(), 1, "hook {i}: exactly one task for the slot, got {ids:?}");
        assert_eq!(next, iso(hour + 3600), "hook {i} moved on");
    }
    assert_eq!(tasks_in_queue(&state_dir), HOOKS);
}
