"""The tracer's verdict equals what real probes see in the lab: every host pair and port of the
example policy, both directions, IPv4 and IPv6, for the running config and for a candidate."""

from __future__ import annotations

import sys

import pytest

from backend.lab.lab import example_config

pytestmark = pytest.mark.lab

LINK = {"isp": "wan0", "lan": "lan0", "guest": "guest0", "mgmt": "mgmt0"}
ADDR = {"isp": ("198.51.100.1", "2001:db8:100::1"), "lan": ("192.168.10.10", "2001:db8:10:10::10"),
        "guest": ("192.168.20.10", "2001:db8:10:20::10"), "mgmt": ("192.168.99.10", "2001:db8:10:99::10")}
DESTS = {**ADDR, "internet": ("203.0.113.10", "2001:db8:203::10"), "router-wan": ("198.51.100.2", "2001:db8:100::2"),
         "router-lan": ("192.168.10.1", "2001:db8:10:10::1"), "router-mgmt": ("192.168.99.1", "2001:db8:10:99::1")}
PORTS = [22, 80, 443, 8443, None]  # None: ICMP echo

CANDIDATE = example_config().replace(
    "rules:\n", "rules:\n  - {name: guest-no-web, from: guest, to: wan, proto: tcp, dport: 80, action: reject}\n"
                "  - {name: mgmt-to-guest, from: mgmt, to: guest, action: accept}\n")


def cases():
    out = []
    for src, link in LINK.items():
        for dname, (d4, d6) in DESTS.items():
            if dname == src or (src == "isp" and dname == "internet"):
                continue
            for fam, (s, d) in ((4, (ADDR[src][0], d4)), (6, (ADDR[src][1], d6))):
                if src == "isp" and fam == 4 and d.startswith("192.168."):
                    continue  # the isp has no route to private space: nothing reaches the router
                for port in PORTS:
                    out.append((src, link, s, d, port))
    return out


def observe(lab, src, dst, port) -> str:
    if port is None:
        return "reply" if lab.ping(src, dst) else "timeout"
    r = lab.lab.run(src, [sys.executable, "-m", "backend.lab.whoami", "--probe", dst, str(port), "1"], timeout=15)
    if r.returncode == 0:
        return "open"
    return "refused" if "ConnectionRefused" in r.stdout else "timeout"


def expected(verdict: str, port) -> set[str]:
    if verdict == "accept":
        return {"reply"} if port is None else {"open", "refused"}
    if verdict == "reject":
        return {"timeout"} if port is None else {"refused"}
    return {"timeout"}


def check_all(lab, candidate: str | None):
    cs = cases()
    traces = [lab.client.trace({"iif": link, "src": s, "dst": d, "proto": "tcp" if port else "icmp", "dport": port},
                               candidate) for _src, link, s, d, port in cs]
    seen = lab.parallel([(observe, lab, src, d, port) for src, _link, _s, d, port in cs])
    wrong = [f"{src} {s} -> {d} {port or 'icmp'}: tracer {t['verdict']} by {t['rule']}, probe saw {o}"
             for (src, _l, s, d, port), t, o in zip(cs, traces, seen, strict=True) if o not in expected(t["verdict"], port)]
    assert not wrong, f"{len(wrong)} of {len(cs)} disagree:\n" + "\n".join(wrong)
    return traces


def test_tracer_matches_probes_running_config(lab):
    traces = check_all(lab, None)
    assert {t["verdict"] for t in traces} >= {"accept", "drop"}


def test_tracer_matches_probes_for_a_candidate(lab):
    head = lab.head()
    predicted = lab.client.trace({"iif": "guest0", "src": "192.168.20.10", "dst": "203.0.113.10",
                                  "proto": "tcp", "dport": 80}, CANDIDATE)
    assert predicted["verdict"] == "reject" and predicted["rule"] == "rule guest-no-web"
    assert predicted["config"] == "candidate"
    assert lab.head() == head  # tracing a candidate changes nothing
    assert lab.client.commit(CANDIDATE, "candidate for the tracer")["rev"]
    try:
        check_all(lab, CANDIDATE)
    finally:
        lab.client.rollback()
