"""What metrics cost a trigger: the same triggerHook calls into the embedded queue, on a
host with metrics on and one with them off (`metrics = "off"`), both running, called in
turns.
Compares the component's own time per request, which each request's log line gives
(`monitor.apiMethod`'s `duration`, measured inside the component around everything the
request does, its metric updates included), and the request's wall time as a client on
loopback sees it (the signed request sent and answered, with the host's own work).

    python3 benches/load/metrics_cost.py [--binary PATH] [--rounds 3] [--triggers 300]
"""

import argparse
import json
import os
import pathlib
import statistics
import sys
import time
import urllib.request

import mohawk

import taskcluster

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "python"))
from conftest import ROOT_ACCESS_TOKEN, ROOT_CLIENT_ID, RunningHost  # noqa: E402

TASK = {"taskQueueId": "proj/ci", "schedulerId": "-", "payload": {"n": {"$eval": "payload.n"}},
        "metadata": {"name": "n", "description": "", "owner": "o@example.com", "source": "https://example.com"}}


def start(metrics):
    os.environ["SPIN_VARIABLE_METRICS"] = metrics
    host = RunningHost()
    options = {"rootUrl": host.root_url, "credentials": {"clientId": ROOT_CLIENT_ID, "accessToken": ROOT_ACCESS_TOKEN}}
    taskcluster.Auth(options).createRole("hook-id:cost/*", {"description": "", "scopes": ["queue:create-task:*", "queue:scheduler-id:*"]})
    taskcluster.Hooks(options).createHook("cost", "h", {"metadata": {"name": "c", "description": "", "owner": "o@example.com", "emailOnError": False},
                                                        "task": TASK, "triggerSchema": {"type": "object"}})
    return host


def trigger(host, n):
    """One signed trigger; its wall time (ms) as a client on loopback sees it."""
    url = f"{host.root_url}/api/hooks/v1/hooks/cost/h/trigger"
    body = json.dumps({"n": n})
    # Signed first: the wall time is the HTTP exchange alone (loopback, the host, the
    # component), as a client sees a trigger take.
    sender = mohawk.Sender({"id": ROOT_CLIENT_ID, "key": ROOT_ACCESS_TOKEN, "algorithm": "sha256"}, url, "POST",
                           content=body, content_type="application/json")
    req = urllib.request.Request(url, data=body.encode(), method="POST",
                                 headers={"Authorization": sender.request_header, "Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read()
    return (time.perf_counter() - started) * 1000


def component_times(host):
    lines = [json.loads(line) for line in host.log if line.startswith('{"')]
    return [line["Fields"]["duration"] for line in lines if line["Type"] == "monitor.apiMethod" and line["Fields"]["name"] == "triggerHook"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--triggers", type=int, default=300)
    args = ap.parse_args()
    if args.binary:
        os.environ["TASKHOOKS_BIN"] = args.binary
    # Both hosts at once, called in turns (the order swapped each time), so the machine's
    # ups and downs fall on both alike.
    hosts = {"on": start("on"), "off": start("off")}
    try:
        rows = []
        for r in range(args.rounds):
            walls = {"on": [], "off": []}
            seen = {k: len(component_times(h)) for k, h in hosts.items()}
            for n in range(args.triggers):
                for k in (("on", "off") if n % 2 == 0 else ("off", "on")):
                    walls[k].append(trigger(hosts[k], n))
            time.sleep(0.2)
            comp = {k: component_times(h)[seen[k]:] for k, h in hosts.items()}
            assert all(len(c) == args.triggers for c in comp.values()), {k: len(c) for k, c in comp.items()}
            rows.append([r + 1] + [statistics.median(x[k][20:]) for x in (comp, walls) for k in ("off", "on")])
    finally:
        for h in hosts.values():
            h.stop()
    print("| round | component ms, off | on | overhead | request wall ms, off | on | overhead |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    pct = lambda on, off: f"{100 * (on - off) / off:+.1f}%"
    for r, off_m, on_m, off_w, on_w in rows:
        print(f"| {r} | {off_m:.3f} | {on_m:.3f} | {pct(on_m, off_m)} | {off_w:.3f} | {on_w:.3f} | {pct(on_w, off_w)} |")


if __name__ == "__main__":
    main()
