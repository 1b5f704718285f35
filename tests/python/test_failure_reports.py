"""Failed fires of hooks with `emailOnError` are reported to `error_webhook_url`, at most
once per hook per 12 hours; hooks without it are not reported."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import taskcluster
from taskcluster.exceptions import TaskclusterFailure

from conftest import ROOT_ACCESS_TOKEN, ROOT_CLIENT_ID, RunningHost


class Receiver:
    def __init__(self):
        self.reports = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                outer.reports.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/report"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def broken_hook(email_on_error):
    return {
        "metadata": {"name": "broken", "description": "", "owner": "owner@example.com", "emailOnError": email_on_error},
        "task": {"taskQueueId": "proj/ci", "payload": {"x": "${payload.missing}"},
                 "metadata": {"name": "b", "description": "", "owner": "owner@example.com", "source": "https://example.com"}},
        "triggerSchema": {"type": "object"},
    }


def test_failures_are_reported_once_per_hook():
    receiver = Receiver()
    host = RunningHost({"SPIN_VARIABLE_ERROR_WEBHOOK_URL": receiver.url,
                        "SPIN_VARIABLE_ALLOWED_WEBHOOK_HOST": receiver.url.rsplit("/", 1)[0]})
    try:
        hooks = taskcluster.Hooks({"rootUrl": host.root_url, "maxRetries": 0,
                                   "credentials": {"clientId": ROOT_CLIENT_ID, "accessToken": ROOT_ACCESS_TOKEN}})
        hooks.createHook("proj", "loud", broken_hook(True))
        hooks.createHook("proj", "quiet", broken_hook(False))
        for hook in ["loud", "loud", "quiet"]:
            with pytest.raises(TaskclusterFailure):
                hooks.triggerHook("proj", hook, {})
        assert len(receiver.reports) == 1, receiver.reports
        report = receiver.reports[0]
        assert (report["hookGroupId"], report["hookId"], report["owner"]) == ("proj", "loud", "owner@example.com")
        assert report["firedBy"] == "triggerHook"
        assert report["error"].startswith("InterpreterError at template.payload.x"), report["error"]
    finally:
        host.stop()
        receiver.server.shutdown()
