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


async def _staged_commit_dialog(app, pilot):
    await settle(pilot)
    app.store.candidate.put("rules", None, dict(RULE))
    await pilot.press("6")
    await settle(pilot)
    await pilot.press("c")
    await settle(pilot)
    assert isinstance(app.screen, CommitScreen)


@run_async
async def test_esc_cancels_commit_dialog_and_keeps_candidate():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await _staged_commit_dialog(app, pilot)
        await pilot.press(*"half a message", "escape")
        await settle(pilot)
        assert not isinstance(app.screen, CommitScreen) and app.current_mode == "changes"
        assert app.store.candidate.dirty and len(app.store.candidate.changes()) == 1


@run_async
async def test_commit_message_placeholder_is_a_hint_from_the_staged_change():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await _staged_commit_dialog(app, pilot)
        ph = app.screen.query_one("#f-answer").placeholder
        assert ph != "block guest web" and "block-guest-http" in ph and "rules" in ph
        assert ph.startswith("(")  # reads as a hint, not as a value already typed


@run_async
async def test_enter_on_checkbox_submits_and_fixed_errors_clear():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await _staged_commit_dialog(app, pilot)
        scr = app.screen
        # force without a confirm time: the error shows at force; enter on the checkbox submits (no toggle)
        await pilot.press(*"block guest web", "tab", "tab")
        assert scr.focused.id == "f-force"
        scr.query_one("#f-force").value = True
        await pilot.pause()
        await pilot.press("enter")
        await settle(pilot)
        assert scr.query_one("#f-force").value is True  # enter did not untick it
        assert scr.query_one("#e-force").display and "confirm time" in str(scr.query_one("#e-force").render())
        # fixing the problem (a confirm time) clears the stale error at once, before the next submit
        scr.query_one("#f-confirm").focus()
        await pilot.press(*"60")
        await settle(pilot)
        assert not scr.query_one("#e-force").display
        # an empty message: the error clears as soon as something is typed
        scr.query_one("#f-answer").value = ""
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert scr.query_one("#e-answer").display
        scr.query_one("#f-answer").focus()
        await pilot.press("x")
        await settle(pilot)
        assert not scr.query_one("#e-answer").display


@run_async
async def test_esc_on_a_filled_form_asks_and_keeps_it():
    from console.forms import ConfirmScreen, FormScreen

    app = make_app(start="firewall")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        await pilot.press("escape")  # empty form: closes at once
        await settle(pilot)
        assert not isinstance(app.screen, FormScreen)
        await pilot.press("a", *"web-out", "escape")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # keep editing: the text is still there
        await settle(pilot)
        assert isinstance(app.screen, FormScreen) and app.screen.query_one("#f-name").value == "web-out"
        await pilot.press("escape", "y")
        await settle(pilot)
        assert app.current_mode == "firewall" and len(app.screen_stack) == 1


@run_async
async def test_form_error_clears_when_the_field_is_fixed():
    app = make_app(start="firewall")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        for k, v in [("name", "web-out"), ("from", "guest"), ("to", "wan"), ("dport", "99999")]:
            app.screen.query_one(f"#f-{k}").value = v
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen.query_one("#e-dport").display
        app.screen.query_one("#f-dport").focus()
        await pilot.press("backspace")
        await settle(pilot)
        assert not app.screen.query_one("#e-dport").display


def _visible(app, widget) -> bool:
    """The widget is on screen and nothing (the key bar) is drawn over it."""
    r = widget.region
    if not widget.display or r.height < 1:
        return False
    return all(app.screen.get_widget_at(x, r.y)[0] is widget for x in (r.x, r.x + r.width // 2))


@run_async
async def test_command_line_and_filter_are_visible_and_the_filter_stays_shown():
    app = make_app(start="firewall")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("colon", *"fire")
        await settle(pilot)
        prompt = app.screen.query_one("#prompt")
        assert prompt.value == "fire" and _visible(app, prompt)
        await pilot.press("escape", "slash", *"ping")
        await settle(pilot)
        assert prompt.value == "ping" and _visible(app, prompt)
        await pilot.press("enter")
        await settle(pilot)
        bar = app.screen.query_one("#filterbar")
        assert _visible(app, bar) and "filter: ping" in str(bar.render()) and "esc" in str(bar.render())
        await pilot.press("escape")  # clears the filter
        await settle(pilot)
        assert not bar.display and app.screen.query_one("#rules").row_count == 2
