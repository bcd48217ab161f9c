"""Policy routing in the kernel: ``ip rule``s and the routes of the extra tables (pyroute2).

Owned: every ``ip rule`` with ``protocol 250`` (RTPROT_TALGATE, ours alone) in IPv4 and IPv6, and
every route with ``proto 250`` in a table other than main and local (the network applier owns the
main table's). Nothing else is ever touched; a foreign rule that already uses one of our marks or
tables refuses the commit at check time.

Desired state (config + facts, backend/model/wan.py ``plan_marks``):

- pref 10000  ``lookup main suppress_prefixlength 0``: connected and specific routes first, so
  marked replies still reach the LAN;
- pref 10010+ ``fwmark M|PROBE lookup T`` per WAN: its health probes, always (a down WAN is
  probed through itself);
- pref 10100+ ``fwmark M lookup T`` per healthy WAN and per table: connections pinned to a WAN (ct
  mark) and rules with ``route_via``/``table``; a down WAN's rule is withdrawn, so what was routed
  to it falls through to the active default;
- pref 10900  ``lookup wans.table``: the default route of new, unpinned connections — the best
  healthy WAN (failover: lowest priority, ties by weight) or all healthy WANs by weight (balance).

WAN tables hold ``default via GATEWAY dev IF`` (v4 and v6); ``routing.tables`` their routes.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from ..model import Problem
from ..model.wan import MARK_MASK, PROBE_BIT, gateway_of, plan_marks
from .applier import Desired, HostContext, load_state, save_state
from .net import RTPROT_TALGATE, ApplyError

PREF_MAIN = 10000
PREF_PROBE = 10010
PREF_MARK = 10100
PREF_DEFAULT = 10900
NOT_OURS_TABLES = {254, 255}
FAMILIES = {4: socket.AF_INET, 6: socket.AF_INET6}


# balance: spread connections by their ports too (the default hash is addresses only: every
# connection between two hosts would take one uplink)
BALANCE_SYSCTLS = {"net/ipv4/fib_multipath_hash_policy": "1", "net/ipv6/fib_multipath_hash_policy": "1"}
PROC_SYS = "/proc/sys"


def _sysctls(cfg) -> dict[str, str]:
    return dict(BALANCE_SYSCTLS) if cfg.wans and cfg.wans.mode == "balance" else {}


def _rule(fam, pref, table, fwmark=None, fwmask=None, suppress=None) -> tuple:
    return (fam, pref, table, fwmark, fwmask, suppress)


def active_members(cfg, facts) -> list[str]:
    """The WAN members new connections use: the healthy ones (all when none is healthy: better a
    try than no route), in failover mode only those of the best priority."""
    if not cfg.wans:
        return []
    members = cfg.wans.members
    healthy = [n for n, m in members.items() if facts.healthy(m.interface)]
    pool = healthy or list(members)
    if cfg.wans.mode == "failover":
        best = min(members[n].priority for n in pool)
        pool = [n for n in pool if members[n].priority == best]
    return pool


def desired_state(d: Desired) -> tuple[set[tuple], dict[tuple, tuple]]:
    """(rules, routes): rules as _rule tuples, routes {(fam, table, dst): nexthops} where nexthops
    is a sorted tuple of (gateway, oif, weight)."""
    cfg, facts = d.cfg, d.facts
    slots = plan_marks(cfg)
    rules: set[tuple] = set()
    routes: dict[tuple, tuple] = {}
    if not slots:
        return rules, routes
    members = cfg.wans.members if cfg.wans else {}
    for fam in (4, 6):
        rules.add(_rule(fam, PREF_MAIN, 254, suppress=0))
    for k, s in enumerate(slots.values()):
        for fam in (4, 6):
            if s.kind == "wan":
                rules.add(_rule(fam, PREF_PROBE + k, s.table, s.mark | PROBE_BIT, MARK_MASK | PROBE_BIT))
                if not facts.healthy(members[s.name].interface):
                    continue
            rules.add(_rule(fam, PREF_MARK + k, s.table, s.mark, MARK_MASK))
    hops: dict[str, dict[int, tuple]] = {}
    for name, m in members.items():
        s = slots[f"wan:{name}"]
        hops[name] = {}
        for fam, gw in ((4, gateway_of(m, facts)), (6, m.gateway6)):
            if gw is None:
                continue
            hops[name][fam] = (str(gw), m.interface, m.weight)
            routes[(fam, s.table, "0.0.0.0/0" if fam == 4 else "::/0")] = ((str(gw), m.interface, 1),)
    if cfg.wans:
        for fam in (4, 6):
            rules.add(_rule(fam, PREF_DEFAULT, cfg.wans.table))
            nh = sorted(hops[n][fam] for n in active_members(cfg, facts) if fam in hops[n])
            if len(nh) == 1:
                nh = [(nh[0][0], nh[0][1], 1)]
            if nh:
                routes[(fam, cfg.wans.table, "0.0.0.0/0" if fam == 4 else "::/0")] = tuple(nh)
    for t in (cfg.routing.tables.values() if cfg.routing else ()):
        for r in t.routes:
            fam = ipaddress.ip_network(r.to).version
            routes[(fam, t.id, r.to)] = ((str(r.via) if r.via else None, r.interface, 1),)
    return rules, routes


class RulesApplier:
    name = "rules"
    group = "net"

    def __init__(self, ctx: HostContext | None = None):
        self._lock = threading.Lock()
        self.warnings: list[str] = []
        # Whether anything may be ours in the kernel (STATE/rules.json): a box without WANs or
        # policy tables never has its rules read or touched.
        self._state_dir = ctx.state_dir if ctx is not None else None
        self.used = bool(load_state(self._state_dir, "rules").get("used")) if self._state_dir else True

    def _mark_used(self, used: bool) -> None:
        if self._state_dir is not None and used != self.used:
            save_state(self._state_dir, "rules", {"used": used})
        self.used = used

    def _idle(self, d: Desired) -> bool:
        """Nothing wanted and nothing of ours can be in the kernel: no netlink at all."""
        return not self.used and not plan_marks(d.cfg)

    # -- observation ------------------------------------------------------------------------

    def observe(self) -> tuple[set[tuple], dict[tuple, tuple], list[tuple]]:
        """(our rules, our routes, foreign rules as (fam, pref, table, fwmark))."""
        rules, foreign, routes = set(), [], {}
        with IPRoute() as ipr:
            names = {lk["index"]: lk.get_attr("IFLA_IFNAME") for lk in ipr.get_links()}
            for fam, af in FAMILIES.items():
                for r in ipr.get_rules(family=af):
                    table = r.get_attr("FRA_TABLE") or r["table"]
                    pref = r.get_attr("FRA_PRIORITY") or 0
                    fwmark = r.get_attr("FRA_FWMARK")
                    if r.get_attr("FRA_PROTOCOL") != RTPROT_TALGATE:
                        foreign.append((fam, pref, table, fwmark))
                        continue
                    sup = r.get_attr("FRA_SUPPRESS_PREFIXLEN")
                    rules.add(_rule(fam, pref, table, fwmark, r.get_attr("FRA_FWMASK") if fwmark is not None else None,
                                    None if sup in (None, 0xFFFFFFFF) else sup))
                for r in ipr.get_routes(family=af):  # every table
                    table = r.get_attr("RTA_TABLE") or r["table"]
                    if r["proto"] != RTPROT_TALGATE or table in NOT_OURS_TABLES:
                        continue
                    dst = r.get_attr("RTA_DST") or ("0.0.0.0" if fam == 4 else "::")
                    key = (fam, table, str(ipaddress.ip_network(f"{dst}/{r['dst_len']}")))
                    mp = r.get_attr("RTA_MULTIPATH")
                    if mp:
                        nh = tuple(sorted((dict(h["attrs"]).get("RTA_GATEWAY"), names.get(h["oif"]), h["hops"] + 1)
                                          for h in mp))
                    else:
                        nh = ((r.get_attr("RTA_GATEWAY"), names.get(r.get_attr("RTA_OIF")), 1),)
                    routes[key] = nh
        return rules, routes, foreign

    # -- the protocol -----------------------------------------------------------------------

    def check(self, d: Desired) -> list[Problem]:
        """A mark or table of ours that a rule we do not own already uses: refused (never shared)."""
        want_rules, want_routes = desired_state(d)
        if not want_rules and not want_routes:
            return []
        try:
            _, _, foreign = self.observe()
        except (NetlinkError, OSError) as e:
            return [Problem("wans", f"cannot read the kernel's ip rules: {e}")]
        slots = plan_marks(d.cfg)
        out = []
        tables = {s.table: s for s in slots.values()}
        if d.cfg.wans:
            tables.setdefault(d.cfg.wans.table, None)
        marks = {s.mark_id: s for s in slots.values()}
        for fam, pref, table, fwmark in foreign:
            if table in tables and table not in NOT_OURS_TABLES:
                s = tables[table]
                path = "wans.table" if s is None else (f"wans.members.{s.name}.table" if s.kind == "wan"
                                                       else f"routing.tables.{s.name}.id")
                out.append(Problem(path, f"table {table} is already used by an ip rule talgate does not own "
                                         f"(IPv{fam} pref {pref})"))
            if fwmark and (fwmark & MARK_MASK) >> 16 in marks:
                s = marks[(fwmark & MARK_MASK) >> 16]
                path = f"wans.members.{s.name}.mark" if s.kind == "wan" else f"routing.tables.{s.name}.mark"
                out.append(Problem(path, f"mark {s.mark_id} (fwmark {s.mark:#x}) is already used by an ip rule "
                                         f"talgate does not own (IPv{fam} pref {pref})"))
        return out

    def _ops(self, d: Desired) -> list[tuple]:
        if self._idle(d):
            return []
        want_rules, want_routes = desired_state(d)
        have_rules, have_routes, _ = self.observe()
        ops: list[tuple] = []
        for r in sorted(have_rules - want_rules, key=str):
            ops.append(("rule-del", r))
        for key in sorted(set(have_routes) - set(want_routes), key=str):
            ops.append(("route-del", key, have_routes[key]))
        for key, nh in sorted(want_routes.items(), key=lambda kv: str(kv[0])):
            if have_routes.get(key) != nh:
                ops.append(("route-replace", key, nh))
        for r in sorted(want_rules - have_rules, key=str):
            ops.append(("rule-add", r))
        for k, v in _sysctls(d.cfg).items():
            try:
                if (Path(PROC_SYS) / k).read_text().strip() != v:
                    ops.append(("sysctl", k, v))
            except OSError:
                pass  # not in this kernel: nothing to set
        return ops

    def plan(self, d: Desired) -> list[str]:
        return [describe(op) for op in self._ops(d)]

    def apply(self, d: Desired) -> list[str]:
        with self._lock:
            if plan_marks(d.cfg):
                self._mark_used(True)  # before the first change: a restart still cleans up
            ops = self._ops(d)
            if ops:
                with IPRoute() as ipr:
                    for op in ops:
                        try:
                            self._one(ipr, op)
                        except NetlinkError as e:
                            raise ApplyError(_path(op), f"kernel refused {describe(op)}: "
                                                        f"{e.args[1] if len(e.args) > 1 else e}") from None
            if not plan_marks(d.cfg):
                self._mark_used(False)  # everything of ours is gone
            return [describe(op) for op in ops]

    def drift(self, d: Desired) -> list[str]:
        return self.plan(d)

    def status(self) -> dict:
        if not self.used:
            return {}
        try:
            rules, routes, _ = self.observe()
        except (NetlinkError, OSError):
            return {}
        return {"rules": len(rules), "table_routes": len(routes)}

    # -- execution ------------------------------------------------------------------------------

    @staticmethod
    def _one(ipr: IPRoute, op: tuple) -> None:
        kind = op[0]
        if kind == "sysctl":
            (Path(PROC_SYS) / op[1]).write_text(op[2] + "\n")
            return
        if kind.startswith("rule"):
            fam, pref, table, fwmark, fwmask, sup = op[1]
            kw = {"family": FAMILIES[fam], "priority": pref, "table": table, "protocol": RTPROT_TALGATE}
            if fwmark is not None:
                kw.update(fwmark=fwmark, fwmask=fwmask)
            if sup is not None:
                kw["suppress_prefixlen"] = sup
            try:
                ipr.rule("add" if kind == "rule-add" else "del", **kw)
            except NetlinkError as e:
                if not ((kind == "rule-del" and e.code == 2) or (kind == "rule-add" and e.code == 17)):
                    raise
            return
        (fam, table, dst), nh = op[1], op[2]
        kw = {"family": FAMILIES[fam], "dst": dst, "table": table, "proto": RTPROT_TALGATE}
        if kind == "route-del":
            try:
                ipr.route("del", **kw)
            except NetlinkError as e:
                if e.code != 3:
                    raise
            return

        def idx(name):
            found = ipr.link_lookup(ifname=name) if name else []
            if name and not found:
                raise ApplyError(_path(op), f"no such link {name!r}")
            return found[0] if found else None

        if len(nh) == 1:
            gw, oif, _ = nh[0]
            if gw:
                kw["gateway"] = gw
            if oif:
                kw["oif"] = idx(oif)
        else:
            kw["multipath"] = [{"gateway": gw, "oif": idx(oif), "hops": w - 1} for gw, oif, w in nh]
        ipr.route("replace", **kw)


def describe(op: tuple) -> str:
    kind = op[0]
    if kind == "sysctl":
        return f"sysctl: {op[1]} = {op[2]}"
    if kind.startswith("rule"):
        fam, pref, table, fwmark, fwmask, sup = op[1]
        what = f"fwmark {fwmark:#x}/{fwmask:#x} " if fwmark is not None else ""
        what += f"lookup {table}" + (f" suppress_prefixlength {sup}" if sup is not None else "")
        return f"{kind.replace('-', ' ')}: IPv{fam} pref {pref} {what}"
    (fam, table, dst) = op[1]
    if kind == "route-del":
        return f"route del: {dst} table {table}"
    hops = ", ".join(f"via {gw or '-'} dev {oif or '-'}" + (f" weight {w}" if len(op[2]) > 1 else "")
                     for gw, oif, w in op[2])
    return f"route replace: {dst} table {table} {hops}"


def _path(op: tuple) -> str:
    if op[0] == "sysctl":
        return "wans.mode"
    return "wans" if op[0].startswith("rule") else f"routes (table {op[1][1]})"
