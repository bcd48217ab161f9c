"""Issue 13 (defects 13, 14): rule hit counters survive an unrelated commit, and conntrack counts
bytes and packets per flow in the router namespace (the top talkers are not all zero)."""

from __future__ import annotations

import time

import pytest

from backend.lab.lab import example_config

pytestmark = pytest.mark.lab

UNRELATED = example_config().replace(
    "rules:\n", "rules:\n  - {name: guest-no-smtp, from: guest, to: wan, proto: tcp, dport: 25, action: drop}\n")


def _ssh_hits(lab) -> int:
    return next(c.packets for c in lab.client.counters() if (c.kind, c.name) == ("rule", "ssh-from-mgmt"))


def test_an_unrelated_commit_keeps_a_rules_hit_counter(lab):
    for _ in range(3):
        assert lab.tcp("mgmt", "192.168.99.1", 22) is not None
    before = _ssh_hits(lab)
    assert before >= 3
    try:
        lab.client.commit(UNRELATED, "an unrelated rule (guest smtp)")
        assert any(c.name == "guest-no-smtp" for c in lab.client.counters())  # the commit did land
        assert _ssh_hits(lab) >= before, "the commit reset the hit counter of an unchanged rule"
        assert lab.tcp("mgmt", "192.168.99.1", 22) is not None
        assert _ssh_hits(lab) > before
    finally:
        lab.client.commit(example_config(), "back to the example")


def test_conntrack_accounting_is_on_in_the_router_namespace(lab):
    assert lab.router("cat", "/proc/sys/net/netfilter/nf_conntrack_acct").strip() == "1"
    assert lab.tcp("lan", "203.0.113.10", 80) is not None
    deadline = time.monotonic() + 5
    while True:
        ct = lab.client.conntrack_top(20)
        if ct.accounting or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert ct.accounting
    lan = next(t for t in ct.top if t.src == "192.168.10.10")
    assert lan.packets > 0 and lan.bytes > 0
