"""Requests as an attacker would make them, against the real host on loopback: every one
is bounded in CPU time and memory, answers a Taskcluster-format error, leaves nothing
half-stored, and does not starve `ping`."""

import json
import threading
import time
import urllib.request

import pytest
import requests
import taskcluster
from taskcluster.exceptions import TaskclusterFailure

from conftest import ROOT_ACCESS_TOKEN, ROOT_CLIENT_ID, RunningHost

# Short limits keep the suite fast; the defaults are documented in the README.
REQUEST_TIME_MS = 1500


@pytest.fixture(scope="module")
def limited():
    h = RunningHost(extra_args=("--max-request-time", str(REQUEST_TIME_MS), "--max-instance-memory", str(256 << 20)))
    yield h
    h.stop()


def clients(host):
    options = {"rootUrl": host.root_url, "maxRetries": 0,
               "credentials": {"clientId": ROOT_CLIENT_ID, "accessToken": ROOT_ACCESS_TOKEN}}
    return taskcluster.Hooks(options), taskcluster.Auth(options), options


def hook_with(task, **extra):
    return {
        "metadata": {"name": "abuse", "description": "", "owner": "o@example.com", "emailOnError": False},
        "task": task,
        "triggerSchema": {"type": "object"},
        **extra,
    }


def ping_times_while(host, requests_to_run):
    """Runs `requests_to_run` (callables) in threads and pings meanwhile; returns the
    slowest ping (s) and each request's result."""
    results = [None] * len(requests_to_run)

    def run(i, f):
        results[i] = f()

    threads = [threading.Thread(target=run, args=(i, f)) for i, f in enumerate(requests_to_run)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    slowest = 0.0
    while any(t.is_alive() for t in threads):
        started = time.monotonic()
        with urllib.request.urlopen(f"{host.root_url}/api/hooks/v1/ping", timeout=30) as r:
            assert r.status == 200
        slowest = max(slowest, time.monotonic() - started)
        time.sleep(0.05)
    for t in threads:
        t.join()
    return slowest, results


def test_a_template_that_runs_forever_is_stopped_and_recorded_while_ping_answers(limited):
    hooks, auth, _ = clients(limited)
    auth.createRole("hook-id:abuse/*", {"description": "", "scopes": ["queue:create-task:*", "queue:scheduler-id:-"]})
    # A billion evaluations whose results are dropped (`$if` without `else`), so the render
    # runs into the time limit with little memory: a map that kept its results reached the
    # memory limit first once the components were built for speed.
    dropped = {"$if": "false", "then": 1}
    loop = lambda each: {"$map": {"$eval": "range(0, 1000)"}, "each(x)": each}  # noqa: E731
    spin = {"taskQueueId": "p/w", "payload": {"n": loop(loop(loop(dropped)))},
            "metadata": {"name": "n", "description": "", "owner": "o@example.com", "source": "https://example.com"}}
    hooks.createHook("abuse", "spin", hook_with(spin))
    def trigger():
        return trigger_raw(limited, "abuse", "spin", {})

    started = time.monotonic()
    slowest, results = ping_times_while(limited, [trigger, trigger])
    took = time.monotonic() - started
    for status, body in results:
        assert status == 400, body
        assert body["code"] == "RequestLimitExceeded", body
        assert "executed for more than 1500 ms" in body["message"], body
    assert slowest < 0.25, f"ping waited {slowest:.2f} s while two runaway renders ran"
    assert took < 10, took
    fires = hooks.listLastFires("abuse", "spin")["lastFires"]
    assert len(fires) == 2, fires
    assert all(f["result"] == "error" and f["error"].startswith("The fire did not finish") for f in fires), fires


def trigger_raw(host, g, h, payload):
    """triggerHook signed by the official client, answered as (status, body) whatever it is."""
    hooks, _, options = clients(host)
    try:
        return 200, hooks.triggerHook(g, h, payload)
    except TaskclusterFailure as e:
        return e.status_code, e.body


def test_a_template_that_eats_memory_is_stopped_at_the_cap(limited):
    hooks, auth, _ = clients(limited)
    auth.createRole("hook-id:memory/*", {"description": "", "scopes": ["queue:create-task:*", "queue:scheduler-id:-"]})
    # JSON-e `$let` chains, each binding doubling the one before: 16 bytes doubled 32
    # times would be 64 GiB, from a template of a few hundred bytes.
    nested = {"payload": {"$eval": "s32"}}
    for i in range(32, 0, -1):
        nested = {"$let": {f"s{i}": {"$eval": f"s{i - 1} + s{i - 1}"}}, "in": nested}
    task = {"$let": {"s0": "0123456789abcdef"}, "in": nested}
    hooks.createHook("memory", "double", hook_with(task))
    status, body = trigger_raw(limited, "memory", "double", {})
    assert status == 400, body
    assert body["code"] == "RequestLimitExceeded", body
    assert "more than 256 MiB of memory" in body["message"], body
    fires = hooks.listLastFires("memory", "double")["lastFires"]
    assert fires[0]["error"].startswith("The fire did not finish"), fires


def test_a_body_larger_than_the_instance_memory_is_refused_without_being_read(limited):
    # 300 MB against an instance memory of 256 MiB: the component stops reading 1 byte past
    # the largest body a method takes (a GitHub delivery's 25 MB), so the answer is the
    # method's refusal, not the memory limit's.
    resp = requests.post(f"{limited.root_url}/api/hooks/v1/hooks/g/h/trigger/a-token", data=b" " * (300 << 20),
                         headers={"content-type": "application/json"}, timeout=60)
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == "MalformedPayload" and "larger than 10 MB" in resp.json()["message"], resp.text
    assert requests.get(f"{limited.root_url}/api/hooks/v1/ping", timeout=10).status_code == 200


def test_a_small_template_rendering_a_huge_task_is_refused_before_the_queue(limited):
    hooks, auth, _ = clients(limited)
    auth.createRole("hook-id:big/*", {"description": "", "scopes": ["queue:create-task:*", "queue:scheduler-id:-"]})
    # 2^20 * 16 bytes = 16 MiB of payload from a template of a few hundred bytes.
    nested = {"taskQueueId": "p/w", "payload": {"blob": {"$eval": "s20"}},
              "metadata": {"name": "n", "description": "", "owner": "o@example.com", "source": "https://example.com"}}
    for i in range(20, 0, -1):
        nested = {"$let": {f"s{i}": {"$eval": f"s{i - 1} + s{i - 1}"}}, "in": nested}
    hooks.createHook("big", "task", hook_with({"$let": {"s0": "0123456789abcdef"}, "in": nested}))
    status, body = trigger_raw(limited, "big", "task", {})
    assert status == 400 and "at most 10485760 bytes" in body["message"], body
    fires = hooks.listLastFires("big", "task")["lastFires"]
    assert fires[0]["result"] == "error", fires
    assert "The rendered task is 16777" in fires[0]["error"], fires[0]["error"]
    queue = taskcluster.Queue({"rootUrl": limited.root_url, "maxRetries": 0})
    with pytest.raises(TaskclusterFailure) as e:
        queue.task(fires[0]["taskId"])
    assert e.value.status_code == 404, "nothing stored"


def test_huge_schedule_previews_are_refused_at_once_and_do_not_stall_ping(limited):
    body = json.dumps({"schedule": ["* * * * * *"] * 300_000}).encode()

    def preview():
        r = requests.post(f"{limited.root_url}/api/taskhooks/v1/schedule-preview", data=body,
                          headers={"content-type": "application/json"}, timeout=60)
        return r.status_code, r.json()

    started = time.monotonic()
    slowest, results = ping_times_while(limited, [preview, preview])
    assert time.monotonic() - started < 5
    for status, answer in results:
        assert status == 400, answer
        assert "at most 1000" in answer["message"], answer
    assert slowest < 0.5, slowest
