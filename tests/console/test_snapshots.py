"""Snapshots of every screen at 80×24 and 120×40 from a fixed (fake) agent state.

Update after an intended change with ``pytest tests/console --snapshot-update`` and look at the SVGs.
"""

from __future__ import annotations

import pytest

from .conftest import make_app, settle

SCREENS = ["dashboard", "interfaces", "firewall", "nat", "traffic", "changes"]
SIZES = [(80, 24), (120, 40)]


def _staged(app) -> None:
    app.store.candidate.put("rules", None, {"name": "block-guest-http", "from": "guest", "to": "wan",
                                             "proto": "tcp", "dport": 80, "action": "drop"})


def before(view: str, staged: bool = False, keys: tuple[str, ...] = ()):
    async def run_before(pilot) -> None:
        await settle(pilot)
        if staged:
            _staged(pilot.app)
        await pilot.app.switch_mode(view) if pilot.app.current_mode != view else None
        await settle(pilot)
        if keys:
            await pilot.press(*keys)
            await settle(pilot)

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("view", SCREENS)
def test_screen(snap_compare, view, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=before(view, staged=view == "changes"))


def test_history(snap_compare):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=before("changes", keys=("h",)))


def test_rule_form_problem_inline(snap_compare):
    async def run_before(pilot) -> None:
        await before("firewall", keys=("a",))(pilot)
        for key, val in [("name", "web-out"), ("from", "guest"), ("to", "wan"), ("dport", "99999")]:
            pilot.app.screen.query_one(f"#f-{key}").value = val
        await pilot.press("ctrl+s")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=run_before)


def test_read_only_firewall(snap_compare):
    assert snap_compare(make_app(read_only=True), terminal_size=(80, 24), run_before=before("firewall"))


def test_plain_terminal_dashboard(snap_compare):
    assert snap_compare(make_app(plain=True), terminal_size=(80, 24), run_before=before("dashboard"))


def test_help(snap_compare):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=before("firewall", keys=("question_mark",)))
