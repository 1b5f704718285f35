"""Audit history through the official client: every create, update and delete of a hook,
role or client and every token reset is recorded with the caller, the time and the action,
served by `getEntityHistory` and `listAuditHistory` exactly as upstream's schema says, paged,
kept 30 days; what changed is served by the extension, never a secret."""

import datetime
import json
import os
import pathlib
import subprocess

import jsonschema
import pytest
import taskcluster

from conftest import REPO, ROOT_ACCESS_TOKEN, ROOT_CLIENT_ID, SECRETS_KEY, host_binary
from taskhooks_client import Taskhooks

# The schema the service serves (schemas/ is what the endpoint table names), without its
# deployment-relative `$id`/`$schema`.
SCHEMA = {k: v for k, v in json.loads((REPO / "schemas" / "auth" / "v1" / "get-entity-history-response.json").read_text()).items() if k not in ("$id", "$schema")}
ROLE_SCOPES = ["queue:create-task:*", "queue:scheduler-id:*"]


def hook(name):
    return {"metadata": {"name": name, "description": "", "owner": "o@example.com", "emailOnError": False},
            "task": {"taskQueueId": "proj/ci", "schedulerId": "-", "payload": {},
                     "metadata": {"name": name, "description": "", "owner": "o@example.com", "source": "https://example.com"}}}


def history(auth, *args, **query):
    answer = auth.getEntityHistory(*args, query=query) if len(args) == 2 else auth.listAuditHistory(*args, query=query)
    jsonschema.validate(answer, SCHEMA)
    return answer


def test_every_change_is_recorded_and_served_as_upstream_serves_it(host, root_options):
    auth, hooks = taskcluster.Auth(root_options), taskcluster.Hooks(root_options)
    auth.createRole("hook-id:audit/*", {"description": "audit test", "scopes": ROLE_SCOPES})
    auth.updateRole("hook-id:audit/*", {"description": "audit test, updated", "scopes": ROLE_SCOPES})
    hooks.createHook("audit", "h/1", hook("one"))
    hooks.updateHook("audit", "h/1", hook("one, renamed"))
    hooks.resetTriggerToken("audit", "h/1")
    hooks.removeHook("audit", "h/1")
    # A client that acts for itself, then its own history.
    alice = auth.createClient("project/alice", {"expires": taskcluster.fromNowJSON("1 day"), "description": "alice",
                                                 "scopes": ["hooks:modify-hook:audit/*", "assume:hook-id:audit/*"]})
    reset = auth.resetAccessToken("project/alice")
    as_alice = taskcluster.Hooks({**root_options, "credentials": {"clientId": "project/alice", "accessToken": reset["accessToken"]}})
    as_alice.createHook("audit", "by-alice", hook("alice's"))

    entries = history(auth, "hook", "audit/h/1")["auditHistory"]
    assert [(e["actionType"], e["clientId"], e["entityType"], e["entityId"]) for e in entries] == [
        ("created", ROOT_CLIENT_ID, "hook", "audit/h/1"),
        ("updated", ROOT_CLIENT_ID, "hook", "audit/h/1"),
        ("trigger token reset", ROOT_CLIENT_ID, "hook", "audit/h/1"),
        ("deleted", ROOT_CLIENT_ID, "hook", "audit/h/1"),
    ]
    times = [datetime.datetime.fromisoformat(e["created"].replace("Z", "+00:00")) for e in entries]
    assert times == sorted(times) and abs((datetime.datetime.now(datetime.timezone.utc) - times[0]).total_seconds()) < 120
    assert [e["actionType"] for e in history(auth, "role", "hook-id:audit/*")["auditHistory"]] == ["created", "updated"]
    assert [e["actionType"] for e in history(auth, "client", "project/alice")["auditHistory"]] == ["created", "access token reset"]
    mine = history(auth, "project/alice")["auditHistory"]
    assert [(e["entityType"], e["entityId"], e["actionType"]) for e in mine] == [("hook", "audit/by-alice", "created")]

    # Paged: a continuation token until the last page.
    first = history(auth, "hook", "audit/h/1", limit=3)
    second = history(auth, "hook", "audit/h/1", limit=3, continuationToken=first["continuationToken"])
    assert len(first["auditHistory"]) == 3 and second["auditHistory"] == entries[3:] and "continuationToken" not in second

    # What changed, by the extension; never a token.
    changes = Taskhooks(root_options).auditChanges("hook", "audit/h/1")["auditHistory"]
    assert changes[1]["before"]["metadata"]["name"] == "one" and changes[1]["after"]["metadata"]["name"] == "one, renamed"
    assert "before" not in changes[2] and changes[3]["before"]["metadata"]["name"] == "one, renamed"
    client_changes = Taskhooks(root_options).auditChanges("client", "project/alice")["auditHistory"]
    assert client_changes[0]["after"]["scopes"] == ["assume:hook-id:audit/*", "hooks:modify-hook:audit/*"]
    text = json.dumps(client_changes) + json.dumps(mine)
    assert alice["accessToken"] not in text and reset["accessToken"] not in text


def test_reading_history_needs_upstreams_scopes(host, root_options):
    auth = taskcluster.Auth(root_options)
    reader = auth.createClient("project/reader", {"expires": taskcluster.fromNowJSON("1 day"), "description": "",
                                                   "scopes": ["auth:audit-history:role"]})
    as_reader = taskcluster.Auth({**root_options, "credentials": {"clientId": "project/reader", "accessToken": reader["accessToken"]}})
    assert as_reader.getEntityHistory("role", "hook-id:audit/*")["auditHistory"]
    for call in (lambda: as_reader.getEntityHistory("hook", "audit/h/1"), lambda: as_reader.listAuditHistory(ROOT_CLIENT_ID)):
        with pytest.raises(taskcluster.exceptions.TaskclusterRestFailure) as refused:
            call()
        assert refused.value.status_code == 403
    with pytest.raises(taskcluster.exceptions.TaskclusterRestFailure) as bad:
        auth.getEntityHistory("gadget", "x")
    assert bad.value.status_code == 400 and "entityType" in str(bad.value)


def test_entries_are_kept_thirty_days(host, root_options):
    auth = taskcluster.Auth(root_options)
    auth.createRole("audit-expiry", {"description": "", "scopes": []})
    assert len(auth.getEntityHistory("role", "audit-expiry")["auditHistory"]) == 1
    env = dict(os.environ, SPIN_VARIABLE_ROOT_ACCESS_TOKEN=ROOT_ACCESS_TOKEN, SPIN_VARIABLE_SECRETS_KEY=SECRETS_KEY)
    for days in (29, 32):
        at = int((datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)).timestamp())
        done = subprocess.run([host_binary(), "cron", "timer", "--state-dir", host.state, "--at", str(at)], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        left = auth.getEntityHistory("role", "audit-expiry")["auditHistory"]
        assert len(left) == (1 if days == 29 else 0), (days, left, done.stdout)
