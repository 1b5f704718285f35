"""API conformance through the official Taskcluster JavaScript client, beside the Python
one: tests/js/conformance.mjs drives every Hooks v1 method of the client's reference and
the Auth subset against the host, and fails on any method it did not call."""

import os
import shutil
import subprocess

from conftest import REPO, ROOT_ACCESS_TOKEN, ROOT_CLIENT_ID

JS = REPO / "tests" / "js"


def test_the_official_js_client_drives_every_method(host):
    node = shutil.which("node")
    assert node, "node is not installed (scripts/test installs Debian's nodejs and npm)"
    assert (JS / "node_modules" / "taskcluster-client").is_dir(), (
        "tests/js's packages are not installed: run `npm ci --prefix tests/js`"
    )
    env = dict(
        os.environ,
        TASKCLUSTER_ROOT_URL=host.root_url,
        TASKCLUSTER_CLIENT_ID=ROOT_CLIENT_ID,
        TASKCLUSTER_ACCESS_TOKEN=ROOT_ACCESS_TOKEN,
    )
    env.pop("TASKCLUSTER_CERTIFICATE", None)
    done = subprocess.run([node, str(JS / "conformance.mjs")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"conformance.mjs exited {done.returncode}:\n{output}"
    assert "not ok" not in output, output
    assert "ok - called all" in output, output
