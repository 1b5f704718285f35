"""A tick's cost with many cron projects: P projects (half git, half hg) of J jobs each on
the loopback repository host of the tests (`tests/python/fake_repository.py`), none due
in the measured slots. Runs `taskhooks cron timer --at` for a first tick (which creates
the P x J managed hooks), then for R ordinary ticks, and prints the timer's own time for
each (its `in N ms`: reading every project's tip and `.cron.yml`, bringing the hooks in
line, firing what is due) and the whole command's wall time; then one tick after a push to
every repository (each `.cron.yml` read again and compared with its hooks).

    python3 benches/load/cron.py [--binary PATH] [--projects 50] [--jobs 40] [--ticks 5] [--history N]

With `--history N`, N keys of other hooks' history (`history.py`'s) are added to the store
after the first tick, so the ordinary ticks run on a store that holds history.
"""

import argparse
import datetime
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import time

import taskcluster

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "python"))
from conftest import ROOT_ACCESS_TOKEN, ROOT_CLIENT_ID, SECRETS_KEY, RunningHost, host_binary  # noqa: E402
from fake_repository import FakeRepositoryHost  # noqa: E402
from taskhooks_client import Taskhooks  # noqa: E402

TC_YML = json.dumps({"version": 1, "tasks": [{"taskId": {"$eval": "ownTaskId"}, "taskQueueId": "bench/decision", "schedulerId": "-",
                     "created": {"$fromNow": ""}, "deadline": {"$fromNow": "1 day"}, "payload": {},
                     "metadata": {"name": "${cron.job_name}", "description": "", "owner": "o@example.com", "source": "${repository.url}"}}]})


def cron_yml(jobs):
    # Every job at 03:00 on some weekday or day of month, so none is due at the measured
    # midday slots; shaped as real files are (by-project, weekday, day, run-on-projects).
    entries = []
    for j in range(jobs):
        when = [{"weekday": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"][j % 7], "hour": 3, "minute": 15 * (j % 4)}]
        if j % 5 == 0:
            when = {"by-project": {"default": [{"day": 1 + j % 28, "hour": 3, "minute": 0}], "nowhere": []}}
        job = {"name": f"job-{j:02}", "job": {"type": "decision-task", "treeherder-symbol": f"J{j}", "target-tasks-method": f"t{j}"}, "when": when}
        if j % 3 == 0:
            job["run-on-projects"] = ["p-00", "p-01"]
        entries.append(job)
    return "jobs:\n" + "".join(f"  - {json.dumps(e)}\n" for e in entries)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary")
    ap.add_argument("--projects", type=int, default=50)
    ap.add_argument("--jobs", type=int, default=40)
    ap.add_argument("--ticks", type=int, default=5)
    ap.add_argument("--history", type=int, default=0)
    args = ap.parse_args()
    if args.binary:
        os.environ["TASKHOOKS_BIN"] = args.binary
    repos = FakeRepositoryHost()
    env = {
        "SPIN_VARIABLE_REPOSITORY_HOSTS": repos.host,
        "SPIN_VARIABLE_GITHUB_API_URL": repos.github_api,
        "SPIN_VARIABLE_ALLOWED_REPOSITORY_HOST": repos.root,
    }
    host = RunningHost(env)
    opts = {"rootUrl": host.root_url, "credentials": {"clientId": ROOT_CLIENT_ID, "accessToken": ROOT_ACCESS_TOKEN}}
    taskhooks = Taskhooks(opts)
    text = cron_yml(args.jobs)
    paths = []
    for p in range(args.projects):
        kind = "git" if p % 2 == 0 else "hg"
        path = f"org/p-{p:02}" if kind == "git" else f"p-{p:02}"
        paths.append((path, "main" if kind == "git" else "default"))
        url = repos.add(kind, path, "main" if kind == "git" else "default", {".cron.yml": text, ".taskcluster.yml": TC_YML})
        taskhooks.putCronProject(f"p-{p:02}", {"repository": {"url": url, "type": kind, "level": "1"}})
    host.stop()

    full = dict(os.environ, SPIN_VARIABLE_ROOT_ACCESS_TOKEN=ROOT_ACCESS_TOKEN, SPIN_VARIABLE_SECRETS_KEY=SECRETS_KEY, **env)
    # Midday on a coming Wednesday: nothing is due at 12:xx.
    today = datetime.datetime.now(datetime.timezone.utc).replace(hour=12, minute=0, second=20, microsecond=0)
    start = today + datetime.timedelta(days=(2 - today.weekday()) % 7 + 7)
    rows = []
    for i in range(2 + args.ticks):
        at = start + datetime.timedelta(minutes=15 * i)
        if i == 1 and args.history:
            sys.path.insert(0, str(REPO / "benches" / "load"))
            from history import add_history
            total = add_history(f"{host.state}/sqlite_key_value.db", args.history)
            print(f"store now holds {total:,} keys", file=sys.stderr)
        if i == 1 + args.ticks:
            # Every repository pushed to: each file read again and compared with its hooks.
            for path, branch in paths:
                repos.commit(path, branch, {".cron.yml": text + "# a push\n"})
        t0 = time.time()
        out = subprocess.run([host_binary(), "cron", "timer", "--at", str(int(at.timestamp())), "--state-dir", host.state],
                             cwd=REPO, env=full, capture_output=True, text=True, check=True).stdout
        wall = (time.time() - t0) * 1000
        m = re.search(r"due (\d+) fired (\d+) .*cron projects (\d+) read, (\d+) failed, job hooks created (\d+) updated (\d+) removed (\d+); in (\d+) ms", out)
        assert m and m.group(4) == "0", out
        label = "first (creates the hooks)" if i == 0 else "every project at a new revision" if i == 1 + args.ticks else f"ordinary {i}"
        rows.append((label, m.group(1), m.group(3), m.group(5), m.group(8), f"{wall:.0f}"))
    print(f"{args.projects} projects x {args.jobs} jobs; {sum(repos.requests.values())} repository requests in all", file=sys.stderr)
    print("| tick | due | projects read | hooks created | tick ms (timer's own) | command wall ms |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    ordinary = [int(r[4]) for r in rows[1:-1]]
    if ordinary:
        print(f"ordinary ticks: median {statistics.median(ordinary)} ms, max {max(ordinary)} ms")
    repos.stop()


if __name__ == "__main__":
    main()
