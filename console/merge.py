"""A small 3-way line merge (diff3 style) for rebasing the staged candidate onto a HEAD that moved.

base = the text the candidate was staged on, ours = the candidate, theirs = the new HEAD. Changes of
one side only are taken; the same change on both sides is taken once; changes of both sides that
overlap or touch (adjacent lines, as git counts them) are conflicts, reported with the three versions
of the region so the user sees exactly where the edits collide. Nothing here guesses a resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher


@dataclass
class Conflict:
    start: int  # 0-based line in base
    base: list[str]
    ours: list[str]
    theirs: list[str]


def _changes(a: list[str], b: list[str]) -> list[tuple[int, int, list[str]]]:
    """Regions of ``a`` replaced in ``b``: [(i1, i2, new lines)] (i1 == i2: an insertion before line i1)."""
    sm = SequenceMatcher(None, a, b, autojunk=False)
    return [(i1, i2, b[j1:j2]) for tag, i1, i2, j1, j2 in sm.get_opcodes() if tag != "equal"]


def _apply(a: list[str], lo: int, hi: int, changes: list[tuple[int, int, list[str]]]) -> list[str]:
    """``a[lo:hi]`` with ``changes`` (all inside it, in order) applied."""
    out, pos = [], lo
    for i1, i2, new in changes:
        out += a[pos:i1] + new
        pos = i2
    return out + a[pos:hi]


def merge3(base: str, ours: str, theirs: str) -> tuple[str | None, list[Conflict]]:
    """(merged text, []) when the edits do not overlap, else (None, conflicts)."""
    a = base.splitlines(keepends=True)
    o = ours.splitlines(keepends=True)
    t = theirs.splitlines(keepends=True)
    tagged = sorted([(i1, i2, new, 0) for i1, i2, new in _changes(a, o)] +
                    [(i1, i2, new, 1) for i1, i2, new in _changes(a, t)], key=lambda c: (c[0], c[1], c[3]))
    out: list[str] = []
    conflicts: list[Conflict] = []
    pos, k = 0, 0
    while k < len(tagged):
        lo, hi = tagged[k][0], tagged[k][1]
        group = [tagged[k]]
        k += 1
        # grow the cluster while the next change overlaps or touches it
        while k < len(tagged) and tagged[k][0] <= hi:
            hi = max(hi, tagged[k][1])
            group.append(tagged[k])
            k += 1
        out += a[pos:lo]
        pos = hi
        mine = [(i1, i2, new) for i1, i2, new, side in group if side == 0]
        yours = [(i1, i2, new) for i1, i2, new, side in group if side == 1]
        if not yours:
            out += _apply(a, lo, hi, mine)
        elif not mine:
            out += _apply(a, lo, hi, yours)
        else:
            ours_part, theirs_part = _apply(a, lo, hi, mine), _apply(a, lo, hi, yours)
            if ours_part == theirs_part:
                out += ours_part
            else:
                conflicts.append(Conflict(lo, a[lo:hi], ours_part, theirs_part))
    out += a[pos:]
    if conflicts:
        return None, conflicts
    return "".join(out), []
