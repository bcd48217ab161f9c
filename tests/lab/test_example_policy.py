"""The lab's example policy, proven with real TCP and ICMP traffic, IPv4 and IPv6.

lan and guest reach the internet (IPv4 masqueraded to 198.51.100.2, IPv6 routed with the host's
own address); guest reaches neither lan nor mgmt; from the isp only the port forward
wan0 tcp/8443 → 192.168.10.10:443 and ICMP echo to the router get in; only mgmt reaches the
router on tcp/22.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.lab

INET4, INET6 = "203.0.113.10", "2001:db8:203::10"
HOST4 = {"lan": "192.168.10.10", "guest": "192.168.20.10", "mgmt": "192.168.99.10"}
HOST6 = {"lan": "2001:db8:10:10::10", "guest": "2001:db8:10:20::10", "mgmt": "2001:db8:10:99::10"}
ROUTER4 = {"lan": "192.168.10.1", "guest": "192.168.20.1", "mgmt": "192.168.99.1", "isp": "198.51.100.2"}
ROUTER6 = {"lan": "2001:db8:10:10::1", "guest": "2001:db8:10:20::1", "mgmt": "2001:db8:10:99::1",
           "isp": "2001:db8:100::2"}


def _tcp_cases():
    """(src host, dst addr, port, expected whoami line or None for blocked)."""
    cases = []
    for h in ("lan", "guest", "mgmt"):
        cases += [(h, INET4, 80, "talgate-lab isp 80 198.51.100.2"),       # masqueraded
                  (h, INET6, 443, f"talgate-lab isp 443 {HOST6[h]}")]       # routed, own address
    cases += [
        ("guest", HOST4["lan"], 80, None), ("guest", HOST6["lan"], 80, None),
        ("guest", HOST4["mgmt"], 80, None), ("guest", HOST6["mgmt"], 80, None),
        ("lan", HOST4["mgmt"], 80, None), ("lan", HOST6["guest"], 80, None),
        ("mgmt", HOST4["lan"], 80, f"talgate-lab lan 80 {HOST4['mgmt']}"),
        ("mgmt", HOST6["lan"], 80, f"talgate-lab lan 80 {HOST6['mgmt']}"),
        # isp side: only the port forward gets in
        ("isp", "198.51.100.2", 8443, "talgate-lab lan 443 198.51.100.1"),
        ("isp", HOST6["lan"], 443, None), ("isp", HOST6["lan"], 80, None),
        ("isp", HOST6["guest"], 80, None), ("isp", HOST6["mgmt"], 80, None),
        ("isp", "198.51.100.2", 443, None),
    ]
    # tcp/22 on the router: mgmt only, on every router address, both families
    for h in ("lan", "guest", "mgmt", "isp"):
        want = "mgmt" == h
        cases.append((h, ROUTER4[h], 22, f"talgate-lab router 22 {HOST4[h]}" if want else None))
        cases.append((h, ROUTER6[h], 22, f"talgate-lab router 22 {HOST6[h]}" if want else None))
    cases.append(("lan", ROUTER4["mgmt"], 22, None))  # another zone's router address changes nothing
    return cases


def _ping_cases():
    cases = []
    for h in ("lan", "guest", "mgmt"):
        cases += [(h, INET4, True), (h, INET6, True), (h, ROUTER4[h], True), (h, ROUTER6[h], True)]
    cases += [
        ("isp", ROUTER4["isp"], True), ("isp", ROUTER6["isp"], True),      # echo to the router
        ("isp", HOST6["lan"], False), ("isp", HOST6["guest"], False), ("isp", HOST6["mgmt"], False),
        ("guest", HOST4["lan"], False), ("guest", HOST6["lan"], False),
        ("guest", HOST4["mgmt"], False), ("guest", HOST6["mgmt"], False),
        ("mgmt", HOST4["lan"], True), ("mgmt", HOST6["lan"], True),
    ]
    return cases


def test_tcp_matrix(lab):
    cases = _tcp_cases()
    got = lab.parallel([(lab.tcp, h, dst, port) for h, dst, port, _ in cases])
    wrong = [f"{h} -> [{dst}]:{port}: expected {want!r}, got {g!r}"
             for (h, dst, port, want), g in zip(cases, got, strict=True) if g != want]
    assert not wrong, "\n".join(wrong)


def test_icmp_matrix(lab):
    cases = _ping_cases()
    got = lab.parallel([(lab.ping, h, dst) for h, dst, _ in cases])
    wrong = [f"ping {h} -> {dst}: expected {'reply' if want else 'no reply'}"
             for (h, dst, want), g in zip(cases, got, strict=True) if g != want]
    assert not wrong, "\n".join(wrong)


def test_counters_map_back_to_config_names(lab):
    assert lab.tcp("isp", "198.51.100.2", 8443) is not None
    counters = {(c.kind, c.name, c.hook): c for c in lab.client.counters()}
    assert counters["forward", "web", None].packets >= 1
    assert ("rule", "ssh-from-mgmt", None) in counters and ("policy", "lan-wan", None) in counters
    assert ("zone", "wan", "input") in counters
