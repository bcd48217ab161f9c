"""Documents that are small but were slow to validate (issue 11, class 1: anyone on the read-only
socket can send one to validate, trace or diff). Each is a few hundred KB, far under the read-only
socket's 4 MiB, and took 40 s to minutes of CPU (a problem per pair for pools) before the checks
were sorted-and-swept or bounded; each must now validate within SECONDS and still find what it
should."""

from __future__ import annotations

import time

import pytest

from backend.lab.lab import example_config
from backend.model import validate_text
from backend.model.checks import shadowed_rules

SECONDS = 10.0  # generous for a loaded box: these took 40-150 s before (0.1-0.7 s now)


def _v4(i: int, first: int = 10) -> str:
    return f"{first}.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def many_addresses(n: int = 4000) -> str:
    """n /32 addresses on lan0: every pair was compared for overlaps (39 s for 4,000)."""
    addrs = ", ".join(f"{_v4(i)}/32" for i in range(n))
    return example_config().replace("    ipv4: [192.168.10.1/24]", f"    ipv4: [192.168.10.1/24, {addrs}]")


def many_rules(n: int = 8000) -> str:
    """n rules none of which covers another: every rule was compared with every earlier one."""
    rl = "".join(f"  - {{name: r{i}, from: lan, to: wan, proto: tcp, dport: {1 + i % 60000}, sport: {1 + i // 60000}, "
                 "action: accept}\n" for i in range(n))
    return example_config().replace("rules:\n", "rules:\n" + rl)


def nested_sets(n: int = 8000) -> str:
    """Two rules on two n-prefix sets where the covering prefix is last: every prefix of one set
    scanned every prefix of the other (74 s for 8,000)."""
    a = ", ".join(f"{_v4(i, 11)}/32" for i in range(n)) + ", 10.0.0.0/8"
    b = ", ".join(f"{_v4(i)}/32" for i in range(n))
    t = example_config().replace("rules:\n", "rules:\n  - {name: x1, from: lan, to: wan, src: [a], action: accept}\n"
                                             "  - {name: x2, from: lan, to: wan, src: [b], action: accept}\n")
    return t + f"sets:\n  a: {{addresses: [{a}]}}\n  b: {{addresses: [{b}]}}\n"


def many_ports(n: int = 8000) -> str:
    """Two rules with n ports each, the covering range last."""
    a = ", ".join(str(2 * i + 1) for i in range(n)) + ", 1-65535"
    b = ", ".join(str(2 * i + 2) for i in range(n))
    return example_config().replace("rules:\n", f"rules:\n  - {{name: p1, from: lan, to: wan, proto: tcp, dport: [{a}], "
                                                f"action: accept}}\n  - {{name: p2, from: lan, to: wan, proto: tcp, "
                                                f"dport: [{b}], action: accept}}\n")


def many_pools(n: int = 4000) -> str:
    """n identical DHCP pools: every pair compared and a problem per pair (55 s for 4,000)."""
    p = ", ".join(["192.168.10.100-192.168.10.100"] * n)
    return example_config() + f"dhcp:\n  lan0:\n    ipv4: {{pools: [{p}]}}\n"


def many_ra_prefixes(n: int = 3000) -> str:
    """n RA prefixes against n interface addresses: every pair (154 s for 3,000)."""
    addrs = ", ".join(f"2001:db8:10:{i:x}::1/64" for i in range(0x100, 0x100 + n))
    pre = ", ".join(f"2001:db8:10:{i:x}::/64" for i in range(0x100 + n, 0x100 + 2 * n))
    t = example_config().replace("    ipv6: [2001:db8:10:10::1/64]", f"    ipv6: [2001:db8:10:10::1/64, {addrs}]")
    return t + f"ra:\n  lan0: {{prefixes: [{pre}]}}\n"


def zone_product(zones: int = 100, rules: int = 20) -> str:
    """Every rule from all zones to all zones: ~500 KB that rendered to 230,000 nft rules (13 MB of
    text, 34 s) for libnftables to check in the agent's own process."""
    zl = ", ".join(f"z{i}" for i in range(zones))
    t = example_config().replace("zones:\n", "zones:\n" + "".join(f"  z{i}: {{interfaces: []}}\n" for i in range(zones)))
    return t.replace("rules:\n", "rules:\n" + "".join(
        f"  - {{name: r{j}, from: [{zl}], to: [{zl}], proto: tcp, dport: {j + 1}, action: accept}}\n"
        for j in range(rules)))


SLOW = {"addresses": many_addresses, "rules": many_rules, "sets": nested_sets, "ports": many_ports,
        "pools": many_pools, "ra": many_ra_prefixes, "zones": zone_product}


@pytest.mark.parametrize("kind", sorted(SLOW))
def test_small_documents_validate_quickly(kind):
    doc = SLOW[kind]()
    assert len(doc) < 1_000_000  # a quarter of the read-only socket's 4 MiB
    t = time.monotonic()
    cfg, problems = validate_text(doc)
    took = time.monotonic() - t
    assert took < SECONDS, f"{kind}: {len(doc)} bytes took {took:.1f} s to validate"
    assert len(problems) <= 1000
    if kind == "sets":
        assert any("rule 'x2' is shadowed by rules[0]" in p.message for p in problems), problems
    if kind == "ports":
        assert any("rule 'p2' is shadowed by rules[0]" in p.message for p in problems), problems
    if kind == "pools":
        assert cfg is None and problems[0].path == "dhcp.lan0.ipv4.pools[1]"
        assert problems[0].message.endswith("overlaps dhcp.lan0.ipv4.pools[0]")
    if kind == "ra":
        assert cfg is None and problems[0].path == "ra.lan0.prefixes[0]", problems[:3]


def test_overlaps_are_still_found_once_each():
    t = example_config().replace("    ipv4: [192.168.20.1/24]", "    ipv4: [192.168.20.1/24, 192.168.10.7/25]")
    t = t.replace("    ipv4: [192.168.99.1/24]", "    ipv4: [192.168.99.1/24, 192.168.10.1/30]")
    cfg, problems = validate_text(t)
    assert cfg is None
    msgs = [(p.path, p.message) for p in problems]
    assert ("interfaces.guest0.ipv4", "subnet 192.168.10.0/25 overlaps 192.168.10.0/24 on interface lan0") in msgs
    assert ("interfaces.mgmt0.ipv4", "address 192.168.10.1 is also on lan0") in msgs


def test_shadowing_past_the_budget_is_a_note_not_minutes():
    cfg, _ = validate_text(many_rules(3000))
    assert cfg is not None
    out = shadowed_rules(cfg, budget=10_000)
    assert out and out[-1].severity == "warning" and "shadowing not checked from here on" in out[-1].message
    assert shadowed_rules(cfg, budget=10**12) == []  # the full check finds nothing: no rule covers another


def test_a_small_document_cannot_render_to_an_enormous_ruleset():
    from backend.model.checks import MAX_RENDERED_RULES

    t = time.monotonic()
    cfg, problems = validate_text(zone_product())
    assert time.monotonic() - t < SECONDS
    assert cfg is None and problems[0].path.startswith("rules[") and str(MAX_RENDERED_RULES) in problems[0].message
    cfg, problems = validate_text(zone_product(zones=200, rules=0))
    assert cfg is None and problems[0].path == "zones", problems[:2]
    cfg, problems = validate_text(zone_product(zones=20, rules=20))  # 20 x 20 x 20: fine
    assert cfg is not None, problems[:2]
