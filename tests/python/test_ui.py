"""The web UI in a real browser: tests/browser/ui.mjs drives Debian's Chromium through
playwright-core against the host (create, edit, trigger, token, remove; errors, loading
states, keyboard, phone width, anonymous read-only use)."""

import os
import subprocess

import pytest
import taskcluster

from conftest import REPO, ROOT_ACCESS_TOKEN, ROOT_CLIENT_ID, RunningHost
from fake_repository import FakeRepositoryHost

ROLE_SCOPES = ["queue:create-task:highest:proj/*", "queue:create-task:project:none", "queue:scheduler-id:-"]


CRON_YML = """jobs:
  - {name: nightly, job: {type: decision-task, treeherder-symbol: N, target-tasks-method: nightly}, when: [{hour: 5, minute: 0}]}
  - {name: by-hand, job: {type: decision-task, treeherder-symbol: H, target-tasks-method: h}, when: []}
"""
TASKCLUSTER_YML = """version: 1
tasks:
  - taskId: {$eval: ownTaskId}
    taskQueueId: proj/decision
    schedulerId: "-"
    created: {$fromNow: ''}
    deadline: {$fromNow: '1 day'}
    metadata: {name: "cron ${cron.job_name}", description: "", owner: "ops@example.com", source: "${repository.url}"}
    payload: {args: "${cron.quoted_args}"}
"""


@pytest.fixture(scope="module")
def repos():
    r = FakeRepositoryHost()
    r.url = r.add("git", "org/ui-cron", "main", {".cron.yml": CRON_YML, ".taskcluster.yml": TASKCLUSTER_YML})
    yield r
    r.stop()


@pytest.fixture(scope="module")
def host(repos):
    """The host, reading cron projects from the loopback repository host."""
    h = RunningHost({
        "SPIN_VARIABLE_REPOSITORY_HOSTS": repos.host,
        "SPIN_VARIABLE_GITHUB_API_URL": repos.github_api,
        "SPIN_VARIABLE_ALLOWED_REPOSITORY_HOST": repos.root,
    })
    yield h
    h.stop()


def test_the_ui_in_chromium(host, root_options, repos):
    taskcluster.Auth(root_options).createRole("hook-id:ui-test/*", {"description": "the UI test's hooks", "scopes": ROLE_SCOPES})
    args = ["node", str(REPO / "tests/browser/ui.mjs"), host.root_url, ROOT_CLIENT_ID, ROOT_ACCESS_TOKEN]
    if os.environ.get("TASKHOOKS_SCREENSHOTS"):
        args.append(os.environ["TASKHOOKS_SCREENSHOTS"])
    run = subprocess.run(args, capture_output=True, text=True, timeout=300, env=dict(os.environ, REPOSITORY_URL=repos.url))
    print(run.stdout)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("ok - ") >= 37, run.stdout
    # The token typed into the page went only into Hawk headers: never into the host's log.
    assert ROOT_ACCESS_TOKEN not in "".join(host.log)
