"""Crash drill: SIGKILLs the host at random moments while it is ticking, relaying,
taking trigger bursts and API writes, ROUNDS times, restarting it each time; then checks
at the queue and through the API that every due scheduled slot, every acknowledged
trigger and every published Pulse message fired exactly once, and that no hook, client,
role or fire record that was acknowledged is lost or half-written.

    python3 benches/drills/crash.py [--rounds 20] [--binary PATH] [--redis] [--seed N]

Needs Debian's rabbitmq-server (and redis-server with --redis). Prints a summary table.
"""

import argparse
import concurrent.futures
import json
import os
import pathlib
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import taskcluster
from taskcluster.exceptions import TaskclusterFailure

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "python"))
from conftest import ROOT_ACCESS_TOKEN, ROOT_CLIENT_ID, RunningHost  # noqa: E402
from rabbitmq import RabbitMQ  # noqa: E402
from taskhooks_client import Taskhooks  # noqa: E402

EXCHANGE = "exchange/drill/v1/event"
ROLE_SCOPES = ["queue:create-task:highest:drill/*", "queue:create-task:project:none", "queue:scheduler-id:-"]
SCHEDULED = 20


def task(kind):
    return {
        "taskQueueId": "drill/ci", "schedulerId": "-",
        "payload": {"kind": kind, "firedBy": "${firedBy}", "slot": {"$eval": "now"},
                    "got": {"$if": "firedBy == 'schedule'", "then": None, "else": {"$eval": "payload"}}},
        "metadata": {"name": "drill", "description": "", "owner": "o@example.com", "source": "https://example.com"},
    }


def hook(kind, schedule=(), bindings=()):
    return {"metadata": {"name": kind, "description": "crash drill", "owner": "o@example.com", "emailOnError": False},
            "schedule": list(schedule), "bindings": list(bindings), "triggerSchema": {"type": "object"}, "task": task(kind)}


class Drill:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.rabbit = RabbitMQ()
        self.env = {"SPIN_VARIABLE_PULSE_API_URL": self.rabbit.url, "SPIN_VARIABLE_PULSE_USERNAME": "guest",
                    "SPIN_VARIABLE_PULSE_PASSWORD": "guest", "SPIN_VARIABLE_ALLOWED_PULSE_HOST": self.rabbit.url}
        self.extra_args = ()
        self.redis = None
        if args.redis:
            from test_redis import RedisServer
            self.redis = RedisServer()
            config, self.kv = self.redis.database(0)
            self.extra_args = ("--runtime-config-file", config)
        self.host = RunningHost(self.env, self.extra_args)
        self.state = self.host.state
        self.acked = {"triggers": set(), "hooks": {}, "clients": {}, "roles": {}}
        self.published = 0
        self.kills = []

    def options(self):
        return {"rootUrl": self.host.root_url, "credentials": {"clientId": ROOT_CLIENT_ID, "accessToken": ROOT_ACCESS_TOKEN}, "maxRetries": 0}

    def restart(self):
        """A new host process on the same state (the old one was SIGKILLed)."""
        self.host = RunningHost(self.env, self.extra_args, state=self.state)

    def setup(self):
        opts = self.options()
        taskcluster.Auth(opts).createRole("hook-id:drill/*", {"description": "", "scopes": ROLE_SCOPES})
        self.rabbit.api.declare_exchange(EXCHANGE)
        hooks = taskcluster.Hooks(opts)
        for i in range(SCHEDULED):
            hooks.createHook("drill", f"every-2s-{i:02}", hook("schedule", schedule=["*/2 * * * * *"]))
        hooks.createHook("drill", "trigger", hook("trigger"))
        hooks.createHook("drill", "pulse", hook("pulse", bindings=[{"exchange": EXCHANGE, "routingKeyPattern": "#"}]))

    # --- the workload of one round, cut short by the kill ---------------------------------------

    def triggers(self, round_no, stop):
        hooks = taskcluster.Hooks(self.options())
        n = 0
        while not stop.is_set():
            task_id = taskcluster.slugId()
            try:
                hooks.triggerHook("drill", "trigger", {"taskId": task_id, "round": round_no, "n": n})
                self.acked["triggers"].add(task_id)
            except (TaskclusterFailure, OSError):
                pass
            n += 1

    def writes(self, round_no, stop):
        opts = self.options()
        auth, hooks = taskcluster.Auth(opts), taskcluster.Hooks(opts)
        n = 0
        while not stop.is_set():
            name = f"r{round_no:02}-{n:03}"
            try:
                body = hook("write")
                body["metadata"]["description"] = name
                hooks.createHook("drill-writes", name, body)
                self.acked["hooks"][name] = body["metadata"]["description"]
                auth.createRole(f"drill-role-{name}", {"description": name, "scopes": [f"drill:{name}"]})
                self.acked["roles"][f"drill-role-{name}"] = [f"drill:{name}"]
                auth.createClient(f"drill/{name}", {"description": name, "expires": "3000-01-01T00:00:00.000Z", "scopes": [f"drill:{name}"]})
                self.acked["clients"][f"drill/{name}"] = [f"drill:{name}"]
            except (TaskclusterFailure, OSError):
                pass
            n += 1

    def ticks_and_relays(self, stop):
        ext = Taskhooks(self.options())
        while not stop.is_set():
            try:
                ext.tick()
                ext.relay()
            except (TaskclusterFailure, OSError):
                pass

    def publish(self, stop):
        while not stop.is_set():
            self.rabbit.api.publish(EXCHANGE, "drill.event", {"n": self.published})
            self.published += 1
            time.sleep(0.002)

    def round(self, round_no):
        stop = threading.Event()
        workers = [threading.Thread(target=self.triggers, args=(round_no, stop)),
                   threading.Thread(target=self.writes, args=(round_no, stop)),
                   threading.Thread(target=self.ticks_and_relays, args=(stop,)),
                   threading.Thread(target=self.publish, args=(stop,))]
        for w in workers:
            w.start()
        delay = self.rng.uniform(0.3, 2.5)
        time.sleep(delay)
        self.host.proc.send_signal(signal.SIGKILL)
        self.host.proc.wait()
        self.kills.append(round(delay, 2))
        stop.set()
        for w in workers:
            w.join()
        self.restart()

    # --- after the drill ---------------------------------------------------------------------------

    def settle(self):
        """Ticks and relays until nothing is left: what every kill interrupted finishes."""
        ext = Taskhooks(self.options())
        ext.tick()
        for _ in range(60):
            report = ext.relay()
            if not report["busy"] and report["fired"] == 0 and report["duplicates"] == 0:
                break
            time.sleep(0.5)

    def verify(self):
        opts = self.options()
        hooks, auth, queue = taskcluster.Hooks(opts), taskcluster.Auth(opts), taskcluster.Queue(opts)
        problems = []

        def fires(h, g="drill"):
            out, token = [], None
            while True:
                page = hooks.listLastFires(g, h, query={"limit": 1000, **({"continuationToken": token} if token else {})})
                out += page["lastFires"]
                token = page.get("continuationToken")
                if not token:
                    return out

        # Scheduled: each hook's slots fired at most once, each fire's task exists, and the
        # hook has moved past the last tick (no due slot left unfired).
        slots_fired = 0
        for i in range(SCHEDULED):
            name = f"every-2s-{i:02}"
            fs = fires(name)
            slots = [queue.task(f["taskId"])["payload"]["slot"] for f in fs if f["result"] == "success"]
            if len(slots) != len(set(slots)):
                problems.append(f"{name}: a slot fired twice")
            if len({f["taskId"] for f in fs}) != len(fs):
                problems.append(f"{name}: a lastFires entry repeats")
            if any(f["result"] != "success" for f in fs):
                problems.append(f"{name}: failed fires {[f['error'] for f in fs if f['result'] != 'success']}")
            slots_fired += len(slots)
            # Ticks run all through the drill: a 2-second schedule comes due dozens of times.
            expected = int(self.elapsed / 2 / 4)
            if len(slots) < expected:
                problems.append(f"{name}: only {len(slots)} slots fired in {self.elapsed:.0f} s (expected at least {expected})")
            status = hooks.getHookStatus("drill", name)
            if status["nextScheduledDate"] <= status.get("lastFire", {}).get("time", ""):
                problems.append(f"{name}: not moved on")

        # Triggers: every acknowledged one is in the queue and in lastFires, once.
        trigger_fires = fires("trigger")
        recorded = [f["taskId"] for f in trigger_fires]
        if len(recorded) != len(set(recorded)):
            problems.append("trigger: a lastFires entry repeats")
        missing = self.acked["triggers"] - set(recorded)
        if missing:
            problems.append(f"trigger: {len(missing)} acknowledged triggers not recorded")
        for task_id in self.acked["triggers"]:
            queue.task(task_id)

        # Pulse: every published message fired exactly once.
        pulse_fires = fires("pulse")
        ns = [queue.task(f["taskId"])["payload"]["got"]["n"] for f in pulse_fires]
        if sorted(ns) != list(range(self.published)):
            problems.append(f"pulse: {len(ns)} fires ({len(set(ns))} distinct) for {self.published} messages")

        # API writes: every acknowledged hook, role and client is there, intact.
        for name, description in self.acked["hooks"].items():
            if hooks.hook("drill-writes", name)["metadata"]["description"] != description:
                problems.append(f"hook {name} changed")
        for role_id, scopes in self.acked["roles"].items():
            if auth.role(role_id)["scopes"] != scopes:
                problems.append(f"role {role_id} changed")
        for client_id, scopes in self.acked["clients"].items():
            if auth.client(client_id)["scopes"] != scopes:
                problems.append(f"client {client_id} changed")
        # Everything stored is readable: no half-written hook or fire record.
        for g in hooks.listHookGroups()["groups"]:
            for h in hooks.listHooks(g)["hooks"]:
                try:
                    hooks.listLastFires(g, h["hookId"])
                except TaskclusterFailure as e:
                    if getattr(e, "status_code", None) != 404:
                        problems.append(f"{g}/{h['hookId']}: {e}")
        if not self.args.redis:
            with sqlite3.connect(os.path.join(self.state, "sqlite_key_value.db")) as db:
                check = db.execute("PRAGMA integrity_check").fetchone()[0]
                if check != "ok":
                    problems.append(f"SQLite integrity: {check}")
        return problems, {
            "kills": len(self.kills), "scheduled slots fired": slots_fired, "acknowledged triggers": len(self.acked["triggers"]),
            "trigger fires recorded": len(recorded), "messages published": self.published, "message fires": len(ns),
            "hooks/roles/clients acknowledged": f"{len(self.acked['hooks'])}/{len(self.acked['roles'])}/{len(self.acked['clients'])}",
        }

    def stop(self):
        self.host.stop()
        self.rabbit.stop()
        if self.redis:
            self.redis.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--binary")
    ap.add_argument("--redis", action="store_true")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    args = ap.parse_args()
    if args.binary:
        os.environ["TASKHOOKS_BIN"] = args.binary
    drill = Drill(args)
    try:
        drill.setup()
        started = time.time()
        for r in range(args.rounds):
            drill.round(r)
            print(f"round {r + 1}: killed after {drill.kills[-1]} s", file=sys.stderr)
        drill.elapsed = time.time() - started
        drill.settle()
        problems, figures = drill.verify()
        print(f"seed {args.seed}, {'Redis' if args.redis else 'SQLite'}, {time.time() - started:.0f} s, kills at {drill.kills}")
        for k, v in figures.items():
            print(f"| {k} | {v} |")
        print("PROBLEMS:\n" + "\n".join(problems) if problems else "no problems: every fire exactly once, nothing lost")
        sys.exit(1 if problems else 0)
    finally:
        drill.stop()


if __name__ == "__main__":
    main()
