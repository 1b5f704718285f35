"""A private RabbitMQ node for the tests: Debian's rabbitmq-server run as an ordinary
process on loopback ports, with the management plugin, in a temporary directory, and a
small client for its management HTTP API (what the relay itself speaks)."""

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def quote(name):
    return urllib.parse.quote(name, safe="")


class Management:
    """Calls the management API as `guest` (allowed from loopback only)."""

    def __init__(self, url, user="guest", password="guest", vhost="/"):
        self.url = url
        self.vhost = vhost
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("authorization", self.auth)
        req.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
                return resp.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw.decode(errors="replace")

    def ok(self, method, path, body=None):
        status, answer = self.call(method, path, body)
        assert status < 300, f"{method} {path}: {status} {answer}"
        return answer

    def declare_exchange(self, name, kind="topic"):
        self.ok("PUT", f"/api/exchanges/{quote(self.vhost)}/{quote(name)}", {"type": kind, "durable": True})

    def publish(self, exchange, routing_key, payload, properties=None, cc=None):
        props = dict(properties or {})
        props.setdefault("content_type", "application/json")
        props.setdefault("delivery_mode", 2)
        if cc:
            props.setdefault("headers", {})["CC"] = cc
        body = payload if isinstance(payload, str) else json.dumps(payload)
        answer = self.ok("POST", f"/api/exchanges/{quote(self.vhost)}/{quote(exchange)}/publish", {
            "properties": props, "routing_key": routing_key, "payload": body, "payload_encoding": "string",
        })
        return answer["routed"]

    def queues(self):
        return {q["name"]: q for q in self.ok("GET", f"/api/queues/{quote(self.vhost)}")}

    def queue_bindings(self, queue):
        return sorted(
            (b["source"], b["routing_key"])
            for b in self.ok("GET", f"/api/queues/{quote(self.vhost)}/{quote(queue)}/bindings")
            if b["source"]
        )

    def peek(self, queue, count=1000):
        return self.ok("POST", f"/api/queues/{quote(self.vhost)}/{quote(queue)}/get", {
            "count": count, "ackmode": "reject_requeue_true", "encoding": "auto",
        })


class RabbitMQ:
    """Starts a node in its own directory; `stop()` ends it and its epmd."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="taskhooks-rabbit-")
        self.amqp_port = free_port()
        self.http_port = free_port()
        dist_port = free_port()
        epmd_port = free_port()
        with open(os.path.join(self.dir, "rabbitmq.conf"), "w") as f:
            f.write(
                f"listeners.tcp.default = 127.0.0.1:{self.amqp_port}\n"
                f"management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = {self.http_port}\n"
                "loopback_users.guest = true\n"
                # The relay reads counts from the API; refresh them often.
                "collect_statistics_interval = 500\n"
            )
        with open(os.path.join(self.dir, "enabled_plugins"), "w") as f:
            f.write("[rabbitmq_management].\n")
        self.env = dict(
            os.environ,
            HOME=self.dir,
            RABBITMQ_CONFIG_FILE=os.path.join(self.dir, "rabbitmq"),
            RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(self.dir, "enabled_plugins"),
            RABBITMQ_MNESIA_BASE=os.path.join(self.dir, "mnesia"),
            RABBITMQ_LOG_BASE=os.path.join(self.dir, "log"),
            RABBITMQ_NODENAME=f"taskhooks{self.http_port}@localhost",
            RABBITMQ_DIST_PORT=str(dist_port),
            ERL_EPMD_PORT=str(epmd_port),
            ERL_EPMD_ADDRESS="127.0.0.1",
        )
        self.log = open(os.path.join(self.dir, "stdout.log"), "w")
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.api = Management(self.url)
        self.start()

    def start(self):
        """Starts the node (again, after `halt`: same name, ports and data, so durable
        queues and persistent messages are back)."""
        # The Debian wrapper in /usr/sbin switches to the `rabbitmq` user; the script under
        # /usr/lib runs the node as whoever starts it, in the directories given here.
        self.proc = subprocess.Popen(
            ["/usr/lib/rabbitmq/bin/rabbitmq-server"], env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.time() + 90
        while True:
            try:
                status, _ = self.api.call("GET", "/api/overview")
                if status == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError("rabbitmq-server did not start; see " + self.log.name)
            time.sleep(0.25)

    def halt(self):
        """Stops the node (as an operator or a crash-restart would), keeping its data for
        `start`."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        # epmd daemonises into its own session: stop it through its own port.
        subprocess.run(["epmd", "-port", self.env["ERL_EPMD_PORT"], "-kill"], env=self.env, check=False, capture_output=True)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
