"""nat.nptv6 with real traffic (issue 14 item 2): the uplink lab (dhclient against Kea's DHCPv6-PD
on the isp, backend/lab/isp_dhcp.py) with lan0 also on the ULA fd00:10:10::/64 translated to
subnet 0x20 of the delegated /56 on wan0. The lan host's ULA address reaches the internet seen as
the outside prefix (host part kept); the isp reaches the lan host through the outside address
(a rule lets wan reach port 80 of the ULA); the isp renumbers and the mapping follows within
seconds, HEAD unchanged; the old outside address no longer reaches anything."""

from __future__ import annotations

import ipaddress
import sys
import time

import pytest

from tests.unit.test_nptv6 import doc

from .test_uplink_lab import INET6, POOL_A, POOL_B, start, uplink, wait

pytestmark = pytest.mark.lab

ULA_HOST = "fd00:10:10::50"
HOST_ID = 0x50
PROBE = ("import socket,sys\ns=socket.socket(socket.AF_INET6)\ns.settimeout(1)\ns.bind((sys.argv[1],0))\n"
         "s.connect((sys.argv[2],80))\nprint(s.makefile().readline().strip())\n")


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    h, isp = start(tmp_path_factory, doc(), pd_pool=POOL_A)
    try:
        h.lab.run("lan", ["ip", "-6", "addr", "add", f"{ULA_HOST}/64", "dev", "eth0", "nodad"], check=True)
        h.lab.run("lan", ["ip", "-6", "route", "replace", "default", "via", "fd00:10:10::1"], check=True)
        yield h, isp
    finally:
        h.lab.down()


def seen_from_ula(h) -> str | None:
    """The source address the internet's whoami saw for a connection from the lan host's ULA."""
    r = h.lab.run("lan", [sys.executable, "-c", PROBE, ULA_HOST, INET6], timeout=10)
    return r.stdout.split()[-1] if r.returncode == 0 and r.stdout.strip() else None


def outside_of(prefix: str) -> ipaddress.IPv6Address:
    pd = ipaddress.ip_network(prefix)
    return pd.network_address + (0x20 << 64) + HOST_ID


def test_the_lan_host_is_seen_with_the_outside_prefix_and_reached_through_it(up):
    h, _ = up
    u = wait(lambda: uplink(h).get("ipv6", {}).get("delegated") and uplink(h), 30)
    assert u, f"no delegated prefix: {uplink(h)}"
    want = outside_of(u["ipv6"]["delegated"][0]["prefix"])
    seen = wait(lambda: seen_from_ula(h), 10)
    assert seen == str(want), (seen, want)
    line = wait(lambda: h.tcp("isp", str(want), 80), 10)
    assert line and line.split()[1] == "lan", line  # the isp reached the lan host through the outside address
    assert h.tcp("isp", str(want), 443) is None  # translated, but no rule lets the wan reach port 443


def test_the_mapping_follows_a_prefix_change_without_a_commit(up):
    h, isp = up
    u = wait(lambda: uplink(h).get("ipv6", {}).get("delegated") and uplink(h), 30)
    old = outside_of(u["ipv6"]["delegated"][0]["prefix"])
    assert wait(lambda: seen_from_ula(h) == str(old), 10)
    head = h.head()
    t0 = time.monotonic()
    isp.restart_v6(POOL_B)

    def moved():
        s = seen_from_ula(h)
        return s if s and ipaddress.ip_address(s) in ipaddress.ip_network(POOL_B) else None

    seen = wait(moved, 15, step=0.1)
    elapsed = time.monotonic() - t0
    print(f"\nprefix change -> the ULA host seen with the new outside prefix: {elapsed:.2f} s")
    assert seen, f"still not translated to {POOL_B} after {elapsed:.1f} s: {uplink(h)}"
    new = outside_of(uplink(h)["ipv6"]["delegated"][0]["prefix"])
    assert seen == str(new) and elapsed < 10
    assert h.head() == head, "a commit was made"
    line = wait(lambda: h.tcp("isp", str(new), 80), 10)
    assert line and line.split()[1] == "lan", line
    ruleset = h.router("nft", "list", "chain", "inet", "talgate", "postrouting_nat")
    assert str(ipaddress.ip_network(f"{old}/64", strict=False).network_address) not in ruleset, ruleset
    assert h.tcp("isp", str(old), 80, timeout=0.5) is None  # the old outside address leads nowhere now
