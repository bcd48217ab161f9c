"""The console edits a policy, a route and a DHCP pool on the real lab, and the candidate in $EDITOR
(a scripted editor: one invalid save, then a valid one); real traffic and a real DHCP client prove each
commit, and the committed text changes only the edited lines (issue 13).

One lab for the module (own namespace prefix and state folder, so it runs beside other labs).
"""

from __future__ import annotations

import difflib
import os
import secrets
import shutil
import signal
import stat
import time

import pytest

from backend.client import AgentClient
from backend.lab.lab import Lab, example_config
from console.app import TalgateApp
from console.forms import FormScreen
from console.screens.sections import SectionScreen

from .conftest import run_async
from .test_lab_console import ISP, _why_no_lab, probe, wait_for

DHCP = """
dhcp:
  lan0:
    ipv4: {pools: [192.168.10.100-192.168.10.199], lease_time: 600}
"""
SCRIPT = r"""#!/bin/sh
f="$1"; state="$EDIT_STATE"
n=$(cat "$state" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$state"
cp "$f" "$state.round$n"
if [ "$n" = 1 ]; then
  sed -i 's/{from: guest, to: wan, action: drop}/{from: guest, to: wan, action: bogus}/' "$f"
else
  sed -i 's/{from: guest, to: wan, action: bogus}/{from: guest, to: wan, action: accept}/' "$f"
fi
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    reason = _why_no_lab()
    if reason:
        pytest.skip(reason)
    kea = shutil.which("kea-dhcp4") or os.path.exists("/usr/sbin/kea-dhcp4")
    text = example_config() + (DHCP if kea else "")
    lab = Lab(prefix=f"tg-e{secrets.token_hex(2)}-", state=tmp_path_factory.mktemp("lab") / "state")
    try:
        lab.up(text)
        lab.text0, lab.kea = text, kea
        yield lab
    finally:
        lab.down()


def dhclient(lab: Lab, work) -> str:
    """dhclient once on lan's eth0; the address it was given (from its lease file)."""
    lf, pf, cf = work / "dh.leases", work / "dh.pid", work / "dh.conf"
    cf.write_text('send host-name "laptop";\n')
    r = lab.run("lan", ["dhclient", "-4", "-1", "-v", "-cf", str(cf), "-lf", str(lf), "-pf", str(pf), "-sf",
                        "/bin/true", "eth0"], timeout=60)
    try:
        os.kill(int(pf.read_text()), signal.SIGTERM)
    except (OSError, ValueError):
        pass
    assert r.returncode == 0, r.stderr[-2000:]
    return [ln.split()[1].rstrip(";") for ln in lf.read_text().splitlines() if ln.strip().startswith("fixed-address")][-1]


async def commit(pilot, app, message: str) -> None:
    head = app.store.status["head"]
    while len(app.screen_stack) > 1:
        await pilot.press("escape")
        await pilot.pause(0.1)
    await pilot.press("6")
    await wait_for(pilot, lambda: app.screen.NAME == "changes", what="changes screen")
    await pilot.press("s", "c")
    await wait_for(pilot, lambda: app.screen.query("#f-answer"), what="commit dialog")
    app.screen.query_one("#f-answer").value = message
    await pilot.press("ctrl+s")
    await wait_for(pilot, lambda: app.store.status["head"] != head and not app.store.candidate.dirty
                   and app.store.status["applied"] == app.store.status["head"], timeout=60, what=f"commit {message!r}")


async def fill(pilot, app, values: dict) -> None:
    await wait_for(pilot, lambda: isinstance(app.screen, FormScreen) and app.screen.is_mounted
                   and all(app.screen.query(f"#f-{k}") for k in values), what="a form")
    for k, v in values.items():
        app.screen.query_one(f"#f-{k}").value = v
    await pilot.press("ctrl+s")
    await wait_for(pilot, lambda: not isinstance(app.screen, FormScreen), what="the form to be accepted")


def changed_lines(a: str, b: str) -> list[str]:
    return [ln for ln in difflib.unified_diff(a.splitlines(), b.splitlines(), lineterm="", n=0)
            if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]


@run_async
async def _drive(lab: Lab, work) -> None:
    client = AgentClient(lab.socket, timeout=5)
    app = TalgateApp(client, poll_interval=0.3, write_client=AgentClient(lab.socket, timeout=60))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, app.first_data.is_set, what="first poll")

        # a policy, from the firewall screen's policies tab: guest → wan drop
        await pilot.press("3")
        await wait_for(pilot, lambda: app.screen.NAME == "firewall", what="firewall screen")
        await pilot.press("p", "down", "e")
        await fill(pilot, app, {"action": "drop"})
        await commit(pilot, app, "guest: no internet")
        text1 = client.config().text
        assert changed_lines(lab.text0, text1) == ["-  - {from: guest, to: wan, action: accept}",
                                                   "+  - {from: guest, to: wan, action: drop}"]
        assert not probe(lab), "guest → internet must be dropped by the policy"

        # $EDITOR: an invalid save comes back with the problem on top, the valid one becomes the candidate
        state = str(work / "state")
        script = work / "editor.sh"
        script.write_text(SCRIPT)
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        os.environ["EDITOR"], os.environ["EDIT_STATE"] = f"sh {script}", state
        os.environ.pop("VISUAL", None)
        await pilot.press("E")
        await wait_for(pilot, lambda: app.store.candidate.dirty, what="the editor's text as the candidate")
        assert open(state).read().strip() == "2"
        second = open(state + ".round2").read()
        assert second.startswith("# talgate edit:") and "# policies[1].action:" in second
        await commit(pilot, app, "guest: internet again")
        assert client.config().text == lab.text0  # byte for byte what it was
        assert probe(lab), "guest → internet must flow again"

        # a route: 203.0.113.10 via the mgmt host (guest → mgmt is dropped by policy): traffic stops
        app.run_command(":edit routes")
        await wait_for(pilot, lambda: isinstance(app.screen, SectionScreen), what="routes dialog")
        await pilot.press("a")
        await fill(pilot, app, {"name": "detour", "to": "203.0.113.10/32", "via": "192.168.99.10"})
        await commit(pilot, app, "detour")
        assert changed_lines(lab.text0, client.config().text) == \
            ["+  - {name: detour, to: 203.0.113.10/32, via: 192.168.99.10}"]
        route = lab.run("router", ["ip", "route", "show", f"{ISP}/32"]).stdout
        assert "via 192.168.99.10" in route, route
        assert not probe(lab), "guest → ISP must follow the detour (and be dropped)"
        app.run_command(":edit routes")
        await wait_for(pilot, lambda: isinstance(app.screen, SectionScreen), what="routes dialog")
        await pilot.press("end")
        sel = app.screen.query_one("#entries")
        sel.move_cursor(row=sel.row_count - 1)
        await pilot.press("d")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen", what="delete confirmation")
        await pilot.press("y")
        await commit(pilot, app, "no detour")
        assert client.config().text == lab.text0 and probe(lab)

        # a DHCP pool: one address left in it, and a real client gets it
        if lab.kea:
            app.run_command(":edit dhcp.lan0.ipv4")
            await fill(pilot, app, {"pools": "[192.168.10.150-192.168.10.150]"})
            await commit(pilot, app, "one address")
            assert changed_lines(lab.text0, client.config().text) == [
                "-    ipv4: {pools: [192.168.10.100-192.168.10.199], lease_time: 600}",
                "+    ipv4: {pools: [192.168.10.150-192.168.10.150], lease_time: 600}"]
            deadline = time.monotonic() + 20
            while True:
                try:
                    assert dhclient(lab, work) == "192.168.10.150"
                    break
                except AssertionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(1)


def test_console_edits_policy_route_pool_and_editor_on_the_lab(lab, tmp_path, monkeypatch):
    monkeypatch.setenv("EDITOR", "false")  # restored after the test (the drive sets the scripted one)
    monkeypatch.setenv("EDIT_STATE", "")
    assert probe(lab), "guest → internet must flow before the change"
    _drive(lab, tmp_path)
