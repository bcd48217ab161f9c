"""Interface kinds vlan, bridge, bond, dummy: the model, the links applier's plan over a fake kernel
(order, idempotence, ownership), and the pipeline putting the links back when a later applier fails.
Hostile documents: tests/security/test_link_kinds.py. Real kernels: tests/lab/test_links_lab.py
(bridges here) and tests/lab/test_links_vm.py (VLANs, bonds, VLAN filtering in the qemu guest)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.agent.pipeline import ApplyFailed, Pipeline
from backend.host.applier import LINKS, NETWORK, Desired, HostContext, builtin
from backend.host.fake import FakeApplier
from backend.host.links import LinksApplier, bridge_vlans
from backend.model import config as m
from backend.model import load_config, validate_text
from backend.model.kinds import creation_order
from backend.render.nft import render

from .fakelinks import FakeLinkKernel

DOC = """
interfaces:
  wan0: {ipv4: [198.51.100.2/24]}
  trunk0: {}
  eth1: {}
  eth2: {}
  eth3: {}
  bond0: {kind: bond, mode: lacp, members: [eth1, eth2], miimon: 50}
  bond0.30: {kind: vlan, link: bond0, id: 30, ipv4: [192.168.30.1/24]}
  trunk0.10: {kind: vlan, link: trunk0, id: 10, ipv4: [192.168.10.1/24]}
  trunk0.20: {kind: vlan, link: trunk0, id: 20, ipv4: [192.168.20.1/24]}
  br0:
    kind: bridge
    vlan_filtering: true
    pvid: 1
    ipv4: [192.168.40.1/24]
    ports:
      eth3: {vids: [40, 41], pvid: 1}
  br0.40: {kind: vlan, link: br0, id: 40, ipv4: [192.168.41.1/24]}
  lo9: {kind: dummy, ipv4: [10.9.9.9/32]}
zones:
  wan: {interfaces: [wan0]}
  lan: {interfaces: [trunk0.10, bond0.30, br0, br0.40, lo9]}
  iot: {interfaces: [trunk0.20]}
policies:
  - {from: lan, to: iot, action: accept}
"""
BASE_LINKS = {"wan0": {}, "trunk0": {}, "eth1": {}, "eth2": {}, "eth3": {}}


def kernel() -> FakeLinkKernel:
    k = FakeLinkKernel()
    for n in BASE_LINKS:
        k.add(n)
    return k


def applier(tmp_path: Path, k: FakeLinkKernel) -> LinksApplier:
    (tmp_path / "state").mkdir(exist_ok=True)
    return LinksApplier(HostContext(tmp_path / "state"), kernel=k)


def test_the_kinds_parse_into_their_models():
    cfg = load_config(DOC)
    assert isinstance(cfg.interfaces["trunk0.10"], m.VlanInterface) and cfg.interfaces["trunk0.10"].id == 10
    assert isinstance(cfg.interfaces["bond0"], m.BondInterface) and cfg.interfaces["bond0"].mode == "802.3ad"
    assert isinstance(cfg.interfaces["br0"], m.BridgeInterface) and cfg.interfaces["br0"].ports["eth3"].pvid == 1
    assert isinstance(cfg.interfaces["lo9"], m.DummyInterface)
    assert load_config("interfaces: {e: {}, b: {kind: bridge, ports: [e]}}").interfaces["b"].ports == {
        "e": m.BridgePort()}


def test_creation_order_puts_parents_first():
    order = creation_order(load_config(DOC))
    assert set(order) == {"bond0", "bond0.30", "trunk0.10", "trunk0.20", "br0", "br0.40", "lo9"}
    assert order.index("bond0") < order.index("bond0.30") and order.index("br0") < order.index("br0.40")


def test_bridge_vlans_of_ports_and_the_bridge_itself():
    v = bridge_vlans(load_config(DOC))
    assert v == {"br0": {1: 6, 40: 0}, "eth3": {1: 6, 40: 0, 41: 0}}


def test_apply_creates_in_order_and_is_idempotent(tmp_path):
    k = kernel()
    a = applier(tmp_path, k)
    d = Desired(load_config(DOC))
    out = a.apply(d)
    assert out and a.apply(d) == [] and a.drift(d) == [] and a.plan(d) == []
    ops = k.ops
    first = {op[1]: i for i, op in reversed(list(enumerate(ops)))}
    assert first["bond0"] < first["bond0.30"] and first["br0"] < first["br0.40"]
    assert [op for op in ops if op[0] == "master"] == [("master", "eth1", "bond0", True),
                                                       ("master", "eth2", "bond0", True),
                                                       ("master", "eth3", "br0", False)]
    assert k.links["eth3"]["vlans"] == {1: 6, 40: 0, 41: 0} and k.links["br0"]["vlans"] == {1: 6, 40: 0}
    assert k.links["trunk0.20"] == {"kind": "vlan", "master": None, "up": False, "link": "trunk0", "id": 20}
    st = json.loads((tmp_path / "state" / "links.json").read_text())
    assert list(st["created"]) == creation_order(d.cfg) and st["enslaved"] == {"eth1": "bond0", "eth2": "bond0",
                                                                               "eth3": "br0"}
    assert a.status() == {"created": {n: d.cfg.interfaces[n].kind for n in creation_order(d.cfg)}}


def test_removing_interfaces_deletes_only_what_the_agent_created(tmp_path):
    k = kernel()
    k.add("br9", "bridge", vlan_filtering=False, stp=False)  # someone else's bridge, same name later
    a = applier(tmp_path, k)
    cfg = load_config(DOC.replace("  lo9:", "  br9: {kind: bridge}\n  lo9:"))
    a.apply(Desired(cfg))
    assert "br9" not in a.created  # adopted, not created
    bare = load_config("interfaces: {wan0: {}, trunk0: {}, eth1: {}, eth2: {}, eth3: {}}")
    out = a.apply(Desired(bare))
    assert sorted(k.links) == sorted([*BASE_LINKS, "br9"]), out  # br9 stays: it was not ours
    assert all(k.links[n]["master"] is None for n in ("eth1", "eth2", "eth3"))
    assert a.apply(Desired(bare)) == [] and a.created == {} and a.enslaved == {}


def test_a_changed_vlan_id_recreates_and_a_moved_port_is_released_first(tmp_path):
    k = kernel()
    a = applier(tmp_path, k)
    a.apply(Desired(load_config(DOC)))
    k.ops.clear()
    moved = DOC.replace("id: 20,", "id: 21,").replace("members: [eth1, eth2]", "members: [eth1]").replace(
        "eth3: {vids: [40, 41], pvid: 1}", "eth2: {vids: [40]}\n      eth3: {vids: [41]}")
    a.apply(Desired(load_config(moved)))
    assert ("delete", "trunk0.20", "vlan") in k.ops and k.links["trunk0.20"]["id"] == 21
    rel = k.ops.index(("master", "eth2", None, True))
    assert rel < k.ops.index(("master", "eth2", "br0", False))
    assert k.links["eth2"]["vlans"] == {40: 0} and k.links["eth3"]["vlans"] == {41: 0}
    assert a.apply(Desired(load_config(moved))) == []


def test_a_link_of_another_kind_under_the_name_is_refused_and_never_replaced(tmp_path):
    k = kernel()
    k.add("trunk0.10", "veth")
    a = applier(tmp_path, k)
    probs = a.check(Desired(load_config(DOC)))
    assert [p.path for p in probs] == ["interfaces.trunk0.10.kind"] and "veth" in probs[0].message
    with pytest.raises(Exception, match="exists and is a veth"):
        a.apply(Desired(load_config(DOC)))
    assert k.ops == [] and k.links["trunk0.10"]["kind"] == "veth"


def test_a_state_file_naming_a_foreign_link_never_deletes_it(tmp_path):
    k = kernel()
    k.add("cni0", "bridge", vlan_filtering=False, stp=False)
    (tmp_path / "state").mkdir(exist_ok=True)
    (tmp_path / "state" / "links.json").write_text(json.dumps(
        {"created": {"cni0": {"kind": "bridge"}, "lo": {"kind": "dummy"}}, "enslaved": {"eth1": "cni0"}}))
    a = applier(tmp_path, k)
    assert a.apply(Desired(load_config("interfaces: {eth1: {}}"))) == []
    assert "cni0" in k.links and k.ops == []


def test_the_kernel_refusing_is_an_apply_error_with_the_path(tmp_path):
    k = kernel()
    k.fail_on = "create"
    a = applier(tmp_path, k)
    with pytest.raises(Exception) as e:
        a.apply(Desired(load_config(DOC)))
    assert type(e.value).__name__ == "ApplyError" and e.value.path.startswith("interfaces.")
    assert "Operation not supported" in str(e.value)


def test_links_runs_before_the_network_applier():
    names = builtin().names()
    assert names.index("links") < names.index("network") and LINKS < NETWORK


def test_agent_made_kinds_are_not_missing_links():
    fake = FakeApplier("network", "net", links=BASE_LINKS)
    assert fake.check(Desired(load_config(DOC))) == []


def test_the_ruleset_dispatches_vlan_and_bridge_interfaces_by_name():
    from .nftcheck import load_and_list, need_nft

    rs = render(load_config(DOC))
    text = json.dumps(rs.commands())
    for name in ("trunk0.10", "trunk0.20", "bond0.30", "br0.40", "br0"):
        assert f'"{name}"' in text, name
    need_nft()
    listed = json.dumps(load_and_list({"nftables": rs.commands()}))  # the kernel takes the names as they are
    assert '"trunk0.10"' in listed and '"br0.40"' in listed


# -- all or nothing through the pipeline ---------------------------------------------------


def _pipeline(tmp_path: Path, k: FakeLinkKernel):
    ctx = HostContext(tmp_path / "state")
    net = FakeApplier("network", "net", links=BASE_LINKS)
    p = Pipeline(tmp_path / "repo", tmp_path / "state", appliers=[LinksApplier(ctx, kernel=k), net,
                                                                   FakeApplier("nftables", "nft")])
    return p, net


def test_a_failure_after_the_links_were_created_removes_them(tmp_path):
    k = kernel()
    p, net = _pipeline(tmp_path, k)
    base = "interfaces: {wan0: {}, trunk0: {}, eth1: {}, eth2: {}, eth3: {ipv4: [192.168.50.1/24]}}\n"
    p.commit(base, "base", "test")
    before = k.snapshot()
    net.fail["apply"] = RuntimeError("injected")
    net.fail_after_change = True
    with pytest.raises(ApplyFailed):
        p.commit(DOC, "vlans", "test")
    assert k.snapshot() == before
    assert LinksApplier(HostContext(tmp_path / "state"), kernel=k).created == {}


def test_a_failure_of_the_very_first_commit_removes_the_links_it_created(tmp_path):
    """No previous revision to apply: the links this transaction created still go, and the
    members it enslaved are released (the links.json record of this transaction)."""
    k = kernel()
    p, net = _pipeline(tmp_path, k)
    before = k.snapshot()
    net.fail["apply"] = RuntimeError("injected")
    net.fail_after_change = True
    with pytest.raises(ApplyFailed):
        p.commit(DOC, "vlans", "test")
    assert any(op[0] == "create" for op in k.ops)
    assert k.snapshot() == before
    assert LinksApplier(HostContext(tmp_path / "state"), kernel=k).created == {}


def test_a_failed_first_commit_keeps_links_created_by_an_earlier_one(tmp_path):
    """Only what this transaction created goes: a link recorded in links.json by an earlier apply
    (a restart without a recorded revision) stays."""
    k = kernel()
    a = applier(tmp_path, k)
    a.apply(Desired(load_config("interfaces: {wan0: {}, lo9: {kind: dummy}}\n")))
    assert "lo9" in k.links
    p, net = _pipeline(tmp_path, k)
    net.fail["apply"] = RuntimeError("injected")
    net.fail_after_change = True
    with pytest.raises(ApplyFailed):
        p.commit(DOC, "vlans", "test")
    assert set(k.links) == set(BASE_LINKS) | {"lo9"}


def test_an_invalid_document_changes_nothing(tmp_path):
    k = kernel()
    p, _ = _pipeline(tmp_path, k)
    p.commit(DOC, "good", "test")
    before = k.snapshot()
    from backend.agent.pipeline import Refused

    with pytest.raises(Refused) as e:
        p.commit(DOC.replace("id: 20,", "id: 4095,"), "bad", "test")
    assert [x.path for x in e.value.problems if x.severity == "error"] == ["interfaces.trunk0.20.id"]
    assert k.snapshot() == before


def test_validate_text_accepts_the_example():
    cfg, probs = validate_text(DOC)
    assert cfg is not None and [p for p in probs if p.severity == "error"] == [], probs


def test_the_readme_example_is_a_valid_document():
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Interface kinds", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    cfg, probs = validate_text(block)
    assert cfg is not None and [p for p in probs if p.severity == "error"] == [], probs
    assert {n: i.kind for n, i in cfg.interfaces.items() if i.kind != "ethernet"} == {
        "trunk0.10": "vlan", "trunk0.20": "vlan", "bond0": "bond", "br0": "bridge", "br0.40": "vlan",
        "br0.41": "vlan"}


def test_status_and_the_console_say_each_interfaces_kind(tmp_path):
    from backend.agent.server import Agent, Caller
    from console.screens.interfaces import kind_line

    k = kernel()
    p, _ = _pipeline(tmp_path, k)
    p.commit(DOC, "kinds", "test")
    st = Agent(p, str(tmp_path / "agent.sock"), None).dispatch("GET", "/v1/status", Caller(0, 1, "root", False), {})[1]
    assert st["links"] == {"bond0": "bond", "bond0.30": "vlan", "trunk0.10": "vlan", "trunk0.20": "vlan",
                           "br0": "bridge", "br0.40": "vlan", "lo9": "dummy"}
    assert kind_line({"kind": "vlan", "link": "trunk0", "id": 10}) == "vlan 10 on trunk0"
    assert kind_line({"kind": "bridge", "ports": {"eth3": {"pvid": 1}}, "vlan_filtering": True}) == \
        "bridge: ports eth3 (vlan filtering)"
    assert kind_line({"kind": "bond", "mode": "802.3ad", "members": "eth1"}) == "bond 802.3ad: members eth1"


def test_the_vm_test_names_what_is_missing(monkeypatch, tmp_path):
    from tests.lab import test_links_vm as vm

    if vm.os.geteuid() != 0:
        assert "root" in vm._missing()
        return
    monkeypatch.setattr(vm, "VMRUN", tmp_path / "vmrun.sh")
    assert "vmrun.sh is missing" in vm._missing()
    (tmp_path / "vmrun.sh").write_text("")
    monkeypatch.setattr(vm.shutil, "which", lambda name: None)
    assert "qemu-system-x86_64 is missing" in vm._missing()
    monkeypatch.setattr(vm.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(vm.glob, "glob", lambda pattern: [])
    assert "Debian's kernel is missing" in vm._missing()


def test_a_bond_mode_change_recreates_it_and_its_members_follow(tmp_path):
    k = kernel()
    a = applier(tmp_path, k)
    a.apply(Desired(load_config(DOC)))
    k.ops.clear()
    ab = DOC.replace("mode: lacp,", "mode: active-backup, primary: eth2,").replace("miimon: 50", "miimon: 200")
    out = a.apply(Desired(load_config(ab)))
    assert out[:2] == ["delete bond: bond0", "create bond: bond0 (mode active-backup)"], out
    assert k.links["bond0"]["mode"] == "active-backup" and k.links["bond0"]["primary"] == "eth2"
    assert k.links["bond0.30"]["link"] == "bond0"  # the VLAN on it came back with it
    assert {n: k.links[n]["master"] for n in ("eth1", "eth2")} == {"eth1": "bond0", "eth2": "bond0"}
    assert a.apply(Desired(load_config(ab))) == []
    live = ab.replace("miimon: 200", "miimon: 300").replace("vlan_filtering: true", "vlan_filtering: true\n    stp: true")
    assert sorted(a.apply(Desired(load_config(live)))) == ["set bond0 miimon: 300", "set br0 stp: True"]
