"""A console edit changes only the lines of what was edited (issue 13, defect 4).

Each edit kind the console makes goes through the Candidate as the screens do; the candidate's text
is compared with HEAD's by lines (difflib, what `git diff --stat` counts): the removed and added
lines are exactly the edited item's, and comments, quoting, flow style and order elsewhere survive
byte for byte.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from console.candidate import Candidate, _blocks

LAB = Path(__file__).resolve().parents[2] / "backend" / "lab"
CONFIGS = ["example.yaml", "demo.yaml"]

NEW_RULE = {"name": "web", "from": "lan", "to": "wan", "proto": "tcp", "dport": [80, 443], "action": "accept"}
SSH_RULE = "  - {name: ssh-from-mgmt, from: mgmt, to: self, proto: tcp, dport: 22, action: accept}"
WEB_FWD = '    - {name: web, in: wan, proto: tcp, dport: 8443, to: "192.168.10.10:443"}'


def _edit_zone(c: Candidate) -> None:
    c.replace(c.interface_data("lan0", ["192.168.10.1/24"], ["2001:db8:10:10::1/64"], None, "guest"))


def _drop_zone(c: Candidate) -> None:
    data = c.data
    data["zones"].pop("mgmt")
    c.replace(data)


# (edit, removed lines, added lines); None = the same for both configs
EDITS = {
    "add a rule": (lambda c: c.put("rules", None, dict(NEW_RULE)), [],
                   ["  - {name: web, from: lan, to: wan, proto: tcp, dport: [80, 443], action: accept}"]),
    "edit a rule": (lambda c: c.put("rules", 1, {**c.rules[1], "action": "drop", "log": True}),
                    ["    action: accept"], ["    action: drop", "    log: true"]),
    "delete a rule": (lambda c: c.delete("rules", 0), [SSH_RULE], []),
    "move a rule": (lambda c: c.move("rules", 0, 1), [SSH_RULE], [SSH_RULE]),
    "add a forward": (lambda c: c.put("nat.forwards", None, {"name": "ssh", "in": "wan", "proto": "tcp", "dport": 2222,
                                                             "to": "192.168.10.10:22"}), [],
                      ['    - {name: ssh, in: wan, proto: tcp, dport: 2222, to: "192.168.10.10:22"}']),
    "edit a forward": (lambda c: c.put("nat.forwards", 0, {**c.forwards[0], "dport": 9443}),
                       [WEB_FWD], [WEB_FWD.replace("8443", "9443")]),
    "delete a forward": (lambda c: c.delete("nat.forwards", 0), ["  forwards:", WEB_FWD], []),
    "change an interface MTU": (
        lambda c: c.replace(c.interface_data("lan0", ["192.168.10.1/24"], ["2001:db8:10:10::1/64"], 9000, "lan")),
        [], ["    mtu: 9000"]),
    "move an interface to another zone": (
        _edit_zone, ["  lan:   {interfaces: [lan0], input: drop, forward: drop}",
                     "  guest: {interfaces: [guest0], input: drop, forward: drop}"],
        ["  lan: {interfaces: [], input: drop, forward: drop}",
         "  guest: {interfaces: [guest0, lan0], input: drop, forward: drop}"]),
    "delete a zone": (_drop_zone, ["  mgmt:  {interfaces: [mgmt0], input: drop, forward: drop}"], []),
    "delete a policy": (lambda c: c.delete("policies", 2), ["  - {from: mgmt, to: wan, action: accept}"], []),
    "change a route": (lambda c: c.put("routes", 1, {**c.data["routes"][1], "via": "2001:db8:100::2"}),
                       ['  - {name: default-v6, to: "::/0", via: "2001:db8:100::1"}'],
                       ['  - {name: default-v6, to: "::/0", via: "2001:db8:100::2"}']),
}
RESERVATION = {"name": "nas", "mac": "02:00:00:00:10:51", "ipv4": "192.168.10.51"}


def _diff(a: str, b: str) -> tuple[list[str], list[str]]:
    lines = list(difflib.unified_diff(a.splitlines(), b.splitlines(), lineterm="", n=0))
    removed = [ln[1:] for ln in lines if ln.startswith("-") and not ln.startswith("---")]
    added = [ln[1:] for ln in lines if ln.startswith("+") and not ln.startswith("+++")]
    return removed, added


def _check(head: str, c: Candidate, removed: list[str], added: list[str]) -> None:
    text = c.text()
    assert c.fallbacks == 0
    assert yaml.safe_load(text) == c.data
    got_removed, got_added = _diff(head, text)
    assert sorted(got_removed) == sorted(removed), text
    assert sorted(got_added) == sorted(added), text
    # every other line is an equal line of the diff: byte for byte, in order
    assert len(text.splitlines()) == len(head.splitlines()) - len(removed) + len(added)


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("kind", list(EDITS))
def test_console_edit_touches_only_the_edited_lines(config, kind):
    head = (LAB / config).read_text()
    c = Candidate(head, "rev")
    edit, removed, added = EDITS[kind]
    edit(c)
    assert c.dirty
    _check(head, c, removed, added)
    # the inline comment and the quotes elsewhere are still there
    text = c.text()
    assert "# IPv4 only; IPv6 is routed (2001:db8:10::/56 is ours)" in text
    assert 'to: "::/0", via: "2001:db8:100::' in text


@pytest.mark.parametrize("config", CONFIGS)
def test_a_reservation_keeps_every_dhcp_section_in_flow_style(config):
    head = (LAB / config).read_text()
    c = Candidate(head, "rev")
    c.put(("dhcp", "lan0", "reservations"), None, dict(RESERVATION))
    if "dhcp:" in head:  # demo: the flow-style item among flow-style items, with the sibling's quoting
        expected = ['      - {name: nas, mac: "02:00:00:00:10:51", ipv4: 192.168.10.51}']
    else:  # example: a new section at the end
        expected = ["dhcp:", "  lan0:", "    reservations:", "      - {name: nas, mac: 02:00:00:00:10:51, ipv4: 192.168.10.51}"]
    _check(head, c, [], expected)


def test_several_edits_in_a_row_each_stay_minimal():
    head = (LAB / "demo.yaml").read_text()
    c = Candidate(head, "rev")
    c.put("rules", None, dict(NEW_RULE))
    c.put(("dhcp", "guest0", "reservations"), None, {"name": "tv", "mac": "02:00:00:00:20:51", "ipv4": "192.168.20.51"})
    c.delete("policies", 0)
    removed, added = _diff(head, c.text())
    assert removed == ["  - {from: lan, to: wan, action: accept}"]
    assert added == ["  - {name: web, from: lan, to: wan, proto: tcp, dport: [80, 443], action: accept}",
                     "    reservations:", '      - {name: tv, mac: "02:00:00:00:20:51", ipv4: 192.168.20.51}'] \
        or added == ["  - {name: web, from: lan, to: wan, proto: tcp, dport: [80, 443], action: accept}",
                     "    reservations:", "      - {name: tv, mac: 02:00:00:00:20:51, ipv4: 192.168.20.51}"]
    # discard brings back HEAD's text exactly
    c.discard()
    assert not c.dirty and c.text() == head


def test_text_written_in_an_editor_is_kept_and_later_edits_stay_minimal():
    head = (LAB / "demo.yaml").read_text()
    c = Candidate(head, "rev")
    mine = head.replace("  mode: recursive\n", "  mode: recursive   # my note\n")
    c.set_text(mine)
    assert c.dirty and c.text() == mine  # a comment-only change is a change
    c.delete("rules", 0)
    removed, added = _diff(mine, c.text())
    assert (removed, added) == ([SSH_RULE], [])


def test_strings_that_yaml_1_1_reads_otherwise_are_quoted():
    head = (LAB / "example.yaml").read_text()
    c = Candidate(head, "rev")
    c.put("rules", None, {**NEW_RULE, "description": "yes"})
    assert yaml.safe_load(c.text())["rules"][-1]["description"] == "yes"


# -- any sequence of console edits: the text reads as the data, untouched sections stay byte for byte --

EDIT_KINDS = st.sampled_from(["add rule", "edit rule", "delete rule", "move rule", "add forward", "delete forward",
                              "reservation", "mtu", "zone", "policy", "dns", "route", "pool", "interface list"])


def _apply(c: Candidate, kind: str, n: int) -> None:
    rules, fwds = c.rules, c.forwards
    if kind == "add rule":
        c.put("rules", None, {**NEW_RULE, "name": f"r{n}", "dport": [n % 65535 + 1]})
    elif kind == "edit rule" and rules:
        c.put("rules", n % len(rules), {**rules[n % len(rules)], "action": ["drop", "reject", "accept"][n % 3]})
    elif kind == "delete rule" and rules:
        c.delete("rules", n % len(rules))
    elif kind == "move rule" and len(rules) > 1:
        c.move("rules", n % len(rules), 1 if n % 2 else -1)
    elif kind == "add forward":
        c.put("nat.forwards", None, {"name": f"f{n}", "in": "wan", "proto": "tcp", "dport": 1000 + n,
                                     "to": f"192.168.10.{n % 250 + 2}:80"})
    elif kind == "delete forward" and fwds:
        c.delete("nat.forwards", n % len(fwds))
    elif kind == "reservation":
        c.put(("dhcp", "lan0", "reservations"), None, {"name": f"h{n}", "mac": f"02:00:00:00:11:{n % 256:02x}",
                                                      "ipv4": f"192.168.10.{n % 50 + 20}"})
    elif kind == "mtu":
        c.replace(c.interface_data("lan0", ["192.168.10.1/24"], ["2001:db8:10:10::1/64"], 1280 + n, "lan"))
    elif kind == "zone":
        data = c.data
        data["zones"]["guest"] = {**data["zones"]["guest"], "log": bool(n % 2)}
        c.replace(data)
    elif kind == "policy":
        c.delete("policies", n % len(c.data["policies"])) if c.data.get("policies") else None
    elif kind == "dns":
        data = c.data
        data["dns"] = {**(data.get("dns") or {}), "cache_size": n % 4096 + 1}
        c.replace(data)
    elif kind == "pool" and ((c.data.get("dhcp") or {}).get("lan0") or {}).get("ipv4"):
        data = c.data
        data["dhcp"]["lan0"]["ipv4"]["pools"] = [f"192.168.10.{n % 100 + 100}-192.168.10.{n % 100 + 100}"]
        c.replace(data)
    elif kind == "interface list":  # a scalar item replaced in place in a flow list
        data = c.data
        data["zones"]["wan"]["interfaces"] = [f"wan{n % 3}"]
        c.replace(data)
    elif kind == "route":
        c.put("routes", None, {"name": f"rt{n}", "to": f"203.0.113.{n % 256}/32", "via": "198.51.100.1"})


@settings(max_examples=30, deadline=None)
@given(config=st.sampled_from(CONFIGS), edits=st.lists(st.tuples(EDIT_KINDS, st.integers(0, 10_000)), max_size=8))
def test_any_edit_sequence_keeps_what_it_did_not_touch(config, edits):
    head = (LAB / config).read_text()
    c = Candidate(head, "rev")
    for kind, n in edits:
        _apply(c, kind, n)
        text = c.text()
        assert yaml.safe_load(text) == c.data
        assert c.fallbacks == 0  # the minimal writer, never the fallback
        for key, block in _blocks(head)[1].items():
            if key in c.data and c.data[key] == c.head.get(key):  # an untouched section, comments above it too
                assert block.rstrip("\n") in text, key
    c.discard()
    assert c.text() == head


def test_inline_comments_on_list_items_stay_with_their_items():
    head = "version: 1\nntp:\n  serve:\n    - lan      # home\n    - guest    # visitors\n  enabled: true\n"
    c = Candidate(head, "rev")
    data = c.data
    data["ntp"]["serve"] = ["mgmt", "lan", "guest"]
    c.replace(data)
    assert _diff(head, c.text()) == ([], ["    - mgmt"])
    data = c.data
    data["ntp"]["serve"] = ["guest", "lan"]  # mgmt gone, the two swapped: each keeps its comment
    c.replace(data)
    text = c.text()
    assert "- guest    # visitors\n" in text and "- lan      # home\n" in text
    assert text.index("guest    #") < text.index("lan      #")


def test_a_scalar_replaced_in_a_flow_list_is_written():
    head = (LAB / "demo.yaml").read_text()
    c = Candidate(head, "rev")
    data = c.data
    data["dhcp"]["lan0"]["ipv4"]["pools"] = ["192.168.10.150-192.168.10.150"]
    c.replace(data)
    _check(head, c, ["    ipv4: {pools: [192.168.10.100-192.168.10.199], lease_time: 3600}"],
           ["    ipv4: {pools: [192.168.10.150-192.168.10.150], lease_time: 3600}"])
