"""nat: masquerade and port forwards with hit counters; forwards are edited in the candidate."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from ..candidate import join_list
from ..forms import FormScreen
from ..widgets import LiveTable, human_count
from .base import BaseView
from .editing import FORWARD_FIELDS, ListEditing, check_item, fields_for, item_from

MASQ_COLS = [("name", 20), ("out", 10), ("family", 8), ("hits", 8), ("bytes", 8)]
FWD_COLS = [("name", 14), ("in", 6), ("proto", 5), ("dport", 6), ("to", 22), ("src", 10), ("hits", 6)]


class NatView(ListEditing, BaseView):
    LIST_TABLE, LIST_PATH, LIST_NOUN = "forwards", "nat.forwards", "port forward"
    NAME = "nat"
    DEFAULT_CSS = "NatView #masq { height: auto; max-height: 7; }"
    BINDINGS = [
        Binding("a", "add", "add forward"),
        Binding("e", "edit", "edit"),
        Binding("d", "delete", "delete"),
        Binding("m", "masquerade", "masquerade/snat"),
    ]

    def compose_body(self) -> ComposeResult:
        yield Static("masquerade", classes="title")
        yield LiveTable(MASQ_COLS, id="masq")
        yield Static("port forwards", classes="title")
        yield LiveTable(FWD_COLS, id="forwards")

    def on_mount(self) -> None:
        self.query_one("#forwards", LiveTable).focus()

    def refresh_view(self, changed: set[str]) -> None:
        if not changed & {"counters", "config", "edit"}:
            return
        cand, ctr = self.store.candidate, self.store.counter
        nat = cand.data.get("nat") or {}
        rows = []
        for i, m in enumerate(nat.get("masquerade") or []):
            key = m.get("name") or f"masquerade-{m.get('out')}"
            c = ctr("masquerade", key)
            rows.append((f"{i}:{key}", (key, m.get("out"), m.get("family", "ipv4"), human_count(c.get("packets")),
                                        human_count(c.get("bytes")))))
        self.query_one("#masq", LiveTable).sync(rows)
        head = {f.get("name"): f for f in (cand.head.get("nat") or {}).get("forwards") or []}
        rows = []
        for i, f in enumerate(cand.forwards):
            n = f.get("name")
            mark = "" if head.get(n) == f else ("+" if n not in head else "~")
            c = ctr("forward", n)
            rows.append((f"{i}:{n}", (f"{n}{mark}", f.get("in"), f.get("proto", "tcp"), str(f.get("dport")),
                                      f.get("to"), join_list(f.get("src")) or "*",
                                      human_count(c.get("packets")) if n in head else "-")))
        self.query_one("#forwards", LiveTable).sync(rows)

    def action_masquerade(self) -> None:
        """Masquerade (and SNAT with :edit nat.snat) through the section editor."""
        from .sections import open_section

        key = self.query_one("#masq", LiveTable).current_key
        open_section(self.app, "nat.masquerade", key.split(":", 1)[0] if key and self.focused
                     is self.query_one("#masq", LiveTable) else None)

    def _index(self) -> int | None:
        key = self.query_one("#forwards", LiveTable).current_key
        return int(key.split(":", 1)[0]) if key else None

    def _edited(self) -> None:
        self.update_frame()
        self.refresh_view({"edit"})

    def _open_form(self, index: int | None) -> None:
        cand = self.store.candidate
        old = cand.forwards[index] if index is not None else None
        client = self.store.client

        def check(values):
            return check_item(client, cand, "nat.forwards", index, FORWARD_FIELDS, values, old)

        def done(values):
            if values is not None:
                new = item_from(FORWARD_FIELDS, values, old)
                cand.put("nat.forwards", index, new)
                self._edited()
                self.notify(f"forward {new.get('name')}: staged (6 to review and commit)")

        title = f"edit forward {old.get('name')}" if old else "add port forward"
        self.app.push_screen(FormScreen(title, fields_for(FORWARD_FIELDS, old or {"proto": "tcp"}), check), done)

