"""Network-facing security (issue 11, class 7): anti-spoofing (chain antispoof) and the names
DHCP clients may publish. Unit checks first, then one lab with real clients: spoofed packets
injected from the isp host, replies captured with tcpdump on every host; dhclient naming itself
`wpad` from the guest network."""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.lab.lab import example_config
from backend.model import load_config, validate_text
from backend.model.services import LABEL_RE, RESERVED_LABELS, sanitize_label
from backend.render import unbound
from backend.render.nft import render
from backend.trace.evaluator import Packet, Tracer

REPO = Path(__file__).resolve().parents[2]


def _cfg(**wan):
    doc = yaml.safe_load(example_config())
    doc["interfaces"]["wan0"].update(wan)
    return load_config(yaml.safe_dump(doc))


# -- anti-spoofing: model, renderer, tracer --------------------------------------------------


def test_antispoof_is_on_by_default_on_every_interface_and_counted():
    rs = render(_cfg())
    chain = next(c for c in rs.chains if c.name == "antispoof")
    assert (chain.hook, chain.prio, chain.policy) == ("prerouting", -300, "accept")  # before conntrack
    text = rs.text()
    for itf in ("wan0", "lan0", "guest0", "mgmt0"):
        assert f'iifname "{itf}" fib saddr . iif oif missing counter drop comment "antispoof {itf}"' in text
    # What must pass without a route back comes before the checks.
    assert text.index("antispoof dhcpv4-discovery") < text.index('"antispoof wan0"')
    assert text.index("antispoof ipv6-link-local") < text.index('"antispoof wan0"')


def test_rp_filter_loose_and_off_per_interface():
    text = render(_cfg(rp_filter="loose")).text()
    assert 'iifname "wan0" fib saddr oif missing counter drop comment "antispoof wan0"' in text
    text = render(_cfg(rp_filter="off")).text()
    assert '"antispoof wan0"' not in text and '"antispoof lan0"' in text
    doc = yaml.safe_load(example_config())
    for itf in doc["interfaces"].values():
        itf["rp_filter"] = "off"
    assert "antispoof" not in render(load_config(yaml.safe_dump(doc))).text()


def test_rp_filter_refuses_unknown_modes_with_the_path():
    doc = yaml.safe_load(example_config())
    doc["interfaces"]["wan0"]["rp_filter"] = "sometimes"
    cfg, probs = validate_text(yaml.safe_dump(doc))
    assert cfg is None and any(p.path == "interfaces.wan0.rp_filter" for p in probs), probs


def test_rendered_antispoof_passes_nft_check():
    from tests.unit.nftcheck import need_nft, nft_in_private_ns

    need_nft()
    for mode in ("strict", "loose", "off"):
        r = nft_in_private_ns("nft -c -j -f -", json.dumps(render(_cfg(rp_filter=mode)).document()))
        assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("src,dst,rule", [
    ("192.168.10.10", "198.51.100.2", "antispoof wan0"),          # a lan host's address from the isp
    ("192.168.99.10", "198.51.100.2", "antispoof wan0"),          # mgmt
    ("198.51.100.2", "192.168.10.10", "antispoof wan0"),          # the router's own (wan)
    ("192.168.10.1", "198.51.100.2", "antispoof wan0"),           # the router's own (lan)
    ("2001:db8:10:10::10", "2001:db8:100::2", "antispoof wan0"),
    ("2001:db8:10:99::10", "2001:db8:100::2", "antispoof wan0"),
    ("2001:db8:10:10::1", "2001:db8:100::2", "antispoof wan0"),
    ("203.0.113.10", "198.51.100.2", "rule ping-router"),         # the internet: passes
    ("2001:db8:203::10", "2001:db8:100::2", "rule ping-router"),
])
def test_tracer_drops_spoofed_sources_where_the_kernel_does(src, dst, rule):
    res = Tracer(_cfg()).trace(Packet("wan0", src, dst, proto="icmp"))
    assert res.rule == rule, res
    if rule.startswith("antispoof"):
        assert res.verdict == "drop" and res.hook == "prerouting" and res.egress is None
    off = Tracer(_cfg(rp_filter="off")).trace(Packet("wan0", src, dst, proto="icmp"))
    assert not (off.rule or "").startswith("antispoof")


# -- DHCP client names ----------------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300),
                 st.from_regex(r"[A-Za-z0-9_ .-]{0,80}", fullmatch=True)))
def test_sanitized_names_are_one_valid_label_or_refused(raw):
    out = sanitize_label(raw)
    if out is not None:
        assert re.fullmatch(LABEL_RE, out) and re.fullmatch(r"[a-z0-9-]{1,63}", out)
        assert not out.startswith("-") and not out.endswith("-") and not out.isdigit()
        assert sanitize_label(out) == out  # idempotent


@pytest.mark.parametrize("raw,want", [
    ("Laptop", "laptop"), ("My Laptop.lan.example", "my-laptop"), ("x" * 70, "x" * 63),
    (b"phone", "phone"), ("-a-", "a"), ("a_b", "a-b"),
    ("", None), ("---", None), ("_ldap", None), ("1234", None), ("xn--bcher-kva", None),
    ("bücher", None), (b"\xff\xfe", None), ("a\x00b", None), ("a;b", None), ("a" * 300, None), (None, None),
])
def test_sanitize_examples(raw, want):
    assert sanitize_label(raw) == want


SVC = """
dhcp:
  lan0:
    ipv4: {pools: [192.168.10.100-192.168.10.199]}
    reservations: [{name: printer, mac: "02:00:00:00:10:50", ipv4: 192.168.10.50}]
  guest0:
    ipv4: {pools: [192.168.20.100-192.168.20.199]}
dns:
  zones: {lan: allow, guest: allow}
  hosts: [{name: nas, ipv4: [192.168.10.5]}]
"""


def test_reserved_and_foreign_names_are_not_published():
    cfg = load_config(example_config() + SVC)
    claims = [("wpad", "192.168.20.100"), ("GW", "192.168.20.101"), ("localhost", "192.168.20.102"),
              ("isatap", "192.168.20.103"), ("printer", "192.168.20.104"), ("nas", "192.168.20.105"),
              ("_sip", "192.168.20.106"), ("gw.lan.example", "192.168.20.107"), ("tablet", "192.168.20.108")]
    recs = unbound.host_records(cfg, [unbound.LeaseName(n, a, "guest0") for n, a in claims])
    names = {f for f, _ in recs}
    assert "tablet.lan.example" in names
    for n in ("wpad", "gw", "localhost", "isatap"):
        assert f"{n}.lan.example" not in names
    assert ("printer.lan.example", "192.168.20.104") not in recs and ("nas.lan.example", "192.168.20.105") not in recs
    assert all(a != "192.168.20.106" for _, a in recs)
    assert RESERVED_LABELS >= {"wpad", "isatap", "localhost"}
    # A scope with its own domain: its clients' names go there and not into the LAN domain.
    doc = yaml.safe_load(example_config() + SVC)
    doc["dhcp"]["guest0"]["ipv4"]["domain"] = "guest.example"
    cfg = load_config(yaml.safe_dump(doc))
    recs = unbound.host_records(cfg, [unbound.LeaseName("tablet", "192.168.20.108", "guest0"),
                                      unbound.LeaseName("laptop", "192.168.10.100", "lan0")])
    assert ("tablet.guest.example", "192.168.20.108") in recs
    assert ("laptop.lan.example", "192.168.10.100") in recs
    assert not any(f == "tablet.lan.example" for f, _ in recs)


# -- the lab --------------------------------------------------------------------------------

MARK = 47474  # source port / ICMP id of every spoofed packet: replies carry it back

SEND = r'''
import ipaddress, json, socket, sys
sys.path.insert(0, sys.argv[1])
from tests.unit.trace_harness import frame
job = json.loads(sys.argv[2])
mac = bytes.fromhex(job["mac"].replace(":", ""))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
for k, p in enumerate(job["packets"]):
    s.send(frame(p, mac, job["mark"], 1000 + k))
s.close()
'''


def _need(*tools):
    missing = [t for t in tools if not shutil.which(t) and not Path("/usr/sbin", t).exists()]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (make install installs it)")


@pytest.fixture(scope="module")
def netlab(tmp_path_factory):
    from tests.lab.conftest import new_lab
    from tests.lab.util import LabHelper

    _need("tcpdump", "dhclient", "dig", "kea-dhcp4")
    lab = new_lab(tmp_path_factory, example_config() + SVC)
    h = LabHelper(lab)
    h.work = tmp_path_factory.mktemp("net")
    h.pids = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (
                lab.services() and all(s.get("state") == "running" for n, s in lab.services().items() if n != "frr")):
            time.sleep(0.2)
        yield h
    finally:
        for pid in h.pids:
            subprocess.run(["kill", str(pid)], capture_output=True)
        lab.down()


class Capture:
    """tcpdump on a lab host's eth0 while the block runs; .lines afterwards."""

    def __init__(self, h, host: str, bpf: str, inbound: bool = False):
        self.h, self.host, self.bpf, self.inbound = h, host, bpf, inbound
        self.lines: list[str] = []

    def __enter__(self):
        args = ["tcpdump", "-i", "eth0", "-n", "-l", "-U", "-p", *(["-Q", "in"] if self.inbound else []), self.bpf]
        self.p = subprocess.Popen(self.h.lab.exec_args(self.host, args), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        seen = ""
        while "listening on" not in seen:  # printed once the filter is attached
            line = self.p.stderr.readline()
            if not line:
                self.p.wait(timeout=10)
                pytest.fail(f"tcpdump on {self.host}: {seen}")
            seen += line
        return self

    def __exit__(self, *exc):
        time.sleep(1.0)
        self.p.terminate()
        out, _ = self.p.communicate(timeout=10)
        self.lines = [ln for ln in out.splitlines() if ln.strip()]
        return False


REPLIES = (f"tcp port {MARK} or udp port {MARK} or (icmp and icmp[4:2] = {MARK}) "
           f"or (icmp6 and ip6[40] < 130 and ip6[44:2] = {MARK})")
ICMP_ERRORS_IN = "(icmp and icmp[0] != 8 and icmp[0] != 0) or (icmp6 and ip6[40] < 128)"

# (description, packet) sent from the isp host into wan0; each would be answered into lan/mgmt
# (or reach the lan host through the port forward) without anti-spoofing.
SPOOFED = [
    ("lan v4 -> router ping", {"src": "192.168.10.10", "dst": "198.51.100.2", "proto": "icmp"}),
    ("mgmt v4 -> router ping", {"src": "192.168.99.10", "dst": "198.51.100.2", "proto": "icmp"}),
    ("mgmt v4 -> port forward", {"src": "192.168.99.10", "dst": "198.51.100.2", "proto": "tcp", "dport": 8443}),
    ("router lan v4 -> port forward", {"src": "192.168.10.1", "dst": "198.51.100.2", "proto": "tcp", "dport": 8443}),
    ("router wan v4 -> router ping", {"src": "198.51.100.2", "dst": "198.51.100.2", "proto": "icmp"}),
    ("lan v6 -> router ping", {"src": "2001:db8:10:10::10", "dst": "2001:db8:100::2", "proto": "icmp"}),
    ("mgmt v6 -> router ping", {"src": "2001:db8:10:99::10", "dst": "2001:db8:100::2", "proto": "icmp"}),
    ("router lan v6 -> router ping", {"src": "2001:db8:10:10::1", "dst": "2001:db8:100::2", "proto": "icmp"}),
    ("router wan v6 -> router ping", {"src": "2001:db8:100::2", "dst": "2001:db8:100::2", "proto": "icmp"}),
]


def _counter(h, itf: str) -> int:
    out = json.loads(h.router("nft", "-j", "list", "chain", "inet", "talgate", "antispoof"))
    for item in out["nftables"]:
        r = item.get("rule")
        if r and r.get("comment") == f"antispoof {itf}":
            return next(e["counter"]["packets"] for e in r["expr"] if "counter" in e)
    return -1


def _spoof(h, packets: list[dict]) -> dict[str, list[str]]:
    mac = json.loads(h.router("ip", "-j", "link", "show", "wan0"))[0]["address"]
    job = {"mac": mac, "mark": MARK, "packets": [dict(p, iif="wan0") for p in packets]}
    caps = [Capture(h, "lan", REPLIES), Capture(h, "mgmt", REPLIES),
            Capture(h, "isp", f"({REPLIES}) or {ICMP_ERRORS_IN}", inbound=True)]
    for c in caps:
        c.__enter__()
    try:
        r = h.lab.run("isp", [sys.executable, "-c", SEND, str(REPO), json.dumps(job)], timeout=30)
        assert r.returncode == 0, r.stderr
    finally:
        for c in caps:
            c.__exit__(None, None, None)
    return {c.host: c.lines for c in caps}


@pytest.mark.lab
def test_spoofed_packets_from_the_isp_get_no_reply_inside(netlab):
    h = netlab
    before = _counter(h, "wan0")
    seen = _spoof(h, [p for _, p in SPOOFED])
    assert seen == {"lan": [], "mgmt": [], "isp": []}, seen
    assert _counter(h, "wan0") - before == len(SPOOFED)
    assert _counter(h, "lan0") == 0 and _counter(h, "mgmt0") == 0
    # Normal traffic still flows: forwarded, port-forwarded, to the router, both families.
    assert h.ping("lan", "203.0.113.10") and h.ping("lan", "2001:db8:203::10")
    assert h.ping("mgmt", "2001:db8:203::10") and h.ping("isp", "198.51.100.2")
    assert h.ping("isp", "2001:db8:100::2")
    assert h.tcp("isp", "198.51.100.2", 8443), "the port forward"
    assert h.tcp("mgmt", "192.168.99.1", 22) and h.tcp("mgmt", "2001:db8:10:99::1", 22)
    # ND works through the chain (link-local sources): a fresh neighbour entry resolves.
    h.router("ip", "-6", "neigh", "flush", "dev", "lan0")
    assert h.ping("lan", "2001:db8:10:10::1")


@pytest.mark.lab
def test_dhcp_passes_antispoof_and_reserved_names_are_not_published(netlab):
    h = netlab

    def dhclient(host: str, name: str) -> str:
        conf, lf, pf = (h.work / f"{host}-{name}.{x}" for x in ("conf", "leases", "pid"))
        conf.write_text(f'send host-name "{name}";\n')
        r = h.lab.run(host, ["dhclient", "-4", "-1", "-v", "-cf", str(conf), "-lf", str(lf), "-pf", str(pf),
                             "-sf", "/bin/true", "eth0"], timeout=60)
        try:
            h.pids.append(int(pf.read_text()))
        except (OSError, ValueError):
            pass
        assert r.returncode == 0, r.stderr[-2000:]
        addrs = [ln.split()[1].rstrip(";") for ln in lf.read_text().splitlines()
                 if ln.strip().startswith("fixed-address")]
        assert addrs, lf.read_text()
        return addrs[-1]

    def dig(name: str) -> list[str]:
        return h.lab.run("lan", ["dig", "+short", "+time=2", "+tries=1", "@192.168.10.1", name, "A"],
                         timeout=15).stdout.split()

    def wait(fn, timeout=20.0):
        deadline = time.monotonic() + timeout
        while not fn() and time.monotonic() < deadline:
            time.sleep(0.3)
        return fn()

    # A normal name from the guest network resolves for lan clients (the shared LAN domain) ...
    addr = dhclient("guest", "tablet")
    assert ipaddress.ip_address(addr) in ipaddress.ip_network("192.168.20.0/24")
    assert wait(lambda: dig("tablet.lan.example") == [addr]), dig("tablet.lan.example")
    # ... the same client renaming itself to a reserved name: once the name sync has seen the new
    # lease (its old name is withdrawn), the reserved one is not published.
    for reserved in ("wpad", "gw"):
        assert dhclient("guest", reserved) == addr
        assert wait(lambda: dig("tablet.lan.example") == []), dig("tablet.lan.example")
        assert dig(f"{reserved}.lan.example") == [], reserved
        assert dhclient("guest", "tablet") == addr
        assert wait(lambda: dig("tablet.lan.example") == [addr])
    assert _counter(h, "guest0") == 0  # DHCP from 0.0.0.0 was not counted as spoofed


@pytest.mark.lab
def test_rp_filter_off_removes_the_check_for_that_link(netlab):
    h = netlab
    text = example_config() + SVC  # what the lab was started with
    doc = yaml.safe_load(text)
    doc["interfaces"]["wan0"]["rp_filter"] = "off"
    h.client.commit(yaml.safe_dump(doc, sort_keys=False), "rp_filter off on wan0")
    try:
        assert '"antispoof wan0"' not in h.router("nft", "list", "chain", "inet", "talgate", "antispoof")
        seen = _spoof(h, [p for d, p in SPOOFED if d.startswith(("lan v", "mgmt v"))])
        # Without the check the router answers the spoofed pings into lan and mgmt (v4 and v6)
        # and the lan host answers the forwarded SYN into mgmt: what the default prevents.
        assert len(seen["lan"]) >= 2 and len(seen["mgmt"]) >= 3, seen
    finally:
        h.client.commit(text, "rp_filter back to strict")
