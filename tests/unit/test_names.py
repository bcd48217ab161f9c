"""backend/model/names.py: one map from document names to kernel and daemon identifiers, with the
collision and length checks validate runs (kernel-level tests: tests/security/test_names.py)."""

from __future__ import annotations

import ipaddress
import re
import zlib

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from backend.host.nft import over_limit
from backend.lab.lab import example_config
from backend.model import load_config, validate_text
from backend.model import names as N
from backend.render.nft import NChain, NSet, Ruleset, log, render


def test_nft_identifiers_keep_the_names_verbatim():
    assert N.set_ident("ssh-admins", 4) == "set_ssh-admins_v4"
    assert N.set_ident("ssh_admins", 4) == "set_ssh_admins_v4"
    assert N.set_ident("ssh.admins", 6) == "set_ssh.admins_v6"
    assert N.zone_in_chain("lan-2") == "zone_lan-2_in"
    assert N.zone_pair_chain("lan", "wan") == "zone_lan_to_wan"  # the established, readable form
    assert len({N.zone_in_chain(z) for z in ("a-b", "a_b", "a.b")}) == 3


def test_longest_names_fit_the_kernel():
    z = "z" * 63
    assert len(N.zone_pair_chain(z, z).encode()) <= N.NFT_NAME_MAX
    assert len(N.set_ident(z, 6).encode()) <= N.NFT_NAME_MAX
    assert len(N.policy_comment(f"{z}-{z}").encode()) <= N.NFT_COMMENT_MAX


@given(st.text(max_size=400))
def test_log_prefixes_are_bounded_whatever_the_label(label):
    p = N.log_prefix(label)
    assert len(p.encode()) <= N.LOG_PREFIX_LEN <= N.LOG_PREFIX_MAX
    assert p.startswith("tg ") and p.endswith(": ")
    if len(f"tg {label}: ".encode()) <= N.LOG_PREFIX_LEN:
        assert p == f"tg {label}: "


def test_long_log_labels_stay_distinct():
    a, b = "policy " + "a" * 63 + "-" + "b" * 63, "policy " + "a" * 63 + "-" + "c" * 63
    assert N.log_prefix(a) != N.log_prefix(b)
    assert re.fullmatch(r"tg policy a+~[0-9a-f]{8}: ", N.log_prefix(a))


def test_short_log_prefixes_are_unchanged():
    assert N.log_prefix("ssh-from-mgmt") == "tg ssh-from-mgmt: "
    assert N.log_prefix(N.zone_comment("wan", "input")) == "tg zone wan input: "


# -- validate: collisions and limits ----------------------------------------------------------


def _dhcp(extra: dict) -> dict:
    d = {"system": {"domain": "lan.example"},
         "interfaces": {"p0": {"ipv4": ["10.0.0.1/24"]}, "p1": {"ipv4": ["10.0.1.1/24"]}},
         "zones": {"z": {"interfaces": ["p0", "p1"]}},
         "dhcp": {"p0": {"ipv4": {}, "reservations": [{"name": "printer", "mac": "02:00:00:00:00:01",
                                                        "ipv4": "10.0.0.5"}]},
                  "p1": {"ipv4": {}}}}
    d.update(extra)
    return d


def _errors(doc: dict) -> list[str]:
    cfg, problems = validate_text(yaml.safe_dump(doc))
    errors = [str(p) for p in problems if p.severity == "error"]
    assert (cfg is None) == bool(errors)
    return errors


def test_reservation_names_are_one_host_name_across_scopes():
    d = _dhcp({})
    d["dhcp"]["p1"]["reservations"] = [{"name": "Printer", "mac": "02:00:00:00:00:02", "ipv4": "10.0.1.5"}]
    assert _errors(d) == ["dhcp.p1.reservations[0].name: host name 'Printer' would be the same as the one of "
                          "dhcp.p0.reservations[0].name, 'printer' there: rename one of them"]


def test_a_dns_host_and_a_reservation_with_one_name_are_refused_with_both_paths():
    d = _dhcp({"dns": {"zones": {"z": "allow"}, "hosts": [{"name": "PRINTER", "ipv4": ["10.0.1.9"]}]}})
    assert _errors(d) == ["dns.hosts[0].name: host name 'PRINTER' would be the same as the one of "
                          "dhcp.p0.reservations[0].name, 'printer' there: rename one of them"]


def test_the_same_name_twice_in_one_scope_is_refused_once():
    d = _dhcp({})
    d["dhcp"]["p0"]["reservations"].append({"name": "printer", "mac": "02:00:00:00:00:03", "ipv4": "10.0.0.6"})
    assert _errors(d) == ["dhcp.p0.reservations[1].name: host name 'printer' would be the same as the one of "
                          "dhcp.p0.reservations[0].name: rename one of them"]


def test_the_lan_domain_leaves_room_for_a_host_name():
    room = N.DNS_NAME_MAX - N.DNS_LABEL_MAX - 1
    labels = ["d" * 60, "e" * 60, "f" * 60]
    ok = ".".join(labels)[:room].rstrip(".")
    assert _errors(_dhcp({"system": {"domain": ok}})) == []
    long = ".".join([*labels, "g" * 10])
    assert len(long) > room
    assert _errors(_dhcp({"system": {"domain": long}})) == [
        f"system.domain: the LAN domain is {len(long)} characters; at most {room} leave room for a 63-character "
        "host name within DNS's 253"]


def _kea_collision() -> tuple[tuple[str, str], tuple[str, str]]:
    """Two (interface, /24) scopes whose Kea subnet ids (crc32) collide: a birthday search."""
    from backend.render.kea import subnet_id

    seen: dict[int, tuple[str, str]] = {}
    for i in range(1 << 20):
        ifname, net = f"d{i}", str(ipaddress.ip_network((0x0A000000 + (i << 8), 24)))
        sid = subnet_id(ifname, net)
        if sid in seen:
            return seen[sid], (ifname, net)
        seen[sid] = (ifname, net)
    raise AssertionError("no collision found")


def test_kea_subnet_ids_that_collide_are_refused():
    (if1, n1), (if2, n2) = _kea_collision()
    assert zlib.crc32(f"{if1} {n1}".encode()) & 0x7FFFFFFF == zlib.crc32(f"{if2} {n2}".encode()) & 0x7FFFFFFF

    def addr(n):
        return str(ipaddress.ip_network(n)[1]) + "/24"

    d = {"interfaces": {if1: {"ipv4": [addr(n1)]}, if2: {"ipv4": [addr(n2)]}},
         "zones": {"z": {"interfaces": [if1, if2]}}, "dhcp": {if1: {"ipv4": {}}, if2: {"ipv4": {}}}}
    errors = _errors(d)
    assert len(errors) == 1
    first, second = sorted([if1, if2])  # Kea's interfaces are rendered (and checked) in name order
    assert errors[0].startswith(f"dhcp.{second}.ipv4: kea-dhcp4 subnet id ")
    assert errors[0].endswith(f"would be the same as the one of dhcp.{first}.ipv4: rename one of them")


def test_the_collision_check_catches_a_folding_mapping(monkeypatch):
    """The guard does not rely on the mapping being injective: fold '-' into '_' again (the old
    renderer) and the document that merged sets in the kernel is refused with both paths."""
    monkeypatch.setattr(N, "set_ident", lambda name, fam: "set_" + re.sub(r"[^A-Za-z0-9_]", "_", name) + f"_v{fam}")
    d = {"interfaces": {"m0": {"ipv4": ["192.0.2.1/24"]}}, "zones": {"m": {"interfaces": ["m0"]}},
         "sets": {"ssh-admins": {"addresses": ["192.0.2.20/32"]}, "ssh_admins": {"addresses": ["192.0.2.10/32"]}}}
    assert _errors(d) == [
        "sets.ssh_admins: nftables set 'set_ssh_admins_v4' would be the same as the one of sets.ssh-admins: "
        "rename one of them"]  # one problem per pair of items, not one per family


def test_the_example_has_no_name_problems():
    assert N.check_names(load_config(example_config())) == []


# -- the renderer's and the host layer's own guards ---------------------------------------------


def test_the_renderer_refuses_a_long_log_prefix():
    assert log("p" * N.LOG_PREFIX_MAX).json == {"log": {"prefix": "p" * N.LOG_PREFIX_MAX}}
    with pytest.raises(ValueError, match="128 bytes"):
        log("p" * 128)


def test_a_ruleset_never_holds_one_name_twice():
    with pytest.raises(ValueError, match="chain name"):
        Ruleset([NChain("zone_a_in"), NChain("zone_a_in")], [])
    with pytest.raises(ValueError, match="set name"):
        Ruleset([], [NSet("s", "ipv4_addr", []), NSet("s", "ipv4_addr", [])])
    with pytest.raises(ValueError, match="longer than 255"):
        Ruleset([NChain("c" * 256)], [])


def test_host_layer_passes_rendered_rulesets_and_stops_over_limit_input():
    assert over_limit(render(load_config(example_config())).commands()) is None
    t = {"family": "inet", "table": "t"}
    rule = dict(t, chain="c", expr=[{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "x"}},
                                    {"log": {"prefix": "p" * 137}}, {"accept": None}])
    why = over_limit([{"add": {"rule": rule}}])
    assert why and why.startswith("log prefix of 137 bytes (the kernel takes at most 127")
    assert len(why) < 200  # the message does not echo the input
    assert over_limit([{"add": {"rule": dict(t, chain="c", expr=[], comment="x" * 254)}}]).startswith(
        "rule comment of 254 bytes")
    assert over_limit([{"add": {"rule": dict(t, chain="c", expr=[{"match": {
        "op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "@" + "s" * 256}}])}}]
    ).startswith("set name of 256 bytes")
    assert over_limit([{"flush": {"chain": dict(t, name="c" * 256)}}]).startswith("chain name of 256 bytes")


def test_the_agent_refuses_what_the_renderer_guard_catches(monkeypatch, tmp_path):
    """Should check_names ever miss a collision, the agent's check still refuses with a problem
    (no 500, nothing handed to libnftables): here the check is switched off and the old folding
    mapping switched back on."""
    from backend.agent.pipeline import Pipeline, Refused

    monkeypatch.setattr("backend.model.checks.check_names", lambda cfg: [])
    monkeypatch.setattr(N, "set_ident", lambda name, fam: "set_" + re.sub(r"[^A-Za-z0-9_]", "_", name) + f"_v{fam}")
    p = Pipeline(tmp_path / "repo", tmp_path / "state")
    doc = {"interfaces": {"m0": {"ipv4": ["192.0.2.1/24"]}}, "zones": {"m": {"interfaces": ["m0"]}},
           "sets": {"guard-a": {"addresses": ["192.0.2.20/32"]}, "guard_a": {"addresses": ["192.0.2.10/32"]}}}
    with pytest.raises(Refused) as e:
        p.check_text(yaml.safe_dump(doc) + f"# {tmp_path}\n")  # a text no other test has cached
    assert [str(x) for x in e.value.problems] == [
        "(ruleset): render: set name(s) set_guard_a_v4, set_guard_a_v6 rendered twice"]


def test_blocklist_names_longer_than_dns_allows_are_skipped():
    """A blocklist file is runtime input: a 255-character 'domain' in it made unbound-checkconf refuse
    the whole rendered config ("cannot parse name"), so one bad line blocked every commit."""
    from backend.render.unbound import parse_blocklist

    long = ".".join(["a" * 63] * 4)  # 255 characters, every label valid
    fits = long[:N.DNS_NAME_MAX].rstrip(".")
    assert parse_blocklist(f"{long}\n{fits}\nads.example\n", "domains") == [fits, "ads.example"]
    assert parse_blocklist(f"0.0.0.0 {long} ads.example\n", "hosts") == ["ads.example"]
