"""The API contract, run against two targets with the same assertions:

- ``inprocess``: the service layer (backend/agent/service.py) with fake kernel appliers on a temporary
  git repo (backend/testing.py), reached through the real client over the in-process transport;
- ``lab``: the real agent of a namespace lab (tests/lab ``new_lab``) over its Unix sockets.

Both start from the lab example document. Tests assert codes, problem paths and shapes, never
message text. Every test leaves HEAD as it found it (``restore``), also on failure.
"""

from __future__ import annotations

import json
import os
import socket

import pytest

from backend.client import AgentClient
from backend.lab.lab import example_config
from backend.testing import InProcessAgent


class Target:
    def __init__(self, name: str, client: AgentClient, ro_client: AgentClient, make_client, raw, fault):
        self.name, self.client, self.ro_client = name, client, ro_client
        self.make_client = make_client  # who=… → a read-write client claiming that identity
        self.raw = raw                  # (method, path, body bytes) → (status, JSON): no client checks
        self.fault = fault              # stage → that stage raises (None: no fault); stages as in pipeline.py


def _unix_raw(path: str):
    def raw(method: str, url: str, data: bytes | None = None) -> tuple[int, dict]:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(path)
        data = data or b""
        s.sendall(f"{method} {url} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
        buf = b""
        while chunk := s.recv(65536):
            buf += chunk
        s.close()
        head, _, payload = buf.partition(b"\r\n\r\n")
        return int(head.split()[1]), json.loads(payload)

    return raw


def _inprocess_raw(agent: InProcessAgent):
    transport = agent.client.transport

    def raw(method: str, url: str, data: bytes | None = None) -> tuple[int, dict]:
        status, payload = transport(method, url, data, {})
        return status, json.loads(payload)

    return raw


@pytest.fixture(scope="module", params=["inprocess", "lab"])
def target(request, tmp_path_factory):
    if request.param == "inprocess":
        agent = InProcessAgent(example_config())

        def fault(stage: str | None) -> None:
            def fail(s: str) -> None:
                if s == stage:
                    raise RuntimeError(f"injected fault at {s}")

            agent.pipeline.faults = fail if stage else None

        try:
            yield Target("inprocess", agent.client, agent.ro_client,
                         lambda who: AgentClient(transport=agent.client.transport, who=who), _inprocess_raw(agent),
                         fault)
        finally:
            agent.close()
        return
    from tests.lab.conftest import new_lab

    faults = tmp_path_factory.mktemp("faults") / "faults.json"
    faults.write_text("{}")
    old = os.environ.get("TALGATE_FAULTS")
    os.environ["TALGATE_FAULTS"] = str(faults)  # read by the lab's agent (pipeline._fault_file)
    try:
        lab = new_lab(tmp_path_factory)
    finally:
        if old is None:
            os.environ.pop("TALGATE_FAULTS", None)
        else:
            os.environ["TALGATE_FAULTS"] = old
    try:
        yield Target("lab", AgentClient(lab.socket, who={"author": "contract"}),
                     AgentClient(lab.ro_socket, who={"author": "contract"}),
                     lambda who: AgentClient(lab.socket, who=who), _unix_raw(lab.socket),
                     lambda stage: faults.write_text(json.dumps({stage: "raise"} if stage else {})))
    finally:
        lab.down()


@pytest.fixture
def api(target):
    """The target, with HEAD, the pending confirm and the document put back after the test."""
    c = target.client
    start = c.status()
    text = c.config().text
    try:
        yield target
    finally:
        st = c.status()
        if st.confirm is not None:
            c.confirm()
        if st.head != start.head:
            c.commit(text, "contract: restore", base=st.head, force=False)
