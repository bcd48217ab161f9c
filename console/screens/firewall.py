"""firewall: rules (with live hit counters from nft), policies and zones; rules are edited in the candidate."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import ContentSwitcher, Static

from ..candidate import join_list
from ..forms import FormScreen
from ..widgets import LiveTable, human_count
from .base import BaseView
from .editing import RULE_FIELDS, ListEditing, check_item, fields_for, item_from

RULE_COLS = [("#", 3), ("name", 18, "key"), ("from", 7), ("to", 7), ("proto", 5), ("dport", 9), ("action", 6), ("hits", 7)]
POLICY_COLS = [("from", 10), ("to", 10), ("action", 8), ("log", 4), ("hits", 8), ("bytes", 8)]
ZONE_COLS = [("zone", 10), ("interfaces", 24), ("input", 7), ("forward", 7), ("in hits", 8), ("fwd hits", 8)]

ACTION_STYLE = {"accept": "green", "drop": "red", "reject": "yellow"}


def _action(a) -> Text:
    return Text(str(a or "-"), style=ACTION_STYLE.get(str(a), ""))


class FirewallView(ListEditing, BaseView):
    LIST_TABLE, LIST_PATH, LIST_NOUN = "rules", "rules", "rule"
    NAME = "firewall"
    BINDINGS = [
        Binding("r", "section('rules')", "rules"),
        Binding("p", "section('policies')", "policies"),
        Binding("z", "section('zones')", "zones"),
        Binding("a", "add", "add"),
        Binding("e", "edit", "edit"),
        Binding("d", "delete", "delete"),
        Binding("K", "move_up", "up", key_display="K"),
        Binding("J", "move_down", "down", key_display="J"),
        Binding("t", "trace", "trace"),
    ]

    def compose_body(self) -> ComposeResult:
        yield Static(id="sections", classes="hint")
        with ContentSwitcher(initial="rules", id="switch"):
            yield LiveTable(RULE_COLS, id="rules")
            yield LiveTable(POLICY_COLS, id="policies")
            yield LiveTable(ZONE_COLS, id="zones")

    def on_mount(self) -> None:
        self._show_sections()

    def _show_sections(self) -> None:
        cur = self.query_one(ContentSwitcher).current
        t = Text(" ")
        for key, name in (("r", "rules"), ("p", "policies"), ("z", "zones")):
            t.append(f"[{key}] {name}", style="bold reverse" if name == cur else "dim")
            t.append("  ")
        n = len(self.store.candidate.rules)
        t.append(f"{n} rule{'' if n == 1 else 's'}", style="dim")
        self.query_one("#sections", Static).update(t)

    def check_action(self, action: str, parameters) -> bool | None:
        ok = super().check_action(action, parameters)
        if not ok:
            return ok
        if action in ("move_up", "move_down"):
            return self.query_one(ContentSwitcher).current == "rules"
        return True

    def action_section(self, name: str) -> None:
        self.query_one(ContentSwitcher).current = name
        self.query_one(f"#{name}", LiveTable).focus()
        self._show_sections()
        self.refresh_bindings()

    # -- rows ----------------------------------------------------------------------------

    def rule_rows(self) -> list[tuple[str, tuple]]:
        cand = self.store.candidate
        head = {r.get("name"): r for r in cand.head.get("rules") or [] if isinstance(r, dict)}
        # A row is made again only when its rule, place, mark or counter changed: a move or an edit
        # rebuilds two rows of 1,000, and the table compares the others by identity. The rule is
        # kept as a copy (lists copied too) so an edit in place is seen as well.
        memo, seen = getattr(self, "_row_memo", {}), {}
        rows = []
        for i, r in enumerate(cand.rules):
            n = r.get("name")
            mark = "" if head.get(n) == r else ("+" if n not in head else "~")
            hits = self.store.counter("rule", n).get("packets") if n in head else None
            key = (i, mark, hits)
            hit = memo.get(key)
            if hit is None or hit[0] != r:
                hit = ({k: list(v) if isinstance(v, list) else v for k, v in r.items()}, self._rule_row(i, r, mark, hits))
            seen[key] = hit
            rows.append(hit[1])
        self._row_memo = seen
        return rows

    @staticmethod
    def _rule_row(i: int, r: dict, mark: str, hits) -> tuple[str, tuple]:
        n = r.get("name")
        name = Text(str(n), style="dim strike" if r.get("enabled") is False else "")
        dport = join_list(r.get("dport")) or (join_list(r.get("icmp_types")) if r.get("icmp_types") else "")
        # Keyed by position: a move or an edit updates cells in place instead of rebuilding 1,000 rows.
        return (str(i),
                (Text(f"{i + 1}{mark}", style="bold yellow" if mark else "dim"), name,
                 join_list(r.get("from")), join_list(r.get("to")), r.get("proto") or "any", dport or "*",
                 _action(r.get("action")), human_count(hits) if hits is not None else "-"))

    def policy_rows(self) -> list[tuple[str, tuple]]:
        rows = []
        for i, p in enumerate(self.store.candidate.data.get("policies") or []):
            key = p.get("name") or f"{p.get('from')}-{p.get('to')}"
            c = self.store.counter("policy", key)
            rows.append((f"{i}:{key}", (p.get("from"), p.get("to"), _action(p.get("action")),
                                        "yes" if p.get("log") else "", human_count(c.get("packets")),
                                        human_count(c.get("bytes")))))
        return rows

    def zone_rows(self) -> list[tuple[str, tuple]]:
        ctr = self.store.counter
        rows = []
        for z, d in (self.store.candidate.data.get("zones") or {}).items():
            d = d or {}
            rows.append((z, (z, join_list(d.get("interfaces")), _action(d.get("input", "drop")),
                             _action(d.get("forward", "drop")), human_count(ctr("zone", z, "input").get("packets")),
                             human_count(ctr("zone", z, "forward").get("packets")))))
        return rows

    def refresh_view(self, changed: set[str]) -> None:
        inputs = (self.store.candidate.generation, id(self.store.counters))
        if changed & {"counters", "config", "edit"} and inputs != getattr(self, "_inputs", None):
            self._inputs = inputs
            self.query_one("#rules", LiveTable).sync(self.rule_rows())
            self.query_one("#policies", LiveTable).sync(self.policy_rows())
            self.query_one("#zones", LiveTable).sync(self.zone_rows())
            self._show_sections()

    # -- editing -------------------------------------------------------------------------

    def _index(self) -> int | None:
        key = self.query_one("#rules", LiveTable).current_key
        return int(key) if key is not None else None

    def _edited(self, select: int | None = None) -> None:
        self.update_frame()
        self.refresh_view({"edit"})
        if select is not None:
            self.query_one("#rules", LiveTable).select_key(str(select))

    def _other_section(self, how: str) -> bool:
        """On the policies and zones tabs, a/e/d/enter edit those through the section editor."""
        from .sections import delete_entry, open_section

        cur = self.query_one(ContentSwitcher).current
        if cur == "rules":
            return False
        key = self.query_one(f"#{cur}", LiveTable).current_key
        entry = key.split(":", 1)[0] if key and cur == "policies" else key
        if how == "delete":
            if entry is not None:
                delete_entry(self.app, cur, entry, lambda: self.refresh_view({"edit"}))
        else:
            open_section(self.app, cur, entry if how == "edit" else None)
        return True

    def action_add(self) -> None:
        if not self._other_section("add"):
            super().action_add()

    def action_edit(self) -> None:
        if not self._other_section("edit"):
            super().action_edit()

    def action_delete(self) -> None:
        if not self._other_section("delete"):
            super().action_delete()

    def on_data_table_row_selected(self, event) -> None:
        if event.data_table.id in ("policies", "zones") and not self.read_only:
            event.stop()
            self._other_section("edit")
        else:
            super().on_data_table_row_selected(event)

    def _open_form(self, index: int | None) -> None:
        cand = self.store.candidate
        old = cand.rules[index] if index is not None else None
        item = old or {"from": "", "to": "", "proto": "tcp", "action": "drop"}
        client = self.store.client

        def check(values):
            return check_item(client, cand, "rules", index, RULE_FIELDS, values, old)

        def done(values):
            if values is None:
                return
            new = item_from(RULE_FIELDS, values, old)
            self._edited(cand.put("rules", index, new))
            self.notify(f"rule {new.get('name')}: staged (6 to review and commit)")

        title = f"edit rule {old.get('name')}" if old else "add rule"
        self.app.push_screen(FormScreen(title, fields_for(RULE_FIELDS, item), check), done)

    def _move(self, delta: int) -> None:
        i = self._index()
        if i is None:
            return
        cand = self.store.candidate
        j = cand.move("rules", i, delta)
        if j != i:
            self._edited(j)

    def action_trace(self) -> None:
        """The packet tracer; a selected rule pre-fills the ingress interface, protocol and port."""
        packet = None
        i = self._index() if self.query_one(ContentSwitcher).current == "rules" else None
        if i is not None and i < len(self.store.candidate.rules):
            r = self.store.candidate.rules[i]
            zones = self.store.candidate.data.get("zones") or {}
            frm = r.get("from") if isinstance(r.get("from"), list) else [r.get("from")]
            ifs = [n for z in frm for n in ((zones.get(z) or {}).get("interfaces") or [])]
            dport = r.get("dport")
            dport = dport[0] if isinstance(dport, list) and dport else dport
            if ifs:
                packet = {"iif": ifs[0], "proto": r.get("proto") if r.get("proto") in ("tcp", "udp", "icmp", "icmpv6")
                          else "tcp", "dport": dport if isinstance(dport, int) else None}
        if packet and getattr(self.app, "_last_trace", None):
            packet = {**self.app._last_trace, **{k: v for k, v in packet.items() if v is not None}}
        self.app.action_trace(packet)

    def action_move_up(self) -> None:
        self._move(-1)

    def action_move_down(self) -> None:
        self._move(1)
