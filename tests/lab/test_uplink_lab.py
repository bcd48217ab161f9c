"""Uplinks that learn their address, with real clients and servers: the router's agent runs
dhclient (-4, and -6 with IA_NA + IA_PD) against Kea 2.2 and radvd on the isp host
(backend/lab/isp_dhcp.py). wan0 gets IPv4 by DHCP and lan→internet works through it; IPv6 by
SLAAC and DHCPv6 with a delegated /56; the lan host forms an address from subnet 0x10 of it via
radvd; the isp renumbers (Kea restarted with another PD pool, the client's renewal gets the new
prefix and the old one with lifetime 0) and within 10 s the lan host's new address reaches the
internet, the old prefix is gone from the firewall (deprecated in the RA) — HEAD unchanged."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import time
from importlib import resources

import pytest

from backend.lab.isp_dhcp import up_with_isp_dhcp

from .conftest import _why_no_lab
from .util import LabHelper

pytestmark = pytest.mark.lab

POOL_A = "2001:db8:4000::/48"
POOL_B = "2001:db8:5000::/48"
INET4, INET6 = "203.0.113.10", "2001:db8:203::10"


def uplink_config() -> str:
    return resources.files("backend.lab").joinpath("uplink.yaml").read_text()


def start(tmp_path_factory, config: str, **isp_kw):
    import secrets

    from backend.lab.lab import Lab

    reason = _why_no_lab()
    if reason:
        pytest.skip(reason)
    lab = Lab(prefix=f"tg-{secrets.token_hex(2)}-", state=tmp_path_factory.mktemp("lab") / "state")
    isp = up_with_isp_dhcp(lab, config, **isp_kw)
    return LabHelper(lab), isp


def wait(pred, timeout: float, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


def uplink(h: LabHelper, link: str = "wan0") -> dict:
    return (h.client.status().get("facts") or {}).get("uplinks", {}).get(link) or {}


def kea_subnets(sock) -> list[tuple[str, str]]:
    """The subnets and pools the running kea-dhcp6 has (config-get over its control socket)."""
    from backend.host.daemons.kea import kea_command

    try:
        conf = kea_command(str(sock), "config-get")["arguments"]["Dhcp6"]
    except (OSError, KeyError, ValueError):
        return []
    return [(s["subnet"], p["pool"]) for s in conf.get("subnet6", []) for p in s.get("pools", [])]


def lan_global6(h: LabHelper) -> list[dict]:
    out = json.loads(h.lab.run("lan", ["ip", "-j", "-6", "addr", "show", "dev", "eth0", "scope", "global"]).stdout)
    return [a for i in out for a in i.get("addr_info", []) if "local" in a]


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    h, isp = start(tmp_path_factory, uplink_config(), pd_pool=POOL_A)
    # the lan host learns by RA (the lab starts every host with accept_ra=0 and a static address)
    h.lab.run("lan", ["sysctl", "-qw", "net.ipv6.conf.eth0.accept_ra=1", "net.ipv6.conf.eth0.autoconf=1"], check=True)
    h.lab.run("lan", ["ip", "-6", "route", "del", "default"])
    h.lab.run("lan", ["ip", "-6", "addr", "flush", "dev", "eth0", "scope", "global"])
    try:
        yield h, isp
    finally:
        h.lab.down()


def test_wan_dhcpv4_and_lan_to_internet(up):
    h, _ = up
    v4 = wait(lambda: uplink(h).get("ipv4"), 20)
    assert v4, f"no DHCPv4 lease: {uplink(h)}"
    ip = ipaddress.ip_interface(v4["address"])
    assert ip in ipaddress.ip_network("198.51.100.0/24") and ip.network.prefixlen == 24
    assert v4["gateway"] == "198.51.100.1" and v4["dns"] == ["198.51.100.1"] and "isp.example" in v4["domains"]
    assert v4["expires"] > time.time()
    routes = json.loads(h.router("ip", "-j", "-4", "route", "show", "default"))
    assert [(r["gateway"], r["dev"]) for r in routes] == [("198.51.100.1", "wan0")]
    # lan -> internet through the learned address (masqueraded to it)
    line = wait(lambda: h.tcp("lan", INET4, 80), 10)
    assert line and line.split()[-1] == str(ip.ip), line
    # the kernel equals render(HEAD under the facts) and a re-apply changes nothing
    h.assert_kernel_is_head()
    st = h.cli("status")
    assert st.returncode == 0, st.stderr
    assert f"uplink     wan0 ipv4 {v4['address']} gw 198.51.100.1 dns 198.51.100.1 expires in" in st.stdout, st.stdout


def test_wan_slaac_dhcpv6_pd_and_lan_host(up):
    h, _ = up
    u = wait(lambda: uplink(h).get("ipv6", {}).get("delegated") and uplink(h), 30)
    assert u, f"no delegated prefix: {uplink(h)}"
    pd = ipaddress.ip_network(u["ipv6"]["delegated"][0]["prefix"])
    assert pd.prefixlen == 56 and pd.subnet_of(ipaddress.ip_network(POOL_A))
    na = wait(lambda: uplink(h)["ipv6"]["addresses"], 10)
    assert na and ipaddress.ip_interface(na[0]["address"]).ip in ipaddress.ip_network("2001:db8:100::/64")
    assert uplink(h)["ipv6"]["dns"] == ["2001:db8:100::1"]
    slaac = wait(lambda: uplink(h)["ipv6"]["slaac"].get("gateways") and uplink(h)["ipv6"]["slaac"], 15)
    assert slaac and slaac["gateways"] and any(a.startswith("2001:db8:100:") for a in slaac["addresses"]), slaac
    lan_net = ipaddress.ip_network(f"{pd.network_address + (0x10 << 64)}/64")
    assert f"{lan_net.network_address + 1}/64" in h.router("ip", "-6", "addr", "show", "dev", "lan0")
    addr = wait(lambda: [a["local"] for a in lan_global6(h) if ipaddress.ip_address(a["local"]) in lan_net], 15)
    assert addr, lan_global6(h)
    line = wait(lambda: h.tcp("lan", INET6, 80), 10)
    assert line and line.split()[-1] == addr[0], line
    assert str(lan_net) in h.router("nft", "list", "set", "inet", "talgate", "set_lan-pd_v6")
    st = h.cli("status").stdout
    assert f"uplink     wan0 delegated {pd} expires in" in st and "uplink     wan0 dns6 2001:db8:100::1" in st, st


def test_prefix_change_follows_without_commit(up):
    h, isp = up
    u = wait(lambda: uplink(h).get("ipv6", {}).get("delegated") and uplink(h), 30)
    old = ipaddress.ip_network(u["ipv6"]["delegated"][0]["prefix"])
    old_lan = ipaddress.ip_network(f"{old.network_address + (0x10 << 64)}/64")
    wait(lambda: h.tcp("lan", INET6, 80), 10)
    head = h.head()
    t0 = time.monotonic()
    isp.restart_v6(POOL_B)

    def new_addr():
        for a in lan_global6(h):
            ip = ipaddress.ip_address(a["local"])
            if ip in ipaddress.ip_network(POOL_B) and a.get("preferred_life_time", 1) > 0:
                return str(ip)
        return None

    def works():
        a = new_addr()
        if not a:
            return None
        line = h.tcp("lan", INET6, 80, timeout=0.5)
        return line if line and line.split()[-1] == a else None

    line = wait(works, 15, step=0.05)
    elapsed = time.monotonic() - t0
    print(f"\nprefix change -> lan host's new address reaches the internet: {elapsed:.2f} s")
    assert line, f"no working new address after {elapsed:.1f} s: {lan_global6(h)} {uplink(h)}"
    assert elapsed < 10
    assert h.head() == head, "a commit was made"
    # The status lists every delegation the client holds, the old one too while its valid lifetime
    # runs (Kea hands it back at lifetime 0): the new one is the one from POOL_B, whatever its place.
    delegated = [ipaddress.ip_network(d["prefix"]) for d in uplink(h)["ipv6"]["delegated"]]
    news = [p for p in delegated if p.subnet_of(ipaddress.ip_network(POOL_B))]
    assert len(news) == 1, delegated
    new = news[0]
    # the old prefix: out of the firewall and off lan0, advertised as deprecated
    ruleset = h.router("nft", "list", "table", "inet", "talgate")
    assert str(old_lan) not in ruleset and str(old_lan.network_address) not in ruleset
    assert str(old_lan.network_address + 1) not in h.router("ip", "-6", "addr", "show", "dev", "lan0")
    radvd = (h.lab.state / "rendered" / "radvd" / "radvd.conf").read_text()
    block = radvd.split(f"prefix {old_lan} {{", 1)
    assert len(block) == 2 and "AdvPreferredLifetime 0;" in block[1].split("};", 1)[0], radvd
    # Kea (DHCPv6 on lan0) was reloaded with the new /64 and its pool in it
    new_lan = ipaddress.ip_network(f"{new.network_address + (0x10 << 64)}/64")
    sock = h.lab.state / "run" / "kea-dhcp6" / "kea-dhcp6.sock"
    want = [(str(new_lan), f"{new_lan.network_address + 0x1000}/116")]  # ::1000-::1fff, as Kea writes it
    assert wait(lambda: kea_subnets(sock) == want, 5), kea_subnets(sock)
    # the lan host deprecates the old address when the next RA with preferred lifetime 0 arrives
    def old_deprecated():
        old_host = [a for a in lan_global6(h) if ipaddress.ip_address(a["local"]) in old_lan]
        return all(a.get("preferred_life_time") == 0 for a in old_host) or None
    assert wait(old_deprecated, 10), lan_global6(h)
    audit = [json.loads(x) for x in (h.lab.state / "agent" / "audit.jsonl").read_text().splitlines()]
    assert any(a.get("action") == "fact-change" and str(new) in json.dumps(a) for a in audit)
    h.assert_kernel_is_head()


def test_killed_client_is_restarted(up):
    h, _ = up
    clients = wait(lambda: [c for c in uplink(h).get("clients", []) if c["family"] == 6 and c["running"]], 10)
    assert clients
    pid, restarts = clients[0]["pid"], clients[0]["restarts"]
    os.kill(pid, signal.SIGKILL)
    again = wait(lambda: [c for c in uplink(h)["clients"] if c["family"] == 6 and c["running"] and c["pid"] != pid], 10)
    assert again and again[0]["restarts"] == restarts + 1
    assert any("exited" in e["message"] for e in uplink(h)["events"])
    # the lease survived the restart: the delegation is still there and the lan still works
    assert uplink(h)["ipv6"]["delegated"]
    assert wait(lambda: h.tcp("lan", INET6, 80), 10)


def test_agent_restart_keeps_the_learned_addresses(up):
    h, _ = up
    u = wait(lambda: uplink(h).get("ipv6", {}).get("delegated") and uplink(h), 30)
    pd = ipaddress.ip_network(u["ipv6"]["delegated"][0]["prefix"])
    lan_addr = f"{pd.network_address + (0x10 << 64) + 1}/64"
    v4 = u["ipv4"]["address"]
    old_pids = [c["pid"] for c in u["clients"] if c["running"]]
    assert len(old_pids) == 2
    h.lab.restart_agent(config_text=uplink_config())
    # converged at start-up to the leases it still held: nothing was taken away meanwhile
    assert lan_addr in h.router("ip", "-6", "addr", "show", "dev", "lan0")
    assert v4 in h.router("ip", "-4", "addr", "show", "dev", "wan0")
    assert wait(lambda: h.tcp("lan", INET6, 80), 10) and wait(lambda: h.tcp("lan", INET4, 80), 10)
    clients = wait(lambda: [c for c in uplink(h).get("clients", []) if c["running"]], 10)
    assert len(clients) == 2  # new clients run; the old agent's were stopped (by their pid files)
    assert wait(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in old_pids), 5), old_pids
