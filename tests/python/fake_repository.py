"""A repository host on loopback that speaks the two protocols cron projects are read
with, for tests (GitHub and hg.mozilla.org cannot be reached from here):

* git, as GitHub: `GET /api/repos/<org>/<repo>/git/ref/heads/<branch>` (the API, at
  `github_api_url` = `<root>/api`) answers `{"ref", "object": {"sha", "type", "url"}}`, and
  `GET /<org>/<repo>/raw/<sha>/<path>` redirects (302) to the file's
  `raw.githubusercontent.com`-style URL, as github.com does;
* hg, as hg.mozilla.org: `GET /<path>/json-pushes?version=2&changeset=<branch>&full=1`
  answers the push holding the branch tip, and `GET /<path>/raw-file/<rev>/<file>` the file.

Tests commit files (`commit`), which makes a new revision the branch's tip, and can make
the host fail (`fail`: 503 or a reset connection) for a while. Every request is counted
by what it read (`count`)."""

import collections
import hashlib
import json
import socket
import struct
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Repo:
    def __init__(self, kind, path):
        self.kind, self.path = kind, path
        self.revisions = {}  # revision -> {file path: text}
        self.branches = {}  # branch -> revision
        self.pushes = {}  # hg: revision -> (pushlog id, parent revision, date)


class FakeRepositoryHost:
    def __init__(self):
        self.repos = {}  # path on the host -> Repo
        self.requests = collections.Counter()  # (repo path, what) -> count
        self.mode = None  # None, "503", "reset"
        self.lock = threading.Lock()
        self.pushlog = 0
        host = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                if host.mode == "503":
                    return self.answer(503, b"unavailable", "text/plain")
                if host.mode == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    return
                status, body, kind, location = host.route(url.path, urllib.parse.parse_qs(url.query))
                self.answer(status, body, kind, location)

            def answer(self, status, body, kind, location=None):
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                if location:
                    self.send_header("Location", location)
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.root = f"http://{self.host}"
        self.github_api = f"{self.root}/api"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()

    # -- what tests do --------------------------------------------------------------

    def add(self, kind, path, branch, files):
        """A repository with one revision holding `files` on `branch`; its URL."""
        with self.lock:
            self.repos[path] = Repo(kind, path)
        self.commit(path, branch, files)
        return f"{self.root}/{path}"

    def commit(self, path, branch, files):
        """A new revision of `files` (path -> text; None removes it) on top of the
        branch tip, made the tip. Returns it."""
        with self.lock:
            repo = self.repos[path]
            parent = repo.branches.get(branch)
            tree = dict(repo.revisions.get(parent, {}))
            for name, text in files.items():
                if text is None:
                    tree.pop(name, None)
                else:
                    tree[name] = text
            seed = json.dumps([path, branch, parent, sorted(tree.items()), len(repo.revisions)])
            revision = hashlib.sha1(seed.encode()).hexdigest()
            repo.revisions[revision] = tree
            repo.branches[branch] = revision
            self.pushlog += 1
            repo.pushes[revision] = (str(self.pushlog), parent or "0" * 40, 1_700_000_000 + self.pushlog)
            return revision

    def tip(self, path, branch):
        return self.repos[path].branches[branch]

    def fail(self, mode):
        self.mode = mode

    def recover(self):
        self.mode = None

    def count(self, path, what):
        """Requests for `what` ("tip", or a file name) of the repository at `path`."""
        return self.requests[(path, what)]

    # -- the protocols --------------------------------------------------------------

    def route(self, path, query):
        not_found = (404, b'{"message": "Not Found"}', "application/json", None)
        parts = path.strip("/").split("/")
        with self.lock:
            # GitHub's API: /api/repos/<org>/<repo>/git/ref/heads/<branch...>
            if parts[:2] == ["api", "repos"] and parts[4:7] == ["git", "ref", "heads"]:
                repo = self.repos.get("/".join(parts[2:4]))
                branch = "/".join(parts[7:])
                if not repo or repo.kind != "git" or branch not in repo.branches:
                    return not_found
                self.requests[(repo.path, "tip")] += 1
                sha = repo.branches[branch]
                body = {"ref": f"refs/heads/{branch}", "node_id": "x", "url": f"{self.github_api}/repos/{repo.path}/git/refs/heads/{branch}",
                        "object": {"sha": sha, "type": "commit", "url": f"{self.github_api}/repos/{repo.path}/git/commits/{sha}"}}
                return 200, json.dumps(body).encode(), "application/json", None
            # github.com/<org>/<repo>/raw/<sha>/<file> -> the raw content host.
            if len(parts) >= 5 and parts[2] == "raw" and parts[0] != "rawcontent":
                return 302, b"", "text/html", f"{self.root}/rawcontent/{parts[0]}/{parts[1]}/{parts[3]}/{'/'.join(parts[4:])}"
            if parts[0] == "rawcontent" and len(parts) >= 5:
                return self.file("/".join(parts[1:3]), parts[3], "/".join(parts[4:]), "git")
            # hg: /<path...>/json-pushes and /<path...>/raw-file/<rev>/<file>
            if parts[-1] == "json-pushes":
                repo = self.repos.get("/".join(parts[:-1]))
                if not repo or repo.kind != "hg" or query.get("version") != ["2"] or query.get("full") != ["1"]:
                    return not_found
                changeset = query.get("changeset", ["default"])[0]
                revision = repo.branches.get(changeset, changeset if changeset in repo.pushes else None)
                if revision is None:
                    return 404, b'{"error": "unknown revision"}', "application/json", None
                self.requests[(repo.path, "tip")] += 1
                pushlog_id, parent, date = repo.pushes[revision]
                push = {"changesets": [{"node": revision, "parents": [parent], "desc": "a change", "author": "someone", "branch": "default", "files": [], "tags": []}],
                        "date": date, "user": "someone@example.com"}
                return 200, json.dumps({"lastpushid": self.pushlog, "pushes": {pushlog_id: push}}).encode(), "application/json", None
            if "raw-file" in parts:
                i = parts.index("raw-file")
                if len(parts) < i + 3:
                    return not_found
                return self.file("/".join(parts[:i]), parts[i + 1], "/".join(parts[i + 2:]), "hg")
        return not_found

    def file(self, repo_path, revision, name, kind):
        repo = self.repos.get(repo_path)
        if not repo or repo.kind != kind or revision not in repo.revisions:
            return 404, b"Not Found", "text/plain", None
        self.requests[(repo.path, name)] += 1
        text = repo.revisions[revision].get(name)
        if text is None:
            return 404, b"Not Found", "text/plain", None
        return 200, text.encode(), "text/plain; charset=utf-8", None
