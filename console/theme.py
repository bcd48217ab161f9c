"""Terminal capabilities: ASCII borders and plain colours on hard terminals (TERM=linux/vt100, NO_COLOR)."""

from __future__ import annotations

import os

HARD_TERMS = ("linux", "vt100", "vt102", "vt220", "dumb", "ansi")


def plain_terminal(env=None) -> bool:
    env = os.environ if env is None else env
    term = env.get("TERM", "")
    return "NO_COLOR" in env or term in HARD_TERMS or term.startswith("vt")


def spark_chars(plain: bool) -> str:
    return " .:-=+*#" if plain else " ▁▂▃▄▅▆▇█"


# Characters a VT100 or the Linux console may not have, and what a plain terminal shows instead.
_ASCII = str.maketrans({"…": "...", "—": "-", "–": "-", "→": "->", "←": "<-", "·": ".", "│": "|", "─": "-",
                        "▼": "v", "▲": "^", "•": "*", "✓": "ok", "✗": "x", "×": "x", "≥": ">=", "≤": "<=",
                        "\u00a0": " "})


def ascii_only(s: str, plain: bool = True) -> str:
    """``s`` in plain characters on a plain terminal (``…`` → ``...``, ``—`` → ``-``, …)."""
    return s.translate(_ASCII) if plain else s


_glyphs = {"plain": False, "patched": False}
# Characters the net below had no plain stand-in for (drawn as "?"): a widget that needs its own plain
# form. assert_plain (console/screenshots.py) fails when a scene added any.
UNMAPPED: set[str] = set()


def use_plain_glyphs(plain: bool) -> None:
    """Widgets draw their states in plain characters on a hard terminal: a checkbox is ``[x]`` or
    ``[ ]`` (not ``▐X▌`` with the state in colour only), a select's arrow ``v``, and a placeholder
    reads ``<like this>`` so it does not pass for a value where dim text is not dim. Textual keeps
    these in class attributes (several apps share them in tests), so the patch follows the last app."""
    _glyphs["plain"] = plain
    if _glyphs["patched"]:
        return
    _glyphs["patched"] = True
    from textual.content import Content
    from textual.widgets import Input
    from textual.widgets._select import SelectCurrent
    from textual.widgets._toggle_button import ToggleButton

    fancy_button = ToggleButton._button

    def _button(self):
        if not _glyphs["plain"]:
            return fancy_button.fget(self)
        return Content.assemble("[", ("x" if self.value else " ", "bold"), "]")

    ToggleButton._button = property(_button)

    fancy_compose = SelectCurrent.compose

    def compose(self):
        for w in fancy_compose(self):
            if _glyphs["plain"] and w.has_class("arrow"):
                w = type(w)("v" if w.has_class("down-arrow") else "^", classes=" ".join(w.classes))
            yield w

    SelectCurrent.compose = compose

    def validate_placeholder(self, value: str) -> str:
        if not _glyphs["plain"] or not value or (value.startswith("<") and value.endswith(">")):
            return value
        if value.startswith("(") and value.endswith(")"):  # a hint in brackets: <hint>, not <(hint)>
            value = value[1:-1]
        return f"<{ascii_only(value)}>"

    Input.validate_placeholder = validate_placeholder

    # The net under all of it: whatever a widget (or Rich's "…" ellipsis) still draws outside ASCII
    # is mapped cell for cell to a plain character before it reaches a hard terminal.
    from rich.cells import cell_len
    from rich.segment import Segment
    from textual._compositor import Compositor
    from textual.strip import Strip

    def one(text: str) -> str:
        text = text.translate(_ONE)
        if text.isascii():
            return text
        UNMAPPED.update(c for c in text if not c.isascii())
        return "".join(c if c.isascii() else "?" * max(1, cell_len(c)) for c in text)

    def plain_strip(strip: Strip) -> Strip:
        segs = list(strip)
        if all(seg.text.isascii() for seg in segs):
            return strip
        return Strip([Segment(one(seg.text), seg.style, seg.control) for seg in segs], strip.cell_length)

    fancy_renders = Compositor._get_renders

    def _get_renders(self, crop=None):
        for region, clip, lines in fancy_renders(self, crop):
            if _glyphs["plain"]:
                lines = [plain_strip(s) for s in lines]
            yield region, clip, lines

    Compositor._get_renders = _get_renders


# One cell for one cell (a rendered line keeps its width).
_ONE = str.maketrans({"…": "~", "—": "-", "–": "-", "→": ">", "←": "<", "·": ".", "│": "|", "─": "-", "┃": "|",
                      "━": "-", "▼": "v", "▲": "^", "▶": ">", "◀": "<", "•": "*", "✓": "+", "✗": "x", "×": "x",
                      "█": "#", "▌": "|", "▐": "|", "▀": "-", "▄": "_", "▁": "_", "▔": "-", "▏": "|", "▕": "|",
                      "╭": "+", "╮": "+", "╰": "+", "╯": "+", "┌": "+", "┐": "+", "└": "+", "┘": "+",
                      "├": "+", "┤": "+", "┬": "+", "┴": "+", "┼": "+", "\u00a0": " "})


BASE_CSS = """
Screen { layout: vertical; }
StatusLine { height: 1; background: $panel; color: $text; }
Banner { height: auto; max-height: 3; display: none; text-style: bold; }
Banner.-shown { display: block; }
Banner.-warn { background: $warning; color: $background; }
Banner.-error { background: $error; color: $background; }
Banner.-ro { background: $secondary; color: $background; }
LiveTable { height: 1fr; }
ContentSwitcher { height: 1fr; }
.title { height: 1; text-style: bold; color: $accent; }
.hint { color: $text-muted; height: 1; }
.pane { border: round $primary; height: 1fr; padding: 0 1; }
.pane:focus-within { border: round $accent; }
#prompt { height: 1; border: none; padding: 0; display: none; }
#prompt.-shown { display: block; }
#filterbar { height: 1; display: none; background: $boost; }
#filterbar.-shown { display: block; }
ModalScreen { align: center middle; }
.dialog { width: 76; max-width: 100%; height: auto; max-height: 100%; border: round $accent;
          background: $surface; padding: 0 1; }
.dialog Input { height: 1; border: none; padding: 0; margin: 0; background: $boost; }
.dialog Input:focus { background: $primary 40%; }
.dialog .field { height: 1; }
.dialog .label { width: 12; }
.dialog .error { color: $error; height: auto; padding-left: 12; display: none; }
.dialog .error.wide { padding-left: 1; }
.dialog .title { height: auto; }
.dialog .buttons { height: auto; color: $text-muted; dock: bottom; }
.scrollbox { height: 1fr; }
"""

PLAIN_CSS = """
.pane { border: ascii $primary; }
.pane:focus-within { border: ascii $accent; }
.dialog { border: ascii $accent; }
Input { border: none; }
Input > .input--placeholder { text-style: none; }
.dialog Input { text-style: underline; }
Input:focus { text-style: reverse; }
Checkbox:focus, Checkbox.-textual-compact:focus { text-style: reverse; }
Checkbox:focus > .toggle--label, Checkbox.-textual-compact:focus > .toggle--label {
    color: ansi_default; background: ansi_default; text-style: none; }
Select:focus > SelectCurrent { text-style: reverse; }
LiveTable > .datatable--cursor { text-style: reverse bold; }
LiveTable > .datatable--header { text-style: bold underline; }
"""


def css(plain: bool) -> str:
    return BASE_CSS + (PLAIN_CSS if plain else "")
