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
.dialog .buttons { height: 1; color: $text-muted; }
.scrollbox { height: 1fr; }
"""

PLAIN_CSS = """
.pane { border: ascii $primary; }
.pane:focus-within { border: ascii $accent; }
.dialog { border: ascii $accent; }
Input { border: none; }
"""


def css(plain: bool) -> str:
    return BASE_CSS + (PLAIN_CSS if plain else "")
