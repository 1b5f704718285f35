"""What the service does when what it depends on fails, on the real host: the Queue of a
Taskcluster deployment (the fake, told to answer 503, reset the connection or hang past
the client's timeout for a while), RabbitMQ and Redis (the real servers, stopped and
started again by the test). Each scenario is counted at the queue afterwards: every due
fire and every published message created exactly once, nothing in lastFires doubled.
The figures are in docs/reliability.md."""

import datetime
import os
import shutil
import subprocess
import tempfile
import time

import pytest
import redis
import taskcluster
from taskcluster.exceptions import TaskclusterFailure

from conftest import REPO, ROOT_ACCESS_TOKEN, ROOT_CLIENT_ID, SECRETS_KEY, RunningHost, Spawned, host_binary
from fake_taskcluster import ACCESS_TOKEN, CLIENT_ID, USERS, FakeQueue
from rabbitmq import RabbitMQ, free_port
from taskhooks_client import Taskhooks
from test_pulse import PUSH, Kv, all_fires, pulse_env, queue_of

ADMIN = "project/remote-admin"
ROLE_SCOPES = ["queue:create-task:highest:proj/*", "queue:create-task:project:none", "queue:scheduler-id:-"]


def remote_env(fake):
    return {
        "SPIN_VARIABLE_TASKCLUSTER_ROOT_URL": fake.root_url,
        "SPIN_VARIABLE_ALLOWED_TASKCLUSTER_HOST": fake.root_url,
        "SPIN_VARIABLE_TASKCLUSTER_CLIENT_ID": CLIENT_ID,
        "SPIN_VARIABLE_TASKCLUSTER_ACCESS_TOKEN": ACCESS_TOKEN,
        # Short, so a hanging Queue costs the test seconds, not the default 30.
        "SPIN_VARIABLE_TASKCLUSTER_TIMEOUT_SECONDS": "2",
    }


def admin_clients(host):
    """Hooks and extension clients as the fake deployment's admin (remote mode
    authenticates through its Auth service)."""
    options = {"rootUrl": host.root_url, "maxRetries": 0, "credentials": {"clientId": ADMIN, "accessToken": USERS[ADMIN][0]}}
    return taskcluster.Hooks(options), Taskhooks(options)


def cron(host, component, at=None, env=None, args=()):
    """One run of a cron component against the host's store, as its trigger would."""
    full = dict(os.environ, SPIN_VARIABLE_ROOT_ACCESS_TOKEN=ROOT_ACCESS_TOKEN, SPIN_VARIABLE_SECRETS_KEY=SECRETS_KEY, **(env or {}))
    cmd = [host_binary(), "cron", component, "--state-dir", host.state, *args]
    if at is not None:
        cmd += ["--at", str(at)]
    return Spawned(cmd, cwd=REPO, env=full)


def finished(proc, timeout=300):
    out = proc.communicate(timeout=timeout)[0]
    return proc.returncode, out


def next_hour():
    now = int(time.time())
    return (now // 3600 + 1) * 3600


def hook_body(schedule=(), bindings=(), schema=None):
    # Scheduled fires have no payload to show; the others show theirs.
    payload = {"slot": {"$eval": "now"}} if schedule else {"got": {"$eval": "payload"}}
    return {
        "metadata": {"name": "faults", "description": "", "owner": "ops@example.com", "emailOnError": False},
        "schedule": list(schedule),
        "bindings": list(bindings),
        "task": {"taskQueueId": "proj/ci", "schedulerId": "-", "payload": payload,
                 "metadata": {"name": "f", "description": "", "owner": "ops@example.com", "source": "https://example.com"}},
        "triggerSchema": schema or {"type": "object"},
    }


# --- the Queue ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake():
    f = FakeQueue()
    yield f
    f.stop()


def test_scheduled_fires_survive_a_queue_outage(fake):
    """Twenty hourly hooks; the Queue fails the ticks at :00 (503), :15 (connection reset)
    and :30 (hangs past the timeout, having created the first task); at :45 it answers.
    Each hook fires once for the hour, with its own nextTaskId, and again the next hour."""
    env = remote_env(fake)
    host = RunningHost(env)
    try:
        hooks, _ = admin_clients(host)
        names = [f"h{i:02}" for i in range(20)]
        for name in names:
            hooks.createHook("outage", name, hook_body(schedule=["0 0 * * * *"]))
        hour = next_hour()
        before = len(fake.created)
        for minute, mode in [(0, "503"), (15, "reset"), (30, "hang")]:
            fake.fail(mode)
            started = time.monotonic()
            code, out = finished(cron(host, "timer", hour + minute * 60 + 1, env))
            took = time.monotonic() - started
            assert code == 0, out
            assert "due 20 fired 0 declined 0 failed 0 retrying 20" in out, out
            assert took < 30, f"a tick in a {mode} outage took {took:.1f} s: the Queue is given up on for the run"
            print(f"queue outage: tick at :{minute:02} ({mode}): 20 due, 20 kept due, {took:.1f} s")
        fake.recover()
        # The hang's first task was created by the Queue before it answered too late.
        assert len(fake.created) - before == 1
        # Meanwhile each hook shows one failed attempt, replaced on every retry.
        during = hooks.listLastFires("outage", "h05")["lastFires"]
        assert len(during) == 1 and during[0]["result"] == "error", during
        code, out = finished(cron(host, "timer", hour + 45 * 60 + 1, env))
        assert code == 0 and "due 20 fired 20 declined 0 failed 0 retrying 0" in out, out
        assert len(fake.created) - before == 20, "every missed fire once, none twice"
        code, out = finished(cron(host, "timer", hour + 3600 + 1, env))
        assert "due 20 fired 20" in out, out
        assert len(fake.created) - before == 40
        print(f"queue outage: 40 of 40 due fires created, {sum(1 for r in fake.received if r['taskId'] in fake.created)} PUTs reached the Queue")
        for name in names:
            fires = hooks.listLastFires("outage", name)["lastFires"]
            assert len(fires) == 2, f"{name}: {fires}"
            assert all(f["result"] == "success" and f["taskId"] in fake.created for f in fires), fires
            assert all(f["taskState"] == "pending" for f in fires), "taskState read from the remote Queue"
            assert len({f["taskId"] for f in fires}) == 2
            status = hooks.getHookStatus("outage", name)
            assert status["nextScheduledDate"] == datetime.datetime.fromtimestamp(hour + 7200, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        # The hour's fires used the hooks' first nextTaskIds: the tasks' `created` are the
        # :45 attempt for all but the one the hang created at :30.
        assert sum(1 for t in fake.created.values() if t["created"].endswith(":30:01.000Z")) == 1
    finally:
        fake.recover()
        host.stop()


def test_a_trigger_during_an_outage_answers_503_and_its_retry_creates_one_task(fake):
    env = remote_env(fake)
    host = RunningHost(env)
    try:
        hooks, _ = admin_clients(host)
        hooks.createHook("outage", "triggered", hook_body())
        fake.fail("hang", seconds=3)
        with pytest.raises(TaskclusterFailure) as e:
            hooks.triggerHook("outage", "triggered", {"taskId": "fN1SmgV0T8WXX3LhKs2Gyw"})
        assert e.value.status_code == 503 and e.value.body["code"] == "ServiceUnavailable", e.value.body
        assert '"taskId": "fN1SmgV0T8WXX3LhKs2Gyw"' in e.value.body["message"]
        time.sleep(3.5)
        # The caller's retry with the same taskId cannot create a second task: the Queue
        # created it during the hang, and answers the retry (another `created`) with 409,
        # as upstream's trigger would be answered.
        with pytest.raises(TaskclusterFailure) as e:
            hooks.triggerHook("outage", "triggered", {"taskId": "fN1SmgV0T8WXX3LhKs2Gyw"})
        assert "RequestConflict" in e.value.body["message"], e.value.body
        puts = [r for r in fake.received if r["taskId"] == "fN1SmgV0T8WXX3LhKs2Gyw"]
        assert len(puts) >= 2 and "fN1SmgV0T8WXX3LhKs2Gyw" in fake.created
    finally:
        fake.recover()
        host.stop()


def test_pulse_messages_wait_in_their_queue_while_the_queue_is_down(fake, rabbit):
    env = {**remote_env(fake), **pulse_env(rabbit)}
    host = RunningHost(env)
    try:
        hooks, taskhooks = admin_clients(host)
        rabbit.api.declare_exchange(PUSH)
        hooks.createHook("outage", "pulse", hook_body(bindings=[{"exchange": PUSH, "routingKeyPattern": "outage.#"}]))
        hooks.createHook("outage", "quiet", hook_body(bindings=[{"exchange": PUSH, "routingKeyPattern": "quiet.#"}]))
        assert taskhooks.relay()["queues"] >= 1  # queue and binding in place
        for n in range(30):
            assert rabbit.api.publish(PUSH, f"outage.{n}", {"n": n})
        before = len(fake.created)
        fake.fail("503")
        report = taskhooks.relay()
        assert (report["fired"], report["retrying"]) == (0, 1), report
        assert len(rabbit.api.peek(queue_of("outage", "pulse"))) == 30, "nothing taken while the Queue is down"
        status = taskhooks.pulseStatus("outage", "pulse")
        assert status["lastRelayRun"]["ok"] is False, status
        assert "ServiceUnavailable" in " ".join(status["lastRelayRun"]["errors"]), status
        other = taskhooks.pulseStatus("outage", "quiet")["lastRelayRun"]
        assert other["ok"] is True and other["errors"] == [], f"another hook's owner does not see this hook's errors: {other}"
        fake.fail("reset")
        assert taskhooks.relay()["retrying"] == 1
        fake.recover()
        report = taskhooks.relay()
        assert (report["fired"], report["retrying"]) == (30, 0), report
        assert len(fake.created) - before == 30
        fires = all_fires(hooks, "outage", "pulse")
        assert len(fires) == 30 and len({f["taskId"] for f in fires}) == 30, "the retried message's record replaced, not doubled"
        assert all(f["result"] == "success" for f in fires)
        assert sorted(fake.created[f["taskId"]]["payload"]["got"]["n"] for f in fires) == list(range(30))
        assert taskhooks.pulseStatus("outage", "pulse")["lastRelayRun"]["ok"] is True
    finally:
        fake.recover()
        host.stop()


def test_a_message_the_queue_always_fails_does_not_hold_back_other_hooks(fake, rabbit):
    env = {**remote_env(fake), **pulse_env(rabbit)}
    host = RunningHost(env)
    try:
        hooks, taskhooks = admin_clients(host)
        rabbit.api.declare_exchange(PUSH)
        for name in ["poisoned", "healthy"]:
            hooks.createHook("stuck", name, hook_body(bindings=[{"exchange": PUSH, "routingKeyPattern": f"{name}.#"}]))
        taskhooks.relay()
        rabbit.api.publish(PUSH, "poisoned.0", {"n": 0, "poison": "always-500"})
        for n in range(10):
            rabbit.api.publish(PUSH, f"healthy.{n}", {"n": n})
        fake.poison = "always-500"
        # Whichever hook the first run drains first, by the second run the healthy one
        # has gone first: a hook that failed in the last run is drained last.
        taskhooks.relay()
        taskhooks.relay()
        assert len(all_fires(hooks, "stuck", "healthy")) == 10
        assert len(rabbit.api.peek(queue_of("stuck", "poisoned"))) == 1, "still queued, retried by every run"
        assert taskhooks.pulseStatus("stuck", "poisoned")["lastRelayRun"]["ok"] is False
    finally:
        fake.poison = None
        host.stop()


# --- RabbitMQ -----------------------------------------------------------------------------------


def test_rabbitmq_stopped_during_a_relay_run_loses_and_doubles_nothing():
    node = RabbitMQ()  # a node of its own: the others' tests keep theirs running
    try:
        env = pulse_env(node)
        host = RunningHost(env)
        options = {"rootUrl": host.root_url, "maxRetries": 0, "credentials": {"clientId": ROOT_CLIENT_ID, "accessToken": ROOT_ACCESS_TOKEN}}
        taskcluster.Auth(options).createRole("hook-id:broker/*", {"description": "", "scopes": ROLE_SCOPES})
        hooks = taskcluster.Hooks(options)
        taskhooks = Taskhooks(options)
        node.api.declare_exchange(PUSH)
        hooks.createHook("broker", "down", hook_body(bindings=[{"exchange": PUSH, "routingKeyPattern": "broker.#"}]))
        taskhooks.relay()
        count = 600  # three batches of 200: the broker stops well before the last
        for n in range(count):
            node.api.publish(PUSH, f"broker.{n}", {"n": n})
        time.sleep(1)  # persisted to disk
        kv = Kv(host)
        relay = cron(host, "relay", env=env)
        deadline = time.time() + 60
        while kv.count("fire/") < 40 and time.time() < deadline and relay.poll() is None:
            time.sleep(0.005)
        node.halt()
        code, out = finished(relay)
        fired_before = kv.count("fire/")
        print(f"rabbitmq outage: broker stopped after {fired_before} of {count} messages fired")
        assert 0 < fired_before < count, f"the broker stopped mid-run ({fired_before} fired): {out}"
        assert "errors 1" in out, out
        # A run while the broker is down says so, in its summary and on the hook.
        code, out = finished(cron(host, "relay", env=env))
        assert code != 0 and "refused" in out.lower(), out
        status = taskhooks.pulseStatus("broker", "down")
        assert status["lastRelayRun"]["ok"] is False, status
        assert any("refused" in e.lower() for e in status["lastRelayRun"]["errors"]), status
        node.start()
        for _ in range(10):
            code, out = finished(cron(host, "relay", env=env))
            if len(node.api.peek(queue_of("broker", "down"), 1)) == 0 and "holds the lease" not in out:
                break
            time.sleep(1)
        fires = all_fires(hooks, "broker", "down")
        task_ids = [f["taskId"] for f in fires]
        assert len(task_ids) == count and len(set(task_ids)) == count, f"{len(task_ids)} fires, {len(set(task_ids))} distinct, for {count} messages"
        queue = taskcluster.Queue(options)
        assert sorted(queue.task(t)["payload"]["got"]["n"] for t in task_ids) == list(range(count))
        assert kv.count("task/") == count
        assert taskhooks.pulseStatus("broker", "down")["lastRelayRun"]["ok"] is True
        print(f"rabbitmq outage: {len(set(task_ids))} tasks for {count} messages, {len(task_ids)} lastFires")
        host.stop()
    finally:
        node.stop()


# --- Redis --------------------------------------------------------------------------------------


class PersistentRedis:
    """Debian's redis-server writing every change to its append-only file, so a restart
    (even after SIGKILL) comes back with everything it acknowledged."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="taskhooks-redis-faults-")
        self.port = free_port()
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 30
        while True:
            try:
                redis.Redis(port=self.port).ping()
                return
            except (redis.ConnectionError, redis.BusyLoadingError):
                if time.time() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("redis-server did not start")
                time.sleep(0.05)

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def config(self):
        path = os.path.join(self.dir, "runtime-config.toml")
        with open(path, "w") as f:
            f.write(f'[key_value_store.default]\ntype = "redis"\nurl = "redis://127.0.0.1:{self.port}/0"\n')
        return path

    def count(self, pattern):
        client = redis.Redis(port=self.port)
        return sum(1 for _ in client.scan_iter(match=pattern, count=1000))

    def stop(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def persistent_redis():
    server = PersistentRedis()
    yield server
    server.stop()


def test_redis_restarted_during_a_tick_fires_each_due_hook_once_and_the_api_answers_503_meanwhile(persistent_redis):
    config = persistent_redis.config()
    args = ("--runtime-config-file", config)
    host = RunningHost(extra_args=args)
    try:
        options = {"rootUrl": host.root_url, "maxRetries": 0, "credentials": {"clientId": ROOT_CLIENT_ID, "accessToken": ROOT_ACCESS_TOKEN}}
        taskcluster.Auth(options).createRole("hook-id:redis-faults/*", {"description": "", "scopes": ROLE_SCOPES})
        hooks = taskcluster.Hooks(options)
        count = 150
        for i in range(count):
            hooks.createHook("redis-faults", f"h{i:03}", hook_body(schedule=["0 0 * * * *"]))
        hour = next_hour()
        tick = cron(host, "timer", hour + 60, args=args)
        deadline = time.time() + 60
        while persistent_redis.count("fire/redis-faults/*") < 30 and time.time() < deadline and tick.poll() is None:
            time.sleep(0.005)
        persistent_redis.kill()
        code, out = finished(tick)
        # While Redis is down: the API answers 503 in Taskcluster's format, and the
        # heartbeat says why; ping still answers.
        with pytest.raises(TaskclusterFailure) as e:
            hooks.hook("redis-faults", "h000")
        assert e.value.status_code == 503 and e.value.body["code"] == "ServiceUnavailable", e.value.body
        heartbeat = requests_get(f"{host.root_url}/api/hooks/v1/__heartbeat__")
        assert heartbeat[0] == 503 and "key-value store" in heartbeat[1]["message"], heartbeat
        assert requests_get(f"{host.root_url}/api/hooks/v1/ping")[0] == 200
        persistent_redis.start()
        fired_before = persistent_redis.count("fire/redis-faults/*")
        print(f"redis outage: Redis killed after {fired_before} of {count} fires recorded (tick exit {code})")
        assert code != 0 or fired_before < count, f"Redis went away mid-tick: {out}"
        code, out = finished(cron(host, "timer", hour + 61, args=args))
        assert code == 0, out
        assert requests_get(f"{host.root_url}/api/hooks/v1/__heartbeat__")[0] == 200
        queue = taskcluster.Queue(options)
        for i in range(count):
            fires = hooks.listLastFires("redis-faults", f"h{i:03}")["lastFires"]
            assert len(fires) == 1 and fires[0]["result"] == "success", f"h{i:03}: {fires}"
            queue.task(fires[0]["taskId"])
        assert persistent_redis.count("task/*") == count, "each due hook's task exactly once"
        print(f"redis outage: {persistent_redis.count('task/*')} tasks for {count} due hooks")
    finally:
        host.stop()


def requests_get(url):
    import json
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def test_redis_restarted_during_a_relay_run_fires_each_message_once(persistent_redis, rabbit):
    config = persistent_redis.config()
    args = ("--runtime-config-file", config)
    env = pulse_env(rabbit)
    host = RunningHost(env, extra_args=args)
    try:
        options = {"rootUrl": host.root_url, "maxRetries": 0, "credentials": {"clientId": ROOT_CLIENT_ID, "accessToken": ROOT_ACCESS_TOKEN}}
        taskcluster.Auth(options).createRole("hook-id:redis-relay/*", {"description": "", "scopes": ROLE_SCOPES})
        hooks = taskcluster.Hooks(options)
        taskhooks = Taskhooks(options)
        rabbit.api.declare_exchange(PUSH)
        hooks.createHook("redis-relay", "messages", hook_body(bindings=[{"exchange": PUSH, "routingKeyPattern": "redis-relay.#"}]))
        taskhooks.relay()
        tasks_before = persistent_redis.count("task/*")
        count = 300
        for n in range(count):
            rabbit.api.publish(PUSH, f"redis-relay.{n}", {"n": n})
        relay = cron(host, "relay", env=env, args=args)
        deadline = time.time() + 60
        while persistent_redis.count("fire/redis-relay/*") < 30 and time.time() < deadline and relay.poll() is None:
            time.sleep(0.005)
        persistent_redis.kill()
        code, out = finished(relay)
        persistent_redis.start()
        fired_before = persistent_redis.count("fire/redis-relay/*")
        print(f"redis outage: Redis killed after {fired_before} of {count} messages fired (relay exit {code})")
        assert fired_before < count, out
        # The killed run may still hold the relay lease (10 s): later runs wait it out.
        for _ in range(40):
            code, out = finished(cron(host, "relay", env=env, args=args))
            if "holds the lease" not in out and not rabbit.api.peek(queue_of("redis-relay", "messages"), 1):
                break
            time.sleep(1)
        fires = all_fires(hooks, "redis-relay", "messages")
        task_ids = [f["taskId"] for f in fires]
        assert len(task_ids) == count and len(set(task_ids)) == count, f"{len(task_ids)} fires, {len(set(task_ids))} distinct, for {count} messages"
        assert persistent_redis.count("task/*") - tasks_before == count, "each message's task exactly once"
        print(f"redis outage: {len(set(task_ids))} tasks for {count} messages")
    finally:
        host.stop()

