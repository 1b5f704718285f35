"""Relay throughput: messages drained from RabbitMQ and fired per second. Starts a private
RabbitMQ node (Debian's rabbitmq-server) and the host, creates HOOKS hooks bound to one
exchange, publishes MESSAGES messages to it (each routed to one hook), then runs
`taskhooks cron relay` once and reports the relay's own measurement (its `in N ms`, which
includes reconciling the queues) and the whole command's wall time.

    python3 benches/load/relay.py [--binary PATH] [--messages 10000] [--hooks 1]
"""

import argparse
import concurrent.futures
import json
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
from rabbitmq import RabbitMQ, quote  # noqa: E402

EXCHANGE = "exchange/bench/v1/push"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary")
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--hooks", type=int, default=1)
    args = ap.parse_args()
    if args.binary:
        os.environ["TASKHOOKS_BIN"] = args.binary
    rabbit = RabbitMQ()
    try:
        pulse = {
            "SPIN_VARIABLE_PULSE_API_URL": rabbit.url, "SPIN_VARIABLE_PULSE_USERNAME": "guest",
            "SPIN_VARIABLE_PULSE_PASSWORD": "guest", "SPIN_VARIABLE_ALLOWED_PULSE_HOST": rabbit.url,
        }
        host = RunningHost(pulse)
        opts = {"rootUrl": host.root_url, "credentials": {"clientId": ROOT_CLIENT_ID, "accessToken": ROOT_ACCESS_TOKEN}}
        taskcluster.Auth(opts).createRole("hook-id:bench/*", {"description": "", "scopes": [
            "queue:create-task:highest:bench/*", "queue:create-task:project:none", "queue:scheduler-id:-"]})
        rabbit.api.declare_exchange(EXCHANGE)
        hooks = taskcluster.Hooks(opts)
        for i in range(args.hooks):
            hooks.createHook("bench", f"hook-{i}", {
                "metadata": {"name": "b", "description": "", "owner": "o@example.com"},
                "bindings": [{"exchange": EXCHANGE, "routingKeyPattern": f"primary.{i}.#"}],
                "triggerSchema": {"type": "object", "properties": {"n": {"type": "integer"}}},
                "task": {"taskQueueId": "bench/ci", "schedulerId": "-", "payload": {"n": "${payload.n}"},
                         "metadata": {"name": "b", "description": "", "owner": "o@example.com", "source": "https://example.com"}},
            })
        host.stop()

        path = f"/api/exchanges/%2F/{quote(EXCHANGE)}/publish"

        def publish(n):
            rabbit.api.ok("POST", path, {"routing_key": f"primary.{n % args.hooks}.x", "payload": json.dumps({"n": n}),
                                         "payload_encoding": "string", "properties": {"content_type": "application/json"}})

        t0 = time.time()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(publish, range(args.messages)))
        print(f"published {args.messages} messages in {time.time() - t0:.1f} s", file=sys.stderr)
        # Let the management API's message counts settle (they are sampled).
        time.sleep(1)

        env = dict(os.environ, SPIN_VARIABLE_ROOT_ACCESS_TOKEN=ROOT_ACCESS_TOKEN, SPIN_VARIABLE_SECRETS_KEY=SECRETS_KEY, **pulse)
        t0 = time.time()
        out = subprocess.run([host_binary(), "cron", "relay", "--state-dir", host.state], cwd=REPO, env=env,
                             capture_output=True, text=True, check=True).stdout
        wall = time.time() - t0
        m = re.search(r"fired (\d+) declined (\d+) failed (\d+) discarded (\d+) duplicates (\d+).* in (\d+) ms", out)
        if not m:
            sys.exit(out)
        fired, ms = int(m.group(1)), int(m.group(6))
        queues = [q for q in rabbit.api.queues() if q.startswith("queue/taskcluster-hooks/")]
        left = sum(len(rabbit.api.peek(q, 100)) for q in queues)
        print(f"| {args.messages} messages, {args.hooks} hook(s) | fired {fired} | relay {ms} ms = {fired / (ms / 1000):.0f} msg/s "
              f"| command {wall:.2f} s = {fired / wall:.0f} msg/s | left in the queues {left} |")
    finally:
        rabbit.stop()


if __name__ == "__main__":
    main()
