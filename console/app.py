"""The talgate console: a k9s/lazygit-style Textual app that drives the agent through the backend client.

It never touches the kernel: every read and write goes to the agent over its Unix socket. One poll
worker runs at a time (the next poll is scheduled when the last one finished), off the UI thread.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import threading
import time

from textual import events, work
from textual.app import App
from textual.binding import Binding
from textual.scrollbar import ScrollBarRender

from backend.client import AgentError, AgentUnreachable

from . import state
from .dialogs import ChoiceScreen, TraceScreen
from .forms import TextScreen
from .screens.changes import ChangesView
from .screens.dashboard import DashboardView
from .screens.events import EventsView
from .screens.firewall import FirewallView
from .screens.interfaces import InterfacesView
from .screens.leases import LeasesView
from .screens.nat import NatView
from .screens.routes import RoutesView
from .screens.traffic import TrafficView
from .store import NEEDS, Store
from .theme import css, plain_terminal, use_plain_glyphs

_BARS = (list(ScrollBarRender.VERTICAL_BARS), list(ScrollBarRender.HORIZONTAL_BARS))
VIEWS = {"dashboard": DashboardView, "interfaces": InterfacesView, "firewall": FirewallView, "nat": NatView,
         "traffic": TrafficView, "changes": ChangesView, "leases": LeasesView, "events": EventsView,
         "routes": RoutesView}
ALIASES = {"dash": "dashboard", "d": "dashboard", "if": "interfaces", "ifaces": "interfaces", "fw": "firewall",
           "rules": "firewall", "tr": "traffic", "log": "changes", "history": "changes", "diff": "changes",
           "dhcp": "leases", "audit": "events", "ev": "events", "rt": "routes", "route": "routes", "q": "quit",
           "quit": "quit", "exit": "quit"}
COMMANDS = {"trace": "trace", "confirm": "confirm", "edit": "edit"}  # :NAME [ARG] → action_NAME([ARG])


class TalgateApp(App):
    TITLE = "talgate"
    QUIET = 2.0  # seconds without a key before the staged candidate is written to the state file
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
        Binding("9", "view('routes')", "routes"),
        Binding("C", "confirm", "CONFIRM", key_display="C"),
        Binding("colon", "prompt('cmd')", "cmd", key_display=":"),
        Binding("slash", "prompt('filter')", "filter", key_display="/"),
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("E", "edit_yaml", "$EDITOR", key_display="E", show=False),  # in ? help; the footer is full
        Binding("e", "edit_yaml", "", show=False),  # e where a screen has no edit of its own
        Binding("ctrl+l", "redraw", "redraw", show=False),
        Binding("q", "quit", "quit"),
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
    ]

    def __init__(self, client, read_only: bool = False, poll_interval: float = 1.0, plain: bool | None = None,
                 start: str = "dashboard", write_client=None, state_path=None):
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
        self._poll_after_paint = False  # a screen was shown: poll when it has been painted
        # Type-ahead (issue 13): keys are handled one at a time, each after the last one's effects
        # (a prompt opening, focus moving, a screen mounting) settled; keys arriving meanwhile wait in
        # order in _held, like a shell's input buffer.
        self._held: list[events.Key] | None = None
        # The staged candidate survives a restart in a per-user state file (None: not kept, as in tests).
        self.state_path = state_path
        self.state_shown: str | None = None  # the state file's path as dialogs show it (default: ~/…)
        self._restore = "start" if state_path else "done"  # start → asking → done
        self._saved_gen: int | None = None
        self._persisting = False  # a background write of the state file is running
        self._last_key = 0.0  # time.monotonic() of the last key
        self._persist_lock = threading.Lock()
        self._written_gen = -1
        self._quitting = False

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
        if self.state_path:
            self.set_interval(1.0, self._persist_when_quiet)

    def on_unmount(self) -> None:
        self.persist_candidate()

    def screen_shown(self, view) -> None:
        view.update_frame()
        view.refresh_view({"status", "config", "interfaces", "history", "recent", "counters", "conntrack", "log", "leases",
                           "audit", "routes"})
        # Drawn from the store first, polled once painted: a poll of 200 links' history holds the
        # interpreter for a while (JSON, validation) and would hold up the screen's first paint.
        self._poll_after_paint = True
        self.set_timer(0.5, self._painted)  # in case no frame is written (nothing changed on screen)

    def _display(self, screen, renderable) -> None:
        super()._display(screen, renderable)
        if renderable is not None and self._poll_after_paint:
            self.call_later(self._painted)

    def _painted(self) -> None:
        if self._poll_after_paint:
            self._poll_after_paint = False
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
        if self.store.connected and not self.first_data.is_set():
            self.first_data.set()
            # What start-up built (the document, the candidate's round-trip tree, the screens) lives as
            # long as the console: kept out of the collector's scans, which otherwise take 100-400 ms
            # at 1,000 rules — a pause any key pressed meanwhile waits for.
            gc.freeze()
        if "auto_rollback" in changed:
            r = self.store.auto_rollback
            self.notify(f"commit {(r['rev'] or '?')[:8]} was not confirmed in time: rolled back by the agent "
                        f"(HEAD {(r['to'] or '?')[:8]})", severity="error", timeout=30)
        if self._restore == "start" and self.store.candidate.head_rev:
            self._offer_restore()
        self._persist_when_quiet()
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

    # -- type-ahead ----------------------------------------------------------------------

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded:
            if self._held is not None:
                self._held.append(event)
                return
            self._held = []
            try:
                await super().on_event(event)
            finally:
                self._last_key = time.monotonic()
                self._settle_then_replay()
            return
        await super().on_event(event)

    def _busy(self) -> bool:
        """Is any message pump of the app or the active screen still working on something?
        (Textual internals: if they change, keys are simply no longer held — never lost.)"""
        try:
            pumps = [self, *self.screen.walk_children(with_self=True)]
            return any(p._message_queue.qsize() or p._pending_message is not None or p._next_callbacks  # noqa: SLF001
                       for p in pumps)
        except AttributeError:
            return False
        except Exception:  # noqa: BLE001 - no screen yet (start-up, shutdown)
            return True

    def _settle_then_replay(self) -> None:
        async def wait() -> None:
            deadline = time.monotonic() + 1.0  # a busy UI must not hold keys for ever
            quiet = 0
            try:
                while quiet < 3 and time.monotonic() < deadline:
                    await asyncio.sleep(0)
                    quiet = 0 if self._busy() else quiet + 1
            finally:
                self.call_later(self._replay)

        self._settle_task = asyncio.get_running_loop().create_task(wait())

    async def _replay(self) -> None:
        held, self._held = self._held or [], None
        if not held:
            return
        first, rest = held[0], held[1:]
        self._held = []
        try:
            await super().on_event(first)
        finally:
            self._held[:0] = rest
            self._settle_then_replay()

    # -- the candidate across restarts --------------------------------------------------

    @property
    def state_label(self) -> str:
        if self.state_shown:
            return self.state_shown
        return state.shown_path(self.state_path)

    def persist_candidate(self, background: bool = False) -> None:
        """Keep the state file in step with the candidate: written when it changed, removed when nothing
        is staged (committed or discarded). Not before the saved one was offered back.

        ``background``: the candidate's text is written in a worker thread (see _persist_when_quiet):
        writing a 1,000-rule document takes seconds and must not hold up the next key. One such write
        runs at a time. Called plainly (at exit, on a restore, in tests) the file is written before it
        returns."""
        cand = self.store.candidate
        if self.state_path is None or self.store.read_only or self._restore in ("start", "asking"):
            return
        if self._restore == "later":  # the saved one was left for later: kept until this session stages
            if not cand.dirty:
                return
            self._restore = "done"
        if cand.generation == self._saved_gen:
            return
        gen, dirty = cand.generation, cand.dirty
        job = cand.text_job() if dirty else None
        base, host = cand.head_rev, (self.store.status or {}).get("hostname")
        if background:
            if not self._persisting:
                self._persisting = True
                self.run_worker(lambda: self._persist_worker(gen, job, base, host), thread=True, group="persist")
            return
        self._persisted(gen, self._write_state(gen, job, base, host), again=False)

    def _persist_when_quiet(self) -> None:
        """The state file is written once no key came for QUIET seconds (a poll or the 1 s timer
        looks): writing the candidate's text is pure Python and takes seconds at 1,000 rules, and a
        thread still competes with the keys for the interpreter. At exit it is written in any case."""
        if time.monotonic() - self._last_key >= self.QUIET:
            self.persist_candidate(background=True)

    def _write_state(self, gen: int, job, base, host) -> Exception | None:
        """Write (or remove) the state file for generation ``gen``; an older generation than one already
        written is not written over it. Any thread."""
        try:
            text = job() if job is not None else None
            with self._persist_lock:
                if gen < self._written_gen:
                    return None
                if text is not None:
                    state.save(self.state_path, text, base, host)
                else:
                    state.clear(self.state_path)
                self._written_gen = gen
            return None
        except Exception as e:  # noqa: BLE001 - keeping the candidate is best effort: said, never fatal
            return e

    def _persist_worker(self, gen: int, job, base, host) -> None:
        err = self._write_state(gen, job, base, host)
        try:
            self.call_from_thread(self._persisted, gen, err, True)
        except RuntimeError:  # the app has gone meanwhile (its exit wrote the file itself)
            pass

    def _persisted(self, gen: int, err: Exception | None, again: bool) -> None:
        if again:
            self._persisting = False
        # (after a failure too: it is said once, not every second)
        self._saved_gen = gen if self._saved_gen is None else max(gen, self._saved_gen)
        if err:
            self.notify(f"cannot keep the candidate in {self.state_path}: {getattr(err, 'strerror', None) or err}",
                        severity="warning")
        elif again and self.store.candidate.generation != self._saved_gen:
            self._persist_when_quiet()  # changed while it was written (else the 1 s timer looks again)

    def _offer_restore(self) -> None:
        saved = state.load(self.state_path)
        cand = self.store.candidate
        if not saved or self.store.read_only or saved["candidate"] == cand.head_text:
            self._restore = "done"
            return
        self._restore = "asking"
        base = saved.get("base")
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(saved.get("saved") or 0))
        on = "the current HEAD" if base == cand.head_rev else \
            f"revision {(base or '?')[:12]} (HEAD has moved since: you can rebase it)"
        msg = (f"A staged candidate was kept when the console closed ({when}), made on {on}.\n"
               f"Restore it? (d discards it for good; esc decides later: it stays in {self.state_label})")

        def answered(choice):
            if choice == "restore":
                self._restore_candidate(saved)
            elif choice == "discard":
                state.clear(self.state_path)
                self._restore = "done"
            else:
                self._restore = "later"  # left alone: not overwritten by this session (unless it stages)

        self.push_screen(ChoiceScreen(msg, [("r", "restore", "restore"), ("d", "discard", "discard")],
                                      title="staged work from the last session"), answered)

    def _restore_candidate(self, saved: dict) -> None:
        from .candidate import _load

        cand = self.store.candidate
        data = _load(saved["candidate"])
        base = saved.get("base")
        if base == cand.head_rev:
            cand.replace(data)
            self._restored(None)
            return

        def fetched(base_text: str | None, err: str | None) -> None:
            if base_text is None:
                # Not this box's history (another router, a re-made repo): never laid onto an unrelated HEAD.
                self._restore = "later"
                self.notify(err, severity="warning", timeout=15)
                return
            latest = cand.head_rev_latest or cand.head_rev
            cand.reset(base_text, base)
            cand.replace(data)
            cand.head_rev_latest = latest  # HEAD moved: the banner and the rebase offer follow
            self._restored(None)

        def work_() -> None:
            try:
                text, err = self.store.client.config(base).text, None
            except (AgentError, AgentUnreachable) as e:
                text, err = None, (f"not restored: its base revision {(base or '-')[:12]} is not in this agent's "
                                   f"history ({getattr(e, 'message', e)}); the file stays: {self.state_label}")
            self.call_from_thread(fetched, text, err)

        self.run_worker(work_, thread=True, group="restore")

    def _restored(self, err: str | None) -> None:
        self._restore = "done"
        self._saved_gen = None
        self.notify(err or f"candidate restored: {len(self.store.candidate.changes())} staged change(s)",
                    severity="warning" if err else "information")
        view = self.screen if hasattr(self.screen, "refresh_view") else None
        if view is not None:
            view.update_frame()
            view.refresh_view({"edit", "config"})
        self.persist_candidate()

    # -- actions -----------------------------------------------------------------------

    def action_view(self, name: str) -> None:
        if self.current_mode != name:
            self.switch_mode(name)

    def check_action(self, action: str, parameters) -> bool | None:
        if action == "confirm":
            return bool(self.store.confirm_pending) and not self.store.read_only
        if action in ("edit_yaml", "edit"):
            return not self.store.read_only
        return True

    def run_command(self, text: str) -> None:
        word = text.strip().lstrip(":").split(" ")[0].lower()
        if not word:
            return
        if word in COMMANDS:
            arg = text.strip().lstrip(":").partition(" ")[2].strip()
            getattr(self, f"action_{COMMANDS[word]}")(*([arg] if arg else []))
            return
        name = ALIASES.get(word) or next((v for v in VIEWS if v.startswith(word)), None)
        if name == "quit":
            self.action_quit()
        elif name:
            self.action_view(name)
        else:
            self.notify(f"unknown command :{word}", severity="error")

    def action_quit(self) -> None:
        """q / ctrl+c / :quit. With staged changes it asks first; a second ctrl+c while asking quits."""
        cand = self.store.candidate
        if self._quitting or not cand.dirty or self.store.read_only:
            self.persist_candidate()
            self.exit()
            return
        self._quitting = True
        n = len(cand.changes())
        kept = (f"They are kept in {self.state_label} and offered when the console starts again."
                if self.state_path else "They will be lost.")
        msg = f"{n} staged change{'s' if n != 1 else ''} not committed. {kept}"

        def answered(quit_):
            self._quitting = False
            if quit_:
                self.persist_candidate()
                self.exit()

        self.push_screen(ChoiceScreen(msg, [("q", "quit", True), ("y", "", True), ("n", "keep editing", False)],
                                      cancel=False, title="quit?"), answered)

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

        self.write("confirm", lambda c: c.confirm(), done, toast=False)

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

    def action_edit_yaml(self) -> None:
        """The candidate router.yaml in $EDITOR (like `kubectl edit`); see console/editor.py."""
        from .editor import edit_in_editor

        edit_in_editor(self)

    def action_edit(self, path: str = "") -> None:
        """:edit SECTION — the form/entries editor of any part of the document (:edit alone lists them)."""
        from .screens.sections import open_section

        open_section(self, path)

    def action_redraw(self) -> None:
        self.refresh(layout=True, repaint=True)
        self.screen.refresh(layout=True, repaint=True)

    def action_help(self) -> None:
        from .help import help_text

        inside = int(self.size.width * 0.95) - 4  # the help dialog: 95% wide, border and padding
        self.push_screen(TextScreen(f"help: {getattr(self.screen, 'NAME', 'keys')}",
                                    help_text(self, self.screen, inside)))

    # -- writes (in workers; the UI never blocks on the agent) ----------------------------

    def write(self, what: str, fn, on_done=None, toast: bool = True) -> None:
        """``toast``: say '<what>: done' on success (off when on_done says it better: one toast per action)."""
        self._write(what, fn, on_done, toast)

    @work(thread=True, group="write")
    def _write(self, what: str, fn, on_done, toast: bool = True) -> None:
        try:
            result, err = fn(self.write_client), None
        except AgentUnreachable as e:
            result, err = None, str(e)
        except AgentError as e:
            probs = "; ".join(f"{p['path']}: {p['message']}" for p in e.problems[:3])
            result, err = None, f"{e.message}" + (f" — {probs}" if probs else "")
        self.call_from_thread(self._written, what, result, err, on_done, toast)

    def _written(self, what, result, err, on_done, toast: bool = True) -> None:
        if err:
            self.notify(f"{what} failed: {err}", severity="error", timeout=8)
        elif toast:
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
    TalgateApp(client, read_only=read_only, write_client=writer,
               state_path=None if read_only else state.default_path()).run()
    return 0
