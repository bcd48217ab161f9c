"""VLANs on a trunk, bonds (active-backup carrying traffic, 802.3ad made), a VLAN-filtering bridge
and a dummy made by the agent, with real traffic between VLANs allowed and denied by the zones
(issue 14 item 7). This machine's kernel has no 802.1Q, bonding, VLAN filtering or dummy, so
tests/lab/links_world.py runs inside the qemu guest with Debian's kernel (../shared/vm/vmrun.sh,
one boot, 2-3 minutes under software emulation); without root, qemu, that kernel or busybox the
test is skipped and says which is missing."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.vm

REPO = Path(__file__).resolve().parents[2]
VMRUN = Path(os.environ.get("TALGATE_VMRUN", REPO.parent / "shared" / "vm" / "vmrun.sh"))


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "the qemu guest test needs root"
    if not VMRUN.exists():
        return f"{VMRUN} is missing (the qemu guest runner)"
    if not shutil.which("qemu-system-x86_64"):
        return "qemu-system-x86_64 is missing: apt-get install -y qemu-system-x86 (make install)"
    if not glob.glob("/boot/vmlinuz-*-amd64"):
        return "Debian's kernel is missing from /boot: apt-get install -y linux-image-amd64 (make install)"
    if not os.access("/bin/busybox", os.X_OK):
        return "busybox is missing: apt-get install -y busybox-static (make install)"
    return None


@pytest.mark.timeout(420)
def test_vlans_a_bond_and_a_vlan_filtering_bridge_route_through_the_zones():
    why = _missing()
    if why:
        pytest.skip(why)
    r = subprocess.run([str(VMRUN), "-q", "-t", "360", "--", str(REPO / ".venv" / "bin" / "python"),
                        "tests/lab/links_world.py", "vm", "/tmp/links-world"],
                       cwd=REPO, capture_output=True, text=True, timeout=400)
    if r.returncode == 125:
        pytest.skip(f"the qemu guest could not start: {r.stderr.strip()[-300:]}")
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-3000:])
    out = json.loads(r.stdout.strip().splitlines()[-1])
    created = [c for c in out["commit"] if c.startswith("create")]
    # parents first: the VLANs of br0 after br0, the bond before its members are enslaved
    assert created == ["create vlan: trunk0.10 (on trunk0, id 10)", "create vlan: trunk0.20 (on trunk0, id 20)",
                       "create bond: bond0 (mode active-backup)", "create bond: bond1 (mode 802.3ad)",
                       "create bridge: br0",
                       "create vlan: br0.40 (on br0, id 40)", "create vlan: br0.41 (on br0, id 41)",
                       "create dummy: anchor0"]
    assert out["kinds"] == {"trunk0.10": "vlan", "trunk0.20": "vlan", "bond0": "bond", "bond1": "bond",
                            "br0": "bridge", "br0.40": "vlan", "br0.41": "vlan", "anchor0": "dummy"}
    assert out["vlan_ids"] == {"trunk0.10": 10, "trunk0.20": 20, "br0.40": 40}
    assert out["bond_modes"] == {"bond0": "active-backup", "bond1": "802.3ad"} and out["vlan_filtering"] == 1
    assert out["bond0_primary"] == "b1" and out["bond1_lacp_rate"] == "fast"
    assert out["masters"] == {"b1": "bond0", "b2": "bond0", "b3": "bond1", "b4": "bond1", "pa": "br0", "pb": "br0"}
    assert out["bridge_vlans"] == {"pa": [[40, ["Egress Untagged", "PVID"]]], "pb": [[41, ["Egress Untagged", "PVID"]]],
                                   "br0": [[40, []], [41, []]]}
    assert out["drift"] == []  # idempotent: nothing left to do after the apply
    reach = out["reach"]
    # lan → iot allowed (ping and TCP), iot → lan denied: across the trunk's VLANs ...
    assert reach["h10>192.168.20.10"] == [True, "hello from 192.168.20.10"]
    assert reach["h20>192.168.10.10"] == [False, ""]
    # ... across the VLAN-filtering bridge's VLANs ...
    assert reach["pa>192.168.41.10"] == [True, "hello from 192.168.41.10"]
    assert reach["pb>192.168.40.10"] == [False, ""]
    # ... which keeps them apart at layer 2 (one subnet, two VLANs) ...
    assert reach["pa>10.99.0.2"][0] is False
    # ... and from the bond.
    assert reach["hb>192.168.20.10"] == [True, "hello from 192.168.20.10"]
    assert reach["h20>192.168.30.10"] == [False, ""]
    # Removed from the document: every link the agent made is gone, deepest first; members stay.
    assert [g for g in out["gone"] if g.startswith("delete")] == [
        "delete dummy: anchor0", "delete vlan: br0.41", "delete vlan: br0.40", "delete bridge: br0",
        "delete bond: bond1", "delete bond: bond0", "delete vlan: trunk0.20", "delete vlan: trunk0.10"]
    assert out["after_gone"] == ["b1", "b2", "b3", "b4", "lo", "pa", "pb", "trunk0"]
    assert out["masters_gone"] == {n: None for n in ("b1", "b2", "b3", "b4", "pa", "pb")}
    assert out["drift_gone"] == []
