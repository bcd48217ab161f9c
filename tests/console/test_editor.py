"""`E`/`e` → $EDITOR on the candidate router.yaml, like `kubectl edit` (issue 13)."""

from __future__ import annotations

import difflib
import os
import stat

from console.editor import HEADER_MARK, edit_until_valid, editor_command, problems_header, strip_header
from console.fake import FakeAgent

from .conftest import make_app, run_async, settle

SCRIPT = r"""#!/bin/sh
# a scripted editor: round 1 makes the ssh rule's port invalid, round 2 fixes it to 2222
f="$1"; state="$EDIT_STATE"
n=$(cat "$state" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$state"
cp "$f" "$state.round$n"
if [ "$n" = 1 ]; then
  sed -i 's/dport: 22, action: accept}/dport: 99999, action: accept}/' "$f"
else
  sed -i 's/dport: 99999, action/dport: 2222, action/' "$f"
fi
"""


def _editor(tmp_path, monkeypatch) -> str:
    script = tmp_path / "editor.sh"
    script.write_text(SCRIPT)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    state = str(tmp_path / "state")
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", f"sh {script}")
    monkeypatch.setenv("EDIT_STATE", state)
    return state


def test_editor_command_splits_like_a_shell(monkeypatch):
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", "code --wait")
    assert editor_command() == ["code", "--wait"]
    monkeypatch.setenv("VISUAL", "nano")
    assert editor_command() == ["nano"]


def test_problems_go_on_top_and_come_off_again():
    h = problems_header([{"path": "rules[0].dport", "message": "out of\nrange"}])
    assert h.startswith(HEADER_MARK) and "# rules[0].dport: out of range\n" in h
    assert strip_header(h + "version: 1\n", h) == "version: 1\n"
    # the header was edited a little: our lines still at the top come off, the user's text stays
    assert strip_header(h.replace("#\n", "") + "# mine\nversion: 1\n", h) == "# mine\nversion: 1\n"


def test_loop_reopens_until_valid_and_abandons_on_empty_or_unchanged():
    def validate(text):
        return [{"path": "x", "message": "bad"}] if "bad" in text else []

    def editor(*rounds):
        seen = []

        def run(path):
            with open(path) as f:
                seen.append(f.read())
            with open(path, "w") as f:
                f.write(rounds[len(seen) - 1](seen[-1]))
            return 0
        return run, seen

    run, seen = editor(lambda t: "a: bad\n", lambda t: t.replace("bad", "good"))
    assert edit_until_valid("a: 1\n", validate, run) == ("a: good\n", "valid after 2 save(s)")
    assert seen[1].startswith(HEADER_MARK) and "# x: bad" in seen[1]
    run, _ = editor(lambda t: "a: bad\n", lambda t: t)  # saved unchanged after the problems: abandoned
    assert edit_until_valid("a: 1\n", validate, run)[0] is None
    run, _ = editor(lambda t: "")
    assert edit_until_valid("a: 1\n", validate, run) == (None, "empty file: edit abandoned")
    run, _ = editor(lambda t: t)
    assert edit_until_valid("a: 1\n", validate, run) == (None, "no changes")
    assert edit_until_valid("a: 1\n", validate, lambda p: 3)[0] is None  # the editor failed


@run_async
async def test_E_opens_the_editor_invalid_save_then_valid_save(tmp_path, monkeypatch):
    state = _editor(tmp_path, monkeypatch)
    agent = FakeAgent()
    app = make_app(agent=agent)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        head = app.store.candidate.head_text
        await pilot.press("E")
        await settle(pilot)
        assert open(state).read().strip() == "2"  # the editor ran twice
        second = open(state + ".round2").read()
        assert second.startswith(HEADER_MARK) and "# rules[0].dport:" in second  # the problem, at the top
        cand = app.store.candidate
        assert cand.dirty and HEADER_MARK not in cand.text()
        removed = [ln for ln in difflib.unified_diff(head.splitlines(), cand.text().splitlines(), lineterm="", n=0)
                   if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]
        assert removed == ["-  - {name: ssh-from-mgmt, from: mgmt, to: self, proto: tcp, dport: 22, action: accept}",
                           "+  - {name: ssh-from-mgmt, from: mgmt, to: self, proto: tcp, dport: 2222, action: accept}"]
        assert len(agent.log()) == 1  # staged only: nothing committed
        # `e` on a screen without its own edit opens it too; an unchanged save changes nothing
        monkeypatch.setenv("EDITOR", "true")
        await pilot.press("e")
        await settle(pilot)
        assert "2222" in cand.text()


@run_async
async def test_read_only_has_no_editor(tmp_path, monkeypatch):
    state = _editor(tmp_path, monkeypatch)
    app = make_app(read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("E")
        await settle(pilot)
        assert not os.path.exists(state) and not app.store.candidate.dirty


def test_a_missing_editor_is_named_and_nothing_changes(monkeypatch):
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", "/nonexistent/talgate-no-such-editor")
    text, what = edit_until_valid("a: 1\n", lambda t: [])
    assert text is None and "talgate-no-such-editor" in what and "$EDITOR" in what
