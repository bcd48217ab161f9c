"""Desired state = config + runtime facts, against the real kernel: the network and nftables
appliers of the registry run in a throw-away network namespace (unshare -n). A WAN marked
unhealthy loses its default route (the backup takes over); the drift loop neither reports nor
repairs that failover; learned addresses stay; without the facts the configured state returns."""

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

SCRIPT = r"""
import json, subprocess, sys
from pathlib import Path
from backend.agent.pipeline import Pipeline
from backend.host.applier import Facts, NETWORK, NFTABLES, HostContext, builtin
from tests.unit.test_appliers import TWO_WANS

def sh(*a):
    return subprocess.run(a, check=True, capture_output=True, text=True).stdout

sh("ip", "link", "set", "lo", "up")
for n in ("wan0", "wan1", "lan0", "guest0", "mgmt0"):
    sh("ip", "link", "add", n, "type", "veth", "peer", "name", n + "p")
    sh("ip", "link", "set", n + "p", "up")
tmp = Path(sys.argv[1])
reg = builtin()
ctx = HostContext(tmp / "state")
appliers = reg.build(ctx, stages=[NETWORK, NFTABLES])
p = Pipeline(tmp / "repo", tmp / "state", appliers=appliers)

def defaults():
    return sorted(r["dev"] + " " + str(r.get("metric", 0)) for r in json.loads(sh("ip", "-j", "-4", "route", "show", "default")))

def wan1_addrs():
    return sorted(a["local"] + "/" + str(a["prefixlen"]) for i in json.loads(sh("ip", "-j", "-4", "addr", "show", "dev", "wan1")) for a in i["addr_info"])

out = {}
p.commit(TWO_WANS, "two wans", "t")
out["configured"] = defaults()
out["drift_configured"] = p.drift()
res = p.set_facts(Facts(wan_health={"wan0": False}, addresses={"wan1": ["203.0.113.77/24"]}))
out["failover_changes"] = res["applied"]
out["failover"] = defaults()
out["wan1_addrs"] = wan1_addrs()
out["drift_failover"] = p.drift()
out["repair_failover"] = p.repair()
out["after_repair"] = defaults()
p.facts = Facts()
out["drift_without_facts"] = p.drift()
out["repair_without_facts"] = (p.repair() or {}).get("items")
out["restored"] = defaults()
out["wan1_addrs_restored"] = wan1_addrs()
print(json.dumps(out))
"""


def test_a_failover_fact_changes_the_kernel_and_drift_keeps_it(tmp_path):
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        pytest.skip("needs root, unshare and ip (a private network namespace)")
    script = tmp_path / "facts.py"
    script.write_text(SCRIPT)
    r = subprocess.run(["unshare", "--net", sys.executable, str(script), str(tmp_path)], cwd=REPO,
                       capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.splitlines()[-1])
    assert out["configured"] == ["wan0 100", "wan1 200"] and out["drift_configured"] == []
    assert out["failover"] == ["wan1 200"]
    # Both of wan0's routes (v4 and v6 default) are withdrawn; wan1's backup stays.
    assert "route del: 0.0.0.0/0 (metric 100)" in out["failover_changes"]
    assert "route del: ::/0 (metric 1024)" in out["failover_changes"]
    assert "addr add: wan1 203.0.113.77/24" in out["failover_changes"]
    assert out["wan1_addrs"] == ["203.0.113.2/24", "203.0.113.77/24"]
    # The drift loop keeps the failover: nothing to report, nothing repaired.
    assert out["drift_failover"] == [] and out["repair_failover"] is None and out["after_repair"] == ["wan1 200"]
    # The same kernel without the facts is drift, and repair puts the configured state back.
    assert sorted(out["drift_without_facts"]) == ["addr del: wan1 203.0.113.77/24", "route add: 0.0.0.0/0 (metric 100)",
                                                  "route add: ::/0 (metric 1024)"]
    assert sorted(out["repair_without_facts"]) == sorted(out["drift_without_facts"])
    assert out["restored"] == ["wan0 100", "wan1 200"] and out["wan1_addrs_restored"] == ["203.0.113.2/24"]
