"""Snapshots of every dialog (console/dialog_scenes.py) at 80x24, 120x40, 60x20 and 200x50 and under
TERM=linux and TERM=vt100, where the scene also asserts that every character drawn is plain ASCII.

The screens' own snapshots are in test_snapshots.py; `make screenshots` writes both sets. Update after an
intended change with ``pytest tests/console/test_dialog_snapshots.py --snapshot-update`` and look at the SVGs.
A last test reads every committed hard-terminal snapshot (screens and dialogs) and fails on any character
outside ASCII.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from console.screenshots import TERMS, dialog_jobs, make_app, scene

JOBS = {name: spec for name, *spec in dialog_jobs()}
SNAPSHOTS = Path(__file__).parent / "__snapshots__"
_TEXT = re.compile(r"<text\b[^>]*>(.*?)</text>", re.S)


@pytest.mark.parametrize("name", list(JOBS))
def test_dialog(snap_compare, name):
    app_kw, scene_kw, size = JOBS[name]
    assert snap_compare(make_app(**app_kw), terminal_size=size, run_before=scene(**scene_kw))


def drawn_text(svg: str) -> str:
    """The characters a snapshot SVG draws (Rich writes spaces as &#160;); its title bar is not drawn text."""
    out = []
    for m in _TEXT.finditer(svg):
        if 'class="terminal-title"' in svg[m.start():m.start() + 60]:
            continue
        out.append(html.unescape(m.group(1)).replace("\u00a0", " ").replace("\n", ""))
    return "".join(out)


def non_ascii(svg: str) -> set[str]:
    return {c for c in drawn_text(svg) if not " " <= c <= "~"}


def test_the_ascii_check_sees_what_a_fancy_terminal_draws():
    """The check below can fail: a colour-terminal snapshot has box lines and a checkbox's half blocks."""
    fancy = (SNAPSHOTS / "test_dialog_snapshots" / "test_dialog[dialog-commit-refused-80x24].svg").read_text()
    assert {"│", "╭", "▌", "▐"} <= non_ascii(fancy)
    assert non_ascii('<text class="terminal-r1" x="0" y="20">&#160;a&#160;&#8230;b</text>') == {"…"}


def test_every_hard_terminal_snapshot_is_plain_ascii():
    plain = [p for p in SNAPSHOTS.glob("*/*.svg") if any(p.name.endswith(f"-{t}].svg") for t in TERMS)]
    assert len(plain) >= 2 * (8 + len({n.rsplit("-", 1)[0] for n in JOBS})), "hard-terminal snapshots are missing"
    bad = {p.name: sorted(non_ascii(p.read_text())) for p in plain}
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"non-ASCII characters in hard-terminal snapshots: {bad}"
