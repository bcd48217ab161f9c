"""The routes reader (backend/observe/routes.py): the kernel's tables over netlink, FRR's RIB from
its JSON (learned routes it did not install are added), bounded, a table filter that is a name or
a number and nothing else; `talgate routes` text; GET /v1/routes through the service layer."""

from __future__ import annotations

import json
import os

import pytest

from backend.lab.lab import example_config
from backend.observe import routes as rr
from backend.observe.routes_text import table_lines
from backend.testing import InProcessAgent

FRR_V4 = {
    "203.0.113.128/26": [{"prefix": "203.0.113.128/26", "protocol": "bgp", "selected": True, "installed": True,
                          "distance": 20, "metric": 0, "table": 254, "uptime": "00:01:02",
                          "nexthops": [{"ip": "198.51.100.1", "interfaceName": "wan0", "active": True}]}],
    "192.168.10.0/24": [{"prefix": "192.168.10.0/24", "protocol": "connected", "selected": True, "installed": True,
                         "distance": 0, "table": 254, "nexthops": [{"interfaceName": "lan0"}]},
                        {"prefix": "192.168.10.0/24", "protocol": "bgp", "distance": 20, "metric": 0, "table": 254,
                         "nexthops": [{"ip": "198.51.100.1", "interfaceName": "wan0"}]}],
    "10.9.0.0/16": [{"prefix": "10.9.0.0/16", "protocol": "ospf", "distance": 110, "metric": 20, "table": 100,
                     "nexthops": [{"ip": "192.168.10.10", "interfaceName": "lan0"}]}],
}
FRR_V6 = {"2001:db8:77::/48": [{"prefix": "2001:db8:77::/48", "protocol": "ospf6", "distance": 110, "table": 254,
                                "nexthops": [{"ip": "fe80::1", "interfaceName": "lan0"}]}]}


@pytest.fixture
def fake_vtysh(tmp_path, monkeypatch):
    bin_dir, vty = tmp_path / "bin", tmp_path / "vty"
    bin_dir.mkdir()
    vty.mkdir()
    (vty / "zebra.vty").touch()
    (tmp_path / "v4.json").write_text(json.dumps(FRR_V4))
    (tmp_path / "v6.json").write_text(json.dumps(FRR_V6))
    script = bin_dir / "vtysh"
    script.write_text(f"#!/bin/sh\ncase \"$*\" in *ipv6*) cat {tmp_path}/v6.json;; *) cat {tmp_path}/v4.json;; esac\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return vty


def test_frr_rib_is_parsed_with_kinds_and_states(fake_vtysh):
    got, truncated = rr.frr_routes(fake_vtysh)
    assert not truncated
    by = {(r["dst"], r["kind"]): r for r in got}
    assert by[("203.0.113.128/26", "bgp")]["installed"] and by[("203.0.113.128/26", "bgp")]["gateway"] == "198.51.100.1"
    assert not by[("192.168.10.0/24", "bgp")]["installed"]
    assert by[("2001:db8:77::/48", "ospfv3")]["dev"] == "lan0"
    assert by[("10.9.0.0/16", "ospf")]["table"] == "100"
    assert [r["dst"] for r in rr.frr_routes(fake_vtysh, "100")[0]] == ["10.9.0.0/16"]
    assert len(rr.frr_routes(fake_vtysh, limit=2)[0]) == 2 and rr.frr_routes(fake_vtysh, limit=2)[1]


def test_learned_but_not_installed_routes_are_added_to_the_kernels(fake_vtysh, monkeypatch):
    monkeypatch.setattr(rr, "kernel_routes", lambda table="all", limit=rr.MAX_ROUTES: (
        [{"family": 4, "dst": "192.168.10.0/24", "table": "main", "kind": "connected", "protocol": "kernel",
          "source": "kernel", "installed": True}], False))
    doc = rr.routes("all", fake_vtysh)
    assert doc["frr"] is True
    kinds = [(r["dst"], r["kind"], r["source"]) for r in doc["routes"]]
    # The installed BGP route is the kernel's to report; the one that lost, and the OSPF routes FRR
    # did not install, come from FRR.
    assert ("192.168.10.0/24", "bgp", "frr") in kinds and ("203.0.113.128/26", "bgp", "frr") not in kinds
    assert ("2001:db8:77::/48", "ospfv3", "frr") in kinds


def test_no_frr_kernel_only(tmp_path):
    assert rr.frr_routes(tmp_path) is None  # no zebra.vty: nothing is run
    doc = rr.routes("main", tmp_path)
    assert doc["frr"] is False and all(r["table"] == "main" and r["source"] == "kernel" for r in doc["routes"])


@pytest.mark.parametrize("bad", ["../etc", "main;ls", "", "x" * 40, "12345678901"])
def test_table_is_a_name_or_number_only(bad):
    with pytest.raises(ValueError):
        rr.routes(bad)


def test_all_leaves_out_local_and_local_is_only_local():
    assert all(r["table"] != "local" for r in rr.kernel_routes("all")[0])
    assert all(r["table"] == "local" for r in rr.kernel_routes("local")[0])


def test_text_table_sizes_columns_to_content():
    rows = [{"table": "main", "kind": "bgp", "dst": "203.0.113.128/26", "gateway": "198.51.100.1", "dev": "wan0",
             "metric": 20, "source": "kernel"},
            {"table": "main", "kind": "bgp", "dst": "192.168.10.0/24", "gateway": "198.51.100.1", "dev": "wan0",
             "metric": 0, "source": "frr", "installed": False}]
    lines = table_lines(rows, truncated=True, frr=True)
    assert lines[0].split() == ["table", "kind", "destination", "via", "dev", "metric", "state"]
    assert lines[1].split() == ["main", "bgp", "203.0.113.128/26", "198.51.100.1", "wan0", "20", "kernel"]
    assert lines[2].endswith("not installed") and lines[-1].startswith("(more routes")
    assert lines[1].index("198.51.100.1") == lines[0].index("via")
    assert table_lines([], frr=False)[-2:] == ["(no routes)", "(FRR is not running: kernel routes only)"]


def test_api_route_through_the_service_layer():
    doc = {"routes": [{"family": 4, "dst": "203.0.113.128/26", "table": "main", "kind": "bgp", "protocol": "bgp",
                       "gateway": "198.51.100.1", "dev": "wan0", "metric": 20}], "truncated": False, "frr": True}
    asked = []
    agent = InProcessAgent(example_config(), links=["wan0", "lan0", "guest0", "mgmt0"],
                           readers={"routes": lambda t: asked.append(t) or doc})
    res = agent.ro_client.routes("main")
    assert asked == ["main"] and res.frr and res.routes[0].kind == "bgp" and res.routes[0].source == "kernel"
