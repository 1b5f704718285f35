//! The walking skeleton end to end: a hook created over HTTP, triggered, and its task read
//! back from the embedded queue, all inside the .wasm components run by the host.

use serde_json::json;
use taskhooks_e2e::{request, run_cron, temp_dir, Host, HostOptions, ROOT_CLIENT_ID};

fn hook_body() -> serde_json::Value {
    json!({
        "metadata": {"name": "skeleton", "description": "e2e", "owner": "dev@example.com"},
        "task": {
            "provisionerId": "proj", "workerType": "ci",
            "payload": {"command": ["echo", "${payload.message}"]},
            "metadata": {"name": "fired by ${firedBy}", "description": "", "owner": "dev@example.com", "source": "https://example.com"}
        },
        "triggerSchema": {"type": "object", "properties": {"message": {"type": "string"}}}
    })
}

#[test]
fn create_trigger_and_read_the_task_over_http() {
    let host = Host::start();
    let hook_path = "/api/hooks/v1/hooks/e2e-group/nested%2Fhook";

    // The hook's role lets it create tasks on proj/ci.
    let role = json!({"description": "e2e hooks", "scopes": ["queue:create-task:highest:proj/ci", "queue:create-task:project:none", "queue:scheduler-id:-"]});
    assert_eq!(host.request("PUT", "/api/auth/v1/roles/hook-id:e2e-group%2F*", Some(&role)).status, 200);
    let created = host.request("PUT", hook_path, Some(&hook_body()));
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(created.json()["hookId"], "nested/hook");
    assert_eq!(created.header("content-type"), Some("application/json; charset=utf-8"));

    let got = host.request("GET", hook_path, None);
    assert_eq!(got.status, 200);
    assert_eq!(got.json(), created.json());

    let fired = host.request("POST", &format!("{hook_path}/trigger"), Some(&json!({"message": "hello"})));
    assert_eq!(fired.status, 200, "{}", fired.body);
    let task_id = fired.json()["taskId"].as_str().unwrap().to_string();
    assert_eq!(fired.json()["status"]["taskId"], task_id);

    let task = host.request("GET", &format!("/api/queue/v1/task/{task_id}"), None);
    assert_eq!(task.status, 200, "{}", task.body);
    let task = task.json();
    assert_eq!(task["payload"]["command"], json!(["echo", "hello"]));
    assert_eq!(task["metadata"]["name"], "fired by triggerHook");
    assert_eq!(task["taskGroupId"], task_id);

    // Upstream's slugid pattern is checked first; a well-formed unknown id is a 404.
    assert_eq!(host.request("GET", "/api/queue/v1/task/nope", None).json()["code"], "InvalidRequestArguments");
    let missing = host.request("GET", "/api/queue/v1/task/fN1SmgV0T8WXX3LhKs2Gyw", None);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["code"], "ResourceNotFound");
}

#[test]
fn state_survives_a_restart_in_the_sqlite_store() {
    let state_dir = temp_dir("restart");
    let opts = || HostOptions { state_dir: state_dir.clone(), ..HostOptions::default() };
    {
        let host = Host::start_with(opts());
        assert_eq!(host.request("PUT", "/api/hooks/v1/hooks/g/persist", Some(&hook_body())).status, 200);
    }
    assert!(state_dir.join("sqlite_key_value.db").exists());
    let host = Host::start_with(opts());
    let got = host.request("GET", "/api/hooks/v1/hooks/g/persist", None);
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.json()["metadata"]["name"], "skeleton");
}

#[test]
fn unrouted_paths_are_404_and_bad_input_keeps_the_host_up() {
    let mut host = Host::start();
    assert_eq!(host.request("GET", "/not-an-api", None).status, 404);
    let anonymous = request(&format!("{}/api/hooks/v1/hooks/g/h", host.base_url), "PUT", Some(&hook_body()));
    assert_eq!(anonymous.status, 403, "{}", anonymous.body);
    let forged = host.request_as(Some((ROOT_CLIENT_ID, "not-the-token")), "GET", "/api/hooks/v1/hooks", None);
    assert_eq!(forged.status, 401, "{}", forged.body);
    assert_eq!(forged.header("www-authenticate"), Some("hawk"));
    let bad = host.request("PUT", "/api/hooks/v1/hooks/g/h", Some(&json!([1, 2])));
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_eq!(bad.json()["code"], "InputValidationError");
    assert_eq!(bad.json()["requestInfo"]["method"], "createHook");
    assert!(host.is_running());
    assert_eq!(host.request("GET", "/api/hooks/v1/ping", None).json()["alive"], true);
}

#[test]
fn the_timer_prunes_fires_older_than_a_year_once_a_day() {
    let state_dir = temp_dir("prune");
    let hook = "/api/hooks/v1/hooks/e2e-group/pruned";
    {
        let host = Host::start_with(HostOptions { state_dir: state_dir.clone(), ..HostOptions::default() });
        let role = json!({"description": "", "scopes": ["queue:create-task:highest:proj/ci", "queue:create-task:project:none", "queue:scheduler-id:-"]});
        assert_eq!(host.request("PUT", "/api/auth/v1/roles/hook-id:e2e-group%2F*", Some(&role)).status, 200);
        assert_eq!(host.request("PUT", hook, Some(&hook_body())).status, 200);
        assert_eq!(host.request("POST", &format!("{hook}/trigger"), Some(&json!({"message": "x"}))).status, 200);
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let in_200_days = run_cron(&state_dir, "timer", &(now + 200 * 86400).to_string(), &[]);
    assert!(String::from_utf8_lossy(&in_200_days.stdout).contains("pruned 0 fires"), "{in_200_days:?}");
    let same_day = run_cron(&state_dir, "timer", &(now + 200 * 86400 + 60).to_string(), &[]);
    assert!(!String::from_utf8_lossy(&same_day.stdout).contains("pruned"), "once a day: {same_day:?}");
    let in_400_days = run_cron(&state_dir, "timer", &(now + 400 * 86400).to_string(), &[]);
    assert!(String::from_utf8_lossy(&in_400_days.stdout).contains("pruned 1 fires"), "{in_400_days:?}");
    let host = Host::start_with(HostOptions { state_dir, ..HostOptions::default() });
    assert_eq!(host.request("GET", &format!("{hook}/last-fires"), None).status, 404, "the fire is gone");
    assert_eq!(host.request("GET", hook, None).status, 200, "the hook stays");
}

#[test]
fn the_timer_fires_a_due_hook_once() {
    let state_dir = temp_dir("scheduled");
    let hook = "/api/hooks/v1/hooks/e2e-group/hourly";
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let next_hour = (now / 3600 + 1) * 3600;
    {
        let host = Host::start_with(HostOptions { state_dir: state_dir.clone(), ..HostOptions::default() });
        let role = json!({"description": "", "scopes": ["queue:create-task:highest:proj/ci", "queue:create-task:project:none", "queue:scheduler-id:-"]});
        assert_eq!(host.request("PUT", "/api/auth/v1/roles/hook-id:e2e-group%2F*", Some(&role)).status, 200);
        let mut body = hook_body();
        body["schedule"] = json!(["0 0 * * * *"]);
        body["task"]["payload"]["command"] = json!(["echo", {"$eval": "now"}]);
        assert_eq!(host.request("PUT", hook, Some(&body)).status, 200);
    }
    let early = run_cron(&state_dir, "timer", &(next_hour - 60).to_string(), &[]);
    assert!(String::from_utf8_lossy(&early.stdout).contains("due 0 fired 0"), "{early:?}");
    let due = run_cron(&state_dir, "timer", &(next_hour + 60).to_string(), &[]);
    assert!(String::from_utf8_lossy(&due.stdout).contains("due 1 fired 1 declined 0 failed 0"), "{due:?}");
    let again = run_cron(&state_dir, "timer", &(next_hour + 120).to_string(), &[]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("due 0 fired 0"), "{again:?}");

    let host = Host::start_with(HostOptions { state_dir, ..HostOptions::default() });
    let fires = host.request("GET", &format!("{hook}/last-fires"), None).json();
    assert_eq!(fires["lastFires"].as_array().unwrap().len(), 1);
    assert_eq!(fires["lastFires"][0]["firedBy"], "schedule");
    assert_eq!(fires["lastFires"][0]["result"], "success", "{fires}");
    let task = host.request("GET", &format!("/api/queue/v1/task/{}", fires["lastFires"][0]["taskId"].as_str().unwrap()), None).json();
    let slot = host.request("POST", "/api/taskhooks/v1/schedule-preview", Some(&json!({"schedule": ["0 0 * * * *"], "count": 2, "from": chrono::DateTime::from_timestamp(next_hour as i64 - 1, 0).unwrap().to_rfc3339()}))).json();
    assert_eq!(task["payload"]["command"][1], slot["nextFires"][0], "the template's now is the slot");
    let status = host.request("GET", &format!("{hook}/status"), None).json();
    assert_eq!(status["nextScheduledDate"], slot["nextFires"][1], "moved to the next slot");
}

#[test]
fn cron_components_run_once_at_a_given_time() {
    let state_dir = temp_dir("cron");
    let out = run_cron(&state_dir, "timer", "2026-11-23T12:15:00Z", &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The guest saw the requested time, not the wall clock.
    assert!(String::from_utf8_lossy(&out.stdout).contains("timer: tick at 1795436100"), "{out:?}");

    let relay = run_cron(&state_dir, "relay", "1795436100", &[]);
    assert!(relay.status.success(), "{relay:?}");
    assert!(String::from_utf8_lossy(&relay.stdout).contains("pulse_api_url is not set"));

    // A failing guest is reported with a non-zero exit, not a crash.
    let failing = run_cron(&state_dir, "relay", "1795436100", &[("SPIN_VARIABLE_PULSE_API_URL", "http://127.0.0.1:1")]);
    assert_eq!(failing.status.code(), Some(1), "{failing:?}");
    assert!(String::from_utf8_lossy(&failing.stderr).contains("component `relay` failed"));

    let unknown = run_cron(&state_dir, "nope", "1795436100", &[]);
    assert!(!unknown.status.success());
}
