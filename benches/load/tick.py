"""Tick cost with many scheduled hooks: creates N hooks (DUE of them due at the next full
hour, the rest yearly), then runs `taskhooks cron timer --at` just after that hour (DUE
due) and again a minute later (none due), and prints the timer's own measurement of each
tick (its `in N ms`, which excludes instantiation) and the whole command's wall time.

    python3 benches/load/tick.py [--binary PATH] [--hooks 10000] [--due 100] [--history 1000000]

With `--history N`, N keys of other hooks' history (`history.py`'s) are then added to the
store and the next hour's ticks run again, for the same hooks.
"""

import argparse
import concurrent.futures
import os
import pathlib
import re
import subprocess
import sys
import time

import taskcluster

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "python"))
from conftest import ROOT_ACCESS_TOKEN, ROOT_CLIENT_ID, SECRETS_KEY, RunningHost, host_binary  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary")
    ap.add_argument("--hooks", type=int, default=10000)
    ap.add_argument("--due", type=int, default=100)
    ap.add_argument("--history", type=int, default=0)
    args = ap.parse_args()
    if args.binary:
        os.environ["TASKHOOKS_BIN"] = args.binary
    host = RunningHost()
    opts = {"rootUrl": host.root_url, "credentials": {"clientId": ROOT_CLIENT_ID, "accessToken": ROOT_ACCESS_TOKEN}}
    auth = taskcluster.Auth(opts)
    auth.createRole("hook-id:tick/*", {"description": "", "scopes": ["queue:create-task:highest:tick/*", "queue:create-task:project:none", "queue:scheduler-id:-"]})
    task = {"taskQueueId": "tick/ci", "payload": {}, "metadata": {"name": "t", "description": "", "owner": "o@example.com", "source": "https://example.com"}}

    def create(i):
        hooks = taskcluster.Hooks(opts)
        schedule = ["0 0 * * * *"] if i < args.due else ["0 0 3 1 1 *"]
        hooks.createHook("tick", f"hook-{i:05}", {"metadata": {"name": "t", "description": "", "owner": "o@example.com"}, "schedule": schedule, "task": task})

    started = time.time()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(args.hooks)))
    print(f"created {args.hooks} hooks in {time.time() - started:.1f} s", file=sys.stderr)
    host.stop()

    next_hour = (int(time.time()) // 3600 + 1) * 3600
    env = dict(os.environ, SPIN_VARIABLE_ROOT_ACCESS_TOKEN=ROOT_ACCESS_TOKEN, SPIN_VARIABLE_SECRETS_KEY=SECRETS_KEY)
    rows = []
    # The first tick of a day also runs the daily pass: run one before the hour so the
    # measured ticks are ordinary ones.
    ticks = [("warm-up (daily pass)", next_hour - 120), (f"{args.due} due", next_hour + 60), ("0 due", next_hour + 120)]
    if args.history:
        ticks += [(f"{args.due} due, +history", next_hour + 3660), ("0 due, +history", next_hour + 3720)]
    for label, at in ticks:
        if label.endswith("+history") and "0 due" not in label:
            sys.path.insert(0, str(REPO / "benches" / "load"))
            from history import add_history
            total = add_history(f"{host.state}/sqlite_key_value.db", args.history)
            print(f"store now holds {total:,} keys", file=sys.stderr)
        t0 = time.time()
        out = subprocess.run([host_binary(), "cron", "timer", "--at", str(at), "--state-dir", host.state],
                             cwd=REPO, env=env, capture_output=True, text=True, check=True).stdout
        wall = (time.time() - t0) * 1000
        m = re.search(r"due (\d+) fired (\d+) .*? in (\d+) ms", out)
        rows.append((label, m.group(1), m.group(2), m.group(3), f"{wall:.0f}"))
    print("| tick | due | fired | tick ms (timer's own) | command wall ms |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
