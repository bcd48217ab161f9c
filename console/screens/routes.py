"""routes: the routing tables — connected, static and learned (BGP, OSPF, OSPFv3) routes per table,
from the kernel and, when FRR runs, the routes it learned but did not install, and on the summary
line the BGP peers and OSPF neighbors with their state (status.routing: the agent reads FRR every
few seconds, the console never does). Live: rows are diffed in place; ``/`` filters (by table,
kind, prefix, gateway, device)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from ..widgets import LiveTable
from .base import BaseView

# state: empty for a route in the kernel; "inactive" for one FRR learned and holds but did not
# install (another route to the prefix won: a connected one, a lower distance).
ROUTE_COLS = [("table", 5), ("kind", 9, "key"), ("destination", 18, "key"), ("via", 15, "key"), ("dev", 6),
              ("metric", 6), ("state", None)]
KIND_STYLE = {"connected": "cyan", "static": "", "bgp": "green", "ospf": "yellow", "ospfv3": "yellow",
              "kernel": "dim"}


def route_rows(routes: list[dict]) -> list[tuple[str, tuple]]:
    rows, seen = [], {}
    for r in routes:
        key = f"{r.get('table')}:{r.get('source')}:{r.get('dst')}:{r.get('kind')}:{r.get('gateway')}:{r.get('dev')}"
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            key += f":{seen[key]}"
        kind = str(r.get("kind") or "?")
        if r.get("source") == "frr":
            state = Text("inactive", style="dim") if not r.get("installed") else Text("active")
        else:
            state = Text("")
        metric = "" if r.get("metric") is None else str(r["metric"])
        rows.append((key, (str(r.get("table") or "?"), Text(kind, style=KIND_STYLE.get(kind, "")),
                           str(r.get("dst") or "?"), r.get("gateway") or "-", r.get("dev") or "-", metric, state)))
    return rows


def summary(doc: dict) -> Text:
    routes = doc.get("routes") or []
    counts: dict[str, int] = {}
    for r in routes:
        counts[r.get("kind") or "?"] = counts.get(r.get("kind") or "?", 0) + 1
    order = ["connected", "static", "bgp", "ospf", "ospfv3"]
    parts = [f"{counts[k]} {k}" for k in order if counts.get(k)]
    parts += [f"{v} {k}" for k, v in sorted(counts.items()) if k not in order]
    t = Text(f" {len(routes)} routes: " + (", ".join(parts) if parts else "none"), no_wrap=True, overflow="ellipsis")
    if doc.get("truncated"):
        t.append("   (list cut)", style="bold yellow")
    t.append("   FRR answering" if doc.get("frr") else "   FRR not running: kernel only", style="dim")
    return t


SESSION_STYLE = {"Established": "green", "Full": "green"}


def sessions_text(routing: dict | None) -> Text:
    """BGP peers and OSPF neighbors as the agent last read them (status.routing), one line."""
    t = Text()
    for s in (routing or {}).get("sessions") or []:
        state = str(s.get("state") or "?")
        t.append(f"   {s.get('protocol')} {s.get('peer')} ")
        t.append(state, style=SESSION_STYLE.get(state.split("/")[0], "bold yellow"))
        if s.get("accepted") is not None:
            t.append(f" {s['accepted']} accepted")
    return t


class RoutesView(BaseView):
    NAME = "routes"

    def compose_body(self) -> ComposeResult:
        yield Static(id="rt-summary", classes="hint")
        yield LiveTable(ROUTE_COLS, id="routes")

    def on_mount(self) -> None:
        self.query_one("#routes", LiveTable).focus()

    def refresh_view(self, changed: set[str]) -> None:
        if "routes" in changed or "status" in changed or not getattr(self, "_drawn", False):
            self._drawn = True
            doc = self.store.routes or {}
            self.query_one("#routes", LiveTable).sync(route_rows(doc.get("routes") or []))
            line = summary(doc)
            line.append_text(sessions_text((self.store.status or {}).get("routing")))
            self.query_one("#rt-summary", Static).update(line)
