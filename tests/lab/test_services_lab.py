"""LAN services in the lab with real Debian clients: Kea (dhclient -4/-6), Unbound (dig), radvd
(rdisc6 + SLAAC), chrony (an NTP client query), avahi (mDNS reflection), all run by the lab's
supervisor inside tg-router and reloaded by the agent. One lab for the whole module."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backend.client import AgentError
from backend.lab.lab import example_config

from .conftest import new_lab
from .util import LabHelper

pytestmark = pytest.mark.lab

DAEMONS = ("kea-dhcp4", "kea-dhcp6", "unbound", "radvd", "chronyd", "avahi-daemon", "dhclient", "dig", "rdisc6")
RESERVED_MAC = "02:00:00:00:10:50"

SERVICES = """
dhcp:
  lan0:
    ipv4: {pools: [192.168.10.100-192.168.10.199], lease_time: 600}
    ipv6: {pools: ["2001:db8:10:10::1000-2001:db8:10:10::1fff"]}
    reservations:
      - {name: printer, mac: "02:00:00:00:10:50", ipv4: 192.168.10.50,
         duid: "00:03:00:01:02:00:00:00:10:50", ipv6: "2001:db8:10:10::50"}
  guest0:
    ipv4: {pools: [192.168.20.100-192.168.20.199]}
ra:
  lan0: {}
dns:
  zones: {lan: allow, guest: refuse}
  blocklists:
    - {name: ads, file: BLOCKLIST_DOMAINS}
    - {name: trackers, file: BLOCKLIST_HOSTS, format: hosts}
ntp:
  serve: [lan]
  servers: [{address: 198.51.100.1}]
  nts_server: true
mdns:
  reflect: [lan, guest]
"""

PROBE = r'''
import json, socket, struct, sys, time

def ntp(addr, timeout):
    s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    now = time.time() + 2208988800
    pkt = bytes([0x23]) + bytes(39) + struct.pack("!II", int(now), int((now % 1) * 2**32))
    s.sendto(pkt, (addr, 123))
    try:
        data, _ = s.recvfrom(512)
    except OSError:
        return {"reply": False}
    return {"reply": True, "mode": data[0] & 7, "li": data[0] >> 6, "stratum": data[1],
            "origin_ok": data[24:32] == pkt[40:48],
            "offset": struct.unpack("!I", data[40:44])[0] - 2208988800 - time.time()}

def qname(name):
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"

SERVICE = "_tgprobe._tcp.local"

def msock(local):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("", 5353))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton("224.0.0.251") + socket.inet_aton(local))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(local))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    s.settimeout(0.3)
    return s

def announce(local, instance, seconds):
    s = msock(local)
    target = qname(instance + "." + SERVICE)
    resp = struct.pack("!HHHHHH", 0, 0x8400, 0, 1, 0, 0) + qname(SERVICE) + struct.pack("!HHIH", 12, 1, 120, len(target)) + target
    end, last = time.time() + seconds, 0
    while time.time() < end:
        if time.time() - last > 1:
            s.sendto(resp, ("224.0.0.251", 5353)); last = time.time()
        try:
            data, _ = s.recvfrom(9000)
        except OSError:
            continue
        if qname(SERVICE) in data and not struct.unpack("!H", data[2:4])[0] & 0x8000:
            s.sendto(resp, ("224.0.0.251", 5353))
    return {"announced": True}

def browse(local, instance, seconds):
    s = msock(local)
    q = struct.pack("!HHHHHH", 0, 0, 1, 0, 0, 0) + qname(SERVICE) + struct.pack("!HH", 12, 1)
    end, last = time.time() + seconds, 0
    while time.time() < end:
        if time.time() - last > 0.5:
            s.sendto(q, ("224.0.0.251", 5353)); last = time.time()
        try:
            data, peer = s.recvfrom(9000)
        except OSError:
            continue
        if instance.encode() in data and struct.unpack("!H", data[2:4])[0] & 0x8000:
            return {"found": True, "from": peer[0]}
    return {"found": False}

k = sys.argv[1]
if k == "ntp":
    print(json.dumps(ntp(sys.argv[2], float(sys.argv[3]))))
elif k == "announce":
    print(json.dumps(announce(sys.argv[2], sys.argv[3], float(sys.argv[4]))))
else:
    print(json.dumps(browse(sys.argv[2], sys.argv[3], float(sys.argv[4]))))
'''


def _missing() -> list[str]:
    return [d for d in DAEMONS if shutil.which(d) is None and not Path("/usr/sbin", d).exists()]


class SvcLab(LabHelper):
    def __init__(self, lab, work: Path, config: str):
        super().__init__(lab)
        self.work = work
        self.config = config
        self.probe_py = work / "probe.py"
        self.probe_py.write_text(PROBE)
        self.dhclients: list[int] = []

    def probe(self, host: str, *args: str, timeout: float = 20) -> dict:
        r = self.lab.run(host, [sys.executable, str(self.probe_py), *args], timeout=timeout)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def dig(self, host: str, server: str, *q: str) -> subprocess.CompletedProcess:
        return self.lab.run(host, ["dig", "+time=2", "+tries=1", f"@{server}", *q], timeout=15)

    def short(self, host: str, server: str, *q: str) -> list[str]:
        return self.lab.run(host, ["dig", "+short", "+time=2", "+tries=1", f"@{server}", *q],
                            timeout=15).stdout.split()

    def dhclient(self, family: int, tag: str, duid: str | None = None) -> str:
        """Run dhclient once on lan's eth0; returns the bound address (from its lease file)."""
        conf = self.work / f"dhclient-{tag}.conf"
        conf.write_text('send host-name "laptop";\n' if family == 4 else 'send fqdn.fqdn "laptop";\n'
                        'send fqdn.server-update off;\n')
        lf, pf = self.work / f"dh-{tag}.leases", self.work / f"dh-{tag}.pid"
        if duid:  # dhclient takes its DUID from the lease file
            octets = "".join(f"\\{int(b, 16):03o}" for b in duid.split(":"))
            lf.write_text(f'default-duid "{octets}";\n')
        args = ["dhclient", f"-{family}", "-1", "-v", "-cf", str(conf), "-lf", str(lf), "-pf", str(pf),
                "-sf", "/bin/true", "eth0"]
        r = self.lab.run("lan", args, timeout=60)
        try:
            self.dhclients.append(int(pf.read_text()))
        except (OSError, ValueError):
            pass
        assert r.returncode == 0, r.stderr[-2000:]
        self.stop_dhclients()
        key = "fixed-address" if family == 4 else "iaaddr"
        lines = [ln.split()[1].rstrip(";") for ln in lf.read_text().splitlines() if ln.strip().startswith(key)]
        assert lines, lf.read_text()
        return lines[-1]

    def stop_dhclients(self) -> None:
        while self.dhclients:
            pid = self.dhclients.pop()
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def commit(self, text: str, msg: str) -> dict:
        return self.client.commit(text, msg)

    def wait(self, fn, timeout: float = 15.0, interval: float = 0.2):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = fn()
            if last:
                return last
            time.sleep(interval)
        return last

    def rendered(self) -> dict[str, str]:
        base = self.lab.state / "rendered"
        return {str(p.relative_to(base)): p.read_text() for p in sorted(base.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    missing = _missing()
    if missing:
        pytest.skip(f"LAN-service tests need {', '.join(missing)} (make install installs them)")
    work = tmp_path_factory.mktemp("svc")
    (work / "ads.txt").write_text("# ads\nads.example\nbanner.ads2.example\n")
    (work / "trackers.txt").write_text("0.0.0.0 tracker.example.com\n127.0.0.1 localhost\n")
    text = example_config() + SERVICES.replace("BLOCKLIST_DOMAINS", str(work / "ads.txt")).replace(
        "BLOCKLIST_HOSTS", str(work / "trackers.txt"))
    lab = new_lab(tmp_path_factory, text)
    h = SvcLab(lab, work, text)
    try:
        lan = ("kea-dhcp4", "kea-dhcp6", "unbound", "radvd", "chrony", "avahi")  # frr: off (no routing)
        st = h.wait(lambda: all(lab.services().get(n, {}).get("state") == "running" for n in lan)
                    and lab.services(), 20)
        assert st, lab.services()
        yield h
    finally:
        h.stop_dhclients()
        lab.down()


def test_rendered_configs_pass_each_daemons_checker(svc):
    base = svc.lab.state / "rendered"
    for svc_name, f in [("kea-dhcp4", "kea-dhcp4.conf"), ("kea-dhcp6", "kea-dhcp6.conf"), ("unbound", "unbound.conf"),
                        ("radvd", "radvd.conf"), ("chrony", "chrony.conf"), ("avahi", "avahi-daemon.conf")]:
        assert (base / svc_name / f).exists(), svc_name
        assert (base / svc_name / ".generation").read_text().strip() >= "1"
    env = {"KEA_PIDFILE_DIR": str(svc.work), "KEA_LOCKFILE_DIR": str(svc.work), "PATH": os.environ["PATH"]}
    checks = [["kea-dhcp4", "-t", str(base / "kea-dhcp4/kea-dhcp4.conf")],
              ["kea-dhcp6", "-t", str(base / "kea-dhcp6/kea-dhcp6.conf")],
              ["unbound-checkconf", str(base / "unbound/unbound.conf")],
              ["radvd", "-c", "-C", str(base / "radvd/radvd.conf")],
              ["chronyd", "-p", "-f", str(base / "chrony/chrony.conf")]]
    for cmd in checks:  # inside the router's namespace: Kea checks that its interfaces exist
        r = subprocess.run(svc.lab.exec_args("router", ["env", *[f"{k}={v}" for k, v in env.items()], *cmd]),
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, f"{cmd[0]}: {r.stdout[-800:]} {r.stderr[-800:]}"
    chrony = (base / "chrony/chrony.conf").read_text()
    assert "allow 192.168.10.0/24" in chrony and "192.168.20." not in chrony and "ntsserverkey" in chrony
    unbound = (base / "unbound/unbound.conf").read_text()
    assert 'username: ""' in unbound and 'chroot: ""' in unbound and "interface: 0.0.0.0" not in unbound
    assert "enable-dbus=no" in (base / "avahi/avahi-daemon.conf").read_text()
    # The NTS certificate is issued by the box CA.
    ca = svc.lab.state / "state/ca/ca.crt"
    r = subprocess.run(["openssl", "verify", "-CAfile", str(ca), str(base / "chrony/nts.crt")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # The firewall opens exactly the services each zone uses.
    ruleset = svc.router("nft", "list", "chain", "inet", "talgate", "zone_lan_in")
    for c in ('"service dhcp"', '"service dhcpv6"', '"service dns"', '"service ntp"', '"service nts"',
              '"service mdns"'):
        assert c in ruleset, c
    guest = svc.router("nft", "list", "chain", "inet", "talgate", "zone_guest_in")
    assert '"service dns"' in guest and '"service mdns"' in guest and '"service ntp"' not in guest
    wan = svc.router("nft", "list", "chain", "inet", "talgate", "zone_wan_in")
    assert "service" not in wan


def leases4(svc) -> tuple[str, str]:
    """(pool address, reserved address) of lan's DHCPv4 leases, taken once per lab (so every test
    that needs live leases also passes alone)."""
    if getattr(svc, "pool4", None) is None:
        svc.pool4 = svc.dhclient(4, "pool")
        mac = svc.lab.run("lan", ["cat", "/sys/class/net/eth0/address"]).stdout.strip()
        svc.lab.run("lan", ["ip", "link", "set", "eth0", "address", RESERVED_MAC], check=True)
        try:
            svc.reserved4 = svc.dhclient(4, "reserved")
        finally:
            svc.lab.run("lan", ["ip", "link", "set", "eth0", "address", mac], check=True)
    return svc.pool4, svc.reserved4


def leases6(svc) -> tuple[str, str]:
    """(pool address, DUID-reserved address) of lan's DHCPv6 leases, taken once per lab."""
    if getattr(svc, "pool6", None) is None:
        svc.pool6 = svc.dhclient(6, "v6")
        svc.reserved6 = svc.dhclient(6, "v6-reserved", duid="00:03:00:01:02:00:00:00:10:50")
    return svc.pool6, svc.reserved6


def test_dhcpv4_pool_and_reservation(svc):
    pool, reserved = leases4(svc)
    assert ipaddress.ip_address("192.168.10.100") <= ipaddress.ip_address(pool) <= ipaddress.ip_address("192.168.10.199")
    assert reserved == "192.168.10.50"


def test_dhcpv6_gives_an_address(svc):
    pool, reserved = leases6(svc)
    assert ipaddress.ip_address("2001:db8:10:10::1000") <= ipaddress.ip_address(pool) <= \
        ipaddress.ip_address("2001:db8:10:10::1fff")
    # The reservation by DUID gets its fixed address.
    assert reserved == "2001:db8:10:10::50"


def test_leases_are_listed(svc):
    leases4(svc)
    leases6(svc)
    leases = svc.wait(lambda: [x for x in svc_leases(svc) if x["hostname"] == "laptop"], 10)
    fams = {x["family"] for x in leases}
    assert fams == {4, 6}, leases
    v4 = next(x for x in leases if x["family"] == 4)
    assert v4["address"] == svc.pool4 and v4["interface"] == "lan0" and v4["state"] == "active"
    assert v4["hwaddr"] and v4["expires"] > time.time() + 500
    v6 = next(x for x in leases if x["family"] == 6)
    assert v6["address"] == svc.pool6 and v6["duid"] and v6["interface"] == "lan0"
    r = svc.cli("leases", "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)["leases"]
    assert {(x["family"], x["address"]) for x in got} >= {(4, svc.pool4), (6, svc.pool6), (4, "192.168.10.50")}
    for x in got:
        assert {"family", "address", "hostname", "expires", "interface", "state"} <= set(x)
        assert ("hwaddr" in x) if x["family"] == 4 else ("duid" in x)


def svc_leases(svc) -> list[dict]:
    from backend.observe.leases import read_leases

    return read_leases(svc.lab.state / "state" / "kea", _subnet_ids(svc))


def _subnet_ids(svc) -> dict[int, str]:
    from backend.host.services import ServiceApplier
    from backend.model import load_config

    a = ServiceApplier(svc.lab.state / "rendered")
    cfg = load_config(svc.worktree.read_text())
    return a.subnet_interfaces(cfg)


def test_dns_names_blocklists_and_zone_access(svc):
    leases4(svc)
    leases6(svc)
    r = "192.168.10.1"
    # A reservation: A, AAAA and PTR for both.
    assert svc.short("lan", r, "printer.lan.example", "A") == ["192.168.10.50"]
    assert svc.short("lan", r, "printer.lan.example", "AAAA") == ["2001:db8:10:10::50"]
    assert svc.short("lan", r, "-x", "192.168.10.50") == ["printer.lan.example."]
    assert svc.short("lan", r, "-x", "2001:db8:10:10::50") == ["printer.lan.example."]
    # A live lease's name (v4 and v6), published within seconds, with PTRs.
    assert svc.wait(lambda: svc.short("lan", r, "laptop.lan.example", "A") == [svc.pool4], 10), \
        svc.short("lan", r, "laptop.lan.example", "A")
    assert svc.wait(lambda: svc.short("lan", r, "laptop.lan.example", "AAAA") == [svc.pool6], 10)
    assert svc.short("lan", r, "-x", svc.pool4) == ["laptop.lan.example."]
    assert svc.short("lan", "2001:db8:10:10::1", "-x", svc.pool6) == ["laptop.lan.example."]
    # Blocklists (domains and hosts format; subdomains too) answer NXDOMAIN.
    for name in ("ads.example", "x.ads.example", "banner.ads2.example", "tracker.example.com"):
        out = svc.dig("lan", r, name, "A").stdout
        assert "status: NXDOMAIN" in out, (name, out)
    assert "status: NXDOMAIN" in svc.dig("lan", r, "nobody.lan.example").stdout
    # guest: refused (the config says refuse); wan: nothing at all (not opened, not bound).
    assert "status: REFUSED" in svc.dig("guest", "192.168.20.1", "printer.lan.example").stdout
    assert svc.dig("isp", "198.51.100.2", "printer.lan.example").returncode != 0


def test_router_advertisements_and_slaac(svc):
    r = svc.lab.run("lan", ["rdisc6", "-1", "-w", "1500", "eth0"], timeout=20)
    assert r.returncode == 0, r.stderr
    assert "2001:db8:10:10::/64" in r.stdout and "Recursive DNS server     : 2001:db8:10:10::1" in r.stdout
    assert "lan.example" in r.stdout
    svc.lab.run("lan", ["sysctl", "-qw", "net.ipv6.conf.eth0.accept_ra=1", "net.ipv6.conf.eth0.autoconf=1"],
                check=True)

    def slaac():
        svc.lab.run("lan", ["rdisc6", "-1", "-w", "500", "eth0"], timeout=10)
        out = svc.lab.run("lan", ["ip", "-6", "-j", "addr", "show", "dev", "eth0"]).stdout
        addrs = [a for i in json.loads(out) for a in i.get("addr_info", [])]
        return [a["local"] for a in addrs if a.get("dynamic") and a["local"].startswith("2001:db8:10:10:")
                and a.get("prefixlen") == 64]

    got = svc.wait(slaac, 15, 0.5)
    assert got, svc.lab.run("lan", ["ip", "-6", "addr"]).stdout


def test_ntp_served_to_lan_only(svc):
    for server in ("192.168.10.1", "2001:db8:10:10::1"):
        rep = svc.probe("lan", "ntp", server, "3")
        assert rep["reply"] and rep["mode"] == 4 and rep["origin_ok"], rep
        assert 1 <= rep["stratum"] <= 15 and rep["li"] != 3 and abs(rep["offset"]) < 5, rep
    assert svc.probe("isp", "ntp", "198.51.100.2", "1.5") == {"reply": False}
    assert svc.probe("guest", "ntp", "192.168.20.1", "1.5") == {"reply": False}


def test_nts_served_with_a_certificate_from_the_box_ca(svc):
    conf = svc.work / "chrony-client.conf"
    conf.write_text(f"server 192.168.10.1 iburst nts\nntstrustedcerts {svc.lab.state / 'state/ca/ca.crt'}\n"
                    f"pidfile {svc.work / 'chrony-client.pid'}\ncmdport 0\nport 0\nnosystemcert\n")
    r = svc.lab.run("lan", ["chronyd", "-Q", "-u", "root", "-t", "20", "-f", str(conf)], timeout=40)
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "System clock wrong by" in out, out[-1500:]


def _announce(svc, instance: str, seconds: float) -> subprocess.Popen:
    return subprocess.Popen(svc.lab.exec_args("lan", [sys.executable, str(svc.probe_py), "announce", "192.168.10.10",
                                                     instance, str(seconds)]),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_mdns_reflection_between_listed_zones_only(svc):
    p = _announce(svc, "printer-one", 8)
    try:
        assert svc.probe("guest", "browse", "192.168.20.10", "printer-one", "6")["found"]
        assert not svc.probe("mgmt", "browse", "192.168.99.10", "printer-one", "2")["found"]
    finally:
        p.kill()
        p.wait()
    # Reflect lan <-> mgmt instead, and let guest's DNS be served: the config says so.
    text = svc.config.replace("reflect: [lan, guest]", "reflect: [lan, mgmt]").replace(
        "zones: {lan: allow, guest: refuse}", "zones: {lan: allow, guest: allow}")
    res = svc.commit(text, "mdns lan-mgmt, dns for guest")
    assert res["services"] >= 2, res
    svc.config = text
    assert svc.wait(lambda: svc.lab.services()["avahi"]["generation"] == (
        svc.lab.state / "rendered/avahi/.generation").read_text().strip(), 10)
    time.sleep(1.0)  # avahi's start-up probing
    p = _announce(svc, "printer-two", 10)
    try:
        assert svc.probe("mgmt", "browse", "192.168.99.10", "printer-two", "7")["found"]
        assert not svc.probe("guest", "browse", "192.168.20.10", "printer-two", "2")["found"]
    finally:
        p.kill()
        p.wait()
    assert svc.short("guest", "192.168.20.1", "printer.lan.example") == ["192.168.10.50"]
    st = svc.client.status()["services"]
    assert st["unbound"]["last_reload"]["ok"] is True, st["unbound"]
    # guest's DHCP options changed (DNS is served there now): Kea reloaded through its socket.
    assert st["kea-dhcp4"]["last_reload"]["ok"] is True, st["kea-dhcp4"]


BAD = {
    "pool-outside-subnet": (("192.168.10.100-192.168.10.199", "192.168.11.10-192.168.11.50"),
                            "dhcp.lan0.ipv4.pools[0]: 192.168.11.10-192.168.11.50 is outside subnet 192.168.10.0/24"),
    "reservation-outside": (("ipv4: 192.168.10.50,", "ipv4: 192.168.30.50,"),
                            "dhcp.lan0.reservations[0].ipv4: 192.168.30.50 is outside subnet 192.168.10.0/24"),
    "duplicate-mac": (("    reservations:\n", '    reservations:\n      - {name: scanner, mac: "02:00:00:00:10:50", '
                                              "ipv4: 192.168.10.51}\n"),
                      "dhcp.lan0.reservations[1].mac: duplicate MAC 02:00:00:00:10:50"),
    "invalid-domain": (("  domain: lan.example", "  domain: lan_example!"), "system.domain"),
    "invalid-dns-domain": (("  zones: {lan: allow", "  domain: bad..domain\n  zones: {lan: allow"),
                           "dns.domain: invalid domain name 'bad..domain'"),
    "unreadable-blocklist": (("ads.txt", "no-such-list.txt"), "dns.blocklists[0].file: cannot read"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_service_input_is_refused_and_services_keep_serving(svc, case):
    (old, new), expected = BAD[case]
    assert old in svc.config, case
    text = svc.config.replace(old, new, 1)
    before, head, rendered = svc.kernel_state(), svc.head(), svc.rendered()
    pids = {k: v["pid"] for k, v in svc.lab.services().items()}
    with pytest.raises(AgentError) as e:
        svc.commit(text, f"bad: {case}")
    msgs = [f"{p['path']}: {p['message']}" for p in e.value.problems]
    assert any(m.startswith(expected) for m in msgs), msgs
    assert svc.head() == head and svc.kernel_state() == before and svc.rendered() == rendered
    assert {k: v["pid"] for k, v in svc.lab.services().items()} == pids
    assert svc.short("lan", "192.168.10.1", "printer.lan.example") == ["192.168.10.50"]


def test_killed_daemons_are_restarted_and_serve_again(svc):
    leases4(svc)
    before = svc.lab.services()
    for name in ("unbound", "kea-dhcp4", "chrony"):
        os.kill(before[name]["pid"], signal.SIGKILL)
    for name in ("unbound", "kea-dhcp4", "chrony"):
        st = svc.wait(lambda n=name: (s := svc.lab.services()[n])["state"] == "running"
                      and s["pid"] != before[n]["pid"] and s, 15)
        assert st and st["restarts"] >= before[name]["restarts"] + 1, (name, svc.lab.services()[name])
    assert svc.wait(lambda: svc.short("lan", "192.168.10.1", "printer.lan.example") == ["192.168.10.50"], 10)
    # Lease names come back after Unbound's restart (pushed again through its control socket).
    assert svc.wait(lambda: svc.short("lan", "192.168.10.1", "laptop.lan.example", "A") == [svc.pool4], 10)
    assert svc.wait(lambda: svc.probe("lan", "ntp", "192.168.10.1", "1")["reply"], 15)
    assert svc.dhclient(4, "after-restart") == svc.pool4  # Kea kept the lease (its lease file)
    st = json.loads(svc.cli("status", "--json").stdout)["services"]
    for name in ("kea-dhcp4", "kea-dhcp6", "unbound", "radvd", "chrony", "avahi"):
        assert st[name]["state"] == "running" and st[name]["configured"], (name, st[name])
    assert st["unbound"]["restarts"] >= 1


def test_switching_a_service_off_stops_it_and_closes_the_firewall(svc):
    text = svc.config.replace("ntp:\n  serve: [lan]\n  servers: [{address: 198.51.100.1}]\n  nts_server: true\n", "")
    assert text != svc.config
    svc.commit(text, "no ntp")
    svc.config = text
    assert not (svc.lab.state / "rendered/chrony/chrony.conf").exists()
    assert svc.wait(lambda: svc.lab.services()["chrony"]["state"] == "off", 10)
    assert '"service ntp"' not in svc.router("nft", "list", "chain", "inet", "talgate", "zone_lan_in")
    assert svc.probe("lan", "ntp", "192.168.10.1", "1") == {"reply": False}
    assert svc.client.status()["services"]["chrony"]["state"] == "off"
