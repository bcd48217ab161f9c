"""Write every console screen as SVG (80×24 and 120×40) from the fake agent's fixed state.

    python -m console.screenshots [OUTDIR]      (default: screenshots/)

The snapshot tests (tests/console/test_snapshots.py) drive the same scenes, so the committed SVGs
show exactly what the tests pin.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

SCREENS = ["dashboard", "interfaces", "firewall", "nat", "traffic", "changes"]
SIZES = [(80, 24), (120, 40)]
STAGED_RULE = {"name": "block-guest-http", "from": "guest", "to": "wan", "proto": "tcp", "dport": 80, "action": "drop"}


def make_app(read_only: bool = False, plain: bool = False, agent=None, **fake_kw):
    from .app import TalgateApp
    from .fake import FakeAgent, fixed_clock

    agent = agent or FakeAgent(read_only=read_only, **fake_kw)
    # poll slowly: the first poll fills the screen, later ones would only repeat the fixed state.
    app = TalgateApp(agent.console_client, read_only=read_only, poll_interval=3600, plain=plain)
    app.store.clock = fixed_clock  # countdowns (leases, commit-confirm) do not move
    return app


async def settle(pilot) -> None:
    """Wait until the first poll landed and every worker finished."""
    await pilot.app.first_data.wait()
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def scene(view: str, staged: bool = False, keys: tuple[str, ...] = (), fields: dict | None = None):
    """A run_before for snap_compare / take_svg_screenshot: go to ``view``, optionally stage a rule, press keys."""

    async def run_before(pilot) -> None:
        await settle(pilot)
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

    return run_before


# name → (app kwargs, scene kwargs, size)
EXTRAS = {
    "history": ({}, {"view": "changes", "keys": ("h",)}, (80, 24)),
    "rule-form-problem": ({}, {"view": "firewall", "keys": ("a",),
                               "fields": {"name": "web-out", "from": "guest", "to": "wan", "dport": "99999"}},
                          (80, 24)),
    "read-only-firewall": ({"read_only": True}, {"view": "firewall"}, (80, 24)),
    "plain-terminal-dashboard": ({"plain": True}, {"view": "dashboard"}, (80, 24)),
    "help": ({}, {"view": "firewall", "keys": ("question_mark",)}, (80, 24)),
    "confirm-pending-dashboard": ({"confirm_pending": True, "drift": True}, {"view": "dashboard"}, (80, 24)),
}
# issue 4/5: the leases screen and the packet tracer dialog at both sizes
TRACE = {"iif": "wan0", "src": "203.0.113.10", "dst": "198.51.100.2", "dport": "8443"}
for _w, _h in SIZES:
    EXTRAS[f"leases-{_w}x{_h}"] = ({"dhcp": True}, {"view": "leases"}, (_w, _h))
    EXTRAS[f"trace-{_w}x{_h}"] = ({}, {"view": "firewall", "keys": ("t",), "fields": TRACE}, (_w, _h))



def main(argv: list[str] | None = None) -> int:
    from textual._doc import take_svg_screenshot

    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    os.environ["TZ"] = "UTC"
    time.tzset()
    jobs = [(f"{v}-{w}x{h}", {}, {"view": v, "staged": v == "changes"}, (w, h)) for v in SCREENS for w, h in SIZES]
    jobs += [(name, *spec) for name, spec in EXTRAS.items()]
    for name, app_kw, scene_kw, size in jobs:
        svg = take_svg_screenshot(app=make_app(**app_kw), terminal_size=size, run_before=scene(**scene_kw))
        (out / f"{name}.svg").write_text(svg)
        print(f"wrote {out / name}.svg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
