"""Issue 13 (C1): keys, prompts, dialogs and the candidate's safety: each defect's pilot test."""

from __future__ import annotations

from textual import events

from console.dialogs import CommitScreen

from .conftest import make_app, run_async, settle

RULE = {"name": "block-guest-http", "from": "guest", "to": "wan", "proto": "tcp", "dport": 80, "action": "drop"}


def burst(app, *keys: str) -> None:
    """Send keys the way a paste or a serial line does: all queued at once, no pause between them."""
    import unicodedata

    from textual.app import _character_to_key
    from textual.keys import REPLACED_KEYS, _get_unicode_name_from_key

    for key in keys:
        if len(key) == 1 and not key.isalnum():
            key = _character_to_key(key)
        try:
            char = unicodedata.lookup(_get_unicode_name_from_key(REPLACED_KEYS.get(key, key)))
        except KeyError:
            char = key if len(key) == 1 else None
        ev = events.Key(key, char)
        ev.set_sender(app)
        app._driver.send_message(ev)


@run_async
async def test_typeahead_command_line_pilot():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("colon", *"interfaces", "enter")
        await settle(pilot)
        assert app.current_mode == "interfaces"


@run_async
async def test_typeahead_command_line_burst():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        burst(app, "colon", *"interfaces", "enter")
        await settle(pilot)
        assert app.current_mode == "interfaces"


@run_async
async def test_typeahead_form_fields_in_order():
    """`a` then the form's text with tabs, all queued at once: every field gets its own text."""
    app = make_app(start="firewall")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        burst(app, "a", *"web-out", "tab", *"guest", "tab", *"wan")
        await settle(pilot)
        vals = {k: app.screen.query_one(f"#f-{k}").value for k in ("name", "from", "to")}
        assert vals == {"name": "web-out", "from": "guest", "to": "wan"}
