"""The very first commit (no previous revision) failing after the kernel changed: the links it
created are deleted, the addresses, MTU and routes it changed are put back (issue 14; the rule:
any failure after the first kernel change restores everything). Real kernel, in a fresh network
namespace (first_commit_world.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

WORLD = Path(__file__).with_name("first_commit_world.py")


def world(*args: str) -> dict:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare (a network namespace of its own)")
    r = subprocess.run(["unshare", "--net", "--mount", sys.executable, str(WORLD), *args],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_a_failed_first_commit_leaves_the_kernel_as_it_was():
    out = world()
    before, applied, after = out["before"], out["applied"], out["after"]
    # the commit really changed the kernel before it failed ...
    assert "br0" in applied["links"] and applied["links"]["p2"]["master"] == "br0"
    assert applied["links"]["p1"]["addrs"] == ["192.168.77.1/24"] and applied["links"]["p1"]["mtu"] == 1300
    assert "10.77.0.0/16" in applied["routes"]
    # ... and it all went back: no bridge, p2 released, p1's own address and MTU, no route
    assert out["error"] and "injected fault at network" in out["error"]["message"]
    assert out["error"]["detail"]["restore_errors"] == []
    assert after == before
    assert out["links_json"].get("created", {}) == {} and out["links_json"].get("enslaved", {}) == {}
    # not sticky: the same first commit lands once the fault is gone
    assert out["landed"]["links"]["p2"]["master"] == "br0" and "10.77.0.0/16" in out["landed"]["routes"]


def test_accept_ra_goes_back_when_a_wan_stops_learning_ipv6():
    """issue 14: a WAN with ipv6: {...} accepts RAs (accept_ra=2); without it (or dropped from the
    document) the kernel's values before come back, and the applier forgets them."""
    out = world("accept_ra")
    assert out["before"] == ["1", "0"]
    assert out["slaac"] == ["2", "1"]
    assert out["static"] == out["before"]
    assert out["drift"] == []
    assert out["dhcpv6"] == ["2", "0"]
    assert out["dropped"] == out["before"]
    assert out["state"].get("original_sysctls") == {}


def test_the_unused_part_of_a_delegated_prefix_is_unreachable():
    """RFC 7084 WPD-5: an unreachable route (proto 250) for the delegated prefix; the /64 on the LAN
    is more specific. It follows the delegation without a commit, and goes with it."""
    out = world("pd_unreachable")
    assert out["none"]["routes"] == [] and out["none"]["get"]["2001:db8:4000:1ff::1"] == "d1"
    assert out["first"]["routes"] == ["2001:db8:4000:100::/56 metric 1024"]
    assert out["first"]["get"]["2001:db8:4000:1ff::1"] == "unreachable"
    assert out["first"]["get"]["2001:db8:4000:110::5"] == "l1"
    assert out["second"]["routes"] == ["2001:db8:5000:100::/56 metric 1024"]
    assert out["second"]["get"]["2001:db8:5000:1ff::1"] == "unreachable"
    assert out["second"]["get"]["2001:db8:5000:110::5"] == "l1"
    assert out["drift"] == []
    assert out["gone"]["routes"] == [] and out["gone"]["get"]["2001:db8:5000:1ff::1"] == "d1"
    assert not out["head_moved"]
