"""nat.nptv6 (backend/model/nptv6.py, backend/render/nptv6.py): bad documents refused with their
paths, the rendered prefix maps (static and from a delegated prefix, following the delegation),
the kernel's nft accepting them, and the tracer translating like the kernel. Real traffic:
tests/lab/test_nptv6_lab.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.host.applier import Desired, Facts
from backend.model.load import validate_text
from backend.render.nft import render
from backend.trace.evaluator import Packet, Tracer

from .nftcheck import load_and_list, need_nft

UPLINK = (Path(__file__).resolve().parents[2] / "backend" / "lab" / "uplink.yaml").read_text()
NPT = "  nptv6:\n    - {interface: wan0, inside: fd00:10:10::/64, outside: {from_delegated: wan0, subnet: 0x20}}\n"
RULE = "  - {name: web-to-npt, from: wan, to: lan, dst: fd00:10:10::/64, proto: tcp, dport: 80, action: accept}\n"


def doc(npt: str = NPT) -> str:
    t = UPLINK.replace("nat:\n", "nat:\n" + npt, 1)
    t = t.replace('ipv6: [{from_delegated: wan0, subnet: 0x10, host: "::1"}]',
                  'ipv6: [{from_delegated: wan0, subnet: 0x10, host: "::1"}, "fd00:10:10::1/64"]', 1)
    t = t.replace('dhcp:\n  lan0: {ipv6: {pools: ["::1000-::1fff"]}}', "", 1)  # a pool of one /64 only
    return t.replace("rules:\n", "rules:\n" + RULE, 1)


def errors(text: str) -> list[str]:
    return [f"{p.path}: {p.message}" for p in validate_text(text)[1] if p.severity == "error"]


def test_the_document_is_valid():
    assert errors(doc()) == []


@pytest.mark.parametrize("entry, path, why", [
    ("{interface: wan0, inside: fd00:10:10::/64, outside: 2001:db8:77::/48}", "nat.nptv6[0].outside", "same length"),
    ("{interface: wan0, inside: fd00:10:10::/64, outside: fd00:10:10::/64}", "nat.nptv6[0].outside", "overlaps"),
    ("{interface: wan9, inside: fd00:10:10::/64, outside: 2001:db8:77:10::/64}", "nat.nptv6[0].interface",
     "unknown interface"),
    ("{interface: wan0, inside: fd00:10:10::/64, outside: {from_delegated: wan9}}",
     "nat.nptv6[0].outside.from_delegated", "unknown interface"),
    ("{interface: wan0, inside: fd00:10:10::/64, outside: {from_delegated: lan0}}",
     "nat.nptv6[0].outside.from_delegated", "does not ask for a delegated prefix"),
    ("{interface: wan0, inside: fd00:10:10::/64, outside: {from_delegated: wan0, subnet: 0x100}}",
     "nat.nptv6[0].outside.subnet", "beyond the delegated length"),
    ("{interface: wan0, inside: fd00:10:10::/64, outside: {from_delegated: wan0, host: '::5'}}",
     "nat.nptv6[0].outside.host", "no host"),
    ("{interface: wan0, inside: fd00:10:10::/96, outside: 2001:db8:77::/96}", "nat.nptv6[0].inside", "/16 to /64"),
    ("{interface: wan0, inside: {from_delegated: wan0, subnet: 1}, outside: {from_delegated: wan0, subnet: 1}}",
     "nat.nptv6[0].outside", "same delegated subnet"),
])
def test_bad_translations_are_refused_with_their_path(entry, path, why):
    errs = errors(doc(f"  nptv6:\n    - {entry}\n"))
    assert any(e.startswith(f"{path}: ") and why in e for e in errs), errs


def test_a_static_mapping_renders_both_directions():
    cfg = validate_text(doc("  nptv6:\n    - {interface: wan0, inside: fd00:10:10::/64, outside: 2001:db8:77:10::/64}\n"))[0]
    text = render(cfg).text()
    assert ('oifname "wan0" meta nfproto ipv6 ip6 saddr fd00:10:10::/64 counter '
            'snat ip6 prefix to ip6 saddr map { fd00:10:10::/64 : 2001:db8:77:10::/64 }') in text
    assert ('iifname "wan0" meta nfproto ipv6 ip6 daddr 2001:db8:77:10::/64 counter '
            'dnat ip6 prefix to ip6 daddr map { 2001:db8:77:10::/64 : fd00:10:10::/64 }') in text
    post = text.split("chain postrouting_nat", 1)[1]
    assert post.index("snat ip6 prefix") < post.index("masquerade")  # before the masquerade takes the packet


def test_a_delegated_side_follows_the_delegation():
    cfg = validate_text(doc())[0]
    assert "prefix to" not in Desired(cfg).ruleset.text()  # nothing delegated: nothing translated
    a = Desired(cfg, Facts(delegated={"wan0": ("2001:db8:4000:100::/56",)})).ruleset.text()
    assert "map { fd00:10:10::/64 : 2001:db8:4000:120::/64 }" in a
    b = Desired(cfg, Facts(delegated={"wan0": ("2001:db8:5000::/56",)})).ruleset.text()
    assert "map { fd00:10:10::/64 : 2001:db8:5000:20::/64 }" in b and "2001:db8:4000" not in b


def test_the_kernel_accepts_the_rendered_maps():
    need_nft()
    cfg = validate_text(doc())[0]
    rs = Desired(cfg, Facts(delegated={"wan0": ("2001:db8:4000:100::/56",)})).ruleset
    listed = load_and_list({"nftables": rs.commands()})
    got = [r["rule"]["expr"][-1] for r in listed if "rule" in r and r["rule"].get("comment") == "nptv6 nptv6-wan0"]
    assert [next(iter(x)) for x in got] == ["dnat", "snat"], got
    assert all(x[next(iter(x))].get("type_flags") == "prefix" for x in got), got
    assert load_and_list(text=rs.text())  # the text form too


def test_the_tracer_translates_like_the_kernel():
    cfg = validate_text(doc() + "routes:\n  - {name: v6-default, to: '::/0', interface: wan0}\n")[0]
    eff = Desired(cfg, Facts(delegated={"wan0": ("2001:db8:4000:100::/56",)})).cfg
    t = Tracer(eff)
    out = t.trace(Packet(iif="lan0", src="fd00:10:10::50", dst="2001:db8:203::10", proto="tcp", dport=80))
    assert out.verdict == "accept" and out.nat == [
        {"type": "snat", "rule": "nptv6 nptv6-wan0", "to": "2001:db8:4000:120::50"}], out.nat
    back = t.trace(Packet(iif="wan0", src="2001:db8:203::10", dst="2001:db8:4000:120::50", proto="tcp", dport=80))
    assert back.verdict == "accept" and back.rule == "rule web-to-npt", back
    assert back.nat == [{"type": "dnat", "rule": "nptv6 nptv6-wan0", "to": "[fd00:10:10::50]:80"}]
    other = t.trace(Packet(iif="wan0", src="2001:db8:203::10", dst="2001:db8:4000:120::50", proto="tcp", dport=22))
    assert other.verdict == "drop"  # translated, but no rule lets the wan reach that port
