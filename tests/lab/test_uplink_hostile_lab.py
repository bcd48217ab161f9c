"""A hostile ISP, with real servers: Kea handing the router a lease inside its own LAN subnet, a
gateway outside the leased subnet, dozens of DNS servers and a domain name that is not one, a
delegation shorter than the LAN subnet ids need, a /128 "delegation". Each is refused or bounded
with an event in `talgate status`; the agent keeps running, HEAD does not move, the LAN keeps
working and nothing dangerous is installed (no address in the LAN's subnet on the WAN, no default
route through an off-link gateway, no LAN address outside the delegation)."""

from __future__ import annotations

import json
import os
import signal

import pytest

from .test_uplink_lab import start, uplink, uplink_config, wait

pytestmark = pytest.mark.lab

OWN_LAN = {"subnet": "192.168.10.0/24", "lifetime": 8,
           "options": [{"name": "routers", "data": "192.168.10.1"}]}
BAD_OPTIONS = {"lifetime": 8, "options": [
    {"name": "routers", "data": "203.0.113.1"},
    {"name": "domain-name-servers", "data": ", ".join(f"198.51.100.{i}" for i in range(1, 61))},
    {"name": "domain-name", "data": "x" * 70 + ".example"}]}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    h, isp = start(tmp_path_factory, uplink_config(), pd_pool="2001:db8:4000::/48", delegated_len=60, v4=OWN_LAN)
    try:
        yield h, isp
    finally:
        h.lab.down()


def events(h) -> str:
    return json.dumps(uplink(h).get("events", []))


def v4_client_pid(h) -> int:
    return next(c["pid"] for c in uplink(h)["clients"] if c["family"] == 4 and c["running"])


def test_a_lease_in_the_routers_own_lan_subnet_is_refused(hostile):
    h, _ = hostile
    assert wait(lambda: "overlaps the router's own 192.168.10.0/24 of lan0" in events(h), 20), uplink(h)
    assert uplink(h)["ipv4"] is None
    assert "192.168.10.1" in h.router("ip", "-4", "addr", "show", "dev", "lan0")
    assert "192.168.10." not in h.router("ip", "-4", "addr", "show", "dev", "wan0")
    assert h.router("ip", "-4", "route", "show", "default").strip() == ""
    assert h.ping("lan", "192.168.10.1")  # the LAN still reaches the router
    st = h.cli("status", "--json")  # the events reach `talgate status` (the text shows the last few)
    assert st.returncode == 0 and "DHCPv4 lease refused: 192.168.10.0/24 overlaps" in st.stdout, st.stdout


def test_off_link_gateway_many_dns_servers_and_a_bad_domain_are_bounded(hostile):
    h, isp = hostile
    head = h.head()
    isp.restart_v4(BAD_OPTIONS)
    os.kill(v4_client_pid(h), signal.SIGKILL)  # a fresh client: REBOOT of the old lease, NAK, DISCOVER
    v4 = wait(lambda: uplink(h).get("ipv4"), 30)
    assert v4 and v4["address"].startswith("198.51.100."), uplink(h)
    assert v4["gateway"] is None and len(v4["dns"]) == 8 and v4["domains"] == []
    assert h.router("ip", "-4", "route", "show", "default").strip() == ""  # nothing via 203.0.113.1
    ev = events(h)
    assert "gateway 203.0.113.1 is outside 198.51.100.0/24" in ev
    assert "60 DNS servers offered; kept the first 8" in ev
    # the 70-character label: dhclient itself drops a domain-name option that is not a domain name
    # (our own check, for what a client might pass on, is in tests/unit/test_uplink.py); none installed
    assert "x" * 70 not in json.dumps(uplink(h))
    assert h.head() == head and h.client.status()["last_error"] is None


def test_a_delegation_too_short_for_the_lan_subnet_is_not_applied(hostile):
    h, _ = hostile
    u = wait(lambda: uplink(h).get("problems") and uplink(h), 30)
    assert u, uplink(h)
    assert "subnet id 0x10 does not fit the delegated" in u["problems"][0]
    assert u["ipv6"]["delegated"][0]["prefix"].endswith("/60")
    assert "inet6 2001:db8:4000" not in h.router("ip", "-6", "addr", "show", "dev", "lan0")
    st = h.cli("status")
    assert "problem: interfaces.lan0.ipv6[0]: subnet id 0x10 does not fit" in st.stdout, st.stdout


def test_a_slash_128_delegation_is_refused(hostile):
    h, isp = hostile
    isp.restart_v6("2001:db8:6000::/48", delegated_len=128)
    assert wait(lambda: "a /128 cannot hold a /64 LAN" in events(h), 20), uplink(h)
    assert wait(lambda: not uplink(h)["ipv6"]["delegated"], 10), uplink(h)  # the /60 was withdrawn
    assert "2001:db8:6000" not in h.router("ip", "-6", "addr", "show")
    assert "2001:db8:6000" not in h.router("nft", "list", "ruleset")
    agent = h.lab.meta()["pids"]["agent"]
    assert os.path.exists(f"/proc/{agent}") and h.client.status()["in_sync"]
