"""Write every console screen and dialog as SVG (80x24, 120x40, 60x20, 200x50, TERM=linux and vt100)
from the fake agent's fixed state.

    python -m console.screenshots [OUTDIR [NAME...]]      (default: screenshots/, every picture)

The snapshot tests (tests/console/test_snapshots.py, test_dialog_snapshots.py) drive the same scenes, so the committed SVGs
show exactly what the tests pin.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

SCREENS = ["dashboard", "interfaces", "firewall", "nat", "traffic", "changes", "leases", "events", "routes"]
SIZES = [(80, 24), (120, 40), (60, 20), (200, 50)]
TERMS = ["linux", "vt100"]  # hard terminals: plain characters only (drawn at 80x24)
SCREEN_KW = {"leases": {"dhcp": True}, "events": {"events": True}}  # fake agent state a screen shows
STAGED_RULE = {"name": "block-guest-http", "from": "guest", "to": "wan", "proto": "tcp", "dport": 80, "action": "drop"}
# dialog name → (screen, keys that open it)
DIALOGS = {
    "commit": ("changes", ("c",)),
    "trace": ("firewall", ("t",)),
    "rule-form": ("firewall", ("a",)),
    "interface-form": ("interfaces", ("e",)),
    "interface-detail": ("interfaces", ("enter",)),
    "event-detail": ("events", ("enter",)),
    "help": ("firewall", ("question_mark",)),
}


def screen_text(app) -> str:
    """The current screen as plain text, exactly the characters a terminal would be sent."""
    import io

    from rich.console import Console

    w, h = app.size
    console = Console(width=w, height=h, file=io.StringIO(), force_terminal=True, color_system=None, record=True,
                      legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


def assert_plain(app) -> None:
    """On a hard terminal every character drawn is ASCII (no ▼, ▐X▌, box lines or …), and none of it is a
    "?" the compositor's last-resort net put in for a glyph it has no plain stand-in for."""
    from .theme import UNMAPPED

    UNMAPPED.clear()
    text = screen_text(app)
    bad = sorted({c for c in text if not (c == "\n" or " " <= c <= "~")} | UNMAPPED)
    assert not bad, f"non-ASCII on a plain terminal: {bad!r}\n{text}"


def make_app(read_only: bool = False, plain: bool = False, agent=None, term: str | None = None,
             saved_candidate: bool = False, **fake_kw):
    from .app import TalgateApp
    from .dialog_scenes import prepare
    from .fake import FakeAgent, fixed_clock
    from .theme import plain_terminal

    if term:
        plain = plain_terminal({"TERM": term})
    agent = agent or FakeAgent(read_only=read_only, **fake_kw)
    # poll slowly: the first poll fills the screen, later ones would only repeat the fixed state.
    app = TalgateApp(agent.console_client, read_only=read_only, poll_interval=3600, plain=plain)
    app.store.clock = fixed_clock  # countdowns (leases, commit-confirm) do not move
    prepare(app, agent, saved_candidate=saved_candidate)
    return app


async def settle(pilot) -> None:
    """Wait until the first poll landed and every worker finished."""
    await pilot.app.first_data.wait()
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def scene(view: str = "", staged: bool = False, keys: tuple[str, ...] = (), fields: dict | None = None,
          plain_check: bool = False, dialog: str = ""):
    """A run_before for snap_compare / take_svg_screenshot: go to ``view``, optionally stage a rule, press keys;
    or open ``dialog`` (a scene of console/dialog_scenes.py)."""

    async def run_before(pilot) -> None:
        await settle(pilot)
        if dialog:
            from .dialog_scenes import DIALOG_SCENES

            await DIALOG_SCENES[dialog][1](pilot)
            await settle(pilot)
            if plain_check:
                assert_plain(pilot.app)
            return
        if staged:
            pilot.app.store.candidate.put("rules", None, dict(STAGED_RULE))
        if pilot.app.current_mode != view:
            await pilot.app.switch_mode(view)
        await settle(pilot)
        if keys:
            await pilot.press(*keys)
            await settle(pilot)
        if fields:
            for key, val in fields.items():
                pilot.app.screen.query_one(f"#f-{key}").value = val
            await pilot.pause()
            await pilot.press("ctrl+s")
            await settle(pilot)
        if plain_check:
            assert_plain(pilot.app)

    return run_before


def jobs() -> list[tuple[str, dict, dict, tuple[int, int]]]:
    """(name, app kwargs, scene kwargs, size) of every picture: each screen at each size and on each
    hard terminal, each dialog likewise, and the special scenes in EXTRAS."""
    out = []
    for v in SCREENS:
        kw = SCREEN_KW.get(v, {})
        for w, h in SIZES:
            out.append((f"{v}-{w}x{h}", kw, {"view": v, "staged": v == "changes"}, (w, h)))
        for term in TERMS:
            out.append((f"{v}-{term}", {**kw, "term": term}, {"view": v, "staged": v == "changes",
                                                               "plain_check": True}, (80, 24)))
    for d, (v, keys) in DIALOGS.items():
        kw = SCREEN_KW.get(v, {})
        for w, h in SIZES:
            out.append((f"dialog-{d}-{w}x{h}", kw, {"view": v, "staged": True, "keys": keys}, (w, h)))
        for term in TERMS:
            out.append((f"dialog-{d}-{term}", {**kw, "term": term},
                        {"view": v, "staged": True, "keys": keys, "plain_check": True}, (80, 24)))
    out += [(name, *spec) for name, spec in EXTRAS.items()]
    return out


def dialog_jobs() -> list[tuple[str, dict, dict, tuple[int, int]]]:
    """Every dialog of console/dialog_scenes.py at each size and on each hard terminal."""
    from .dialog_scenes import DIALOG_SCENES

    out = []
    for d, (app_kw, _steps) in DIALOG_SCENES.items():
        for w, h in SIZES:
            out.append((f"dialog-{d}-{w}x{h}", app_kw, {"dialog": d}, (w, h)))
        for term in TERMS:
            out.append((f"dialog-{d}-{term}", {**app_kw, "term": term}, {"dialog": d, "plain_check": True}, (80, 24)))
    return out


# name → (app kwargs, scene kwargs, size)
EXTRAS = {
    "history": ({}, {"view": "changes", "keys": ("h",)}, (80, 24)),
    "rule-form-problem": ({}, {"view": "firewall", "keys": ("a",),
                               "fields": {"name": "web-out", "from": "guest", "to": "wan", "dport": "99999"}},
                          (80, 24)),
    "read-only-firewall": ({"read_only": True}, {"view": "firewall"}, (80, 24)),
    "confirm-pending-dashboard": ({"confirm_pending": True, "drift": True}, {"view": "dashboard"}, (80, 24)),
}
TRACE = {"iif": "wan0", "src": "203.0.113.10", "dst": "198.51.100.2", "dport": "8443"}
EXTRAS["trace-result"] = ({}, {"view": "firewall", "keys": ("t",), "fields": TRACE}, (80, 24))


def main(argv: list[str] | None = None) -> int:
    from textual._doc import take_svg_screenshot

    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    os.environ["TZ"] = "UTC"
    time.tzset()
    only = set(argv[1:])  # names to write (default: all)
    for name, app_kw, scene_kw, size in jobs() + dialog_jobs():
        if only and name not in only:
            continue
        svg = take_svg_screenshot(app=make_app(**app_kw), terminal_size=size, run_before=scene(**scene_kw))
        (out / f"{name}.svg").write_text(svg)
        print(f"wrote {out / name}.svg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
