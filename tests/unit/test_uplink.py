"""Uplinks that learn their address: the document (dhcp, slaac/dhcpv6/PD, from_delegated), the
document under learned prefixes, and the checks every client report goes through (a hostile
DHCP server's absurd values are refused or bounded, with a message, and nothing dangerous is
installed)."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backend.agent.uplink_lease import MAX_DNS, hook_text, parse
from backend.host.applier import Desired, Facts
from backend.host.network import desired_state
from backend.model.load import validate_text
from backend.model.uplink import effective, resolve
from backend.render.radvd import render_radvd

DOC = Path(__file__).resolve().parents[2] / "backend" / "lab" / "uplink.yaml"
NOW = 1_800_000_000.0
OWN = [("lan0", ipaddress.ip_network("192.168.10.0/24")), ("mgmt0", ipaddress.ip_network("2001:db8:10:99::/64"))]


def doc(**subs) -> str:
    text = DOC.read_text()
    for old, new in subs.items():
        assert old in text
        text = text.replace(old, new)
    return text


def problems(text: str) -> list[str]:
    return [str(p) for p in validate_text(text)[1] if p.severity == "error"]


# -- the document --------------------------------------------------------------------------------


def test_lab_document_is_valid():
    cfg, probs = validate_text(DOC.read_text())
    assert cfg is not None and not [p for p in probs if p.severity == "error"], probs
    wan, lan = cfg.interfaces["wan0"], cfg.interfaces["lan0"]
    assert wan.dhcp4 and wan.ipv4 == [] and wan.v6auto.slaac and wan.v6auto.prefix_delegation.length == 56
    assert lan.ipv6 == [] and [(i, e.subnet) for i, e in lan.delegated] == [(0, 0x10)]


def test_subnet_id_beyond_the_delegated_length_is_refused_with_its_path():
    got = problems(doc(**{"subnet: 0x10, host": "subnet: 0x100, host"}))
    assert got == ["interfaces.lan0.ipv6[0].subnet: subnet id 0x100 is beyond the delegated length: a /56 leaves "
                   "8 bits for /64 subnets (0x0-0xff)"]
    assert problems(doc(**{"length: 56": "length: 60", "subnet: 0x10, host": "subnet: 0xf, host",
                           "{from_delegated: wan0, subnet: 0x10}]": "{from_delegated: wan0, subnet: 0xf}]"})) == []
    got = problems(doc(**{"length: 56": "length: 60"}))
    assert got and got[0].startswith("interfaces.lan0.ipv6[0].subnet:")
    got = problems(doc(**{"{from_delegated: wan0, subnet: 0x10}]": "{from_delegated: wan0, subnet: 0x1000}]"}))
    assert got and got[0].startswith("sets.lan-pd.addresses[0].subnet:")


@pytest.mark.parametrize("sub, path", [
    ({"from_delegated: wan0, subnet: 0x10, host": "from_delegated: wan9, subnet: 0x10, host"},
     "interfaces.lan0.ipv6[0].from_delegated: unknown interface"),
    ({"from_delegated: wan0, subnet: 0x10, host": "from_delegated: mgmt0, subnet: 0x10, host"},
     "interfaces.lan0.ipv6[0].from_delegated: interface mgmt0 does not ask for a delegated prefix"),
    ({'host: "::1"': 'host: "1::1"'}, "interfaces.lan0.ipv6[0].host: 1::1 is not an interface id"),
    ({'host: "::1"': 'host: "::"'}, "interfaces.lan0.ipv6[0].host: ::0 is the subnet-router anycast"),
    ({"ipv4: dhcp": "ipv4: dhcpx"}, "interfaces.wan0.ipv4[0]: Input is not a valid IPv4 interface"),
    ({"prefix_delegation: {length: 56}": "prefix_delegation: {length: 1}"},
     "interfaces.wan0.ipv6.prefix_delegation.length: Input should be greater than or equal to 48"),
    ({"slaac: true": "slaac: true, stateless: 1"}, "interfaces.wan0.ipv6.stateless: unknown key"),
    ({"name: ssh-from-mgmt,": "name: talgate-dhcpv6-client-wan0,"}, "rules[0].name: 'talgate-dhcpv6-client-wan0' is "
                                                                    "reserved"),
    ({"dhcp:\n": "dhcp:\n  wan0: {ipv4: {pools: [10.0.0.10-10.0.0.20]}}\n"}, "dhcp.wan0:"),
])
def test_bad_uplink_documents_name_their_path(sub, path):
    got = problems(doc(**sub))
    assert any(p.startswith(path) for p in got), got


def test_two_lans_on_the_same_delegated_subnet_are_refused():
    text = doc(**{"  mgmt0:\n    ipv4: [192.168.99.1/24]\n    ipv6: [2001:db8:10:99::1/64]":
                  "  mgmt0:\n    ipv4: [192.168.99.1/24]\n    ipv6: [{from_delegated: wan0, subnet: 16}]"})
    assert any(p.startswith("interfaces.mgmt0.ipv6[0].subnet: subnet 0x10 of wan0's prefix is already used at "
                            "interfaces.lan0.ipv6[0]") for p in problems(text))


# -- the document under learned facts ----------------------------------------------------------------


def test_effective_document_follows_the_delegated_prefix():
    cfg = validate_text(DOC.read_text())[0]
    bare = effective(cfg)
    assert bare.interfaces["lan0"].ipv6 == [] and bare.sets["lan-pd"].addresses == []
    assert bare.rules[0].name == "talgate-dhcpv6-client-wan0"  # DHCPv6 replies reach the client
    a = effective(cfg, {"wan0": ("2001:db8:4000:100::/56",)})
    assert [str(x) for x in a.interfaces["lan0"].ipv6] == ["2001:db8:4000:110::1/64"]
    assert a.sets["lan-pd"].addresses == ["2001:db8:4000:110::/64"]
    b = effective(a, {"wan0": ("2001:db8:5000::/56",)}, {"wan0": ("2001:db8:4000:100::/56",)})
    assert [str(x) for x in b.interfaces["lan0"].ipv6] == ["2001:db8:5000:10::1/64"]  # from the source, not a
    assert b.sets["lan-pd"].addresses == ["2001:db8:5000:10::/64"]
    radvd = render_radvd(b)
    assert "prefix 2001:db8:5000:10::/64 {" in radvd
    old = radvd.split("prefix 2001:db8:4000:110::/64 {", 1)[1].split("};", 1)[0]
    assert "AdvPreferredLifetime 0;" in old
    assert cfg.interfaces["lan0"].ipv6 == []  # the document itself is untouched
    if shutil.which("radvd"):
        f = Path(os.environ.get("TMPDIR", "/tmp")) / f"radvd-{os.getpid()}.conf"
        f.write_text(radvd)
        try:
            r = subprocess.run(["radvd", "-c", "-C", str(f)], capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
        finally:
            f.unlink()


def test_isp_delegating_less_than_the_hint_places_nothing_and_says_why():
    cfg = validate_text(DOC.read_text())[0]
    items, probs = resolve(cfg, {"wan0": ("2001:db8:4000:100::/60",)})
    assert items == {} and probs == ["interfaces.lan0.ipv6[0]: subnet id 0x10 does not fit the delegated "
                                     "2001:db8:4000:100::/60", "sets.lan-pd.addresses[0]: subnet id 0x10 does not "
                                     "fit the delegated 2001:db8:4000:100::/60"]
    assert effective(cfg, {"wan0": ("2001:db8:4000:100::/60",)}).interfaces["lan0"].ipv6 == []


def test_desired_state_under_facts():
    cfg = validate_text(DOC.read_text())[0]
    facts = Facts(addresses={"wan0": ("198.51.100.150/24",)}, gateways={"wan0": ("198.51.100.1",)},
                  delegated={"wan0": ("2001:db8:4000:100::/56",)})
    d = Desired(cfg, facts)
    st = desired_state(d)
    assert st.addrs["wan0"] == {"198.51.100.150/24"} and st.addrs["lan0"] == {"192.168.10.1/24",
                                                                             "2001:db8:4000:110::1/64"}
    [(key, route)] = [(k, r) for k, r in st.routes.items() if r.get("type") != "unreachable"]
    assert (key.dst, route["gateway"], route["oif"]) == ("0.0.0.0/0", "198.51.100.1", "wan0")
    # RFC 7084 WPD-5: the delegated prefix is unreachable but for the /64s in use (more specific)
    [pd] = [k for k, r in st.routes.items() if r.get("type") == "unreachable"]
    assert (pd.family, pd.dst, pd.metric) == (6, "2001:db8:4000:100::/56", 1024)
    assert st.sysctls["net/ipv6/conf/wan0/accept_ra"] == "2" and st.sysctls["net/ipv6/conf/wan0/autoconf"] == "1"
    assert "2001:db8:4000:110::/64" in d.ruleset.text()
    # an unhealthy WAN loses its learned default route too; other facts re-render the ruleset
    assert not desired_state(Desired(cfg, Facts(gateways={"wan0": ("198.51.100.1",)},
                                                wan_health={"wan0": False}))).routes
    e = d.with_facts(Facts(delegated={"wan0": ("2001:db8:5000::/56",)}))
    assert "2001:db8:5000:10::/64" in e.ruleset.text() and "2001:db8:4000" not in e.ruleset.text()


# -- client reports: a hostile DHCP server ---------------------------------------------------------------


def v4(**kw) -> dict:
    env = {"reason": "BOUND", "interface": "wan0", "new_ip_address": "198.51.100.150",
           "new_subnet_mask": "255.255.255.0", "new_routers": "198.51.100.1", "new_domain_name_servers": "198.51.100.1",
           "new_domain_name": "isp.example", "new_dhcp_lease_time": "600", "new_expiry": str(int(NOW) + 600)}
    env.update(kw)
    return env


def test_a_good_v4_lease():
    u, msgs = parse(v4(), "wan0", 4, OWN, NOW)
    assert msgs == [] and (u.kind, u.address, u.gateway, u.dns, u.domains) == (
        "v4", "198.51.100.150/24", "198.51.100.1", ["198.51.100.1"], ["isp.example"])
    assert u.expires == NOW + 600


@pytest.mark.parametrize("kw, why", [
    ({"new_subnet_mask": "0.0.0.0"}, "198.51.100.150/0 (a WAN subnet must be /8 to /30)"),
    ({"new_subnet_mask": "255.255.255.255"}, "(a WAN subnet must be /8 to /30)"),
    ({"new_subnet_mask": "255.0.255.0"}, "is not valid"),
    ({"new_ip_address": "192.168.10.77"}, "overlaps the router's own 192.168.10.0/24 of lan0"),
    ({"new_ip_address": "192.168.10.77", "new_subnet_mask": "255.255.0.0"}, "overlaps the router's own"),
    ({"new_ip_address": "224.0.0.1"}, "is not a usable host address"),
    ({"new_ip_address": "198.51.100.255"}, "is not a usable host address"),
    ({"new_ip_address": "x" * 100000}, "is not valid"),
])
def test_absurd_v4_leases_are_refused(kw, why):
    u, msgs = parse(v4(**kw), "wan0", 4, OWN, NOW)
    assert u is None and len(msgs) == 1 and "refused" in msgs[0] and why in msgs[0], msgs


def test_absurd_v4_options_are_bounded():
    dns = " ".join(f"10.{i >> 8 & 255}.{i & 255}.1" for i in range(10_000))
    u, msgs = parse(v4(new_routers="203.0.113.1 198.51.100.150", new_domain_name_servers=dns,
                       new_domain_name="a" * 5000, new_dhcp_lease_time="99999999999",
                       new_expiry="99999999999"), "wan0", 4, OWN, NOW)
    assert u.address == "198.51.100.150/24" and u.gateway is None  # no default route via an off-link router
    assert len(u.dns) == MAX_DNS and u.domains == []
    assert u.expires == NOW + 30 * 86400
    text = " | ".join(msgs)
    assert "gateway 203.0.113.1 is outside 198.51.100.0/24" in text and "gateway 198.51.100.150" in text
    assert "DNS servers offered; kept the first 8" in text and "is not a domain name" in text
    assert all(len(m) < 300 for m in msgs)


def v6(**kw) -> dict:
    env = {"reason": "BOUND6", "interface": "wan0", "new_ip6_prefix": "2001:db8:4000:100::/56",
           "new_life_starts": str(int(NOW)), "new_max_life": "30", "new_preferred_life": "20",
           "new_dhcp6_name_servers": "2001:db8:100::1"}
    env.update(kw)
    return env


def test_a_good_delegation_and_its_withdrawal():
    u, msgs = parse(v6(), "wan0", 6, OWN, NOW)
    assert msgs == [] and (u.kind, u.prefix, u.expires, u.preferred, u.dns) == (
        "v6-prefix", "2001:db8:4000:100::/56", NOW + 30, NOW + 20, ["2001:db8:100::1"])
    u, _ = parse(v6(reason="RENEW6", new_max_life="0", new_preferred_life="0"), "wan0", 6, OWN, NOW)
    assert (u.kind, u.prefix) == ("v6-gone", "2001:db8:4000:100::/56")
    u, _ = parse({"reason": "EXPIRE6", "interface": "wan0", "old_ip6_prefix": "2001:db8:4000:100::/56"},
                 "wan0", 6, OWN, NOW)
    assert (u.kind, u.prefix) == ("v6-gone", "2001:db8:4000:100::/56")


@pytest.mark.parametrize("prefix, why", [
    ("2001:db8:4000::/128", "a delegation must be /32 to /64 (a /128 cannot hold a /64 LAN)"),
    ("::/1", "a delegation must be /32 to /64 (a /1 is absurd)"),
    ("::/0", "a delegation must be /32 to /64"),
    ("ff00::/48", "not a unicast prefix"),
    ("fe80::/56", "not a unicast prefix"),
    ("2001:db8:10:99::/64", "overlaps the router's own 2001:db8:10:99::/64 of mgmt0"),
    ("2001:db8::/zz", "not an IPv6 prefix"),
])
def test_absurd_delegations_are_refused(prefix, why):
    u, msgs = parse(v6(new_ip6_prefix=prefix), "wan0", 6, OWN, NOW)
    assert u is None and len(msgs) == 1 and why in msgs[0], msgs


def test_absurd_v6_addresses_and_lifetimes():
    env = v6(new_ip6_address="2001:db8:100::1000", new_max_life="999999999999", new_life_starts="5")
    del env["new_ip6_prefix"]
    u, _ = parse(env, "wan0", 6, OWN, NOW)
    assert u.address == "2001:db8:100::1000/128" and u.expires == NOW + 30 * 86400  # bounded, from now
    for bad in ("ff02::1", "fe80::1", "::ffff:1.2.3.4", "::"):
        env["new_ip6_address"] = bad
        u, msgs = parse(env, "wan0", 6, OWN, NOW)
        assert u is None and "refused" in msgs[0]
    u, msgs = parse(v6(interface="lan0"), "wan0", 6, OWN, NOW)  # a report for another link
    assert u is None and "ignored" in msgs[0]


# -- the hook and the manager ----------------------------------------------------------------------------


def test_hook_hands_over_a_bounded_report(tmp_path):
    hook = tmp_path / "hook"
    hook.write_text(hook_text(sys.executable, str(tmp_path), 6))
    hook.chmod(0o700)
    env = {"reason": "BOUND6", "interface": "wan0", "new_ip6_prefix": "2001:db8::/56", "new_x": "y" * 100_000,
           "PATH": os.environ["PATH"], "SECRET_THING": "not handed over"}
    for i in range(300):
        env[f"new_v{i:03}"] = "z"
    subprocess.run([str(hook)], env=env, check=True, timeout=30)
    [f] = list(tmp_path.glob("*.json"))
    rep = json.loads(f.read_text())
    assert rep["family"] == 6 and rep["env"]["new_ip6_prefix"] == "2001:db8::/56"
    assert "SECRET_THING" not in rep["env"] and "PATH" not in rep["env"]
    assert len(rep["env"]) <= 100 and all(len(v) <= 16 * 1024 for v in rep["env"].values())


@pytest.fixture
def manager(tmp_path):
    from backend.agent.pipeline import Pipeline
    from backend.agent.uplink import Uplinks

    p = Pipeline(tmp_path / "repo", tmp_path / "state", appliers=[])
    p.commit(DOC.read_text(), "uplink", "t")
    u = Uplinks(p, tmp_path / "state", dhclient="/nonexistent/dhclient", deprecate_seconds=5)
    u._follow_config()
    return p, u


def test_manager_publishes_facts_without_a_commit(manager):
    p, u = manager
    head = p.repo.head()
    u.handle(v4(new_expiry=str(int(time.time()) + 600)), 4, time.time())
    u.handle(v6(new_life_starts=str(int(time.time()))), 6, time.time())
    assert u._publish(time.time())
    assert p.facts.addresses["wan0"] == ("198.51.100.150/24",) and p.facts.gateways["wan0"] == ("198.51.100.1",)
    assert p.facts.delegated["wan0"] == ("2001:db8:4000:100::/56",)
    assert p.repo.head() == head and not u._publish(time.time())  # nothing new: nothing applied
    # renumbered: the new prefix, the old one deprecated for deprecate_seconds, then gone
    now = time.time()
    u.handle(v6(reason="RENEW6", new_ip6_prefix="2001:db8:5000::/56", new_life_starts=str(int(now))), 6, now)
    u.handle(v6(reason="RENEW6", new_max_life="0", new_preferred_life="0", new_life_starts=str(int(now))), 6, now)
    assert u._publish(now)
    assert p.facts.delegated["wan0"] == ("2001:db8:5000::/56",)
    assert p.facts.deprecated["wan0"] == ("2001:db8:4000:100::/56",)
    u._expire(now + 6)
    assert u._publish(now + 6) and "wan0" not in p.facts.deprecated
    audit = [json.loads(x) for x in (Path(p.state_dir) / "audit.jsonl").read_text().splitlines()]
    assert sum(a["action"] == "fact-change" for a in audit) == 3 and p.repo.head() == head
    # the lease runs out: the address and the default route go
    u._expire(time.time() + 700)
    assert u._publish(time.time()) and "wan0" not in p.facts.addresses and "wan0" not in p.facts.gateways
    assert "wan0" not in p.facts.delegated and p.facts.deprecated["wan0"] == ("2001:db8:5000::/56",)
    info = p.facts.uplinks["wan0"]
    assert any("expired" in e["message"] for e in info["events"])


def test_manager_reports_a_delegation_too_short_for_the_subnet(manager):
    p, u = manager
    u.handle(v6(new_ip6_prefix="2001:db8:4000:100::/60", new_life_starts=str(int(time.time()))), 6, time.time())
    u._publish(time.time())
    info = p.facts.uplinks["wan0"]
    assert info["problems"] and "subnet id 0x10 does not fit the delegated 2001:db8:4000:100::/60" in info["problems"][0]
    assert any(e["level"] == "error" and "ISP delegated less" in e["message"] for e in info["events"])


def test_manager_survives_garbage_in_its_spool(manager):
    p, u = manager
    (u.spool / "a.json").write_text("{not json")
    (u.spool / "b.json").write_bytes(b"[" + b"1," * (3 << 20) + b"1]")
    (u.spool / "c.json").write_text(json.dumps({"family": 4, "env": "x"}))
    (u.spool / "d.json").write_text(json.dumps({"family": 4, "env": v4(new_subnet_mask="0.0.0.0")}))
    os.symlink("/etc/passwd", u.spool / "e.json")
    for i in range(100):
        (u.spool / f"f{i:03}.json").write_text(json.dumps({"family": 4, "env": v4()}))
    u._read_reports(time.time())
    u._read_reports(time.time())
    assert not list(u.spool.iterdir())
    assert u._publish(time.time()) and p.facts.addresses["wan0"] == ("198.51.100.150/24",)
    assert any("refused" in e["message"] for e in p.facts.uplinks["wan0"]["events"])


def test_unbound_listens_on_and_serves_the_delegated_lan_subnet():
    from backend.model.services import ServicePaths
    from backend.render.unbound import render_unbound

    cfg, probs = validate_text(doc(**{"ra:\n": "dns: {zones: {lan: allow}}\nra:\n"}))
    assert cfg is not None, probs
    paths = ServicePaths("/tmp/r", "/tmp/s", "/tmp/run")
    a = render_unbound(effective(cfg, {"wan0": ("2001:db8:4000:100::/56",)}), paths)
    b = render_unbound(effective(cfg, {"wan0": ("2001:db8:5000::/56",)}), paths)
    assert "interface: 2001:db8:4000:110::1" in a and "access-control: 2001:db8:4000:110::/64 allow" in a
    assert "interface: 2001:db8:5000:10::1" in b and "2001:db8:4000" not in b


def test_kea_dhcpv6_pools_follow_the_delegated_lan_subnet(tmp_path):
    from backend.model.services import ServicePaths
    from backend.render.kea import render_dhcp6

    text = doc()  # the lab document: dhcp.lan0.ipv6.pools ["::1000-::1fff"]
    cfg, probs = validate_text(text)
    assert cfg is not None and not [p for p in probs if p.severity == "error"], probs
    paths = ServicePaths("/tmp/r", "/tmp/s", "/tmp/run")
    assert render_dhcp6(effective(cfg), paths) is None  # nothing delegated yet: no subnet to serve
    a = json.loads(render_dhcp6(effective(cfg, {"wan0": ("2001:db8:4000:100::/56",)}), paths))["Dhcp6"]["subnet6"]
    b = json.loads(render_dhcp6(effective(cfg, {"wan0": ("2001:db8:5000::/56",)}), paths))["Dhcp6"]["subnet6"]
    assert [(s["subnet"], s["pools"]) for s in a] == [
        ("2001:db8:4000:110::/64", [{"pool": "2001:db8:4000:110::1000 - 2001:db8:4000:110::1fff"}])]
    assert [(s["subnet"], s["pools"]) for s in b] == [
        ("2001:db8:5000:10::/64", [{"pool": "2001:db8:5000:10::1000 - 2001:db8:5000:10::1fff"}])]
    assert cfg.dhcp["lan0"].ipv6.pools == ["::1000-::1fff"]  # the document is untouched
    got = problems(text.replace("::1000-::1fff", "2001:db8::1000-2001:db8::1fff"))
    assert got and got[0].startswith("dhcp.lan0.ipv6.pools[0]: 2001:db8::1000-2001:db8::1fff: lan0's /64 comes from "
                                     "a delegated prefix")
    if shutil.which("kea-dhcp6"):  # Kea's own checker takes it
        real = ServicePaths(str(tmp_path / "r"), str(tmp_path / "run"), str(tmp_path / "s"))
        (tmp_path / "s" / "kea").mkdir(parents=True)
        f = tmp_path / "kea6.json"
        f.write_text(render_dhcp6(effective(cfg, {"wan0": ("2001:db8:4000:100::/56",)}), real))
        env = f"KEA_PIDFILE_DIR={tmp_path} KEA_LOCKFILE_DIR={tmp_path}"
        r = subprocess.run(["unshare", "-n", "sh", "-c", "ip link add lan0 type veth peer name lan0p && "
                            f"env {env} kea-dhcp6 -t {f}"], capture_output=True, text=True)
        if r.returncode != 0 and "unshare" in r.stderr:
            pytest.skip(f"no network namespace for kea-dhcp6 -t: {r.stderr.strip()}")
        assert r.returncode == 0, r.stdout + r.stderr


def test_learned_state_survives_an_agent_restart(manager):
    from backend.agent.uplink import Uplinks

    p, u = manager
    now = time.time()
    u.handle(v4(new_expiry=str(int(now) + 600)), 4, now)
    u.handle(v6(new_life_starts=str(int(now))), 6, now)
    u._publish(now)
    p.facts = Facts()  # a new agent process starts with nothing
    again = Uplinks(p, p.state_dir, dhclient="/nonexistent/dhclient")
    again.restore(now)
    assert p.facts.addresses["wan0"] == ("198.51.100.150/24",) and p.facts.delegated["wan0"] == (
        "2001:db8:4000:100::/56",)
    p.facts = Facts()
    Uplinks(p, p.state_dir, dhclient="/nonexistent/dhclient").restore(now + 60)  # the 30 s delegation ran out
    assert "wan0" not in p.facts.delegated and p.facts.addresses["wan0"] == ("198.51.100.150/24",)
    (Path(p.state_dir) / "uplink" / "learned.json").write_text('{"wan0": {"v4": {"bogus": 1}}}')
    p.facts = Facts()
    Uplinks(p, p.state_dir, dhclient="/nonexistent/dhclient").restore(now)  # a damaged file: nothing restored
    assert p.facts == Facts()


def test_render_and_trace_of_the_agent_follow_the_learned_prefix(tmp_path):
    from backend.testing import InProcessAgent

    text = doc(**{"rules:\n": "rules:\n  - {name: dns-from-lan-pd, from: lan, to: self, src: lan-pd, proto: udp, "
                                "dport: 53, action: accept}\n"})
    agent = InProcessAgent(text)
    pkt = {"iif": "lan0", "src": "2001:db8:4000:110::10", "dst": "2001:db8:4000:110::1", "proto": "udp", "dport": 53}
    assert agent.client.trace(pkt)["verdict"] == "drop"  # nothing delegated: no such LAN subnet yet
    agent.pipeline.set_facts(Facts(delegated={"wan0": ("2001:db8:4000:100::/56",)}), apply=False)
    assert "2001:db8:4000:110::/64" in agent.client.render()["nft"]
    got = agent.client.trace(pkt)
    assert got["verdict"] == "accept" and got["rule"] == "rule dns-from-lan-pd", got


def _prefix_block(radvd: str, prefix: str) -> str:
    return radvd.split(f"prefix {prefix} {{", 1)[1].split("};", 1)[0]


def test_ra_lifetimes_of_a_delegated_prefix_follow_the_delegation(manager, tmp_path):
    """RFC 7084 L-13: a LAN prefix from a delegation is advertised with lifetimes no longer than the
    delegation's (valid/preferred), at most radvd's defaults; a renewal with the same lifetimes
    re-renders nothing; radvd -c accepts the result."""
    p, u = manager
    now = time.time()
    u.handle(v6(new_life_starts=str(int(now)), new_max_life="7200", new_preferred_life="3600"), 6, now)
    assert u._publish(now)
    assert dict(p.facts.lifetimes) == {"2001:db8:4000:100::/56": (7200, 3600)}
    cfg = validate_text(DOC.read_text())[0]
    radvd = render_radvd(Desired(cfg, p.facts).cfg)
    block = _prefix_block(radvd, "2001:db8:4000:110::/64")
    assert "AdvValidLifetime 7200;" in block and "AdvPreferredLifetime 3600;" in block
    # the same lifetimes at a renewal: no new facts, nothing re-rendered
    u.handle(v6(reason="RENEW6", new_life_starts=str(int(now) + 1), new_max_life="7200",
                new_preferred_life="3600"), 6, now + 1)
    assert not u._publish(now + 1)
    # longer than radvd's defaults: capped at them; shorter than the RA interval: at least the interval
    for life, pref, want in (("900000", "400000", (86400, 14400)), ("60", "40", (60, 40)), ("10", "10", (10, 10))):
        u.handle(v6(reason="RENEW6", new_life_starts=str(int(now)), new_max_life=life, new_preferred_life=pref), 6, now)
        u._publish(now)
        radvd = render_radvd(Desired(cfg, p.facts).cfg)
        block = _prefix_block(radvd, "2001:db8:4000:110::/64")
        ra_interval = cfg.ra["lan0"].interval
        valid = max(want[0], ra_interval)
        assert f"AdvValidLifetime {valid};" in block and f"AdvPreferredLifetime {min(want[1], valid)};" in block
        if shutil.which("radvd"):
            f = tmp_path / "radvd.conf"
            f.write_text(radvd)
            r = subprocess.run(["radvd", "-c", "-C", str(f)], capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
    # no lifetimes known (a learned.json of an older agent): radvd's defaults
    import dataclasses

    radvd = render_radvd(Desired(cfg, dataclasses.replace(p.facts, lifetimes={})).cfg)
    assert "Lifetime" not in _prefix_block(radvd, "2001:db8:4000:110::/64")
