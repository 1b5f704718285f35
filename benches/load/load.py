"""Load run against the local host on loopback: authenticated `hook` GETs and
`triggerHook` POSTs into the local queue, with wrk at a fixed concurrency.

    python3 benches/load/load.py [--binary PATH] [--duration 20] [--connections 8]

Needs wrk (Debian package `wrk`) and the packages in tests/python/requirements.txt.
Prints req/s and latency percentiles as a Markdown table (docs/benchmarks.md records
them). Hawk allows 15 minutes of clock skew and keeps no nonce cache, so one signed
header serves a whole run, as a busy client's requests would each be signed.
"""

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import mohawk
import taskcluster

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "python"))
from conftest import ROOT_ACCESS_TOKEN, ROOT_CLIENT_ID, RunningHost  # noqa: E402

LUA = """
wrk.method = "{method}"
wrk.body = {body}
wrk.headers["Authorization"] = {auth}
{content_type}
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %f %f %f %f\\n", summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), summary.duration))
end
"""


def lua_string(s):
    return json.dumps(s)


def run_wrk(url, method, body, duration, connections, client_id=ROOT_CLIENT_ID, access_token=ROOT_ACCESS_TOKEN):
    creds = {"id": client_id, "key": access_token, "algorithm": "sha256"}
    sender = mohawk.Sender(creds, url, method, content=body, content_type="application/json" if body else "")
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    content_type = 'wrk.headers["Content-Type"] = "application/json"' if body else ""
    script.write(LUA.format(method=method, body=lua_string(body) if body else "nil", auth=lua_string(sender.request_header), content_type=content_type))
    script.close()
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{duration}s", "--latency", "-s", script.name, url],
        capture_output=True, text=True, check=True,
    ).stdout
    os.unlink(script.name)
    m = re.search(r"RESULT (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+)", out)
    requests, bad_status, socket_errors, p50, p90, p99, micros = m.groups()
    return {
        "requests": int(requests),
        "non_2xx": int(bad_status),
        "socket_errors": int(socket_errors),
        "rps": int(requests) / (float(micros) / 1e6),
        "p50_ms": float(p50) / 1000,
        "p90_ms": float(p90) / 1000,
        "p99_ms": float(p99) / 1000,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", help="the taskhooks host (default: as the conformance suite finds it)")
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--connections", type=int, default=8)
    args = ap.parse_args()
    if args.binary:
        os.environ["TASKHOOKS_BIN"] = args.binary
    host = RunningHost()
    try:
        opts = {"rootUrl": host.root_url, "credentials": {"clientId": ROOT_CLIENT_ID, "accessToken": ROOT_ACCESS_TOKEN}}
        auth, hooks = taskcluster.Auth(opts), taskcluster.Hooks(opts)
        auth.createRole("hook-id:load/*", {"description": "load", "scopes": ["queue:create-task:highest:load/*", "queue:create-task:project:none", "queue:scheduler-id:-"]})
        # Some roles and hooks beside the one under load, so lookups are not trivially small.
        for i in range(50):
            auth.createRole(f"project-{i}:*", {"description": "", "scopes": [f"hooks:get:project-{i}:*"]})
        template = {
            "metadata": {"name": "load", "description": "load run", "owner": "ops@example.com"},
            "task": {"taskQueueId": "load/ci", "schedulerId": "-", "payload": {"n": "${payload.n}"},
                     "metadata": {"name": "load", "description": "", "owner": "ops@example.com", "source": "https://example.com"},
                     "deadline": {"$fromNow": "1 hour"}},
            "triggerSchema": {"type": "object", "properties": {"n": {"type": "integer"}}, "additionalProperties": False},
        }
        for i in range(20):
            hooks.createHook("load", f"hook-{i}", template)
        base = f"{host.root_url}/api/hooks/v1/hooks/load/hook-7"
        rows = [
            ("hook (authenticated GET)", run_wrk(base, "GET", "", args.duration, args.connections)),
            ("triggerHook (POST, local queue)", run_wrk(base + "/trigger", "POST", json.dumps({"n": 1}), args.duration, args.connections)),
        ]
    finally:
        host.stop()
    print(f"| method | connections | requests | non-2xx | req/s | p50 ms | p90 ms | p99 ms |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, r in rows:
        print(f"| {name} | {args.connections} | {r['requests']} | {r['non_2xx'] + r['socket_errors']} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | {r['p99_ms']:.2f} |")


if __name__ == "__main__":
    main()
