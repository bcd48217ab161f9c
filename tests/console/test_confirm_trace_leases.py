"""Issues 4 and 5 in the console (against the agent's test double: the real service layer with fake
kernel appliers): commit-confirm and lockout refusals in the commit dialog,
the confirm key, the packet tracer dialog, the leases screen and making a reservation."""

from __future__ import annotations

import yaml

from backend.model import validate_text
from console.dialogs import CommitScreen, TraceScreen
from console.fake import FakeAgent
from console.widgets import LiveTable

from .conftest import make_app, run_async, settle

BLOCK_SSH = {"name": "block-ssh", "from": "mgmt", "to": "self", "proto": "tcp", "dport": 22, "action": "drop"}
BLOCK_WEB = {"name": "block-guest-http", "from": "guest", "to": "wan", "proto": "tcp", "dport": 80, "action": "drop"}


def text_of(app, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


def enabled_actions(app) -> set[str]:
    return {a.binding.action for a in app.screen.active_bindings.values() if a.enabled}


@run_async
async def test_commit_dialog_lockout_force_confirm_and_confirm_key():
    agent = FakeAgent()
    app = make_app(agent=agent, start="changes")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "confirm" not in enabled_actions(app)  # nothing pending: the key is hidden
        app.store.candidate.put("rules", None, dict(BLOCK_SSH))
        # first in the list: before ssh-from-mgmt accepts (appended after it, it would cut nothing)
        assert app.store.candidate.move("rules", 2, -2) == 0
        app.screen.refresh_view({"edit"})
        await settle(pilot)
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, CommitScreen)
        await pilot.press(*"block ssh", "enter")
        await settle(pilot)
        # refused by the agent's lockout proof (the console runs over SSH from mgmt): the cut is listed in
        # the dialog with the rule that cuts it, nothing committed
        assert isinstance(app.screen, CommitScreen) and app.screen.error.code == "would_cut"
        cuts = app.screen.error.detail["cuts"]
        assert [c["rule"] for c in cuts] == ["rule block-ssh"]
        general = text_of(app, "#e-_general")
        assert cuts[0]["path"] in general and "rule block-ssh" in general
        sent = agent.requests("/commit")[-1]
        assert {k: sent.get(k) for k in ("message", "base", "confirm", "force")} == {
            "message": "block ssh", "base": agent.head, "confirm": None, "force": False}
        assert len(agent.log()) == 1
        # force without a confirm time: refused at the field, the agent is not asked
        app.screen.query_one("#f-force").value = True
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "confirm time" in text_of(app, "#e-force") and len(agent.requests("/commit")) == 1
        app.screen.query_one("#f-confirm").value = "abc"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "1 to 86400" in text_of(app, "#e-confirm") and len(agent.requests("/commit")) == 1
        app.screen.query_one("#f-confirm").value = "90"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert agent.requests("/commit")[-1]["confirm"] == 90 and agent.requests("/commit")[-1]["force"] is True
        assert not isinstance(app.screen, CommitScreen) and len(agent.log()) == 2
        assert not app.store.candidate.dirty
        await settle(pilot)
        # a confirm is pending: countdown on the status line, the confirm key in the footer
        assert app.store.confirm_pending["rev"] == agent.head
        assert "CONFIRM in 90s" in text_of(app, "#statusline")
        assert "confirm" in enabled_actions(app)
        await pilot.press("C")
        await settle(pilot)
        assert agent.pending is None
        assert app.store.confirm_pending is None and "confirm" not in enabled_actions(app)


@run_async
async def test_plain_commit_and_dashboard_countdown_drift():
    agent = FakeAgent(confirm_pending=True, drift=True)
    app = make_app(agent=agent)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        summary = text_of(app, "#summary")
        assert "rolls back in 47 s unless confirmed" in summary and agent.head[:12] in summary
        problems = text_of(app, "#problems")
        drift = agent.pipeline.last_drift
        assert drift["items"] and all(item in problems for item in drift["items"])
        assert f"repaired {drift['repaired']}" in problems
        await pilot.press("colon", *"confirm", "enter")
        await settle(pilot)
        assert agent.pending is None
        app.store.candidate.put("rules", None, dict(BLOCK_WEB))
        await pilot.press("6")
        await settle(pilot)
        await pilot.press("c")
        await pilot.pause()
        await pilot.press(*"web", "enter")
        await settle(pilot)
        assert agent.requests("/commit")[-1]["confirm"] is None and agent.requests("/commit")[-1]["force"] is False
        assert len(agent.log()) == 3 and agent.pending is None


@run_async
async def test_trace_dialog_verdict_nat_field_errors_and_candidate():
    agent = FakeAgent()
    app = make_app(agent=agent, start="firewall")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("t")
        await pilot.pause()
        scr = app.screen
        assert isinstance(scr, TraceScreen)
        for k, v in {"iif": "wan0", "src": "203.0.113.10", "dst": "198.51.100.2", "dport": "8443"}.items():
            scr.query_one(f"#f-{k}").value = v
        await pilot.press("ctrl+s")
        await settle(pilot)
        out = text_of(app, "#result")
        assert "ACCEPT" in out and "forward web" in out and "dnat" in out and "192.168.10.10:443" in out
        assert scr.result["config"] == "running"
        # refused arguments (code bad_request) land at the field their problem path names (packet.src → src)
        for field, value, where in (("src", "foo", "src"), ("src", "2001:db8::5", "src"), ("dport", "", "dport")):
            if field == "dport":
                scr.query_one("#f-src").value = "203.0.113.10"
            scr.query_one(f"#f-{field}").value = value
            await pilot.press("ctrl+s")
            await settle(pilot)
            shown = [k for k in ("iif", "src", "dst", "proto", "dport") if app.screen.query_one(f"#e-{k}").display]
            assert shown == [where] and text_of(app, f"#e-{where}").strip(), (value, shown)
            assert not app.screen.query_one("#e-_general").display and not app.screen.query_one("#result").display
        await pilot.press("escape")
        await pilot.pause()
        # stage a block and trace the candidate instead of HEAD (`:trace` from any screen)
        app.store.candidate.put("rules", None, dict(BLOCK_WEB))
        await pilot.press("1")
        await settle(pilot)
        await pilot.press("colon", *"trace", "enter")
        await pilot.pause()
        scr = app.screen
        assert isinstance(scr, TraceScreen) and scr.query_one("#f-candidate").value is True
        for k, v in {"iif": "guest0", "src": "192.168.20.10", "dst": "203.0.113.10", "dport": "80"}.items():
            scr.query_one(f"#f-{k}").value = v
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert scr.result["verdict"] == "drop" and scr.result["rule"] == "rule block-guest-http"
        assert scr.result["config"] == "candidate" and "staged candidate" in text_of(app, "#result")
        scr.query_one("#f-candidate").value = False
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert scr.result["verdict"] == "accept" and scr.result["config"] == "running"
        assert agent.requests("/commit") == []


@run_async
async def test_leases_filter_and_make_reservation():
    agent = FakeAgent(dhcp=True)
    app = make_app(agent=agent, start="leases")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#leases", LiveTable)
        assert table.row_count == 8
        row = table.get_row("4:192.168.10.101")
        assert row[1].plain.strip() == "laptop" and row[2] == "lan0" and row[4] == "59m00s"
        assert table.raw_row("4:192.168.10.101")[5] == "02:00:00:00:10:65"  # cut to the column on screen
        assert table.get_row("4:192.168.10.50")[1].plain.startswith("R ")  # printer is reserved
        await pilot.press("slash", *"guest")
        await pilot.pause()
        assert table.row_count == 2
        await pilot.press("escape")
        await pilot.pause()
        assert table.row_count == 8
        # reserve laptop's v4 lease: staged in the candidate, nothing committed
        table.select_key("4:192.168.10.101")
        await pilot.press("r")
        await pilot.pause()
        assert app.screen.query_one("#f-mac").value == "02:00:00:00:10:65"
        app.screen.query_one("#f-ipv4").value = "192.168.30.5"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "outside subnet" in text_of(app, "#e-ipv4") and not app.store.candidate.dirty
        app.screen.query_one("#f-ipv4").value = "192.168.10.60"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.store.candidate.dirty and len(agent.log()) == 1
        # and its v6 lease: merged into the same reservation (by name)
        table.select_key("6:2001:db8:10:10::1000")
        await pilot.press("r")
        await pilot.pause()
        await pilot.press("ctrl+s")
        await settle(pilot)
        text = app.store.candidate.text()
        cfg, problems = validate_text(text)
        assert cfg is not None, problems
        res = yaml.safe_load(text)["dhcp"]["lan0"]["reservations"]
        assert res[-1] == {"name": "laptop", "mac": "02:00:00:00:10:65", "ipv4": "192.168.10.60",
                           "duid": "00:01:00:01:2c:5a:11:22:02:00:00:00:10:65", "ipv6": "2001:db8:10:10::1000"}
        assert [r.name for r in cfg.dhcp["lan0"].reservations] == ["printer", "laptop"]
        assert table.get_row("4:192.168.10.101")[1].plain.startswith("+ ")
        # then the normal changes/commit flow
        await pilot.press("6")
        await settle(pilot)
        assert "dhcp.lan0.reservations[laptop]" in text_of(app, "#pathdiff")
        await pilot.press("c")
        await pilot.pause()
        await pilot.press(*"reserve laptop", "enter")
        await settle(pilot)
        assert len(agent.log()) == 2 and "name: laptop" in agent.text()


@run_async
async def test_read_only_hides_confirm_and_reserve_keeps_trace():
    agent = FakeAgent(read_only=True, dhcp=True, confirm_pending=True)
    app = make_app(agent=agent, read_only=True, start="leases")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        acts = enabled_actions(app)
        assert "confirm" not in acts and "reserve" not in acts
        await pilot.press("C", "r")
        await settle(pilot)
        assert agent.pending is not None and len(app.screen_stack) == 1 and not app.store.candidate.dirty
        await pilot.press("3")
        await settle(pilot)
        assert "trace" in enabled_actions(app)
        await pilot.press("t")
        await pilot.pause()
        scr = app.screen
        assert isinstance(scr, TraceScreen)
        for k, v in {"iif": "guest0", "src": "192.168.20.10", "dst": "203.0.113.10", "dport": "80"}.items():
            scr.query_one(f"#f-{k}").value = v
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert scr.result["verdict"] == "accept" and agent.requests("/trace")
