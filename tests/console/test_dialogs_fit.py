"""Issue 13: every dialog fits and is usable at 60x20 (its keys on screen, long content scrolls, the
focused field in view), hard terminals draw scroll thumbs without sub-cell glyphs, and every part of the
document's model is editable in a section form (problems at the fields)."""

from __future__ import annotations

import json
import re

import pytest

from console.dialog_scenes import DIALOG_SCENES
from console.screenshots import DIALOGS, SCREEN_KW, make_app, scene, screen_text

from .conftest import run_async, settle

ALL = {**{d: (SCREEN_KW.get(v, {}), {"view": v, "staged": True, "keys": keys}) for d, (v, keys) in DIALOGS.items()},
       **{d: (kw, {"dialog": d}) for d, (kw, _steps) in DIALOG_SCENES.items()}}


def _hint_keys(w) -> list[str]:
    return re.findall(r"\[[^\]]+\]", str(w.render()))


@pytest.mark.parametrize("name", list(ALL))
@run_async
async def test_dialog_keys_and_box_on_screen_at_60x20(name):
    from textual.screen import ModalScreen

    app_kw, scene_kw = ALL[name]
    app = make_app(**app_kw)
    async with app.run_test(size=(60, 20)) as pilot:
        await scene(**scene_kw)(pilot)
        top = app.screen
        assert isinstance(top, ModalScreen), type(top)
        box = top.query_one(".dialog")
        assert box.region.x >= 0 and box.region.right <= 60 and box.region.y >= 0 and box.region.bottom <= 20
        text = screen_text(app)
        hints = list(top.query(".buttons"))
        assert hints, "a dialog says which keys it takes"
        lines = text.splitlines()
        for w in hints:
            r = w.region
            assert r.height >= 1 and box.region.contains_region(r), (r, box.region)
            keys = _hint_keys(w)
            shown = " ".join(lines[y][r.x:r.right] for y in range(r.y, r.bottom))
            # the whole hint is drawn (wrapped, not cut), every key with its word
            assert keys and " ".join(shown.split()) == " ".join(str(w.render()).split()), (shown, text)


@run_async
async def test_a_long_form_scrolls_to_the_focused_field_at_60x20():
    from textual.widgets import Input

    app = make_app()
    async with app.run_test(size=(60, 20)) as pilot:
        await settle(pilot)
        await pilot.press("3", "a")
        await settle(pilot)
        form = app.screen
        bad = {"name": "web-out", "from": "guest", "to": "nowhere", "sport": "x", "dport": "99999",
               "icmp_types": "nope", "src": "999.1.1.1"}
        for k, v in bad.items():
            form.query_one(f"#f-{k}", Input).value = v
        await pilot.press("ctrl+s")
        await settle(pilot)
        shown = [w for w in form.query(".error") if w.display]
        assert len(shown) >= 3  # more than fits with 13 fields at 20 rows
        seen = set()
        for _ in range(len(list(form.query(Input)))):
            f = app.focused
            assert isinstance(f, Input)
            assert 0 <= f.region.y < 20 and f.region.height == 1, (f.id, f.region)  # scrolled into view
            seen.add(f.id)
            await pilot.press("tab")
            await pilot.pause()
        assert len(seen) == 13
        hint = form.query_one("#form-hint")
        assert "[ctrl+s] save" in screen_text(app) and hint.region.bottom <= 19


@run_async
async def test_plain_scroll_thumb_is_reverse_blanks_not_sub_cell_slivers():
    """Defect 15 (stray scrollbar slivers): on a hard terminal the thumb is reverse video, with no
    ▁▂▃ glyphs (the plain net would turn them into stray _ and - marks)."""
    from textual.containers import VerticalScroll

    from console.forms import TextScreen

    app = make_app(term="vt100")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.push_screen(TextScreen("long", "\n".join(f"line {i}" for i in range(300))))
        await settle(pilot)
        for _ in range(7):  # a thumb between two cells: a fancy terminal draws it with sub-cell ends
            await pilot.press("j")
        await pilot.pause()
        box = app.screen.query_one(VerticalScroll)
        col = box.region.right - 1
        lines = screen_text(app).splitlines()
        bar = "".join(lines[y][col] for y in range(box.region.y, box.region.bottom))
        assert set(bar) == {" "}, repr(bar)
        strips = [app.screen._compositor.render_strips()[y] for y in range(box.region.y, box.region.bottom)]  # noqa: SLF001
        thumb = [y for y, s in enumerate(strips) if any(seg.style and seg.style.reverse and seg.text.strip() == ""
                                                        for seg in s.crop(col, col + 1))]
        assert thumb, "the thumb shows without colour (reverse video)"


# -- everything editable ----------------------------------------------------------------------


def _models(ann) -> list:
    import typing

    from pydantic import BaseModel

    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return [ann]
    return [m for a in typing.get_args(ann) for m in _models(a)]


def _fields(model) -> dict:
    return {f.alias or name: f for name, f in model.model_fields.items()}


def _walk(template: str, model, problems: list[str]) -> None:
    """Every field of ``model`` (the entry at ``template``) is in that section's form or has a section."""
    from backend.model.config import INTERFACE_KINDS
    from console.screens.sections import SECTIONS, SectionEdit, parse_path

    shape, keys = SECTIONS.get(template, (None, []))
    if shape:
        class Cand:
            data: dict = {}

        edit = SectionEdit(Cand, parse_path(template.replace("*", "x0")), shape, keys)
        kinds = [{}] if template != "interfaces" else [{"kind": k} for k in INTERFACE_KINDS]
        for item in kinds:
            Cand.data = {"interfaces": {"x0": item}} if template == "interfaces" else {}
            form = {f.key for f in edit.fields("x0" if shape == "dict" and item else None)}
            for m in ([INTERFACE_KINDS[item["kind"]]] if item else [model]):
                for k in _fields(m):
                    sub = f"{template}.*.{k}" if shape == "dict" else f"{template}.{k}"
                    if sub in SECTIONS:
                        for sm in _models(_fields(m)[k].annotation):
                            _walk(sub, sm, problems)
                    elif k not in form:
                        problems.append(f"{template}: {k} has no field")
        return
    for k, f in _fields(model).items():
        if k == "version":
            continue
        sub = f"{template}.{k}" if template else k
        subs = _models(f.annotation)
        if not subs:
            problems.append(f"{sub}: not editable in any form")
        for sm in subs:
            _walk(sub, sm, problems)


def test_the_consoles_copy_of_the_schema_is_current():
    from backend.model import json_schema
    from console.screens.section_model import KEYS_FILE, reduce

    assert json.loads(KEYS_FILE.read_text()) == reduce(json_schema()), (
        "the model changed: talgate config schema | python -m console.screens.section_model > " + str(KEYS_FILE))


def test_every_field_of_the_document_is_in_a_section_form():
    from backend.model.config import RouterConfig

    problems: list[str] = []
    _walk("", RouterConfig, problems)
    assert not problems, problems


@run_async
async def test_interface_rp_filter_and_kubernetes_cidrs_are_editable_with_field_problems():
    """Fields the forms did not list (interfaces.*.rp_filter, system.kubernetes) come from the model:
    a bad value is refused at its field, a good one is staged as one changed line."""
    import difflib

    from textual.widgets import Input

    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        head = app.store.candidate.head_text
        await pilot.press("colon", *"edit interfaces", "enter")
        await settle(pilot)
        app.screen.query_one("#entries").move_cursor(row=1)
        await pilot.press("e")
        await settle(pilot)
        form = app.screen
        form.query_one("#f-rp_filter", Input).value = "sideways"
        await pilot.press("ctrl+s")
        await settle(pilot)
        err = form.query_one("#e-rp_filter")
        assert err.display and "strict" in str(err.render())
        form.query_one("#f-rp_filter", Input).value = "loose"
        await pilot.press("ctrl+s")
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert app.store.candidate.data["interfaces"]["lan0"]["rp_filter"] == "loose"
        await pilot.press("colon", *"edit system", "enter")
        await settle(pilot)
        form = app.screen
        form.query_one("#f-kubernetes", Input).value = "{pod_cidrs: [10.244.0.0/33]}"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert form.query_one("#e-kubernetes").display
        form.query_one("#f-kubernetes", Input).value = "{pod_cidrs: [10.244.0.0/16]}"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.store.candidate.data["system"]["kubernetes"] == {"pod_cidrs": ["10.244.0.0/16"]}
        diff = [ln for ln in difflib.unified_diff(head.splitlines(), app.store.candidate.text().splitlines(),
                                                  lineterm="", n=0) if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]
        assert len([ln for ln in diff if ln.startswith("-")]) <= 2, diff  # only the lines edited
        assert any("rp_filter: loose" in ln for ln in diff) and any("10.244.0.0/16" in ln for ln in diff)


@run_async
async def test_brackets_in_values_and_problems_are_shown_as_typed():
    """A zone's [wan0] in the entries list and a problem quoting a pattern ([A-Za-z0-9]…) are text, not
    console markup (which ate them)."""
    from textual.widgets import Input

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("colon", *"edit zones", "enter")
        await settle(pilot)
        assert "{interfaces: [wan0], input: drop" in screen_text(app)
        await pilot.press("escape", "colon", *"edit system", "enter")
        await settle(pilot)
        app.screen.query_one("#f-hostname", Input).value = "-gw-"
        await pilot.press("ctrl+s")
        await settle(pilot)
        err = str(app.screen.query_one("#e-hostname").render())
        assert "[A-Za-z0-9]" in err, err


@run_async
async def test_vt100_focus_and_checkbox_state_show_without_colour():
    """On a VT100 (no colour) the focused field is reverse video and only it; a checkbox says [x] / [ ]."""
    from textual.widgets import Input

    def reverse_rows(app) -> set[int]:
        strips = app.screen._compositor.render_strips()  # noqa: SLF001
        return {y for y, s in enumerate(strips) if any(seg.style and seg.style.reverse and seg.text.strip()
                                                      for seg in s)}

    app = make_app(term="vt100")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("3", "a")
        await settle(pilot)
        inputs = list(app.screen.query(Input))
        for i in range(3):
            f = app.focused
            assert f is inputs[i]
            rows = reverse_rows(app)
            assert f.region.y in rows and not any(w.region.y in rows for w in inputs if w is not f), (f.id, rows)
            await pilot.press("tab")
            await pilot.pause()
        await pilot.press("escape", "y")  # discard the form
        await settle(pilot)
        app.store.candidate.put("rules", None, {"name": "x", "from": "guest", "to": "wan", "action": "drop"})
        await pilot.press("6", "c", "tab", "tab")
        await settle(pilot)
        line = next(x for x in screen_text(app).splitlines() if "force" in x)
        assert "[ ] force" in line and app.focused.id == "f-force"
        assert app.focused.region.y in reverse_rows(app)  # the focused checkbox's label
        await pilot.press("space")
        await pilot.pause()
        assert "[x] force" in screen_text(app)
        await pilot.press("escape", "3", "t", "shift+tab")  # the tracer's interface select
        await settle(pilot)
        assert app.focused.id == "f-iif" and app.focused.region.y in reverse_rows(app)


@pytest.mark.parametrize("view", ["dashboard", "interfaces", "firewall", "nat", "traffic", "changes", "leases", "routes",
                                  "events"])
@run_async
async def test_help_of_every_screen_fits_80x24_and_is_one_column_at_60x20(view):
    from textual.containers import VerticalScroll

    for size in ((80, 24), (60, 20)):
        app = make_app(**SCREEN_KW.get(view, {}))
        async with app.run_test(size=size) as pilot:
            await scene(view=view, keys=("question_mark",))(pilot)
            box = app.screen.query_one(VerticalScroll)
            text = str(app.screen.query_one("VerticalScroll Static").render())
            assert f"{view} keys" in text and "anywhere" in text and "1 .. 9" in text
            assert box.virtual_size.width <= box.region.width  # nothing cut at the right
            if size == (80, 24):
                assert box.virtual_size.height <= box.region.height, "the help scrolls at 80x24"
                assert any("lists" in ln and f"{view} keys" in ln for ln in text.splitlines())  # two columns
            else:
                assert not any("lists" in ln and "keys" in ln for ln in text.splitlines())


@run_async
async def test_commit_dialog_shows_the_router_yaml_diff_it_records_and_comes_back():
    """A diff before commit: ctrl+r in the commit dialog shows exactly the router.yaml lines the commit
    records (one line for a changed port); esc returns to the dialog with the message kept."""
    from textual.widgets import Input

    from console.dialogs import CommitScreen
    from console.forms import TextScreen

    app = make_app()
    async with app.run_test(size=(60, 20)) as pilot:
        await scene(dialog="commit-diff")(pilot)
        assert isinstance(app.screen, TextScreen)
        body = str(app.screen.query_one("VerticalScroll Static").render())
        changed = [ln for ln in body.splitlines() if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
        assert len(changed) == 3, changed  # the forward's line out and in, the new rule in
        assert "block-guest-http" in changed[0] and "dport: 8443" in changed[1] and "dport: 8444" in changed[2]
        box = app.screen.query_one("VerticalScroll")
        assert box.virtual_size.width > box.region.width  # long lines are not wrapped: they scroll sideways
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, CommitScreen)
        assert app.screen.query_one("#f-answer", Input).value == "web on 8444"
        await pilot.press("enter")
        await settle(pilot)
        assert not app.store.candidate.dirty and "dport: 8444" in app.store.client.config().text


def test_an_interface_form_follows_its_kind(monkeypatch):
    """With several interface kinds (a union tagged by kind), the form lists the fields of the item's kind."""
    from console.screens import section_model
    from console.screens.sections import SECTIONS

    fake = {"$defs": {
        "Eth": {"properties": {"kind": {"const": "ethernet"}, "mtu": {}}},
        "Vlan": {"properties": {"kind": {"const": "vlan"}, "mtu": {}, "parent": {}, "id": {},
                                "mode": {"enum": ["a", "b"]}}}},
        "properties": {"interfaces": {"patternProperties": {"^x$": {"oneOf": [{"$ref": "#/$defs/Eth"},
                                                                            {"$ref": "#/$defs/Vlan"}]}}}}}
    monkeypatch.setattr(section_model, "schema", lambda: fake)
    keys = section_model.model_keys
    assert keys("interfaces", "dict", {"kind": "vlan"}, SECTIONS) == ["kind", "mtu", "parent", "id", "mode"]
    assert keys("interfaces", "dict", {}, SECTIONS) == ["kind", "mtu"]
    assert section_model.model_hint("interfaces", "mode", {"kind": "vlan"}) == "a | b"
