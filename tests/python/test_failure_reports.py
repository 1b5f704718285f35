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
    """A webhook receiver; answers `fail_next` requests with 503 before accepting."""

    def __init__(self, fail_next=0):
        self.reports = []
        self.raw = []
        self.fail_next = fail_next
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if outer.fail_next > 0:
                    outer.fail_next -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                outer.reports.append(json.loads(body))
                outer.raw.append((body, self.headers.get("X-Taskhooks-Signature-256")))
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


def readme_verifier():
    """The README's verification example, as written."""
    from conftest import REPO
    import re
    text = (REPO / "README.md").read_text()
    section = text[text.index("X-Taskhooks-Signature-256"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace = {}
    exec(code, namespace)
    return namespace["report_is_genuine"]


def test_a_report_that_failed_to_send_is_sent_at_the_next_failure_and_reports_are_signed():
    receiver = Receiver(fail_next=1)
    host = RunningHost({"SPIN_VARIABLE_ERROR_WEBHOOK_URL": receiver.url,
                        "SPIN_VARIABLE_ERROR_WEBHOOK_SECRET": "report-secret",
                        "SPIN_VARIABLE_ALLOWED_WEBHOOK_HOST": receiver.url.rsplit("/", 1)[0]})
    try:
        hooks = taskcluster.Hooks({"rootUrl": host.root_url, "maxRetries": 0,
                                   "credentials": {"clientId": ROOT_CLIENT_ID, "accessToken": ROOT_ACCESS_TOKEN}})
        hooks.createHook("proj", "loud", broken_hook(True))
        for _ in range(3):
            with pytest.raises(TaskclusterFailure):
                hooks.triggerHook("proj", "loud", {})
        # The first report met a 503: the second failure's report went out, the third
        # was inside the quiet window that the delivered one started.
        assert len(receiver.reports) == 1, receiver.reports
        body, signature = receiver.raw[0]
        verify = readme_verifier()
        assert verify(b"report-secret", body, signature)
        assert not verify(b"another-secret", body, signature)
        assert not verify(b"report-secret", body.replace(b"loud", b"quiet"), signature)
    finally:
        host.stop()
        receiver.server.shutdown()

