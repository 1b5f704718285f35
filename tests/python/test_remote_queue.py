"""Remote mode: with `taskcluster_*` variables set, fires create tasks in a remote Queue
with a Hawk-signed PUT carrying the hook's role as authorizedScopes; 5xx and network
failures are retried, 4xx answers are final and reported as upstream reports them."""

import pytest
import taskcluster
from taskcluster.exceptions import TaskclusterFailure

from conftest import ROOT_ACCESS_TOKEN, ROOT_CLIENT_ID, RunningHost
from fake_taskcluster import ACCESS_TOKEN, CLIENT_ID, USERS, FakeQueue


@pytest.fixture(scope="module")
def fake():
    f = FakeQueue()
    yield f
    f.stop()


@pytest.fixture(scope="module")
def hooks(fake):
    host = RunningHost({
        "SPIN_VARIABLE_TASKCLUSTER_ROOT_URL": fake.root_url,
        "SPIN_VARIABLE_ALLOWED_TASKCLUSTER_HOST": fake.root_url,
        "SPIN_VARIABLE_TASKCLUSTER_CLIENT_ID": CLIENT_ID,
        "SPIN_VARIABLE_TASKCLUSTER_ACCESS_TOKEN": ACCESS_TOKEN,
    })
    admin = "project/remote-admin"
    client = taskcluster.Hooks({"rootUrl": host.root_url, "maxRetries": 0,
                                "credentials": {"clientId": admin, "accessToken": USERS[admin][0]}})
    client.host = host
    client.createHook("proj", "remote", {
        "metadata": {"name": "remote", "description": "", "owner": "ops@example.com"},
        "task": {"taskQueueId": "proj/ci", "payload": {"n": {"$eval": "payload.n"}},
                 "metadata": {"name": "r", "description": "", "owner": "ops@example.com", "source": "https://example.com"}},
        "triggerSchema": {"type": "object"},
    })
    yield client
    host.stop()
    assert ACCESS_TOKEN not in "".join(host.log)


def error_of(fn, *args):
    with pytest.raises(TaskclusterFailure) as info:
        fn(*args)
    return info.value.status_code, info.value.body


def test_a_fire_is_a_signed_put_with_the_hooks_role(hooks, fake):
    fired = hooks.triggerHook("proj", "remote", {"n": 1})
    got = fake.received[-1]
    assert got["valid_signature"], got
    assert got["taskId"] == fired["taskId"]
    assert got["authorizedScopes"] == ["assume:hook-id:proj/remote"]
    assert got["task"]["payload"] == {"n": 1}
    assert hooks.listLastFires("proj", "remote")["lastFires"][0]["result"] == "success"


def test_5xx_and_dropped_answers_are_retried(hooks, fake):
    before = len(fake.received)
    fake.script = [(503, {"code": "InternalServerError", "message": "busy"}), (500, b"not json")]
    fired = hooks.triggerHook("proj", "remote", {"n": 2})
    attempts = fake.received[before:]
    assert len(attempts) == 3 and all(a["valid_signature"] for a in attempts)
    assert {a["taskId"] for a in attempts} == {fired["taskId"]}, "retries reuse the taskId"


def test_4xx_answers_are_final_and_reported(hooks, fake):
    before = len(fake.received)
    fake.script = [(409, {"code": "RequestConflict", "message": "taskId already used by another task"})]
    status, body = error_of(hooks.triggerHook, "proj", "remote", {"n": 3})
    assert (status, body["code"]) == (400, "InputError")
    assert body["message"].startswith("While calling `createTask`: `RequestConflict`")
    assert len(fake.received) == before + 1, "no retry"

    fake.script = [(403, {"code": "InsufficientScopes", "message": "role lacks queue:create-task:..."})]
    status, body = error_of(hooks.triggerHook, "proj", "remote", {"n": 4})
    assert (status, body["code"]) == (403, "InsufficientScopes")
    assert "hook-id:proj/remote" in body["message"] and "queue:create-task" in body["message"]

    fires = hooks.listLastFires("proj", "remote")["lastFires"]
    assert [f["result"] for f in fires[:2]] == ["error", "error"]
    assert '"code": "InsufficientScopes"' in fires[0]["error"]


def test_callers_are_authenticated_by_the_remote_auth_service(hooks, fake):
    host = hooks.host
    reader = "project/remote-reader"
    as_reader = taskcluster.Hooks({"rootUrl": host.root_url, "maxRetries": 0,
                                   "credentials": {"clientId": reader, "accessToken": USERS[reader][0]}})
    assert as_reader.hook("proj", "remote")["hookId"] == "remote"
    asked = fake.auth_requests[-1]
    assert (asked["method"], asked["resource"]) == ("get", "/api/hooks/v1/hooks/proj/remote")
    status, body = error_of(as_reader.triggerHook, "proj", "remote", {})
    assert (status, body["code"]) == (403, "InsufficientScopes")
    forged = taskcluster.Hooks({"rootUrl": host.root_url, "maxRetries": 0,
                                "credentials": {"clientId": reader, "accessToken": "wrong"}})
    status, body = error_of(forged.hook, "proj", "remote")
    assert (status, body["code"]) == (401, "AuthenticationFailed")
    local_root = taskcluster.Hooks({"rootUrl": host.root_url, "maxRetries": 0,
                                    "credentials": {"clientId": ROOT_CLIENT_ID, "accessToken": ROOT_ACCESS_TOKEN}})
    assert error_of(local_root.listHookGroups)[0] == 401, "remote mode knows only the deployment's clients"
