"""Soak run: sustained mixed traffic through the host for DURATION seconds (default 300):
authenticated `hook` reads, `triggerHook` calls and signed GitHub push deliveries (each
firing a bound hook), interleaved by one wrk script at a fixed concurrency, while the
host's resident memory is sampled every 5 seconds. Prints throughput, latency, error
counts, the memory samples and the growth from the first minute to the last.

    python3 benches/load/soak.py [--binary PATH] [--duration 300] [--connections 4]

Needs wrk (Debian package `wrk`) and the packages in tests/python/requirements.txt.
"""

import argparse
import hashlib
import hmac
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import threading
import time

import mohawk
import taskcluster

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "python"))
from conftest import ROOT_ACCESS_TOKEN, ROOT_CLIENT_ID, RunningHost  # noqa: E402

GITHUB_SECRET = "soak-github-secret"

# One request in ten is a GitHub delivery, three are triggers, six are reads; each
# delivery gets a fresh X-GitHub-Delivery (the signature covers only the body), so every
# one fires the bound hook anew.
LUA = """
local reqs = {READS}
local n = 0
request = function()
  n = n + 1
  local slot = n % 10
  if slot == 0 then
    local h = {GITHUB_HEADERS}
    h["X-GitHub-Delivery"] = string.format("soak-%d-%d-%d", math.random(1, 1000000000), os.time(), n)
    return wrk.format("POST", "/api/github/v1/github", h, {GITHUB_BODY})
  elseif slot <= 3 then
    return wrk.format("POST", {TRIGGER_PATH}, {TRIGGER_HEADERS}, {TRIGGER_BODY})
  else
    return wrk.format("GET", {READ_PATH}, {READ_HEADERS}, nil)
  end
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %f %f %f %f\\n", summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), summary.duration))
end
"""


def lua(value):
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary")
    ap.add_argument("--duration", type=int, default=300)
    ap.add_argument("--connections", type=int, default=4)
    args = ap.parse_args()
    if args.binary:
        os.environ["TASKHOOKS_BIN"] = args.binary
    host = RunningHost({"SPIN_VARIABLE_GITHUB_WEBHOOK_SECRET": GITHUB_SECRET})
    try:
        opts = {"rootUrl": host.root_url, "credentials": {"clientId": ROOT_CLIENT_ID, "accessToken": ROOT_ACCESS_TOKEN}}
        taskcluster.Auth(opts).createRole("hook-id:soak/*", {"description": "", "scopes": [
            "queue:create-task:highest:soak/*", "queue:create-task:project:none", "queue:scheduler-id:-"]})
        task = {"taskQueueId": "soak/ci", "schedulerId": "-", "payload": {"by": "${firedBy}"},
                "metadata": {"name": "s", "description": "", "owner": "o@example.com", "source": "https://example.com"}}
        hooks = taskcluster.Hooks(opts)
        for name, bindings in [("trigger", []), ("on-push", [{"exchange": "exchange/taskcluster-github/v1/push", "routingKeyPattern": "primary.soak.#"}])]:
            hooks.createHook("soak", name, {"metadata": {"name": name, "description": "", "owner": "o@example.com", "emailOnError": False},
                                           "bindings": bindings, "triggerSchema": {"type": "object"}, "task": task})
        for i in range(20):
            hooks.createHook("soak", f"other-{i}", {"metadata": {"name": "o", "description": "", "owner": "o@example.com"}, "task": task})

        def signed(method, path, body=""):
            sender = mohawk.Sender({"id": ROOT_CLIENT_ID, "key": ROOT_ACCESS_TOKEN, "algorithm": "sha256"}, host.root_url + path,
                                   method, content=body, content_type="application/json" if body else "")
            headers = {"Authorization": sender.request_header}
            if body:
                headers["Content-Type"] = "application/json"
            return headers

        read_path = "/api/hooks/v1/hooks/soak/other-7"
        trigger_path = "/api/hooks/v1/hooks/soak/trigger/trigger"
        trigger_body = json.dumps({"soak": True})
        push = json.dumps({"ref": "refs/heads/main", "after": "a" * 40, "repository": {"name": "repo", "owner": {"login": "soak"}}})
        github_headers = {"Content-Type": "application/json", "X-GitHub-Event": "push",
                          "X-Hub-Signature-256": "sha256=" + hmac.new(GITHUB_SECRET.encode(), push.encode(), hashlib.sha256).hexdigest()}
        script = LUA
        for k, v in {"READS": "nil", "GITHUB_HEADERS": lua(github_headers), "GITHUB_BODY": lua(push), "TRIGGER_PATH": lua(trigger_path),
                     "TRIGGER_HEADERS": lua(signed("POST", trigger_path, trigger_body)), "TRIGGER_BODY": lua(trigger_body),
                     "READ_PATH": lua(read_path), "READ_HEADERS": lua(signed("GET", read_path))}.items():
            script = script.replace("{" + k + "}", v)
        lua_file = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        lua_file.write(script)
        lua_file.close()

        samples = []
        done = threading.Event()

        def sample():
            start = time.time()
            while not done.is_set():
                samples.append((round(time.time() - start), rss_kb(host.proc.pid)))
                done.wait(5)

        sampler = threading.Thread(target=sample)
        sampler.start()
        out = subprocess.run(["wrk", "-t", "2", "-c", str(args.connections), "-d", f"{args.duration}s", "--latency", "-s", lua_file.name, host.root_url],
                             capture_output=True, text=True, check=True).stdout
        done.set()
        sampler.join()
        os.unlink(lua_file.name)
        m = re.search(r"RESULT (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+)", out)
        requests, bad, socket_errors, p50, p90, p99, micros = m.groups()
        secs = float(micros) / 1e6
        fires = {name: len(hooks.listLastFires("soak", name, query={"limit": 1000})["lastFires"]) for name in ("trigger", "on-push")}
        first = [kb for t, kb in samples if t <= 60]
        last = [kb for t, kb in samples if t >= samples[-1][0] - 60]
        print(f"| {args.duration} s, {args.connections} connections | {int(requests) / secs:.0f} req/s | {requests} requests | "
              f"non-2xx {bad}, socket errors {socket_errors} | p50 {float(p50) / 1000:.2f} ms, p90 {float(p90) / 1000:.2f} ms, p99 {float(p99) / 1000:.2f} ms |")
        print(f"RSS MB first minute avg {sum(first) / len(first) / 1024:.1f}, last minute avg {sum(last) / len(last) / 1024:.1f}, "
              f"max {max(kb for _, kb in samples) / 1024:.1f}; lastFires pages non-empty: {fires}")
        print("samples (s, MB):", " ".join(f"{t}:{kb / 1024:.1f}" for t, kb in samples))
    finally:
        host.stop()


if __name__ == "__main__":
    main()
