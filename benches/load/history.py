"""Read and trigger latency on a fresh store and on one holding history (issue: the
indexed key-value layout): the same calls, medians of repeated calls through the official
client, against two hosts side by side, one on the seeded store and one on a copy of it
with N keys of other hooks' history added (fires, tasks and their group entries, as a
month of a busy deployment leaves them) straight into its SQLite store. Calls alternate
between the two, so whatever else the machine does weighs on both alike.

    python3 benches/load/history.py [--binary PATH] [--history 1000000] [--repeat 40]

Prints a Markdown table (docs/benchmarks.md records it).
"""

import argparse
import os
import pathlib
import shutil
import sqlite3
import statistics
import struct
import sys
import tempfile
import time

import taskcluster

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "python"))
from conftest import ROOT_ACCESS_TOKEN, ROOT_CLIENT_ID, RunningHost  # noqa: E402

ROLE = ["queue:create-task:highest:proj/*", "queue:create-task:project:none", "queue:scheduler-id:-"]


def hook(n):
    return {"metadata": {"name": f"b{n}", "description": "", "owner": "o@example.com"},
            "task": {"taskQueueId": "proj/ci", "payload": {"n": n},
                     "metadata": {"name": "b", "description": "", "owner": "o@example.com", "source": "https://example.com"}}}


def seed(opts):
    hooks, auth = taskcluster.Hooks(opts), taskcluster.Auth(opts)
    auth.createRole("hook-id:bench/*", {"description": "", "scopes": ROLE})
    for n in range(20):
        auth.createRole(f"bench-role-{n}", {"description": "", "scopes": [f"s{n}"]})
        auth.createClient(f"bench/client-{n}", {"description": "", "expires": "2099-01-01T00:00:00.000Z", "scopes": []})
    task_ids = []
    for n in range(5):
        hooks.createHook("bench", f"h{n}", hook(n))
        for _ in range(30):
            task_ids.append(hooks.triggerHook("bench", f"h{n}", {})["status"]["taskId"])
    return task_ids[-1]


def calls(opts, task_id):
    hooks, auth, queue = taskcluster.Hooks(opts), taskcluster.Auth(opts), taskcluster.Queue(opts)
    page = hooks.listLastFires("bench", "h0", query={"limit": 10})["continuationToken"]
    return {
        "hook": lambda: hooks.hook("bench", "h0"),
        "getHookStatus": lambda: hooks.getHookStatus("bench", "h0"),
        "listLastFires (first page)": lambda: hooks.listLastFires("bench", "h0"),
        "listLastFires (a later page)": lambda: hooks.listLastFires("bench", "h0", query={"limit": 10, "continuationToken": page}),
        "listHooks": lambda: hooks.listHooks("bench"),
        "listHookGroups": lambda: hooks.listHookGroups(),
        "listClients": lambda: auth.listClients(),
        "listRoles": lambda: auth.listRoles(),
        "listTaskGroup": lambda: queue.listTaskGroup(task_id),
        "triggerHook": lambda: hooks.triggerHook("bench", "h1", {}),
    }


def measure(a, b, repeat):
    """Median ms of each call on `a` and on `b`, alternating."""
    out = {}
    for name in a:
        a[name]()
        b[name]()
        times = ([], [])
        for _ in range(repeat):
            for side, call in enumerate((a[name], b[name])):
                t = time.perf_counter()
                call()
                times[side].append((time.perf_counter() - t) * 1000)
        out[name] = (statistics.median(times[0]), statistics.median(times[1]))
    return out


def add_history(db_path, n):
    """`n` keys of other hooks' history in the current layout: fires (with their
    counters), tasks and task-group entries of 100 hooks in 10 groups."""
    db = sqlite3.connect(db_path)
    fire = b'{"hookGroupId":"g","hookId":"h","firedBy":"schedule","taskId":"fN1SmgV0T8WXX3LhKs2Gyw","taskCreateTime":"2026-11-01T00:00:00.000Z","result":"success","taskState":"unknown","error":""}'
    task = b'{"task":{"taskGroupId":"x","expires":"2027-11-01T00:00:00.000Z","payload":{}},"status":{"state":"pending"}}'
    per_hook = n // 3 // 100
    rows = []
    for h in range(100):
        g, hid = f"history-{h % 10}", f"hook-{h}"
        for s in range(1, per_hook + 1):
            rows.append(("default", f"fire/{g}/{hid}/{s:020}", fire))
            tid = f"hist{h:03d}x{s:09d}"
            rows.append(("default", f"task/{tid}", task))
            rows.append(("default", f"taskgroup/{tid}/1", tid.encode()))
        rows.append(("default", f"fireseq/{g}/{hid}", struct.pack("<q", per_hook)))
    db.executemany("INSERT OR REPLACE INTO spin_key_value (store, key, value) VALUES (?, ?, ?)", rows)
    db.commit()
    total = db.execute("SELECT count(*) FROM spin_key_value").fetchone()[0]
    db.close()
    return total


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--binary")
    p.add_argument("--history", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=40)
    a = p.parse_args()
    if a.binary:
        os.environ["TASKHOOKS_BIN"] = a.binary
    fresh_state = tempfile.mkdtemp(prefix="taskhooks-fresh-")
    host = RunningHost(state=fresh_state)
    opts = {"rootUrl": host.root_url, "credentials": {"clientId": ROOT_CLIENT_ID, "accessToken": ROOT_ACCESS_TOKEN}, "maxRetries": 0}
    task_id = seed(opts)
    host.stop()
    history_state = tempfile.mkdtemp(prefix="taskhooks-history-")
    shutil.copytree(fresh_state, history_state, dirs_exist_ok=True)
    total = add_history(f"{history_state}/sqlite_key_value.db", a.history)
    fresh, full = RunningHost(state=fresh_state), RunningHost(state=history_state)
    with_opts = lambda h: dict(opts, rootUrl=h.root_url)  # noqa: E731
    results = measure(calls(with_opts(fresh), task_id), calls(with_opts(full), task_id), a.repeat)
    fresh.stop()
    full.stop()
    print(f"| call | fresh store | with history ({total:,} keys) | ratio |")
    print("| --- | --- | --- | --- |")
    for name, (f, h) in results.items():
        print(f"| {name} | {f:.2f} ms | {h:.2f} ms | {h / f:.2f}x |")


if __name__ == "__main__":
    main()
