"""The talgate console: a k9s/lazygit-style Textual app that drives the agent through the backend client.

It never touches the kernel: every read and write goes to the agent over its Unix socket. One poll
worker runs at a time (the next poll is scheduled when the last one finished), off the UI thread.
"""

from __future__ import annotations

import asyncio
import signal

from rich.text import Text
from textual import work
from textual.app import App
from textual.binding import Binding
from textual.scrollbar import ScrollBarRender

from backend.client import AgentError, AgentUnreachable

from .dialogs import TraceScreen
from .forms import TextScreen
from .screens.changes import ChangesView
from .screens.dashboard import DashboardView
from .screens.events import EventsView
from .screens.firewall import FirewallView
from .screens.interfaces import InterfacesView
from .screens.leases import LeasesView
from .screens.nat import NatView
from .screens.traffic import TrafficView
from .store import NEEDS, Store
from .theme import css, plain_terminal, use_plain_glyphs

_BARS = (list(ScrollBarRender.VERTICAL_BARS), list(ScrollBarRender.HORIZONTAL_BARS))
VIEWS = {"dashboard": DashboardView, "interfaces": InterfacesView, "firewall": FirewallView, "nat": NatView,
         "traffic": TrafficView, "changes": ChangesView, "leases": LeasesView, "events": EventsView}
ALIASES = {"dash": "dashboard", "d": "dashboard", "if": "interfaces", "ifaces": "interfaces", "fw": "firewall",
           "rules": "firewall", "tr": "traffic", "log": "changes", "history": "changes", "diff": "changes",
           "dhcp": "leases", "audit": "events", "ev": "events", "q": "quit", "quit": "quit", "exit": "quit"}
COMMANDS = {"trace": "trace", "confirm": "confirm"}  # :NAME → action_NAME


class TalgateApp(App):
    TITLE = "talgate"
    ENABLE_COMMAND_PALETTE = False
    MODES = VIEWS
    BINDINGS = [
        Binding("1", "view('dashboard')", "dash"),
        Binding("2", "view('interfaces')", "if"),
        Binding("3", "view('firewall')", "fw"),
        Binding("4", "view('nat')", "nat"),
        Binding("5", "view('traffic')", "traffic"),
        Binding("6", "view('changes')", "changes"),
        Binding("7", "view('leases')", "leases"),
        Binding("8", "view('events')", "events"),
        Binding("C", "confirm", "CONFIRM", key_display="C"),
        Binding("colon", "prompt('cmd')", "cmd", key_display=":"),
        Binding("slash", "prompt('filter')", "filter", key_display="/"),
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("ctrl+l", "redraw", "redraw", show=False),
        Binding("q", "quit", "quit"),
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
    ]

    def __init__(self, client, read_only: bool = False, poll_interval: float = 1.0, plain: bool | None = None,
                 start: str = "dashboard", write_client=None):
        self.plain = plain_terminal() if plain is None else plain
        TalgateApp.CSS = css(self.plain)
        super().__init__(ansi_color=True if self.plain else None)
        if self.plain:
            self.theme = "ansi-dark"
        # Sub-cell scrollbar glyphs (▁▂▃, ▉▊▋) are missing from console fonts: plain draws the thumb with
        # colour only. (A class attribute in Textual: set both ways, since tests run several apps.)
        ScrollBarRender.VERTICAL_BARS = [" "] * 8 if self.plain else _BARS[0]
        ScrollBarRender.HORIZONTAL_BARS = [" "] * 8 if self.plain else _BARS[1]
        use_plain_glyphs(self.plain)  # [x]/[ ] checkboxes, ASCII arrows, <placeholders>
        self.store = Store(client, read_only=read_only)
        self.write_client = write_client or client
        self.poll_interval = poll_interval
        self.start_view = start
        self.first_data = asyncio.Event()
        self._poll_timer = None
        self._poll_again = False  # poll_soon() during a poll: poll again when it lands
        self._pending = False

    # -- lifecycle ---------------------------------------------------------------------

    def on_mount(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGHUP, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.exit)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
        self.switch_mode(self.start_view)
        self.poll()

    def screen_shown(self, view) -> None:
        view.update_frame()
        view.refresh_view({"status", "config", "interfaces", "history", "counters", "conntrack", "log", "leases",
                           "audit"})
        self.poll_soon()

    def poll_soon(self) -> None:
        """Poll now; when one is running, another follows it at once (polls never overlap, and a
        screen shown during a poll still gets its data without waiting for the next tick)."""
        if self._poll_timer is not None:
            self._poll_timer.stop()
            self._poll_timer = None
            self.poll()
        else:
            self._poll_again = True

    @work(thread=True, exclusive=False, group="poll")
    def poll(self) -> None:
        screen_name = self.store.screen_title
        out = self.store.fetch(NEEDS.get(screen_name, set()))
        self.call_from_thread(self._absorb, out)

    def _absorb(self, out: dict) -> None:
        changed = self.store.absorb(out)
        view = self.screen if hasattr(self.screen, "refresh_view") else None
        if view is None:
            for s in reversed(self.screen_stack):
                if hasattr(s, "refresh_view"):
                    view = s
                    break
        if view is not None and view.is_mounted:  # not yet composed: screen_shown draws it from the store
            view.update_frame()
            view.refresh_view(changed)
        if self.store.connected:
            self.first_data.set()
        pending = bool(self.store.confirm_pending)
        if pending != self._pending:  # the confirm key shows in the footer only while a confirm is pending
            self._pending = pending
            self.screen.refresh_bindings()
        if self._poll_again:
            self._poll_again = False
            self.poll()
            return
        self._poll_timer = self.set_timer(self.poll_interval, self._tick)

    def _tick(self) -> None:
        self._poll_timer = None
        self.poll()

    # -- actions -----------------------------------------------------------------------

    def action_view(self, name: str) -> None:
        if self.current_mode != name:
            self.switch_mode(name)

    def check_action(self, action: str, parameters) -> bool | None:
        if action == "confirm":
            return bool(self.store.confirm_pending) and not self.store.read_only
        return True

    def run_command(self, text: str) -> None:
        word = text.strip().lstrip(":").split(" ")[0].lower()
        if not word:
            return
        if word in COMMANDS:
            getattr(self, f"action_{COMMANDS[word]}")()
            return
        name = ALIASES.get(word) or next((v for v in VIEWS if v.startswith(word)), None)
        if name == "quit":
            self.exit()
        elif name:
            self.action_view(name)
        else:
            self.notify(f"unknown command :{word}", severity="error")

    def action_prompt(self, mode: str) -> None:
        if hasattr(self.screen, "open_prompt"):
            self.screen.open_prompt(mode)

    def action_confirm(self) -> None:
        """Keep the pending commit: the agent stops its rollback timer."""
        if self.store.read_only:
            self.notify("read-only: confirm is disabled", severity="error")
            return
        if not self.store.confirm_pending:
            self.notify("nothing to confirm: no commit is waiting for confirmation", severity="warning")
            return

        def done(result, err):
            if not err and result:
                self.notify(f"commit {str(result.rev)[:8]} confirmed: it stays", severity="information")

        self.write("confirm", lambda c: c.confirm(), done)

    def action_trace(self, packet: dict | None = None) -> None:
        """The packet tracer dialog (a read: works in read-only mode too)."""
        s = self.store
        cand = s.candidate
        names = list(cand.data.get("interfaces") or {}) + [n for n in cand.head.get("interfaces") or {}
                                                           if n not in (cand.data.get("interfaces") or {})]
        packet = packet or getattr(self, "_last_trace", None)
        screen = TraceScreen(names, s.client, cand.text() if cand.dirty else None,
                             len(cand.changes()) if cand.dirty else 0, packet, plain=self.plain)

        def closed(_):
            self._last_trace = screen.packet

        self.push_screen(screen, closed)

    def action_redraw(self) -> None:
        self.refresh(layout=True, repaint=True)
        self.screen.refresh(layout=True, repaint=True)

    def action_help(self) -> None:
        lines = [f"keys of the {getattr(self.screen, 'NAME', 'current')} screen", ""]
        seen = set()
        for _key, active in self.screen.active_bindings.items():
            b = active.binding
            if active.node not in (self.screen, self) or not active.enabled or not b.description \
                    or (b.action, b.key) in seen:
                continue
            seen.add((b.action, b.key))
            lines.append(f"  {self.get_key_display(b):<10} {b.description}")
        lines += ["", "  :name      go to a screen (dashboard interfaces firewall nat traffic changes leases)",
                  "  :trace     packet tracer; :confirm keeps a commit waiting for confirmation (also C)",
                  "  up/down    move in a table; enter opens, esc closes a dialog or the prompt",
                  "  ctrl+l     redraw the terminal; ctrl+c quits too"]
        self.push_screen(TextScreen("help", Text("\n".join(lines))))

    # -- writes (in workers; the UI never blocks on the agent) ----------------------------

    def write(self, what: str, fn, on_done=None) -> None:
        self._write(what, fn, on_done)

    @work(thread=True, group="write")
    def _write(self, what: str, fn, on_done) -> None:
        try:
            result, err = fn(self.write_client), None
        except AgentUnreachable as e:
            result, err = None, str(e)
        except AgentError as e:
            probs = "; ".join(f"{p['path']}: {p['message']}" for p in e.problems[:3])
            result, err = None, f"{e.message}" + (f" — {probs}" if probs else "")
        self.call_from_thread(self._written, what, result, err, on_done)

    def _written(self, what, result, err, on_done) -> None:
        if err:
            self.notify(f"{what} failed: {err}", severity="error", timeout=8)
        else:
            self.notify(f"{what}: done")
        if on_done:
            on_done(result, err)
        self.poll_soon()


def run(socket: str | None = None, read_only: bool = False) -> int:
    from backend.client import AgentClient

    client = AgentClient(socket, timeout=5.0)
    if read_only:
        # Use the agent's read-only socket, so the agent itself refuses any write.
        try:
            ro = client.status().sockets.ro
            if ro:
                client = AgentClient(ro, timeout=5.0)
        except AgentError:
            pass
    writer = AgentClient(client.socket_path, timeout=120.0)
    TalgateApp(client, read_only=read_only, write_client=writer).run()
    return 0
