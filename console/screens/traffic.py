"""traffic: per-interface rx/tx graphs (1 s samples, last 5 minutes) and top talkers from conntrack."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from ..widgets import LineView, LiveTable, aligned_buckets, human_count, human_rate, sparkline
from .base import BaseView

TALKER_COLS = [("source", 15), ("flows", 5), ("peers", 5), ("packets", 7), ("bytes", 7)]


class TrafficView(BaseView):
    NAME = "traffic"
    DEFAULT_CSS = """
    TrafficView #graphs { height: 1fr; }
    TrafficView #graph, TrafficView #t-talkers { text-wrap: nowrap; text-overflow: ellipsis; }
    TrafficView #talkers { height: 8; }
    """

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="graphs"):
            yield LineView(overflow="crop", id="graph")
        yield Static("top talkers (conntrack)", classes="title", id="t-talkers")
        yield LiveTable(TALKER_COLS, id="talkers")

    def on_resize(self) -> None:
        self._draw_graphs()

    def _draw_graphs(self) -> None:
        # 400 graphs at 200 links: a line is made when it is in view, and again only when the data or the width moved.
        count, line = self._graphs()
        self.query_one("#graph", LineView).show(count, line, (id(self.store.history), self.size.width, self.app.plain))

    def refresh_view(self, changed: set[str]) -> None:
        if changed & {"history", "interfaces"}:
            self._draw_graphs()
        if "conntrack" in changed:
            ct = self.store.conntrack or {}
            rows = [(r["src"], (r["src"], str(r["flows"]), str(r["peers"]), human_count(r["packets"]),
                                human_count(r["bytes"]) + "B")) for r in ct.get("top", [])]
            self.query_one("#talkers", LiveTable).sync(rows)
            acct = "" if ct.get("accounting") else "; byte accounting off (nf_conntrack_acct=0)"
            self.query_one("#t-talkers", Static).update(f"top talkers (conntrack): {ct.get('total', 0)} flows{acct}")

    def _graphs(self):
        """One line per interface and direction: a graph as wide as the window (one column per
        second while the history fits, else a fixed number of seconds per column, aligned to the
        clock so bars stay put between redraws), then the current rate and the peak in bit/s.
        Returns the number of lines and a function that makes line i."""
        h = self.store.history or {}
        ifs = h.get("interfaces") or {}
        names = sorted(ifs)
        times = h.get("times") or []
        label_w = max([len(n) for n in ifs] + [4]) + 4
        width = max(10, self.size.width - 2 - label_w - 16 - 2)  # 2: the scrollbar
        plain = self.app.plain

        def line(i: int) -> Text:
            if i == 0:
                cols_step = aligned_buckets(times, [0.0] * len(times), width)[1] if times else 1
                secs = len(times)
                span = f"{secs // 60} min {secs % 60:02d} s" if secs >= 60 else f"{secs} s"
                return Text(f"last {span}, {cols_step} s per column; bit/s now / peak", style="dim")
            if not names:
                return Text("no samples yet", style="dim")
            name = names[(i - 1) // 2]
            d, style = (("rx", "green"), ("tx", "cyan"))[(i - 1) % 2]
            vals = ifs[name][d]
            cols, _step = aligned_buckets(times, vals, width)
            peak = max(vals, default=0)
            label = f"{name} {d}" if d == "rx" else f"{'':>{len(name)}} tx"
            t = Text(no_wrap=True, overflow="crop")
            t.append(f"{label:<{label_w}}", style="bold" if d == "rx" else "")
            t.append(sparkline(cols, width, plain, top=max(cols, default=0)), style=style)
            t.append(f" {human_rate(vals[-1] if vals else 0):>6} / {human_rate(peak):<6}")
            return t

        return 1 + max(1, 2 * len(names)), line
