"""interfaces: name, zone, state, MTU, live rx/tx and addresses; detail (counters, neighbours); edit."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from ..candidate import addr_words
from ..forms import Field, FormScreen, TextScreen
from ..widgets import LiveTable, human_count, human_rate
from .base import BaseView
from .editing import check_interface, interface_edit

COLUMNS = [("name", 10), ("zone", 7), ("state", 7, "key"), ("mtu", 5), ("rx", 7), ("tx", 7), ("addresses", None)]
STAGED_LEGEND = " * staged in the candidate, not live yet (6 to review and commit)"


def kind_line(conf: dict) -> str:
    """What an agent-made link is: ``vlan 10 on trunk0``, ``bridge: ports eth3, eth4 (vlan filtering)``."""
    kind = conf.get("kind")
    if kind == "vlan":
        return f"vlan {conf.get('id')} on {conf.get('link')}"
    if kind == "bridge":
        ports = conf.get("ports") or []
        ports = [ports] if isinstance(ports, str) else ports
        return (f"bridge: ports {', '.join(ports) or 'none'}"
                + (" (vlan filtering)" if conf.get("vlan_filtering") else ""))
    if kind == "bond":
        members = conf.get("members") or []
        members = [members] if isinstance(members, str) else members
        return f"bond {conf.get('mode') or 'active-backup'}: members {', '.join(members)}"
    return str(kind)


def staged(value) -> Text:
    """A value staged in the candidate: marked with '*' and in colour (the '*' reads on a VT100 too)."""
    return Text(f"{value}*", style="bold yellow")


class InterfacesView(BaseView):
    NAME = "interfaces"
    BINDINGS = [
        Binding("enter", "detail", "detail"),
        Binding("e", "edit", "edit"),
    ]

    DEFAULT_CSS = "InterfacesView #if-legend { display: none; } InterfacesView #if-legend.-shown { display: block; }"

    def compose_body(self) -> ComposeResult:
        yield Static(STAGED_LEGEND, classes="hint", id="if-legend")
        yield LiveTable(COLUMNS, id="ifaces")

    def rows(self) -> list[tuple[str, tuple]]:
        s = self.store
        cand = s.candidate
        configured = cand.data.get("interfaces") or {}
        seen = {}
        for i in s.interfaces:
            seen[i["name"]] = i
        names = list(configured) + sorted(n for n in seen if n not in configured)
        head = cand.head.get("interfaces") or {}
        head_zone = {i: z for z, zd in (cand.head.get("zones") or {}).items()
                     for i in ((zd or {}).get("interfaces") or [])}
        rows = []
        self._staged = False
        for n in names:
            i = seen.get(n)
            conf, hconf = configured.get(n) or {}, head.get(n) or {}
            state = i["state"] if i else "absent"
            st = Text(state, style="green" if state == "up" else "dim" if state == "unknown" else "bold red")
            # Live values come from the kernel; a value staged in the candidate (differs from HEAD)
            # shows the staged value with a '*' (legible without colour), never as the kernel's.
            if n in configured and conf.get("mtu") != hconf.get("mtu"):
                mtu = staged(conf.get("mtu") or "default")
            else:
                mtu = str((i or {}).get("mtu") or conf.get("mtu") or "-")
            zone = cand.zone_of(n)
            zone = staged(zone or "-") if n in configured and zone != head_zone.get(n) else zone or "-"
            want = addr_words(conf.get("ipv4")) + addr_words(conf.get("ipv6"))
            if n in configured and want != addr_words(hconf.get("ipv4")) + addr_words(hconf.get("ipv6")):
                addrs = staged(" ".join(want) or "none")
            elif i:
                addrs = " ".join((i.get("ipv4") or []) + (i.get("ipv6") or []))
            else:
                addrs = " ".join(want)
            name = staged(n) if n in configured and n not in head else n
            self._staged = self._staged or any(isinstance(c, Text) and c.plain.endswith("*")
                                               for c in (name, zone, mtu, addrs))
            rows.append((n, (name, zone, st, mtu, human_rate((i or {}).get("rx_rate")),
                             human_rate((i or {}).get("tx_rate")), addrs)))
        return rows

    def refresh_view(self, changed: set[str]) -> None:
        if changed & {"interfaces", "config", "edit"}:
            self.query_one(LiveTable).sync(self.rows())
            self.query_one("#if-legend", Static).set_class(self._staged, "-shown")

    def _current(self) -> str | None:
        return self.query_one(LiveTable).current_key

    def on_data_table_row_selected(self, event) -> None:
        event.stop()
        self.action_detail()

    def action_detail(self) -> None:
        name = self._current()
        if name:
            self._detail(name)

    @work(thread=True, exclusive=True, group="detail")
    def _detail(self, name: str) -> None:
        try:
            neigh = [n.model_dump() for n in self.store.client.neighbours() if n.dev == name]
        except Exception as e:  # noqa: BLE001 - shown in the view
            neigh = [{"dst": f"(neighbours unavailable: {e})", "lladdr": "", "state": ""}]
        self.app.call_from_thread(self._show_detail, name, neigh)

    def _show_detail(self, name: str, neigh: list[dict]) -> None:
        i = next((x for x in self.store.interfaces if x["name"] == name), None)
        conf = (self.store.candidate.data.get("interfaces") or {}).get(name) or {}
        t = Text()
        t.append(f"{name}", style="bold")
        t.append(f"  zone {self.store.candidate.zone_of(name) or '-'}  {conf.get('description') or ''}\n")
        if (conf.get("kind") or "ethernet") != "ethernet":
            t.append(kind_line(conf) + "\n")
        hconf = (self.store.candidate.head.get("interfaces") or {}).get(name) or {}
        if conf.get("mtu") != hconf.get("mtu"):
            t.append(f"staged: mtu {conf.get('mtu') or 'default'} (live {(i or {}).get('mtu') or '-'})\n",
                     style="bold yellow")
        for fam in ("ipv4", "ipv6"):
            if addr_words(conf.get(fam)) != addr_words(hconf.get(fam)):
                live = " ".join((i or {}).get(fam) or []) or "none"
                t.append(f"staged: {fam} {' '.join(addr_words(conf.get(fam))) or 'none'} (live {live})\n",
                         style="bold yellow")
        if i:
            t.append(f"state {i['state']}  mtu {i.get('mtu')}  mac {i.get('mac') or '-'}\n")
            t.append(f"addresses {' '.join(i.get('ipv4', []) + i.get('ipv6', [])) or '-'}\n\n")
            c = i.get("counters") or {}
            t.append("counters\n", style="bold")
            for d in ("rx", "tx"):
                t.append(f"  {d}  bytes {human_count(c.get(d + '_bytes')):>8}  packets {human_count(c.get(d + '_packets')):>8}"
                         f"  errors {c.get(d + '_errors', 0)}  dropped {c.get(d + '_dropped', 0)}\n")
        else:
            t.append("not present on the box\n")
        t.append("\nneighbours\n", style="bold")
        for n in neigh:
            t.append(f"  {n.get('dst') or '':<28} {n.get('lladdr') or '-':<18} {n.get('state') or ''}\n")
        if not neigh:
            t.append("  none\n", style="dim")
        self.app.push_screen(TextScreen(f"interface {name}", t))

    def action_edit(self) -> None:
        name = self._current()
        if not name:
            return
        cand = self.store.candidate
        conf = (cand.data.get("interfaces") or {}).get(name) or {}
        fields = [Field("ipv4", "ipv4", ", ".join(addr_words(conf.get("ipv4"))), "192.168.10.1/24, …"),
                  Field("ipv6", "ipv6", ", ".join(addr_words(conf.get("ipv6"))), "2001:db8::1/64, …"),
                  Field("mtu", "mtu", str(conf.get("mtu") or ""), "1500 (empty: default)"),
                  Field("zone", "zone", cand.zone_of(name) or "", "wan | lan | …")]
        client = self.store.client

        def check(values):
            return check_interface(client, cand, name, values)

        def done(values):
            if values is None:
                return
            data, _ = interface_edit(cand, name, values)
            cand.replace(data)
            self.update_frame()
            self.refresh_view({"edit"})
            self.notify(f"{name}: staged in the candidate (6 to review and commit)")

        self.app.push_screen(FormScreen(f"edit interface {name}", fields, check), done)
