"""`e`/`E`: the candidate router.yaml in $EDITOR, like `kubectl edit`.

The app suspends, the editor runs on a temporary copy of the candidate's text; on save the agent
validates it. When it is invalid the problems go to the top of the file as ``# path: message``
comments and the editor opens again, until the text is valid (it becomes the candidate) or the edit
is abandoned: an empty file, or a file saved unchanged.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from collections.abc import Callable

MAX_BYTES = 8 * 1024 * 1024  # what is read back from the editor's file
HEADER_MARK = "# talgate edit:"


def editor_command() -> list[str]:
    """$VISUAL, then $EDITOR, then vi (split like a shell would, so "code --wait" works)."""
    cmd = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    try:
        argv = shlex.split(cmd)
    except ValueError:
        argv = [cmd]
    return argv or ["vi"]


def run_editor(path: str) -> int:
    return subprocess.call([*editor_command(), path])


def problems_header(problems: list[dict]) -> str:
    lines = [f"{HEADER_MARK} not valid, {len(problems)} problem(s); fix them, or empty the file or save it"
             " unchanged to abandon"]
    for p in problems:
        msg = " ".join(str(p.get("message", "")).split())
        lines.append(f"# {p.get('path') or '-'}: {msg}")
    return "\n".join(lines) + "\n#\n"


def strip_header(text: str, header: str) -> str:
    """The text without the problems we put on top (the header lines, where they are still at the top)."""
    if header and text.startswith(header):
        return text[len(header):]
    lines = text.splitlines(keepends=True)
    if header and lines and lines[0].startswith(HEADER_MARK):  # our block, touched: through its closing "#"
        limit = len(header.splitlines())
        for i, ln in enumerate(lines[:limit]):
            if ln.rstrip("\n") == "#":
                return "".join(lines[i + 1:])
    ours = set(header.splitlines())
    n = 0
    while n < len(lines) and lines[n].rstrip("\n") in ours:
        n += 1
    return "".join(lines[n:])


def _problems(validate: Callable[[str], list[dict]], text: str) -> list[dict]:
    try:
        found = validate(text)
    except Exception as e:  # noqa: BLE001 - the agent's answer goes into the file, the user decides
        return [{"path": "agent", "message": str(e) or type(e).__name__}]
    return [p for p in found if p.get("severity", "error") == "error"]


def edit_until_valid(text: str, validate: Callable[[str], list[dict]],
                     run: Callable[[str], int] = run_editor) -> tuple[str | None, str]:
    """Run the editor on ``text`` until it is valid or abandoned. Returns (the new text or None, what happened)."""
    shown, header, rounds = text, "", 0
    with tempfile.TemporaryDirectory(prefix="talgate-edit-") as d:
        path = os.path.join(d, "router.yaml")
        while True:
            with open(path, "w", encoding="utf-8") as f:
                f.write(header + shown)
            try:
                rc = run(path)
            except OSError as e:  # no such editor (a container without vi): say what to set
                return None, f"cannot run the editor {' '.join(editor_command())!r}: {e.strerror or e}; set $EDITOR"
            if rc != 0:
                return None, f"the editor exited with status {rc}: nothing changed"
            with open(path, "rb") as f:
                raw = f.read(MAX_BYTES + 1)
            if len(raw) > MAX_BYTES:
                return None, f"the file is larger than {MAX_BYTES} bytes: nothing changed"
            body = strip_header(raw.decode("utf-8", errors="replace"), header)
            rounds += 1
            if not body.strip():
                return None, "empty file: edit abandoned"
            if body == shown:
                return None, ("saved unchanged: edit abandoned" if header else "no changes")
            problems = _problems(validate, body)
            if not problems:
                return body, f"valid after {rounds} save(s)"
            header, shown = problems_header(problems), body


def edit_in_editor(app) -> None:
    """From the app: suspend it, run the loop, and make a valid result the candidate."""
    from textual.app import SuspendNotSupported

    store = app.store
    if store.read_only:
        app.notify("read-only: editing is disabled", severity="error")
        return
    cand, client = store.candidate, store.client

    def validate(text: str) -> list[dict]:
        return [p.model_dump() for p in client.validate(text).problems]

    def loop():
        return edit_until_valid(cand.text(), validate)

    try:
        with app.suspend():
            new, what = loop()
    except SuspendNotSupported:  # headless (tests) or a web terminal: the editor runs without the screen
        new, what = loop()
    app.refresh(layout=True, repaint=True)
    if new is None:
        severity = "error" if what.startswith("cannot") else "warning" if "abandon" in what or "status" in what \
            else "information"
        app.notify(f"$EDITOR: {what}", severity=severity, timeout=8)
        return
    cand.set_text(new)
    view = app.screen if hasattr(app.screen, "refresh_view") else None
    if view is not None:
        view.update_frame()
        view.refresh_view({"edit", "config"})
    app.notify(f"$EDITOR: the candidate is your text ({what}); 6 to review and commit")
