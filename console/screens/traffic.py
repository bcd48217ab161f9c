"""traffic: per-interface rx/tx graphs (1 s samples, last 5 minutes) and top talkers from conntrack."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from ..widgets import LiveTable, human_count, human_rate, sparkline
from .base import BaseView

TALKER_COLS = [("source", 28), ("flows", 6), ("peers", 6), ("packets", 8), ("bytes", 8)]


class TrafficView(BaseView):
    NAME = "traffic"
    DEFAULT_CSS = """
    TrafficView #graphs { height: 1fr; }
    TrafficView #talkers { height: 8; }
    """

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="graphs"):
            yield Static(id="graph")
        yield Static("top talkers (conntrack)", classes="title", id="t-talkers")
        yield LiveTable(TALKER_COLS, id="talkers")

    def refresh_view(self, changed: set[str]) -> None:
        if changed & {"history", "interfaces"}:
            self.query_one("#graph", Static).update(self._graphs())
        if "conntrack" in changed:
            ct = self.store.conntrack or {}
            rows = [(r["src"], (r["src"], str(r["flows"]), str(r["peers"]), human_count(r["packets"]),
                                human_count(r["bytes"]))) for r in ct.get("top", [])]
            self.query_one("#talkers", LiveTable).sync(rows)
            acct = "" if ct.get("accounting") else "; byte accounting off (nf_conntrack_acct=0)"
            self.query_one("#t-talkers", Static).update(f"top talkers — {ct.get('total', 0)} flows{acct}")

    def _graphs(self) -> Text:
        h = self.store.history or {}
        ifs = h.get("interfaces") or {}
        width = max(20, self.size.width - 2 - 24)
        secs = len(h.get("times") or [])
        t = Text(no_wrap=True)
        t.append(f"last {secs // 60} min {secs % 60:02d} s, {width} columns; peak per row\n", style="dim")
        for name in sorted(ifs):
            for d, style in (("rx", "green"), ("tx", "cyan")):
                vals = ifs[name][d]
                peak = max(vals, default=0)
                label = f"{name} {d}" if d == "rx" else f"{'':>{len(name)}} tx"
                t.append(f"{label:<12}", style="bold" if d == "rx" else "")
                t.append(sparkline(vals, width, self.app.plain), style=style)
                t.append(f" {human_rate(vals[-1] if vals else 0):>5}/{human_rate(peak):<5}\n")
        if not ifs:
            t.append("no samples yet", style="dim")
        t.rstrip()
        return t
