"""dashboard: hostname, HEAD/applied, pending confirm, WAN state, per-interface sparklines, problems."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from ..widgets import LineView, aligned_buckets, human_rate, sparkline
from .base import BaseView


class DashboardView(BaseView):
    NAME = "dashboard"
    DEFAULT_CSS = """
    DashboardView #summary, DashboardView #sparks, DashboardView #problems { text-wrap: nowrap;
        text-overflow: ellipsis; }
    DashboardView #summary { height: auto; padding: 0 1; }
    DashboardView #sparks { height: auto; padding: 0 1; }
    DashboardView #problems { height: auto; padding: 0 1; }
    """

    def compose_body(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(id="summary")
            yield Static("traffic, last minute: rx | tx in bit/s", classes="title", id="t-sparks")
            yield LineView(id="sparks")
            yield Static("problems", classes="title")
            yield Static(id="problems")

    def refresh_view(self, changed: set[str]) -> None:
        s = self.store
        st = s.status or {}
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append("host     ", style="dim")
        t.append(f"{st.get('hostname') or '?'}", style="bold")
        t.append(f"   agent pid {st.get('pid', '-')}\n", style="dim")
        t.append("HEAD     ", style="dim")
        t.append(f"{(st.get('head') or '-')[:12]}")
        t.append("   applied ", style="dim")
        t.append(f"{(st.get('applied') or '-')[:12]}")
        t.append("  in sync\n" if st.get("in_sync") else "  DIFFERS from HEAD\n",
                 style="green" if st.get("in_sync") else "bold red")
        cd = s.confirm_countdown()
        if cd is not None:
            t.append("confirm  ", style="dim")
            t.append(f"{(st['confirm'].get('rev') or '')[:12]} rolls back in {cd} s unless confirmed",
                     style="bold reverse")
            t.append("" if s.read_only else "  C keeps it", style="bold")
            t.append("\n")
        t.append("WAN      ", style="dim")
        t.append_text(self._wan())
        if s.candidate.dirty:
            t.append("\ncandidate", style="dim")
            t.append(f" {len(s.candidate.changes())} change(s) staged — 6 or :changes to review and commit",
                     style="yellow")
        self.query_one("#summary", Static).update(t)
        self._show_sparks()
        self.query_one("#problems", Static).update(self._problems())

    def _wan(self) -> Text:
        s = self.store
        wans = (s.status or {}).get("wans") or {}
        if wans:  # multi-WAN: each member's health (backend/agent/wan.py)
            t = Text()
            for name, w in wans.items():
                t.append(f"{name} ", style="bold")
                t.append(f"({w.get('interface')}) ", style="dim")
                st = w.get("state") or "?"
                t.append(st, style="green" if w.get("healthy") else "bold red")
                if w.get("active"):
                    t.append(" active", style="bold")
                rtt, loss = w.get("rtt_ms"), w.get("loss_pct")
                t.append(f" rtt {'-' if rtt is None else f'{rtt:.1f}ms'} loss {'-' if loss is None else f'{loss:.0f}%'}  ")
            return t
        zones = s.candidate.head.get("zones") or {}
        wan_ifs = (zones.get("wan") or {}).get("interfaces") or []
        byname = {i["name"]: i for i in s.interfaces}
        t = Text()
        if not wan_ifs:
            return Text("no wan zone", style="dim")
        for n in wan_ifs:
            i = byname.get(n)
            if i is None:
                t.append(f"{n} missing ", style="bold red")
                continue
            up = i["state"] == "up"
            t.append(f"{n} ", style="bold")
            t.append(i["state"], style="green" if up else "bold red")
            addrs = (i.get("ipv4") or [])[:1] + (i.get("ipv6") or [])[:1]
            t.append(f" {' '.join(addrs)}  rx {human_rate(i.get('rx_rate'))} tx {human_rate(i.get('tx_rate'))}  ")
        return t

    def on_resize(self) -> None:
        self._show_sparks()

    def _show_sparks(self) -> None:
        """One line per interface, made only when scrolled into view (200 links: 400 graphs), and
        only again when the history or the width changed."""
        hist = self.store.recent or self.store.history or {}  # (the traffic screen's, until the first poll)
        h = hist.get("interfaces") or {}
        names = sorted(h)
        times = (hist.get("times") or [])[-60:]
        name_w = max([len(n) for n in h] + [4]) + 1
        width = max(8, (self.size.width - 2 - 2 - name_w - 3 - 2 * 7) // 2)
        plain = self.app.plain

        def line(i: int) -> Text:
            if not names:
                return Text("no samples yet", style="dim")
            name = names[i]
            t = Text(no_wrap=True)
            rx, tx = h[name]["rx"][-60:], h[name]["tx"][-60:]
            t.append(f"{name:<{name_w}}", style="bold")
            cols = aligned_buckets(times, rx, width)[0]  # columns fixed to the clock: no shifting bars
            t.append(sparkline(cols, width, plain, top=max(cols, default=0)), style="green")
            t.append(f"{human_rate(rx[-1] if rx else 0):>7}")
            t.append(" | ")
            cols = aligned_buckets(times, tx, width)[0]
            t.append(sparkline(cols, width, plain, top=max(cols, default=0)), style="cyan")
            t.append(f"{human_rate(tx[-1] if tx else 0):>7}")
            return t

        self.query_one("#sparks", LineView).show(max(1, len(names)), line, (id(hist), width, plain))

    def _problems(self) -> Text:
        s = self.store
        st = s.status or {}
        items: list[tuple[str, str]] = []
        if st.get("last_error"):
            items.append(("error", st["last_error"]))
        drift = st.get("last_drift")
        if drift:
            when = time.strftime("%H:%M:%S", time.localtime(drift.get("time") or 0))
            drift_items = drift.get("items") or []
            what = "; ".join(drift_items[:3]) + (f"; … {len(drift_items) - 3} more" if len(drift_items) > 3 else "")
            items.append(("drift", f"{when} repaired {drift.get('repaired', 0)} change(s): {what}"))
        rb = s.auto_rollback
        if rb:
            when = time.strftime("%H:%M:%S", time.localtime(rb.get("time") or 0))
            items.append(("error", f"{when} commit {(rb['rev'] or '?')[:8]} not confirmed in time: rolled back "
                                   f"(HEAD {(rb['to'] or '?')[:8]})"))
        if st and not st.get("in_sync", True):
            items.append(("warning", "the applied revision differs from HEAD"))
        configured = s.candidate.head.get("interfaces") or {}
        byname = {i["name"]: i for i in s.interfaces}
        for n, d in configured.items():
            i = byname.get(n)
            if (d or {}).get("enabled", True) and i is not None and i["state"] not in ("up", "unknown"):
                items.append(("warning", f"interface {n} is {i['state']}"))
            elif i is None and s.interfaces:
                items.append(("warning", f"interface {n} is configured but absent"))
        for p in s.problems:
            items.append((p.get("severity", "error"), f"candidate {p['path']}: {p['message']}"))
        if s.error:
            items.append(("warning", s.error))
        t = Text(no_wrap=True, overflow="ellipsis")
        for sev, msg in items[-8:]:
            t.append(f"{sev:<8}", style="bold red" if sev == "error" else "bold magenta" if sev == "drift" else "yellow")
            t.append(f"{msg}\n")
        if not items:
            t.append("none", style="green")
        t.rstrip()
        return t
