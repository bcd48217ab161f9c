"""The commit pipeline against the real kernel: refusals change nothing, rollback restores the
kernel exactly, apply is idempotent, the read-only socket refuses writes, and a failure half-way
through an apply puts the previous state back without moving HEAD."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest

from backend.lab.lab import example_config

pytestmark = pytest.mark.lab

BAD_INPUTS = {
    "yaml-syntax": ("interfaces: [wan0\n", "router.yaml:2"),
    "unknown-key": (example_config().replace("system:\n", "system:\n  colour: blue\n"), "system.colour: unknown key"),
    "unknown-reference": (example_config().replace("from: mgmt, to: self", "from: mgmtt, to: self"),
                          "rules[0].from: unknown zone 'mgmtt'"),
    "bad-prefix": (example_config().replace("192.168.20.1/24", "192.168.20.1/33"), "interfaces.guest0.ipv4[0]"),
    "bad-port": (example_config().replace("dport: 22", "dport: 65536"), "rules[0].dport: port 65536 out of range"),
    "duplicate-name": (example_config().replace("name: ping-router", "name: ssh-from-mgmt"),
                       "rules[1].name: duplicate rule name 'ssh-from-mgmt'"),
    "overlapping-subnets": (example_config().replace("192.168.20.1/24", "192.168.10.129/25"),
                            "interfaces.guest0.ipv4: subnet 192.168.10.128/25 overlaps 192.168.10.0/24"),
    "missing-link": (example_config().replace("  mgmt0:\n", "  eth9:\n    ipv4: [10.9.9.1/24]\n  mgmt0:\n"),
                     "interfaces.eth9: no such link"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_refused_and_changes_nothing(lab, tmp_path, case):
    text, expected = BAD_INPUTS[case]
    f = tmp_path / "router.yaml"
    f.write_text(text)
    before, head = lab.kernel_state(), lab.head()

    if case != "missing-link":  # needs the kernel; validate is offline
        v = lab.cli("config", "validate", str(f))
        assert v.returncode != 0
        assert expected in v.stderr, v.stderr
    c = lab.cli("commit", "-m", f"bad: {case}", "--base", "HEAD", "-f", str(f))
    assert c.returncode != 0, c.stdout
    assert expected in c.stderr, c.stderr
    assert lab.head() == head
    assert lab.kernel_state() == before


def test_rollback_restores_kernel_exactly_and_is_a_commit(lab):
    base_state, base_head = lab.kernel_state(), lab.head()
    text = example_config().replace("192.168.20.1/24", "192.168.21.1/24").replace(
        "  - {name: default-v6", "  - {name: lab-extra, to: 10.77.0.0/16, via: 192.168.10.10}\n  - {name: default-v6")
    text = text.replace("    - {out: wan}", "    - {out: wan}\n    - {out: guest}")
    text = text.replace("  lan0:\n", "  lan0:\n    mtu: 1400\n")
    lab.worktree.write_text(text)
    d = lab.cli("diff")
    assert d.returncode == 0 and "+    - {out: guest}" in d.stdout and "192.168.21.1/24" in d.stdout
    c = lab.cli("commit", "-m", "renumber guest, extra route")
    assert c.returncode == 0, c.stderr
    changed = lab.kernel_state()
    assert changed != base_state
    assert "10.77.0.0/16 via 192.168.10.10" in changed["routes4"]
    assert "192.168.21.1/24" in changed["addrs"]
    assert "lan0@if" in changed["addrs"] and "mtu 1400" in lab.router("ip", "link", "show", "lan0")

    r = lab.cli("rollback")
    assert r.returncode == 0, r.stderr
    log = lab.client.log(3)
    assert log[0]["message"].startswith("rollback to " + base_head[:12])
    assert log[1]["message"] == "renumber guest, extra route"
    assert lab.head() == log[0]["rev"] != base_head
    assert lab.kernel_state() == base_state
    assert lab.worktree.read_text() == example_config()
    # Traffic follows: guest reaches the internet again from its original address.
    assert lab.tcp("guest", "203.0.113.10", 80) == "talgate-lab isp 80 198.51.100.2"


def _monitor(lab, *cmd) -> subprocess.Popen:
    return subprocess.Popen(lab.lab.exec_args("router", list(cmd)), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_apply_twice_changes_nothing(lab):
    first = lab.cli("apply")
    assert first.returncode == 0, first.stderr
    mons = [_monitor(lab, "nft", "monitor"), _monitor(lab, "ip", "monitor", "all")]
    time.sleep(0.3)
    r = lab.cli("apply")
    time.sleep(0.3)
    outs = []
    for m in mons:
        m.terminate()
        outs.append(m.communicate(timeout=5)[0])
    assert r.returncode == 0, r.stderr
    assert "0 change(s)" in r.stdout
    assert outs == ["", ""], outs


def test_readonly_socket_refuses_every_write(lab):
    head = lab.head()
    ro = lab.lab.ro_socket
    for args in (["commit", "-m", "forged", "-f", str(lab.worktree)], ["apply"], ["rollback"]):
        r = lab.cli(*args, socket=ro)
        assert r.returncode != 0
        assert "read-only" in r.stderr, r.stderr
    st = lab.cli("status", "--json", socket=ro)
    assert st.returncode == 0 and '"read_only": true' in st.stdout
    assert lab.head() == head


def test_half_way_failure_restores_previous_state(lab):
    """The route's gateway is not on lan0's subnet: checks cannot know (it names an interface),
    the kernel refuses it after the address change was made; the agent must undo that."""
    before, head = lab.kernel_state(), lab.head()
    text = example_config().replace("ipv4: [192.168.20.1/24]", "ipv4: [192.168.20.1/24, 10.20.0.1/24]").replace(
        "  - {name: default-v6", "  - {name: broken, to: 10.66.0.0/16, via: 172.31.0.1, interface: lan0}\n"
        "  - {name: default-v6")
    c = lab.cli("commit", "-m", "half-way", "--base", "HEAD", "-f", "/dev/stdin", input=text)
    assert c.returncode != 0
    assert "restored" in c.stderr and "routes" in c.stderr, c.stderr
    assert lab.head() == head
    assert lab.kernel_state() == before
    st = lab.client.status()
    assert "half-way" not in str(lab.client.log(1)) and st["last_error"]
    assert lab.tcp("mgmt", "192.168.99.1", 22) is not None


def test_agent_converges_the_kernel_to_head_on_start(lab):
    before = lab.kernel_state()
    lab.lab.stop_agent()
    lab.router("nft", "flush", "ruleset")
    lab.router("ip", "addr", "del", "192.168.10.1/24", "dev", "lan0")
    lab.router("ip", "route", "del", "default")
    assert lab.kernel_state() != before
    lab.lab.restart_agent()
    assert lab.kernel_state() == before
    assert lab.tcp("lan", "203.0.113.10", 80) == "talgate-lab isp 80 198.51.100.2"


def test_a_second_agent_refuses_to_start(lab):
    r = lab.lab.run("router", [sys.executable, "-m", "backend.cli", "agent", "--repo", lab.lab.repo,
                               "--state", str(lab.lab.state / "agent2"), "--socket", lab.lab.socket,
                               "--ro-socket", lab.lab.ro_socket], timeout=30)
    assert r.returncode == 1
    assert "another agent is serving" in r.stderr
    assert lab.client.status()["head"]


def test_first_commit_into_an_empty_repo(lab):
    """deploy.md: the agent starts on an empty repo and the first `talgate commit` creates HEAD."""
    lab.lab.stop_agent()
    shutil.rmtree(lab.lab.repo)
    pid = lab.lab.spawn("router", [sys.executable, "-m", "backend.cli", "agent", "--repo", lab.lab.repo,
                                   "--state", str(lab.lab.state / "agent"), "--socket", lab.lab.socket,
                                   "--ro-socket", lab.lab.ro_socket], "agent.log")
    meta = lab.lab.meta()
    meta["pids"]["agent"] = pid
    lab.lab._write_meta(meta)
    for _ in range(200):
        try:
            st = lab.client.status()
            break
        except Exception:  # noqa: BLE001 - starting up
            time.sleep(0.05)
    assert st["head"] is None and st["last_error"] is None
    c = lab.cli("commit", "-m", "first config", "--base", "HEAD", "-f", "/dev/stdin", input=example_config())
    assert c.returncode == 0, c.stderr
    assert [e["message"] for e in lab.client.log()] == ["first config"]
    assert lab.tcp("lan", "203.0.113.10", 80) == "talgate-lab isp 80 198.51.100.2"
