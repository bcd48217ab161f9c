"""Issues 4 and 5 in the console (fake agent): commit-confirm and lockout refusals in the commit dialog,
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
        app.screen.refresh_view({"edit"})
        await settle(pilot)
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, CommitScreen)
        await pilot.press(*"block ssh", "enter")
        await settle(pilot)
        # refused by the lockout check: shown in the dialog, nothing committed
        assert isinstance(app.screen, CommitScreen)
        general = text_of(app, "#e-_general")
        assert "would cut access 'ssh' (192.168.99.2 -> 192.168.99.1 tcp/22): drop by rule block-ssh" in general
        assert agent.commit_calls[-1] == {"message": "block ssh", "base": agent.head["rev"], "confirm": None,
                                          "force": False}
        assert len(agent.commits) == 1
        # force without a confirm time: refused at the field, the agent is not asked
        app.screen.query_one("#f-force").value = True
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "confirm time" in text_of(app, "#e-force") and len(agent.commit_calls) == 1
        app.screen.query_one("#f-confirm").value = "abc"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "1 to 86400" in text_of(app, "#e-confirm") and len(agent.commit_calls) == 1
        app.screen.query_one("#f-confirm").value = "90"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert agent.commit_calls[-1]["confirm"] == 90 and agent.commit_calls[-1]["force"] is True
        assert not isinstance(app.screen, CommitScreen) and len(agent.commits) == 2
        assert not app.store.candidate.dirty
        await settle(pilot)
        # a confirm is pending: countdown on the status line, the confirm key in the footer
        assert app.store.confirm_pending["rev"] == agent.head["rev"]
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
        assert "rolls back in 47 s unless confirmed" in summary and agent.head["rev"][:12] in summary
        problems = text_of(app, "#problems")
        assert "drift" in problems and "nft: table inet talgate was changed" in problems and "repaired 2" in problems
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
        assert agent.commit_calls[-1]["confirm"] is None and agent.commit_calls[-1]["force"] is False
        assert len(agent.commits) == 3 and agent.pending is None


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
        # the agent's argument errors land at the field they name
        scr.query_one("#f-src").value = "foo"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "--src 'foo' is not an IPv4 or IPv6 address" in text_of(app, "#e-src")
        scr.query_one("#f-src").value = "2001:db8::5"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "different IP versions" in text_of(app, "#e-src")
        scr.query_one("#f-src").value = "203.0.113.10"
        scr.query_one("#f-dport").value = ""
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "--dport is needed for tcp" in text_of(app, "#e-dport")
        assert not app.screen.query_one("#e-src").display
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
        assert agent.commit_calls == []


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
        assert row[5] == "02:00:00:00:10:65"
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
        assert app.store.candidate.dirty and len(agent.commits) == 1
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
        assert len(agent.commits) == 2 and "name: laptop" in agent.head["text"]


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
        assert scr.result["verdict"] == "accept" and "trace" in agent.calls
