"""Multi-WAN and policy routing with real traffic in the multiwan lab (backend/lab/multiwan.yaml):
failover when isp stops forwarding, failback after the hold-down without breaking a flow on isp2,
five fail/recover cycles, guest by isp2 and lan by isp (v4 and v6), a spoofed echo reply, a
crashing health checker, and refused documents that change nothing."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from backend.client import AgentError
from backend.lab.lab import lab_config
from backend.lab.mwan import (
    INET4,
    INET6,
    SOURCE,
    set_forwarding,
    source_seen,
    start_echo_client,
    start_echo_server,
    wait_source,
)

from .conftest import new_lab
from .util import LabHelper

MW = lab_config("multiwan.yaml")
ISP, ISP2 = SOURCE["isp"][0], SOURCE["isp2"][0]


@pytest.fixture(scope="module")
def mlab(tmp_path_factory):
    faults = tmp_path_factory.mktemp("faults") / "faults.json"
    faults.write_text("{}")
    old = os.environ.get("TALGATE_FAULTS")
    os.environ["TALGATE_FAULTS"] = str(faults)  # inherited by the lab's agent only
    try:
        lab = new_lab(tmp_path_factory, MW)
    finally:
        if old is None:
            os.environ.pop("TALGATE_FAULTS", None)
        else:
            os.environ["TALGATE_FAULTS"] = old
    h = LabHelper(lab)
    h.faults = faults
    try:
        assert lab.topo.name == "multiwan"
        yield h
    finally:
        lab.down()


@pytest.fixture
def healthy(mlab):
    """Both ISPs forwarding and both WANs up before and after the test."""
    def settle():
        for isp in ("isp", "isp2"):
            set_forwarding(mlab.lab, isp, True)
        mlab.faults.write_text("{}")
        assert wait_wans(mlab, {"isp": "up", "isp2": "up"}, 20), mlab.client.status()["wans"]
        # the facts applied (a state shows before the apply it causes has finished)
        assert wait_for(lambda: "via 198.51.100.1 dev wan0" in table(mlab, 200)
                        and "fwmark 0x10000/0xff0000" in rules(mlab), 10)
    settle()
    yield mlab
    settle()


def wans(h: LabHelper) -> dict:
    return h.client.status()["wans"]


def wait_wans(h: LabHelper, want: dict, within: float) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < within:
        w = wans(h)
        if all(w.get(n, {}).get("state") == s for n, s in want.items()):
            return True
        time.sleep(0.1)
    return False


def wait_for(cond, within: float) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < within:
        if cond():
            return True
        time.sleep(0.1)
    return False


def table(h: LabHelper, t: int, v6: bool = False) -> str:
    return h.router("ip", *(["-6"] if v6 else []), "route", "show", "table", str(t)).strip()


def rules(h: LabHelper) -> str:
    return h.router("ip", "rule") + h.router("ip", "-6", "rule")


def test_pbr_guest_by_isp2_lan_by_isp_v4_v6(healthy):
    lab = healthy.lab
    assert source_seen(lab, "lan", INET4) == ISP
    assert source_seen(lab, "guest", INET4) == ISP2
    # IPv6: lan is routed through isp (its own address), guest leaves by isp2 (NAT66 to isp2's prefix)
    assert source_seen(lab, "lan", INET6) == "2001:db8:10:10::10"
    assert source_seen(lab, "guest", INET6) == SOURCE["isp2"][1]
    st = wans(healthy)
    assert st["isp"]["active"] and not st["isp2"]["active"]
    assert st["isp"]["rtt_ms"] is not None and st["isp"]["loss_pct"] is not None
    # the marks, rules and tables are ours (proto 250), v4 and v6
    r = rules(healthy)
    assert r.count("lookup 200 proto 250") == 2 and r.count("suppress_prefixlength 0 proto 250") == 2
    assert "default via 198.51.100.1 dev wan0" in table(healthy, 200)
    assert "default via 2001:db8:100::1 dev wan0" in table(healthy, 200, v6=True)
    # talgate status, text and JSON
    out = healthy.cli("status").stdout
    assert re.search(r"^wan +isp +wan0 +up +active +rtt [0-9.]+ ms +loss \d+%$", out, re.M), out
    assert re.search(r"^wan +isp2 +wan1 +up +standby ", out, re.M), out
    js = json.loads(healthy.cli("status", "--json").stdout)
    assert js["wans"]["isp2"]["interface"] == "wan1" and js["wans"]["isp"]["active"] is True
    # the lab knows its topology's hosts
    st = json.loads(healthy.cli("lab", "--prefix", lab.prefix, "--state", str(lab.state), "status", "--json").stdout)
    assert st["topology"] == "multiwan" and st["up"] and {"isp2", "inet"} <= set(st["hosts"])
    r = healthy.cli("lab", "--prefix", lab.prefix, "--state", str(lab.state), "exec", "inet", "--", "ip", "-br", "addr")
    assert "192.0.2.2/30" in r.stdout and "192.0.2.6/30" in r.stdout


def test_failover_then_failback_keeps_the_flow_on_isp2(healthy):
    h, lab = healthy, healthy.lab
    head = h.head()
    set_forwarding(lab, "isp", False)
    took = wait_source(lab, "lan", ISP2, within=10)
    assert took is not None and took < 3.0, f"failover took {took}"
    assert wait_wans(h, {"isp": "down"}, 2)
    assert "default via 100.64.0.1 dev wan1" in table(h, 200)
    assert "default via 2001:db8:200::1 dev wan1" in table(h, 200, v6=True)
    # a long-lived flow through isp2 while isp is down
    start_echo_server(lab)
    time.sleep(0.3)
    client = start_echo_client(lab, "lan", INET4, 0.1)
    try:
        time.sleep(1.0)
        set_forwarding(lab, "isp", True)
        # hold-down: isp answers again but new connections stay on isp2 until it is stable
        assert wait_wans(h, {"isp": "recovering"}, 5), wans(h)
        assert source_seen(lab, "lan", INET4) == ISP2
        took = wait_source(lab, "lan", ISP, within=15)
        assert took is not None, "new connections never went back to isp"
        assert wans(h)["isp"]["state"] == "up" and wans(h)["isp"]["active"]
        time.sleep(1.5)  # the flow keeps going after failback
    finally:
        client.terminate()
        out = client.communicate(timeout=10)[0].splitlines()
    assert out and not [x for x in out if x.startswith("error")], out[-5:]
    nums = [int(x.split()[1]) for x in out if re.fullmatch(r"\S+ \d+", x)]
    assert nums == list(range(1, len(nums) + 1)) and len(nums) > 20, out[-5:]
    assert {x.split()[0] for x in out if x.split()[1:]} == {ISP2}, "the flow moved off isp2"
    # audited as events; no commit was made
    acts = [e["action"] for e in h.client.audit(50)]
    assert "wan-down" in acts and "wan-recovering" in acts and "wan-up" in acts
    assert h.client.status()["head"] == head


def test_five_fail_recover_cycles_leave_nothing_stuck(healthy):
    h, lab = healthy, healthy.lab
    before = (rules(h), table(h, 200), table(h, 200, v6=True), table(h, 100), table(h, 101))
    for i in range(5):
        set_forwarding(lab, "isp", False)
        took = wait_source(lab, "lan", ISP2, within=10)
        assert took is not None and took < 3.0, f"cycle {i}: failover took {took}"
        set_forwarding(lab, "isp", True)
        assert wait_source(lab, "lan", ISP, within=20) is not None, f"cycle {i}: no failback"
        assert wait_wans(h, {"isp": "up", "isp2": "up"}, 5), (i, wans(h))
        assert source_seen(lab, "guest", INET4) == ISP2, f"cycle {i}: policy routing lost"
    after = (rules(h), table(h, 200), table(h, 200, v6=True), table(h, 100), table(h, 101))
    assert after == before
    st = h.client.status()
    assert st["in_sync"] and st["last_error"] is None
    assert st["facts"]["wan_health"] == {"wan0": True, "wan1": True}


def test_isp2_failing_alone_changes_nothing_for_lan(healthy):
    h, lab = healthy, healthy.lab
    set_forwarding(lab, "isp2", False)
    assert wait_wans(h, {"isp2": "down"}, 5)
    assert source_seen(lab, "lan", INET4) == ISP
    # guest's route_via isp2 falls back to the active uplink while isp2 is down
    assert wait_source(lab, "guest", ISP, within=3) is not None
    set_forwarding(lab, "isp2", True)
    assert wait_source(lab, "guest", ISP2, within=20) is not None


SPOOFER = r"""
import os, socket, struct, sys, time
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b)); s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
sniff = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
sniff.bind(("eth0", 0x0800))
out = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
sent, end = 0, time.monotonic() + float(sys.argv[1])
sniff.settimeout(0.2)
while time.monotonic() < end:
    try:
        pkt = sniff.recv(2048)
    except TimeoutError:
        continue
    ihl = (pkt[0] & 15) * 4
    if pkt[9] != 1 or pkt[ihl] != 8 or socket.inet_ntoa(pkt[16:20]) != "203.0.113.10":
        continue
    src = pkt[12:16]
    ident, seq = struct.unpack("!HH", pkt[ihl + 4:ihl + 8])
    payload = pkt[ihl + 8:]
    # right id and seq with a forged payload; a right payload with a wrong id; from a wrong source
    for sid, sseq, pl, fake in ((ident, seq, os.urandom(len(payload)), "203.0.113.10"),
                                (ident ^ 1, seq, payload, "203.0.113.10"),
                                (ident, seq, payload, "203.0.113.99")):
        icmp = struct.pack("!BBHHH", 0, 0, 0, sid, sseq) + pl
        icmp = struct.pack("!BBHHH", 0, 0, csum(icmp), sid, sseq) + pl
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 0, 0, 64, 1, 0, socket.inet_aton(fake), src)
        out.sendto(ip + icmp, (socket.inet_ntoa(src), 0))
        sent += 1
print(sent)
"""


def test_spoofed_echo_replies_do_not_revive_a_dead_wan(healthy):
    """isp stops forwarding but sees our probes: it answers them itself with forged replies (the
    request's id and seq with another payload, another id, another source). The WAN stays down."""
    h, lab = healthy, healthy.lab
    set_forwarding(lab, "isp", False)
    assert wait_wans(h, {"isp": "down"}, 5)
    p = subprocess.Popen(lab.exec_args("isp", [sys.executable, "-c", SPOOFER, "5"]), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    states = set()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 5:
        states.add(wans(h)["isp"]["state"])
        time.sleep(0.1)
    out, err = p.communicate(timeout=15)
    assert int(out.strip() or 0) > 10, (out, err)  # it did see and answer our probes
    assert states == {"down"}, states
    assert source_seen(lab, "lan", INET4) == ISP2


def test_a_crashing_health_checker_leaves_no_route_stuck(healthy):
    h, lab = healthy, healthy.lab
    set_forwarding(lab, "isp", False)
    assert wait_source(lab, "lan", ISP2, within=5) is not None
    # the checker of isp crashes at every round: isp goes back to "unknown" (the config decides),
    # it is not left withdrawn by a checker that no longer runs
    h.faults.write_text(json.dumps({"wan.isp.round": "raise"}))
    assert wait_wans(h, {"isp": "unknown"}, 5), wans(h)
    assert wait_for(lambda: "default via 198.51.100.1 dev wan0" in table(h, 200), 5), table(h, 200)
    assert wans(h)["isp"].get("checker_restarted")
    # the checker comes back: isp (still not forwarding) is found down again, isp2 takes over
    h.faults.write_text("{}")
    assert wait_wans(h, {"isp": "down"}, 5), wans(h)
    assert wait_source(lab, "lan", ISP2, within=3) is not None
    set_forwarding(lab, "isp", True)
    assert wait_source(lab, "lan", ISP, within=20) is not None


def test_agent_killed_while_failed_over_recovers(healthy):
    h, lab = healthy, healthy.lab
    set_forwarding(lab, "isp", False)
    assert wait_source(lab, "lan", ISP2, within=5) is not None
    os.kill(lab.meta()["pids"]["agent"], signal.SIGKILL)
    # while no agent runs, the kernel keeps the failover
    assert source_seen(lab, "lan", INET4) == ISP2
    os.environ["TALGATE_FAULTS"] = str(h.faults)
    try:
        lab.restart_agent()
    finally:
        os.environ.pop("TALGATE_FAULTS", None)
    # restarted: the facts start empty (isp healthy), the checker finds it down again
    assert wait_source(lab, "lan", ISP2, within=8) is not None
    set_forwarding(lab, "isp", True)
    assert wait_source(lab, "lan", ISP, within=20) is not None


BAD = [
    # (edit of the multiwan document, path expected in the refusal)
    (lambda t: t.replace("gateway: 100.64.0.1", "gateway: 198.51.100.1"), "wans.members.isp2.gateway"),
    (lambda t: t.replace("interface: wan1", "interface: wan7"), "wans.members.isp2.interface"),
    (lambda t: t.replace("route_via: isp2", "route_via: isp3"), "rules[2].route_via"),
    (lambda t: t.replace("priority: 2\n", "priority: 2\n      weight: 0\n"), "wans.members.isp2.weight"),
    (lambda t: t.replace("priority: 2\n", "priority: 2\n      weight: -1\n"), "wans.members.isp2.weight"),
    (lambda t: t.replace("priority: 1\n", "priority: 1\n      mark: 5\n").replace(
        "priority: 2\n", "priority: 2\n      mark: 5\n"), "wans.members.isp2.mark"),
    (lambda t: t.replace("priority: 2\n", "priority: 2\n      table: 200\n"), "wans.members.isp2.table"),
    (lambda t: t.replace("priority: 2\n", "priority: 2\n      table: 254\n"), "wans.members.isp2.table"),
]


@pytest.mark.parametrize("case", range(len(BAD)))
def test_bad_documents_are_refused_and_change_nothing(mlab, case):
    edit, path = BAD[case]
    text = edit(MW)
    assert text != MW
    before = {**mlab.kernel_state(), "rules": rules(mlab)}
    head = mlab.head()
    with pytest.raises(AgentError) as e:
        mlab.client.commit(text, "bad", base=head)
    assert path in [p["path"] for p in e.value.problems], e.value.problems
    assert mlab.head() == head
    assert {**mlab.kernel_state(), "rules": rules(mlab)} == before


def test_a_foreign_rule_on_our_table_refuses_the_commit(mlab):
    """A table or mark an ip rule we do not own already uses: refused at check, nothing changes."""
    text = MW.replace("priority: 2\n", "priority: 2\n      table: 4242\n")
    mlab.router("ip", "rule", "add", "pref", "500", "fwmark", "0x7", "lookup", "4242")
    try:
        before = {**mlab.kernel_state(), "rules": rules(mlab)}
        head = mlab.head()
        with pytest.raises(AgentError) as e:
            mlab.client.commit(text, "collides", base=head)
        assert "wans.members.isp2.table" in [p["path"] for p in e.value.problems]
        assert mlab.head() == head and {**mlab.kernel_state(), "rules": rules(mlab)} == before
    finally:
        mlab.router("ip", "rule", "del", "pref", "500")
    assert "pref 500" not in rules(mlab) and "500:" not in rules(mlab)


def test_balance_spreads_new_connections_and_keeps_them(healthy):
    """mode: balance — new connections go out by both uplinks (by weight), each stays on its own;
    when isp fails everything new goes by isp2."""
    h, lab = healthy, healthy.lab
    head = h.head()
    text = MW.replace("mode: failover", "mode: balance").replace("priority: 2\n", "priority: 1\n")
    h.client.commit(text, "balance", base=head)
    try:
        assert "nexthop via 198.51.100.1 dev wan0" in table(h, 200) and "nexthop via 100.64.0.1" in table(h, 200)
        seen = [source_seen(lab, "lan", INET4) for _ in range(24)]
        assert set(seen) == {ISP, ISP2}, seen
        set_forwarding(lab, "isp", False)
        assert wait_for(lambda: "nexthop" not in table(h, 200) and "via 100.64.0.1 dev wan1" in table(h, 200), 5)
        assert {source_seen(lab, "lan", INET4) for _ in range(8)} == {ISP2}
        set_forwarding(lab, "isp", True)
        assert wait_for(lambda: "nexthop via 198.51.100.1" in table(h, 200), 20)
    finally:
        h.client.commit(MW, "failover again", base=h.head())


UDP_FLOW = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("::", 40123))  # one source port: one conntrack entry for the whole run
s.settimeout(0.15)
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    s.sendto(b"?", ("2001:db8:203::10", 80))
    try:
        print(round(time.monotonic(), 3), s.recv(200).decode().split()[-1], flush=True)
    except OSError:
        print(round(time.monotonic(), 3), "lost", flush=True)
    time.sleep(0.05)
"""


def test_a_flow_pinned_to_the_dead_wan_is_flushed_and_moves(healthy):
    """One IPv6 UDP flow (one conntrack entry) routed through isp without NAT: when isp fails its
    entry is deleted, so the flow's next datagram starts over on isp2 (NAT66 to isp2's prefix).
    Kept, the entry would send it out isp2 with the lan address, whose answers come back through the
    dead isp. (Masqueraded IPv4 flows the kernel itself drops when their output link changes.)"""
    lab = healthy.lab
    p = subprocess.Popen(lab.exec_args("lan", [sys.executable, "-u", "-c", UDP_FLOW, "7"]), stdout=subprocess.PIPE,
                         text=True)
    time.sleep(1.5)
    t0 = time.monotonic()
    set_forwarding(lab, "isp", False)
    out = p.communicate(timeout=20)[0].split("\n")
    seen = [(float(t), src) for t, src in (x.split() for x in out if x.strip())]
    before = [src for t, src in seen if t < t0]
    after = [(round(t - t0, 2), src) for t, src in seen if t >= t0]
    assert before and set(before) == {"2001:db8:10:10::10"}, before
    moved = [t for t, src in after if src == SOURCE["isp2"][1]]
    assert moved and moved[0] < 3.0, after[:60]
    assert all(src == SOURCE["isp2"][1] for t, src in after if t > moved[0]), after


def test_a_rule_sends_a_port_to_an_extra_table(healthy):
    """routing.tables + a rule with `table:` by source zone and port: lan's HTTPS leaves by isp2
    (that table's default), lan's HTTP by the active WAN (isp), v4 and v6; removing them removes
    the table's routes and rule."""
    h, lab = healthy, healthy.lab
    text = MW.replace(
        "  - {name: guest-via-isp2,",
        "  - {name: lan-https-via-t, from: lan, to: wan, proto: tcp, dport: 443, action: accept, table: alt}\n"
        "  - {name: guest-via-isp2,") + (
        "routing:\n  tables:\n    alt:\n      id: 4200\n      routes:\n"
        "        - {to: default, via: 100.64.0.1, interface: wan1}\n"
        "        - {to: \"::/0\", via: \"2001:db8:200::1\", interface: wan1}\n")
    h.client.commit(text, "lan https by the alt table", base=h.head())
    try:
        assert "default via 100.64.0.1 dev wan1" in table(h, 4200)
        assert "lookup 4200 proto 250" in rules(h)
        assert source_seen(lab, "lan", INET4, 443) == ISP2
        assert source_seen(lab, "lan", INET4, 80) == ISP
        assert source_seen(lab, "lan", INET6, 443) == SOURCE["isp2"][1]
        assert source_seen(lab, "lan", INET6, 80) == "2001:db8:10:10::10"
    finally:
        h.client.commit(MW, "no alt table", base=h.head())
    assert table(h, 4200) == "" and "4200" not in rules(h)


def test_rules_are_ours_alone_repaired_and_removed_with_the_wans(healthy):
    """A rule removed behind the agent's back comes back (drift repair); a document without WANs
    removes every rule and table route of ours and leaves a foreign rule alone."""
    h = healthy
    h.router("ip", "rule", "del", "pref", "10900")
    assert "10900:" not in h.router("ip", "rule")
    assert wait_for(lambda: "10900:\tfrom all lookup 200 proto 250" in h.router("ip", "rule"), 10)
    h.router("ip", "rule", "add", "pref", "600", "lookup", "main")
    no_wans = MW[:MW.index("# Two uplinks")] + MW[MW.index("nat:\n"):]
    no_wans = no_wans.replace("  - {name: guest-via-isp2, from: guest, to: wan, action: accept, route_via: isp2}\n", "")
    no_wans = no_wans.replace("nat:\n", "nat:\n  masquerade: [{out: wan}]\n")  # no per-WAN NAT any more
    no_wans += "routes:\n  - {to: default, via: 198.51.100.1}\n"
    try:
        h.client.commit(no_wans, "single uplink", base=h.head())
        assert "proto 250" not in rules(h) and "600:\tfrom all lookup main" in h.router("ip", "rule")
        assert table(h, 100) == table(h, 101) == table(h, 200) == ""
        assert source_seen(h.lab, "lan", INET4) == ISP
    finally:
        h.client.commit(MW, "two uplinks again", base=h.head())
        h.router("ip", "rule", "del", "pref", "600")
    assert "lookup 200 proto 250" in rules(h)
