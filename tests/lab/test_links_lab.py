"""The links applier against this machine's kernel (issue 14): a bridge made by the agent from two
veth ports whose hosts live in tg-lk-* namespaces, real traffic through the zone firewall (lan may
reach dmz, dmz may not reach lan), a bridge the document does not name left alone, a failure after
the bridge was made taking it away again, and removing the bridge from the document deleting it
from the kernel. VLANs, bonds and VLAN filtering need Debian's kernel: test_links_vm.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
WORLD = REPO / "tests" / "lab" / "links_world.py"


def run_world(mode: str, tmp_path: Path) -> dict:
    # A private world (mount + network namespaces): the router is the new network namespace, the
    # hosts' tg-lk-* names live in its own /run/netns and vanish with it, also on failure.
    r = subprocess.run(["unshare", "--mount", "--net", "--propagation", "private", "sh", "-c",
                        'mount -t tmpfs none /run && mkdir /run/netns && exec "$0" "$@"',
                        sys.executable, str(WORLD), mode, str(tmp_path)],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.splitlines()[-1])


def test_a_bridge_made_by_the_agent_routes_through_the_zones_and_leaves_cleanly(tmp_path):
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("nft"):
        pytest.skip("needs root, unshare and nft (a private network namespace)")
    out = run_world("bridge", tmp_path)
    assert out["commit"][:3] == ["create bridge: br0", "enslave p1 to br0", "enslave p2 to br0"]
    assert out["masters"] == {"p1": "br0", "p2": "br0", "dmz0": None} and out["br0_kind"] == "bridge"
    assert out["drift"] == []
    # lan (br0) → dmz allowed, ping and TCP; dmz → lan denied by the zones; a ↔ b over the bridge.
    assert out["reach"]["a>192.168.60.10"] == [True, "hello from 192.168.60.10"]
    assert out["reach"]["b>192.168.60.10"] == [True, "hello from 192.168.60.10"]
    assert out["reach"]["c>192.168.50.10"] == [False, ""]
    assert out["reach"]["a>192.168.50.11"][0] is True
    # The injected failure in the nftables stage took the new bridge br1 away; br9 was never ours.
    assert out["fault"] == "ApplyFailed" and out["after_fault"] == ["br0", "br9"]
    # No 802.1Q in this kernel: refused by the kernel after br1 was made, and br1 is gone again.
    if not out["no_8021q"] == "committed":
        assert out["no_8021q"].startswith("ApplyFailed") and "dmz0.7" in out["no_8021q"], out["no_8021q"]
        assert out["no_8021q_links_same"]
    assert out["reach_after_fault"] == {"a>192.168.60.10": [True, "hello from 192.168.60.10"],
                                        "c>192.168.50.10": [False, ""]}
    # Removed from the document: deleted from the kernel, its ports released and kept.
    assert out["gone"][0] == "delete bridge: br0"
    assert out["after_gone"] == ["br9", "dmz0", "p1", "p2"] and out["masters_gone"] == {"p1": None, "p2": None}
    assert out["reach_gone"] == {"a>192.168.60.10": [True, "hello from 192.168.60.10"],
                                 "c>192.168.50.10": [False, ""]}
    assert out["drift_gone"] == []
