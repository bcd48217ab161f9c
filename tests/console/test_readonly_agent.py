"""A forged write over the agent's read-only socket is refused by the agent itself (no root needed).

The agent is real (``backend.agent.server.Agent``) on two Unix sockets in a tmp folder; its pipeline is
a stub that records calls, so the test proves that nothing behind the refusal ran.
"""

from __future__ import annotations

import json
import socket
import threading

import pytest

from backend.agent.server import Agent
from backend.cli import HINTS
from backend.cli import main as cli_main
from backend.client import AgentClient, AgentError
from backend.lab.lab import example_config


class StubPipeline:
    routing_state = None  # as the real Pipeline's before the server starts its FRR reader

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)

        def record(*a, **kw):
            self.calls.append(name)
            return {"rev": "0" * 40, "changes": 1, "seconds": 0.0}

        return record

    def status(self):
        return {"repo": "/nonexistent", "head": None, "applied": None, "in_sync": False, "worktree_dirty": False,
                "last_error": None, "last_apply": None}


@pytest.fixture
def agent(tmp_path):
    p = StubPipeline()
    a = Agent(p, str(tmp_path / "rw.sock"), str(tmp_path / "ro.sock"))
    a.servers = [a._make_server(a.socket_path, False), a._make_server(a.ro_socket_path, True)]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in a.servers]
    for t in threads:
        t.start()
    try:
        yield a, p
    finally:
        a.shutdown()


def raw_post(path: str, url: str, body: dict) -> tuple[int, dict]:
    """A hand-made HTTP request: no client library, as an attacker would send it."""
    data = json.dumps(body).encode()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    s.sendall(b"POST " + url.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              + f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
    raw = b""
    while chunk := s.recv(65536):
        raw += chunk
    s.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload)


@pytest.mark.parametrize("url,body", [
    ("/v1/commit", {"config": "version: 1\n", "message": "forged", "base": "HEAD"}),
    ("/v1/apply", {}),
    ("/v1/rollback", {"rev": "HEAD~1"}),
])
def test_forged_write_on_ro_socket_is_refused(agent, url, body):
    a, p = agent
    status, out = raw_post(a.ro_socket_path, url, body)
    assert status == 403 and out["code"] == "read_only"
    assert p.calls == []


def test_client_writes_refused_reads_allowed(agent):
    a, p = agent
    ro = AgentClient(a.ro_socket_path)
    with pytest.raises(AgentError) as e:
        ro.commit(example_config(), "forged")
    assert e.value.status == 403 and e.value.code == "read_only"
    st = ro.status()
    assert st.read_only is True and (st.sockets.rw, st.sockets.ro) == (a.socket_path, a.ro_socket_path)
    assert isinstance(ro.interfaces(), list) and isinstance(ro.history().interfaces, dict)
    assert p.calls == []
    # the same write on the read-write socket reaches the pipeline
    AgentClient(a.socket_path).commit(example_config(), "allowed")
    assert p.calls == ["commit"]


def test_cli_commit_over_ro_socket_is_refused(agent, tmp_path, capsys):
    a, p = agent
    f = tmp_path / "router.yaml"
    f.write_text(example_config())
    rc = cli_main(["commit", "--socket", a.ro_socket_path, "-f", str(f), "--base", "HEAD", "-m", "forged"])
    assert rc == 1
    assert HINTS["read_only"] in capsys.readouterr().err  # the CLI acts on the code
    assert p.calls == []
