"""Under `spin up` (3.6), whose server leaves Nagle's algorithm on and writes a response's
headers as soon as the component sets it, a body that follows in a second small segment
waits for the client's delayed ACK (~40 ms) on every request of a keep-alive connection
(Spin's source; Spin cannot run here). The trigger component therefore hands each response
over with its whole body written and its `content-length`. Checked here, on this host with
Nagle left on as Spin leaves it (`TASKHOOKS_TCP_NODELAY=off`): every answer on one
keep-alive connection has a `content-length`, is not chunked, and arrives whole in the
first read."""

import socket

import pytest

from conftest import RunningHost


@pytest.fixture(scope="module")
def spin_like_host():
    host = RunningHost(extra_env={"TASKHOOKS_TCP_NODELAY": "off"})
    yield host
    host.stop()


def read_response(sock):
    """The first read's bytes, and the whole response (headers and content-length body)."""
    first = sock.recv(65536)
    data = first
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return first, head, body


@pytest.mark.parametrize("path", ["/api/hooks/v1/ping", "/api/hooks/v1/hooks", "/references/hooks/v1/api.json"])
def test_each_answer_leaves_with_its_headers(spin_like_host, path):
    host, port = spin_like_host.root_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        for _ in range(20):
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
            first, head, body = read_response(sock)
            assert b"transfer-encoding: chunked" not in head.lower(), head
            assert first.endswith(body) and len(body) > 0, (len(first), len(body))


def test_an_answer_larger_than_one_write_is_streamed_whole(spin_like_host):
    """A body beyond what the stream takes at once (1 MiB) is sent after the head."""
    import taskcluster
    from conftest import ROOT_ACCESS_TOKEN, ROOT_CLIENT_ID
    opts = {"rootUrl": spin_like_host.root_url, "credentials": {"clientId": ROOT_CLIENT_ID, "accessToken": ROOT_ACCESS_TOKEN}}
    hooks = taskcluster.Hooks(opts)
    big = {"metadata": {"name": "big", "description": "d", "owner": "o@example.com"},
           "task": {"payload": {"blob": "x" * (3 << 20)}}}
    hooks.createHook("big", "one", big)
    got = hooks.hook("big", "one")
    assert got["task"]["payload"]["blob"] == big["task"]["payload"]["blob"]
