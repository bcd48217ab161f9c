"""Config model v1: structure, semantic checks and their paths."""

from __future__ import annotations

import json

import pytest

from backend.lab.lab import example_config
from backend.model import json_schema, load_config, validate_text
from backend.model.checks import check

EX = example_config()


def problems(text: str) -> list[str]:
    return [str(p) for p in validate_text(text)[1]]


def test_example_is_valid_without_warnings():
    cfg, probs = validate_text(EX)
    assert cfg is not None and probs == []
    assert cfg.zone_of("wan0") == "wan"
    assert [r.name for r in cfg.rules] == ["ssh-from-mgmt", "ping-router"]


CASES = [
    ("interfaces: {wan0: {ipv4: [198.51.100.2/24]}\n", "router.yaml:2:1: YAML syntax"),
    ("zones: {a: {}, a: {}}", "router.yaml:1:16: YAML syntax: duplicate key 'a' (first at line 1)"),
    ("version: 2", "version: Input should be 1"),
    ("routers: {}", "routers: unknown key"),
    (EX.replace("hostname: gw", "hostname: gw\n  colour: blue"), "system.colour: unknown key"),
    (EX.replace("ipv4: [198.51.100.2/24]", "ipv4: [198.51.100.2/40]"), "interfaces.wan0.ipv4[0]:"),
    (EX.replace("ipv6: [2001:db8:100::2/64]", "ipv6: [2001:db8:100::zz/64]"), "interfaces.wan0.ipv6[0]:"),
    (EX.replace("dport: 22", "dport: 0"), "rules[0].dport: port 0 out of range 1-65535"),
    (EX.replace("dport: 22", "dport: 90-80"), "rules[0].dport: port range '90-80' is reversed"),
    (EX.replace("dport: 22", "dport: ssh"), "rules[0].dport: invalid port 'ssh'"),
    (EX.replace("dport: 8443", "dport: 99999"), "nat.forwards[0].dport: port 99999 out of range"),
    (EX.replace("action: accept}\n  - name: ping", "action: allow}\n  - name: ping"), "rules[0].action:"),
    (EX.replace("from: mgmt, to: self", "from: self, to: mgmt"), "rules[0].from: unknown zone 'self'"),
    (EX.replace("interfaces: [lan0]", "interfaces: [lan1]"), "zones.lan.interfaces[0]: unknown interface 'lan1'"),
    (EX.replace("interfaces: [guest0]", "interfaces: [lan0]"), "zones.guest.interfaces[0]: interface 'lan0' is already in zone 'lan'"),
    (EX.replace("{from: guest, to: lan, action: drop}", "{from: guest, to: lab, action: drop}"), "policies[4].to: unknown zone 'lab'"),
    (EX.replace("- {out: wan}", "- {out: wlan}"), "nat.masquerade[0].out: unknown zone 'wlan'"),
    (EX.replace("in: wan, proto", "in: wam, proto"), "nat.forwards[0].in: unknown zone 'wam'"),
    (EX.replace("192.168.10.10:443", "10.1.2.3:443"), "nat.forwards[0].to: target 10.1.2.3 is outside every interface subnet"),
    (EX.replace("192.168.10.10:443", "192.168.10.10:70000"), "nat.forwards[0].to: port 70000 out of range"),
    (EX.replace("name: ping-router", "name: ssh-from-mgmt"), "rules[1].name: duplicate rule name 'ssh-from-mgmt'"),
    (EX.replace("192.168.20.1/24", "192.168.10.7/16"), "interfaces.guest0.ipv4: subnet 192.168.0.0/16 overlaps 192.168.10.0/24 on interface lan0"),
    (EX.replace("2001:db8:10:20::1/64", "2001:db8:10:10::2/64"), "interfaces.guest0.ipv6: subnet 2001:db8:10:10::/64 overlaps"),
    (EX.replace("via: 198.51.100.1}", "via: 10.0.0.1}"), "routes[0].via: gateway 10.0.0.1 is not on any interface subnet"),
    (EX.replace("to: 0.0.0.0/0, via", "to: 0.0.0.0/0, via: 198.51.100.1, metric: -1, x"), "routes[0]"),
    (EX + "sets:\n  bad: {addresses: [10.0.0.1/8]}\n", "sets.bad.addresses"),
    (EX.replace("to: self, proto: tcp, dport: 22", "to: self, src: [admins], proto: tcp, dport: 22"),
     "rules[0].src[0]: unknown address set 'admins'"),
    (EX.replace("proto: tcp, dport: 22", "proto: icmp, dport: 22"), "rules[0]: ports need proto tcp or udp"),
]


# Cases whose one mistake rightly yields a second, consequential problem.
SECOND = {"zones.lan.interfaces[0]: unknown interface 'lan1'": "nat.forwards[0].to: target 192.168.10.10 is outside",
          "interfaces.guest0.ipv4: subnet 192.168.0.0/16 overlaps 192.168.10.0/24 on interface lan0":
              "interfaces.mgmt0.ipv4: subnet 192.168.99.0/24 overlaps 192.168.0.0/16",
          "routes[0]": "routes[0].x: unknown key"}


@pytest.mark.parametrize("text, expected", CASES, ids=[e for _, e in CASES])
def test_bad_input_names_its_path(text, expected):
    got = problems(text)
    assert got and got[0].startswith(expected), got
    if expected in SECOND:
        assert len(got) == 2 and got[1].startswith(SECOND[expected]), got
    else:
        assert len(got) == 1, got


def test_shadowed_rule_is_a_warning_not_an_error():
    text = EX.replace("rules:\n", "rules:\n  - {name: all-mgmt, from: mgmt, to: self, action: accept}\n")
    cfg, probs = validate_text(text)
    assert cfg is not None
    assert [str(p) for p in probs] == [
        "rules[1]: warning: rule 'ssh-from-mgmt' is shadowed by rules[0] ('all-mgmt', same action); it never matches"]


def test_narrower_earlier_rule_does_not_shadow():
    text = EX.replace("rules:\n", "rules:\n  - {name: one-host, from: mgmt, to: self, src: [192.168.99.7/32], "
                                  "proto: tcp, dport: 22, action: drop}\n")
    assert validate_text(text)[1] == []


def test_families_follow_addresses_and_sets():
    text = EX + "sets:\n  admins: {addresses: [192.168.99.0/28, 2001:db8:10:99::/120]}\n"
    text = text.replace("to: self, proto: tcp, dport: 22", "to: self, src: [admins], proto: tcp, dport: 22")
    cfg, probs = validate_text(text)
    assert cfg is not None and probs == []
    mixed = text.replace("src: [admins]", "src: [192.168.99.0/24], dst: [2001:db8:10:99::1/128]")
    assert any("can never match" in p for p in problems(mixed))


def test_round_trip_and_defaults():
    cfg = load_config(EX)
    assert cfg.rules[0].counter is True and cfg.rules[0].log is False
    assert cfg.nat.masquerade[0].family == "ipv4"  # NAT66 is opt-in
    assert cfg.routes[1].to == "::/0"
    assert "default" not in [r.to for r in cfg.routes]
    assert load_config("routes: [{to: default, via: '2001:db8::1', interface: x}]").routes[0].to == "::/0"


def test_empty_document_is_valid_and_has_no_checks_failing():
    cfg = load_config("")
    assert check(cfg) == []


def test_schema_is_json_schema_with_the_sections():
    s = json_schema()
    json.dumps(s)
    assert {"interfaces", "zones", "policies", "rules", "nat", "routes", "sets", "system"} <= set(s["properties"])
    assert s["additionalProperties"] is False


def test_gateway_cannot_be_our_own_address():
    got = problems(EX.replace("via: 198.51.100.1}", "via: 198.51.100.2}"))
    assert "routes[0].via: gateway 198.51.100.2 is one of the router's own addresses" in got


def test_rp_filter_off_survives_yaml_booleans():
    """`rp_filter: off` is what an admin writes; YAML 1.1 reads it as false."""
    for word, want in (("off", "off"), ("'off'", "off"), ("loose", "loose"), ("on", "strict")):
        cfg, probs = validate_text(EX.replace("  mgmt0:\n", f"  mgmt0:\n    rp_filter: {word}\n"))
        assert cfg is not None and cfg.interfaces["mgmt0"].rp_filter == want, probs
    _, probs = validate_text(EX.replace("  mgmt0:\n", "  mgmt0:\n    rp_filter: 3\n"))
    assert [p.path for p in probs] == ["interfaces.mgmt0.rp_filter"]
