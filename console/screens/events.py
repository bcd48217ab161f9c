"""events: the agent's audit log, newest first: commits, confirms, auto-rollbacks, drift repairs,
refusals, who did it and from where. Live: the app's poll brings new entries and rows are diffed
in place (the cursor stays on its entry)."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from ..forms import TextScreen
from ..widgets import LiveTable
from .base import BaseView

EVENT_COLS = [("time", 8), ("event", 13, "key"), ("rev", 8), ("who", 8), ("from", 10), ("what", None)]
STYLE = {"commit": "green", "confirm": "green", "rollback": "yellow", "auto-rollback": "bold yellow",
         "refused": "bold red", "drift-repair": "magenta", "apply": "cyan"}


def event_kind(e: dict) -> str:
    if e.get("action") == "rollback" and e.get("via") == "confirm-timer":
        return "auto-rollback"
    return str(e.get("action") or "?")


def event_what(e: dict) -> str:
    kind = event_kind(e)
    if kind == "refused":
        return f"{e.get('message') or ''}: {e.get('reason') or ''}".strip(": ")
    if kind == "drift-repair":
        items = e.get("items") or []
        return "repaired: " + ", ".join(map(str, items)) if items else "repaired drift"
    if kind in ("rollback", "auto-rollback"):
        return f"to {str(e.get('target') or '')[:8]}" + (f": {e['message']}" if e.get("message") else "")
    if kind == "commit" and e.get("confirm"):
        return f"{e.get('message') or ''} (confirm within {e['confirm']} s)"
    if kind == "apply":
        return f"applied {e.get('changes')} change(s)" if e.get("changes") is not None else "applied"
    return str(e.get("message") or "")


def event_rows(entries: list[dict], now: float) -> list[tuple[str, tuple]]:
    rows, seen = [], {}
    for e in reversed(entries):
        t = float(e.get("time") or 0)
        stamp = time.strftime("%H:%M:%S" if now - t < 86400 else "%m-%d %H:%M", time.localtime(t))
        kind = event_kind(e)
        base = f"{t:.3f}:{kind}"
        seen[base] = seen.get(base, 0) + 1
        who = str(e.get("user") or e.get("unix_user") or "?")
        rows.append((f"{base}:{seen[base]}", (stamp, Text(kind, style=STYLE.get(kind, "")), str(e.get("rev") or "-")[:8],
                                              who, str(e.get("via") or "-"), event_what(e))))
    return rows


class EventsView(BaseView):
    NAME = "events"
    BINDINGS = [Binding("enter", "detail", "detail")]

    def compose_body(self) -> ComposeResult:
        yield Static("", classes="hint", id="ev-title")
        yield LiveTable(EVENT_COLS, id="events")

    def refresh_view(self, changed: set[str]) -> None:
        if "audit" in changed or not getattr(self, "_drawn", False):
            self._drawn = True
            entries = self.store.audit or []
            self.query_one("#events", LiveTable).sync(event_rows(entries, self.store.clock()))
            n = {k: 0 for k in ("commit", "auto-rollback", "refused", "drift-repair")}
            for e in entries:
                k = event_kind(e)
                if k in n:
                    n[k] += 1
            self.query_one("#ev-title", Static).update(
                f" {len(entries)} events, newest first: {n['commit']} commits, {n['auto-rollback']} auto-rollbacks,"
                f" {n['refused']} refused, {n['drift-repair']} drift repairs")

    def on_data_table_row_selected(self, event) -> None:
        event.stop()
        self.action_detail()

    def action_detail(self) -> None:
        table = self.query_one("#events", LiveTable)
        key = table.current_key
        if key is None:
            return
        idx = [k for k, _ in event_rows(self.store.audit or [], self.store.clock())].index(key)
        e = list(reversed(self.store.audit or []))[idx]
        t = Text()
        for k, v in e.items():
            t.append(f"{k:<10}", style="bold")
            t.append(f" {v}\n")
        self.app.push_screen(TextScreen(f"event: {event_kind(e)}", t))
