"""leases: DHCPv4 and DHCPv6 leases from Kea (live, with expiry countdown); make a reservation in the candidate."""

from __future__ import annotations

import re

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from ..candidate import dump
from ..forms import Field, FormScreen
from ..widgets import LiveTable
from .base import BaseView
from .editing import item_from, map_problems

COLUMNS = [("address", 20), ("  hostname", 11), ("if", 6), ("state", 8), ("expiry", 6), ("MAC / DUID", None)]
STATE_STYLE = {"active": "green", "declined": "bold red", "expired": "dim"}
RES_FIELDS = {4: [("name", "name", "laptop (one DNS label)"), ("mac", "mac", "02:00:00:00:10:65"),
                  ("ipv4", "ipv4", "192.168.10.50")],
              6: [("name", "name", "laptop (one DNS label)"), ("duid", "duid", "00:01:00:01:…"),
                  ("ipv6", "ipv6", "2001:db8:10:10::50")]}


def countdown(seconds: float) -> str:
    s = int(seconds)
    if s <= 0:
        return "expired"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def label_of(hostname: str | None) -> str:
    """'Anna's Phone.lan' → 'anna-s-phone' (a DNS label, as reservation names are)."""
    first = (hostname or "").split(".")[0].lower()
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", first)).strip("-")[:63]


def reservations(data: dict) -> dict[tuple[str, str], tuple[str, int]]:
    """(mac|duid, lowercase id) → (interface, index) for every reservation in a document's dhcp section."""
    out = {}
    for ifname, scope in ((data or {}).get("dhcp") or {}).items():
        for i, r in enumerate((scope or {}).get("reservations") or []):
            for key in ("mac", "duid"):
                if r.get(key):
                    out[(key, str(r[key]).lower())] = (ifname, i)
    return out


def find_reservation(data: dict, ifname: str, key: str, ident: str, name: str) -> tuple[int | None, dict | None]:
    """The reservation to edit: the one with this MAC/DUID, else one of this name without one (merge v4+v6)."""
    res = (((data.get("dhcp") or {}).get(ifname) or {}).get("reservations")) or []
    for i, r in enumerate(res):
        if ident and str(r.get(key) or "").lower() == ident.lower():
            return i, r
    for i, r in enumerate(res):
        if name and r.get("name") == name and not r.get(key):
            return i, r
    return None, None


def lease_ident(lease: dict) -> tuple[str, str | None]:
    return ("mac", lease.get("hwaddr")) if lease.get("family") == 4 else ("duid", lease.get("duid"))


class LeasesView(BaseView):
    NAME = "leases"
    BINDINGS = [
        Binding("r", "reserve", "reserve"),
        Binding("p", "pool", "pool"),
    ]

    def compose_body(self) -> ComposeResult:
        yield Static(id="summary", classes="hint")
        yield LiveTable(COLUMNS, id="leases")

    def on_mount(self) -> None:
        self.query_one("#leases", LiveTable).focus()

    def rows(self) -> list[tuple[str, tuple]]:
        s = self.store
        now = s.clock()
        head, cand = reservations(s.candidate.head), reservations(s.candidate.data)
        rows = []
        for lease in s.leases:
            key, ident = lease_ident(lease)
            k = (key, (ident or "").lower())
            mark = ("R ", "bold") if k in head else ("+ ", "bold yellow") if k in cand else ("  ", "")
            host = Text(mark[0], style=mark[1])
            host.append(lease.get("hostname") or "-", style="" if lease.get("hostname") else "dim")
            state = lease.get("state") or "?"
            exp = countdown(lease["expires"] - now) if lease.get("expires") and state == "active" else "-"
            addr = lease["address"] + (f"/{lease['prefix_len']}" if lease.get("type") == "prefix" else "")
            rows.append((f"{lease['family']}:{addr}",
                         (addr, host, lease.get("interface") or "?",
                          Text(state, style=STATE_STYLE.get(state, "")), exp, ident or "-")))
        return rows

    def refresh_view(self, changed: set[str]) -> None:
        if not changed & {"leases", "status", "config", "edit"}:
            return
        table = self.query_one("#leases", LiveTable)
        table.sync(self.rows())
        ls = self.store.leases
        v4 = sum(1 for x in ls if x.get("family") == 4)
        t = Text(f" {v4} DHCPv4 and {len(ls) - v4} DHCPv6 leases", no_wrap=True, overflow="ellipsis")
        t.append("   R reserved, + staged", style="dim")
        if not ls:
            t.append("   (none: is DHCP configured, under dhcp: in router.yaml?)", style="dim")
        self.query_one("#summary", Static).update(t)

    def action_pool(self) -> None:
        """The DHCP scope of the selected lease's interface (pools and options) in the section editor."""
        from .sections import open_section

        lease = self._lease()
        scopes = list(self.store.candidate.data.get("dhcp") or {})
        ifname = (lease or {}).get("interface") or (scopes[0] if scopes else None)
        if ifname is None:
            open_section(self.app, "dhcp")
            return
        fam = (lease or {}).get("family", 4)
        open_section(self.app, f"dhcp.{ifname}.ipv{6 if fam == 6 else 4}")

    def _lease(self) -> dict | None:
        key = self.query_one("#leases", LiveTable).current_key
        for lease in self.store.leases:
            addr = lease["address"] + (f"/{lease['prefix_len']}" if lease.get("type") == "prefix" else "")
            if f"{lease['family']}:{addr}" == key:
                return lease
        return None

    def on_data_table_row_selected(self, event) -> None:
        event.stop()
        if not self.read_only:
            self.action_reserve()

    # -- make a reservation (staged in the candidate; nothing reaches Kea until commit) --------

    def action_reserve(self) -> None:
        lease = self._lease()
        if lease is None:
            return
        if lease.get("type") == "prefix":
            self.notify("a delegated prefix cannot be reserved here", severity="warning")
            return
        fam = lease["family"]
        key, ident = lease_ident(lease)
        addr_key = "ipv4" if fam == 4 else "ipv6"
        spec = RES_FIELDS[fam]
        cand = self.store.candidate
        name = label_of(lease.get("hostname"))
        ifname0 = lease.get("interface") or ""
        _, old = find_reservation(cand.data, ifname0, key, ident or "", name)
        values0 = {"name": (old or {}).get("name") or name, key: ident or "", addr_key: lease["address"]}
        fields = [Field("interface", "interface", ifname0, "the DHCP scope: lan0")]
        fields += [Field(k, label, str(values0.get(k) or ""), ph) for k, label, ph in spec]
        client = self.store.client

        def target(values):
            ifname = values.get("interface", "").strip()
            idx, prev = find_reservation(cand.data, ifname, key, values.get(key, "").strip(),
                                         values.get("name", "").strip())
            return ifname, idx, prev, item_from(spec, values, prev)

        def check(values):
            ifname, idx, prev, item = target(values)
            if not ifname:
                return {"interface": ["the interface whose DHCP scope gets the reservation"]}, []
            path = ("dhcp", ifname, "reservations")
            data = cand.with_item(path, idx, item)
            pos = idx if idx is not None else len(data["dhcp"][ifname]["reservations"]) - 1
            problems = [p.model_dump() for p in client.validate(dump(data)).problems]
            by, general = map_problems(problems, f"dhcp.{ifname}.reservations[{pos}]", {k for k, _, _ in spec})
            for p in problems:
                if p.get("severity", "error") != "error":
                    continue
                if p["path"] == f"dhcp.{ifname}":
                    by.setdefault("interface", []).append(p["message"])
                elif p["path"].startswith("dns.domain"):
                    general.append(f"{p['path']}: {p['message']}")
            return by, general

        def done(values):
            if values is None:
                return
            ifname, idx, prev, item = target(values)
            cand.put(("dhcp", ifname, "reservations"), idx, item)
            self.update_frame()
            self.refresh_view({"edit"})
            self.notify(f"reservation {item.get('name')} {item.get(addr_key)} on {ifname}: "
                        f"{'updated' if prev else 'staged'} (6 to review and commit)")

        title = f"reserve {lease['address']} for {ident or '?'} (staged in the candidate)"
        self.app.push_screen(FormScreen(title, fields, check), done)
