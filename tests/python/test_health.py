"""`ping`, `__heartbeat__` and `__version__` as an operator reads them: a real uptime,
every configured dependency checked (the key-value store, the remote Queue, RabbitMQ's
management API) with a 503 naming what failed, and the commit the components were built
from. (The store going away is in test_faults.)"""

import json
import subprocess
import time
import urllib.error
import urllib.request

from conftest import REPO, RunningHost
from fake_taskcluster import ACCESS_TOKEN, CLIENT_ID, FakeQueue


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_version_names_the_commit_and_ping_counts_up(host):
    status, version = get(f"{host.root_url}/api/hooks/v1/__version__")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    assert status == 200 and version["commit"] == head and version["version"], version
    assert version["build"].endswith("Z") and version["build"][:2] == "20", version
    first = get(f"{host.root_url}/api/hooks/v1/ping")[1]
    time.sleep(1.2)
    second = get(f"{host.root_url}/api/hooks/v1/ping")[1]
    assert second["alive"] and second["uptime"] >= first["uptime"] + 1, (first, second)
    assert get(f"{host.root_url}/api/hooks/v1/__heartbeat__") == (200, {}), "upstream's answer when healthy"


def test_the_heartbeat_checks_the_remote_queue_and_rabbitmq(rabbit):
    fake = FakeQueue()
    from test_pulse import pulse_env
    h = RunningHost({
        **pulse_env(rabbit),
        "SPIN_VARIABLE_TASKCLUSTER_ROOT_URL": fake.root_url,
        "SPIN_VARIABLE_ALLOWED_TASKCLUSTER_HOST": fake.root_url,
        "SPIN_VARIABLE_TASKCLUSTER_CLIENT_ID": CLIENT_ID,
        "SPIN_VARIABLE_TASKCLUSTER_ACCESS_TOKEN": ACCESS_TOKEN,
    })
    try:
        url = f"{h.root_url}/api/hooks/v1/__heartbeat__"
        assert get(url) == (200, {}), "all three answered"
        fake.fail("503")
        status, body = get(url)
        assert status == 503 and body["code"] == "ServiceUnavailable", body
        assert "queue: GET" in body["message"] and "HTTP 503" in body["message"] and "pulse" not in body["message"], body
        fake.recover()
        assert get(url)[0] == 200
    finally:
        h.stop()
        fake.stop()


def test_the_heartbeat_names_rabbitmq_when_it_does_not_answer(rabbit):
    from test_pulse import PULSE_PASSWORD, pulse_env
    env = pulse_env(rabbit)
    # A management API that nobody listens on (the port of a closed socket).
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    h = RunningHost({**env, "SPIN_VARIABLE_PULSE_API_URL": dead, "SPIN_VARIABLE_ALLOWED_PULSE_HOST": dead})
    try:
        status, body = get(f"{h.root_url}/api/hooks/v1/__heartbeat__")
        assert status == 503 and "pulse: " in body["message"] and PULSE_PASSWORD not in json.dumps(body), body
        assert get(f"{h.root_url}/api/hooks/v1/ping")[0] == 200
    finally:
        h.stop()


def test_one_structured_line_per_request_and_per_fire(host, root_options):
    """Each request and each fire writes one JSON line in Taskcluster's shape; neither a
    token nor a payload ever appears in them."""
    import taskcluster
    from conftest import ROOT_ACCESS_TOKEN
    taskcluster.Auth(root_options).createRole("hook-id:logs/*", {"description": "", "scopes": ["queue:create-task:*", "queue:scheduler-id:*"]})
    hooks = taskcluster.Hooks(root_options)
    hooks.createHook("logs", "h", {
        "metadata": {"name": "logs", "description": "", "owner": "o@example.com", "emailOnError": False},
        "task": {"$if": "payload.go", "then": {"taskQueueId": "proj/ci", "schedulerId": "-", "payload": {},
                 "metadata": {"name": "n", "description": "", "owner": "o@example.com", "source": "https://example.com"}}},
        "triggerSchema": {"type": "object"},
    })
    marker = "payload-marker-4f1c"
    created = hooks.triggerHook("logs", "h", {"go": True, "note": marker})["status"]["taskId"]
    hooks.triggerHook("logs", "h", {"go": False, "note": marker})
    token = hooks.getTriggerToken("logs", "h")["token"]
    with_token = hooks.triggerHookWithToken("logs", "h", token, {"go": True, "note": marker})["status"]["taskId"]
    time.sleep(0.3)
    lines = [json.loads(line) for line in host.log if line.startswith('{"')]
    fires = [line["Fields"] for line in lines if line["Type"] == "hook-fire" and line["Fields"]["hookGroupId"] == "logs"]
    assert [(f["firedBy"], f["result"]) for f in fires] == [("triggerHook", "success"), ("triggerHook", "declined"), ("triggerHookWithToken", "success")], fires
    assert [fires[0]["taskId"], fires[2]["taskId"]] == [created, with_token]
    requests = [line["Fields"] for line in lines if line["Type"] == "monitor.apiMethod" and "/logs/" in line["Fields"]["resource"]]
    names = [(r["name"], r["statusCode"], r["clientId"]) for r in requests]
    assert ("createHook", 200, "static/taskhooks/root") in names and ("triggerHookWithToken", 200, "") in names, names
    assert all(r["duration"] >= 0 and r["method"] in ("GET", "PUT", "POST") for r in requests)
    text = "".join(host.log)
    assert marker not in text and token not in text and ROOT_ACCESS_TOKEN not in text
    assert "/trigger/<redacted>" in json.dumps(requests)
