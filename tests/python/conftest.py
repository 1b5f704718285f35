"""Starts the local host (`taskhooks up`) on loopback with the built components, once per
test module, with a fresh state directory; gives tests Taskcluster client options."""

import os
import pathlib
import subprocess
import tempfile
import threading

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
ROOT_CLIENT_ID = "static/taskhooks/root"
ROOT_ACCESS_TOKEN = "conformance-root-access-token"
SECRETS_KEY = "Y29uZm9ybWFuY2Utc2VjcmV0cy1rZXktMDEyMzQ1Njc="


def host_binary():
    if os.environ.get("TASKHOOKS_BIN"):
        return os.environ["TASKHOOKS_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR", str(REPO / "target"))
    return str(pathlib.Path(target) / "debug" / "taskhooks")


class Spawned(subprocess.Popen):
    """A child whose output goes to a file rather than a pipe: a component logs a line per
    request and per fire, and a child the test only polls or kills would otherwise block
    on a full pipe. `communicate()` still answers the output (stdout and stderr merged)."""

    def __init__(self, cmd, **kwargs):
        self._output = tempfile.TemporaryFile(mode="w+")
        super().__init__(cmd, stdout=self._output, stderr=subprocess.STDOUT, text=True, **kwargs)

    def communicate(self, input=None, timeout=None):
        self.wait(timeout)
        self._output.seek(0)
        return self._output.read(), None


class RunningHost:
    def __init__(self, extra_env=None, extra_args=(), state=None):
        self.state = state or tempfile.mkdtemp(prefix="taskhooks-conformance-")
        env = dict(os.environ, **(extra_env or {}))
        env["SPIN_VARIABLE_ROOT_ACCESS_TOKEN"] = ROOT_ACCESS_TOKEN
        env["SPIN_VARIABLE_SECRETS_KEY"] = SECRETS_KEY
        self.proc = subprocess.Popen(
            [host_binary(), "up", "--listen", "127.0.0.1:0", "--disable-cron", "--state-dir", self.state, *extra_args],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.log = []
        threading.Thread(target=self._drain, args=(self.proc.stderr,), daemon=True).start()
        for line in self.proc.stdout:
            if line.startswith("Serving "):
                self.root_url = line.split(" ", 1)[1].strip()
                break
        else:
            self.proc.wait()
            raise RuntimeError("taskhooks exited before serving:\n" + "".join(self.log))
        threading.Thread(target=self._drain, args=(self.proc.stdout,), daemon=True).start()

    def _drain(self, pipe):
        for line in pipe:
            self.log.append(line)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="session")
def rabbit():
    """A private RabbitMQ node (Debian's rabbitmq-server) for the whole run."""
    from rabbitmq import RabbitMQ
    node = RabbitMQ()
    yield node
    node.stop()


@pytest.fixture(scope="module")
def host():
    h = RunningHost()
    yield h
    h.stop()


@pytest.fixture(scope="module")
def root_options(host):
    return {
        "rootUrl": host.root_url,
        "credentials": {"clientId": ROOT_CLIENT_ID, "accessToken": ROOT_ACCESS_TOKEN},
        "maxRetries": 0,
    }
