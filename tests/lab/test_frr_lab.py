"""FRR in tg-router peering with bird2, a real independent implementation: BGP (v4 and v6) with
the isp over wan0, OSPF and OSPFv3 with the lan host over lan0. Learned prefixes reach the
router's kernel and are reachable from the LAN; withdrawn ones leave; the import policy drops a
default route, the router's own subnets and anything not in ``import``; FRR killed comes back with
its routes; bad routing documents are refused with paths and nothing changes.

The test config has no static default routes, so the announced prefixes are reachable only
through the routes FRR learned."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time
from pathlib import Path

import pytest

from backend.client import AgentError
from backend.lab.lab import example_config

from .conftest import new_lab
from .util import LabHelper

ROUTING = """
routing:
  router_id: 198.51.100.2
  ospf:
    interfaces: {lan0: {area: 0, hello: 2, dead: 8}}
  ospfv3:
    interfaces: {lan0: {area: 0.0.0.0, hello: 2, dead: 8}}
  bgp:
    asn: 65001
    networks: [192.168.10.0/24, "2001:db8:10::/56"]
    neighbors:
      - {address: 198.51.100.1, remote_asn: 65002, description: isp v4, import: ["203.0.113.0/24 le 32"]}
      - {address: "2001:db8:100::1", remote_asn: 65002, import: ["2001:db8::/32 le 64"]}
"""

ANNOUNCE4 = ["203.0.113.128/26", "0.0.0.0/0", "192.168.10.0/24", "192.0.2.0/24"]
ANNOUNCE6 = ["2001:db8:bbbb::/48", "::/0", "2001:db8:10:10::/64"]

BIRD_ISP = """
router id 198.51.100.1;
log stderr all;
protocol device {{ scan time 1; }}
protocol static s4 {{ ipv4; {routes4} }}
protocol static s6 {{ ipv6; {routes6} }}
protocol bgp r4 {{
  local 198.51.100.1 as 65002; neighbor 198.51.100.2 as 65001;
  connect retry time 1; error wait time 1, 4;
  ipv4 {{ import all; export where source = RTS_STATIC; }};
}}
protocol bgp r6 {{
  local 2001:db8:100::1 as 65002; neighbor 2001:db8:100::2 as 65001;
  connect retry time 1; error wait time 1, 4;
  ipv6 {{ import all; export where source = RTS_STATIC; }};
}}
"""

BIRD_LAN = """
router id 192.168.10.10;
log stderr all;
protocol device { scan time 1; }
protocol static s4 { ipv4; route 192.168.77.0/24 blackhole; route 0.0.0.0/0 blackhole;
                     route 192.168.10.128/25 blackhole; }
protocol static s6 { ipv6; route 2001:db8:77::/48 blackhole; route ::/0 blackhole;
                     route 2001:db8:10:10::/80 blackhole; }
protocol ospf v2 o4 {
  ipv4 { import all; export where source = RTS_STATIC; };
  area 0 { interface "eth0" { hello 2; dead 8; }; };
}
protocol ospf v3 o6 {
  ipv6 { import all; export where source = RTS_STATIC; };
  area 0 { interface "eth0" { hello 2; dead 8; }; };
}
"""


def _routes(prefixes: list[str]) -> str:
    return " ".join(f"route {p} blackhole;" for p in prefixes)


def wait(fn, timeout: float = 30.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


class FrrLab(LabHelper):
    def __init__(self, lab, work: Path):
        super().__init__(lab)
        self.work = work

    def bird_conf(self, host: str) -> Path:
        return self.work / f"bird-{host}.conf"

    def bird_sock(self, host: str) -> str:
        return str(self.work / f"bird-{host}.ctl")

    def isp_announce(self, v4: list[str], v6: list[str]) -> None:
        self.bird_conf("isp").write_text(BIRD_ISP.format(routes4=_routes(v4), routes6=_routes(v6)))

    def birdc(self, host: str, *cmd: str) -> str:
        return self.lab.run(host, ["birdc", "-s", self.bird_sock(host), *cmd], timeout=20).stdout

    def vtysh(self, cmd: str) -> str:
        run = self.lab.state / "run" / "frr" / "sock"
        return self.lab.run("router", ["vtysh", "--vty_socket", str(run), "-c", cmd], timeout=20).stdout

    def kernel(self, family: int, proto: str) -> set[str]:
        out = self.router("ip", f"-{family}", "route", "show", "proto", proto)
        return {line.split()[0] for line in out.splitlines() if line.strip()}

    def established(self) -> bool:
        try:
            peers = json.loads(self.vtysh("show bgp summary json"))
        except ValueError:
            return False
        states = [p.get("state") for af in ("ipv4Unicast", "ipv6Unicast") for p in
                  peers.get(af, {}).get("peers", {}).values()]
        return len(states) == 2 and all(s == "Established" for s in states)

    def ospf_full(self) -> bool:
        try:
            n4 = json.loads(self.vtysh("show ip ospf neighbor json")).get("neighbors", {})
        except ValueError:
            return False
        v6 = self.vtysh("show ipv6 ospf6 neighbor")
        return any("Full" in n.get("nbrState", "") for ns in n4.values() for n in ns) and "Full" in v6


def _missing() -> list[str]:
    return [t for t in ("bird", "birdc", "vtysh", "/usr/lib/frr/zebra") if not shutil.which(t) and not os.path.exists(t)]


@pytest.fixture(scope="module")
def frr(tmp_path_factory):
    missing = _missing()
    if missing:
        pytest.skip(f"FRR tests need {', '.join(missing)} (make install installs frr and bird2)")
    work = tmp_path_factory.mktemp("frr")
    text = re.sub(r"\nroutes:\n(  - .*\n)+", "\n", example_config()) + ROUTING
    assert "default-v4" not in text
    lab = new_lab(tmp_path_factory, text)
    h = FrrLab(lab, work)
    try:
        # 198.51.100.7: another host on the WAN link, not a neighbor.
        lab.run("isp", ["sh", "-c", "ip addr add 203.0.113.129/26 dev lo && ip addr add 2001:db8:bbbb::1/128 dev lo"
                        " && ip addr add 198.51.100.7/24 dev eth0"], check=True)
        lab.run("lan", ["sh", "-c", "ip addr add 192.168.77.1/24 dev lo && ip addr add 2001:db8:77::1/128 dev lo"],
                check=True)
        h.isp_announce(ANNOUNCE4, ANNOUNCE6)
        h.bird_conf("lan").write_text(BIRD_LAN)
        for host in ("isp", "lan"):
            lab.spawn(host, ["bird", "-f", "-c", str(h.bird_conf(host)), "-s", h.bird_sock(host)], f"bird-{host}.log")
        t0 = time.monotonic()
        assert wait(h.established, 60), (h.vtysh("show bgp summary"), lab.log_tail("bird-isp.log"),
                                         lab.log_tail("logs/frr.log"))
        h.bgp_up_s = time.monotonic() - t0
        assert wait(h.ospf_full, 60), (h.vtysh("show ip ospf neighbor"), h.vtysh("show ipv6 ospf6 neighbor"),
                                       lab.log_tail("bird-lan.log"))
        h.ospf_up_s = time.monotonic() - t0
        print(f"BGP established after {h.bgp_up_s:.1f} s, OSPF full after {h.ospf_up_s:.1f} s")
        yield h
    finally:
        lab.down()


def test_sessions_come_up_with_bird(frr):
    assert frr.established() and frr.ospf_full()
    out = frr.birdc("isp", "show", "protocols")
    assert re.search(r"r4\s+BGP.*Established", out) and re.search(r"r6\s+BGP.*Established", out), out
    out = frr.birdc("lan", "show", "protocols")
    assert re.search(r"o4\s+OSPF.*Running", out) and re.search(r"o6\s+OSPF.*Running", out), out


CONNECT = ("import socket, sys\ntry:\n    socket.create_connection((sys.argv[1], 179), 2, (sys.argv[2], 0)).close()\n"
           "except OSError as e:\n    sys.exit(str(e))\n")


def test_bgp_port_open_only_to_the_neighbors(frr):
    """bgpd listens on every address; the firewall lets only the configured neighbor reach tcp/179."""
    ok = frr.lab.run("isp", ["python3", "-c", CONNECT, "198.51.100.2", "198.51.100.1"], timeout=10)
    assert ok.returncode == 0, ok.stderr  # the neighbor's address: allowed (bgpd then hangs up on a 2nd session)
    for host, dst, src in (("lan", "192.168.10.1", "192.168.10.10"), ("isp", "198.51.100.2", "198.51.100.7"),
                           ("mgmt", "192.168.99.1", "192.168.99.10")):
        r = frr.lab.run(host, ["python3", "-c", CONNECT, dst, src], timeout=10)
        assert r.returncode != 0, (host, src)
    assert frr.established()


def test_bgp_prefixes_reach_the_kernel_and_the_lan(frr):
    assert wait(lambda: "203.0.113.128/26" in frr.kernel(4, "bgp"), 20), frr.router("ip", "route")
    assert wait(lambda: "2001:db8:bbbb::/48" in frr.kernel(6, "bgp"), 20), frr.router("ip", "-6", "route")
    # No static default route: only the BGP route leads there.
    assert frr.router("ip", "route", "show", "default") == ""
    assert frr.tcp("lan", "203.0.113.129", 80, timeout=3) is not None
    assert frr.tcp("lan", "2001:db8:bbbb::1", 80, timeout=3) is not None
    # bird learned what the router announces (bgp.networks), and nothing else.
    got = frr.birdc("isp", "show", "route", "protocol", "r4")
    assert "192.168.10.0/24" in got and "192.168.20.0/24" not in got, got


def test_import_policy_refuses_default_own_subnets_and_unlisted(frr):
    assert wait(lambda: "203.0.113.128/26" in frr.kernel(4, "bgp"), 20)
    v4, v6 = frr.kernel(4, "bgp"), frr.kernel(6, "bgp")
    assert v4 == {"203.0.113.128/26"}, v4          # not default, 192.168.10.0/24, 192.0.2.0/24
    assert v6 == {"2001:db8:bbbb::/48"}, v6        # not ::/0, 2001:db8:10:10::/64
    assert "default" not in frr.router("ip", "route") and "default" not in frr.router("ip", "-6", "route")
    # The LAN's own connected route is untouched and still wins.
    assert "192.168.10.0/24 dev lan0" in frr.router("ip", "route", "show", "192.168.10.0/24")
    # FRR received them (bird sent them) and its prefix-list dropped them.
    sent = frr.birdc("isp", "show", "route", "export", "r4")
    assert all(p in sent for p in ANNOUNCE4), sent
    rcvd = json.loads(frr.vtysh("show bgp neighbors 198.51.100.1 json"))
    pfx = rcvd["198.51.100.1"]["addressFamilyInfo"]["ipv4Unicast"]
    assert pfx["acceptedPrefixCounter"] == 1, pfx


def test_ospf_prefixes_reach_the_kernel_and_other_zones(frr):
    assert wait(lambda: "192.168.77.0/24" in frr.kernel(4, "ospf"), 30), frr.router("ip", "route")
    assert wait(lambda: "2001:db8:77::/48" in frr.kernel(6, "ospf"), 30), frr.router("ip", "-6", "route")
    # The lan's bird also announces a default route and a more-specific of the LAN itself: zebra
    # installs neither (tg-ospf4-in / tg-ospf6-in), though OSPF learned them.
    assert frr.kernel(4, "ospf") == {"192.168.77.0/24"} and frr.kernel(6, "ospf") == {"2001:db8:77::/48"}
    assert "192.168.10.128/25" in frr.vtysh("show ip ospf route")
    assert "default" not in frr.router("ip", "route") and "default" not in frr.router("ip", "-6", "route")
    # mgmt -> lan is allowed by policy; the destination is only known through OSPF.
    assert frr.tcp("mgmt", "192.168.77.1", 80, timeout=3) is not None
    assert frr.tcp("mgmt", "2001:db8:77::1", 80, timeout=3) is not None


def test_withdrawn_prefix_leaves_the_kernel(frr):
    assert wait(lambda: "203.0.113.128/26" in frr.kernel(4, "bgp"), 20)
    try:
        frr.isp_announce(ANNOUNCE4[1:], ANNOUNCE6[1:])
        assert "Reconfigured" in frr.birdc("isp", "configure")
        t0 = time.monotonic()
        assert wait(lambda: not frr.kernel(4, "bgp") and not frr.kernel(6, "bgp"), 20), frr.router("ip", "route")
        print(f"withdrawn from the kernel in {time.monotonic() - t0:.2f} s")
        assert frr.tcp("lan", "203.0.113.129", 80, timeout=1) is None
    finally:
        frr.isp_announce(ANNOUNCE4, ANNOUNCE6)
        frr.birdc("isp", "configure")
    assert wait(lambda: "203.0.113.128/26" in frr.kernel(4, "bgp"), 30)


def test_commit_reloads_frr_live(frr):
    """A commit that widens a neighbor's import reaches the running FRR through frr-reload.py (no
    restart): 192.0.2.0/24, which bird announced all along, enters the kernel; reverting removes it."""
    assert wait(lambda: "203.0.113.128/26" in frr.kernel(4, "bgp"), 20)
    pid = frr.lab.services()["frr"]["pid"]
    text = frr.client.config().text
    wider = text.replace('import: ["203.0.113.0/24 le 32"]', 'import: ["203.0.113.0/24 le 32", "192.0.2.0/24"]')
    assert wider != text
    t0 = time.monotonic()
    frr.client.commit(wider, "accept 192.0.2.0/24 from the isp")
    try:
        assert wait(lambda: "192.0.2.0/24" in frr.kernel(4, "bgp"), 30), frr.vtysh("show ip prefix-list")
        print(f"import widened: in the kernel {time.monotonic() - t0:.2f} s after the commit was sent")
        st = frr.client.status()["services"]["frr"]
        assert st["last_reload"]["ok"] is True, st
        assert frr.lab.services()["frr"]["pid"] == pid  # reloaded, not restarted
        assert frr.tcp("lan", "203.0.113.129", 80, timeout=3) is not None  # sessions kept
    finally:
        frr.client.commit(text, "back")
    assert wait(lambda: "192.0.2.0/24" not in frr.kernel(4, "bgp"), 30)
    assert frr.kernel(4, "bgp") == {"203.0.113.128/26"}


def test_killed_frr_is_restarted_and_routes_come_back(frr):
    assert wait(lambda: "203.0.113.128/26" in frr.kernel(4, "bgp"), 20)
    before = frr.lab.services()["frr"]["restarts"]
    pid = int((frr.lab.state / "run" / "frr" / "sock" / "bgpd.pid").read_text().split()[0])
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    assert wait(lambda: frr.lab.services().get("frr", {}).get("restarts", 0) > before, 10), frr.lab.services()
    assert wait(lambda: frr.established() and "203.0.113.128/26" in frr.kernel(4, "bgp")
                and "192.168.77.0/24" in frr.kernel(4, "ospf"), 60), frr.lab.log_tail("logs/frr.log")
    print(f"bgpd killed: sessions and routes back in {time.monotonic() - t0:.1f} s")
    assert frr.tcp("lan", "203.0.113.129", 80, timeout=3) is not None


def test_routes_on_the_read_only_socket(frr):
    assert wait(lambda: "203.0.113.128/26" in frr.kernel(4, "bgp") and "192.168.77.0/24" in frr.kernel(4, "ospf"), 30)
    r = frr.cli("routes", "--json", socket=frr.lab.ro_socket)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["frr"] is True and doc["truncated"] is False
    kinds = {(x["dst"], x["kind"]) for x in doc["routes"]}
    for want in (("203.0.113.128/26", "bgp"), ("2001:db8:bbbb::/48", "bgp"), ("192.168.77.0/24", "ospf"),
                 ("2001:db8:77::/48", "ospfv3"), ("192.168.10.0/24", "connected"), ("2001:db8:10:10::/64", "connected")):
        assert want in kinds, (want, sorted(kinds))
    bgp = next(x for x in doc["routes"] if x["dst"] == "203.0.113.128/26")
    assert bgp["gateway"] == "198.51.100.1" and bgp["dev"] == "wan0" and bgp["table"] == "main"
    text = frr.cli("routes", socket=frr.lab.ro_socket).stdout
    line = next(ln for ln in text.splitlines() if "203.0.113.128/26" in ln)
    assert line.split()[:5] == ["main", "bgp", "203.0.113.128/26", "198.51.100.1", "wan0"], line
    local = json.loads(frr.cli("routes", "--table", "local", "--json", socket=frr.lab.ro_socket).stdout)
    assert local["routes"] and {x["table"] for x in local["routes"]} == {"local"}


def test_routing_removed_stops_frr_and_its_routes(frr):
    assert wait(lambda: "203.0.113.128/26" in frr.kernel(4, "bgp") and "192.168.77.0/24" in frr.kernel(4, "ospf"), 30)
    text = frr.client.config().text
    off = text[:text.index("\nrouting:")] + "\n"
    frr.client.commit(off, "no dynamic routing")
    try:
        assert wait(lambda: frr.lab.services()["frr"]["state"] == "off", 15), frr.lab.services()
        assert wait(lambda: not frr.kernel(4, "bgp") and not frr.kernel(4, "ospf") and not frr.kernel(6, "bgp")
                    and not frr.kernel(6, "ospf"), 15), frr.router("ip", "route")
        assert not (frr.lab.state / "rendered" / "frr" / "frr.conf").exists()
        # … and the firewall no longer opens tcp/179 or OSPF.
        ruleset = frr.router("nft", "list", "ruleset")
        assert "service bgp" not in ruleset and "service ospf" not in ruleset
    finally:
        frr.client.commit(text, "routing again")
    assert wait(lambda: frr.established() and "203.0.113.128/26" in frr.kernel(4, "bgp")
                and "192.168.77.0/24" in frr.kernel(4, "ospf"), 60), frr.lab.log_tail("logs/frr.log")


BAD = [
    ("asn: 65001", "asn: 0", "routing.bgp.asn"),
    ("asn: 65001", "asn: 4294967296", "routing.bgp.asn"),
    ("address: 198.51.100.1, remote_asn", "address: 192.0.2.7, remote_asn", "routing.bgp.neighbors[0].address"),
    ('address: "2001:db8:100::1"', "address: 198.51.100.1", "routing.bgp.neighbors[1].address"),
    ("interfaces: {lan0: {area: 0, hello", "interfaces: {lan0: {area: 0.0.0, hello", "routing.ospf.interfaces.lan0.area"),
    ("router_id: 198.51.100.2", "router_id: '2001:db8::1'", "routing.router_id"),
]


@pytest.mark.parametrize("old,new,path", BAD, ids=[b[2] + ":" + b[1] for b in BAD])
def test_bad_routing_refused_with_path_nothing_changes(frr, old, new, path):
    head = frr.head()
    conf = (frr.lab.state / "rendered" / "frr" / "frr.conf").read_bytes()
    before = frr.kernel_state()
    text = frr.client.config().text
    assert old in text
    with pytest.raises(AgentError) as e:
        frr.client.commit(text.replace(old, new, 1), "bad routing")
    assert path in [p["path"] for p in e.value.problems], e.value.problems
    assert frr.head() == head
    assert (frr.lab.state / "rendered" / "frr" / "frr.conf").read_bytes() == conf
    after = frr.kernel_state()
    assert after["ruleset"] == before["ruleset"] and after["addrs"] == before["addrs"]


def test_status_shows_bgp_peers_and_ospf_neighbors(frr):
    """issue 14: BGP peer and OSPF neighbor state in `talgate status` (text and --json), read by the
    agent's thread every few seconds (backend/observe/routing_state.py), never on a status poll."""

    def sessions():
        r = frr.cli("status", "--json", socket=frr.lab.ro_socket)
        routing = json.loads(r.stdout).get("routing") if r.returncode == 0 else None
        return {(s["protocol"], s["peer"]): s for s in (routing or {}).get("sessions", [])}

    def ready():
        s = sessions()
        b4 = s.get(("bgp", "198.51.100.1"))
        return s if b4 and b4["state"] == "Established" and b4["accepted"] and b4["sent"] and any(
            k[0] == "ospf" and v["state"].startswith("Full") for k, v in s.items()) and any(
            k[0] == "ospfv3" and v["state"].startswith("Full") for k, v in s.items()) else None

    s = wait(ready, 20)
    assert s, sessions()
    b4 = s[("bgp", "198.51.100.1")]
    print(f"\nrouting state: {json.dumps(list(s.values()))}")
    assert b4["accepted"] == 1 and b4["uptime"] and b4["remote_as"] == 65002, b4  # the import policy let one in
    assert b4["sent"] == 1, b4  # bgp.networks
    v6 = [v for k, v in s.items() if k[0] == "bgp" and ":" in k[1]]
    assert v6 and v6[0]["state"] == "Established" and v6[0]["accepted"] == 1, v6
    text = frr.cli("status", socket=frr.lab.ro_socket).stdout
    assert re.search(r"routing    bgp 198\.51\.100\.1 Established up \S+ received - accepted 1 sent 1", text), text
    assert re.search(r"routing    ospf \S+ on \S+ Full", text), text
    # a status poll does not run vtysh: 20 polls take far less than 20 vtysh runs would
    from backend.client import AgentClient

    c = AgentClient(frr.lab.ro_socket)
    t0 = time.monotonic()
    for _ in range(20):
        c.status()
    per_poll = (time.monotonic() - t0) / 20
    print(f"status poll with routing state: {per_poll * 1000:.1f} ms")
    assert per_poll < 0.1, per_poll
