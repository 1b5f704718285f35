"""Side by side: taskhooks (the local host, started here) against any Taskcluster-compatible
deployment, in alternating rounds, each side under the same load: wrk with keep-alive
connections sending one Hawk-signed `hook` GET (and, with `--trigger`, `triggerHook`
POSTs). For each side and round it reports req/s, p99 and the CPU the side's processes
spent per request (user + system time from /proc, so it needs the other side's processes
on this machine: `--other-pids` or `--other-process`).

    python3 benches/load/side_by_side.py \\
        --other-root-url http://127.0.0.1:8080 --other-process 'node|postgres' \\
        [--rounds 3] [--duration 10] [--connections 4] [--binary target/load/taskhooks]

The other side's credentials come from TASKCLUSTER_CLIENT_ID / TASKCLUSTER_ACCESS_TOKEN
(they need `hooks:modify-hook:taskhooks-bench/hook`, `assume:hook-id:taskhooks-bench/hook`
and `hooks:get:taskhooks-bench:hook`, and for `--trigger` `auth:create-role:` / `auth:update-role:`
`hook-id:taskhooks-bench/*` and `hooks:trigger-hook:taskhooks-bench/hook`; or pass
`--other-hook GROUP/ID` of a hook that exists). Without `--other-root-url` only taskhooks is measured. Needs wrk (Debian package
`wrk`) and the packages in tests/python/requirements.txt. docs/benchmarks.md records runs.
"""

import argparse
import json
import os
import pathlib
import re
import statistics
import sys
import time

import taskcluster

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "python"))
from conftest import ROOT_ACCESS_TOKEN, ROOT_CLIENT_ID, RunningHost  # noqa: E402

sys.path.insert(0, str(REPO / "benches" / "load"))
from load import run_wrk  # noqa: E402

TEMPLATE = {
    "metadata": {"name": "bench", "description": "side-by-side benchmark", "owner": "ops@example.com", "emailOnError": False},
    "task": {"taskQueueId": "bench/ci", "schedulerId": "-", "payload": {"n": "${payload.n}"},
             "metadata": {"name": "bench", "description": "", "owner": "ops@example.com", "source": "https://example.com"},
             "deadline": {"$fromNow": "1 hour"}},
    "triggerSchema": {"type": "object", "properties": {"n": {"type": "integer"}}, "additionalProperties": False},
}
GROUP, HOOK = "taskhooks-bench", "hook"


class Side:
    def __init__(self, name, root_url, client_id, access_token, pids, hook):
        self.name, self.root_url, self.client_id, self.access_token = name, root_url.rstrip("/"), client_id, access_token
        self.pids, self.hook = pids, hook

    def cpu_seconds(self):
        """User + system time of the side's processes (all their threads), now."""
        total = 0
        for pid in self.pids():
            try:
                fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")


def matching_pids(pattern):
    regex = re.compile(pattern)

    def pids():
        found = []
        for entry in pathlib.Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                try:
                    cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue
                if regex.search(cmdline) and "side_by_side.py" not in cmdline and not cmdline.startswith("wrk "):
                    found.append(int(entry.name))
        return found

    return pids


ROLE = {"description": "side-by-side benchmark", "scopes": ["queue:create-task:highest:bench/*", "queue:create-task:project:none", "queue:scheduler-id:-"]}


def prepare(side):
    """The hook under load, and the role its tasks are created with: created (or replaced)
    unless the side names an existing hook."""
    if side.hook:
        return side.hook
    opts = {"rootUrl": side.root_url, "credentials": {"clientId": side.client_id, "accessToken": side.access_token}}
    auth = taskcluster.Auth(opts)
    try:
        try:
            auth.updateRole(f"hook-id:{GROUP}/*", ROLE)
        except taskcluster.TaskclusterRestFailure:
            auth.createRole(f"hook-id:{GROUP}/*", ROLE)
    except taskcluster.TaskclusterRestFailure as e:
        print(f"{side.name}: the hook's role could not be set ({e}); triggers need role hook-id:{GROUP}/* to succeed", file=sys.stderr)
    hooks = taskcluster.Hooks(opts)
    try:
        hooks.updateHook(GROUP, HOOK, TEMPLATE)
    except taskcluster.TaskclusterRestFailure:
        hooks.createHook(GROUP, HOOK, TEMPLATE)
    return f"{GROUP}/{HOOK}"


def wrk(side, method, path, body, duration, connections):
    """One round of `load.run_wrk` against the side, with the CPU its processes spent."""
    cpu_before = side.cpu_seconds()
    r = run_wrk(f"{side.root_url}/api/hooks/v1/hooks/{path}", method, body, duration, connections, side.client_id, side.access_token)
    cpu = side.cpu_seconds() - cpu_before
    return {"rps": r["rps"], "p99_ms": r["p99_ms"], "cpu_ms_per_request": 1000 * cpu / max(r["requests"], 1),
            "failed": r["non_2xx"] + r["socket_errors"], "requests": r["requests"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", help="the taskhooks host to measure (default: target/load/taskhooks if built, else as the tests find it)")
    ap.add_argument("--other-root-url")
    ap.add_argument("--other-name", default="other")
    ap.add_argument("--other-pids", help="comma-separated pids of the other side's processes")
    ap.add_argument("--other-process", help="a regex over /proc/*/cmdline naming the other side's processes")
    ap.add_argument("--other-hook", help="GROUP/ID of an existing hook to GET (default: create taskhooks-bench/hook)")
    ap.add_argument("--trigger", action="store_true", help="also measure triggerHook (creates a task per request)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=4)
    args = ap.parse_args()

    load_build = REPO / "target" / "load" / "taskhooks"
    binary = args.binary or (str(load_build) if load_build.exists() else None)
    if binary:
        os.environ["TASKHOOKS_BIN"] = binary
    host = RunningHost()
    try:
        sides = [Side("taskhooks", host.root_url, ROOT_CLIENT_ID, ROOT_ACCESS_TOKEN, lambda: [host.proc.pid], None)]
        if args.other_root_url:
            if args.other_pids:
                pids = [int(p) for p in args.other_pids.split(",")]
                other_pids = lambda: pids  # noqa: E731
            elif args.other_process:
                other_pids = matching_pids(args.other_process)
            else:
                sys.exit("--other-root-url needs --other-pids or --other-process (CPU is measured from /proc)")
            sides.append(Side(args.other_name, args.other_root_url, os.environ.get("TASKCLUSTER_CLIENT_ID", ""),
                              os.environ.get("TASKCLUSTER_ACCESS_TOKEN", ""), other_pids, args.other_hook))
        hooks = {side.name: prepare(side) for side in sides}
        kinds = [("hook (authenticated GET)", "GET", "", "")]
        if args.trigger:
            kinds.append(("triggerHook", "POST", "/trigger", json.dumps({"n": 1})))
        results = {}
        # Alternating rounds: a machine that slows down (thermal, noise) slows both sides.
        for _ in range(args.rounds):
            for kind, method, suffix, body in kinds:
                for side in sides:
                    r = wrk(side, method, hooks[side.name] + suffix, body, args.duration, args.connections)
                    results.setdefault((kind, side.name), []).append(r)
                    time.sleep(1)
    finally:
        host.stop()

    print(f"{args.rounds} alternating rounds of {args.duration} s, {args.connections} keep-alive connections\n")
    print("| request | side | req/s (median) | p99 ms (median) | CPU per request (median) | failed | rounds: req/s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for (kind, name), rounds in results.items():
        med = lambda key: statistics.median(r[key] for r in rounds)  # noqa: E731
        print(f"| {kind} | {name} | {med('rps'):.0f} | {med('p99_ms'):.2f} | {med('cpu_ms_per_request'):.3f} ms | "
              f"{sum(r['failed'] for r in rounds)} | {', '.join('%.0f' % r['rps'] for r in rounds)} |")


if __name__ == "__main__":
    main()
