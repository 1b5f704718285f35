"""API conformance: every Hooks v1 method and the Auth subset, through the official
Taskcluster Python client, against the built components in the local host. Each success
response is validated against the official Hooks v1 response schema."""

import base64
import copy
import datetime
import json
import pathlib
import time

import mohawk
import pytest
import requests
import taskcluster
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7
from taskcluster.exceptions import TaskclusterFailure

from conftest import ROOT_ACCESS_TOKEN, ROOT_CLIENT_ID

# The schemas the service serves and its endpoint table names (upstream's, in schemas/).
SCHEMAS = pathlib.Path(__file__).resolve().parents[2] / "schemas" / "hooks" / "v1"
BASE = "https://schemas.invalid/schemas/hooks/v1/"


def _load_schemas():
    resources = []
    for path in SCHEMAS.glob("*.json"):
        schema = json.loads(path.read_text())
        schema.pop("$schema", None)
        schema["$id"] = BASE + path.name
        resources.append((BASE + path.name, Resource.from_contents(schema, default_specification=DRAFT7)))
    return Registry().with_resources(resources)


REGISTRY = _load_schemas()


def check_schema(name, value):
    schema = REGISTRY.contents(BASE + name)
    errors = sorted(Draft7Validator(schema, registry=REGISTRY).iter_errors(value), key=str)
    assert not errors, f"{name}: " + "; ".join(e.message for e in errors)
    return value


def expect_error(status, code, fn, *args, **kwargs):
    """Calls an API method that must fail; returns the error body."""
    with pytest.raises(TaskclusterFailure) as info:
        fn(*args, **kwargs)
    err = info.value
    assert err.status_code == status, f"{err.status_code}: {err.body}"
    if code:
        assert err.body.get("code") == code, err.body
        assert set(err.body) >= {"code", "message", "requestInfo"}
    return err.body


def in_days(n):
    return (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=n)).isoformat()


def hook_body(name="nightly"):
    return {
        "metadata": {"name": name, "description": "conformance", "owner": "ops@example.com"},
        "schedule": ["0 0 3 * * *"],
        "task": {
            "$if": "firedBy != 'triggerHook' || payload.go",
            "then": {
                "taskQueueId": "proj/ci",
                "schedulerId": "-",
                "payload": {"fired": "${firedBy}"},
                "metadata": {"name": name, "description": "", "owner": "ops@example.com", "source": "https://example.com"},
                "deadline": {"$fromNow": "2 hours"},
            },
        },
        "triggerSchema": {
            "type": "object",
            "properties": {"go": {"type": "boolean"}, "taskId": {"type": "string"}},
            "additionalProperties": False,
        },
    }


ROLE_SCOPES = ["queue:create-task:highest:proj/*", "queue:create-task:project:none", "queue:scheduler-id:-"]


@pytest.fixture(scope="module")
def hooks(root_options):
    return taskcluster.Hooks(root_options)


@pytest.fixture(scope="module")
def auth(root_options):
    return taskcluster.Auth(root_options)


@pytest.fixture(scope="module")
def setup(hooks, auth):
    """The README's set-up: a role for the project's hooks, and a hook."""
    auth.createRole("hook-id:proj/*", {"description": "proj hooks", "scopes": ROLE_SCOPES})
    hooks.createHook("proj", "nightly/build", hook_body())
    return None


def client_for(root_options, auth, client_id, scopes):
    created = auth.createClient(client_id, {"description": "conformance", "expires": in_days(1), "scopes": scopes})
    assert created["accessToken"]
    opts = dict(root_options, credentials={"clientId": client_id, "accessToken": created["accessToken"]})
    return opts, created


def test_monitoring_endpoints(host):
    anon = taskcluster.Hooks({"rootUrl": host.root_url, "maxRetries": 0})
    assert anon.ping()["alive"] is True
    assert anon.lbheartbeat() == {}
    assert anon.heartbeat() == {}
    assert "version" in anon.version()


def test_hook_lifecycle(hooks, setup):
    definition = check_schema("hook-definition.json", hooks.hook("proj", "nightly/build"))
    assert definition["hookId"] == "nightly/build"
    assert definition["metadata"]["emailOnError"] is True
    assert "triggerToken" not in definition and "nextTaskId" not in definition

    # Idempotent create; a different body conflicts.
    check_schema("hook-definition.json", hooks.createHook("proj", "nightly/build", hook_body()))
    expect_error(409, "RequestConflict", hooks.createHook, "proj", "nightly/build", hook_body("other"))

    hooks.createHook("proj", "second", hook_body("second"))
    groups = check_schema("list-hook-groups-response.json", hooks.listHookGroups())
    assert "proj" in groups["groups"]
    listed = check_schema("list-hooks-response.json", hooks.listHooks("proj"))
    assert [h["hookId"] for h in listed["hooks"]] == ["nightly/build", "second"]

    status = check_schema("hook-status.json", hooks.getHookStatus("proj", "second"))
    assert status["lastFire"] == {"result": "no-fire"}
    assert status["nextScheduledDate"].endswith("T03:00:00.000Z")

    update = hook_body("second")
    del update["schedule"]
    updated = check_schema("hook-definition.json", hooks.updateHook("proj", "second", update))
    assert updated["schedule"] == []
    assert "nextScheduledDate" not in hooks.getHookStatus("proj", "second")

    assert hooks.removeHook("proj", "second") == {}
    assert hooks.removeHook("proj", "second") == {}, "removeHook never 404s"
    expect_error(404, "ResourceNotFound", hooks.hook, "proj", "second")
    expect_error(404, "ResourceNotFound", hooks.listHooks, "no-such-group")
    expect_error(404, "ResourceNotFound", hooks.updateHook, "proj", "second", hook_body())


def test_trigger_and_last_fires(hooks, setup, host):
    declined = check_schema("trigger-hook-response.json", hooks.triggerHook("proj", "nightly/build", {"go": False}))
    assert declined == {}
    task_ids = []
    for _ in range(3):
        fired = check_schema("trigger-hook-response.json", hooks.triggerHook("proj", "nightly/build", {"go": True}))
        assert fired["status"]["taskId"] == fired["taskId"]
        task_ids.append(fired["taskId"])
    chosen = taskcluster.slugId()
    assert hooks.triggerHook("proj", "nightly/build", {"go": True, "taskId": chosen})["taskId"] == chosen
    task_ids.append(chosen)
    task = requests.get(f"{host.root_url}/api/queue/v1/task/{chosen}").json()
    assert task["payload"] == {"fired": "triggerHook"}

    # Paged newest first with limit and continuationToken.
    seen, query = [], {"limit": "3"}
    while True:
        page = check_schema("list-lastFires-response.json", hooks.listLastFires("proj", "nightly/build", query=query))
        seen += [f["taskId"] for f in page["lastFires"]]
        if "continuationToken" not in page:
            break
        query = {"limit": "3", "continuationToken": page["continuationToken"]}
    assert seen[: len(task_ids)] == list(reversed(task_ids))
    status = check_schema("hook-status.json", hooks.getHookStatus("proj", "nightly/build"))
    assert status["lastFire"]["result"] == "success"
    expect_error(404, "ResourceNotFound", hooks.listLastFires, "proj", "never-fired")

    expect_error(400, "InputError", hooks.triggerHook, "proj", "nightly/build", {"go": "yes"})
    expect_error(400, "InputError", hooks.triggerHook, "proj", "nightly/build", {"go": True, "taskId": "not-a-slug"})


def test_trigger_tokens(hooks, setup, host):
    token = check_schema("trigger-token-response.json", hooks.getTriggerToken("proj", "nightly/build"))["token"]
    assert hooks.getTriggerToken("proj", "nightly/build")["token"] == token
    anon = taskcluster.Hooks({"rootUrl": host.root_url, "maxRetries": 0})
    fired = anon.triggerHookWithToken("proj", "nightly/build", token, {"go": True})
    assert fired["taskId"]
    new = check_schema("trigger-token-response.json", hooks.resetTriggerToken("proj", "nightly/build"))["token"]
    assert new != token
    expect_error(401, "AuthenticationFailed", anon.triggerHookWithToken, "proj", "nightly/build", token, {"go": True})
    assert anon.triggerHookWithToken("proj", "nightly/build", new, {"go": True})["taskId"]
    expect_error(404, "ResourceNotFound", anon.triggerHookWithToken, "proj", "absent", new, {})


def test_auth_clients_and_roles(auth, root_options):
    assert auth.ping()["alive"] is True
    role = auth.createRole("project-admin:*", {"description": "admins", "scopes": ["hooks:modify-hook:project-<..>/*"]})
    assert role["roleId"] == "project-admin:*"
    assert auth.role("project-admin:*")["scopes"] == ["hooks:modify-hook:project-<..>/*"]
    assert any(r["roleId"] == "project-admin:*" for r in auth.listRoles())
    expanded = auth.expandScopes({"scopes": ["assume:project-admin:zap"]})["scopes"]
    assert "hooks:modify-hook:project-zap/*" in expanded
    auth.updateRole("project-admin:*", {"description": "admins", "scopes": ["hooks:get:*"]})
    assert auth.role("project-admin:*")["scopes"] == ["hooks:get:*"]
    auth.deleteRole("project-admin:*")
    expect_error(404, "ResourceNotFound", auth.role, "project-admin:*")

    opts, created = client_for(root_options, auth, "conformance/carol", ["hooks:get:*"])
    listed = auth.listClients(query={"prefix": "conformance/"})["clients"]
    assert "conformance/carol" in [c["clientId"] for c in listed]
    assert all("accessToken" not in c for c in listed)
    got = auth.client("conformance/carol")
    assert "accessToken" not in got and got["scopes"] == ["hooks:get:*"]
    carol = taskcluster.Auth(opts)
    assert "hooks:get:*" in carol.currentScopes()["scopes"]
    reset = auth.resetAccessToken("conformance/carol")
    assert reset["accessToken"] != created["accessToken"]
    expect_error(401, "AuthenticationFailed", carol.currentScopes)
    auth.deleteClient("conformance/carol")
    expect_error(404, "ResourceNotFound", auth.client, "conformance/carol")
    # `static/` is reserved for configured clients, the root client among them (upstream's rule).
    for reserved in [ROOT_CLIENT_ID, "static/other"]:
        body = expect_error(400, "InputError", auth.createClient, reserved, {"description": "x", "expires": in_days(1)})
        assert "reserved for statically configured clients" in body["message"]


def test_a_user_who_may_only_trigger(hooks, auth, root_options, setup):
    opts, _ = client_for(root_options, auth, "conformance/trigger-only", ["hooks:trigger-hook:proj/nightly/build"])
    user = taskcluster.Hooks(opts)
    assert user.triggerHook("proj", "nightly/build", {"go": True})["taskId"]
    body = expect_error(403, "InsufficientScopes", user.hook, "proj", "nightly/build")
    assert "hooks:get:proj:nightly/build" in body["message"]
    expect_error(403, "InsufficientScopes", user.createHook, "proj", "mine", hook_body())
    expect_error(403, "InsufficientScopes", user.triggerHook, "proj", "other", {"go": True})


def test_every_scope_rule(hooks, auth, root_options, setup):
    opts, _ = client_for(root_options, auth, "conformance/nobody", [])
    nobody = taskcluster.Hooks(opts)
    calls = {
        "listHookGroups": (nobody.listHookGroups, (), "hooks:list-hooks:"),
        "listHooks": (nobody.listHooks, ("proj",), "hooks:list-hooks:proj"),
        "hook": (nobody.hook, ("proj", "nightly/build"), "hooks:get:proj:nightly/build"),
        "getHookStatus": (nobody.getHookStatus, ("proj", "nightly/build"), "hooks:status:proj/nightly/build"),
        "createHook": (nobody.createHook, ("proj", "x", hook_body()), "hooks:modify-hook:proj/x"),
        "updateHook": (nobody.updateHook, ("proj", "nightly/build", hook_body()), "assume:hook-id:proj/nightly/build"),
        "removeHook": (nobody.removeHook, ("proj", "nightly/build"), "hooks:modify-hook:proj/nightly/build"),
        "triggerHook": (nobody.triggerHook, ("proj", "nightly/build", {}), "hooks:trigger-hook:proj/nightly/build"),
        "getTriggerToken": (nobody.getTriggerToken, ("proj", "nightly/build"), "hooks:get-trigger-token:proj/nightly/build"),
        "resetTriggerToken": (nobody.resetTriggerToken, ("proj", "nightly/build"), "hooks:reset-trigger-token:proj/nightly/build"),
        "listLastFires": (nobody.listLastFires, ("proj", "nightly/build"), "hooks:list-last-fires:proj/nightly/build"),
    }
    for name, (fn, args, scope) in calls.items():
        body = expect_error(403, "InsufficientScopes", fn, *args)
        assert scope in body["message"], (name, body["message"])
        assert body["requestInfo"]["method"] == name

    # createHook also needs the hook's role; `hook` uses `:` where the others use `/`.
    opts, _ = client_for(root_options, auth, "conformance/modifier", ["hooks:modify-hook:proj/*", "hooks:get:proj/*"])
    modifier = taskcluster.Hooks(opts)
    body = expect_error(403, "InsufficientScopes", modifier.createHook, "proj", "y", hook_body())
    assert "assume:hook-id:proj/y" in body["message"]
    expect_error(403, "InsufficientScopes", modifier.hook, "proj", "nightly/build")
    # 403 comes before validation and existence.
    expect_error(403, "InsufficientScopes", nobody.hook, "bad id", "x")


def test_authentication_failures(hooks, host, root_options, setup):
    wrong = taskcluster.Hooks(dict(root_options, credentials={"clientId": ROOT_CLIENT_ID, "accessToken": "wrong"}))
    expect_error(401, "AuthenticationFailed", wrong.listHookGroups)
    unknown = taskcluster.Hooks(dict(root_options, credentials={"clientId": "nobody/at-all", "accessToken": "x"}))
    body = expect_error(401, "AuthenticationFailed", unknown.listHookGroups)
    assert "unknown client" in body["message"]

    url = f"{host.root_url}/api/hooks/v1/hooks"
    creds = {"id": ROOT_CLIENT_ID, "key": ROOT_ACCESS_TOKEN, "algorithm": "sha256"}
    stale = mohawk.Sender(creds, url, "GET", content="", content_type="", _timestamp=int(time.time()) - 16 * 60)
    resp = requests.get(url, headers={"Authorization": stale.request_header})
    assert resp.status_code == 401 and resp.headers["www-authenticate"] == "hawk", resp.text
    fresh = mohawk.Sender(creds, url, "GET", content="", content_type="")
    assert requests.get(url, headers={"Authorization": fresh.request_header}).status_code == 200

    # A body changed after signing fails the payload hash.
    put = f"{host.root_url}/api/hooks/v1/hooks/proj/tampered"
    signed = mohawk.Sender(creds, put, "PUT", content=json.dumps(hook_body()), content_type="application/json")
    resp = requests.put(put, data=json.dumps(hook_body("evil")), headers={"Authorization": signed.request_header, "Content-Type": "application/json"})
    assert resp.status_code == 401, resp.text


def test_temporary_credentials_authorized_scopes_and_bewits(hooks, host, root_options, setup):
    now = datetime.datetime.now(datetime.timezone.utc)
    temp = taskcluster.createTemporaryCredentials(
        ROOT_CLIENT_ID, ROOT_ACCESS_TOKEN, now - datetime.timedelta(minutes=1), now + datetime.timedelta(hours=1),
        ["hooks:get:proj:*"],
    )
    limited = taskcluster.Hooks(dict(root_options, credentials=temp))
    assert limited.hook("proj", "nightly/build")["hookId"] == "nightly/build"
    expect_error(403, "InsufficientScopes", limited.listHookGroups)
    named = taskcluster.createTemporaryCredentials(
        ROOT_CLIENT_ID, ROOT_ACCESS_TOKEN, now - datetime.timedelta(minutes=1), now + datetime.timedelta(hours=1),
        ["hooks:list-hooks:*"], name="conformance/temporary",
    )
    assert "proj" in taskcluster.Hooks(dict(root_options, credentials=named)).listHookGroups()["groups"]

    narrowed = taskcluster.Hooks(dict(root_options, authorizedScopes=["hooks:list-hooks:"]))
    assert "groups" in narrowed.listHookGroups()
    expect_error(403, "InsufficientScopes", narrowed.hook, "proj", "nightly/build")

    signed_url = hooks.buildSignedUrl("hook", "proj", "nightly/build")
    assert requests.get(signed_url).json()["hookId"] == "nightly/build"
    assert requests.get(signed_url.replace("nightly%2Fbuild", "other")).status_code == 401


def test_bad_requests(hooks, host, setup):
    expect_error(400, "InvalidRequestArguments", hooks.hook, "bad id", "x")
    bad = hook_body()
    bad["schedule"] = ["0 0 3 0 * *"]
    body = expect_error(400, "InputError", hooks.createHook, "proj", "bad-schedule", bad)
    assert "0 0 3 0 * *" in body["message"]
    bad = hook_body()
    bad["triggerSchema"] = {"type": "beer"}
    body = expect_error(400, "InputError", hooks.createHook, "proj", "bad-schema", bad)
    assert body["message"].startswith("triggerSchema is not a valid JSON schema:")
    bad = hook_body()
    bad["metadata"]["owner"] = "not an email"
    expect_error(400, "InputValidationError", hooks.createHook, "proj", "bad-owner", bad)
    mismatched = dict(hook_body(), hookId="elsewhere")
    expect_error(400, "InputError", hooks.createHook, "proj", "mismatch", mismatched)
    expect_error(404, "ResourceNotFound", hooks.listHooks, "proj-none")

    resp = requests.put(f"{host.root_url}/api/hooks/v1/hooks/proj/x", data="{nope", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.json()["code"] == "MalformedPayload", resp.text
    assert resp.json()["requestInfo"]["method"] == "createHook"


def test_secrets_are_not_in_the_store_or_the_log(hooks, host, setup):
    token = hooks.getTriggerToken("proj", "nightly/build")["token"]
    db = pathlib.Path(host.state) / "sqlite_key_value.db"
    raw = db.read_bytes()
    assert token.encode() not in raw
    assert ROOT_ACCESS_TOKEN not in "".join(host.log)
    assert token not in "".join(host.log)


def test_extensions(hooks, host, root_options, setup):
    url = f"{host.root_url}/api/taskhooks/v1/hooks/proj/nightly%2Fbuild/dry-run"
    body = json.dumps({"payload": {"go": True}})
    creds = {"id": ROOT_CLIENT_ID, "key": ROOT_ACCESS_TOKEN, "algorithm": "sha256"}
    sender = mohawk.Sender(creds, url, "POST", content=body, content_type="application/json")
    dry = requests.post(url, data=body, headers={"Authorization": sender.request_header, "Content-Type": "application/json"})
    assert dry.status_code == 200, dry.text
    assert dry.json()["outcome"] == "task"
    assert dry.json()["task"]["payload"] == {"fired": "triggerHook"}
    preview = requests.post(f"{host.root_url}/api/taskhooks/v1/schedule-preview",
                            json={"schedule": ["0 0 3 * * *"], "count": 2, "from": "2026-11-23T00:00:00Z"})
    assert preview.json() == {"nextFires": ["2026-11-23T03:00:00.000Z", "2026-11-24T03:00:00.000Z"]}


def test_embedded_queue_through_the_official_queue_client(hooks, root_options, setup):
    queue = taskcluster.Queue(root_options)
    fired = hooks.triggerHook("proj", "nightly/build", {"go": True})
    task = queue.task(fired["taskId"])
    assert task["taskQueueId"] == "proj/ci" and task["taskGroupId"] == fired["taskId"]
    assert queue.status(fired["taskId"])["status"]["state"] == "pending"
    assert queue.listTaskGroup(fired["taskId"])["tasks"][0]["status"]["taskId"] == fired["taskId"]

    task_id = taskcluster.slugId()
    now = datetime.datetime.now(datetime.timezone.utc)
    definition = {
        "taskQueueId": "proj/ci", "created": taskcluster.stringDate(now),
        "deadline": taskcluster.stringDate(now + datetime.timedelta(hours=1)),
        "payload": {}, "metadata": {"name": "direct", "description": "", "owner": "ops@example.com", "source": "https://example.com"},
    }
    assert queue.createTask(task_id, definition)["status"]["state"] == "pending"
    assert queue.createTask(task_id, definition)["status"]["taskId"] == task_id, "idempotent"
    expect_error(409, "RequestConflict", queue.createTask, task_id, dict(definition, payload={"x": 1}))
    expect_error(404, "ResourceNotFound", queue.task, taskcluster.slugId())
