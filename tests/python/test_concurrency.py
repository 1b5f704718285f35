"""Many concurrent writers on the real host, on SQLite (two host processes on one state
directory) and on Redis (two hosts on one database): role, client and hook writes side
by side, deletes racing updates, and ticks interleaved. Afterwards nothing is lost,
nothing deleted has come back, two relays started together hold the lease one at a time
and fire each message once, and `taskhooks kv verify` finds every index equal to the
records (issue: the indexed key-value layout on compare-and-swap)."""

import concurrent.futures
import os
import re
import subprocess

import pytest
import taskcluster

from conftest import REPO, ROOT_ACCESS_TOKEN, ROOT_CLIENT_ID, SECRETS_KEY, RunningHost, Spawned, host_binary
from test_pulse import all_fires, hook_body, pulse_env
from test_redis import RedisServer

ROLE_SCOPES = ["queue:create-task:highest:proj/*", "queue:create-task:project:none", "queue:scheduler-id:-"]


class Pair:
    """Two hosts on one store, and the host's maintenance command on it."""

    def __init__(self, backend, tmp_path, rabbit):
        # A Pulse namespace of its own: the relay owns every queue in its namespace.
        self.env = dict(pulse_env(rabbit), SPIN_VARIABLE_PULSE_NAMESPACE=f"concurrency-{backend}")
        self.exchange = f"exchange/concurrency-{backend}/v1/push"
        rabbit.api.declare_exchange(self.exchange)
        self.rabbit = rabbit
        if backend == "redis":
            self.redis = RedisServer()
            config, _ = self.redis.database(0)
            self.args = ["--runtime-config-file", config]
            self.a, self.b = RunningHost(self.env, self.args), RunningHost(self.env, self.args)
        else:
            self.redis = None
            self.args = ["--state-dir", str(tmp_path)]
            self.a = RunningHost(self.env, state=str(tmp_path))
            self.b = RunningHost(self.env, state=str(tmp_path))

    def options(self, host):
        return {"rootUrl": host.root_url, "credentials": {"clientId": ROOT_CLIENT_ID, "accessToken": ROOT_ACCESS_TOKEN}, "maxRetries": 0}

    def clients(self, service):
        return [service(self.options(self.a)), service(self.options(self.b))]

    def host_command(self, *args, wait=True):
        env = dict(os.environ, SPIN_VARIABLE_ROOT_ACCESS_TOKEN=ROOT_ACCESS_TOKEN, SPIN_VARIABLE_SECRETS_KEY=SECRETS_KEY, **self.env)
        if not wait:
            return Spawned([host_binary(), *args, *self.args], cwd=REPO, env=env)
        return subprocess.run([host_binary(), *args, *self.args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)

    def stop(self):
        self.a.stop()
        self.b.stop()
        if self.redis:
            self.redis.stop()


@pytest.fixture(params=["sqlite", "redis"])
def pair(request, tmp_path, rabbit):
    p = Pair(request.param, tmp_path, rabbit)
    yield p
    p.stop()


def status(call):
    try:
        call()
        return 200
    except taskcluster.exceptions.TaskclusterRestFailure as e:
        return e.status_code


def hook(n, schedule=True):
    return {
        "metadata": {"name": f"c{n}", "description": "", "owner": "o@example.com"},
        "schedule": ["0 0 * * * *"] if schedule else [],
        "task": {"taskQueueId": "proj/ci", "payload": {"n": n},
                 "metadata": {"name": "c", "description": "", "owner": "o@example.com", "source": "https://example.com"}},
    }


def test_concurrent_writers_lose_nothing_and_deletes_stay_deleted(pair):
    auths = pair.clients(taskcluster.Auth)
    hooks = pair.clients(taskcluster.Hooks)
    auths[0].createRole("hook-id:busy/*", {"description": "", "scopes": ROLE_SCOPES})
    for n in range(5):
        auths[0].createRole(f"doomed-{n}", {"description": "", "scopes": ["a"]})
        hooks[0].createHook("doomed", f"h{n}", hook(n))
    auths[0].createRole("hook-id:pulse/*", {"description": "", "scopes": ROLE_SCOPES})
    hooks[0].createHook("pulse", "bound", hook_body([{"exchange": pair.exchange, "routingKeyPattern": "primary.#"}]))
    messages = 300
    for n in range(messages):
        pair.rabbit.api.publish(pair.exchange, "primary.concurrency", {"n": n})
    now = int(subprocess.check_output(["date", "+%s"]).strip())
    with concurrent.futures.ThreadPoolExecutor(24) as pool:
        jobs = []
        for n in range(50):
            jobs.append(pool.submit(auths[n % 2].createRole, f"parallel-{n}", {"description": "", "scopes": [f"s{n}"]}))
            jobs.append(pool.submit(hooks[n % 2].createHook, "busy", f"hook-{n}", hook(n)))
            jobs.append(pool.submit(auths[n % 2].createClient, f"client/{n}", {"description": "", "expires": "2099-01-01T00:00:00.000Z", "scopes": []}))
        # Deletes racing updates of the same role and hook.
        races = []
        for n in range(5):
            races.append(pool.submit(auths[n % 2].deleteRole, f"doomed-{n}"))
            races.append(pool.submit(hooks[n % 2].removeHook, "doomed", f"h{n}"))
            for i in range(6):
                jobs.append(pool.submit(status, lambda n=n, i=i: auths[i % 2].updateRole(f"doomed-{n}", {"description": "u", "scopes": [f"u{i}"]})))
                jobs.append(pool.submit(status, lambda n=n, i=i: hooks[i % 2].updateHook("doomed", f"h{n}", hook(100 + i))))
        # Two relays started together, and ticks, in the middle of it all.
        relays = [pair.host_command("cron", "relay", wait=False) for _ in range(2)]
        ticks = [pair.host_command("cron", "timer", "--at", str(now + s)) for s in (0, 1)]
        for j in jobs + races:
            j.result()
        relayed = [r.communicate(timeout=300)[0] for r in relays]
    assert all(t.returncode == 0 for t in ticks), [t.stdout + t.stderr for t in ticks]
    assert all(r.returncode == 0 for r in relays), relayed
    # One at a time: one relay fired the messages; the other found the lease held (or,
    # started after it, found nothing left). A shared lease would show as both firing or
    # as messages handled twice.
    fired = [int(m.group(1)) for out in relayed for m in [re.search(r" fired (\d+) ", out)] if m]
    duplicates = [int(m.group(1)) for out in relayed for m in [re.search(r"duplicates (\d+)", out)] if m]
    print("relays:", ["lease held by the other" if "holds the lease" in out else re.search(r"fired \d+", out).group(0) for out in relayed])
    assert sorted(fired)[-1] == messages and sum(fired) == messages and sum(duplicates) == 0, relayed
    fires = all_fires(hooks[0], "pulse", "bound")
    assert len(fires) == messages and len({f["taskId"] for f in fires}) == messages, "each message fired once"
    # Edits of distinct roles at once: every one kept (one document of roles lost some).
    with concurrent.futures.ThreadPoolExecutor(24) as pool:
        list(pool.map(lambda n: auths[n % 2].updateRole(f"parallel-{n}", {"description": "edited", "scopes": [f"edited{n}"]}), range(50)))
    edited = {r["roleId"]: r["scopes"] for r in auths[0].listRoles() if r["roleId"].startswith("parallel-")}
    assert all(edited[f"parallel-{n}"] == [f"edited{n}"] for n in range(50)), "no role edit lost"
    roles = {r["roleId"] for r in auths[1].listRoles()}
    assert {f"parallel-{n}" for n in range(50)} <= roles, "no role creation lost"
    assert not {f"doomed-{n}" for n in range(5)} & roles, "no deleted role came back"
    for n in range(5):
        assert status(lambda n=n: hooks[1].hook("doomed", f"h{n}")) == 404, "no removed hook came back"
    assert len(hooks[0].listHooks("busy")["hooks"]) == 50
    assert len(auths[0].listClients(prefix="client/")["clients"]) == 50
    verified = pair.host_command("kv", "verify")
    assert verified.returncode == 0 and "0 differences" in verified.stdout, verified.stdout + verified.stderr
    # Every scheduled hook is in the schedule index: the next hour's tick fires all 50.
    next_hour = (now // 3600 + 1) * 3600
    tick = pair.host_command("cron", "timer", "--at", str(next_hour + 30))
    assert "due 50 fired 50" in tick.stdout, tick.stdout + tick.stderr
