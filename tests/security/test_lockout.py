"""Lockout proof on content, not names (issue 11, class 4): every path the running config's
access entries admit — each source prefix, probed from real addresses inside it — must stay
open in the candidate; probes the running config already drops are not flagged."""

from __future__ import annotations

import ipaddress
import json

import pytest

from backend.agent.lockout import cuts, probe_hosts
from backend.lab.lab import example_config
from backend.model import validate_text

EX = example_config()
SSH_RULE = "  - {name: ssh-from-mgmt, from: mgmt, to: self, proto: tcp, dport: 22, action: accept}\n"
SSH_ACCESS = "    - {name: ssh, from: mgmt, port: 22}\n"


def cfg(text: str):
    c, probs = validate_text(text)
    assert c is not None, probs
    return c


def with_rules(text: str, *rules: str) -> str:
    assert SSH_RULE in text
    return text.replace(SSH_RULE, "".join(f"  - {r}\n" for r in rules))


def with_access(text: str, *entries: str) -> str:
    assert SSH_ACCESS in text
    return text.replace(SSH_ACCESS, "".join(f"    - {e}\n" for e in entries))


def cut_text(running: str, candidate: str) -> list[str]:
    return [str(c) for c in cuts(cfg(running), cfg(candidate), None)]


def test_unchanged_and_unrelated_changes_cut_nothing():
    assert cut_text(EX, EX) == []
    other = EX.replace("{name: web, in: wan, proto: tcp, dport: 8443", "{name: web, in: wan, proto: tcp, dport: 8444")
    assert other != EX and cut_text(EX, other) == []


def test_changing_the_port_under_the_same_name_checks_the_old_path():
    cand = with_access(with_rules(EX, "{name: ssh-from-mgmt, from: mgmt, to: self, proto: tcp, dport: 2222, "
                                      "action: accept}"), "{name: ssh, from: mgmt, port: 2222}")
    got = cut_text(EX, cand)
    assert any(c.startswith("access 'ssh' (192.168.99.2 -> 192.168.99.1 tcp/22): drop") for c in got), got
    assert any("-> 2001:db8:10:99::1 tcp/22" in c for c in got), got
    # the new entry itself is proven too: port 2222 is open, so only the old path is reported
    assert not any("2222" in c for c in got), got


def test_renaming_and_moving_an_entry_still_checks_the_old_path():
    cand = with_access(with_rules(EX, "{name: ssh-alt, from: mgmt, to: self, proto: tcp, dport: 2222, "
                                      "action: accept}"), "{name: admin, from: mgmt, port: 2222}")
    got = cut_text(EX, cand)
    assert any(c.startswith("access 'ssh' (192.168.99.2 -> 192.168.99.1 tcp/22)") for c in got), got


def test_a_single_source_address_is_probed_exactly():
    run = with_access(with_rules(EX, "{name: ssh-admin, from: mgmt, to: self, src: 192.168.99.10/32, proto: tcp, "
                                     "dport: 22, action: accept}"),
                      "{name: ssh, from: mgmt, port: 22, src: 192.168.99.10/32}")
    assert cut_text(run, run) == []  # the exact address is admitted, not a synthetic .2
    cand = run.replace("src: 192.168.99.10/32, proto", "src: 192.168.99.11/32, proto")
    got = cut_text(run, cand)
    assert got == ["access 'ssh' (192.168.99.10 -> 192.168.99.1 tcp/22): drop by zone mgmt input"], got


def test_a_running_rule_that_narrows_the_source_defines_what_is_admitted():
    # The entry covers the zone, but the running rules admit only 192.168.99.10: the other
    # addresses are not admitted today, so they are not flagged, and .10 must stay open.
    run = with_rules(EX, "{name: ssh-admin, from: mgmt, to: self, src: 192.168.99.10/32, proto: tcp, dport: 22, "
                         "action: accept}")
    assert cut_text(run, run) == []
    unrelated = run.replace("dport: 8443", "dport: 8444")
    assert cut_text(run, unrelated) == []
    moved = run.replace("src: 192.168.99.10/32", "src: 192.168.99.11/32")
    got = cut_text(run, moved)
    assert len(got) == 1 and got[0].startswith("access 'ssh' (192.168.99.10 -> 192.168.99.1 tcp/22): drop"), got


def test_a_candidate_rule_dropping_one_host_inside_the_prefix_is_found():
    cand = with_rules(EX, "{name: no-50, from: mgmt, to: self, src: 192.168.99.50/32, action: drop}", SSH_RULE[4:-1])
    got = cut_text(EX, cand)
    assert len(got) == 1 and got[0].startswith("access 'ssh' (192.168.99.50 -> 192.168.99.1 tcp/22): drop by rule no-50"), got


def test_ipv6_paths_are_checked():
    cand = with_rules(EX, "{name: ssh-from-mgmt, from: mgmt, to: self, proto: tcp, dport: 22, family: ipv4, "
                          "action: accept}")
    got = cut_text(EX, cand)
    assert len(got) == 1, got
    assert got[0].startswith("access 'ssh' (2001:db8:10:99::2 -> 2001:db8:10:99::1 tcp/22): drop"), got
    assert "also from 2001:db8:10:99:ffff:ffff:ffff:ffff" in got[0], got
    v6src = with_access(EX, "{name: ssh6, from: mgmt, port: 22, src: '2001:db8:10:99::abc/128'}")
    assert cut_text(v6src, v6src) == []
    got = cut_text(v6src, cand.replace(SSH_ACCESS, "    - {name: ssh6, from: mgmt, port: 22, "
                                                   "src: '2001:db8:10:99::abc/128'}\n"))
    assert len(got) == 1 and got[0].startswith("access 'ssh6' (2001:db8:10:99::abc -> 2001:db8:10:99::1 tcp/22)"), got


def test_a_new_entry_must_be_open_in_the_candidate():
    cand = with_access(EX, SSH_ACCESS[6:-1], "{name: api, from: mgmt, port: 6443}")
    got = cut_text(EX, cand)
    assert any(c.startswith("access 'api' (192.168.99.2 -> 192.168.99.1 tcp/6443): drop") for c in got), got
    assert not any("'ssh'" in c for c in got), got
    # without a running config (first commit) the candidate's entries are proven alone
    assert [str(c) for c in cuts(None, cfg(cand), None)] == got


def test_removing_the_interface_is_a_cut():
    cand = EX.replace("  mgmt0:\n    ipv4: [192.168.99.1/24]\n    ipv6: [2001:db8:10:99::1/64]\n", "") \
             .replace("  management_interface: mgmt0\n", "").replace("interfaces: [mgmt0]", "interfaces: []")
    got = cut_text(EX, cand)
    assert got == ["access 'ssh' via mgmt0 (the candidate removes the interface): drop by no rule (no route)"], got


def test_renumbering_the_router_is_a_cut():
    # The admin no longer reaches the router, whatever else happens to the packet: with
    # anti-spoofing on (the default) mgmt0 has no route back to 192.168.99.0/24 any more, so it is
    # dropped at once; with it off the old address would be routed on to the isp.
    cand = EX.replace("192.168.99.1/24", "192.168.98.1/24")
    got = cut_text(EX, cand)
    assert got == ["access 'ssh' (192.168.99.2 -> 192.168.99.1 tcp/22): 192.168.99.1 is no longer the router's "
                   "address (drop) (also from 192.168.99.254)"], got
    off = "  mgmt0:\n    rp_filter: off\n"
    assert EX.count("  mgmt0:\n") == 1
    got = cut_text(EX.replace("  mgmt0:\n", off), cand.replace("  mgmt0:\n", off))
    assert got == ["access 'ssh' (192.168.99.2 -> 192.168.99.1 tcp/22): 192.168.99.1 is no longer the router's "
                   "address (forwarded to wan0) (also from 192.168.99.254)"], got


def test_probe_hosts():
    n = ipaddress.ip_network
    a = ipaddress.ip_address
    assert probe_hosts(n("192.168.99.10/32")) == [a("192.168.99.10")]
    assert probe_hosts(n("192.168.99.0/24"), {a("192.168.99.1")}) == [a("192.168.99.2"), a("192.168.99.254")]
    assert probe_hosts(n("192.168.99.0/24"), {a("192.168.99.254")}) == [a("192.168.99.1"), a("192.168.99.253")]
    assert probe_hosts(n("192.168.99.0/31")) == [a("192.168.99.0"), a("192.168.99.1")]
    assert probe_hosts(n("192.168.99.0/31"), {a("192.168.99.0")}) == [a("192.168.99.1")]
    assert probe_hosts(n("192.168.99.7/32"), {a("192.168.99.7")}) == []
    assert probe_hosts(n("2001:db8::/64"), {a("2001:db8::1")}) == [a("2001:db8::2"), a("2001:db8::ffff:ffff:ffff:ffff")]
    assert probe_hosts(n("2001:db8::5/128")) == [a("2001:db8::5")]


# ---- in the lab: real commits through the agent ---------------------------------------------

LAB_NARROW = with_rules(EX, "{name: ssh-admin, from: mgmt, to: self, src: 192.168.99.10/32, proto: tcp, dport: 22, "
                            "action: accept}")


@pytest.fixture(scope="module")
def lab_module(tmp_path_factory):
    from tests.lab.conftest import new_lab
    from tests.lab.util import LabHelper

    lab = new_lab(tmp_path_factory)
    try:
        yield LabHelper(lab)
    finally:
        lab.down()


@pytest.fixture
def lab(lab_module):
    """The module's lab running the example config; put back after each test."""
    yield lab_module
    if lab_module.client.config()["text"] != EX:
        lab_module.client.commit(EX, "back to the example", confirm=60, force=True)
        lab_module.client.confirm()


def kernel(lab) -> dict:
    """The router namespace's kernel state, without counters (traffic may tick them)."""
    return {"addr": json.loads(lab.router("ip", "-j", "addr")),
            "route4": json.loads(lab.router("ip", "-j", "route", "show", "table", "all")),
            "route6": json.loads(lab.router("ip", "-j", "-6", "route", "show", "table", "all")),
            "nft": json.loads(lab.router("nft", "-j", "-s", "list", "ruleset"))}


def refused(lab, text: str, msg: str) -> str:
    """Commit text through the CLI; assert it is refused and nothing changed; return stderr."""
    before, head = kernel(lab), lab.head()
    c = lab.cli("commit", "-m", msg, "--base", "HEAD", "-f", "/dev/stdin", input=text)
    assert c.returncode != 0, c.stdout
    assert lab.head() == head and kernel(lab) == before
    lab.assert_kernel_is_head()
    return c.stderr


def ssh_from_mgmt(lab) -> bool:
    return lab.tcp("mgmt", "192.168.99.1", 22) is not None   # the lab's mgmt host is 192.168.99.10


@pytest.mark.lab
def test_lab_port_change_under_the_same_name_is_refused(lab):
    cand = with_access(with_rules(EX, "{name: ssh-from-mgmt, from: mgmt, to: self, proto: tcp, dport: 2222, "
                                      "action: accept}"), "{name: ssh, from: mgmt, port: 2222}")
    err = refused(lab, cand, "move ssh to 2222")
    assert "would cut access 'ssh' (192.168.99.2 -> 192.168.99.1 tcp/22): drop" in err, err
    assert "-> 2001:db8:10:99::1 tcp/22" in err, err
    assert ssh_from_mgmt(lab)


@pytest.mark.lab
def test_lab_the_running_rules_define_the_admitted_sources(lab):
    # Narrowing ssh to one admin host cuts the rest of the zone: refused unless forced.
    err = refused(lab, LAB_NARROW, "ssh only from .10")
    assert "would cut access 'ssh' (192.168.99.2 -> 192.168.99.1 tcp/22): drop" in err, err
    lab.client.commit(LAB_NARROW, "ssh only from .10", confirm=60, force=True)
    lab.client.confirm()
    assert ssh_from_mgmt(lab)
    # Now .10 is what the running config admits: an unrelated change is not refused for the
    # addresses it already drops …
    unrelated = LAB_NARROW.replace("dport: 8443", "dport: 8444")
    r = lab.client.commit(unrelated, "unrelated change")
    assert not r.get("lockout_overridden") and lab.client.config()["text"] == unrelated
    # … and moving the rule away from .10 is refused, naming the real admin address.
    err = refused(lab, unrelated.replace("src: 192.168.99.10/32", "src: 192.168.99.11/32"), "ssh from .11")
    assert "would cut access 'ssh' (192.168.99.10 -> 192.168.99.1 tcp/22): drop" in err, err
    assert ssh_from_mgmt(lab)


@pytest.mark.lab
def test_lab_lo_is_refused_and_stays_intact(lab):
    lo_before = json.loads(lab.router("ip", "-j", "addr", "show", "lo"))
    addrs = {a["local"] for a in lo_before[0]["addr_info"]}
    assert {"127.0.0.1", "::1"} <= addrs
    err = refused(lab, EX.replace("interfaces:\n", "interfaces:\n  lo: {}\n", 1), "own lo")
    assert "interfaces.lo: 'lo' cannot be configured" in err, err
    assert json.loads(lab.router("ip", "-j", "addr", "show", "lo")) == lo_before


@pytest.mark.lab
def test_lab_routes_over_missing_or_disabled_links_are_refused(lab):
    ghost = EX.replace("interfaces:\n", "interfaces:\n  ghost0: {ipv4: [10.77.0.1/24]}\n", 1)
    err = refused(lab, ghost.replace("routes:\n", "routes:\n  - {name: via-ghost, to: 10.50.0.0/16, "
                                                  "interface: ghost0}\n"), "route via a missing link")
    assert "routes[0].interface: no such link 'ghost0' in the router's network namespace" in err, err
    assert "interfaces.ghost0: no such link" in err, err
    off = EX.replace("interfaces:\n", "interfaces:\n  ghost0: {enabled: false, ipv4: [10.77.0.1/24]}\n", 1)
    err = refused(lab, off.replace("routes:\n", "routes:\n  - {name: via-ghost, to: 10.50.0.0/16, "
                                                "interface: ghost0}\n"), "route via a disabled missing link")
    assert "routes[0].interface: interface 'ghost0' is disabled" in err, err
    err = refused(lab, off.replace("routes:\n", "routes:\n  - {name: via-ghost, to: 10.50.0.0/16, "
                                                "via: 10.77.0.254}\n"), "gateway on a disabled link")
    assert "routes[0].via: gateway 10.77.0.254 is only on the subnet of disabled interface 'ghost0'" in err, err
