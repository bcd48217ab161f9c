"""Console behaviour against the agent's test double (real service layer, fake kernel appliers): staging, read-only, command mode, filter, reconnecting."""

from __future__ import annotations

from backend.client import AgentUnreachable
from console.candidate import Candidate, diff_paths
from console.fake import FakeAgent
from console.widgets import LiveTable, sparkline

from .conftest import make_app, run_async, settle

RULE = {"name": "block-guest-http", "from": "guest", "to": "wan", "proto": "tcp", "dport": 80, "action": "drop"}


def test_candidate_keeps_unchanged_sections_verbatim():
    from backend.lab.lab import example_config

    c = Candidate(example_config(), "r0")
    assert not c.dirty and c.text() == example_config()
    c.put("rules", None, dict(RULE))
    text = c.text()
    assert "# Zone to zone defaults" in text and "- {name: block-guest-http" in text
    assert [op for op, *_ in c.changes()] == ["+"]
    j = c.move("rules", 2, -1)
    assert j == 1 and c.rules[1]["name"] == "block-guest-http"
    assert diff_paths({"rules": [{"name": "a"}, {"name": "b"}]}, {"rules": [{"name": "b"}, {"name": "a"}]})[0][0] == "↕"
    c.discard()
    assert not c.dirty


def test_sparkline_width_and_plain():
    s = sparkline([0, 1, 2, 3, 4] * 100, 30, plain=True)
    assert len(s) == 30 and set(s) <= set(" .:-=+*#")


@run_async
async def test_stage_validate_inline_and_commit():
    agent = FakeAgent()
    app = make_app(agent=agent)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("a")
        await pilot.pause()
        for k, v in [("name", "block-guest-http"), ("from", "guest"), ("to", "wan"), ("dport", "99999")]:
            app.screen.query_one(f"#f-{k}").value = v
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "out of range" in str(app.screen.query_one("#e-dport").render())
        app.screen.query_one("#f-dport").value = "80"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.store.candidate.dirty and len(agent.log()) == 1  # staged, nothing committed
        await pilot.press("6")
        await settle(pilot)
        assert "rule block-guest-http" in str(app.screen.query_one("#nftdiff").render())
        await pilot.press("c")
        await pilot.pause()
        await pilot.press(*"block guest web", "enter")
        await settle(pilot)
        assert len(agent.log()) == 2 and agent.log()[0].message == "block guest web"
        assert not app.store.candidate.dirty


@run_async
async def test_read_only_has_no_mutating_actions():
    app = make_app(read_only=True, start="firewall")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        actions = {a.binding.action for a in app.screen.active_bindings.values()}
        assert not actions & {"add", "edit", "delete", "move_up", "move_down"}
        await pilot.press("a", "d", "J")
        await settle(pilot)
        assert not app.store.candidate.dirty and len(app.screen_stack) == 1
        assert "READ-ONLY" in str(app.screen.query_one("#robanner").render())


@run_async
async def test_command_mode_filter_and_delete_confirm():
    app = make_app(start="firewall")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"ping")
        await pilot.pause()
        t = app.screen.query_one("#rules", LiveTable)
        assert t.row_count == 1 and app.store.candidate.rules[int(t.current_key)]["name"] == "ping-router"
        await pilot.press("enter", "d")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert [r["name"] for r in app.store.candidate.rules] == ["ssh-from-mgmt"]
        await pilot.press("colon", *"nat", "enter")
        await settle(pilot)
        assert app.current_mode == "nat"
        await pilot.press("colon", *"tr", "enter")
        await settle(pilot)
        assert app.current_mode == "traffic"


class Flaky:
    """A transport that can go down (connection refused), wrapping the double's."""

    def __init__(self, inner):
        self.inner, self.down = inner, False

    def __call__(self, *a):
        if self.down:
            raise AgentUnreachable("/run/talgate/agent.sock", ConnectionRefusedError(111, "Connection refused"))
        return self.inner(*a)


@run_async
async def test_reconnecting_banner_and_recovery():
    agent = FakeAgent()
    agent.client.transport = flaky = Flaky(agent.client.transport)
    app = make_app(agent=agent)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        flaky.down = True
        app.poll_soon()
        await settle(pilot)
        assert "reconnecting" in str(app.screen.query_one("#banner").render())
        flaky.down = False
        app.poll_soon()
        await settle(pilot)
        assert not app.screen.query_one("#banner").display or not str(app.screen.query_one("#banner").render())
