"""A small world for the links applier against a real kernel, run as a script (no pytest inside,
so it is quick in the qemu guest): ``python tests/lab/links_world.py MODE TMPDIR`` prints one JSON
line of observations; the tests (test_links_lab.py here, test_links_vm.py through the guest) judge.

The router is the namespace the script runs in (a private one: ``unshare --net --mount`` on this
machine, the guest's own in qemu); the hosts are ``tg-lk-*`` namespaces behind veth pairs. The
router is a real Pipeline with the registry's links, network and nftables appliers (no daemons).

- ``bridge`` (this kernel): hosts a and b behind a bridge br0 (ports p1, p2), host c behind dmz0.
  Zone lan (br0) may reach zone dmz; dmz may not reach lan.
- ``vm`` (Debian's kernel): VLANs 10 and 20 on a trunk (hosts h10, h20 behind a switch namespace),
  an active-backup bond (a bonded host hb) and an 802.3ad one (made, not negotiated), a dummy, a VLAN-filtering bridge whose access ports pa (VLAN 40) and pb
  (VLAN 41) are routed through br0.40 and br0.41. Zone lan (trunk0.10, bond0, br0.40) may reach
  zone iot (trunk0.20, br0.41); iot may not reach lan.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

P = "tg-lk-"
# How long a TCP client waits for its answer: the guest (VMRUN=1) starts bash slowly under emulation.
TCP_WAIT = 10 if os.environ.get("VMRUN") else 3
PORT = 8080
SERVER = ("import socket\ns=socket.socket(socket.AF_INET6 if ':' in '{ip}' else socket.AF_INET)\n"
          "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('{ip}',{port}))\ns.listen(8)\n"
          "while True:\n c,_=s.accept()\n c.sendall(b'hello from {ip}\\n')\n c.close()\n")

BRIDGE_DOC = """
interfaces:
  p1: {}
  p2: {}
  dmz0: {ipv4: [192.168.60.1/24]}
  br0: {kind: bridge, ports: [p1, p2], ipv4: [192.168.50.1/24]}
zones:
  lan: {interfaces: [br0]}
  dmz: {interfaces: [dmz0]}
policies:
  - {from: lan, to: dmz, action: accept}
  - {from: lan, to: lan, action: accept}  # between bridge ports when br_netfilter is loaded (Kubernetes)
"""
# The bridge gone: p1 carries lan itself; the link br0 must leave the kernel, p1 and p2 stay.
BRIDGE_GONE = """
interfaces:
  p1: {ipv4: [192.168.50.1/24]}
  p2: {}
  dmz0: {ipv4: [192.168.60.1/24]}
zones:
  lan: {interfaces: [p1]}
  dmz: {interfaces: [dmz0]}
policies:
  - {from: lan, to: dmz, action: accept}
  - {from: lan, to: lan, action: accept}  # between bridge ports when br_netfilter is loaded (Kubernetes)
"""

VM_DOC = """
interfaces:
  trunk0: {}
  trunk0.10: {kind: vlan, link: trunk0, id: 10, ipv4: [192.168.10.1/24]}
  trunk0.20: {kind: vlan, link: trunk0, id: 20, ipv4: [192.168.20.1/24]}
  b1: {}
  b2: {}
  bond0: {kind: bond, mode: active-backup, members: [b1, b2], primary: b1, ipv4: [192.168.30.1/24]}
  b3: {}
  b4: {}
  bond1: {kind: bond, mode: lacp, lacp_rate: fast, members: [b3, b4]}
  pa: {}
  pb: {}
  br0:
    kind: bridge
    vlan_filtering: true
    ports: {pa: {pvid: 40}, pb: {pvid: 41}}
  br0.40: {kind: vlan, link: br0, id: 40, ipv4: [192.168.40.1/24]}
  br0.41: {kind: vlan, link: br0, id: 41, ipv4: [192.168.41.1/24]}
  anchor0: {kind: dummy, ipv4: [10.9.9.9/32]}
zones:
  lan: {interfaces: [trunk0.10, bond0, br0.40, anchor0]}
  iot: {interfaces: [trunk0.20, br0.41]}
policies:
  - {from: lan, to: iot, action: accept}
"""
VM_GONE = """
interfaces:
  trunk0: {}
  b1: {}
  b2: {}
  b3: {}
  b4: {}
  pa: {}
  pb: {}
"""


T0 = time.monotonic()


def log(what: str) -> None:
    """Progress on stderr (the guest is slow: where did the time go)."""
    print(f"[{time.monotonic() - T0:7.1f}s] {what}", file=sys.stderr, flush=True)


def sh(*a: str, check: bool = True) -> str:
    r = subprocess.run(a, capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(a)}: {r.stderr.strip()}")
    return r.stdout


def ns(name: str, *a: str, check: bool = True) -> str:
    return sh("ip", "netns", "exec", P + name, *a, check=check)


class Topology:
    """Shell lines building the hosts, run by one shell (a process start costs ~1 s in the guest)."""

    def __init__(self):
        self.lines: list[str] = ["set -e"]
        self.made: set[str] = set()

    def netns(self, name: str) -> None:
        if name not in self.made:
            self.made.add(name)
            self.lines += [f"ip netns add {P}{name}", f"ip -n {P}{name} link set lo up"]

    def host(self, name: str, ifname: str, router_end: str, addr: str | None = None, gw: str | None = None) -> None:
        """Namespace tg-lk-NAME with IFNAME, the peer of the router's ROUTER_END."""
        self.netns(name)
        n = f"ip -n {P}{name}"
        self.lines += [f"ip link add {router_end} type veth peer name {ifname} netns {P}{name}",
                       f"{n} link set {ifname} up"]
        if addr:
            self.lines.append(f"{n} addr add {addr} dev {ifname}")
        if gw:
            self.lines.append(f"{n} route add default via {gw}")

    def ns(self, name: str, line: str) -> None:
        self.lines.append(f"ip -n {P}{name} {line}")

    def start(self) -> subprocess.Popen:
        return subprocess.Popen(["sh", "-c", "\n".join(self.lines)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)


def finish(proc: subprocess.Popen) -> None:
    _, err = proc.communicate(timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"building the hosts failed: {err.strip()[-2000:]}")


def ping(src: str, dst: str) -> bool:
    """Any of 3 echo requests answered within 3 s (the first may wait for ARP)."""
    return subprocess.run(["ip", "netns", "exec", P + src, "ping", "-n", "-c3", "-i0.3", "-w3", dst],
                          capture_output=True, timeout=30).returncode == 0


def serve(name: str, ip: str) -> subprocess.Popen:
    return subprocess.Popen(["ip", "netns", "exec", P + name, sys.executable, "-S", "-c",
                             SERVER.format(ip=ip, port=PORT)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def reachability(pairs: list[tuple[str, str]]) -> dict[str, list]:
    """src>dst -> [ping answered, what the TCP server said ('' when the connection failed)], all
    pairs at once in one shell."""
    lines = []
    for i, (src, dst) in enumerate(pairs):
        x = f"ip netns exec {P}{src}"
        lines.append(f"( if {x} ping -n -c3 -i0.3 -w3 {dst} >/dev/null 2>&1; then p=1; else p=0; fi; "
                     f"t=$({x} timeout {TCP_WAIT} bash -c 'exec 3<>/dev/tcp/{dst}/{PORT} && head -n1 <&3' 2>/dev/null); "
                     f"echo \"{i}|$p|$t\" ) &")
    lines.append("wait")
    out = subprocess.run(["sh", "-c", "\n".join(lines)], capture_output=True, text=True, timeout=120).stdout
    got = {}
    for line in out.splitlines():
        i, p, t = line.split("|", 2)
        src, dst = pairs[int(i)]
        got[f"{src}>{dst}"] = [p == "1", t.strip()]
    return dict(sorted(got.items()))


def links() -> dict[str, dict]:
    return {li["ifname"]: li for li in json.loads(sh("ip", "-j", "-d", "link", "show"))}


def pipeline(tmp: Path):
    from backend.agent.pipeline import Pipeline
    from backend.host.applier import LINKS, NETWORK, NFTABLES, HostContext, builtin

    (tmp / "state").mkdir(parents=True, exist_ok=True)
    appliers = builtin().build(HostContext(tmp / "state"), stages=[LINKS, NETWORK, NFTABLES])
    return Pipeline(tmp / "repo", tmp / "state", appliers=appliers)


def bridge_world(tmp: Path) -> dict:
    out: dict = {}
    t = Topology()
    t.lines.append("ip link set lo up")
    t.host("a", "e0", "p1", "192.168.50.10/24", "192.168.50.1")
    t.host("b", "e0", "p2", "192.168.50.11/24", "192.168.50.1")
    t.host("c", "e0", "dmz0", "192.168.60.10/24", "192.168.60.1")
    t.lines.append("ip link add br9 type bridge")  # not the document's: never touched
    finish(t.start())
    servers = [serve("a", "192.168.50.10"), serve("c", "192.168.60.10")]
    try:
        p = pipeline(tmp)
        t0 = time.monotonic()
        out["commit"] = p.commit(BRIDGE_DOC, "bridge", "test")["applied"]
        out["commit_s"] = round(time.monotonic() - t0, 2)
        ls = links()
        out["masters"] = {n: ls[n].get("master") for n in ("p1", "p2", "dmz0")}
        out["br0_kind"] = ls["br0"]["linkinfo"]["info_kind"]
        out["drift"] = p.drift()
        out["reach"] = reachability([("a", "192.168.60.10"), ("c", "192.168.50.10"), ("a", "192.168.50.11"),
                                     ("b", "192.168.60.10")])
        # A failure after the links were made (in the nftables stage) takes the new bridge away again.
        p.faults = lambda stage: (_ for _ in ()).throw(RuntimeError("injected")) if stage == "nftables" else None
        try:
            p.commit(BRIDGE_DOC.replace("  dmz0:", "  br1: {kind: bridge}\n  dmz0:"), "br1", "test")
            out["fault"] = "committed"
        except Exception as e:  # noqa: BLE001
            out["fault"] = type(e).__name__
        p.faults = None
        out["after_fault"] = sorted(n for n in links() if n.startswith("br"))
        # This kernel has no 802.1Q: the kernel refuses the VLAN half-way (after br1 was made) and
        # everything goes back.
        before = sorted(links())
        try:
            p.commit(BRIDGE_DOC.replace("  dmz0:", "  br1: {kind: bridge}\n  dmz0.7: {kind: vlan, link: dmz0, id: 7}\n"
                                                   "  dmz0:"), "vlan", "test")
            out["no_8021q"] = "committed"
        except Exception as e:  # noqa: BLE001
            out["no_8021q"] = f"{type(e).__name__}: {e}"
        out["no_8021q_links_same"] = sorted(links()) == before
        out["reach_after_fault"] = reachability([("a", "192.168.60.10"), ("c", "192.168.50.10")])
        out["gone"] = p.commit(BRIDGE_GONE, "no bridge", "test")["applied"]
        ns("a", "ip", "neigh", "flush", "all")  # the router's MAC on lan changed (br0's → p1's)
        ls = links()
        out["after_gone"] = sorted(n for n in ls if n.startswith(("br", "p", "dmz")))
        out["masters_gone"] = {n: ls[n].get("master") for n in ("p1", "p2")}
        out["reach_gone"] = reachability([("a", "192.168.60.10"), ("c", "192.168.50.10")])
        out["drift_gone"] = p.drift()
    finally:
        for s in servers:
            s.kill()
    return out


def vm_world(tmp: Path) -> dict:
    out: dict = {}
    t = Topology()
    t.lines.append("ip link set lo up")
    # The trunk: the switch namespace tags VLANs 10 and 20 and hands each to its host namespace.
    t.host("sw", "t0", "trunk0")
    for vid, h in ((10, "h10"), (20, "h20")):
        t.netns(h)
        t.ns("sw", f"link add link t0 name t0.{vid} type vlan id {vid}")
        t.ns("sw", f"link set t0.{vid} netns {P}{h}")
        t.ns(h, f"link set t0.{vid} up")
        t.ns(h, f"addr add 192.168.{vid}.10/24 dev t0.{vid}")
        t.ns(h, f"route add default via 192.168.{vid}.1")
    # The bonded host: its own active-backup bond over both links (bond1's links, 802.3ad, end
    # there too, unbonded: LACP does not converge within this test's time in the emulated guest).
    t.host("hb", "c1", "b1")
    t.host("hb", "c2", "b2")
    t.host("hb", "c3", "b3")
    t.host("hb", "c4", "b4")
    t.ns("hb", "link add hbond type bond mode active-backup miimon 100 primary c1")
    for c in ("c1", "c2"):
        t.ns("hb", f"link set {c} down")
        t.ns("hb", f"link set {c} master hbond")
    t.ns("hb", "link set hbond type bond primary c1")
    t.ns("hb", "link set hbond up")
    t.ns("hb", "addr add 192.168.30.10/24 dev hbond")
    t.ns("hb", "route add default via 192.168.30.1")
    # Access ports of the VLAN-filtering bridge (untagged hosts; the bridge puts them in 40 / 41);
    # 10.99.0.0/24 on both: one subnet, two VLANs, so layer 2 between them must fail.
    t.host("pa", "e0", "pa", "192.168.40.10/24", "192.168.40.1")
    t.host("pb", "e0", "pb", "192.168.41.10/24", "192.168.41.1")
    t.ns("pa", "addr add 10.99.0.1/24 dev e0")
    t.ns("pb", "addr add 10.99.0.2/24 dev e0")
    building = t.start()  # the shell builds the hosts while this process imports the pipeline
    p = pipeline(tmp)
    finish(building)
    log("hosts up, pipeline built")
    servers = [serve(h, ip) for h, ip in (("h10", "192.168.10.10"), ("h20", "192.168.20.10"),
                                          ("pa", "192.168.40.10"), ("pb", "192.168.41.10"))]
    try:
        t0 = time.monotonic()
        out["commit"] = p.commit(VM_DOC, "vlans", "test")["applied"]
        out["commit_s"] = round(time.monotonic() - t0, 2)
        log("committed")
        ls = links()
        out["kinds"] = {n: ls[n]["linkinfo"]["info_kind"] for n in ("trunk0.10", "trunk0.20", "bond0", "bond1",
                                                                    "br0", "br0.40", "br0.41", "anchor0")}
        out["vlan_ids"] = {n: ls[n]["linkinfo"]["info_data"]["id"] for n in ("trunk0.10", "trunk0.20", "br0.40")}
        out["bond_modes"] = {n: ls[n]["linkinfo"]["info_data"]["mode"] for n in ("bond0", "bond1")}
        out["bond0_primary"] = ls["bond0"]["linkinfo"]["info_data"].get("primary")
        out["bond1_lacp_rate"] = ls["bond1"]["linkinfo"]["info_data"].get("ad_lacp_rate")
        out["masters"] = {n: ls[n].get("master") for n in ("b1", "b2", "b3", "b4", "pa", "pb")}
        out["vlan_filtering"] = ls["br0"]["linkinfo"]["info_data"]["vlan_filtering"]
        out["bridge_vlans"] = {e["ifname"]: sorted((v["vlan"], sorted(v.get("flags", []))) for v in e["vlans"])
                               for e in json.loads(sh("bridge", "-j", "vlan", "show"))}
        out["drift"] = p.drift()
        log("drift")
        # All pairs at once, in one shell.
        out["reach"] = reachability([("h10", "192.168.20.10"), ("h20", "192.168.10.10"),
                                     ("pa", "192.168.41.10"), ("pb", "192.168.40.10"), ("pa", "10.99.0.2"),
                                     ("hb", "192.168.20.10"), ("h20", "192.168.30.10")])
        log("reachability")
        out["gone"] = p.commit(VM_GONE, "no vlans", "test")["applied"]
        log("removed")
        ls = links()
        out["after_gone"] = sorted(ls)
        out["masters_gone"] = {n: ls[n].get("master") for n in ("b1", "b2", "b3", "b4", "pa", "pb")}
        out["drift_gone"] = p.drift()
    finally:
        for s in servers:
            s.kill()
    return out


if __name__ == "__main__":
    log("started")
    mode, tmp = sys.argv[1], Path(sys.argv[2])
    result = {"bridge": bridge_world, "vm": vm_world}[mode](tmp)
    print(json.dumps(result))
