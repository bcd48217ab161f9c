"""A failed very first commit against a real kernel, run as a script in a fresh network namespace
(``unshare --net``; test_first_commit_lab.py runs it): veth pairs p1/x1 and p2/x2, p1 with an address
and an MTU of its own. A real Pipeline (links + network appliers) applies a first document — a
bridge br0 over p1 and p2, a new address and MTU on p1, a route — and fails after the network
applier (TALGATE_FAULTS-style fault). Prints one JSON line: the links/addresses before and after."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

DOC = """
interfaces:
  p1: {ipv4: [192.168.77.1/24], mtu: 1300}
  p2: {}
  br0: {kind: bridge, ports: [p2], ipv4: [192.168.78.1/24]}
routes:
  - {name: far, to: 10.77.0.0/16, via: 192.168.77.10}
zones:
  lan: {interfaces: [p1, br0]}
"""


def sh(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def observe() -> dict:
    links = {lk["ifname"]: {"mtu": lk["mtu"], "master": lk.get("master"), "up": "UP" in lk["flags"],
                            "addrs": sorted(f"{a['local']}/{a['prefixlen']}" for a in lk.get("addr_info", [])
                                            if a.get("scope") != "link")}
             for lk in json.loads(sh("ip", "-j", "addr", "show"))}
    routes = sorted(r["dst"] for r in json.loads(sh("ip", "-j", "route", "show")))
    return {"links": links, "routes": routes}


def main() -> None:
    from backend.agent.pipeline import ApplyFailed, Pipeline
    from backend.host.applier import HostContext
    from backend.host.links import LinksApplier
    from backend.host.network import NetworkApplier

    sh("ip", "link", "set", "lo", "up")
    for a, b in (("p1", "x1"), ("p2", "x2")):
        sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
        sh("ip", "link", "set", a, "up")
    sh("ip", "addr", "add", "10.99.0.1/24", "dev", "p1")
    sh("ip", "link", "set", "p1", "mtu", "1400")
    before = observe()
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        state.mkdir()
        ctx = HostContext(state, Path(tmp) / "rendered")
        p = Pipeline(Path(tmp) / "repo", state, Path(tmp) / "rendered",
                     appliers=[LinksApplier(ctx), NetworkApplier(ctx)])
        seen: dict = {}

        def fault(stage: str) -> None:
            if stage == "network":
                seen["applied"] = observe()
                raise RuntimeError("injected fault at network")

        p.faults = fault
        error = None
        try:
            p.commit(DOC, "first", "test")
        except ApplyFailed as e:
            error = {"message": str(e), "detail": e.detail}
        after = observe()
        links_json = json.loads((state / "links.json").read_text()) if (state / "links.json").exists() else {}
        # not sticky: with the fault gone the same first commit lands
        p.faults = None
        p.commit(DOC, "first", "test")
        landed = observe()
    print(json.dumps({"before": before, "applied": seen.get("applied"), "after": after, "error": error,
                      "links_json": links_json, "landed": landed}))


def accept_ra() -> None:
    """A WAN with ipv6: {slaac: true}, then without it, then with it and dropped from the document:
    accept_ra and autoconf each time (the kernel's values before come back)."""
    from backend.agent.pipeline import Pipeline
    from backend.host.applier import HostContext
    from backend.host.network import NetworkApplier

    sh("ip", "link", "set", "lo", "up")
    for a, b in (("w1", "y1"), ("l1", "z1")):
        sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
    sh("sysctl", "-qw", "net.ipv6.conf.w1.autoconf=0")  # a value of its own before the agent

    def read() -> list[str]:
        return [Path(f"/proc/sys/net/ipv6/conf/w1/{k}").read_text().strip() for k in ("accept_ra", "autoconf")]

    base = "interfaces:\n  l1: {ipv4: [192.168.80.1/24]}\n"
    out = {"before": read()}
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        state.mkdir()
        ctx = HostContext(state, Path(tmp) / "rendered")
        p = Pipeline(Path(tmp) / "repo", state, Path(tmp) / "rendered", appliers=[NetworkApplier(ctx)])
        p.commit(base + "  w1: {ipv6: {slaac: true}}\n", "slaac", "test")
        out["slaac"] = read()
        p.commit(base + "  w1: {}\n", "static", "test")
        out["static"] = read()
        out["drift"] = p.appliers[0].drift(p._current) if getattr(p, "_current", None) else None
        p.commit(base + "  w1: {ipv6: {dhcpv6: true}}\n", "dhcpv6", "test")
        out["dhcpv6"] = read()
        p.commit(base, "dropped", "test")
        out["dropped"] = read()
        out["state"] = json.loads((state / "network.json").read_text())
    print(json.dumps(out))


PD_DOC = """
interfaces:
  w1: {ipv6: {prefix_delegation: {length: 56}}}
  l1: {ipv6: [{from_delegated: w1, subnet: 0x10, host: "::1"}]}
zones:
  wan: {interfaces: [w1]}
  lan: {interfaces: [l1]}
"""


def pd_unreachable() -> None:
    """A delegated /56 with subnet 0x10 on l1: the rest of the /56 is unreachable (RFC 7084 WPD-5),
    following the delegation (a new prefix, then none) without a commit."""
    from backend.agent.pipeline import Pipeline
    from backend.host.applier import Facts, HostContext
    from backend.host.network import NetworkApplier

    sh("ip", "link", "set", "lo", "up")
    for a, b in (("w1", "y1"), ("l1", "z1"), ("d1", "e1")):
        sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
    # a default route outside the document (d1): without the unreachable route the rest of the
    # delegated prefix would leave by it (back to the ISP)
    for n in ("d1", "e1", "l1", "z1"):
        sh("ip", "link", "set", n, "up")
    sh("ip", "-6", "addr", "add", "2001:db8:1::2/64", "dev", "d1", "nodad")
    sh("ip", "-6", "route", "add", "default", "via", "2001:db8:1::1", "dev", "d1")

    def look() -> dict:
        routes = json.loads(sh("ip", "-j", "-6", "route", "show", "type", "unreachable", "proto", "250"))
        get = {}
        for ip in ("2001:db8:4000:1ff::1", "2001:db8:4000:110::5", "2001:db8:5000:1ff::1", "2001:db8:5000:110::5"):
            r = subprocess.run(["ip", "-j", "-6", "route", "get", ip], capture_output=True, text=True)
            get[ip] = "unreachable" if r.returncode else (json.loads(r.stdout)[0].get("type") or json.loads(r.stdout)[0].get("dev"))
        return {"routes": sorted(f"{r['dst']} metric {r.get('metric')}" for r in routes), "get": get}

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        state.mkdir()
        ctx = HostContext(state, Path(tmp) / "rendered")
        p = Pipeline(Path(tmp) / "repo", state, Path(tmp) / "rendered", appliers=[NetworkApplier(ctx)])
        p.commit(PD_DOC, "pd", "test")
        out["none"] = look()
        head = p.repo.head()
        p.set_facts(Facts(delegated={"w1": ("2001:db8:4000:100::/56",)}))
        out["first"] = look()
        p.set_facts(Facts(delegated={"w1": ("2001:db8:5000:100::/56",)}))
        out["second"] = look()
        out["drift"] = p.appliers[0].drift(p._current)
        p.set_facts(Facts())
        out["gone"] = look()
        out["head_moved"] = p.repo.head() != head
    print(json.dumps(out))


MODES = {"accept_ra": accept_ra, "pd_unreachable": pd_unreachable}

if __name__ == "__main__":
    MODES.get(sys.argv[1] if sys.argv[1:] else "", main)()
