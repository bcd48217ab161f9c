"""The agent's HTTP transport under hostile clients, in-process (no root): slow clients are dropped,
connections and workers per socket are capped, every error has a stable code. The pipeline is a
stub: these tests are about the transport, tests/security/test_ro_socket.py runs the real agent."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from backend.agent import server as srv
from backend.agent.server import Agent


class SlowPipeline:
    """Answers status; validate blocks until released (a long parse)."""

    def __init__(self):
        self.release = threading.Event()
        self.calls = []

    def status(self):
        return {"repo": "/nonexistent", "head": None, "applied": None, "in_sync": False, "worktree_dirty": False,
                "last_error": None, "last_apply": None}

    def check_text(self, text, files=True):
        self.calls.append(("check_text", files))
        self.release.wait(20)
        from backend.agent.pipeline import Refused
        from backend.model import Problem

        raise Refused([Problem("x", "refused by the stub")])


@pytest.fixture
def agent(tmp_path, monkeypatch):
    monkeypatch.setattr(srv, "IDLE_TIMEOUT", 1.0)
    monkeypatch.setattr(srv, "READ_DEADLINE", 2.5)
    monkeypatch.setattr(srv, "WORK_WAIT", 1.0)
    monkeypatch.setattr(srv, "RO_LIMITS", srv.Limits(body=1024, connections=4, workers=1))
    p = SlowPipeline()
    a = Agent(p, str(tmp_path / "rw.sock"), str(tmp_path / "ro.sock"))
    a.servers = [a._make_server(a.socket_path, False), a._make_server(a.ro_socket_path, True)]
    for s in a.servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    try:
        yield a, p
    finally:
        p.release.set()
        a.shutdown()


def connect(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    return s


def response(s: socket.socket) -> tuple[int | None, dict | None]:
    raw = b""
    try:
        while chunk := s.recv(65536):
            raw += chunk
    except OSError:
        pass
    s.close()
    if not raw:
        return None, None
    head, _, payload = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload)


def request(path: str, raw: bytes) -> tuple[int | None, dict | None]:
    s = connect(path)
    try:
        s.sendall(raw)
    except OSError:
        pass
    return response(s)


def post(path: str, url: str, body: bytes, extra: str = "") -> bytes:
    return (f"POST {url} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n"
            .encode() + body)


GET_STATUS = b"GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def test_idle_client_is_dropped(agent):
    a, _ = agent
    s = connect(a.ro_socket_path)
    s.sendall(b"POST /v1/validate HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")  # and no body
    t = time.monotonic()
    assert response(s) == (None, None)
    assert time.monotonic() - t < 3
    assert request(a.ro_socket_path, GET_STATUS)[0] == 200


def test_dripping_client_is_dropped_at_the_deadline(agent):
    a, _ = agent
    s = connect(a.ro_socket_path)
    s.sendall(b"POST /v1/validate HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
    t = time.monotonic()
    closed = False
    while time.monotonic() - t < 8:
        try:
            s.sendall(b" ")  # one byte every 0.5 s: never idle for the 1 s timeout
        except OSError:
            closed = True
            break
        s.settimeout(0.5)
        try:
            if s.recv(100) == b"":
                closed = True
                break
        except TimeoutError:
            pass
    s.close()
    assert closed and time.monotonic() - t < 5


def test_connections_beyond_the_cap_get_503_at_once(agent):
    a, _ = agent
    idle = [connect(a.ro_socket_path) for _ in range(4)]
    time.sleep(0.2)
    t = time.monotonic()
    status, out = request(a.ro_socket_path, GET_STATUS)
    assert time.monotonic() - t < 1
    assert status == 503 and out["code"] == "busy"
    for s in idle:
        s.close()
    time.sleep(0.3)
    assert request(a.ro_socket_path, GET_STATUS)[0] == 200
    # the read-write socket has its own slots
    assert request(a.socket_path, GET_STATUS)[0] == 200


def test_workers_beyond_the_cap_get_503(agent):
    a, p = agent
    body = json.dumps({"config": "version: 1\n"}).encode()
    first = connect(a.ro_socket_path)
    first.sendall(post(a.ro_socket_path, "/v1/validate", body))
    time.sleep(0.3)  # the first one holds the only worker
    status, out = request(a.ro_socket_path, post(a.ro_socket_path, "/v1/validate", body))
    assert status == 503 and out["code"] == "busy"
    p.release.set()
    status, out = response(first)
    assert status == 200 and out["ok"] is False
    assert p.calls[0] == ("check_text", False)  # the read-only socket never reads files


@pytest.mark.parametrize("raw,status,code", [
    (b"POST /v1/validate HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}", 400, "bad_request"),
    (b"POST /v1/validate HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n{}", 400, "bad_request"),
    (b"POST /v1/validate HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"),
    (b"POST /v1/validate HTTP/1.1\r\nHost: x\r\nContent-Length: 52428800\r\n\r\n{", 413, "too_large"),
    (b"POST /v1/validate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "bad_request"),
    (post("", "/v1/validate", b"\xff\xfe{}"), 400, "bad_request"),
    (post("", "/v1/validate", b'{"config": 12}'), 400, "bad_request"),
    (post("", "/v1/validate", b"[" * 500 + b"]" * 500), 400, "bad_request"),
    (post("", "/v1/commit", b'{"config": "x", "message": "m"}'), 403, "read_only"),
    (b"DELETE /v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 404, "not_found"),
    (b"GET /v1/audit?n=abc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 400, "bad_request"),
    (b"GET /v1/nope" + b"x" * 5000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404, "not_found"),
])
def test_malformed_requests_get_4xx_with_a_code(agent, raw, status, code):
    a, p = agent
    got, out = request(a.ro_socket_path, raw)
    assert (got, out["code"]) == (status, code), out
    assert len(out["message"]) < 400 and set(out) == {"code", "message", "problems", "detail"}
    assert p.calls == []
