"""A stand-in for a remote Taskcluster deployment's Queue, on loopback: it checks each
request's Hawk signature with mohawk (the official Python client's Hawk library, an
implementation independent of ours), records what it received, and answers as scripted."""

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import mohawk
import mohawk.exc

CLIENT_ID = "static/taskhooks-remote"
ACCESS_TOKEN = "remote-hooks-access-token"
# Clients the fake Auth service knows, with their (already expanded) scopes.
USERS = {
    "project/remote-admin": ("remote-admin-token", ["hooks:*", "assume:hook-id:*"]),
    "project/remote-reader": ("remote-reader-token", ["hooks:get:*", "hooks:list-hooks:*"]),
}


class FakeQueue:
    def __init__(self):
        self.received = []  # dicts: taskId, valid_signature, authorizedScopes, task
        self.script = []  # (status, body) answers, used first-in first-out; then 200
        self.auth_requests = []
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

            def do_PUT(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
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
                if not record["valid_signature"]:
                    status, answer = 401, {"code": "AuthenticationFailed", "message": record.get("error", "")}
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

    def stop(self):
        self.server.shutdown()
