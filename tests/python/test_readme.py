"""The README's examples, run as written against a fresh host: the official-client set-up
and the curl calls."""

import os
import pathlib
import re
import subprocess
import sys

from conftest import REPO, ROOT_ACCESS_TOKEN, ROOT_CLIENT_ID


def block_after(heading, language):
    text = (REPO / "README.md").read_text()
    section = text[text.index(heading):]
    return re.search(rf"```{language}\n(.*?)```", section, re.S).group(1)


def test_readme_examples_run_as_written(host):
    env = dict(os.environ, TASKCLUSTER_ROOT_URL=host.root_url, TASKCLUSTER_CLIENT_ID=ROOT_CLIENT_ID,
               TASKCLUSTER_ACCESS_TOKEN=ROOT_ACCESS_TOKEN)
    # The shell example's `python3` is the one with the client installed, as a reader's
    # would be: this interpreter's (the virtualenv's), not whatever is first on PATH.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    python = subprocess.run([sys.executable, "-c", block_after("## Use it with the official client", "python")],
                            env=env, capture_output=True, text=True)
    assert python.returncode == 0, python.stderr
    lines = python.stdout.splitlines()
    assert lines[0].startswith("created task ") and lines[1] == "success", python.stdout

    curl = subprocess.run(["bash", "-euo", "pipefail", "-c", block_after("### With curl", "sh")],
                          env=env, capture_output=True, text=True)
    assert curl.returncode == 0, curl.stderr
    fired = re.search(r'\{"status":\{"taskId":"([\w-]{22})"\},"taskId":"([\w-]{22})"\}', curl.stdout)
    assert fired and fired.group(1) == fired.group(2), curl.stdout
    assert '"alive":true' in curl.stdout


def test_readme_generated_client_example_runs(host):
    env = dict(os.environ, TASKCLUSTER_ROOT_URL=host.root_url)
    run = subprocess.run([sys.executable, "-c", block_after("### References and schemas", "python")], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "{'nextFires': ['2027-01-01T03:00:00.000Z', '2027-01-02T03:00:00.000Z']}", run.stdout
