"""The tracer agrees with the kernel: generated rulesets and packets, each packet injected into
a private network namespace holding the real ruleset, its fate read from nftrace."""

from __future__ import annotations

import copy
import ipaddress
import json
import subprocess
import sys
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.lab.lab import example_config
from backend.model import load_config, validate_text
from backend.render.nft import render
from backend.trace.evaluator import Packet, Tracer

from .nftcheck import need_nft
from .test_render_nft import _cfg, rule

HARNESS = Path(__file__).with_name("trace_harness.py")


def kernel_verdicts(cfg, packets: list[dict]) -> list[dict]:
    interfaces = {n: [str(a) for a in [*i.ipv4, *i.ipv6]] for n, i in cfg.interfaces.items()}
    routes = []
    for r in cfg.routes:
        routes.append(f"{r.to} via {r.via}" + (f" dev {r.interface}" if r.interface else ""))
    job = {"ruleset": render(cfg).document(), "interfaces": interfaces, "routes": routes, "packets": packets}
    r = subprocess.run(["unshare", "--net", sys.executable, str(HARNESS)], input=json.dumps(job),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def tracer_verdict(cfg, p: dict) -> dict:
    res = Tracer(cfg).trace(Packet(**{k: v for k, v in p.items()}))
    verdict = "drop" if res.verdict == "reject" else res.verdict
    rule = res.rule
    return {"verdict": verdict, "rule": rule}


def compare(cfg, packets):
    got = kernel_verdicts(cfg, packets)
    wrong = []
    for p, k in zip(packets, got, strict=True):
        t = tracer_verdict(cfg, p)
        if t != k:
            wrong.append(f"{p}: tracer {t} kernel {k}")
    assert not wrong, "\n".join(wrong)


def test_example_policy_packets_agree_with_the_kernel():
    need_nft()
    cfg = load_config(example_config())
    hosts = {"wan0": ("198.51.100.1", "2001:db8:100::1"), "lan0": ("192.168.10.10", "2001:db8:10:10::10"),
             "guest0": ("192.168.20.10", "2001:db8:10:20::10"), "mgmt0": ("192.168.99.10", "2001:db8:10:99::10")}
    dsts = [("203.0.113.10", "2001:db8:203::10"), ("192.168.10.10", "2001:db8:10:10::10"),
            ("192.168.99.1", "2001:db8:10:99::1"), ("198.51.100.2", "2001:db8:100::2"),
            ("192.168.20.10", "2001:db8:10:20::10")]
    packets = []
    for iif, (s4, s6) in hosts.items():
        for d4, d6 in dsts:
            for src, dst in ((s4, d4), (s6, d6)):
                for proto, port in (("tcp", 22), ("tcp", 80), ("tcp", 8443), ("udp", 53), ("icmp", None)):
                    if ipaddress.ip_address(src) == ipaddress.ip_address(dst):
                        continue
                    packets.append({"iif": iif, "src": src, "dst": dst, "proto": proto, "dport": port})
    compare(cfg, packets)


ADDRS = {"wan0": ("10.0.0.9", "2001:db8:0::9"), "lan0": ("10.1.0.9", "2001:db8:1::9"),
         "guest0": ("10.2.0.9", "2001:db8:2::9"), "dmz0": ("10.3.0.9", "2001:db8:3::9")}
TARGETS = ["10.0.0.1", "10.1.0.1", "10.1.0.5", "10.2.0.9", "10.3.0.77", "198.51.100.7", "192.0.2.3",
           "2001:db8::1", "2001:db8:1::1", "2001:db8:2::5", "2001:db8:1::1", "2001:db8:ff::3", "2001:db8:3::8"]
packet = st.fixed_dictionaries({
    "iif": st.sampled_from(sorted(ADDRS)), "dst": st.sampled_from(TARGETS),
    "proto": st.sampled_from(["tcp", "udp", "icmp"]), "dport": st.sampled_from([22, 53, 80, 1000, 1005, 4444, 65535]),
    "src_kind": st.sampled_from(["host", "set", "lit", "other", "own", "link-local"]),
})


def _packet(d: dict) -> dict | None:
    dst = ipaddress.ip_address(d["dst"])
    fam = dst.version
    other = sorted(ADDRS)[(sorted(ADDRS).index(d["iif"]) + 1) % len(ADDRS)]
    src = {"host": ADDRS[d["iif"]][0 if fam == 4 else 1],
           "set": "192.0.2.5" if fam == 4 else "2001:db8:ff::5",
           "lit": "198.51.100.7" if fam == 4 else "2001:db8:1::1",
           "other": ADDRS[other][0 if fam == 4 else 1],     # another zone's host: spoofed unless rp_filter allows
           "own": "10.2.0.1" if fam == 4 else "2001:db8:3::1",  # the router's own address
           "link-local": "10.0.0.9" if fam == 4 else "fe80::9"}[d["src_kind"]]
    if ipaddress.ip_address(src) == dst:
        return None
    return {"iif": d["iif"], "src": src, "dst": d["dst"], "proto": d["proto"],
            "dport": d["dport"] if d["proto"] != "icmp" else None}


policy = st.fixed_dictionaries({"from": st.sampled_from(["wan", "lan", "guest", "dmz"]),
                                "to": st.sampled_from(["wan", "lan", "guest", "dmz"]),
                                "action": st.sampled_from(["accept", "accept", "drop", "reject"])})


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(rule, max_size=8), st.lists(packet, min_size=6, max_size=12),
       st.lists(policy, max_size=6, unique_by=lambda p: (p["from"], p["to"])),
       st.lists(st.sampled_from(["accept", "drop", "reject"]), min_size=4, max_size=4),
       st.lists(st.sampled_from(["strict", "strict", "loose", "off"]), min_size=4, max_size=4))
def test_generated_rulesets_and_packets_agree_with_the_kernel(rules, pkts, policies, inputs, rp_filters):
    need_nft()
    doc = _cfg(rules)
    doc["policies"] = policies
    for itf, mode in zip(doc["interfaces"].values(), rp_filters, strict=True):
        itf["rp_filter"] = mode
    for z, action in zip(doc["zones"], inputs, strict=True):
        doc["zones"][z]["input"] = action
    doc["routes"] = [{"name": "d4", "to": "0.0.0.0/0", "via": "10.0.0.254"}, {"name": "d6", "to": "::/0", "via": "2001:db8::fe"}]
    cfg, _ = validate_text(yaml.safe_dump(doc))
    if cfg is None:
        return
    packets = [p for p in map(_packet, pkts) if p]
    if packets:
        compare(cfg, packets)


def test_spoofed_sources_agree_with_the_kernel():
    """Anti-spoofing (chain antispoof): from the isp side, sources of the inside zones and the
    router's own addresses are dropped before conntrack; the same packets pass where they belong,
    link-local sources always pass, and loose/off behave as documented."""
    need_nft()
    base = yaml.safe_load(example_config())
    spoof = {"lan host": ("192.168.10.10", "2001:db8:10:10::10"), "mgmt host": ("192.168.99.10", "2001:db8:10:99::10"),
             "router lan": ("192.168.10.1", "2001:db8:10:10::1"), "router wan": ("198.51.100.2", "2001:db8:100::2"),
             "internet": ("203.0.113.10", "2001:db8:203::10"), "isp": ("198.51.100.1", "2001:db8:100::1"),
             "unrouted": ("10.9.9.9", "fd00:9::9")}
    packets = []
    for iif in ("wan0", "lan0"):
        for s4, s6 in spoof.values():
            for src, dst, port in ((s4, "198.51.100.2", 22), (s6, "2001:db8:100::2", 22),
                                   (s4, "192.168.10.10", 443), (s6, "2001:db8:10:10::10", 443)):
                if src != dst:
                    packets.append({"iif": iif, "src": src, "dst": dst, "proto": "tcp", "dport": port})
            packets.append({"iif": iif, "src": s4, "dst": "198.51.100.2", "proto": "icmp", "dport": None})
        packets.append({"iif": iif, "src": "fe80::1", "dst": "2001:db8:10:10::1", "proto": "udp", "dport": 547})
    results = {}
    for mode in ("strict", "loose", "off"):
        doc = copy.deepcopy(base)
        doc["interfaces"]["wan0"]["rp_filter"] = mode
        doc["interfaces"]["lan0"]["rp_filter"] = mode
        cfg = load_config(yaml.safe_dump(doc))
        compare(cfg, packets)
        results[mode] = [tracer_verdict(cfg, p)["rule"] for p in packets]
    # The tracer now agrees with the kernel; make sure the cases we mean are really there.
    strict = dict(zip([(p["iif"], p["src"], p["dst"]) for p in packets], results["strict"], strict=True))
    assert strict[("wan0", "192.168.10.10", "198.51.100.2")] == "antispoof wan0"
    assert strict[("wan0", "2001:db8:10:99::10", "2001:db8:10:10::10")] == "antispoof wan0"
    assert strict[("wan0", "198.51.100.2", "192.168.10.10")] == "antispoof wan0"  # the router's own
    assert strict[("wan0", "2001:db8:10:10::1", "2001:db8:100::2")] == "antispoof wan0"
    assert strict[("wan0", "203.0.113.10", "198.51.100.2")] != "antispoof wan0"
    assert strict[("lan0", "203.0.113.10", "198.51.100.2")] == "antispoof lan0"
    assert strict[("lan0", "192.168.10.10", "198.51.100.2")] != "antispoof lan0"
    assert strict[("wan0", "fe80::1", "2001:db8:10:10::1")] != "antispoof wan0"
    loose = dict(zip([(p["iif"], p["src"], p["dst"]) for p in packets], results["loose"], strict=True))
    assert loose[("lan0", "203.0.113.10", "198.51.100.2")] != "antispoof lan0"  # some route back exists
    assert loose[("lan0", "10.9.9.9", "198.51.100.2")] != "antispoof lan0"  # the default route will do
    assert strict[("lan0", "10.9.9.9", "198.51.100.2")] == "antispoof lan0"   # but it leaves through wan0
    assert loose[("wan0", "192.168.10.1", "198.51.100.2")] == "antispoof wan0"  # the router's own
    assert not any(r and r.startswith("antispoof") for r in results["off"])
