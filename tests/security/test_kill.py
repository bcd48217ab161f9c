"""SIGKILL of the agent in the middle of a commit that has already answered 202 "running"
(issue 11, class 2, "a killed process"): at each stage after the first kernel change (addresses
changed, ruleset loaded, daemon configs written, just before HEAD moves) the agent is killed; the
restarted agent is back at HEAD in the kernel and the daemons, HEAD did not move, and the job's
revision is not HEAD (what `talgate status` shows the client). Needs root (a lab)."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from backend.client import AgentClient, AgentError
from backend.lab.lab import example_config

from ..lab.conftest import new_lab
from ..lab.util import LabHelper


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = new_lab(tmp_path_factory)
    try:
        yield lab
    finally:
        lab.down()


def candidate() -> str:
    """Touches every applier: an address on lan0, a new WAN port, a DHCP scope."""
    t = example_config().replace("    ipv4: [192.168.10.1/24]", "    ipv4: [192.168.10.1/24, 192.168.11.1/24]")
    t = t.replace("rules:\n", "rules:\n  - {name: web-in, from: wan, to: self, proto: tcp, dport: 8080, action: accept}\n")
    return t + "dhcp:\n  lan0:\n    ipv4: {pools: [192.168.10.100-192.168.10.150]}\n"


def _dead(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    except OSError:
        return True


@pytest.mark.parametrize("stage", ["nft", "services", "advance"])
def test_sigkill_mid_commit_leaves_head_everywhere(lab, stage, tmp_path, monkeypatch):
    faults = tmp_path / "faults.json"
    faults.write_text("{}")  # read at every stage: the fault is set once the agent is up
    monkeypatch.setenv("TALGATE_FAULTS", str(faults))
    pid = lab.restart_agent()
    monkeypatch.delenv("TALGATE_FAULTS")
    faults.write_text(json.dumps({stage: "sleep:60"}))
    rw = AgentClient(lab.socket, timeout=30)
    head = rw.status()["head"]
    answer = rw.commit(candidate(), "killed mid-commit", base=head, wait=1)
    assert answer.get("state") == "running" and answer["rev"] != head, answer
    time.sleep(2)  # well inside the stage's sleep
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not _dead(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _dead(pid)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    faults.write_text("{}")
    lab.restart_agent()
    h = LabHelper(lab)
    st = h.client.status()
    assert st["head"] == head and st["head"] != answer["rev"], st
    assert not any(j["state"] == "running" for j in st["jobs"]), st["jobs"]
    # the client polling its job learns it is gone with the restart, and where HEAD is
    with pytest.raises(AgentError) as e:
        h.client.job(answer["job"])
    assert e.value.status == 404 and "across a restart" in e.value.message and e.value.detail["head"] == head
    h.assert_kernel_is_head()
