"""Scale-out on Redis: two host processes sharing one Redis key-value store (Spin's
runtime config, `type = "redis"`) through Debian's redis-server on loopback. Both serve
the API; ticks and relays from both, killed partway or running at once, still fire each
due hook and each message exactly once."""

import concurrent.futures
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

import mohawk
import pytest
import redis
import taskcluster
from prometheus_client.parser import text_string_to_metric_families

from conftest import REPO, ROOT_ACCESS_TOKEN, ROOT_CLIENT_ID, SECRETS_KEY, RunningHost, Spawned, host_binary
from rabbitmq import free_port
from test_pulse import PUSH, all_fires, hook_body, pulse_env, queue_of

ROLE_SCOPES = ["queue:create-task:highest:proj/*", "queue:create-task:project:none", "queue:scheduler-id:-"]
HOOKS = 300


class RedisServer:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="taskhooks-redis-")
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 30
        while True:
            try:
                redis.Redis(port=self.port).ping()
                break
            except redis.ConnectionError:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("redis-server did not start (Debian's redis-server is needed)")
                time.sleep(0.05)

    def database(self, db):
        """A runtime config file for database `db`, and a client of it."""
        path = os.path.join(self.dir, f"runtime-config-{db}.toml")
        with open(path, "w") as f:
            f.write(f'[key_value_store.default]\ntype = "redis"\nurl = "redis://127.0.0.1:{self.port}/{db}"\n')
        return path, redis.Redis(port=self.port, db=db)

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def redis_server():
    server = RedisServer()
    yield server
    server.stop()


def count(client, prefix):
    return sum(1 for _ in client.scan_iter(match=prefix + "*", count=1000))


class Deployment:
    """Two hosts on one Redis database, and cron runs against it."""

    def __init__(self, redis_server, db, rabbit=None):
        self.config, self.kv = redis_server.database(db)
        self.env = pulse_env(rabbit) if rabbit else {}
        args = ("--runtime-config-file", self.config)
        self.a = RunningHost(self.env, args)
        self.b = RunningHost(self.env, args)

    def options(self, host):
        return {"rootUrl": host.root_url, "credentials": {"clientId": ROOT_CLIENT_ID, "accessToken": ROOT_ACCESS_TOKEN}, "maxRetries": 0}

    def cron(self, component, at=None):
        env = dict(os.environ, SPIN_VARIABLE_ROOT_ACCESS_TOKEN=ROOT_ACCESS_TOKEN, SPIN_VARIABLE_SECRETS_KEY=SECRETS_KEY, **self.env)
        args = [host_binary(), "cron", component, "--runtime-config-file", self.config]
        if at is not None:
            args += ["--at", str(at)]
        return Spawned(args, cwd=REPO, env=env)

    def kill_when(self, proc, prefix, target):
        """Kills `proc` once `prefix` has `target` keys; False if it ended first."""
        while count(self.kv, prefix) < target and proc.poll() is None:
            time.sleep(0.005)
        if proc.poll() is not None:
            return False
        proc.kill()
        proc.communicate()
        return True

    def stop(self):
        self.a.stop()
        self.b.stop()


def test_two_hosts_serve_one_state(redis_server):
    d = Deployment(redis_server, 0)
    try:
        a, b = taskcluster.Hooks(d.options(d.a)), taskcluster.Hooks(d.options(d.b))
        taskcluster.Auth(d.options(d.b)).createRole("hook-id:shared/*", {"description": "", "scopes": ROLE_SCOPES})
        body = hook_body([])
        body["triggerSchema"] = {"type": "object"}
        a.createHook("shared", "h", body)
        assert b.hook("shared", "h")["metadata"]["name"] == "pulse"
        fired = b.triggerHook("shared", "h", {"n": 1})
        assert [f["taskId"] for f in a.listLastFires("shared", "h")["lastFires"]] == [fired["taskId"]]
        assert taskcluster.Queue(d.options(d.a)).task(fired["taskId"])["payload"]["got"] == {"n": 1}
        token = a.getTriggerToken("shared", "h")["token"]
        assert b.resetTriggerToken("shared", "h")["token"] != token
        b.removeHook("shared", "h")
        with pytest.raises(taskcluster.exceptions.TaskclusterRestFailure) as gone:
            a.hook("shared", "h")
        assert gone.value.status_code == 404
        assert count(d.kv, "hook/") == 0 and count(d.kv, "task/") == 1
        # Audit history and metrics live in Redis too: both hosts see the same.
        actions = [e["actionType"] for e in taskcluster.Auth(d.options(d.a)).getEntityHistory("hook", "shared/h")["auditHistory"]]
        assert actions == ["created", "trigger token reset", "deleted"], actions
        url = f"{d.b.root_url}/metrics"
        sender = mohawk.Sender({"id": ROOT_CLIENT_ID, "key": ROOT_ACCESS_TOKEN, "algorithm": "sha256"}, url, "GET", content="", content_type="", always_hash_content=False)
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Authorization": sender.request_header}), timeout=30) as r:
            text = r.read().decode()
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(text) for s in f.samples}
        assert samples[("taskhooks_hook_fires_total", (("fired_by", "triggerHook"), ("result", "created")))] == 1, text
        assert samples[("taskhooks_api_requests_total", (("method", "createHook"), ("status", "200")))] == 1, text
    finally:
        d.stop()


def test_ticks_from_two_hosts_killed_and_overlapping_fire_each_hook_once(redis_server):
    d = Deployment(redis_server, 1)
    try:
        opts = d.options(d.a)
        taskcluster.Auth(opts).createRole("hook-id:faults/*", {"description": "", "scopes": ROLE_SCOPES})
        body = {"metadata": {"name": "f", "description": "", "owner": "o@example.com"}, "schedule": ["0 0 * * * *"],
                "task": {"taskQueueId": "proj/ci", "schedulerId": "-", "payload": {},
                         "metadata": {"name": "f", "description": "", "owner": "o@example.com", "source": "https://example.com"}}}

        def create(i):
            taskcluster.Hooks(d.options(d.a if i % 2 else d.b)).createHook("faults", f"h{i:03}", body)

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(create, range(HOOKS)))
        hour = (int(time.time()) // 3600 + 1) * 3600
        assert d.cron("timer", hour - 60).wait() == 0  # the day's first tick (daily pass)
        kills = []
        while len(kills) < 4:
            before = count(d.kv, "fire/faults/")
            if d.kill_when(d.cron("timer", hour + 60), "fire/faults/", before + 40):
                kills.append(count(d.kv, "fire/faults/") - before)
        assert count(d.kv, "task/") < HOOKS, "the kills left work for the ticks after them"
        # Two ticks at once, from two hosts' runs.
        first, second = d.cron("timer", hour + 60), d.cron("timer", hour + 61)
        outs = [first.communicate()[0], second.communicate()[0]]
        assert first.returncode == 0 and second.returncode == 0, outs

        hooks = taskcluster.Hooks(d.options(d.b))
        next_hour = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(hour + 3600))
        for i in range(HOOKS):
            fires = all_fires(hooks, "faults", f"h{i:03}")
            assert len({f["taskId"] for f in fires}) == 1 and all(f["result"] == "success" for f in fires), fires
            assert hooks.getHookStatus("faults", f"h{i:03}")["nextScheduledDate"] == next_hour
        assert count(d.kv, "task/") == HOOKS, "each due hook created exactly one task"
        print("fires recorded before each kill:", kills)
    finally:
        d.stop()


def test_relays_from_two_hosts_killed_and_concurrent_fire_each_message_once(redis_server, rabbit):
    d = Deployment(redis_server, 2, rabbit)
    try:
        opts = d.options(d.a)
        taskcluster.Auth(opts).createRole("hook-id:pulse/*", {"description": "", "scopes": ROLE_SCOPES})
        rabbit.api.declare_exchange(PUSH)
        taskcluster.Hooks(opts).createHook("pulse", "redis", hook_body([{"exchange": PUSH, "routingKeyPattern": "primary.redis"}]))
        for n in range(600):
            rabbit.api.publish(PUSH, "primary.redis", {"n": n, "via": "redis"})
        prefix = "fire/pulse/redis/"
        kills = 0
        while kills < 3:
            before = count(d.kv, prefix)
            proc = d.cron("relay")
            if d.kill_when(proc, prefix, before + 60):
                kills += 1
            else:
                assert "holds the lease" in proc.communicate()[0]
                time.sleep(0.5)  # a killed relay's lease lapses within 10 s
        # Let the last killed relay's lease lapse, so the two next ones really race.
        while (lease := d.kv.get("relay/lease")) and int(lease.split()[1]) > time.time() * 1000:
            time.sleep(0.2)
        first, second = d.cron("relay"), d.cron("relay")
        outs = [first.communicate()[0], second.communicate()[0]]
        for _ in range(40):
            out = d.cron("relay").communicate()[0]
            if "holds the lease" not in out:
                break
            time.sleep(0.5)
        assert rabbit.api.peek(queue_of("pulse", "redis"), 10) == []
        fires = all_fires(taskcluster.Hooks(d.options(d.b)), "pulse", "redis")
        assert len(fires) == 600 and len({f["taskId"] for f in fires}) == 600, len(fires)
        queue = taskcluster.Queue(d.options(d.a))
        assert sorted(queue.task(f["taskId"])["payload"]["got"]["n"] for f in fires) == list(range(600))
        assert count(d.kv, "task/") == 600
        print("two relays:", [[line for line in o.splitlines() if "relay: run" in line] for o in outs])
    finally:
        d.stop()
