//! The host's own promises, on a fixture application: a guest that traps or never answers
//! costs one request a 500 (with a log line), never the host; cron triggers run on their
//! expressions; a manifest can live anywhere (`--from`).

use std::path::Path;
use std::time::Duration;
use taskhooks_e2e::{repo_root, temp_dir, Host, HostOptions};

fn built(name: &str) -> String {
    let p = repo_root().join("target/wasm32-wasip2/release").join(name);
    assert!(p.exists(), "{} is missing: run scripts/build first", p.display());
    p.display().to_string()
}

fn write_fixture_app(dir: &Path) {
    let wat = include_str!("../fixtures/misbehaving-http.wat");
    for (name, body) in [("trap", "unreachable"), ("silent", "")] {
        let wasm = wat::parse_str(wat.replace("BODY", body)).expect("fixture WAT");
        std::fs::write(dir.join(format!("{name}.wasm")), wasm).unwrap();
    }
    let probe = wat::parse_str(include_str!("../fixtures/memory-probe.wat")).expect("probe WAT");
    std::fs::write(dir.join("probe.wasm"), probe).unwrap();
    let manifest = format!(
        r#"
spin_manifest_version = 2
[application]
name = "fixture"
[variables]
root_access_token = {{ required = true, secret = true }}
secrets_key = {{ required = true, secret = true }}

[[trigger.http]]
route = "/trap/..."
component = "trap"
[[trigger.http]]
route = "/silent"
component = "silent"
[[trigger.http]]
route = "/probe"
component = "probe"
[[trigger.http]]
route = "/api/..."
component = "trigger"
[[trigger.cron]]
component = "timer"
cron_expression = "* * * * * *"

[component.trap]
source = "trap.wasm"
[component.silent]
source = "silent.wasm"
[component.probe]
source = "probe.wasm"
[component.trigger]
source = "{trigger}"
key_value_stores = ["default"]
[component.trigger.variables]
root_access_token = "{{{{ root_access_token }}}}"
secrets_key = "{{{{ secrets_key }}}}"
[component.timer]
source = "{timer}"
key_value_stores = ["default"]
[component.timer.variables]
secrets_key = "{{{{ secrets_key }}}}"
"#,
        trigger = built("taskhooks_trigger.wasm"),
        timer = built("taskhooks_timer.wasm"),
    );
    std::fs::write(dir.join("spin.toml"), manifest).unwrap();
}

fn fixture_host() -> Host {
    let dir = temp_dir("fixture-app");
    write_fixture_app(&dir);
    Host::start_with(HostOptions {
        manifest: Some(dir.join("spin.toml")),
        state_dir: dir.join(".spin"),
        env: vec![],
        extra_args: vec![],
    })
}

#[test]
fn a_trapping_or_silent_guest_costs_one_request_not_the_host() {
    let mut host = fixture_host();
    for _ in 0..3 {
        let trapped = host.request("GET", "/trap/x", None);
        assert_eq!(trapped.status, 500);
        let silent = host.request("GET", "/silent", None);
        assert_eq!(silent.status, 500);
    }
    assert!(host.is_running());
    let log = host.log();
    assert!(log.contains("component `trap` failed on GET /trap/..."), "{log}");
    assert!(log.contains("unreachable"), "the trap reason is logged: {log}");
    assert!(log.contains("component `silent` failed on GET /silent: guest never set a response"), "{log}");
    // The healthy component beside them still answers.
    assert_eq!(host.request("GET", "/api/hooks/v1/ping", None).status, 200);
}

#[test]
fn every_request_gets_a_fresh_instance_memory() {
    // The pool reuses a returned instance's slot for the next request; its memory is
    // reset page by page (PAGEMAP_SCAN) or range by range. Either way, what one request
    // wrote must be gone for the next: in the stack region, in the data image, above it,
    // and in memory the request grew.
    let host = fixture_host();
    for _ in 0..20 {
        assert_eq!(host.request("GET", "/probe", None).status, 500);
    }
    // A failure's line is written as its 500 goes out: wait for the last one.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while host.log().matches("component `probe` failed").count() < 20 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = host.log();
    assert_eq!(log.matches("component `probe` failed").count(), 20, "{log}");
    assert!(!log.contains("divide by zero"), "a request saw an earlier one's memory: {log}");
    assert_eq!(log.matches("unreachable").count(), 20, "{log}");
}

#[test]
fn cron_triggers_fire_on_their_expression() {
    let host = fixture_host();
    // `* * * * * *` fires every second: two ticks within a few seconds.
    let ticked = host.wait_for_output(Duration::from_secs(10), |out| out.matches("timer: tick at").count() >= 2);
    assert!(ticked, "stdout: {}\nlog: {}", host.output(), host.log());
}

#[test]
fn a_broken_manifest_fails_at_start_with_a_reason() {
    let dir = temp_dir("broken");
    std::fs::write(
        dir.join("spin.toml"),
        "spin_manifest_version = 2\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"ghost\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(taskhooks_e2e::host_binary())
        .args(["up", "--listen", "127.0.0.1:0", "--from"])
        .arg(dir.join("spin.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`ghost`"), "{out:?}");
}
