"""Every dialog of the console as a scene: how to open it from a fresh app on the fake agent.

`make screenshots` (console/screenshots.py) writes each at 80x24, 120x40, 60x20 and 200x50 and under
TERM=linux and vt100; tests/console/test_dialog_snapshots.py pins the same pictures. A scene is
(app kwargs, steps): ``steps(pilot)`` drives the app until the dialog is on top. Scenes need no handle
on the agent: what another admin does (a commit that moves HEAD) goes through the console's own client.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path

Steps = Callable[[object], Awaitable[None]]
STAGED_RULE = {"name": "block-guest-http", "from": "guest", "to": "wan", "proto": "tcp", "dport": 80, "action": "drop"}
STATE_SHOWN = "~/.local/state/talgate/candidate.yaml"  # the state file's path as a dialog shows it


async def settle(pilot) -> None:
    await pilot.app.first_data.wait()
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
    # An input's cursor blinks every 0.5 s: on a slow run the picture caught it off. Held steady (shown).
    from textual.widgets import Input

    for w in pilot.app.screen.query(Input):
        w.cursor_blink = False
    await pilot.pause()


async def go(pilot, view: str) -> None:
    await settle(pilot)
    if pilot.app.current_mode != view:
        await pilot.app.switch_mode(view)
    await settle(pilot)


async def keys(pilot, *k: str) -> None:
    await pilot.press(*k)
    await settle(pilot)


def stage_rule(pilot) -> None:
    pilot.app.store.candidate.put("rules", None, dict(STAGED_RULE))


async def fill(pilot, values: dict, save: bool = True) -> None:
    """Type values into the dialog on top (``#f-KEY`` inputs); ctrl+s checks them with the agent."""
    for key, val in values.items():
        pilot.app.screen.query_one(f"#f-{key}").value = val
    await pilot.pause()
    if save:
        await keys(pilot, "ctrl+s")


def other_admin_commits(pilot, old: str, new: str, message: str = "from another admin") -> None:
    """HEAD moves under the console: a commit through the same agent, not through the console's candidate."""
    c = pilot.app.store.client
    cfg = c.config()
    c.commit(cfg.text.replace(old, new), message, base=cfg.rev)


async def _commit_after_head_moved(pilot, ours: tuple[str, str], theirs: tuple[str, str]) -> None:
    from .candidate import _load

    await settle(pilot)
    cand = pilot.app.store.candidate
    cand.replace(_load(cand.head_text.replace(*ours)))
    other_admin_commits(pilot, *theirs)
    await go(pilot, "changes")
    await keys(pilot, "c")
    from .dialogs import CommitScreen

    if isinstance(pilot.app.screen, CommitScreen):  # the poll had not seen HEAD move yet: the agent refuses
        await keys(pilot, *"my change", "enter")


async def _history(pilot, commits: int = 2) -> None:
    """Two commits after the first (each adding a 14-line comment block), then the history list."""
    await settle(pilot)
    c = pilot.app.store.client
    for i in range(commits):
        cfg = c.config()
        c.commit(cfg.text + "".join(f"# note {i} line {k}\n" for k in range(14)), f"notes, part {i}", base=cfg.rev)
    pilot.app.poll_soon()
    await go(pilot, "changes")
    await keys(pilot, "h")


# -- the scenes -----------------------------------------------------------------------------


async def quit_(pilot) -> None:
    await go(pilot, "firewall")
    stage_rule(pilot)
    await keys(pilot, "q")


async def restore(pilot) -> None:
    await settle(pilot)  # the offer comes with the first poll


async def rebase(pilot) -> None:
    await _commit_after_head_moved(pilot, ("dport: 8443", "dport: 8444"), ("hostname: gw", "hostname: gw2"))


async def rebase_overlap(pilot) -> None:
    await _commit_after_head_moved(pilot, ("hostname: gw", "hostname: mine"), ("hostname: gw", "hostname: theirs"))


async def rollback(pilot) -> None:
    await _history(pilot)
    await keys(pilot, "j", "R")


async def revision(pilot) -> None:
    await _history(pilot)
    await keys(pilot, "enter")


async def commit_refused(pilot) -> None:
    """A commit that would cut the management SSH path: the dialog stays open with the refusal."""
    await go(pilot, "changes")
    cand = pilot.app.store.candidate
    cand.put("rules", 0, {"name": "ssh-from-mgmt", "from": "mgmt", "to": "self", "proto": "tcp", "dport": 22,
                          "action": "drop"})
    pilot.app.screen.refresh_view({"edit"})
    await settle(pilot)
    await keys(pilot, "c")
    await keys(pilot, *"close ssh", "enter")


async def commit_diff(pilot) -> None:
    """ctrl+r in the commit dialog: the router.yaml lines the commit records."""
    await go(pilot, "changes")
    cand = pilot.app.store.candidate
    cand.put("nat.forwards", 0, {"name": "web", "in": "wan", "proto": "tcp", "dport": 8444,
                                 "to": "192.168.10.10:443"})
    stage_rule(pilot)
    pilot.app.screen.refresh_view({"edit"})
    await settle(pilot)
    await keys(pilot, "c")
    await keys(pilot, *"web on 8444", "ctrl+r")


async def discard(pilot) -> None:
    await go(pilot, "changes")
    stage_rule(pilot)
    pilot.app.screen.refresh_view({"edit"})
    await keys(pilot, "x")


async def delete_rule(pilot) -> None:
    await go(pilot, "firewall")
    await keys(pilot, "d")


async def form_discard(pilot) -> None:
    await go(pilot, "firewall")
    await keys(pilot, "a")
    await fill(pilot, {"name": "web-out", "from": "guest"}, save=False)
    await keys(pilot, "escape")


async def forward_form(pilot) -> None:
    await go(pilot, "nat")
    await keys(pilot, "a")
    await fill(pilot, {"name": "ssh", "in": "wan", "dport": "2222", "to": "192.168.99.300:22"})


async def reservation(pilot) -> None:
    await go(pilot, "leases")
    await keys(pilot, "j", "r")


def section(path: str, values: dict | None = None, add: bool = False) -> Steps:
    """``:edit PATH`` typed at the prompt; ``add`` presses a in the entries dialog; ``values`` are saved."""

    async def steps(pilot) -> None:
        await go(pilot, "dashboard")
        await keys(pilot, "colon", *f"edit {path}".strip(), "enter")
        if add:
            await keys(pilot, "a")
        if values:
            await fill(pilot, values)

    steps.__name__ = f"section_{path}"
    return steps


async def section_interface(pilot) -> None:
    """An interface's form from :edit interfaces (its kind's model fields: rp_filter, kind) with a problem."""
    await section("interfaces")(pilot)
    pilot.app.screen.query_one("#entries").move_cursor(row=1)
    await keys(pilot, "e")
    await fill(pilot, {"mtu": "9999999", "rp_filter": "sideways"})


def help_on(view: str) -> Steps:
    async def steps(pilot) -> None:
        await go(pilot, view)
        await keys(pilot, "question_mark")

    return steps


async def trace_result(pilot) -> None:
    await go(pilot, "firewall")
    await keys(pilot, "t")
    await fill(pilot, {"iif": "wan0", "src": "203.0.113.10", "dst": "198.51.100.2", "dport": "8443"})


# name → (app kwargs, steps). The views' own dialogs that test_snapshots.py already pins (commit, trace,
# rule-form, interface-form, interface-detail, event-detail, help on the firewall screen) are not repeated.
DIALOG_SCENES: dict[str, tuple[dict, Steps]] = {
    "quit": ({}, quit_),
    "restore": ({"saved_candidate": True}, restore),
    "rebase": ({}, rebase),
    "rebase-overlap": ({}, rebase_overlap),
    "rollback": ({}, rollback),
    "revision": ({}, revision),
    "commit-refused": ({}, commit_refused),
    "commit-diff": ({}, commit_diff),
    "discard": ({}, discard),
    "delete-rule": ({}, delete_rule),
    "form-discard": ({}, form_discard),
    "forward-form-problem": ({}, forward_form),
    "reservation": ({"dhcp": True}, reservation),
    "trace-result": ({}, trace_result),
    "sections": ({}, section("")),
    "section-policies": ({}, section("policies")),
    "section-zone-problem": ({}, section("zones", {"_key": "dmz", "interfaces": "[dmz0]", "input": "maybe"},
                                         add=True)),
    "section-route-problem": ({}, section("routes", {"name": "vpn", "to": "10.8.0.0/33", "via": "192.168.10.300"},
                                          add=True)),
    "section-set-problem": ({}, section("sets", {"_key": "blocked", "addresses": "[203.0.113.0/33]"}, add=True)),
    "section-snat-problem": ({}, section("nat.snat", {"name": "office", "out": "nowhere", "to": "not-an-ip"},
                                         add=True)),
    "section-access-problem": ({}, section("system.access", {"name": "ssh", "from": "mgmt", "proto": "tcp",
                                                              "port": "70000"}, add=True)),
    "section-dhcp-pool-problem": ({"dhcp": True}, section("dhcp.lan0.ipv4", {"pools": "[192.168.99.10-192.168.99.20]",
                                                                             "lease_time": "-5"})),
    "section-interface-problem": ({}, section_interface),
    "section-system-problem": ({}, section("system", {"hostname": "-gw-", "kubernetes": "{pod_cidrs: [10.244.0.0/33]}"})),
    "section-bgp-problem": ({}, section("routing.bgp", {"asn": "0", "networks": "[2001:db8:10::/200]"})),
    "section-dns-problem": ({}, section("dns", {"mode": "sideways", "cache_size": "lots"})),
    "section-ntp-problem": ({}, section("ntp", {"serve": "[nowhere]"})),
    "section-mdns-problem": ({}, section("mdns", {"reflect": "[lan, nowhere]"})),
    **{f"help-{v}": ({"dhcp": True} if v == "leases" else {"events": True} if v == "events" else {}, help_on(v))
       for v in ("dashboard", "interfaces", "nat", "traffic", "changes", "leases", "events", "routes")},
}


def prepare(app, agent, saved_candidate: bool = False) -> None:
    """What a dialog scene needs before the app starts. ``saved_candidate``: a candidate kept by an
    earlier console session (staged on HEAD) in a temporary state file that goes with the app; the
    dialog shows the usual path, so the picture does not depend on the temporary directory."""
    if not saved_candidate:
        return
    import yaml

    from .fake import T0

    d = tempfile.mkdtemp(prefix="talgate-scene-")
    weakref.finalize(app, shutil.rmtree, d, True)
    path = Path(d) / "candidate.yaml"
    text = agent.text().replace("dport: 8443", "dport: 8444")
    path.write_text(yaml.safe_dump({"base": agent.head, "host": "gw", "saved": int(T0), "candidate": text},
                                   sort_keys=False))
    path.chmod(0o600)
    app.state_path, app.state_shown, app._restore = path, STATE_SHOWN, "start"
