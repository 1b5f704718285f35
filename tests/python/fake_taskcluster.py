"""A stand-in for a remote Taskcluster deployment's Queue, on loopback: it checks each
request's Hawk signature with mohawk (the official Python client's Hawk library, an
implementation independent of ours), records what it received, and answers as scripted."""

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import mohawk
import mohawk.exc

CLIENT_ID = "static/taskhooks-remote"
ACCESS_TOKEN = "remote-hooks-access-token"


class FakeQueue:
    def __init__(self):
        self.received = []  # dicts: taskId, valid_signature, authorizedScopes, task
        self.script = []  # (status, body) answers, used first-in first-out; then 200
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

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
