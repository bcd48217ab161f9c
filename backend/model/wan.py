"""Multi-WAN (``wans:``) and policy routing (``routing.tables``, ``rules[].route_via`` / ``table``).

Structure here; checks that need the whole document in :func:`check_wans`; the marks and routing
tables every WAN and table gets in :func:`plan_marks` (one place, used by the nft renderer
``backend/render/pbr.py``, the rules applier ``backend/host/rules.py`` and the health checker
``backend/agent/wan.py``).

Marks: bits 16-23 of the packet/conntrack mark (``MARK_MASK``) carry a WAN's or a table's id;
bit 24 (``PROBE_BIT``) marks the health probes, whose ``ip rule`` stays while the WAN is down.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from .base import IfName, Name, Strict, listify, route_gateway

MARK_SHIFT = 16
MARK_MASK = 0xFF << MARK_SHIFT
PROBE_BIT = 1 << 24
RESERVED_TABLES = {0: "unspec", 253: "default", 254: "main", 255: "local"}
TABLE_MAX = 2**31 - 1
DEFAULT_TABLE = 200  # wans.table: where the failover/balance default routes live
AUTO_TABLE_BASE = 100


def _target_addr(v: str) -> tuple[ipaddress._BaseAddress, int | None]:
    """'ADDR', 'ADDR:PORT' or '[V6]:PORT'."""
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d+))?|([0-9.]+)(?::(\d+))?|([0-9A-Fa-f:]+)", v.strip())
    if not m:
        raise ValueError(f"invalid target {v!r}: expected ADDR, ADDR:PORT or [V6ADDR]:PORT")
    addr = ipaddress.ip_address(m.group(1) or m.group(3) or m.group(5))
    port = m.group(2) or m.group(4)
    if port is not None and not 1 <= int(port) <= 65535:
        raise ValueError(f"port {port} out of range 1-65535")
    return addr, int(port) if port else None


class Target(Strict):
    """One health-check target: exactly one of icmp (an address), tcp ('ADDR:PORT', a connect) or
    http ('http://ADDR[:PORT]/PATH', a GET answered with a status below 400)."""

    icmp: str | None = None
    tcp: str | None = None
    http: str | None = None

    @model_validator(mode="after")
    def _one(self):
        given = [k for k in ("icmp", "tcp", "http") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a target is exactly one of icmp, tcp, http")
        if self.icmp is not None:
            addr, port = _target_addr(self.icmp)
            if port is not None:
                raise ValueError("an icmp target has no port")
        elif self.tcp is not None:
            addr, port = _target_addr(self.tcp)
            if port is None:
                raise ValueError("a tcp target needs a port (ADDR:PORT)")
        else:
            m = re.fullmatch(r"http://(\[[0-9A-Fa-f:.]+\]|[0-9.]+)(?::(\d+))?(/[!-~]*)?", self.http or "")
            if not m:
                raise ValueError(f"invalid http target {self.http!r}: expected http://ADDR[:PORT]/PATH "
                                 "(an address, not a name: a name would need DNS through that WAN)")
            _target_addr(m.group(1) + (f":{m.group(2)}" if m.group(2) else ""))
        return self

    @property
    def kind(self) -> str:
        return "icmp" if self.icmp is not None else "tcp" if self.tcp is not None else "http"

    @property
    def address(self) -> ipaddress._BaseAddress:
        if self.http is not None:
            m = re.fullmatch(r"http://(\[[0-9A-Fa-f:.]+\]|[0-9.]+)(?::(\d+))?(/.*)?", self.http)
            return ipaddress.ip_address(m.group(1).strip("[]"))
        return _target_addr(self.icmp or self.tcp)[0]

    @property
    def port(self) -> int | None:
        if self.http is not None:
            m = re.fullmatch(r"http://(\[[0-9A-Fa-f:.]+\]|[0-9.]+)(?::(\d+))?(/.*)?", self.http)
            return int(m.group(2) or 80)
        return _target_addr(self.tcp)[1] if self.tcp else None

    @property
    def path(self) -> str:
        m = re.fullmatch(r"http://[^/]+(/.*)?", self.http or "")
        return (m.group(1) if m else None) or "/"

    def label(self) -> str:
        return f"{self.kind}:{self.icmp or self.tcp or self.http}"


class HealthCheck(Strict):
    """How a WAN is judged. A round probes every target at once; it passes when at least ``need``
    targets answered within ``timeout``. The WAN goes down after ``down_after`` failed rounds in a
    row, or when the loss over the last ``window`` rounds' probes exceeds ``max_loss`` percent, or
    when their median RTT exceeds ``max_rtt`` ms. A down WAN takes traffic back only after
    ``up_after`` passing rounds in a row and ``hold_down`` seconds without a failed round."""

    targets: Annotated[list[Target], BeforeValidator(listify)] = Field(min_length=1, max_length=8)
    interval: float = Field(1.0, ge=0.1, le=300, description="Seconds between rounds.")
    timeout: float = Field(1.0, ge=0.05, le=30, description="Seconds a probe may take.")
    need: int = Field(1, ge=1, le=8, description="Targets that must answer for a round to pass.")
    down_after: int = Field(3, ge=1, le=100)
    up_after: int = Field(3, ge=1, le=100)
    hold_down: float = Field(10.0, ge=0, le=3600, description="Seconds of stable recovery before failback.")
    window: int = Field(10, ge=1, le=100, description="Rounds the loss and RTT are computed over.")
    max_loss: float = Field(50.0, ge=0, le=100, description="Percent of lost probes that makes the WAN fail.")
    max_rtt: float | None = Field(None, gt=0, le=60000, description="Median RTT (ms) that makes the WAN fail.")

    @model_validator(mode="after")
    def _consistent(self):
        if self.timeout > self.interval * 4:
            raise ValueError("timeout longer than 4 intervals: rounds would pile up")
        if self.need > len(self.targets):
            raise ValueError(f"need {self.need} but only {len(self.targets)} target(s)")
        return self


def _gateway(v):
    if v is None or v == "dhcp":
        return v
    if isinstance(v, str):
        try:
            return ipaddress.IPv4Address(v)
        except ValueError:
            raise ValueError(f"invalid gateway {v!r}: an IPv4 address or 'dhcp'") from None
    return v


class WanMember(Strict):
    interface: IfName
    gateway: Annotated[ipaddress.IPv4Address | Literal["dhcp"] | None, BeforeValidator(_gateway)] = Field(
        None, description="IPv4 next hop, or 'dhcp' (the gateway the interface's DHCP client learned).")
    gateway6: ipaddress.IPv6Address | None = Field(None, description="IPv6 next hop.")
    weight: int = Field(1, ge=1, le=256, description="Share of new connections in balance mode.")
    priority: int = Field(1, ge=1, le=255, description="Failover order: the lowest healthy priority carries "
                                                        "the traffic (ties share it by weight).")
    mark: int | None = Field(None, ge=1, le=255, description="Mark id (bits 16-23 of the mark); default: automatic.")
    table: int | None = Field(None, ge=1, le=TABLE_MAX, description="Routing table; default: automatic from 100.")
    masquerade: Literal["ipv4", "ipv6", "any", "none"] = Field(
        "ipv4", description="Masquerade what leaves this WAN (per WAN: each uplink's own address).")
    check: HealthCheck | None = Field(None, description="Health check; none: always healthy.")

    @model_validator(mode="after")
    def _gw(self):
        if self.gateway is None and self.gateway6 is None:
            raise ValueError("a WAN member needs gateway and/or gateway6")
        return self


class Wans(Strict):
    mode: Literal["failover", "balance"] = "failover"
    table: int = Field(DEFAULT_TABLE, ge=1, le=TABLE_MAX, description="Table of the active default routes.")
    members: dict[Name, WanMember] = Field(min_length=1, max_length=16)


class TableRoute(Strict):
    to: Annotated[str, BeforeValidator(lambda v: "0.0.0.0/0" if v == "default" else v)]
    via: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    interface: IfName | None = None

    @field_validator("to")
    @classmethod
    def _net(cls, v):
        try:
            return str(ipaddress.ip_network(v, strict=True))
        except ValueError as e:
            raise ValueError(f"invalid prefix {v!r}: {e}") from None

    @model_validator(mode="after")
    def _gw(self):
        return route_gateway(self)


class RoutingTable(Strict):
    id: int = Field(ge=1, le=TABLE_MAX)
    mark: int | None = Field(None, ge=1, le=255, description="Mark id rules use to reach it; default: automatic.")
    routes: list[TableRoute] = Field(default_factory=list, max_length=1000)


# -- marks and tables ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    """What one WAN member or routing table gets in the kernel."""

    name: str
    kind: str          # "wan" | "table"
    mark_id: int
    table: int

    @property
    def mark(self) -> int:
        return self.mark_id << MARK_SHIFT


def plan_marks(cfg) -> dict[str, Slot]:
    """{"wan:NAME" | "table:NAME": Slot}. Explicit marks and tables are kept; automatic ones take
    the lowest free values (marks from 1, WAN tables from 100), skipping reserved tables."""
    wans = cfg.wans.members if cfg.wans else {}
    tables = cfg.routing.tables if cfg.routing else {}
    used_marks = {m.mark for m in wans.values() if m.mark} | {t.mark for t in tables.values() if t.mark}
    used_tables = {m.table for m in wans.values() if m.table} | {t.id for t in tables.values()}
    if cfg.wans:
        used_tables.add(cfg.wans.table)

    def next_free(used: set[int], start: int, skip=()) -> int:
        n = start
        while n in used or n in skip:
            n += 1
        used.add(n)
        return n

    out: dict[str, Slot] = {}
    for name, m in wans.items():
        mark = m.mark or next_free(used_marks, 1)
        table = m.table or next_free(used_tables, AUTO_TABLE_BASE, RESERVED_TABLES)
        out[f"wan:{name}"] = Slot(name, "wan", mark, table)
    for name, t in tables.items():
        out[f"table:{name}"] = Slot(name, "table", t.mark or next_free(used_marks, 1), t.id)
    return out


def route_target(cfg, rule) -> Slot | None:
    """The Slot a rule's route_via / table sends its traffic to (None: no policy routing)."""
    slots = plan_marks(cfg)
    if rule.route_via:
        return slots.get(f"wan:{rule.route_via}")
    if rule.table is not None:
        t = str(rule.table)
        if f"table:{t}" in slots:
            return slots[f"table:{t}"]
        for s in slots.values():
            if s.kind == "table" and str(s.table) == t:
                return s
    return None


def gateway_of(member: WanMember, facts=None):
    """The member's IPv4 gateway: the configured one, or the DHCP-learned one from the facts
    (``facts.gateways[interface]``, when a DHCP client provides it), else None."""
    if member.gateway != "dhcp":
        return member.gateway
    learned = getattr(facts, "gateways", None) or {}
    for g in learned.get(member.interface, ()) if not isinstance(learned.get(member.interface), str) else [
            learned.get(member.interface)]:
        try:
            a = ipaddress.ip_address(g)
        except ValueError:
            continue
        if a.version == 4:
            return a
    return None


# -- checks -------------------------------------------------------------------------------------


def check_wans(cfg) -> list:
    from .problem import Problem

    p: list = []
    ifaces = set(cfg.interfaces)
    wans = cfg.wans.members if cfg.wans else {}
    tables = cfg.routing.tables if cfg.routing else {}
    own_addrs = {a.ip for itf in cfg.interfaces.values() for a in [*itf.ipv4, *itf.ipv6]}

    gw_seen: dict[str, str] = {}
    if_seen: dict[str, str] = {}
    for name, m in wans.items():
        base = f"wans.members.{name}"
        if m.interface not in ifaces:
            p.append(Problem(f"{base}.interface", f"unknown interface {m.interface!r}"))
        elif m.interface in if_seen:
            p.append(Problem(f"{base}.interface", f"interface {m.interface!r} is already WAN member "
                                                  f"{if_seen[m.interface]!r}"))
        else:
            if_seen[m.interface] = name
        itf = cfg.interfaces.get(m.interface)
        for fld, gw in (("gateway", m.gateway), ("gateway6", m.gateway6)):
            if gw is None or gw == "dhcp":
                continue
            key = str(gw)
            if key in gw_seen:
                p.append(Problem(f"{base}.{fld}", f"gateway {gw} is also the gateway of WAN {gw_seen[key]!r}: "
                                                  "two WANs need two next hops"))
            gw_seen.setdefault(key, name)
            if gw in own_addrs:
                p.append(Problem(f"{base}.{fld}", f"gateway {gw} is one of the router's own addresses"))
            elif itf is not None:
                nets = [a.network for a in [*itf.ipv4, *itf.ipv6] if a.version == gw.version]
                if nets and not any(gw in n for n in nets) and not (gw.version == 6 and gw.is_link_local):
                    p.append(Problem(f"{base}.{fld}", f"gateway {gw} is not on {m.interface}'s subnet "
                                                      f"({', '.join(map(str, nets))})"))
        if m.check:
            for j, t in enumerate(m.check.targets):
                if (t.address.version == 4 and m.gateway is None) or (t.address.version == 6 and m.gateway6 is None):
                    p.append(Problem(f"{base}.check.targets[{j}]", f"an IPv{t.address.version} target needs "
                                                                    f"{'gateway' if t.address.version == 4 else 'gateway6'}"))
    # explicit marks and tables: never two users of one, never a reserved table
    marks: dict[int, str] = {}
    tabs: dict[int, str] = {}
    if cfg.wans:
        tabs[cfg.wans.table] = "wans.table"
        if cfg.wans.table in RESERVED_TABLES:
            p.append(Problem("wans.table", f"table {cfg.wans.table} is the kernel's {RESERVED_TABLES[cfg.wans.table]!r} table"))
    items = [(f"wans.members.{n}", m.mark, m.table) for n, m in wans.items()]
    items += [(f"routing.tables.{n}", t.mark, t.id) for n, t in tables.items()]
    for path, mark, table in items:
        if mark is not None:
            if mark in marks:
                p.append(Problem(f"{path}.mark", f"mark {mark} is already used by {marks[mark]}"))
            marks.setdefault(mark, path)
        if table is not None:
            fld = "id" if path.startswith("routing.") else "table"
            if table in RESERVED_TABLES:
                p.append(Problem(f"{path}.{fld}", f"table {table} is the kernel's {RESERVED_TABLES[table]!r} table"))
            elif table in tabs:
                p.append(Problem(f"{path}.{fld}", f"table {table} is already used by {tabs[table]}"))
            tabs.setdefault(table, path)
    for n, t in tables.items():
        for j, r in enumerate(t.routes):
            if r.interface and r.interface not in ifaces:
                p.append(Problem(f"routing.tables.{n}.routes[{j}].interface", f"unknown interface {r.interface!r}"))
    # rules
    for i, r in enumerate(cfg.rules):
        if r.route_via is None and r.table is None:
            continue
        if r.route_via is not None and r.table is not None:
            p.append(Problem(f"rules[{i}].route_via", "route_via and table are exclusive"))
            continue
        if "self" in r.to:
            p.append(Problem(f"rules[{i}].to", "route_via/table route forwarded traffic; 'self' is not routed"))
        if r.route_via is not None and r.route_via not in wans:
            p.append(Problem(f"rules[{i}].route_via", f"unknown WAN {r.route_via!r} (WANs: "
                                                      f"{', '.join(wans) or 'none: add wans.members'})"))
        if r.table is not None:
            t = str(r.table)
            if t not in tables and not any(str(x.id) == t for x in tables.values()):
                p.append(Problem(f"rules[{i}].table", f"unknown routing table {r.table!r} (routing.tables: "
                                                      f"{', '.join(tables) or 'none'})"))
        if r.action != "accept":
            p.append(Problem(f"rules[{i}].action", "a rule with route_via/table must accept (it routes what it lets through)"))
    return p
