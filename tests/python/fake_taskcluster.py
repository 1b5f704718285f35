"""A stand-in for a remote Taskcluster deployment's Queue, on loopback: it checks each
request's Hawk signature with mohawk (the official Python client's Hawk library, an
implementation independent of ours), records what it received, and answers as scripted.

It keeps the tasks it created as the Queue does: a `createTask` of an existing taskId
with the same definition answers the existing task, with a different one 409. And it can
be told to fail for a while (`fail`): answer 503, hang past the client's timeout (having
created the task, as a Queue that answers too late has), or reset the connection."""

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import mohawk
import mohawk.exc
import socket
import struct

CLIENT_ID = "static/taskhooks-remote"
ACCESS_TOKEN = "remote-hooks-access-token"
# Clients the fake Auth service knows, with their (already expanded) scopes.
USERS = {
    "project/remote-admin": ("remote-admin-token", ["hooks:*", "assume:hook-id:*", "assume:repo:*"]),
    "project/remote-reader": ("remote-reader-token", ["hooks:get:*", "hooks:list-hooks:*"]),
}


class FakeQueue:
    def __init__(self):
        self.received = []  # dicts: taskId, valid_signature, authorizedScopes, task
        self.script = []  # (status, body) answers, used first-in first-out; then 200
        self.auth_requests = []
        self.created = {}  # taskId -> task definition, as the Queue stores it
        self.mode = None  # None (healthy), "503", "hang", "reset"
        self.fail_until = None  # monotonic time the failure ends, or None: until recover()
        self.hang_seconds = 6
        self.poison = None  # a string: tasks whose definition contains it get a 500, always
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                if self.path != "/api/auth/v1/authenticate-hawk":
                    self.send_error(404)
                    return
                req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    fake.auth_requests.append(req)
                if "authorization" not in req:
                    answer = {"status": "no-auth", "scheme": "none", "scopes": ["hooks:get:public:*"], "expires": "3000-01-01T00:00:00.000Z"}
                else:
                    try:
                        url = f"http://{req['host']}:{req['port']}{req['resource']}"
                        parsed = mohawk.util.parse_authorization_header(req["authorization"])
                        cid = parsed["id"]
                        try:
                            # The Auth service never sees the body: mohawk checks the MAC
                            # (which covers the claimed hash), then stops at the missing
                            # content; the service checks the hash itself.
                            mohawk.Receiver(
                                lambda c: {"id": c, "key": USERS[c][0], "algorithm": "sha256"},
                                req["authorization"], url, req["method"].upper(), seen_nonce=None,
                            )
                        except mohawk.exc.MissingContent:
                            pass
                        if abs(time.time() - int(parsed["ts"])) > 15 * 60:
                            raise mohawk.exc.TokenExpired("stale timestamp", localtime_in_seconds=time.time(), www_authenticate="")
                        answer = {"status": "auth-success", "clientId": cid, "scopes": USERS[cid][1], "scheme": "hawk",
                                  "expires": "3000-01-01T00:00:00.000Z", "hash": parsed.get("hash")}
                    except (mohawk.exc.HawkFail, KeyError) as e:
                        answer = {"status": "auth-failed", "message": f"ext.hawk: {e!r}"}
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                # queue.ping: what a heartbeat asks; down while the Queue is failing.
                if self.path == "/api/queue/v1/ping":
                    failing = fake.failing() is not None
                    data = json.dumps({"alive": not failing, "uptime": 1}).encode()
                    self.send_response(503 if failing else 200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                # queue.status(taskId): public, as upstream's.
                parts = self.path.split("/")
                if len(parts) == 7 and parts[1:5] == ["api", "queue", "v1", "task"] and parts[6] == "status":
                    with fake.lock:
                        known = parts[5] in fake.created
                    status, answer = (200, {"status": {"taskId": parts[5], "state": "pending", "runs": []}}) if known else (404, {"code": "ResourceNotFound", "message": "no such task"})
                    data = json.dumps(answer).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                self.send_error(404)

            def do_PUT(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                mode = fake.failing()
                if mode == "503":
                    with fake.lock:
                        fake.refused += 1
                    data = json.dumps({"code": "ServiceUnavailable", "message": "the Queue is down for a while"}).encode()
                    self.send_response(503)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if mode == "reset":
                    with fake.lock:
                        fake.refused += 1
                    # An RST instead of an answer.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                url = f"http://{self.headers['Host']}{self.path}"
                record = {"path": self.path, "valid_signature": False, "authorizedScopes": None, "headers": dict(self.headers)}
                try:
                    mohawk.Receiver(
                        lambda cid: {"id": CLIENT_ID, "key": ACCESS_TOKEN, "algorithm": "sha256"} if cid == CLIENT_ID else (_ for _ in ()).throw(LookupError(cid)),
                        self.headers["Authorization"], url, "PUT", content=body,
                        content_type=self.headers.get("Content-Type", ""), seen_nonce=None,
                    )
                    record["valid_signature"] = True
                    ext = mohawk.util.parse_authorization_header(self.headers["Authorization"]).get("ext")
                    if ext:
                        record["authorizedScopes"] = json.loads(base64.b64decode(ext))["authorizedScopes"]
                except (mohawk.exc.HawkFail, LookupError) as e:
                    record["error"] = repr(e)
                record["taskId"] = self.path.rsplit("/", 1)[-1]
                record["task"] = json.loads(body or b"null")
                with fake.lock:
                    fake.received.append(record)
                    status, answer = fake.script.pop(0) if fake.script else (200, None)
                    if fake.poison and fake.poison in json.dumps(record["task"]):
                        status, answer = 500, {"code": "InternalServerError", "message": "this task always fails"}
                if not record["valid_signature"]:
                    status, answer = 401, {"code": "AuthenticationFailed", "message": record.get("error", "")}
                elif status == 200:
                    with fake.lock:
                        existing = fake.created.get(record["taskId"])
                        if existing is None:
                            fake.created[record["taskId"]] = record["task"]
                        elif existing != record["task"]:
                            status, answer = 409, {"code": "RequestConflict", "message": "taskId already used by another task"}
                if mode == "hang":
                    # Created, but the answer comes after the client gave up.
                    time.sleep(fake.hang_seconds)
                    self.close_connection = True
                    return
                if answer is None:
                    answer = {"status": {"taskId": record["taskId"], "state": "pending", "runs": []}}
                data = json.dumps(answer).encode() if not isinstance(answer, bytes) else answer
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.root_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    refused = 0

    def fail(self, mode, seconds=None):
        """Fail every createTask as `mode` ("503", "hang", "reset") for `seconds`, or
        until `recover()`."""
        with self.lock:
            self.mode = mode
            self.fail_until = None if seconds is None else time.monotonic() + seconds

    def recover(self):
        with self.lock:
            self.mode = None

    def failing(self):
        with self.lock:
            if self.mode and self.fail_until is not None and time.monotonic() >= self.fail_until:
                self.mode = None
            return self.mode

    def stop(self):
        self.server.shutdown()
