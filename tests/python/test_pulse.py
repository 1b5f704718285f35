"""The Pulse relay and GitHub webhooks against a real RabbitMQ (Debian's rabbitmq-server,
started privately on loopback ports): hook queues and bindings on the broker, messages
published through it firing hooks, relays killed partway or running side by side, and
signed GitHub deliveries."""

import hashlib
import hmac
import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
import taskcluster
from taskcluster.exceptions import TaskclusterRestFailure

from conftest import REPO, ROOT_ACCESS_TOKEN, ROOT_CLIENT_ID, SECRETS_KEY, RunningHost, Spawned, host_binary
from rabbitmq import quote
from taskhooks_client import Taskhooks

GITHUB_SECRET = "github-webhook-secret-for-tests"
PUSH = "exchange/test/v1/push"
ROLE_SCOPES = ["queue:create-task:highest:proj/*", "queue:create-task:project:none", "queue:scheduler-id:-"]


PULSE_USER = "taskhooks-relay"
PULSE_PASSWORD = "pulse-password-for-tests-3f9c"


def pulse_env(rabbit):
    """The service's own RabbitMQ user, as the README describes it (management tag,
    permissions on the vhost), so the tests also show its password stays out of logs."""
    rabbit.api.ok("PUT", f"/api/users/{PULSE_USER}", {"password": PULSE_PASSWORD, "tags": "management"})
    rabbit.api.ok("PUT", f"/api/permissions/%2F/{PULSE_USER}", {"configure": ".*", "write": ".*", "read": ".*"})
    return {
        "SPIN_VARIABLE_PULSE_API_URL": rabbit.url,
        "SPIN_VARIABLE_PULSE_USERNAME": PULSE_USER,
        "SPIN_VARIABLE_PULSE_PASSWORD": PULSE_PASSWORD,
        "SPIN_VARIABLE_ALLOWED_PULSE_HOST": rabbit.url,
        "SPIN_VARIABLE_GITHUB_WEBHOOK_SECRET": GITHUB_SECRET,
    }


@pytest.fixture(scope="module")
def host(rabbit):
    h = RunningHost(pulse_env(rabbit))
    yield h
    h.stop()


@pytest.fixture(scope="module")
def options(host):
    return {"rootUrl": host.root_url, "credentials": {"clientId": ROOT_CLIENT_ID, "accessToken": ROOT_ACCESS_TOKEN}, "maxRetries": 0}


@pytest.fixture(scope="module")
def hooks(options):
    auth = taskcluster.Auth(options)
    auth.createRole("hook-id:pulse/*", {"description": "pulse test hooks", "scopes": ROLE_SCOPES})
    return taskcluster.Hooks(options)


@pytest.fixture(scope="module")
def taskhooks(options):
    return Taskhooks(options)


def hook_body(bindings, schema=None):
    return {
        "metadata": {"name": "pulse", "description": "fired by messages", "owner": "ops@example.com"},
        "bindings": bindings,
        "task": {
            "taskQueueId": "proj/ci",
            "schedulerId": "-",
            "payload": {"got": {"$eval": "payload"}, "firedBy": "${firedBy}"},
            "metadata": {"name": "pulse", "description": "", "owner": "ops@example.com", "source": "https://example.com"},
        },
        "triggerSchema": schema if schema is not None else {"type": "object"},
    }


def queue_of(g, h):
    return f"queue/taskcluster-hooks/hooks/{g}/{h}"


def all_fires(hooks, g, h):
    fires, token = [], None
    while True:
        page = hooks.listLastFires(g, h, query={"limit": 1000, **({"continuationToken": token} if token else {})})
        fires += page["lastFires"]
        token = page.get("continuationToken")
        if not token:
            return fires


def test_topic_matching_routes_on_rabbitmq_as_the_shared_matcher_says(rabbit):
    """The Rust matcher's table (shared/src/topic_cases.json), checked on the broker."""
    cases = json.loads((REPO / "shared/src/topic_cases.json").read_text())
    rabbit.api.declare_exchange("exchange/topic-check")
    for i, case in enumerate(cases):
        q = f"topic-check-{i}"
        rabbit.api.ok("PUT", f"/api/queues/%2F/{q}", {"durable": False})
        rabbit.api.ok("POST", f"/api/bindings/%2F/e/{quote('exchange/topic-check')}/q/{q}", {"routing_key": case["pattern"]})
        rabbit.api.publish("exchange/topic-check", case["key"], {"i": i})
        got = rabbit.api.peek(q)
        rabbit.api.ok("DELETE", f"/api/queues/%2F/{q}")
        assert bool(got) == case["matches"], case


def test_bindings_follow_the_hook_and_changes_are_announced(hooks, taskhooks, rabbit):
    api = rabbit.api
    api.declare_exchange(PUSH)
    api.declare_exchange("exchange/test/v1/other")
    # Listen to the hook-changed exchanges as any Pulse consumer would.
    for event in ("hook-created", "hook-updated", "hook-deleted"):
        api.declare_exchange(f"exchange/taskcluster-hooks/v1/{event}")
    api.ok("PUT", "/api/queues/%2F/changes", {"durable": False})
    for event in ("hook-created", "hook-updated", "hook-deleted"):
        api.ok("POST", f"/api/bindings/%2F/e/{quote('exchange/taskcluster-hooks/v1/' + event)}/q/changes", {"routing_key": "#"})

    bindings = [{"exchange": PUSH, "routingKeyPattern": "primary.#"}, {"exchange": "exchange/test/v1/typo", "routingKeyPattern": "#"}]
    hooks.createHook("pulse", "bound/one", hook_body(bindings))
    q = queue_of("pulse", "bound/one")
    # Synced at once by createHook, not a relay run later.
    assert q in api.queues()
    assert api.queue_bindings(q) == [(PUSH, "primary.#")]
    status = taskhooks.pulseStatus("pulse", "bound/one")
    assert status["queue"] == q
    states = {b["exchange"]: b for b in status["bindings"]}
    assert states[PUSH]["state"] == "bound"
    assert states["exchange/test/v1/typo"]["state"] == "failed"
    assert "no exchange 'exchange/test/v1/typo'" in states["exchange/test/v1/typo"]["error"]

    # The exchange appears later: the next relay run binds it.
    api.declare_exchange("exchange/test/v1/typo")
    report = taskhooks.relay()
    assert report["bound"] == 1 and report["bindingErrors"] == 0, report
    assert api.queue_bindings(q) == [(PUSH, "primary.#"), ("exchange/test/v1/typo", "#")]

    hooks.updateHook("pulse", "bound/one", hook_body([{"exchange": "exchange/test/v1/other", "routingKeyPattern": "*.x"}]))
    assert api.queue_bindings(q) == [("exchange/test/v1/other", "*.x")]
    # Bindings removed behind the service's back come back on the next run.
    binding = [b for b in api.ok("GET", f"/api/queues/%2F/{quote(q)}/bindings") if b["source"]][0]
    api.ok("DELETE", f"/api/bindings/%2F/e/{quote(binding['source'])}/q/{quote(q)}/{quote(binding['properties_key'])}")
    assert taskhooks.relay()["bound"] == 1
    assert api.queue_bindings(q) == [("exchange/test/v1/other", "*.x")]

    hooks.removeHook("pulse", "bound/one")
    assert q not in api.queues()
    # A queue in our namespace whose hook is gone (e.g. removed while RabbitMQ was down).
    api.ok("PUT", f"/api/queues/%2F/{quote(queue_of('pulse', 'stale'))}", {"durable": True, "arguments": {"x-max-length": 10000}})
    assert taskhooks.relay()["deleted"] == 1
    assert queue_of("pulse", "stale") not in api.queues()

    events = [(m["exchange"].rsplit("/", 1)[1], m["routing_key"], json.loads(m["payload"])) for m in api.peek("changes")]
    assert events == [
        ("hook-created", "_", {"hookGroupId": "pulse", "hookId": "bound/one"}),
        ("hook-updated", "_", {"hookGroupId": "pulse", "hookId": "bound/one"}),
        ("hook-deleted", "_", {"hookGroupId": "pulse", "hookId": "bound/one"}),
    ]


def test_published_messages_fire_the_bound_hook_once(hooks, taskhooks, rabbit, options):
    api = rabbit.api
    api.declare_exchange(PUSH)
    api.declare_exchange("exchange/test/v1/task-completed")
    schema = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}
    hooks.createHook("pulse", "fired", hook_body([
        {"exchange": PUSH, "routingKeyPattern": "primary.#"},
        {"exchange": "exchange/test/v1/task-completed", "routingKeyPattern": "route.index.proj.#"},
    ], schema))
    for n in range(20):
        assert api.publish(PUSH, f"primary.repo.{n}", {"n": n})
    assert not api.publish(PUSH, "secondary.repo", {"n": 100}), "not bound: never reaches the hook's queue"
    # A CC'd route, as the Queue publishes a task's routes.
    assert api.publish("exchange/test/v1/task-completed", "primary.task", {"n": 20}, cc=["route.index.proj.nightly"])
    api.publish(PUSH, "primary.bad", {"n": "twenty-one"})
    api.publish(PUSH, "primary.bad", "not json at all")

    report = taskhooks.relay()
    assert (report["fired"], report["discarded"], report["failed"]) == (21, 2, 0), report
    assert api.peek(queue_of("pulse", "fired")) == []

    fires = all_fires(hooks, "pulse", "fired")
    assert len(fires) == 21 and all(f["firedBy"] == "pulseMessage" and f["result"] == "success" for f in fires)
    queue = taskcluster.Queue(options)
    got = sorted(queue.task(f["taskId"])["payload"]["got"]["n"] for f in fires)
    assert got == list(range(21))
    assert all(queue.task(f["taskId"])["payload"]["firedBy"] == "pulseMessage" for f in fires[:3])

    status = taskhooks.pulseStatus("pulse", "fired")
    assert status["discarded"]["count"] == 2
    assert "not JSON" in status["discarded"]["last"]["reason"]

    # The same message published again (at-least-once publishing): one message, no task.
    api.publish(PUSH, "primary.repo.0", {"n": 0})
    report = taskhooks.relay()
    assert (report["fired"], report["duplicates"]) == (0, 1), report
    assert len(all_fires(hooks, "pulse", "fired")) == 21


class Kv:
    """Reads the host's SQLite store, as the timer fault tests do."""

    def __init__(self, host):
        self.path = os.path.join(host.state, "sqlite_key_value.db")

    def count(self, prefix):
        with sqlite3.connect(self.path, timeout=30) as db:
            return db.execute("SELECT count(*) FROM spin_key_value WHERE key >= ? AND key < ?", (prefix, prefix + "\uffff")).fetchone()[0]


def relay_process(host, rabbit):
    env = dict(os.environ, SPIN_VARIABLE_ROOT_ACCESS_TOKEN=ROOT_ACCESS_TOKEN, SPIN_VARIABLE_SECRETS_KEY=SECRETS_KEY, **pulse_env(rabbit))
    return Spawned([host_binary(), "cron", "relay", "--state-dir", host.state], cwd=REPO, env=env)


def relay_until_done(host, rabbit):
    """Runs the relay until a run was not blocked by a killed relay's lease."""
    for _ in range(40):
        out = relay_process(host, rabbit).communicate(timeout=300)[0]
        assert PULSE_PASSWORD not in out and GITHUB_SECRET not in out
        if "holds the lease" not in out:
            return out
        time.sleep(0.5)
    raise AssertionError("the relay lease never expired")


def publish_many(api, count, tag):
    for n in range(count):
        api.publish(PUSH, f"primary.{tag}", {"n": n, "tag": tag})


def assert_each_message_fired_once(hooks, options, g, h, count):
    fires = all_fires(hooks, g, h)
    task_ids = [f["taskId"] for f in fires]
    assert len(task_ids) == count, f"{len(task_ids)} lastFires for {count} messages"
    assert len(set(task_ids)) == count
    queue = taskcluster.Queue(options)
    assert sorted(queue.task(t)["payload"]["got"]["n"] for t in task_ids) == list(range(count))


def test_relays_killed_partway_lose_and_double_nothing(hooks, rabbit, host, options):
    api = rabbit.api
    api.declare_exchange(PUSH)
    hooks.createHook("pulse", "killed", hook_body([{"exchange": PUSH, "routingKeyPattern": "primary.killed"}]))
    publish_many(api, 600, "killed")
    kv = Kv(host)
    prefix = "fire/pulse/killed/"
    kills = []
    while len(kills) < 3:
        before = kv.count(prefix)
        proc = relay_process(host, rabbit)
        while kv.count(prefix) < before + 60 and proc.poll() is None:
            time.sleep(0.005)
        if proc.poll() is not None:
            out = proc.communicate()[0]
            assert "holds the lease" in out, f"a relay finished before it could be killed: {out}"
            time.sleep(0.5)  # the killed relay's lease (10 s at most), as the next cron run would find it
            continue
        proc.kill()
        proc.communicate()
        kills.append(kv.count(prefix) - before)
    print("fires recorded before each kill:", kills, "of 600")
    assert all(k >= 60 for k in kills), f"each kill came after fires were recorded: {kills}"
    assert kv.count(prefix) < 600, "the kills left work for the last run"
    out = relay_until_done(host, rabbit)
    assert "fired" in out, out
    assert api.peek(queue_of("pulse", "killed"), 10) == []
    assert_each_message_fired_once(hooks, options, "pulse", "killed", 600)


def test_two_relays_at_once_create_nothing_twice(hooks, rabbit, host, options):
    api = rabbit.api
    api.declare_exchange(PUSH)
    relay_until_done(host, rabbit)  # past any lease left by the previous test's kills
    hooks.createHook("pulse", "twice", hook_body([{"exchange": PUSH, "routingKeyPattern": "primary.twice"}]))
    publish_many(api, 300, "twice")
    first, second = relay_process(host, rabbit), relay_process(host, rabbit)
    outs = [first.communicate(timeout=300)[0], second.communicate(timeout=300)[0]]
    relay_until_done(host, rabbit)
    assert api.peek(queue_of("pulse", "twice"), 10) == []
    assert_each_message_fired_once(hooks, options, "pulse", "twice", 300)
    print("two relays:", [[l for l in o.splitlines() if "relay: run" in l] for o in outs])
    assert any("holds the lease" in o for o in outs) or all("fired" in o for o in outs), outs


# --- GitHub ------------------------------------------------------------------------------------------

def github_post(host, event, payload, secret=GITHUB_SECRET, delivery=None, form=False):
    body = json.dumps(payload).encode()
    if form:
        body = urllib.parse.urlencode({"payload": body.decode()}).encode()
    headers = {
        "content-type": "application/x-www-form-urlencoded" if form else "application/json",
        "x-github-event": event,
        "x-github-delivery": delivery or str(uuid.uuid4()),
        "x-hub-signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
        "user-agent": "GitHub-Hookshot/test",
    }
    req = urllib.request.Request(host.root_url + "/api/github/v1/github", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


REPOSITORY = {"name": "my.repo", "full_name": "My-Org/my.repo", "owner": {"login": "My-Org", "name": "My-Org"},
              "clone_url": "https://github.com/My-Org/my.repo.git"}


def push_event(ref="refs/heads/main"):
    return {"ref": ref, "before": "0" * 40, "after": "a" * 40, "repository": REPOSITORY,
            "pusher": {"name": "dev"}, "sender": {"login": "dev"}, "installation": {"id": 42}}


def test_github_deliveries_fire_the_hooks_bound_to_their_exchange(hooks, taskhooks, rabbit, host, options):
    gh = "exchange/taskcluster-github/v1/"
    hooks.createHook("pulse", "on-push", hook_body([{"exchange": gh + "push", "routingKeyPattern": "primary.My-Org.my%repo"}]))
    hooks.createHook("pulse", "on-pr", hook_body([{"exchange": gh + "pull-request", "routingKeyPattern": "primary.My-Org.*.opened"}]))
    hooks.createHook("pulse", "on-release", hook_body([{"exchange": gh + "release", "routingKeyPattern": "#"}]))
    queue = taskcluster.Queue(options)

    status, answer = github_post(host, "ping", {"zen": "Design for failure.", "hook_id": 1})
    assert status == 200 and answer["event"] == "ping"

    delivery = str(uuid.uuid4())
    status, answer = github_post(host, "push", push_event(), delivery=delivery)
    assert status == 200, answer
    assert answer["routingKey"] == "primary.My-Org.my%repo"
    assert [(h["hookId"], h["outcome"]) for h in answer["hooks"]] == [("on-push", "created")]
    task = queue.task(answer["hooks"][0]["taskId"])
    got = task["payload"]["got"]
    assert (got["tasks_for"], got["branch"], got["eventId"], got["installationId"]) == ("github-push", "main", delivery, 42)
    assert got["body"]["after"] == "a" * 40

    # GitHub redelivers the same delivery: nothing new.
    status, again = github_post(host, "push", push_event(), delivery=delivery)
    assert status == 200 and again["hooks"][0]["outcome"] == "duplicate"
    assert again["hooks"][0]["taskId"] == answer["hooks"][0]["taskId"]
    assert len(all_fires(hooks, "pulse", "on-push")) == 1

    # The same push as Taskcluster's GitHub service publishes it on Pulse (`eventId` is the
    # delivery): a deployment receiving both fires the hook once.
    rabbit.api.declare_exchange("exchange/taskcluster-github/v1/push")
    taskhooks.relay()  # binds the queue to the exchange that now exists
    assert rabbit.api.publish("exchange/taskcluster-github/v1/push", "primary.My-Org.my%repo",
                              {"version": 1, "organization": "My-Org", "repository": "my%repo", "eventId": delivery, "body": {}})
    report = taskhooks.relay()
    assert (report["fired"], report["duplicates"]) == (0, 1), report
    assert len(all_fires(hooks, "pulse", "on-push")) == 1

    # A wrong signature: 401 in Taskcluster's error format, nothing fired.
    status, err = github_post(host, "push", push_event(), secret="not-the-secret")
    assert status == 401 and set(err) >= {"code", "message", "requestInfo"} and err["code"] == "AuthenticationFailed"
    assert len(all_fires(hooks, "pulse", "on-push")) == 1

    pr = {"action": "opened", "number": 7, "repository": REPOSITORY, "sender": {"login": "dev"},
          "pull_request": {"number": 7, "head": {"ref": "fix", "sha": "b" * 40, "repo": REPOSITORY},
                           "base": {"ref": "main", "sha": "c" * 40, "repo": REPOSITORY}, "user": {"login": "dev"}}}
    status, answer = github_post(host, "pull_request", pr, form=True)
    assert status == 200, answer
    assert answer["routingKey"] == "primary.My-Org.my%repo.opened"
    assert [(h["hookId"], h["outcome"]) for h in answer["hooks"]] == [("on-pr", "created")]
    got = queue.task(answer["hooks"][0]["taskId"])["payload"]["got"]
    assert (got["tasks_for"], got["action"], got["details"]["event.pullNumber"]) == ("github-pull-request", "opened", 7)

    closed = dict(pr, action="closed")
    assert github_post(host, "pull_request", closed)[1]["hooks"] == [], "on-pr binds only `opened`"

    release = {"action": "published", "repository": REPOSITORY, "sender": {"login": "dev"},
               "release": {"tag_name": "v1.2.0", "name": "One two", "target_commitish": "main"}}
    status, answer = github_post(host, "release", release)
    assert [(h["hookId"], h["outcome"]) for h in answer["hooks"]] == [("on-release", "created")]
    assert queue.task(answer["hooks"][0]["taskId"])["payload"]["got"]["details"]["event.version"] == "v1.2.0"

    status, answer = github_post(host, "issues", {"action": "opened", "repository": REPOSITORY})
    assert status == 200 and "ignored" in answer

    # A delivery larger than the API's 10 MB (GitHub sends up to 25 MB) is read whole: its
    # signature, over every byte, checks.
    status, answer = github_post(host, "issues", {"action": "opened", "repository": REPOSITORY, "pad": "x" * (12 << 20)})
    assert status == 200 and "ignored" in answer, answer


def test_readme_pulse_and_github_examples_run_as_written(host, rabbit, options):
    from test_readme import block_after
    env = dict(os.environ, TASKCLUSTER_ROOT_URL=host.root_url, TASKCLUSTER_CLIENT_ID=ROOT_CLIENT_ID,
               TASKCLUSTER_ACCESS_TOKEN=ROOT_ACCESS_TOKEN, RABBITMQ_API=rabbit.url, GITHUB_WEBHOOK_SECRET=GITHUB_SECRET)
    python = subprocess.run([sys.executable, "-c", block_after("### Pulse and GitHub", "python")], env=env, capture_output=True, text=True)
    assert python.returncode == 0, python.stderr
    relay_until_done(host, rabbit)
    hooks = taskcluster.Hooks(options)
    fires = hooks.listLastFires("vcs", "on-push")["lastFires"]
    assert [(f["firedBy"], f["result"]) for f in fires] == [("pulseMessage", "success")], fires
    queue = taskcluster.Queue(options)
    assert queue.task(fires[0]["taskId"])["payload"]["revision"] == "abc123"

    curl = subprocess.run(["bash", "-euo", "pipefail", "-c", block_after("**GitHub.**", "sh")], env=env, capture_output=True, text=True)
    assert curl.returncode == 0, curl.stderr
    answer = json.loads(curl.stdout)
    assert [(h["hookId"], h["outcome"]) for h in answer["hooks"]] == [("on-push", "created")], answer
    assert queue.task(answer["hooks"][0]["taskId"])["payload"]["revision"] == "abc123"


def test_a_hook_lost_from_the_binding_index_keeps_its_queue_and_is_reindexed(hooks, taskhooks, rabbit, host):
    api = rabbit.api
    exchange = "exchange/test/v1/reindex"
    api.declare_exchange(exchange)
    hooks.createHook("pulse", "unindexed", hook_body([{"exchange": exchange, "routingKeyPattern": "primary.unindexed"}]))
    # The hook missing from the exchange's index (its writer died between storing the hook
    # and indexing its bindings): its shard of the index, without it.
    shard = "index/bindings/%d" % (int.from_bytes(hashlib.sha256(exchange.encode()).digest()[:2], "big") % 16)
    with sqlite3.connect(Kv(host).path, timeout=30) as db:
        doc = json.loads(db.execute("SELECT value FROM spin_key_value WHERE key = ?", (shard,)).fetchone()[0])
        assert "pulse/unindexed" in doc.pop(exchange)
        db.execute("UPDATE spin_key_value SET value = ? WHERE key = ?", (json.dumps(doc).encode(), shard))
    assert api.publish(exchange, "primary.unindexed", {"n": 1})
    report = taskhooks.relay()
    assert report["deleted"] == 0 and report["fired"] == 1, report
    assert queue_of("pulse", "unindexed") in api.queues()
    assert [f["result"] for f in all_fires(hooks, "pulse", "unindexed")] == ["success"]
    with sqlite3.connect(Kv(host).path, timeout=30) as db:
        doc = json.loads(db.execute("SELECT value FROM spin_key_value WHERE key = ?", (shard,)).fetchone()[0])
        assert "pulse/unindexed" in doc[exchange], "re-indexed"


def test_secrets_stay_out_of_the_hosts_log(host):
    """After everything above: the Pulse password, the GitHub secret and the root token
    appear in no log line."""
    log = "".join(host.log)
    for secret in (PULSE_PASSWORD, GITHUB_SECRET, ROOT_ACCESS_TOKEN):
        assert secret not in log
