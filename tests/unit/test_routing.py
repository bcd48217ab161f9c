"""routing: (OSPF, OSPFv3, BGP) — the model refuses bad documents with paths, frr.conf is rendered
purely and accepted by FRR's own parser, the import policy is what the docs say, and a config FRR's
checker refuses leaves the rendered files and HEAD as they were."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from backend.agent.pipeline import Pipeline
from backend.host.applier import HostContext
from backend.host.daemons import frr as frr_daemon
from backend.host.fake import FakeApplier
from backend.lab.lab import example_config
from backend.model.load import validate_text
from backend.render import frr as r_frr
from backend.render.nft import render as render_nft

ROUTING = """
routing:
  router_id: 198.51.100.2
  ospf:
    interfaces: {lan0: {area: 0, hello: 5, dead: 20, cost: 10}, guest0: {area: 10, passive: true}}
    redistribute: [connected]
  ospfv3:
    interfaces: {lan0: {area: 0.0.0.0}}
  bgp:
    asn: 65001
    networks: [192.168.10.0/24, "2001:db8:10::/56"]
    neighbors:
      - {address: 198.51.100.1, remote_asn: 65002, description: isp v4, import: ["203.0.113.0/24 le 32"]}
      - {address: "2001:db8:100::1", remote_asn: 65002, import: ["2001:db8::/32 le 64"], export: ["2001:db8:10:10::/64"]}
"""
TEXT = example_config() + ROUTING


def problems(text: str) -> list[tuple[str, str, str]]:
    cfg, probs = validate_text(text)
    return [(p.path, p.severity, p.message) for p in probs]


def errors(text: str) -> dict[str, str]:
    return {p: m for p, s, m in problems(text) if s == "error"}


def test_valid_document_has_no_problems_and_renders_deterministically():
    assert problems(TEXT) == []
    cfg = validate_text(TEXT)[0]
    a, b = r_frr.render_frr(cfg), r_frr.render_frr(validate_text(TEXT)[0])
    assert a == b and "no bgp ebgp-requires-policy" in a
    assert " ip ospf area 0.0.0.10" in a and " ip ospf passive" in a and " ipv6 ospf6 area 0.0.0.0" in a


def test_no_routing_no_file():
    assert r_frr.render_frr(validate_text(example_config())[0]) is None


@pytest.mark.skipif(shutil.which("vtysh") is None, reason="FRR's vtysh is not installed (make install)")
def test_frr_checker_accepts_the_rendered_config(tmp_path):
    f = tmp_path / "frr.conf"
    f.write_text(r_frr.render_frr(validate_text(TEXT)[0]))
    r = subprocess.run(["vtysh", "-C", "-f", str(f)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    # … and the checker is real: one bad line and it refuses.
    f.write_text(f.read_text().replace("router ospf\n", "router ospf\n bogus-command 1\n"))
    assert subprocess.run(["vtysh", "-C", "-f", str(f)], capture_output=True).returncode != 0


def test_import_policy_lines():
    txt = r_frr.render_frr(validate_text(TEXT)[0])
    pl = [ln for ln in txt.splitlines() if ln.startswith("ip prefix-list tg-in4-N0 ")]
    assert pl[0] == "ip prefix-list tg-in4-N0 seq 5 deny 0.0.0.0/0"              # no default
    assert "ip prefix-list tg-in4-N0 seq 10 deny 192.168.10.0/24 le 32" in pl     # own LAN never
    assert pl[-2] == "ip prefix-list tg-in4-N0 seq 30 permit 203.0.113.0/24 le 32"
    assert pl[-1] == "ip prefix-list tg-in4-N0 seq 35 deny 0.0.0.0/0 le 32"       # nothing else
    out6 = [ln for ln in txt.splitlines() if ln.startswith("ipv6 prefix-list tg-out6-N1 ")]
    assert out6 == ["ipv6 prefix-list tg-out6-N1 seq 5 permit 2001:db8:10::/56",
                    "ipv6 prefix-list tg-out6-N1 seq 10 permit 2001:db8:10:10::/64",
                    "ipv6 prefix-list tg-out6-N1 seq 15 deny ::/0 le 128"]
    # accept_default: the first deny goes, and nothing else changes.
    t2 = TEXT.replace("description: isp v4,", "description: isp v4, accept_default: true,")
    t2 = t2.replace('import: ["203.0.113.0/24 le 32"]', 'import: ["0.0.0.0/0", "203.0.113.0/24 le 32"]')
    pl2 = [ln for ln in r_frr.render_frr(validate_text(t2)[0]).splitlines() if ln.startswith("ip prefix-list tg-in4-N0 ")]
    assert "deny 0.0.0.0/0" not in pl2[0] and "permit 0.0.0.0/0" in " ".join(pl2)
    # Without accept_default a listed default is still refused (and the document is warned).
    t3 = TEXT.replace('import: ["203.0.113.0/24 le 32"]', 'import: ["0.0.0.0/0", "203.0.113.0/24 le 32"]')
    assert ("routing.bgp.neighbors[0].import[0]", "warning") in [(p, s) for p, s, _ in problems(t3)]
    assert r_frr.render_frr(validate_text(t3)[0]).count("tg-in4-N0 seq 5 deny 0.0.0.0/0\n") == 1


BAD = [
    ("asn: 65001", "asn: 0", "routing.bgp.asn"),
    ("asn: 65001", "asn: 4294967296", "routing.bgp.asn"),
    ("asn: 65001", "asn: -1", "routing.bgp.asn"),
    ("remote_asn: 65002, description", "remote_asn: 0, description", "routing.bgp.neighbors[0].remote_asn"),
    ("address: 198.51.100.1, remote_asn", "address: 192.0.2.7, remote_asn", "routing.bgp.neighbors[0].address"),
    ('address: "2001:db8:100::1"', "address: 198.51.100.1", "routing.bgp.neighbors[1].address"),
    ("address: 198.51.100.1, remote_asn", "address: 198.51.100.2, remote_asn", "routing.bgp.neighbors[0].address"),
    ("address: 198.51.100.1, remote_asn", "address: nope, remote_asn", "routing.bgp.neighbors[0].address"),
    ("{area: 0, hello", "{area: 0.0.0, hello", "routing.ospf.interfaces.lan0.area"),
    ("{area: 0, hello", "{area: 4294967296, hello", "routing.ospf.interfaces.lan0.area"),
    ("{area: 0, hello", "{area: backbone, hello", "routing.ospf.interfaces.lan0.area"),
    ("hello: 5, dead: 20", "hello: 20, dead: 5", "routing.ospf.interfaces.lan0"),
    ("router_id: 198.51.100.2", "router_id: '2001:db8::1'", "routing.router_id"),
    ("router_id: 198.51.100.2", "router_id: 1.2.3", "routing.router_id"),
    ("guest0: {area: 10", "nosuch0: {area: 10", "routing.ospf.interfaces.nosuch0"),
    ('import: ["203.0.113.0/24 le 32"]', 'import: ["203.0.113.0/24 le 16"]', "routing.bgp.neighbors[0].import"),
    ('import: ["203.0.113.0/24 le 32"]', 'import: ["203.0.113.1/24"]', "routing.bgp.neighbors[0].import"),
    ('import: ["203.0.113.0/24 le 32"]', 'import: ["2001:db8::/32"]', "routing.bgp.neighbors[0].import[0]"),
    ("redistribute: [connected]", "redistribute: [ospf]", "routing.ospf"),
    ("description: isp v4", "description: 'isp\\n!'", "routing.bgp.neighbors[0].description"),
]


@pytest.mark.parametrize("old,new,path", BAD, ids=[f"{b[2]}:{b[1]}" for b in BAD])
def test_bad_routing_is_refused_with_its_path(old, new, path):
    assert old in TEXT
    errs = errors(TEXT.replace(old, new, 1))
    assert any(p == path or p.startswith(path + ".") or p.startswith(path + "[") for p in errs), errs


def test_multihop_needs_a_zone_and_ibgp_off_link_needs_one_too():
    t = TEXT.replace("address: 198.51.100.1, remote_asn: 65002,", "address: 192.0.2.7, remote_asn: 65002, "
                                                                   "ebgp_multihop: 3,")
    assert "routing.bgp.neighbors[0].zone" in errors(t)
    ok = t.replace("ebgp_multihop: 3,", "ebgp_multihop: 3, zone: wan,")
    assert errors(ok) == {}
    cfg = validate_text(ok)[0]
    wan = next(c for c in render_nft(cfg).chains if c.name == "zone_wan_in")
    assert any("ip saddr 192.0.2.7" in r.text() and "dport 179" in r.text() for r in wan.rules)
    ibgp = TEXT.replace("address: 198.51.100.1, remote_asn: 65002,", "address: 192.0.2.7, remote_asn: 65001,")
    assert "routing.bgp.neighbors[0].zone" in errors(ibgp)


def test_firewall_openings_only_for_configured_peers():
    cfg = validate_text(TEXT)[0]
    rs = render_nft(cfg)
    chains = {c.name: [r.text() for r in c.rules if r.comment.startswith("service ")] for c in rs.chains}
    assert chains["zone_wan_in"] == [
        'ip saddr 198.51.100.1 meta l4proto tcp tcp dport 179 counter accept comment "service bgp"',
        'ip6 saddr 2001:db8:100::1 meta l4proto tcp tcp dport 179 counter accept comment "service bgp"']
    # OSPF on lan0 (v4 and v6); guest0 is passive: no adjacency, nothing opened.
    assert chains["zone_lan_in"] == [
        'iifname "lan0" meta nfproto ipv4 meta l4proto 89 counter accept comment "service ospf"',
        'iifname "lan0" meta nfproto ipv6 meta l4proto 89 counter accept comment "service ospfv3"']
    assert chains["zone_guest_in"] == [] and chains["zone_mgmt_in"] == []
    # A disabled neighbor gets no opening.
    off = validate_text(TEXT.replace("description: isp v4,", "description: isp v4, enabled: false,"))[0]
    wan = [r.text() for c in render_nft(off).chains if c.name == "zone_wan_in" for r in c.rules]
    assert not any("198.51.100.1" in t for t in wan)


@pytest.mark.skipif(shutil.which("vtysh") is None, reason="FRR's vtysh is not installed (make install)")
def test_config_frr_refuses_leaves_files_and_head(tmp_path, monkeypatch):
    """A frr.conf FRR's own checker refuses (a line injected into the renderer's output): the commit
    is refused naming routing, frr.conf and every rendered file stay byte for byte, HEAD stays."""
    rendered = tmp_path / "svc" / "rendered"
    ctx = HostContext(tmp_path / "state", rendered)
    appliers = [FakeApplier("network", "net", links=("wan0", "lan0", "guest0", "mgmt0")),
                FakeApplier("nftables", "nft"), frr_daemon.FrrApplier(ctx)]
    p = Pipeline(tmp_path / "repo", tmp_path / "state", rendered, appliers=appliers)
    p.commit(TEXT, "routing", "t")
    head = p.repo.head()
    files = {f: f.read_bytes() for f in sorted(rendered.rglob("*")) if f.is_file()}
    assert (rendered / "frr" / "frr.conf").exists()
    real = r_frr.render_frr
    monkeypatch.setattr(frr_daemon, "render_frr", lambda cfg: real(cfg).replace(
        "router bgp 65001\n", "router bgp 65001\n neighbor 198.51.100.1 no-such-knob\n"))
    with pytest.raises(Exception) as e:
        p.commit(TEXT.replace("hello: 5, dead: 20", "hello: 6, dead: 24"), "injected", "t")
    probs = getattr(e.value, "problems", [])
    assert any(pr.path == "routing" and "frr refuses" in pr.message for pr in probs), (e.value, probs)
    assert p.repo.head() == head
    assert {f: f.read_bytes() for f in sorted(rendered.rglob("*")) if f.is_file()} == files


def test_nft_accepts_the_openings():
    from tests.unit.nftcheck import need_nft, nft_in_private_ns

    need_nft()
    r = nft_in_private_ns("nft -c -f -", render_nft(validate_text(TEXT)[0]).text())
    assert r.returncode == 0, r.stderr


def test_frr_conf_path_is_under_rendered(tmp_path):
    a = frr_daemon.FrrApplier(HostContext(tmp_path / "state", tmp_path / "rendered"))
    assert a.path == Path(tmp_path / "rendered" / "frr" / "frr.conf")
    assert a.reload()["ok"] is None  # no file, not running: nothing to tell


def test_ospf_install_filter():
    txt = r_frr.render_frr(validate_text(TEXT)[0])
    f4 = [ln for ln in txt.splitlines() if ln.startswith("ip prefix-list tg-ospf4-in ")]
    assert f4[0] == "ip prefix-list tg-ospf4-in seq 5 deny 0.0.0.0/0"
    assert "ip prefix-list tg-ospf4-in seq 10 deny 192.168.10.0/24 le 32" in f4
    assert f4[-1].endswith("permit 0.0.0.0/0 le 32")
    assert "ip protocol ospf route-map tg-ospf4-in" in txt and "ipv6 protocol ospf6 route-map tg-ospf6-in" in txt
    t2 = TEXT.replace("    redistribute: [connected]\n", "    redistribute: [connected]\n    accept_default: true\n", 1)
    f4b = [ln for ln in r_frr.render_frr(validate_text(t2)[0]).splitlines()
           if ln.startswith("ip prefix-list tg-ospf4-in ")]
    assert not any("deny 0.0.0.0/0" == ln.split(" seq ")[1].split(" ", 1)[1] for ln in f4b)
    assert len(f4b) == len(f4) - 1
