"""A commit renders its ruleset once: the lockout proof traces the candidate's already rendered
ruleset, and finding where the caller's SSH connection arrives renders nothing."""

from __future__ import annotations

from backend.agent import lockout
from backend.lab.lab import example_config
from backend.model import load_config
from backend.render.nft import render
from backend.trace import evaluator


def test_lockout_proof_with_an_ssh_connection_renders_nothing_more(monkeypatch):
    """The candidate's ruleset is the one handed in; the running config is rendered once (its
    tracer is kept) and finding where the SSH connection arrives renders nothing."""
    cfg = load_config(example_config())
    calls = []
    monkeypatch.setattr(evaluator, "render", lambda c: calls.append(c) or render(c))
    blocked = example_config().replace("dport: 22, action: accept}", "dport: 2222, action: accept}")
    assert blocked != example_config()
    cand = load_config(blocked)
    for _ in range(3):
        cuts = lockout.cuts(cfg, cand, "192.168.99.10 50000 192.168.99.1 22", render(cand))
        assert cuts and any("22" in str(c) for c in cuts)
    assert lockout.cuts(cfg, cfg, "192.168.99.10 50000 192.168.99.1 22", render(cfg)) == []
    assert len(calls) == 1 and calls[0] is cfg


def test_tracer_renders_on_first_trace_only(monkeypatch):
    cfg = load_config(example_config())
    calls = []
    monkeypatch.setattr(evaluator, "render", lambda c: calls.append(c) or render(c))
    t = evaluator.Tracer(cfg)
    assert t.route(evaluator.ipaddress.ip_address("192.168.10.20")) == "lan0" and calls == []
    pkt = evaluator.Packet(iif="lan0", src="192.168.10.20", dst="203.0.113.10", proto="tcp", dport=80)
    assert t.trace(pkt).verdict == t.trace(pkt).verdict == "accept"
    assert len(calls) == 1
