"""Reading our nftables table over netlink (backend/host/nfnl.py) with a 100,000-prefix set
loaded: rule counters are right without reading the set, and the fingerprint behind drift
detection still sees every change to our table (an element added to our set included) while
ignoring counter values, handles and other tables.

Each test runs its probe in a private namespace (tg-XXXX-nl) made and removed here."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import textwrap

import pytest

from .conftest import _why_no_lab
from .util import REPO_ROOT

PRELUDE = """
import json, sys
sys.path.insert(0, {root!r}); sys.path.insert(0, {root!r} + "/bench")
from large_config import large_config
from backend.model import load_config
from backend.render.nft import render
from backend.host import nft as nh, nfnl
rs = render(load_config(large_config({rules}, {ifaces}, {prefixes})))
"""


@pytest.fixture
def ns():
    reason = _why_no_lab()
    if reason:
        pytest.skip(reason)
    name = f"tg-{secrets.token_hex(2)}-nl"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def probe(ns: str, code: str, rules: int = 60, ifaces: int = 4, prefixes: int = 100_000):
    """Run code in namespace ns after PRELUDE and PRESET; it leaves its answer in `result`."""
    src = PRELUDE.format(root=str(REPO_ROOT), rules=rules, ifaces=ifaces, prefixes=prefixes) + PRESET
    src += textwrap.dedent(code) + "\nprint(json.dumps(result))\n"
    r = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", src], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1])


# Counter expressions loaded with values of our choosing (the kernel takes initial values), so
# the expected sums are known without sending traffic.
PRESET = """
def preset(cmds, base=1):
    n = base
    for c in cmds:
        for e in c.get("add", {}).get("rule", {}).get("expr", []):
            if "counter" in e:
                e["counter"] = {"packets": n, "bytes": n * 64}
                n += 1
    return cmds

def expected(cmds):
    out = {}
    for c in cmds:
        r = c.get("add", {}).get("rule")
        for e in (r or {}).get("expr", []):
            if isinstance(e.get("counter"), dict):
                d = out.setdefault(r["comment"], {"packets": 0, "bytes": 0})
                d["packets"] += e["counter"]["packets"]
                d["bytes"] += e["counter"]["bytes"]
    return out
"""


def test_counters_are_right_with_a_100k_set_loaded(ns):
    got = probe(ns, """
        import copy
        cmds = preset(copy.deepcopy(rs.commands()))
        before = nh.counters()
        nh.run(cmds)
        result = {"before": before, "got": nh.counters(), "want": expected(cmds),
                  "elements": len(rs.sets[0].elements)}
    """)
    assert got["before"] == {}  # no table yet: nothing, not an error
    assert got["elements"] == 100_000
    assert got["got"] == got["want"]
    # rules sharing a comment are summed: "rule r0" (tcp drop -> one rule) and a reject rule pair
    assert len(got["want"]) > 60 and all(v["packets"] > 0 for v in got["got"].values())


def test_counters_match_what_the_kernel_lists(ns):
    """The same sums as libnftables's own listing of the table (the old implementation)."""
    got = probe(ns, """
        import copy, nftables
        nh.run(preset(copy.deepcopy(rs.commands()), base=1000))
        n = nftables.Nftables(); n.set_json_output(True)
        rc, out, err = n.json_cmd({"nftables": [{"list": {"table": {"family": "inet", "name": "talgate"}}}]})
        listed = {}
        for o in out["nftables"]:
            r = o.get("rule")
            for e in (r or {}).get("expr", []) if r and "comment" in r else []:
                if isinstance(e, dict) and isinstance(e.get("counter"), dict):
                    d = listed.setdefault(r["comment"], {"packets": 0, "bytes": 0})
                    d["packets"] += e["counter"]["packets"]
                    d["bytes"] += e["counter"]["bytes"]
        result = {"got": nh.counters(), "listed": listed}
    """, prefixes=20_000)
    assert got["got"] == got["listed"] and got["got"]


def test_fingerprint_sees_every_change_to_our_table_and_nothing_else(ns):
    got = probe(ns, """
        import copy, subprocess
        def nft(*a):
            subprocess.run(["nft", *a], check=True)
        fp = nh.fingerprint
        out = {"absent": fp()}
        nh.run(rs.commands())
        a = fp()
        out["stable"] = fp() == a
        # counter values and handles are not part of it: reload with other counter values
        nh.run(preset(copy.deepcopy(rs.commands())))
        out["after reload with counts"] = fp() == a
        # another table changing is not ours
        nft("add", "table", "inet", "other"); nft("add", "set", "inet", "other", "s", "{ type ipv4_addr; }")
        out["other table"] = fp() == a
        # an element added to our big set behind our back, then removed again
        nft("add", "element", "inet", "talgate", "set_blocklist_v4", "{ 198.51.100.7 }")
        out["element added"] = fp() != a
        nft("delete", "element", "inet", "talgate", "set_blocklist_v4", "{ 198.51.100.7 }")
        out["element removed again"] = fp() == a
        # an element of ours removed
        first = rs.sets[0].elements[0]
        nft("delete", "element", "inet", "talgate", "set_blocklist_v4", "{ " + first + " }")
        out["element of ours removed"] = fp() != a
        nft("add", "element", "inet", "talgate", "set_blocklist_v4", "{ " + first + " }")
        out["element of ours back"] = fp() == a
        # a rule added, a chain policy changed, a set added, an object added, the table dormant
        for change, undo in [
            (("add", "rule", "inet", "talgate", "output", "accept"), None),
            (("add", "chain", "inet", "talgate", "output", "{ type filter hook output priority 0; policy drop; }"),
             None),
            (("add", "set", "inet", "talgate", "extra", "{ type ipv4_addr; }"), None),
            (("add", "counter", "inet", "talgate", "c1"), None),
            (("add", "table", "inet", "talgate", "{ flags dormant; }"), None),
        ]:
            nh.run(rs.commands())
            b = fp()
            nft(*change)
            out["changed: " + " ".join(change[:2])] = fp() != b
        nft("delete", "table", "inet", "talgate")
        out["deleted"] = fp()
        result = out
    """, prefixes=100_000)
    assert got.pop("absent") is None and got.pop("deleted") is None
    assert all(got.values()), got


def test_pipeline_drift_detects_an_element_added_to_our_set_and_repairs_it(ns, tmp_path):
    got = probe(ns, f"""
        import subprocess
        from backend.agent.pipeline import Pipeline
        text = "version: 1\\nsets:\\n  blocklist:\\n    addresses: [198.51.100.0/28, 203.0.113.0/24]\\n"
        p = Pipeline({str(tmp_path / "repo")!r}, {str(tmp_path / "state")!r})
        p.commit(text, "with a set", "test")
        out = {{"first": p.drift(), "again": p.drift()}}
        subprocess.run(["nft", "add", "table", "inet", "other"], check=True)
        out["other table"] = p.drift()
        subprocess.run(["nft", "add", "element", "inet", "talgate", "set_blocklist_v4", "{{ 192.0.2.7 }}"],
                       check=True)
        out["added"] = p.drift()
        out["repair"] = (p.repair() or {{}}).get("items")
        listed = subprocess.run(["nft", "list", "set", "inet", "talgate", "set_blocklist_v4"], check=True,
                                capture_output=True, text=True).stdout
        out["gone"] = "192.0.2.7" not in listed and "203.0.113.0/24" in listed
        out["after"] = p.drift()
        result = out
    """, prefixes=10)
    assert got["first"] == [] and got["again"] == [] and got["other table"] == []
    assert got["added"] == ["nft: table inet talgate was changed"]
    assert got["repair"] == ["nft: table inet talgate was changed"]
    assert got["gone"] and got["after"] == []


def test_fingerprint_reuses_set_digests_only_across_our_own_transactions(ns):
    """After our update that keeps the big set, the fingerprint skips its element dump and still
    equals one taken from scratch; an element added behind our back is never hidden by that."""
    got = probe(ns, """
        import subprocess
        from backend.model import load_config
        calls = []
        real = nfnl._elements_digest
        def counting(s, fam, table, set_name, msg):
            calls.append(set_name)
            return real(s, fam, table, set_name, msg)
        nfnl._elements_digest = counting
        def scratch():
            return nfnl.table_fingerprint("inet", "talgate")  # no digests carried over
        big = "set_blocklist_v4"
        out = {}
        nh.run(rs.commands())
        calls.clear(); a = nh.fingerprint()
        out["full load dumps the set"] = big in calls and a == scratch()
        text = large_config(60, 4, 100_000).replace("dport: 1024\\n", "dport: 1023\\n", 1)
        rs2 = render(load_config(text))
        nh.run(rs2.update_commands(rs))
        calls.clear(); b = nh.fingerprint()
        out["update keeping the set skips it"] = big not in calls
        out["and equals a scratch fingerprint"] = b == scratch() and b != a
        calls.clear(); out["again skipped"] = nh.fingerprint() == b and big not in calls
        subprocess.run(["nft", "add", "element", "inet", "talgate", big, "{ 198.51.100.7 }"], check=True)
        calls.clear(); c = nh.fingerprint()
        out["foreign element seen"] = big in calls and c != b and c == scratch()
        # a foreign change right before our own transaction: our transaction must not vouch for it
        nh.run(rs.update_commands(rs2))
        nh.fingerprint()
        # (one element swapped for another: the set's element count, which newer kernels report
        # with the set, stays the same)
        first = rs.sets[0].elements[0]
        subprocess.run(["nft", "-f", "-"], check=True, text=True,
                       input=f"delete element inet talgate {big} {{ {first} }}\\n"
                             f"add element inet talgate {big} {{ 198.51.100.9 }}\\n")
        nh.run(rs2.update_commands(rs))
        calls.clear(); d = nh.fingerprint()
        out["foreign change before ours is read"] = big in calls and d == scratch() and d != b
        # an update that changes the set re-reads it
        nh.run(rs.commands()); nh.fingerprint()
        rs3 = render(load_config(large_config(60, 4, 100_001)))
        nh.run(rs3.update_commands(rs))
        calls.clear(); e = nh.fingerprint()
        out["changed set re-read"] = big in calls and e == scratch()
        result = out
    """)
    assert all(got.values()), got
