"""LAN services without a lab: model checks with paths, pure renderers (and each daemon's own
checker on their output), firewall openings, the lease reader, the applier's file contract."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from backend.host.services import SERVICES, ServiceApplier
from backend.lab.lab import example_config
from backend.lab.supervisor import Daemon, Supervisor
from backend.model import load_config, validate_text
from backend.model.services import PodPaths, ServicePaths
from backend.observe.leases import read_lease_file, read_leases
from backend.render import avahi, chrony, kea, radvd, unbound
from backend.render.nft import render

from .nftcheck import need_nft, nft_in_private_ns

SVC = """
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
  blocklists: [{name: ads, file: /nonexistent/ads.txt}]
ntp:
  serve: [lan]
  servers: [{address: time.example.net, nts: true}]
mdns:
  reflect: [lan, guest]
routing:
  router_id: 198.51.100.2
  ospf: {interfaces: {lan0: {hello: 10, dead: 40}}}
  bgp:
    asn: 65001
    neighbors: [{address: 198.51.100.1, remote_asn: 65002, import: ["203.0.113.0/24 le 32"]}]
"""
TEXT = example_config() + SVC
PATHS = ServicePaths("/r/rendered", "/r/run", "/r/state")


def cfg(text: str = TEXT):
    c, problems = validate_text(text)
    assert c is not None, problems
    return c


def problems(text: str) -> list[str]:
    return [str(p) for p in validate_text(text)[1]]


# ---- model checks ---------------------------------------------------------------------------

BAD = {
    "pool-outside": (("192.168.10.100-192.168.10.199", "192.168.11.10-192.168.11.50"),
                     "dhcp.lan0.ipv4.pools[0]: 192.168.11.10-192.168.11.50 is outside subnet 192.168.10.0/24"),
    "pool-reversed": (("192.168.10.100-192.168.10.199", "192.168.10.199-192.168.10.100"),
                      "dhcp.lan0.ipv4.pools[0]: pool '192.168.10.199-192.168.10.100' is reversed"),
    "pool-router": (("192.168.10.100-192.168.10.199", "192.168.10.1-192.168.10.9"),
                    "dhcp.lan0.ipv4.pools[0]: 192.168.10.1-192.168.10.9 includes the router's own address"),
    "pool6-outside": (("2001:db8:10:10::1000-2001:db8:10:10::1fff", "2001:db8:10:11::1000-2001:db8:10:11::1fff"),
                      "dhcp.lan0.ipv6.pools[0]: 2001:db8:10:11::1000-2001:db8:10:11::1fff is outside subnet"),
    "reservation-outside": (("ipv4: 192.168.10.50,", "ipv4: 192.168.30.50,"),
                            "dhcp.lan0.reservations[0].ipv4: 192.168.30.50 is outside subnet 192.168.10.0/24"),
    "reservation6-outside": (('ipv6: "2001:db8:10:10::50"', 'ipv6: "2001:db8:10:99::50"'),
                             "dhcp.lan0.reservations[0].ipv6: 2001:db8:10:99::50 is outside subnet"),
    "duplicate-mac": (("    reservations:\n", '    reservations:\n      - {name: scan, mac: "02:00:00:00:10:50", '
                                              "ipv4: 192.168.10.51}\n"),
                      "dhcp.lan0.reservations[1].mac: duplicate MAC 02:00:00:00:10:50 (also at dhcp.lan0.reservations[0])"),
    "duplicate-reserved-ip": (("    reservations:\n", '    reservations:\n      - {name: scan, mac: "02:00:00:00:10:51", '
                                                      "ipv4: 192.168.10.50}\n"),
                              "dhcp.lan0.reservations[1].ipv4: 192.168.10.50 is already reserved"),
    "reservation-no-mac": (('mac: "02:00:00:00:10:50", ', ""), "dhcp.lan0.reservations[0]: an ipv4 reservation needs mac"),
    "bad-mac": (('mac: "02:00:00:00:10:50"', 'mac: "02:00:00:00:10"'), "dhcp.lan0.reservations[0].mac"),
    "unknown-interface": (("  guest0:\n    ipv4: {pools", "  guest9:\n    ipv4: {pools"),
                          "dhcp.guest9: unknown interface 'guest9'"),
    "invalid-dns-domain": (("  zones: {lan: allow", "  domain: -bad-.example\n  zones: {lan: allow"),
                           "dns.domain: invalid domain name '-bad-.example'"),
    "invalid-option-domain": (("lease_time: 600}", "lease_time: 600, domain: 'a b'}"),
                              "dhcp.lan0.ipv4.domain: invalid domain name 'a b'"),
    "dns-unknown-zone": (("guest: refuse}", "guests: refuse}"), "dns.zones.guests: unknown zone 'guests'"),
    "ntp-unknown-zone": (("serve: [lan]", "serve: [lan, dmz]"), "ntp.serve[1]: unknown zone 'dmz'"),
    "mdns-one-zone": (("reflect: [lan, guest]", "reflect: [lan]"), "mdns.reflect: reflection needs at least two zones"),
    "relative-blocklist": (("file: /nonexistent/ads.txt", "file: ads.txt"), "dns.blocklists[0].file"),
    "ra-no-v6": (("ra:\n  lan0: {}", "ra:\n  wan0: {}\n  lan0: {}"), None),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_names_its_path(case):
    (old, new), expected = BAD[case]
    assert old in TEXT, case
    got = problems(TEXT.replace(old, new, 1))
    if expected is None:  # accepted (wan0 has IPv6)
        assert not [p for p in got if "warning" not in p], got
        return
    assert any(p.startswith(expected) for p in got), got


def test_example_with_services_is_clean():
    assert problems(TEXT) == []


def test_ra_without_ipv6_is_refused():
    text = TEXT.replace("  mgmt0:\n    ipv4: [192.168.99.1/24]\n    ipv6: [2001:db8:10:99::1/64]",
                        "  mgmt0:\n    ipv4: [192.168.99.1/24]").replace("ra:\n  lan0: {}", "ra:\n  mgmt0: {}")
    assert "ra.mgmt0: interface mgmt0 has no IPv6 address to advertise a prefix from" in problems(text)


def test_schema_knows_the_service_sections():
    from backend.model.load import json_schema

    props = json_schema()["properties"]
    assert {"dhcp", "ra", "dns", "ntp", "mdns"} <= set(props)


# ---- renderers --------------------------------------------------------------------------


def render_all(c, paths=PATHS, blocklists=None):
    return {
        "kea-dhcp4": kea.render_dhcp4(c, paths),
        "kea-dhcp6": kea.render_dhcp6(c, paths),
        "unbound": unbound.render_unbound(c, paths, blocklists or {}),
        "radvd": radvd.render_radvd(c),
        "chrony": chrony.render_chrony(c, paths),
        "avahi": avahi.render_avahi(c),
    }


def test_renderers_are_deterministic_and_off_when_not_configured():
    assert render_all(cfg()) == render_all(cfg())
    assert set(render_all(load_config(example_config())).values()) == {None}


def test_kea_dhcp4():
    d = json.loads(kea.render_dhcp4(cfg(), PATHS))["Dhcp4"]
    assert d["interfaces-config"]["interfaces"] == ["guest0", "lan0"]
    assert d["control-socket"]["socket-name"] == "/r/run/kea-dhcp4/kea-dhcp4.sock"
    assert d["lease-database"]["name"] == "/r/state/kea/kea-leases4.csv"
    lan = next(s for s in d["subnet4"] if s["interface"] == "lan0")
    assert lan["subnet"] == "192.168.10.0/24" and lan["pools"] == [{"pool": "192.168.10.100 - 192.168.10.199"}]
    assert lan["id"] == kea.subnet_id("lan0", "192.168.10.0/24")
    assert lan["reservations"] == [{"hw-address": "02:00:00:00:10:50", "ip-address": "192.168.10.50",
                                    "hostname": "printer"}]
    opts = {o["name"]: o["data"] for o in lan["option-data"]}
    # dns serves lan, ntp serves lan: the router's address is handed out for both.
    assert opts == {"routers": "192.168.10.1", "domain-name-servers": "192.168.10.1", "ntp-servers": "192.168.10.1",
                    "domain-name": "lan.example", "domain-search": "lan.example"}
    guest = next(s for s in d["subnet4"] if s["interface"] == "guest0")
    gopts = {o["name"] for o in guest["option-data"]}
    assert "domain-name-servers" not in gopts and "ntp-servers" not in gopts  # guest is refused / not served


def test_kea_dhcp6_and_pod_paths():
    d = json.loads(kea.render_dhcp6(cfg(), PodPaths()))["Dhcp6"]
    assert d["control-socket"]["socket-name"] == "/run/kea/kea-dhcp6.sock"  # manifests/services/kea
    assert d["lease-database"]["name"] == "/var/lib/kea/kea-leases6.csv"
    assert d["data-directory"] == "/var/lib/kea"  # writable: Kea 2.2 keeps its server-id there
    (s,) = d["subnet6"]
    assert s["reservations"] == [{"duid": "00:03:00:01:02:00:00:00:10:50", "ip-addresses": ["2001:db8:10:10::50"],
                                  "hostname": "printer"}]
    assert {o["name"]: o["data"] for o in s["option-data"]}["dns-servers"] == "2001:db8:10:10::1"


def test_unbound_blocklists_access_and_names():
    text = unbound.render_unbound(cfg(), PATHS, {"ads": "# c\nads.example\nx.y.example  # t\nnot_a_domain\nlocalhost\n"})
    assert 'local-zone: "ads.example." always_nxdomain' in text
    assert 'local-zone: "x.y.example." always_nxdomain' in text
    assert "not_a_domain" not in text and '"localhost.' not in text
    assert "access-control: 192.168.10.0/24 allow" in text and "access-control: 192.168.20.0/24 refuse" in text
    assert "access-control: 198.51.100.0/24" not in text and "interface: 198.51.100.2" not in text
    assert "interface: 192.168.10.1" in text and "interface: 0.0.0.0" not in text
    assert 'local-data: "printer.lan.example. 300 IN A 192.168.10.50"' in text
    assert 'local-data: "50.10.168.192.in-addr.arpa. 300 IN PTR printer.lan.example."' in text
    assert 'control-interface: "/r/run/unbound/control.sock"' in text
    assert unbound.parse_blocklist("0.0.0.0 a.example b.example\n127.0.0.1 localhost\n", "hosts") == \
        ["a.example", "b.example"]


def test_unbound_lease_names_never_shadow_reservations():
    leases = [unbound.LeaseName("Printer", "192.168.10.120"), unbound.LeaseName("My Laptop", "192.168.10.121"),
              unbound.LeaseName("phone.lan.example", "2001:db8:10:10::1001")]
    recs = unbound.host_records(cfg(), leases)
    assert ("printer.lan.example", "192.168.10.120") not in recs
    assert ("my-laptop.lan.example", "192.168.10.121") in recs
    assert ("phone.lan.example", "2001:db8:10:10::1001") in recs


def test_unbound_forwarders_with_tls():
    text = TEXT.replace("  zones: {lan: allow", "  mode: forward\n  forwarders: [{address: 9.9.9.9, tls_name: "
                                                "dns.quad9.net}, {address: '2620:fe::fe', tls_name: dns.quad9.net}]\n"
                                                "  zones: {lan: allow")
    out = unbound.render_unbound(cfg(text), PATHS, {})
    assert "forward-addr: 9.9.9.9@853#dns.quad9.net" in out and "forward-tls-upstream: yes" in out
    assert "mode forward needs forwarders" in " ".join(problems(TEXT.replace("  zones: {lan: allow",
                                                                              "  mode: forward\n  zones: {lan: allow")))


def test_radvd_chrony_avahi():
    r = radvd.render_radvd(cfg())
    assert "interface lan0 {" in r and "prefix 2001:db8:10:10::/64" in r and "RDNSS 2001:db8:10:10::1" in r
    assert "DNSSL lan.example" in r and "AdvManagedFlag off;" in r and "guest0" not in r
    c = chrony.render_chrony(cfg(), PATHS)
    assert "server time.example.net iburst nts" in c and "allow 192.168.10.0/24" in c
    assert "allow 192.168.20.0/24" not in c and "ntsserverkey" not in c
    c2 = chrony.render_chrony(cfg(TEXT.replace("serve: [lan]", "serve: [lan]\n  nts_server: true")), PATHS)
    assert "ntsserverkey /r/rendered/chrony/nts.key" in c2 and "ntsservercert /r/rendered/chrony/nts.crt" in c2
    a = avahi.render_avahi(cfg())
    assert "allow-interfaces=guest0,lan0" in a and "enable-dbus=no" in a and "enable-reflector=yes" in a


def test_supervisor_runs_chronyd_with_x_and_kea_with_private_pid_dirs(tmp_path):
    sup = Supervisor(tmp_path)
    assert "-x" in Daemon(sup, "chrony").argv()
    assert Daemon(sup, "unbound").argv()[:3] == ["unbound", "-d", "-p"]
    assert "avahi-daemon --no-drop-root --no-chroot" in " ".join(Daemon(sup, "avahi").argv())


def _which_all(*names):
    miss = [n for n in names if not shutil.which(n) and not Path("/usr/sbin", n).exists()]
    if miss:
        pytest.skip(f"needs {', '.join(miss)} (make install)")


def test_daemons_own_checkers_accept_the_rendered_configs(tmp_path):
    _which_all("unbound-checkconf", "radvd", "chronyd", "kea-dhcp4", "kea-dhcp6")
    p = ServicePaths(str(tmp_path / "rendered"), str(tmp_path / "run"), str(tmp_path / "state"))
    for d in ("run/unbound", "state/kea", "run/kea-dhcp4", "run/kea-dhcp6"):
        (tmp_path / d).mkdir(parents=True)
    out = render_all(cfg(), p, {"ads": "ads.example\n"})
    files = {}
    for svc, text in out.items():
        f = tmp_path / SERVICES[svc][0]
        f.write_text(text)
        files[svc] = f
    for cmd in (["unbound-checkconf", files["unbound"]], ["radvd", "-c", "-C", files["radvd"]],
                ["chronyd", "-p", "-f", files["chrony"]]):
        r = subprocess.run([str(x) for x in cmd], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, (cmd[0], r.stdout[-500:], r.stderr[-500:])
    need_nft()  # root + unshare: Kea checks its interfaces exist, so give it lan0/guest0 in a private netns
    env = f"KEA_PIDFILE_DIR={tmp_path} KEA_LOCKFILE_DIR={tmp_path}"
    script = ("ip link add lan0 type veth peer name lan0p && ip link add guest0 type veth peer name guest0p && "
              f"env {env} kea-dhcp4 -t {files['kea-dhcp4']} && env {env} kea-dhcp6 -t {files['kea-dhcp6']}")
    r = nft_in_private_ns(script)
    assert r.returncode == 0, r.stdout[-1500:] + r.stderr[-500:]
    # … and Kea refuses a listed interface that does not exist.
    r = nft_in_private_ns(f"env {env} kea-dhcp4 -t {files['kea-dhcp4']}")
    assert r.returncode != 0 and "doesn't exist" in r.stdout + r.stderr


# ---- firewall -------------------------------------------------------------------------------


def _chain(rs, name):
    return next(c for c in rs.chains if c.name == name)


def test_firewall_opens_exactly_the_services_of_each_zone():
    rs = render(cfg())
    comments = {z: [r.comment for r in _chain(rs, f"zone_{z}_in").rules] for z in ("lan", "guest", "wan", "mgmt")}
    assert [c for c in comments["lan"] if c.startswith("service")] == [
        "service dhcp", "service dhcpv6", "service dns", "service dns", "service ntp", "service mdns",
        "service ospf"]
    assert [c for c in comments["guest"] if c.startswith("service")] == [
        "service dhcp", "service dns", "service dns", "service mdns"]
    # routing: BGP from its neighbor in wan (tcp/179 from that address only), OSPF on lan0.
    assert [c for c in comments["wan"] if c.startswith("service")] == ["service bgp"]
    assert "ip saddr 198.51.100.1 meta l4proto tcp tcp dport 179" in _chain(rs, "zone_wan_in").rules[-2].text()
    assert not [c for c in comments["mgmt"] if c.startswith("service")]
    # After the user's rules, before the zone default.
    lan = comments["lan"]
    assert lan.index("rule ping-router") < lan.index("service dhcp") < lan.index("zone lan input")
    # Nothing at all without service sections.
    assert not [r for c in render(load_config(example_config())).chains for r in c.rules
                if r.comment.startswith("service")]


def test_firewall_openings_are_accepted_by_nft():
    need_nft()
    r = nft_in_private_ns("nft -c -f -", render(cfg()).text())
    assert r.returncode == 0, r.stderr


def test_dns_deny_zone_gets_no_opening():
    rs = render(cfg(TEXT.replace("guest: refuse}", "guest: deny}")))
    assert "service dns" not in [r.comment for r in _chain(rs, "zone_guest_in").rules]


# ---- leases -----------------------------------------------------------------------------------

V4 = """address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context
192.168.10.100,02:aa:00:00:00:01,,600,{t1},7,0,0,old-name,0,
192.168.10.101,02:aa:00:00:00:02,,600,{t1},7,0,0,gone,0,
192.168.10.100,02:aa:00:00:00:01,,600,{t2},7,0,0,laptop&#x2c x,0,
192.168.10.101,02:aa:00:00:00:02,,0,0,7,0,0,gone,0,
192.168.10.102,02:aa:00:00:00:03,,600,{t0},7,0,0,expired,0,
192.168.10.103,02:aa:00:00:00:04,,600,{t1},7,0,0,declined,1,
"""
V6 = """address,duid,valid_lifetime,expire,subnet_id,pref_lifetime,lease_type,iaid,prefix_len,fqdn_fwd,fqdn_rev,hostname,hwaddr,state,user_context,hwtype,hwaddr_source
2001:db8:10:10::1000,00:01:00:01:aa:bb,3600,{t2},9,2250,0,1,128,0,0,laptop.lan.example.,02:aa:00:00:00:01,0,,1,2
"""


def test_lease_files_last_row_wins(tmp_path):
    now = time.time()
    t = {"t0": int(now - 10), "t1": int(now + 100), "t2": int(now + 500)}
    (tmp_path / "kea-leases4.csv").write_text(V4.format(**t))
    (tmp_path / "kea-leases6.csv").write_text(V6.format(**t))
    got = read_leases(tmp_path, {7: "lan0", 9: "lan0"}, now=now)
    assert [(x["family"], x["address"], x["hostname"]) for x in got] == [
        (4, "192.168.10.100", "laptop, x"), (6, "2001:db8:10:10::1000", "laptop.lan.example")]
    v4, v6 = got
    assert v4 == {"family": 4, "address": "192.168.10.100", "hostname": "laptop, x", "expires": t["t2"],
                  "interface": "lan0", "state": "active", "subnet_id": 7, "hwaddr": "02:aa:00:00:00:01",
                  "client_id": None}
    assert v6["duid"] == "00:01:00:01:aa:bb" and v6["interface"] == "lan0" and v6["type"] == "address"
    states = {x["address"]: x["state"] for x in read_lease_file(tmp_path / "kea-leases4.csv", 4, now=now,
                                                                   include_expired=True)}
    assert states == {"192.168.10.100": "active", "192.168.10.102": "expired", "192.168.10.103": "declined"}


def test_lease_files_after_cleanup_rotation(tmp_path):
    now = time.time()
    hdr = V4.splitlines()[0] + "\n"
    (tmp_path / "kea-leases4.csv.2").write_text(hdr + f"192.168.10.5,02:aa:00:00:00:09,,600,{int(now) + 50},7,0,0,a,0,\n")
    (tmp_path / "kea-leases4.csv").write_text(hdr + f"192.168.10.5,02:aa:00:00:00:09,,600,{int(now) + 90},7,0,0,b,0,\n")
    (got,) = read_leases(tmp_path, now=now)
    assert got["hostname"] == "b" and got["expires"] == int(now) + 90
    assert read_leases(tmp_path / "missing") == []


# ---- the applier's file contract --------------------------------------------------------------


def test_applier_writes_bumps_generation_is_idempotent_and_removes(tmp_path, monkeypatch):
    bl = tmp_path / "ads.txt"
    bl.write_text("ads.example\n")
    text = TEXT.replace("/nonexistent/ads.txt", str(bl)).replace(
        "  servers: [{address: time.example.net, nts: true}]\n", "")
    a = ServiceApplier(tmp_path / "rendered")
    assert a.paths == ServicePaths(str(tmp_path / "rendered"), str(tmp_path / "run"), str(tmp_path / "state"))
    c = cfg(text)
    assert a.apply(c) == 7
    for svc, (name, _) in SERVICES.items():
        assert (tmp_path / "rendered" / svc / name).exists()
        assert (tmp_path / "rendered" / svc / ".generation").read_text() == "1\n"
    assert oct(os.stat(tmp_path / "run/chrony").st_mode & 0o777) == "0o750"
    assert a.apply(c) == 0  # idempotent: nothing rewritten, no generation bump
    assert (tmp_path / "rendered/unbound/.generation").read_text() == "1\n"
    # The reload of a daemon that is not running yet is not an error: it reads the file on start.
    assert a.last_reload["kea-dhcp4"]["ok"] is None
    # Switching mdns off removes its config and bumps the generation (its runner stops it).
    off = text.replace("mdns:\n  reflect: [lan, guest]\n", "")
    assert a.apply(cfg(off)) == 1
    assert not (tmp_path / "rendered/avahi/avahi-daemon.conf").exists()
    assert (tmp_path / "rendered/avahi/.generation").read_text() == "2\n"
    st = a.status()
    assert {k: st["avahi"][k] for k in ("configured", "generation", "state")} == {
        "configured": False, "generation": 2, "state": "off"}
    assert st["unbound"]["configured"] is True


def test_applier_refuses_an_unreadable_blocklist_with_its_path(tmp_path):
    a = ServiceApplier(tmp_path / "rendered")
    (p,) = a.check(cfg())
    assert p.path == "dns.blocklists[0].file" and "cannot read /nonexistent/ads.txt" in p.message
    assert not (tmp_path / "rendered" / "unbound").exists()


def test_applier_on_talos_names_the_pods_paths(tmp_path):
    assert isinstance(ServiceApplier("/var/lib/talgate/rendered").paths, PodPaths)  # the agent's container
    a = ServiceApplier("/var/mnt/talgate/rendered")
    assert isinstance(a.paths, PodPaths)
    assert a.host_path("/run/kea/kea-dhcp4.sock") == Path("/var/mnt/talgate/run/kea/kea-dhcp4.sock")
    assert a.host_path("/etc/talgate/chrony/nts.key") == Path("/var/mnt/talgate/rendered/chrony/nts.key")
    assert a.host_path("/var/lib/kea/kea-leases4.csv") == Path("/var/mnt/talgate/state/kea/kea-leases4.csv")
    u = unbound.render_unbound(cfg(), a.paths, {})
    assert 'control-interface: "/run/unbound/control.sock"' in u  # manifests/services/unbound
    assert "bindcmdaddress /run/chrony/chronyd.sock" in chrony.render_chrony(cfg(), a.paths)


def test_leases_endpoint(tmp_path):
    from types import SimpleNamespace

    from backend.agent.service import KernelReaders, Service
    from backend.api.models import Caller
    from backend.api.routes import BY_KEY

    now = time.time()
    a = ServiceApplier(tmp_path / "rendered")
    a._cfg = cfg()
    (tmp_path / "state/kea").mkdir(parents=True)
    sid = kea.subnet_id("lan0", "192.168.10.0/24")
    (tmp_path / "state/kea/kea-leases4.csv").write_text(
        V4.splitlines()[0] + f"\n192.168.10.100,02:aa:00:00:00:01,,600,{int(now) + 300},{sid},0,0,laptop,0,\n")
    p = SimpleNamespace(services=a)
    service = Service(p, KernelReaders(p, start_sampler=False))
    route = BY_KEY[("GET", "/leases")]
    assert not route.write  # a read: answers on the read-only socket too
    (x,) = service.leases(Caller(0, 0, "root", read_only=True)).model_dump()["leases"]
    assert (x["family"], x["address"], x["hostname"], x["hwaddr"], x["interface"], x["state"]) == (
        4, "192.168.10.100", "laptop", "02:aa:00:00:00:01", "lan0", "active")
    assert x["expires"] == int(now) + 300
