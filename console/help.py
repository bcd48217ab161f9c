"""`?`: a short, grouped help for the current screen that fits 80×24 (two columns: 28 + 44).

The screen's own keys come from its bindings (so new keys show up by themselves, only the ones the
screen declares, once each); lists, moving around and the global keys are a fixed, curated text.
"""

from __future__ import annotations

from rich.text import Text

from .screens.base import MUTATING

PURPOSE = {
    "dashboard": "the box at a glance: HEAD, commit-confirm, WAN, traffic, problems",
    "interfaces": "links, addresses and counters; edits are staged in the candidate",
    "firewall": "rules (with hit counters), policies and zones; edits are staged",
    "nat": "masquerade and port forwards; edits are staged",
    "traffic": "rates per interface and the top talkers",
    "changes": "the staged candidate against HEAD, commit, history and rollback",
    "leases": "DHCP leases; reserve an address for a client",
    "events": "the agent's audit log, live: commits, confirms, rollbacks, repairs, refusals",
    "routes": "routing tables: connected, static, BGP and OSPF routes",
}

LISTS = [("j k  up down", "move a row"), ("g G  home end", "first / last row"), ("pgup pgdn", "a page"),
         ("/", "filter rows (esc clears)"), ("enter", "open the row")]
GLOBAL = [("1 .. 9", "the screens, as in the footer"), (":name", "go to a screen: :if :fw :nat"),
          (":trace", "the packet tracer"), ("C  :confirm", "keep a pending commit"),
          ("esc", "close a dialog / the prompt"), ("ctrl+l", "redraw the terminal"),
          ("q  ctrl+c", "quit (asks if work is staged)")]
LEFT, RIGHT = 28, 44  # 72 columns: the help dialog's inside at 80×24; narrower: one column


def _entries(screen, app) -> list[tuple[str, str]]:
    """The screen's own keys; those not available right now (nothing staged, read-only …) in brackets."""
    from textual.actions import parse

    out, seen = [], set()
    for bindings in screen._bindings.key_to_bindings.values():  # noqa: SLF001 - every key, not only the enabled
        for b in bindings:
            if not b.show or not b.description or b.action in seen:
                continue
            seen.add(b.action)
            _, name, params = parse(b.action)
            enabled = screen.check_action(name, params)
            if enabled is False and screen.read_only and name in MUTATING:
                continue  # read-only: these keys do not exist at all
            out.append((b.key_display or b.key.split(",")[0], b.description if enabled else f"({b.description})"))
    return out


def _column(title: str, items: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    return [("title", title, ""), *[("item", k, d) for k, d in items]]


def _render(rows: list[tuple[str, str, str]], key_width: int, width: int) -> list[Text]:
    out = []
    for kind, a, b in rows:
        t = Text(no_wrap=True, overflow="ellipsis")
        if kind == "title":
            t.append(a, style="bold underline")
        elif kind == "item":
            t.append(f" {a:<{key_width}}", style="bold")
            t.append(f" {b}")
        t.truncate(width - 1)
        t.pad_right(width - t.cell_len)
        out.append(t)
    return out


def help_text(app, screen, width: int = LEFT + RIGHT) -> Text:
    """The help for ``screen``, ``width`` cells wide: two columns from 72 cells, one column below
    (60×20: nothing is cut or wrapped; the dialog scrolls)."""
    name = getattr(screen, "NAME", "this screen")
    mine = _entries(screen, app)
    left = _column(f"{name} keys", mine or [("-", "none: this screen is a view")])
    right = _column("lists", LISTS) + [("blank", "", "")] + _column("anywhere", GLOBAL)
    two = width >= LEFT + RIGHT
    lw = _render(left, 6, LEFT if two else min(width, RIGHT))
    rw = _render(right[: len(LISTS) + 1], 13, min(width, RIGHT)) + _render(right[len(LISTS) + 1:], 11, min(width, RIGHT))
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append(PURPOSE.get(name, "") + "\n", style="italic")  # prose: wraps where the dialog is narrow
    if any(d.startswith("(") for _, d in mine):
        t.append("(in brackets: not available right now)\n", style="dim")
    if not two:
        for line in [*lw, Text(""), *rw]:
            t.append_text(line)
            t.append("\n")
        t.rstrip()
        return t
    blank = Text(" " * LEFT)
    for i in range(max(len(lw), len(rw))):
        t.append_text(lw[i] if i < len(lw) else blank)
        t.append_text(rw[i] if i < len(rw) else Text(""))
        t.append("\n")
    t.rstrip()
    return t
