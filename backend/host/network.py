"""The network applier: links, addresses, routes and sysctls (netlink through ``net.NetApplier``).

Desired state = the config + facts: addresses learned at runtime are kept, and the routes of a
link the WAN health checks marked unhealthy are withdrawn (the next route to the same destination
takes over), so neither ``apply`` nor the drift loop undoes a failover.

Persists what it owns (links it may have changed, each link's MTU before the config first set
one) in ``STATE/network.json``, so a restart can still clean up links a later config drops.
"""

from __future__ import annotations

import ipaddress
import threading
from pathlib import Path

from ..model import Problem
from ..model.kinds import agent_made_links
from .applier import Desired, HostContext, load_state, save_state
from .net import SYSCTLS, NetApplier, NetState
from .net import desired as config_state

LINK_SYSCTL = "net/ipv6/conf/"  # the per-link sysctls (net/ipv6/conf/LINK/KEY) remembered before a change


def route_link(cfg, route) -> str | None:
    """The link a configured route leaves by: its interface, else the link whose subnet holds via."""
    if route.interface:
        return route.interface
    if route.via is None:
        return None
    for name, itf in cfg.interfaces.items():
        for a in [*itf.ipv4, *itf.ipv6]:
            if a.version == route.via.version and route.via in a.network:
                return name
    return None


def desired_state(d: Desired) -> NetState:
    """NetState of config + facts."""
    cfg, facts = d.cfg, d.facts
    st = config_state(cfg)
    for name, learned in facts.addresses.items():
        if name in st.links and cfg.interfaces[name].enabled:
            st.addrs[name] = set(st.addrs[name]) | {str(ipaddress.ip_interface(a)) for a in learned}
    from .uplink_net import add_learned

    add_learned(cfg, facts, st)
    if facts.wan_health:
        down = {n for n, ok in facts.wan_health.items() if not ok}
        by_name = {r.key: r for r in cfg.routes}
        for key, rw in list(st.routes.items()):
            r = by_name.get(rw.get("name"))
            if r is not None and route_link(cfg, r) in down:
                del st.routes[key]
    return st


def describe(op: tuple) -> str:
    kind = op[0]
    if kind.startswith("route"):
        key = op[1]
        return f"{kind.replace('-', ' ')}: {key.dst} (metric {key.metric})"
    return f"{kind.replace('-', ' ')}: {op[1]}" + (f" {op[2]}" if len(op) > 2 else "")


class NetworkApplier:
    name = "network"
    group = "net"

    def __init__(self, ctx: HostContext, net: NetApplier | None = None):
        self.net = net or NetApplier()
        self._file = Path(ctx.state_dir) / "network.json"
        self._lock = threading.Lock()
        st = self._load(ctx)
        self.owned: tuple[str, ...] = tuple(st.get("owned", ()))
        self.net.original_mtu = dict(st.get("original_mtu") or {})
        # per-link sysctls a config set (accept_ra/autoconf of a WAN with ipv6: {...}) -> the value
        # before; put back when the config stops setting them
        self.original_sysctls: dict[str, str] = {k: str(v) for k, v in (st.get("original_sysctls") or {}).items()
                                                 if isinstance(k, str) and k.startswith(LINK_SYSCTL) and k not in SYSCTLS}
        self._first = None

    # -- persisted ownership -----------------------------------------------------------------

    def _load(self, ctx: HostContext) -> dict:
        return load_state(ctx.state_dir, "network")

    def _save(self) -> None:
        save_state(self._file.parent, "network", {"owned": list(self.owned), "original_mtu": self.net.original_mtu,
                                                  "original_sysctls": self.original_sysctls})

    def _want(self, d: Desired) -> NetState:
        """desired_state + the per-link sysctls a former config set, back to their value before."""
        st = desired_state(d)
        proc = getattr(self.net, "proc_sys", None)
        for k, v in self.original_sysctls.items():
            if k not in st.sysctls and proc is not None and (proc / k).exists():  # a link gone: nothing to put back
                st.sysctls[k] = v
        return st

    def _remember_sysctls(self, st: NetState) -> None:
        proc = getattr(self.net, "proc_sys", None)
        for k in st.sysctls:
            if k.startswith(LINK_SYSCTL) and k not in SYSCTLS and k not in self.original_sysctls and proc is not None:
                try:
                    self.original_sysctls[k] = (proc / k).read_text().strip()
                except OSError:
                    pass

    # -- the protocol -----------------------------------------------------------------------------

    def check(self, d: Desired) -> list[Problem]:
        """Every link the config names (its interfaces, its routes' interfaces) exists."""
        cfg = d.cfg
        want = config_state(cfg)
        if d.facts.links is not None:
            names = [*want.links, *(r.interface for r in cfg.routes if r.interface)]
            missing = {n for n in names if n not in d.facts.links}
        else:
            missing = set(self.net.missing_links(want))
        missing -= agent_made_links(cfg)  # created by the links applier, which runs first
        return ([Problem(f"interfaces.{n}", "no such link in the router's network namespace")
                 for n, itf in cfg.interfaces.items() if n in missing and itf.enabled]
                + [Problem(f"routes[{i}].interface", f"no such link {r.interface!r} in the router's network namespace")
                   for i, r in enumerate(cfg.routes) if r.interface in missing])

    def _ops(self, d: Desired, owned: set[str]) -> list[tuple]:
        """Planned operations, without touching the remembered MTUs (plan() records them)."""
        with self._lock:
            saved = dict(self.net.original_mtu)
            try:
                return self.net.plan(self._want(d), owned)
            finally:
                self.net.original_mtu = saved

    def plan(self, d: Desired) -> list[str]:
        return [describe(op) for op in self._ops(d, set(self.owned) | set(d.cfg.interfaces))]

    def apply(self, d: Desired) -> list[str]:
        with self._lock:
            # Remember every link we may touch before touching it, so a restore can clean up.
            self.owned = tuple(sorted(set(self.owned) | set(d.cfg.interfaces)))
            want = self._want(d)
            self._remember_sysctls(want)
            self._save()
            ops = self.net.plan(want, set(self.owned))
            self.net.execute(ops)
            self.owned = tuple(sorted(d.cfg.interfaces))
            # a sysctl put back to its value before (or whose link is gone) is no longer ours
            wanted = desired_state(d).sysctls
            self.original_sysctls = {k: v for k, v in self.original_sysctls.items() if k in wanted}
            self._save()
            return [describe(op) for op in ops]

    # -- the first commit: no previous revision to apply ------------------------------------------

    def begin_first(self, d: Desired) -> None:
        """Before a transaction without a previous revision: the links it may touch as they are
        (state, MTU, permanent addresses, our routes, the sysctls it sets), to put back on failure."""
        self._first = None
        names = set(self.owned) | set(d.cfg.interfaces)
        extra = [*desired_state(d).sysctls, *self.original_sysctls]
        try:
            with self._lock:
                self._first = (self.net.observe(names, extra), dict(self.net.original_mtu), self.owned,
                               dict(self.original_sysctls))
        except Exception:  # noqa: BLE001 - no snapshot: undo_first says so instead of guessing
            self._first = None

    def end(self) -> None:
        self._first = None

    def undo_first(self) -> list[str]:
        """Put the links this first transaction touched back as observed at its start: the
        addresses and routes it added go, those it removed come back, MTU and state as they were
        (links created by this transaction are gone with the links applier's undo)."""
        first = self._first
        if first is None:
            return ["network: no snapshot of the links before this commit; addresses were left as applied"]
        before, mtus, owned, sysctls = first
        with self._lock:
            try:
                self.net.execute(self.net.plan(before, set(before.links)))
            except Exception as e:  # noqa: BLE001 - reported as a restore error
                return [f"network: {e}"]
            finally:
                self.net.original_mtu = mtus
                self.owned = owned
                self.original_sysctls = sysctls
                self._save()
        return []

    def drift(self, d: Desired) -> list[str]:
        return [describe(op) for op in self._ops(d, set(self.owned))]

    def status(self) -> dict:
        return {"owned": list(self.owned)}
