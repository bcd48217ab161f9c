"""Multi-WAN and policy routing without a kernel: the model's checks, the marks renderer (loaded
into a private namespace), the ip rules / tables desired state, the health state machine, and
the lab topologies as data."""

from __future__ import annotations

import pytest

from backend.host.applier import Desired, Facts
from backend.host.rules import PREF_DEFAULT, PREF_MAIN, active_members, desired_state
from backend.lab.lab import TOPOLOGIES, LabError, lab_config, topology_of
from backend.model import validate_text
from backend.model.wan import MARK_MASK, PROBE_BIT, HealthCheck, plan_marks
from backend.render.nft import render

from .nftcheck import load_and_list, need_nft

MW = lab_config("multiwan.yaml")


def cfg_of(text: str):
    cfg, problems = validate_text(text)
    assert cfg is not None and not [p for p in problems if p.severity == "error"], problems
    return cfg


def paths(text: str) -> list[str]:
    cfg, problems = validate_text(text)
    return [p.path for p in problems if p.severity == "error"]


# -- the model ------------------------------------------------------------------------------------


@pytest.mark.parametrize("edit,path", [
    (lambda t: t.replace("gateway: 100.64.0.1", "gateway: 198.51.100.1"), "wans.members.isp2.gateway"),
    (lambda t: t.replace('gateway6: "2001:db8:200::1"', 'gateway6: "2001:db8:100::1"'), "wans.members.isp2.gateway6"),
    (lambda t: t.replace("interface: wan1", "interface: wan7"), "wans.members.isp2.interface"),
    (lambda t: t.replace("interface: wan1", "interface: wan0"), "wans.members.isp2.interface"),
    (lambda t: t.replace("route_via: isp2", "route_via: isp3"), "rules[2].route_via"),
    (lambda t: t.replace("route_via: isp2", "table: nope"), "rules[2].table"),
    (lambda t: t.replace("priority: 2\n", "priority: 2\n      weight: 0\n"), "wans.members.isp2.weight"),
    (lambda t: t.replace("priority: 2\n", "priority: 2\n      weight: -3\n"), "wans.members.isp2.weight"),
    (lambda t: t.replace("priority: 1\n", "priority: 1\n      mark: 5\n").replace(
        "priority: 2\n", "priority: 2\n      mark: 5\n"), "wans.members.isp2.mark"),
    (lambda t: t.replace("priority: 2\n", "priority: 2\n      mark: 256\n"), "wans.members.isp2.mark"),
    (lambda t: t.replace("priority: 2\n", "priority: 2\n      table: 200\n"), "wans.members.isp2.table"),
    (lambda t: t.replace("priority: 2\n", "priority: 2\n      table: 255\n"), "wans.members.isp2.table"),
    (lambda t: t + "routing:\n  tables:\n    vpn: {id: 101}\n    other: {id: 101}\n", "routing.tables.other.id"),
    (lambda t: t + "routing:\n  tables:\n    vpn: {id: 254}\n", "routing.tables.vpn.id"),
    (lambda t: t.replace("gateway: 100.64.0.1", "gateway: 100.64.1.1"), "wans.members.isp2.gateway"),
    (lambda t: t.replace("gateway: 100.64.0.1", "gateway: 100.64.0.2"), "wans.members.isp2.gateway"),
    (lambda t: t.replace("{tcp: \"203.0.113.10:80\"}", "{tcp: \"203.0.113.10\"}"), "wans.members.isp2.check.targets"),
    (lambda t: t.replace("to: wan, action: accept, route_via", "to: self, action: accept, route_via"), "rules[2].to"),
    (lambda t: t.replace("action: accept, route_via", "action: drop, route_via"), "rules[2].action"),
])
def test_bad_wan_documents_are_refused_with_paths(edit, path):
    text = edit(MW)
    assert text != MW
    got = paths(text)
    assert any(p == path or p.startswith(path + ".") or p.startswith(path + "[") for p in got), got


def test_the_multiwan_document_validates():
    cfg = cfg_of(MW)
    s = plan_marks(cfg)
    assert [(k, v.mark_id, v.table) for k, v in s.items()] == [("wan:isp", 1, 100), ("wan:isp2", 2, 101)]


def test_automatic_marks_and_tables_skip_explicit_and_reserved_ones():
    text = MW.replace("priority: 1\n", "priority: 1\n      mark: 1\n      table: 101\n") + \
        "routing:\n  tables:\n    vpn: {id: 100, mark: 2}\n"
    s = plan_marks(cfg_of(text))
    assert (s["wan:isp"].mark_id, s["wan:isp"].table) == (1, 101)
    assert (s["wan:isp2"].mark_id, s["wan:isp2"].table) == (3, 102)
    assert (s["table:vpn"].mark_id, s["table:vpn"].table) == (2, 100)


# -- rules and tables ---------------------------------------------------------------------------


def test_failover_rules_and_tables():
    cfg = cfg_of(MW)
    rules, routes = desired_state(Desired(cfg, Facts()))
    assert (4, PREF_MAIN, 254, None, None, 0) in rules and (6, PREF_MAIN, 254, None, None, 0) in rules
    assert routes[(4, 200, "0.0.0.0/0")] == (("198.51.100.1", "wan0", 1),)
    assert routes[(6, 200, "::/0")] == (("2001:db8:100::1", "wan0", 1),)
    marks = {r[3] for r in rules if r[3] is not None}
    assert marks == {1 << 16, 2 << 16, (1 << 16) | PROBE_BIT, (2 << 16) | PROBE_BIT}
    # isp down: its traffic rule is withdrawn, its probe rule stays, the default moves to isp2
    rules2, routes2 = desired_state(Desired(cfg, Facts(wan_health={"wan0": False})))
    assert {r[3] for r in rules2 if r[3] is not None} == marks - {1 << 16}
    assert routes2[(4, 200, "0.0.0.0/0")] == (("100.64.0.1", "wan1", 1),)
    assert routes2[(4, 100, "0.0.0.0/0")] == routes[(4, 100, "0.0.0.0/0")]  # the probes' way out
    # both down: try both rather than nothing
    assert active_members(cfg, Facts(wan_health={"wan0": False, "wan1": False})) == ["isp"]


def test_balance_is_multipath_by_weight_over_healthy_members():
    text = MW.replace("mode: failover", "mode: balance").replace("priority: 2\n", "priority: 2\n      weight: 3\n")
    cfg = cfg_of(text)
    _, routes = desired_state(Desired(cfg, Facts()))
    assert routes[(4, 200, "0.0.0.0/0")] == (("100.64.0.1", "wan1", 3), ("198.51.100.1", "wan0", 1))
    _, routes = desired_state(Desired(cfg, Facts(wan_health={"wan1": False})))
    assert routes[(4, 200, "0.0.0.0/0")] == (("198.51.100.1", "wan0", 1),)


def test_dhcp_gateway_comes_from_the_facts():
    text = MW.replace("gateway: 100.64.0.1", "gateway: dhcp")
    cfg = cfg_of(text)
    _, routes = desired_state(Desired(cfg, Facts()))
    assert (4, 101, "0.0.0.0/0") not in routes  # not learned yet: no IPv4 route for isp2
    assert (6, 101, "::/0") in routes

    class F(Facts):
        pass

    f = Facts()
    object.__setattr__(f, "gateways", {"wan1": ("100.64.0.1",)})
    _, routes = desired_state(Desired(cfg, f))
    assert routes[(4, 101, "0.0.0.0/0")] == (("100.64.0.1", "wan1", 1),)


def test_no_wans_no_rules():
    cfg = cfg_of(lab_config("example.yaml"))
    assert desired_state(Desired(cfg, Facts())) == (set(), {})
    assert not [c for c in render(cfg).chains if c.name.startswith("wan_")]
    assert "mark" not in render(cfg).text()


def test_policy_tables_and_rules():
    text = MW + ("routing:\n  tables:\n    lab: {id: 300, routes: [{to: 10.9.0.0/16, via: 198.51.100.1}, "
                 "{to: default, via: 100.64.0.1}]}\n")
    text = text.replace("route_via: isp2}", "table: lab, proto: tcp, dport: 80}")
    cfg = cfg_of(text)
    rules, routes = desired_state(Desired(cfg, Facts()))
    assert routes[(4, 300, "10.9.0.0/16")] == (("198.51.100.1", None, 1),)
    assert routes[(4, 300, "0.0.0.0/0")] == (("100.64.0.1", None, 1),)
    assert (4, PREF_DEFAULT, 200, None, None, None) in rules
    assert any(r[2] == 300 and r[3] == 3 << 16 for r in rules)
    txt = render(cfg).text()
    assert 'iifname "guest0" meta l4proto tcp tcp dport 80 counter meta mark set 0x00030000 ct mark set 0x00030000' in txt


# -- the marks in nft -----------------------------------------------------------------------------


def test_marks_ruleset_loads_and_marks_once_per_connection():
    need_nft()
    rs = render(cfg_of(MW))
    assert load_and_list(doc=rs.document()) == load_and_list(text=rs.text())
    txt = rs.text()
    mask = f"0x{MARK_MASK:08x}"
    # set only while the connection has none: a retransmit is never re-marked
    assert f'ct mark & {mask} == 0x00000000 oifname "wan0" ct mark set 0x00010000' in txt
    assert f"ct mark & {mask} != 0x00000000 meta mark set ct mark accept" in txt
    assert "fib saddr . mark . iif oif missing" in txt  # reverse path checked in the WAN's own table
    assert 'oifname "wan1" meta nfproto ipv6 counter masquerade' in txt
    assert 'oifname "wan0" meta nfproto ipv6' not in txt


# -- health -------------------------------------------------------------------------------------------


def check(**kw) -> HealthCheck:
    return HealthCheck(targets=[{"icmp": "192.0.2.1"}], interval=1, timeout=1, **kw)


def test_health_goes_down_after_down_after_failures_and_back_after_hold_down():
    from backend.agent.wan import Health

    h = Health(check(down_after=3, up_after=2, hold_down=5, window=100, max_loss=100))
    assert h.feed([10.0], 0) == "up"
    assert h.feed([None], 1) is None and h.feed([None], 2) is None and h.healthy
    assert h.feed([None], 3) == "down" and not h.healthy
    assert h.feed([1.0], 4) is None
    assert h.feed([1.0], 5) == "recovering" and not h.healthy
    assert h.feed([1.0], 9) is None and not h.healthy          # 4 s < hold_down
    assert h.feed([None], 9.5) == "down"                        # a failure restarts the hold-down
    for t in (10, 11):
        h.feed([1.0], t)
    assert h.state == "recovering"
    assert h.feed([1.0], 16) == "up" and h.healthy


def test_health_loss_and_rtt_thresholds():
    from backend.agent.wan import Health

    h = Health(check(down_after=100, window=4, max_loss=50))
    for r in ([1.0], [None], [1.0], [None]):
        h.feed(r, 0)
    assert h.healthy  # 50 % is not above 50 %
    assert h.feed([None], 1) == "down"  # 75 %
    h = Health(check(down_after=100, max_rtt=100))
    assert h.feed([50.0], 0) == "up"
    assert h.feed([90.0], 1) is None   # median 70 ms
    assert h.feed([500.0], 2) is None  # median 90 ms: one slow probe is not enough
    assert h.feed([500.0], 3) == "down"  # median 295 ms


def test_target_forms():
    from backend.model.wan import Target

    assert Target(http="http://[2001:db8::1]:8080/health").port == 8080
    assert str(Target(tcp="[2001:db8::1]:22").address) == "2001:db8::1"
    for bad in ({"icmp": "192.0.2.1:80"}, {"tcp": "192.0.2.1"}, {"http": "http://example.com/"},
                {"icmp": "192.0.2.1", "tcp": "192.0.2.1:1"}):
        with pytest.raises(ValueError):
            Target(**bad)


# -- lab topologies ----------------------------------------------------------------------------------


def test_default_topology_is_the_old_one():
    t = TOPOLOGIES["default"]
    assert t.hosts == ("router", "isp", "lan", "guest", "mgmt")
    ends = {(a.ifname, b.host, b.ifname, b.addrs) for a, b in t.links}
    assert ends == {("wan0", "isp", "eth0", ("198.51.100.1/24", "2001:db8:100::1/64")),
                    ("lan0", "lan", "eth0", ("192.168.10.10/24", "2001:db8:10:10::10/64")),
                    ("guest0", "guest", "eth0", ("192.168.20.10/24", "2001:db8:10:20::10/64")),
                    ("mgmt0", "mgmt", "eth0", ("192.168.99.10/24", "2001:db8:10:99::10/64"))}
    assert t.servers == {"isp": (80, 443), "lan": (80, 443), "guest": (80,), "mgmt": (80,), "router": (22,)}
    assert not t.sysctls


def test_topology_is_chosen_by_name_or_by_the_config():
    assert topology_of(None).name == "default"
    assert topology_of(lab_config("example.yaml")).name == "default"
    assert topology_of(MW).name == "multiwan"
    assert topology_of(MW, "default").name == "default"
    with pytest.raises(LabError, match="unknown lab topology"):
        topology_of(None, "nope")
    mw = TOPOLOGIES["multiwan"]
    assert {"isp2", "inet"} <= set(mw.hosts) and mw.servers.get("inet") == (80, 443) and "isp" not in mw.servers
    # every interface name fits IFNAMSIZ and is unique per host
    for t in TOPOLOGIES.values():
        seen = [(e.host, e.ifname) for link in t.links for e in link]
        assert len(seen) == len(set(seen)) and all(len(i) <= 15 for _, i in seen)


def test_exporter_has_each_wans_health():
    from backend.agent.metrics import wan_health_metrics

    fams = {f.name: f for f in wan_health_metrics(
        {"isp": {"interface": "wan0", "healthy": False, "active": False, "rtt_ms": None, "loss_pct": 100.0},
         "isp2": {"interface": "wan1", "healthy": True, "active": True, "rtt_ms": 2.5, "loss_pct": 10.0}})}
    val = {(n, s.labels["wan"]): s.value for n, f in fams.items() for s in f.samples}
    assert val[("talgate_wan_healthy", "isp")] == 0 and val[("talgate_wan_healthy", "isp2")] == 1
    assert val[("talgate_wan_active", "isp2")] == 1 and val[("talgate_wan_rtt_seconds", "isp2")] == 0.0025
    assert val[("talgate_wan_loss_ratio", "isp")] == 1.0 and ("talgate_wan_rtt_seconds", "isp") not in val


def test_tcp_and_http_probes(tmp_path):
    """A TCP target counts a completed connect, an HTTP target a status below 400 (a local server)."""
    import http.server
    import ipaddress
    import os
    import threading

    from backend.agent.wan import Probes

    if os.geteuid() != 0:
        pytest.skip("SO_MARK needs CAP_NET_ADMIN")

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200 if self.path == "/ok" else 503)
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        p, lo, port = Probes(0), ipaddress.ip_address("127.0.0.1"), srv.server_address[1]
        assert p.tcp(lo, port, 1.0) is not None
        assert p.tcp(lo, port, 1.0, http_path="/ok") is not None
        assert p.tcp(lo, port, 1.0, http_path="/down") is None
        srv.shutdown()
        srv.server_close()
        from backend.model.wan import Target
        assert p.probe(Target(tcp=f"127.0.0.1:{port}"), 0.5) is None  # refused: lost, not an exception
    finally:
        srv.server_close()


def test_route_via_by_address_set_renders_per_family():
    need_nft()
    text = MW.replace("rules:\n", "rules:\n  - {name: kids-via-isp2, from: lan, to: wan, src: [kids], action: accept, "
                                  "route_via: isp2}\n")
    text += "sets:\n  kids: {addresses: [192.168.10.64/26, \"2001:db8:10:10::/120\"]}\n"
    cfg = cfg_of(text)
    rs = render(cfg)
    txt = rs.text()
    assert 'iifname "lan0" ip saddr @set_kids_v4 counter meta mark set 0x00020000 comment "route_via kids-via-isp2"' in txt
    assert 'iifname "lan0" ip6 saddr @set_kids_v6 counter meta mark set 0x00020000' in txt
    assert load_and_list(doc=rs.document()) == load_and_list(text=txt)


# -- the monitor over the real pipeline (fake appliers, fake probes) ------------------------------------


def _wait(cond, within: float = 5.0) -> bool:
    import time

    t0 = time.monotonic()
    while time.monotonic() - t0 < within:
        if cond():
            return True
        time.sleep(0.02)
    return False


def test_monitor_sets_facts_audits_and_restarts_a_crashed_checker(tmp_path, monkeypatch):
    """isp's probes fail → isp down in the facts (no commit), audited; a crashing checker is
    restarted and its WAN goes back to unknown (healthy); an emptied repo gives no WANs."""
    from backend.agent import wan as wanmod
    from backend.agent.pipeline import Pipeline
    from backend.host.fake import fake_appliers

    answers = {"wan0": 5.0, "wan1": 5.0}
    marks = {s.mark | PROBE_BIT: f"wan{i}" for i, s in enumerate(plan_marks(cfg_of(MW)).values())}
    monkeypatch.setattr(wanmod.Probes, "probe", lambda self, t, timeout: answers[marks[self.mark]])
    crash = {"on": False}
    flushed: list[str] = []  # never the machine's own conntrack table: the lab tests flush for real
    monkeypatch.setattr(wanmod.WanMonitor, "_flush", lambda self, itf: flushed.append(itf))
    text = MW.replace("interval: 0.3", "interval: 0.1").replace("hold_down: 3", "hold_down: 0.2")
    p = Pipeline(tmp_path / "repo", tmp_path / "state",
                 appliers=fake_appliers(["wan0", "wan1", "lan0", "guest0", "mgmt0"]))
    monkeypatch.setattr(p, "_fault", lambda stage: (_ for _ in ()).throw(RuntimeError("boom"))
                        if crash["on"] and stage == "wan.isp.round" else None)
    p.commit(text, "multiwan", "admin", base=None)
    mon = wanmod.WanMonitor(p, interval=0.05).start()
    p.wans = mon
    try:
        assert _wait(lambda: p.status()["wans"]["isp"]["state"] == "up")
        head = p.repo.head()
        answers["wan0"] = None
        assert _wait(lambda: p.facts.wan_health.get("wan0") is False)
        st = p.status()["wans"]
        assert st["isp"]["state"] == "down" and not st["isp"]["active"] and st["isp2"]["active"]
        assert p.repo.head() == head  # a fact, not a commit
        acts = [e["action"] for e in p.audit.read(20)]
        assert "wan-down" in acts and flushed == ["wan0"]
        crash["on"] = True
        assert _wait(lambda: mon.restarts > 0 and p.facts.wan_health.get("wan0") is True)
        assert "wan-checker-restart" in [e["action"] for e in p.audit.read(50)]
        crash["on"] = False
        assert _wait(lambda: p.facts.wan_health.get("wan0") is False)
        answers["wan0"] = 5.0
        assert _wait(lambda: p.facts.wan_health.get("wan0") is True)
        assert {"wan-recovering", "wan-up"} <= {e["action"] for e in p.audit.read(100)}
        # the applied revision is gone from the repo: status still answers, without WANs
        p.applied.rev = "0" * 40
        assert p.status()["wans"] == {}
    finally:
        mon.stop()
