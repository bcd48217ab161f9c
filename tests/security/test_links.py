"""Links the document may not own and routes the kernel would refuse (issue 11, class 5):
refused at validate time with their path, and the net applier never touches a foreign link
and reports anything the kernel refuses as a typed ApplyError (never IndexError)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from backend.lab.lab import example_config
from backend.model import validate_text
from backend.model.kubernetes import CNI_LINKS
from backend.model.links import foreign_link
from tests.unit.nftcheck import need_nft

from ..lab.util import REPO_ROOT

EX = example_config()


def problems(text: str) -> list[str]:
    return [str(p) for p in validate_text(text)[1] if p.severity == "error"]


@pytest.mark.parametrize("name", ["lo", "cni0", "flannel.1", "veth1a2b3c4d", "cali0123456789a", "cilium_host"])
def test_foreign_links_are_refused_with_their_path(name):
    text = EX.replace("interfaces:\n", f"interfaces:\n  {name}: {{}}\n", 1)
    got = problems(text)
    assert any(p.startswith(f"interfaces.{name}: '{name}' cannot be configured") for p in got), got


def test_ordinary_names_are_not_foreign():
    for name in ("wan0", "lan0", "mgmt0", "eth0", "veth0", "vethlan", "br-lan", "lo0", "cni", "bond0.10"):
        assert foreign_link(name) is None, name


def test_the_cni_links_are_foreign():
    assert CNI_LINKS and all(foreign_link(n) for n in CNI_LINKS)


def test_routes_over_disabled_links_are_refused_with_their_path():
    off = EX.replace("  guest0:\n    ipv4:", "  guest0:\n    enabled: false\n    ipv4:")
    assert off != EX and problems(off) == []
    dev = off.replace("routes:\n", "routes:\n  - {name: r-dev, to: 10.50.0.0/16, interface: guest0}\n")
    assert problems(dev) == ["routes[0].interface: interface 'guest0' is disabled; the kernel refuses a route "
                             "over a link that is down"]
    via = off.replace("routes:\n", "routes:\n  - {name: r-via, to: 10.50.0.0/16, via: 192.168.20.254}\n")
    assert problems(via) == ["routes[0].via: gateway 192.168.20.254 is only on the subnet of disabled interface "
                             "'guest0'"]
    wrong = EX.replace("routes:\n", "routes:\n  - {name: r-wrong, to: 10.50.0.0/16, via: 192.168.20.254, "
                                     "interface: lan0}\n")
    assert problems(wrong) == ["routes[0].via: gateway 192.168.20.254 is on the subnet of interface 'guest0', "
                               "not of 'lan0'"]


APPLIER = r"""
import ipaddress, json, subprocess, sys
from backend.host.net import ApplyError, NetApplier, NetState, RouteKey
out = {}
ip = lambda *a: json.loads(subprocess.run(["ip", "-j", *a], capture_output=True, text=True, check=True).stdout or "[]")
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
subprocess.run(["ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1"], check=True)
before = ip("addr", "show", "lo")
a = NetApplier(proc_sys="/nonexistent")
# asked to own lo with no addresses: nothing is planned, nothing is deleted
want = NetState(links={"lo": {"up": True, "mtu": 1280}}, addrs={"lo": set()})
out["plan"] = [list(map(str, op)) for op in a.plan(want, {"lo"})]
out["applied"] = a.apply(want, {"lo"})
out["lo_intact"] = ip("addr", "show", "lo") == before
try:
    a.execute([("addr-del", "lo", "127.0.0.1/8")])
except ApplyError as e:
    out["lo_direct"] = str(e)
out["lo_intact_direct"] = ip("addr", "show", "lo") == before
# anything the kernel refuses or a missing link: ApplyError naming the path
cases = {
    "route_missing_link": [("route-add", RouteKey(4, "10.50.0.0/16", 0), {"gateway": None, "oif": "ghost0", "name": "r1"})],
    "addr_missing_link": [("addr-add", "ghost0", "10.9.0.1/24")],
    "route_down_link": [("route-add", RouteKey(4, "10.50.0.0/16", 0), {"gateway": None, "oif": "d0", "name": "r2"})],
    "route_bad_gateway": [("route-add", RouteKey(4, "10.50.0.0/16", 0), {"gateway": "10.77.0.1", "oif": None, "name": "r3"})],
    "sysctl": [("sysctl", "net/ipv4/ip_forward", "1")],
}
for k, ops in cases.items():
    try:
        a.execute(ops)
        out[k] = "no error"
    except ApplyError as e:
        out[k] = "ApplyError: " + str(e)
    except Exception as e:
        out[k] = f"{type(e).__name__}: {e}"
print(json.dumps(out))
"""


def test_net_applier_never_touches_lo_and_raises_typed_errors():
    need_nft()  # root + unshare: a private network namespace
    r = subprocess.run(["unshare", "--net", sys.executable, "-c", APPLIER], capture_output=True, text=True,
                       timeout=60, cwd=REPO_ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert out["plan"] == [] and out["applied"] == 0 and out["lo_intact"], out
    assert out["lo_direct"].startswith("interfaces.lo.ipv4: refusing to addr-del on 'lo'"), out
    assert out["lo_intact_direct"], out
    assert out["route_missing_link"] == "ApplyError: routes (r1): no such link 'ghost0' in the router's network namespace"
    assert out["addr_missing_link"] == "ApplyError: interfaces.ghost0.ipv4: no such link 'ghost0' in the router's network namespace"
    assert out["route_down_link"].startswith("ApplyError: routes (r2): kernel refused route-add"), out
    assert out["route_bad_gateway"].startswith("ApplyError: routes (r3): kernel refused route-add"), out
    assert out["sysctl"].startswith("ApplyError: sysctl net/ipv4/ip_forward: could not sysctl"), out


def test_the_management_interface_may_be_in_a_zone_but_not_disabled():
    assert problems(EX) == []  # mgmt0 is system.management_interface and in zone mgmt
    off = EX.replace("  mgmt0:\n    ipv4:", "  mgmt0:\n    enabled: false\n    ipv4:")
    assert problems(off) == ["interfaces.mgmt0.enabled: the management interface cannot be disabled (Talos "
                             "reaches the box through it)"]
