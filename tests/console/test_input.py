"""Issue 13 (C1): keys, prompts, dialogs and the candidate's safety: each defect's pilot test."""

from __future__ import annotations

from textual import events

from console.dialogs import ChoiceScreen, CommitScreen

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
        await pilot.press("c")  # the message typed before esc is still there
        await settle(pilot)
        assert app.screen.query_one("#f-answer").value == "half a message"


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


def _app(agent, tmp_path, **kw):
    from console.app import TalgateApp
    from console.fake import fixed_clock

    app = TalgateApp(agent.console_client, poll_interval=3600, plain=False, state_path=tmp_path / "candidate.yaml",
                     **kw)
    app.store.clock = fixed_clock
    return app


@run_async
async def test_quit_with_a_staged_candidate_asks():
    app = make_app()
    exits = []
    app.exit = lambda *a, **k: exits.append(1)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.store.candidate.put("rules", None, dict(RULE))
        await pilot.press("q")
        await settle(pilot)
        assert not exits and isinstance(app.screen, ChoiceScreen) and "1 staged change not committed" in app.screen.message
        await pilot.press("n")  # keep editing
        await settle(pilot)
        assert not exits and app.store.candidate.dirty and len(app.screen_stack) == 1
        await pilot.press("colon", *"q", "enter")
        await settle(pilot)
        assert not exits
        await pilot.press("q")
        await settle(pilot)
        assert exits == [1]
    app2 = make_app()  # nothing staged: q quits at once
    exits2 = []
    app2.exit = lambda *a, **k: exits2.append(1)
    async with app2.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await settle(pilot)
        assert exits2 == [1]


@run_async
async def test_candidate_survives_a_restart_and_goes_when_committed(tmp_path):
    import os
    import stat

    from console.fake import FakeAgent

    agent = FakeAgent()
    path = tmp_path / "candidate.yaml"
    app = _app(agent, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert not path.exists()
        app.store.candidate.put("rules", None, dict(RULE))
        app.persist_candidate()
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert "block-guest-http" in path.read_text() and agent.head in path.read_text()
    # a new console on the same box: it offers the candidate back
    app = _app(agent, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "staged work" in str(app.screen.query_one(".title").render())
        await pilot.press("r")
        await settle(pilot)
        cand = app.store.candidate
        assert cand.dirty and [p for _, p, *_ in cand.changes()] == ["rules[block-guest-http]"]
        await pilot.press("6", "c")
        await settle(pilot)
        await pilot.press(*"block guest web", "enter")
        await settle(pilot)
        assert len(agent.log()) == 2 and not app.store.candidate.dirty
        app.persist_candidate()
        assert not path.exists()


@run_async
async def test_restored_candidate_on_a_moved_head_keeps_its_base(tmp_path):
    from console import state
    from console.fake import FakeAgent

    agent = FakeAgent()
    base = agent.head
    text = agent.text().replace("dport: 22", "dport: 2222")
    state.save(tmp_path / "candidate.yaml", text, base)
    agent.client.commit(agent.text().replace("hostname: gw", "hostname: gw2"), "rename", base=base)
    app = _app(agent, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        cand = app.store.candidate
        assert cand.head_rev == base and app.store.head_moved and cand.dirty
        assert [p for _, p, *_ in cand.changes()] == ["rules[ssh-from-mgmt].dport"]


def test_state_file_location_mode_and_bounds(tmp_path):
    import os

    from console import state

    assert state.default_path({"XDG_STATE_HOME": "/x/st", "HOME": "/h"}) == state.Path("/x/st/talgate/candidate.yaml")
    assert state.default_path({"XDG_STATE_HOME": "rel", "HOME": "/h"}) == state.Path("/h/.local/state/talgate/candidate.yaml")
    p = tmp_path / "s" / "candidate.yaml"
    state.save(p, "version: 1\n", "abc")
    assert state.load(p)["candidate"] == "version: 1\n" and state.load(p)["base"] == "abc"
    assert oct(os.stat(p.parent).st_mode & 0o777) == "0o700"
    p.write_text("x" * (state.MAX_BYTES + 1))
    assert state.load(p) is None  # too big: not ours, ignored
    p.write_text("[1, 2]")
    assert state.load(p) is None
    link = tmp_path / "link.yaml"
    link.symlink_to(p)
    assert state.load(link) is None  # a symlink planted in the state dir is not followed
    state.clear(p)
    state.clear(p)
    assert not p.exists()


async def _stage_then_head_moves(app, pilot, agent, ours: tuple[str, str], theirs: tuple[str, str]):
    """Stage an edit (the candidate's text with ``ours`` replaced) while another client commits ``theirs``."""
    from console.candidate import _load

    await settle(pilot)
    cand = app.store.candidate
    cand.replace(_load(cand.head_text.replace(*ours)))
    agent.client.commit(agent.text().replace(*theirs), "from another admin", base=agent.head)
    await pilot.press("6")
    await settle(pilot)
    await pilot.press("c")
    await settle(pilot)
    if isinstance(app.screen, CommitScreen):
        await pilot.press(*"my change", "enter")
        await settle(pilot)


@run_async
async def test_conflict_offers_a_rebase_when_edits_do_not_overlap():
    from console.fake import FakeAgent

    agent = FakeAgent()
    app = make_app(agent=agent)
    app.poll_interval = 3600
    async with app.run_test(size=(80, 24)) as pilot:
        await _stage_then_head_moves(app, pilot, agent, ("dport: 8443", "dport: 8444"),
                                     ("hostname: gw", "hostname: gw2"))
        assert isinstance(app.screen, ChoiceScreen) and "rebase" in app.screen.message.lower()
        await pilot.press("r")
        await settle(pilot)
        cand = app.store.candidate
        assert cand.head_rev == agent.head and not app.store.head_moved
        assert [p for _, p, *_ in cand.changes()] == ["nat.forwards[web].dport"]
        await pilot.press("c")
        await settle(pilot)
        await pilot.press(*"web on 8444", "enter")
        await settle(pilot)
        assert agent.log()[0].message == "web on 8444"
        assert "hostname: gw2" in agent.text() and "8444" in agent.text()


@run_async
async def test_conflict_with_overlapping_edits_shows_the_overlap():
    from console.fake import FakeAgent

    agent = FakeAgent()
    app = make_app(agent=agent)
    async with app.run_test(size=(80, 24)) as pilot:
        await _stage_then_head_moves(app, pilot, agent, ("hostname: gw", "hostname: mine"),
                                     ("hostname: gw", "hostname: theirs"))
        assert isinstance(app.screen, ChoiceScreen)
        msg = str(app.screen.message)
        assert "hostname: mine" in msg and "hostname: theirs" in msg and "overlap" in msg
        await pilot.press("escape")  # back: the candidate is kept as it was
        await settle(pilot)
        assert app.store.candidate.dirty and app.store.candidate.data["system"]["hostname"] == "mine"


async def _history(app, pilot, agent, commits: int):
    for i in range(commits):
        agent.client.commit(agent.text() + f"# note {i}\n", f"note {i}", base=agent.head)
    await settle(pilot)
    await pilot.press("6")
    await settle(pilot)
    await pilot.press("h")
    await settle(pilot)
    return app.screen.query_one("#history")


@run_async
async def test_history_keys_move_the_selection():
    from console.fake import FakeAgent

    agent = FakeAgent()
    app = make_app(agent=agent)
    async with app.run_test(size=(80, 24)) as pilot:
        t = await _history(app, pilot, agent, 30)
        revs = [e.rev for e in agent.log()]
        assert t.current_key == revs[0]
        for keys, row in ((("j", "j"), 2), (("k",), 1), (("G",), len(revs) - 1), (("g",), 0), (("end",), len(revs) - 1),
                          (("home",), 0), (("pagedown",), None)):
            await pilot.press(*keys)
            await pilot.pause()
            if row is None:
                assert t.cursor_row > 5
            else:
                assert t.cursor_row == row, keys


@run_async
async def test_history_selection_follows_new_commits():
    from console.fake import FakeAgent

    agent = FakeAgent()
    app = make_app(agent=agent)
    async with app.run_test(size=(80, 24)) as pilot:
        t = await _history(app, pilot, agent, 3)
        assert t.cursor_row == 0
        agent.client.commit(agent.text() + "# later\n", "later", base=agent.head)
        app.poll_soon()
        await settle(pilot)
        assert t.current_key == agent.head  # was on the top (HEAD): follows it
        await pilot.press("j", "j")
        chosen = t.current_key
        agent.client.commit(agent.text() + "# later 2\n", "later 2", base=agent.head)
        app.poll_soon()
        await settle(pilot)
        assert t.current_key == chosen  # elsewhere: stays on the same revision


@run_async
async def test_rollback_not_offered_on_head_and_its_dialog_shows_the_target():
    from console.fake import FakeAgent

    agent = FakeAgent()
    app = make_app(agent=agent)
    async with app.run_test(size=(80, 24)) as pilot:
        t = await _history(app, pilot, agent, 2)
        assert t.current_key == agent.head
        assert "rollback" not in {a.binding.action for a in app.screen.active_bindings.values() if a.enabled}
        await pilot.press("R")
        await settle(pilot)
        assert len(app.screen_stack) == 1 and len(agent.log()) == 3
        await pilot.press("j")  # "note 0"
        await settle(pilot)
        await pilot.press("R")
        await settle(pilot)
        msg = str(app.screen.message)
        assert isinstance(app.screen, ChoiceScreen)
        assert "note 0" in msg and "ago" in msg and "-# note 1" in msg  # message, age and the diff it applies
        await pilot.press("y")
        await settle(pilot)
        assert len(agent.log()) == 4 and "# note 1" not in agent.text()


@run_async
async def test_auto_rollback_is_announced():
    from console.fake import FakeAgent

    agent = FakeAgent(confirm_pending=True)
    app = make_app(agent=agent)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.store.confirm_pending
        pending = agent.pipeline.pending["rev"]
        agent.pipeline.pending["deadline"] = 0  # the confirm time ran out: the agent's timer rolls back
        assert agent.pipeline.tick()
        app.poll_soon()
        await settle(pilot)
        toasts = [n.message for n in app._notifications]
        assert any("rolled back" in m and pending[:8] in m for m in toasts), toasts
        assert "rolled back" in str(app.screen.query_one("#problems").render())


@run_async
async def test_one_toast_for_one_confirm():
    from console.fake import FakeAgent

    agent = FakeAgent(confirm_pending=True)
    app = make_app(agent=agent)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("C")
        await settle(pilot)
        assert agent.pipeline.pending is None
        toasts = [n.message for n in app._notifications]
        assert len(toasts) == 1 and "confirmed" in toasts[0], toasts


@run_async
async def test_counts_are_singular_and_banners_wrap_at_80_columns():
    app = make_app(start="firewall")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "2 rules" in str(app.screen.query_one("#sections").render())
        await pilot.press("d", "y")
        await settle(pilot)
        sections = str(app.screen.query_one("#sections").render())
        assert "1 rule" in sections and "1 rules" not in sections
        long = "apply failed: " + "the kernel refused the ruleset because of a very long reason " * 2
        app.store.status["last_error"] = long
        app.screen.update_frame()
        await pilot.pause()
        banner = app.screen.query_one("#banner")
        assert banner.region.height >= 2 and banner.region.width <= 80
        lines = app.screen.query_one("#banner").render_lines(banner.region.reset_offset)
        shown = "".join(s.text for line in lines for s in line).replace(" ", "")
        assert long.replace(" ", "") in shown


@run_async
async def test_help_is_curated_grouped_and_fits_80x24():
    from console.forms import TextScreen

    for view in ("firewall", "changes", "dashboard"):
        app = make_app(start=view)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await pilot.press("question_mark")
            await settle(pilot)
            assert isinstance(app.screen, TextScreen)
            body = app.screen.query_one("VerticalScroll Static")
            text = str(body.render())
            assert f"{view} keys" in text and "lists" in text and "anywhere" in text
            assert "super" not in text and "Copy" not in text and text.count("quit") == 1
            box = app.screen.query_one("VerticalScroll")
            assert box.virtual_size.height <= box.region.height and box.virtual_size.width <= box.region.width
            if view == "firewall":
                assert "add" in text and "trace" in text


@run_async
async def test_form_placeholders_read_as_hints():
    from console.forms import FormScreen

    app = make_app(start="firewall")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, FormScreen)
        phs = [i.placeholder for i in app.screen.query("Input") if i.placeholder]
        assert phs and all(p.startswith("(") and p.endswith(")") for p in phs), phs
        assert "(e.g. block-guest-http)" in phs


@run_async
async def test_typeahead_across_a_screen_switch():
    """'3' (switch screen), 'a' (open the form) and the name, all at once: nothing is lost on the way."""
    from console.forms import FormScreen

    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        burst(app, "3", "a", *"web-out")
        await settle(pilot)
        assert isinstance(app.screen, FormScreen) and app.screen.query_one("#f-name").value == "web-out"


@run_async
async def test_saved_candidate_of_another_history_is_not_laid_onto_head(tmp_path):
    from console import state
    from console.fake import FakeAgent

    agent = FakeAgent()
    path = tmp_path / "candidate.yaml"
    state.save(path, agent.text().replace("hostname: gw", "hostname: other-box"), "0" * 40)
    app = _app(agent, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        assert not app.store.candidate.dirty and path.exists()
        assert any("not restored" in n.message for n in app._notifications)
        app.persist_candidate()
        assert path.exists()  # kept until this session stages something of its own


@run_async
async def test_text_views_scroll_with_j_k_g_G():
    from textual.containers import VerticalScroll

    from console.forms import TextScreen

    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.push_screen(TextScreen("long", "\n".join(f"line {i}" for i in range(200))))
        await settle(pilot)
        box = app.screen.query_one(VerticalScroll)
        await pilot.press("j", "j")
        await pilot.pause()
        assert box.scroll_y == 2
        await pilot.press("G")
        await pilot.pause()
        assert box.scroll_y == box.max_scroll_y > 100
        await pilot.press("k", "g")
        await pilot.pause()
        assert box.scroll_y == 0


@run_async
async def test_long_dialog_keeps_its_keys_on_a_small_terminal():
    from console.fake import FakeAgent

    agent = FakeAgent()
    app = make_app(agent=agent)
    async with app.run_test(size=(60, 16)) as pilot:
        for i in range(2):
            agent.client.commit(agent.text() + "".join(f"# note {i} {k}\n" for k in range(12)), f"n{i}", base=agent.head)
        await settle(pilot)
        await pilot.press("6", "h")
        await settle(pilot)
        await pilot.press("j", "R")
        await settle(pilot)
        assert isinstance(app.screen, ChoiceScreen)
        keys = app.screen.query_one("#choicekeys")
        assert "[y] roll back" in str(keys.render())
        assert 0 <= keys.region.y < 16 and keys.region.height == 1
