"""Hostile documents for the agent-made interface kinds (issue 14): each is refused at validate time
with the path of the offending item, and the pipeline changes nothing (links, HEAD)."""

from __future__ import annotations

import pytest

from backend.agent.pipeline import Pipeline, Refused
from backend.host.applier import HostContext
from backend.host.fake import FakeApplier
from backend.host.links import LinksApplier
from backend.model import validate_text
from tests.unit.fakelinks import FakeLinkKernel

HEAD = """
interfaces:
  eth0: {ipv4: [192.168.1.1/24]}
  eth1: {}
  eth2: {}
  eth3: {}
"""


def errors(extra: str, zones: str = "") -> list[tuple[str, str]]:
    _, probs = validate_text(HEAD + extra + zones)
    return [(p.path, p.message) for p in probs if p.severity == "error"]


CASES = [
    ("vlan id 0", "  v0: {kind: vlan, link: eth1, id: 0}\n", "", "interfaces.v0.id", "greater than or equal to 1"),
    ("vlan id 4095", "  v0: {kind: vlan, link: eth1, id: 4095}\n", "", "interfaces.v0.id", "less than or equal to 4094"),
    ("vlan id text", "  v0: {kind: vlan, link: eth1, id: ten}\n", "", "interfaces.v0.id", "integer"),
    ("vlan without id", "  v0: {kind: vlan, link: eth1}\n", "", "interfaces.v0.id", "required"),
    ("vlan on a missing link", "  v0: {kind: vlan, link: eth9, id: 5}\n", "", "interfaces.v0.link",
     "unknown interface 'eth9'"),
    ("vlan on itself", "  v0: {kind: vlan, link: v0, id: 5}\n", "", "interfaces.v0.link", "itself"),
    ("duplicate (link, id)", "  v5: {kind: vlan, link: eth1, id: 5}\n  w5: {kind: vlan, link: eth1, id: 5}\n", "",
     "interfaces.w5.id", "VLAN 5 on 'eth1' is already interfaces.v5"),
    ("bridge port of itself", "  br0: {kind: bridge, ports: [br0]}\n", "", "interfaces.br0.ports.br0",
     "of itself"),
    ("bridges in each other", "  br0: {kind: bridge, ports: [br1]}\n  br1: {kind: bridge, ports: [br0]}\n", "",
     "interfaces.br0.ports.br1", "a bridge cannot be a port of another bridge"),
    ("a bridge's vlan as its port", "  br0: {kind: bridge, ports: [br0.7]}\n  br0.7: {kind: vlan, link: br0, id: 7}\n",
     "", "interfaces.br0", "a loop of links: br0 → br0.7 → br0"),
    ("port in two bridges", "  br0: {kind: bridge, ports: [eth1]}\n  br1: {kind: bridge, ports: [eth1]}\n", "",
     "interfaces.br1.ports.eth1", "already a member of 'br0'"),
    ("port in a bridge and a bond", "  br0: {kind: bridge, ports: [eth1]}\n  bond0: {kind: bond, members: [eth2, eth1]}\n",
     "", "interfaces.bond0.members[1]", "already a member of 'br0'"),
    ("member with addresses", "  br0: {kind: bridge, ports: [eth0]}\n", "", "interfaces.eth0.ipv4",
     "carries no addresses"),
    ("unknown member", "  bond0: {kind: bond, members: [eth7]}\n", "", "interfaces.bond0.members[0]",
     "unknown interface 'eth7'"),
    ("bond of a bridge", "  br0: {kind: bridge}\n  bond0: {kind: bond, members: [br0]}\n", "",
     "interfaces.bond0.members[0]", "bond members are ethernet links"),
    ("bond without members", "  bond0: {kind: bond, members: []}\n", "", "interfaces.bond0.members", "at least 1"),
    ("bond mode unknown", "  bond0: {kind: bond, mode: round-robin, members: [eth1]}\n", "", "interfaces.bond0.mode",
     "802.3ad"),
    ("primary not a member", "  bond0: {kind: bond, members: [eth1], primary: eth2}\n", "", "interfaces.bond0",
     "primary must be one of the members"),
    ("vlan on a bridge port", "  br0: {kind: bridge, ports: [eth1]}\n  v1: {kind: vlan, link: eth1, id: 3}\n", "",
     "interfaces.v1.link", "put the VLAN on 'br0'"),
    ("member in a zone", "  br0: {kind: bridge, ports: [eth1]}\n", "zones:\n  lan: {interfaces: [eth1]}\n",
     "zones.lan.interfaces[0]", "put 'br0' in the zone"),
    ("vids without vlan_filtering", "  br0: {kind: bridge, ports: {eth1: {vids: [5]}}}\n", "", "interfaces.br0",
     "need vlan_filtering"),
    ("port vid 4095", "  br0: {kind: bridge, vlan_filtering: true, ports: {eth1: {vids: [5, 4095]}}}\n", "",
     "interfaces.br0.ports.eth1.vids[1]", "less than or equal to 4094"),
    ("name over 15 bytes", "  averyveryverylong: {kind: vlan, link: eth1, id: 5}\n", "", "interfaces.averyveryverylong",
     "pattern"),
    ("parent name over 15 bytes", "  v0: {kind: vlan, link: averyveryverylong, id: 5}\n", "", "interfaces.v0.link",
     "pattern"),
    ("vlan mtu above its parent", "  v0: {kind: vlan, link: eth1, id: 5, mtu: 9000}\n  eth9: {mtu: 1500}\n"
     "  v1: {kind: vlan, link: eth9, id: 5, mtu: 9000}\n", "", "interfaces.v1.mtu", "above its parent 'eth9'"),
    ("management link made by the agent", "  v0: {kind: vlan, link: eth1, id: 5}\n",
     "system: {management_interface: v0}\n", "system.management_interface", "Talos's own"),
    ("management link enslaved", "  br0: {kind: bridge, ports: [eth1]}\n",
     "system: {management_interface: eth1}\n", "system.management_interface", "a member of 'br0'"),
    ("foreign name", "  cni0: {kind: bridge}\n", "", "interfaces.cni0", "cannot be configured"),
    ("unknown kind", "  x0: {kind: vxlan}\n", "", "interfaces.x0.kind", "unknown interface kind"),
]


@pytest.mark.parametrize("what,extra,zones,path,message", CASES, ids=[c[0] for c in CASES])
def test_bad_documents_are_refused_with_their_path(what, extra, zones, path, message):
    got = errors(extra, zones)
    assert any(p == path and message in msg for p, msg in got), got


def test_the_good_forms_are_accepted():
    good = ("  v5: {kind: vlan, link: eth1, id: 5, ipv4: [10.0.5.1/24]}\n"
            "  v6: {kind: vlan, link: eth1, id: 4094}\n"
            "  br0: {kind: bridge, vlan_filtering: true, pvid: 1, ports: {eth2: {vids: [5], pvid: 1}}}\n"
            "  br0.5: {kind: vlan, link: br0, id: 5}\n"
            "  bond0: {kind: bond, mode: active-backup, members: [eth3], primary: eth3}\n"
            "  bond0.9: {kind: vlan, link: bond0, id: 9}\n"
            "  d0: {kind: dummy}\n")
    assert errors(good, "zones:\n  lan: {interfaces: [v5, br0, br0.5, bond0.9]}\n") == []


def test_a_refused_document_changes_nothing(tmp_path):
    k = FakeLinkKernel()
    for n in ("eth0", "eth1", "eth2", "eth3"):
        k.add(n)
    (tmp_path / "state").mkdir()
    p = Pipeline(tmp_path / "repo", tmp_path / "state",
                 appliers=[LinksApplier(HostContext(tmp_path / "state"), kernel=k),
                           FakeApplier("network", "net", links=k.links), FakeApplier("nftables", "nft")])
    p.commit(HEAD + "  v5: {kind: vlan, link: eth1, id: 5}\n", "good", "test")
    before, head = k.snapshot(), p.repo.head()
    for _what, extra, zones, path, _message in CASES:
        with pytest.raises(Refused) as e:
            p.commit(HEAD + extra + zones, "bad", "test")
        assert path in [x.path for x in e.value.problems], (path, e.value.problems)
        assert k.snapshot() == before and p.repo.head() == head
