"""The frame every screen shares: status line, banners, body, the ``:``/``/`` prompt and the footer."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.events import Key
from textual.screen import Screen
from textual.widgets import Input, Static

from ..widgets import Banner, KeyBar, LiveTable, StatusLine

# Actions that change the candidate or the box; absent in read-only mode.
MUTATING = {"add", "edit", "delete", "move_up", "move_down", "commit", "discard", "rollback", "apply", "reserve",
            "confirm", "masquerade", "pool"}

class BaseView(Screen):
    NAME = "base"
    NEEDS: set[str] = set()

    def compose(self) -> ComposeResult:
        yield StatusLine(id="statusline")
        yield Banner(id="banner")
        yield Banner(id="robanner")
        yield from self.compose_body()
        # In the layout flow (not docked): the key bar, docked at the bottom, can never cover them.
        yield Input(id="prompt")
        yield Static(id="filterbar", markup=False)
        yield KeyBar(id="keys")

    def compose_body(self) -> ComposeResult:
        return iter(())

    @property
    def store(self):
        return self.app.store

    @property
    def read_only(self) -> bool:
        return self.app.store.read_only

    def check_action(self, action: str, parameters) -> bool | None:
        if action in MUTATING and self.read_only:
            return False
        return True

    def on_screen_resume(self) -> None:
        self.store.screen_title = self.NAME
        self.app.screen_shown(self)

    # -- data --------------------------------------------------------------------------

    def update_frame(self) -> None:
        s = self.store
        self.query_one(StatusLine).show(s)
        b = self.query_one("#banner", Banner)
        if not s.connected and s.polls:
            b.show(f" agent unreachable — reconnecting … ({s.error})", "error")
        elif s.head_moved:
            b.show(" HEAD moved under your candidate: on changes (6) b rebases it, x discards", "warn")
        elif s.status and s.status.get("last_error"):
            b.show(f" agent: {s.status['last_error']}", "warn")
        else:
            b.show(None)
        self.query_one("#robanner", Banner).show(" READ-ONLY — changes are disabled" if s.read_only else None, "ro")
        if s.read_only:
            self.refresh_bindings()

    def refresh_view(self, changed: set[str]) -> None:
        """Redraw what depends on ``changed`` (override)."""

    # -- prompt: ':' command mode and '/' filter ----------------------------------------

    def open_prompt(self, mode: str) -> None:
        p = self.query_one("#prompt", Input)
        self._prompt_mode = mode
        self._prompt_table = self.filter_target() if mode == "filter" else None
        if mode == "filter" and self._prompt_table is None:
            self.notify("nothing to filter here", severity="warning")
            return
        if mode == "filter":
            self._filter_table = self._prompt_table
        p.placeholder = "command: dashboard interfaces firewall nat traffic changes leases trace confirm edit quit" if mode == "cmd" \
            else "filter rows (esc clears)"
        p.value = self._prompt_table.filter_text if mode == "filter" else ""
        p.add_class("-shown")
        self.query_one("#filterbar").remove_class("-shown")
        self.set_focus(p)  # at once, not later: keys typed right after ':' belong to the prompt

    def filter_target(self) -> LiveTable | None:
        f = self.focused
        if isinstance(f, LiveTable):
            return f
        tables = [t for t in self.query(LiveTable) if t.display and t.region.height]
        return tables[0] if tables else None

    def close_prompt(self) -> None:
        p = self.query_one("#prompt", Input)
        p.remove_class("-shown")
        if self._prompt_table is not None:
            self.set_focus(self._prompt_table)
        else:
            self.focus_next()
        self.show_filter()

    def show_filter(self) -> None:
        """While a table is filtered, a line above the keys says so (and how to clear it)."""
        t = getattr(self, "_filter_table", None)
        bar = self.query_one("#filterbar", Static)
        if t is not None and t.filter_text:
            bar.update(f" filter: {t.filter_text}   ({len(t._shown)} of {len(t._rows)} rows; "  # noqa: SLF001
                       "/ edits, esc clears)")
            bar.add_class("-shown")
        else:
            bar.remove_class("-shown")

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "prompt" and getattr(self, "_prompt_mode", None) == "filter" and self._prompt_table:
            self._prompt_table.set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "prompt":
            return
        event.stop()
        mode = self._prompt_mode
        self.close_prompt()
        if mode == "cmd":
            self.app.run_command(event.value)

    def on_key(self, event: Key) -> None:
        p = self.query_one("#prompt", Input)
        if event.key == "escape" and p.has_class("-shown"):
            event.stop()
            if self._prompt_mode == "filter" and self._prompt_table:
                self._prompt_table.set_filter("")
            self.close_prompt()
        elif event.key == "escape" and getattr(self, "_filter_table", None) is not None \
                and self._filter_table.filter_text:
            event.stop()
            self._filter_table.set_filter("")
            self.show_filter()
