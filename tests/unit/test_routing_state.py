"""BGP/OSPF session state (backend/observe/routing_state.py): FRR's JSON parsed and bounded, the
cache refreshed by its thread, status never waiting for vtysh (a hung FRR), and the CLI lines.
With FRR and bird: tests/lab/test_frr_lab.py::test_status_shows_bgp_peers_and_ospf_neighbors."""

from __future__ import annotations

import threading
import time

from backend.observe import routing_state as rs
from backend.status_text import routing_lines as _routing_lines

BGP = {"198.51.100.1": {"remoteAs": 65002, "bgpState": "Established", "bgpTimerUpString": "00:01:02",
                        "addressFamilyInfo": {"ipv4Unicast": {"acceptedPrefixCounter": 1, "sentPrefixCounter": 2},
                                              "ipv6Unicast": {"acceptedPrefixCounter": 2}}},
       "2001:db8:1::1": {"remoteAs": 65002, "bgpState": "Active", "bgpTimerUpString": "00:00:09"}}
OSPF = {"neighbors": {"192.168.10.2": [{"nbrState": "Full/DR", "upTime": "51.2s", "ifaceName": "lan0:192.168.10.1"}]}}
OSPF6 = {"neighbors": [{"neighborId": "192.168.10.2", "state": "Full", "duration": "00:00:40",
                        "interfaceName": "lan0"}]}


def test_frr_answers_become_sessions():
    b = rs.bgp_sessions(BGP)
    assert b[0] == {"protocol": "bgp", "peer": "198.51.100.1", "state": "Established", "uptime": "00:01:02",
                    "received": None, "accepted": 3, "sent": 2, "interface": None, "remote_as": 65002}
    assert b[1]["state"] == "Active" and b[1]["uptime"] is None and b[1]["accepted"] is None
    [o] = rs.ospf_sessions(OSPF, "ospf")
    assert (o["peer"], o["state"], o["uptime"], o["interface"]) == ("192.168.10.2", "Full/DR", "51.2s", "lan0:192.168.10.1")
    [o6] = rs.ospf_sessions(OSPF6, "ospfv3")
    assert (o6["peer"], o6["state"], o6["interface"]) == ("192.168.10.2", "Full", "lan0")


def test_garbage_from_frr_is_ignored_and_bounded():
    junk = {"x": 1, "y": [1, 2], "z": {"bgpState": "Established" * 100, "addressFamilyInfo": {"a": "b"}},
            **{f"10.0.{i // 256}.{i % 256}": {"bgpState": "Idle"} for i in range(500)}}
    out = rs.bgp_sessions(junk)
    assert len(out) == 501 and len(out[0]["state"]) == 32
    assert rs.ospf_sessions({"neighbors": "nonsense"}, "ospf") == []
    assert rs.ospf_sessions({"neighbors": {"1.1.1.1": "bad"}}, "ospf") == []


def test_a_hung_vtysh_times_out(tmp_path, monkeypatch):
    fake = tmp_path / "vtysh"
    fake.write_text("#!/bin/sh\nsleep 30\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    t0 = time.monotonic()
    assert rs.vtysh_json(tmp_path, "show bgp neighbors json", timeout=0.5) is None
    assert time.monotonic() - t0 < 3
    fake.write_text("#!/bin/sh\nhead -c 5000000 /dev/zero\n")  # more than MAX_BYTES
    assert rs.vtysh_json(tmp_path, "show bgp neighbors json") is None
    fake.write_text("#!/bin/sh\necho '{\"neighbors\": {}}'\n")
    assert rs.vtysh_json(tmp_path, "show ip ospf neighbor json") == {"neighbors": {}}


def test_status_never_waits_for_frr(tmp_path):
    """The reader hangs (FRR stuck): snapshot answers at once with the last answer."""
    release = threading.Event()
    calls = []

    def reader(vty):
        calls.append(time.monotonic())
        if len(calls) > 1:
            release.wait(10)
        return rs.bgp_sessions(BGP), []

    state = rs.RoutingState(lambda: tmp_path, refresh=0.05, reader=reader).start()
    try:
        deadline = time.monotonic() + 5
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(calls) >= 2  # the second read hangs now
        t0 = time.monotonic()
        snap = state.snapshot()
        assert time.monotonic() - t0 < 0.05
        assert snap["sessions"][0]["peer"] == "198.51.100.1" and snap["errors"] == []
    finally:
        release.set()
        state.stop()
    # FRR not running: no routing state at all
    gone = rs.RoutingState(lambda: None, reader=reader)
    gone.poll()
    assert gone.snapshot() is None


def test_status_lines():
    snap = {"time": 0, "sessions": rs.bgp_sessions(BGP) + rs.ospf_sessions(OSPF6, "ospfv3"),
            "errors": ["show ip ospf neighbor json: no answer within 4 s"]}
    lines = _routing_lines(snap)
    assert lines[0] == "routing    bgp 198.51.100.1 Established up 00:01:02 received - accepted 3 sent 2"
    assert lines[1] == "routing    bgp 2001:db8:1::1 Active up -"
    assert lines[2] == "routing    ospfv3 192.168.10.2 on lan0 Full up 00:00:40"
    assert lines[3].startswith("routing    error: show ip ospf neighbor json")
    assert _routing_lines(None) == []
