"""The web UI in a real browser: tests/browser/ui.mjs drives Debian's Chromium through
playwright-core against the host (create, edit, trigger, token, remove; errors, loading
states, keyboard, phone width, anonymous read-only use)."""

import os
import subprocess

import taskcluster

from conftest import REPO, ROOT_ACCESS_TOKEN, ROOT_CLIENT_ID

ROLE_SCOPES = ["queue:create-task:highest:proj/*", "queue:create-task:project:none", "queue:scheduler-id:-"]


def test_the_ui_in_chromium(host, root_options):
    taskcluster.Auth(root_options).createRole("hook-id:ui-test/*", {"description": "the UI test's hooks", "scopes": ROLE_SCOPES})
    args = ["node", str(REPO / "tests/browser/ui.mjs"), host.root_url, ROOT_CLIENT_ID, ROOT_ACCESS_TOKEN]
    if os.environ.get("TASKHOOKS_SCREENSHOTS"):
        args.append(os.environ["TASKHOOKS_SCREENSHOTS"])
    run = subprocess.run(args, capture_output=True, text=True, timeout=300)
    print(run.stdout)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("ok - ") >= 25, run.stdout
    # The token typed into the page went only into Hawk headers: never into the host's log.
    assert ROOT_ACCESS_TOKEN not in "".join(host.log)
