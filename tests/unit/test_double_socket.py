"""The agent's test double served on a Unix socket (InProcessAgent.serve), as the console benchmark
runs it in a process of its own: the real transport and the real client over the socket."""

from __future__ import annotations

import os

import pytest

from backend.client import AgentClient, AgentError
from backend.lab.lab import example_config
from backend.testing import InProcessAgent


def test_the_double_answers_over_its_socket_as_the_agent_does(tmp_path):
    agent = InProcessAgent(example_config())
    sock = str(tmp_path / "agent.sock")
    srv = agent.serve(sock)
    try:
        client = AgentClient(sock, timeout=10)
        assert client.status().head == agent.head
        assert client.config().text == agent.text()
        bad = client.validate(example_config().replace("ipv4: [198.51.100.2/24]", "ipv4: [198.51.100.2/99]"))
        assert not bad.ok and any(p.path.startswith("interfaces.wan0") for p in bad.problems)
    finally:
        srv.shutdown()
        srv.server_close()
        agent.close()


def test_a_read_only_socket_refuses_writes(tmp_path):
    agent = InProcessAgent(example_config())
    sock = str(tmp_path / "ro.sock")
    srv = agent.serve(sock, read_only=True)
    try:
        assert oct(os.stat(sock).st_mode & 0o777) == "0o666"
        client = AgentClient(sock, timeout=10)
        with pytest.raises(AgentError) as e:
            client.commit(agent.text() + "# x\n", "should be refused", base=agent.head)
        assert e.value.status == 403
        assert len(agent.log()) == 1  # nothing committed
    finally:
        srv.shutdown()
        srv.server_close()
        agent.close()
