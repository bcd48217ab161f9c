"""The console against the real lab: block guest → internet tcp/80 from the firewall screen, commit it,
see traffic really blocked and the rule's counter rise, roll it back from history, traffic flows again.

One lab for the whole module (own namespace prefix and state folder, so it runs beside other labs).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time

import pytest

from backend.client import AgentClient
from backend.lab.lab import Lab
from console.app import TalgateApp
from console.dialogs import TraceScreen
from console.widgets import LiveTable

from .conftest import run_async

ISP = "203.0.113.10"


def _why_no_lab() -> str | None:
    if os.geteuid() != 0:
        return "the lab pilot test needs root (network namespaces)"
    for tool in ("ip", "nft"):
        if not shutil.which(tool):
            return f"the lab pilot test needs {tool!r} (make install installs it)"
    if subprocess.run(["ip", "netns", "list"], capture_output=True).returncode != 0:
        return "the lab pilot test needs `ip netns`"
    return None


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    reason = _why_no_lab()
    if reason:
        pytest.skip(reason)
    lab = Lab(prefix=f"tg-c{secrets.token_hex(2)}-", state=tmp_path_factory.mktemp("lab") / "state")
    try:
        lab.up()
        yield lab
    finally:
        lab.down()


def probe(lab: Lab, port: int = 80) -> bool:
    r = lab.run("guest", [sys.executable, "-m", "backend.lab.whoami", "--probe", ISP, str(port), "1"], timeout=15)
    return r.returncode == 0


async def wait_for(pilot, pred, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.1)


def hits(app, name: str) -> int:
    return app.store.counter("rule", name).get("packets", 0)


@run_async
async def _drive(lab: Lab) -> None:
    client = AgentClient(lab.socket, timeout=5)
    app = TalgateApp(client, poll_interval=0.3, write_client=AgentClient(lab.socket, timeout=60))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, app.first_data.is_set, what="first poll")
        head0 = app.store.status["head"]
        await pilot.press("3")
        await wait_for(pilot, lambda: app.screen.NAME == "firewall", what="firewall screen")
        await pilot.press("a")
        await wait_for(pilot, lambda: app.screen.query("#f-name"), what="rule form")
        for key, val in [("name", "block-guest-http"), ("from", "guest"), ("to", "wan"), ("proto", "tcp"),
                         ("dport", "80"), ("action", "drop")]:
            app.screen.query_one(f"#f-{key}").value = val
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.store.candidate.dirty, what="the rule to be staged")
        assert probe(lab), "staged only: traffic must still flow"

        await pilot.press("6")
        await wait_for(pilot, lambda: app.screen.NAME == "changes", what="changes screen")
        await pilot.press("c")
        await wait_for(pilot, lambda: app.screen.query("#f-answer"), what="commit prompt")
        await pilot.press(*"block guest web", "enter")
        await wait_for(pilot, lambda: (app.store.status or {}).get("head") not in (None, head0)
                       and not app.store.candidate.dirty, what="the commit")
        assert app.store.status["applied"] == app.store.status["head"]
        assert not probe(lab), "guest → internet tcp/80 must be blocked after the commit"

        await pilot.press("3")
        await wait_for(pilot, lambda: hits(app, "block-guest-http") > 0, what="the rule's counter to rise")
        table = app.screen.query_one("#rules", LiveTable)
        row = table.get_row(str(len(app.store.candidate.rules) - 1))
        assert row[1].plain == "block-guest-http"
        assert row[-1] not in ("-", "0")

        # the packet tracer asks the real agent: the committed rule decides
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, TraceScreen), what="trace dialog")
        for key, val in [("iif", "guest0"), ("src", "192.168.20.10"), ("dst", ISP), ("dport", "80")]:
            app.screen.query_one(f"#f-{key}").value = val
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen.result is not None, what="trace result")
        assert app.screen.result["verdict"] == "drop" and app.screen.result["rule"] == "rule block-guest-http"
        await pilot.press("escape")

        # the leases screen reads GET /v1/leases without error
        await pilot.press("7")
        await wait_for(pilot, lambda: app.screen.NAME == "leases" and app.store.polls > 0, what="leases screen")
        await wait_for(pilot, lambda: "leases" in str(app.screen.query_one("#summary").render()), what="leases")
        assert not app.store.error, app.store.error

        await pilot.press("6", "h")
        await wait_for(pilot, lambda: len(app.store.log) >= 2, what="history")
        hist = app.screen.query_one("#history", LiveTable)
        hist.select_key(head0)
        await pilot.press("R")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ChoiceScreen", what="rollback confirmation")
        assert "block guest web" not in str(app.screen.message).split("\n")[0]  # the target, not HEAD
        assert "block-guest-http" in str(app.screen.message)  # the diff it applies: the rule goes
        await pilot.press("y")
        await wait_for(pilot, lambda: len(app.store.log) >= 3 and "rollback" in app.store.log[0]["message"],
                       what="the rollback commit")
        await wait_for(pilot, lambda: app.store.status["applied"] == app.store.status["head"], what="apply")
        assert probe(lab), "traffic must flow again after the rollback"

        # commit-confirm: a commit with a confirm time shows the countdown; C keeps it
        await wait_for(pilot, lambda: not app.store.candidate.dirty and not app.store.head_moved, what="reload")
        app.store.candidate.put("rules", None, {"name": "block-guest-8080", "from": "guest", "to": "wan",
                                                "proto": "tcp", "dport": 8080, "action": "drop"})
        await pilot.press("s", "c")
        await wait_for(pilot, lambda: app.screen.query("#f-confirm"), what="commit dialog")
        app.screen.query_one("#f-answer").value = "try 8080 block"
        app.screen.query_one("#f-confirm").value = "300"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.store.confirm_pending is not None, what="the pending confirm")
        assert app.store.confirm_pending["seconds"] == 300 and 0 < app.store.confirm_countdown() <= 300
        assert "CONFIRM in" in str(app.screen.query_one("#statusline").render())
        await pilot.press("C")
        await wait_for(pilot, lambda: app.store.confirm_pending is None, what="the confirm")
        assert "8080" in AgentClient(lab.socket).config().text


def test_console_blocks_and_rolls_back_on_the_lab(lab):
    assert probe(lab), "guest → internet tcp/80 must flow before the change"
    _drive(lab)
