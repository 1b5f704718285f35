"""`GET /metrics` read by Prometheus's own text parser (prometheus_client): the counts
match the fires, rejections, requests and ticks the test made; a bearer token or Hawk with
`hooks:metrics` reads it, nobody else."""

import os
import subprocess
import time
import urllib.error
import urllib.request

import mohawk
import pytest
import taskcluster
from prometheus_client.parser import text_string_to_metric_families

from conftest import REPO, ROOT_ACCESS_TOKEN, ROOT_CLIENT_ID, SECRETS_KEY, RunningHost, host_binary

TOKEN = "metrics-bearer-token-for-tests-91c2"
TASK = {"taskQueueId": "proj/ci", "schedulerId": "-", "payload": {},
        "metadata": {"name": "n", "description": "", "owner": "o@example.com", "source": "https://example.com"}}


@pytest.fixture(scope="module")
def host():
    h = RunningHost({"SPIN_VARIABLE_METRICS_TOKEN": TOKEN})
    yield h
    h.stop()


def scrape(host, token=TOKEN):
    req = urllib.request.Request(f"{host.root_url}/metrics", headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0)


def test_counts_match_what_the_test_did(host):
    options = {"rootUrl": host.root_url, "credentials": {"clientId": ROOT_CLIENT_ID, "accessToken": ROOT_ACCESS_TOKEN}, "maxRetries": 0}
    taskcluster.Auth(options).createRole("hook-id:metrics/*", {"description": "", "scopes": ["queue:create-task:*", "queue:scheduler-id:*"]})
    hooks = taskcluster.Hooks(options)
    before = scrape(host)
    hooks.createHook("metrics", "h", {
        "metadata": {"name": "m", "description": "", "owner": "o@example.com", "emailOnError": False},
        "schedule": ["0 0 * * * *"],
        # Scheduled fires have no payload: they always create; triggers only with `go`.
        "task": {"$if": "firedBy == 'schedule'", "then": TASK, "else": {"$if": "payload.go", "then": TASK}},
        "triggerSchema": {"type": "object", "properties": {"go": {"type": "boolean"}}, "additionalProperties": False},
    })
    for go in (True, True, True, False):
        hooks.triggerHook("metrics", "h", {"go": go})
    with pytest.raises(taskcluster.exceptions.TaskclusterRestFailure):
        hooks.triggerHook("metrics", "h", {"go": "yes"})
    env = dict(os.environ, SPIN_VARIABLE_ROOT_ACCESS_TOKEN=ROOT_ACCESS_TOKEN, SPIN_VARIABLE_SECRETS_KEY=SECRETS_KEY, SPIN_VARIABLE_METRICS_TOKEN=TOKEN)
    next_hour = (int(time.time()) // 3600 + 1) * 3600
    done = subprocess.run([host_binary(), "cron", "timer", "--state-dir", host.state, "--at", str(next_hour + 30)], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    after = scrape(host)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("taskhooks_hook_fires_total", fired_by="triggerHook", result="created") == 3
    assert delta("taskhooks_hook_fires_total", fired_by="triggerHook", result="declined") == 1
    assert delta("taskhooks_hook_fires_total", fired_by="schedule", result="created") == 1, done.stdout + done.stderr
    assert delta("taskhooks_trigger_schema_rejections_total", fired_by="trigger") == 1
    assert delta("taskhooks_api_requests_total", method="triggerHook", status="200") == 4
    assert delta("taskhooks_api_requests_total", method="triggerHook", status="400") == 1
    assert delta("taskhooks_api_requests_total", method="createHook", status="200") == 1
    assert delta("taskhooks_runs_total", component="timer", outcome="ok") == 1
    assert delta("taskhooks_run_items_total", component="timer", kind="fired") == 1
    # Histograms: one render per fire that got that far (5), one createTask per task (4).
    assert delta("taskhooks_render_seconds_count") == 5
    assert delta("taskhooks_create_task_seconds_count") == 4
    assert delta("taskhooks_create_task_seconds_bucket", le="+Inf") == 4
    assert value(after, "taskhooks_run_seconds_count", component="timer") >= 1
    assert value(after, "taskhooks_render_seconds_sum") > 0


def test_only_the_token_or_hooks_metrics_reads_them(host):
    with pytest.raises(urllib.error.HTTPError) as e:
        scrape(host, token="wrong")
    assert e.value.code == 401
    with pytest.raises(urllib.error.HTTPError) as e:
        scrape(host, token=None)
    assert e.value.code in (401, 403)
    # Hawk, with and without the scope.
    auth = taskcluster.Auth({"rootUrl": host.root_url, "credentials": {"clientId": ROOT_CLIENT_ID, "accessToken": ROOT_ACCESS_TOKEN}})
    for client_id, scopes, status in (("project/scraper", ["hooks:metrics"], 200), ("project/nosy", ["hooks:list-hooks:*"], 403)):
        token = auth.createClient(client_id, {"expires": taskcluster.fromNowJSON("1 day"), "description": "", "scopes": scopes})["accessToken"]
        # A Hawk header made by mohawk (the official Python client's Hawk library).
        sender = mohawk.Sender({"id": client_id, "key": token, "algorithm": "sha256"}, f"{host.root_url}/metrics", "GET",
                               content="", content_type="", always_hash_content=False)
        req = urllib.request.Request(f"{host.root_url}/metrics", headers={"Authorization": sender.request_header})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                got = r.status
        except urllib.error.HTTPError as err:
            got = err.code
        assert got in ((status,) if status == 200 else (401, 403)), (client_id, got)
