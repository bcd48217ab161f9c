"""Everything editable (issue 13): `:edit SECTION` forms checked by the agent, problems at the fields,
reachable from the screens that show a section; each edit changes only its own lines."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from console.fake import FakeAgent
from console.forms import FormScreen
from console.screens.sections import SectionEdit, SectionScreen, field_text, parse_field, template_of

from .conftest import make_app, run_async, settle

DEMO = (Path(__file__).resolve().parents[2] / "backend" / "lab" / "demo.yaml").read_text()


@pytest.fixture(autouse=True)
def _no_editor(monkeypatch):
    """A key that reaches the $EDITOR binding by mistake must not start a real editor."""
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", "false")


def _diff(a: str, b: str) -> list[str]:
    return [ln for ln in difflib.unified_diff(a.splitlines(), b.splitlines(), lineterm="", n=0)
            if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]


def test_paths_fields_and_values():
    assert template_of(("dhcp", "lan0", "ipv4")) == "dhcp.*.ipv4"
    assert template_of(("dns",)) == "dns" and template_of(("nope",)) is None
    assert field_text(["lan", "guest"]) == "[lan, guest]" and field_text(True) == "true"
    assert field_text("yes") == '"yes"' and parse_field('"yes"') == ("yes", None)
    assert parse_field("") == (None, None) and parse_field("[a, b") [1].startswith("not a YAML value")


async def _fill(pilot, app, values: dict) -> None:
    assert isinstance(app.screen, FormScreen)
    for k, v in values.items():
        app.screen.query_one(f"#f-{k}").value = v
    await pilot.press("ctrl+s")
    await settle(pilot)


@run_async
async def test_edit_dns_form_problem_at_the_field_then_staged_as_one_line():
    app = make_app(agent=FakeAgent(text=DEMO))
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        await pilot.press("colon", *"edit dns", "enter")  # typed at the : prompt
        await settle(pilot)
        await _fill(pilot, app, {"cache_size": "99999"})
        assert isinstance(app.screen, FormScreen)  # refused by the agent, shown at the field
        assert "4096" in str(app.screen.query_one("#e-cache_size").render())
        await _fill(pilot, app, {"cache_size": "64"})
        assert not isinstance(app.screen, FormScreen)
        assert _diff(DEMO, app.store.candidate.text()) == ["+  cache_size: 64"]


@run_async
async def test_policy_from_the_firewall_screen_and_a_route_and_a_dhcp_pool():
    agent = FakeAgent(text=DEMO)
    app = make_app(agent=agent, start="firewall")
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        await pilot.press("p")
        await settle(pilot)
        await pilot.press("down", "e")  # the second policy, guest → wan
        await settle(pilot)
        assert isinstance(app.screen, FormScreen)
        await _fill(pilot, app, {"action": "reject"})
        cand = app.store.candidate
        assert _diff(DEMO, cand.text()) == ["-  - {from: guest, to: wan, action: accept}",
                                            "+  - {from: guest, to: wan, action: reject}"]
        while len(app.screen_stack) > 1:
            await pilot.press("escape")
            await settle(pilot)
        # a route: added in the entries dialog, a bad gateway refused at the field first
        app.run_command(":edit routes")
        await settle(pilot)
        assert isinstance(app.screen, SectionScreen)
        await pilot.press("a")
        await settle(pilot)
        await _fill(pilot, app, {"name": "lab", "to": "203.0.113.0/24", "via": "not-an-address"})
        assert isinstance(app.screen, FormScreen) and str(app.screen.query_one("#e-via").render()).strip()
        await _fill(pilot, app, {"via": "198.51.100.9"})
        assert isinstance(app.screen, SectionScreen)
        assert "+  - {name: lab, to: 203.0.113.0/24, via: 198.51.100.9}" in _diff(DEMO, cand.text())
        await pilot.press("escape")
        await settle(pilot)
        # a DHCP pool and its options: the flow-style line changes, nothing else
        app.run_command(":edit dhcp.lan0.ipv4")
        await settle(pilot)
        await _fill(pilot, app, {"lease_time": "7200"})
        d = _diff(DEMO, cand.text())
        assert "-    ipv4: {pools: [192.168.10.100-192.168.10.199], lease_time: 3600}" in d
        assert "+    ipv4: {pools: [192.168.10.100-192.168.10.199], lease_time: 7200}" in d
        assert len(d) == 5  # policy (2) + route (1) + pool (2)
        # d on the zones tab deletes the zone after a confirmation
        await pilot.press("z")
        await settle(pilot)
        await pilot.press("down", "down", "down", "d")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert "mgmt" not in cand.data["zones"]
        assert "-  mgmt:  {interfaces: [mgmt0], input: drop, forward: drop}" in _diff(DEMO, cand.text())
        assert len(agent.log()) == 1  # staged only


@run_async
async def test_zone_rename_delete_and_unknown_section():
    app = make_app(agent=FakeAgent(text=DEMO))
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        app.run_command(":edit nope")
        await settle(pilot)
        assert "sections" in str(app.screen.query_one(".title").render())
        await pilot.press("escape")
        await settle(pilot)
        cand = app.store.candidate
        edit = SectionEdit(cand, ("ntp",), "map", ["enabled", "serve"])
        data, prefix, errors = edit.apply(None, {"serve": "[lan"})
        assert errors and "serve" in errors
        app.run_command(":edit mdns")
        await settle(pilot)
        await _fill(pilot, app, {"reflect": "[lan, guest, mgmt]"})
        assert _diff(DEMO, cand.text()) == ["-  reflect: [lan, guest]", "+  reflect: [lan, guest, mgmt]"]
        app.run_command(":edit system.access")
        await settle(pilot)
        await pilot.press("d")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert "access" not in cand.data["system"]


@run_async
async def test_p_on_the_leases_screen_edits_the_lease_s_dhcp_pool():
    app = make_app(agent=FakeAgent(dhcp=True), start="leases")
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        await pilot.press("p")
        await settle(pilot)
        assert isinstance(app.screen, FormScreen)
        assert app.screen.title_text.startswith("edit dhcp.") and app.screen.title_text.endswith(".ipv4")
        assert app.screen.query_one("#f-pools").value.startswith("[")


@run_async
async def test_a_zone_rename_is_staged_and_the_broken_references_are_announced():
    app = make_app(agent=FakeAgent(text=DEMO))
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        app.run_command(":edit zones")
        await settle(pilot)
        await pilot.press("down", "e")  # lan
        await settle(pilot)
        await _fill(pilot, app, {"_key": "home"})
        cand = app.store.candidate
        assert list(cand.data["zones"]) == ["wan", "home", "guest", "mgmt"]  # renamed in place
        assert _diff(DEMO, cand.text()) == ["-  lan:   {interfaces: [lan0], input: drop, forward: drop}",
                                            "+  home: {interfaces: [lan0], input: drop, forward: drop}"]
        notes = [n.message for n in app._notifications]
        assert any("problem(s) elsewhere" in m and "policies" in m for m in notes), notes
