"""The one protocol every applier implements, what it is given (``Desired``), and the registry.

An applier owns one kernel subsystem or one daemon (network links/addresses/routes, the nftables
table, Kea, Unbound …). The pipeline (backend/agent/pipeline.py) knows only the registry: it builds
the appliers once, in registry order (network → nftables → daemons), and calls

- ``check(desired) -> list[Problem]``  before committing; errors refuse the commit, nothing changes.
- ``plan(desired) -> list[str]``       what ``apply`` would change (human-readable), changes nothing.
- ``apply(desired) -> list[str]``      make what it owns equal ``desired``; returns what changed.
  Idempotent: a second apply of the same desired state changes nothing and returns ``[]``.
- ``drift(desired) -> list[str]``      what differs from ``desired`` now, without changing anything.
- ``status() -> dict``                 JSON-able, for ``talgate status`` (never a secret).

``desired`` is the config **and runtime facts** (:class:`Facts`: links present, addresses learned
by DHCP, delegated prefixes, WAN health) plus render products shared by every applier and the
lockout proof (the nft ruleset is rendered once per commit). Desired state is therefore not a
function of the config alone: a WAN marked unhealthy withdraws its routes from the desired state,
so the drift loop keeps a failover instead of "repairing" it away.

All or nothing: when any applier's ``apply`` raises (or HEAD cannot move), the pipeline puts every
applier back to the previous revision, in order, and HEAD does not move. An applier that keeps a
journal implements the optional transaction hooks ``begin()``, ``undo() -> list[str]`` (errors)
and ``end()``: it is put back by ``undo`` (the daemons: every file byte for byte); the others by
``apply(previous desired)`` (the kernel appliers: idempotent, so the ones that never ran do
nothing). The very first commit has no previous revision: a kernel applier that can tell what it
added implements ``begin_first(desired)`` (remember the kernel before it) and ``undo_first() ->
list[str]`` (put that back; the links and network appliers). Optional attributes: ``warnings`` (what a tolerant apply kept as it was) and ``fault``
(the pipeline's fault-injection hook, for tests).

Adding a daemon or a kernel subsystem = one module with an applier class + one ``register`` line in
:func:`builtin` below.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from ..model import Problem
from ..model.config import RouterConfig

# Stages: appliers run in stage order (then registration order). Links and network first (links and
# addresses the ruleset and the daemons rely on), then the firewall, then the daemons.
LINKS = 90  # links the agent makes (vlan, bridge, bond, dummy): before their addresses
NETWORK = 100
NFTABLES = 200
DAEMONS = 300


def _frozen(m: Mapping | None) -> Mapping:
    return MappingProxyType({k: tuple(v) if isinstance(v, (list, tuple, set, frozenset)) else v
                             for k, v in (m or {}).items()})


@dataclass(frozen=True)
class Facts:
    """What the box learned at runtime, as opposed to what the config says.

    Empty by default (nothing learned: desired state = the config). Filled by the parts of the
    agent that learn things (link watcher, DHCP client, PD client, WAN health checks).

    - ``links``: the links present, or None when not observed (appliers ask the kernel).
    - ``addresses``: link -> addresses ("ip/len") learned at runtime (DHCP, SLAAC, PD-derived);
      part of the desired state, so the drift loop never removes them.
    - ``delegated``: WAN link -> prefixes delegated by the upstream (DHCPv6-PD).
    - ``wan_health``: link -> healthy?  A link marked unhealthy (False) has its configured routes
      withdrawn from the desired state: the next route to the same destination (a higher metric,
      another WAN) takes over, and the drift loop does not put the failed one back.
    """

    links: frozenset[str] | None = None
    addresses: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    delegated: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    wan_health: Mapping[str, bool] = field(default_factory=lambda: MappingProxyType({}))
    # Learned by the uplink manager (backend/agent/uplink.py): link -> default gateways (DHCPv4),
    # WAN -> prefixes of a replaced delegation (still advertised, deprecated), WAN -> what was
    # learned (addresses, gateway, DNS, domain, lease expiry; for status).
    gateways: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    deprecated: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    # delegated prefix -> (valid, preferred) lifetimes of its delegation: the RA lifetimes of its LAN /64s
    lifetimes: Mapping[str, tuple[int, int]] = field(default_factory=lambda: MappingProxyType({}))
    # status only: not part of the desired state (compare=False: a renewal does not re-render anything)
    uplinks: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), compare=False)

    def __post_init__(self):
        if self.links is not None:
            object.__setattr__(self, "links", frozenset(self.links))
        for name in ("addresses", "delegated", "wan_health", "gateways", "deprecated", "lifetimes", "uplinks"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    def healthy(self, link: str) -> bool:
        """Unknown links count as healthy: no health check = the config decides."""
        return self.wan_health.get(link, True)

    def to_dict(self) -> dict:
        return {"links": sorted(self.links) if self.links is not None else None,
                "addresses": {k: list(v) for k, v in self.addresses.items()},
                "delegated": {k: list(v) for k, v in self.delegated.items()},
                "wan_health": dict(self.wan_health),
                "gateways": {k: list(v) for k, v in self.gateways.items()},
                "deprecated": {k: list(v) for k, v in self.deprecated.items()},
                "lifetimes": {k: list(v) for k, v in self.lifetimes.items()},
                "uplinks": dict(self.uplinks)}


class Desired:
    """The state every applier converges to: config + facts + shared render products.

    ``product(key, make)`` computes a render product once and shares it (the nft ruleset is used by
    the lockout proof, ``nft -c`` and the load; daemon configs by their checkers and the writes).
    """

    def __init__(self, cfg: RouterConfig, facts: Facts | None = None, rev: str | None = None,
                 ruleset: Any = None, tolerant: bool = False, files: bool = True):
        from ..model.uplink import effective

        self.facts = facts or Facts()
        # The document under the learned facts: addresses from a delegated prefix made concrete
        # (the same object when the document uses no uplink feature).
        self.source = getattr(cfg, "_source", None) or cfg
        self.cfg = effective(self.source, self.facts.delegated, self.facts.deprecated, self.facts.lifetimes)
        if self.cfg is not self.source:
            ruleset = None  # the ruleset depends on the facts: rendered for these
        self.rev = rev
        # tolerant: going back to a revision applied before (the confirm timer's rollback); an
        # applier that cannot reach it keeps its current state and says so in `warnings`.
        self.tolerant = tolerant
        # files=False: a check on the read-only socket; no file the document names is opened
        # (blocklists), and such a desired state is never applied.
        self.files = files
        self._products: dict[str, Any] = {}
        self._lock = threading.RLock()  # a product may use another (a daemon's config the ruleset)
        if ruleset is not None:
            self._products["nft"] = ruleset

    def product(self, key: str, make: Callable[[], Any]) -> Any:
        with self._lock:
            if key not in self._products:
                self._products[key] = make()
            return self._products[key]

    @property
    def ruleset(self):
        """The nft Ruleset of this config, rendered once."""
        from ..render.nft import render

        return self.product("nft", lambda: render(self.cfg))

    def with_facts(self, facts: Facts) -> Desired:
        """The same config under other facts (render products that do not depend on facts shared)."""
        d = Desired(self.source, facts, self.rev)
        with self._lock:
            if "nft" in self._products and d.cfg is d.source:
                d._products["nft"] = self._products["nft"]
        return d


@runtime_checkable
class Applier(Protocol):
    name: str
    # The key under which the pipeline counts this applier's changes ("net", "nft", "services").
    group: str

    def check(self, desired: Desired) -> list[Problem]: ...

    def plan(self, desired: Desired) -> list[str]: ...

    def apply(self, desired: Desired) -> list[str]: ...

    def drift(self, desired: Desired) -> list[str]: ...

    def status(self) -> dict: ...


@dataclass
class HostContext:
    """What a factory gets to build its applier: where state and rendered configs live."""

    state_dir: Path
    rendered_dir: Path | None = None
    shared: dict = field(default_factory=dict)  # objects appliers of one pipeline share (by key)

    def share(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self.shared:
            self.shared[key] = make()
        return self.shared[key]


Factory = Callable[[HostContext], "Applier | Iterable[Applier]"]


class Registry:
    """Ordered applier factories. ``build(ctx)`` returns the appliers in stage order."""

    def __init__(self):
        self._entries: list[tuple[int, int, str, Factory]] = []

    def register(self, factory: Factory, *, stage: int = DAEMONS, name: str | None = None) -> Factory:
        label = name or getattr(factory, "__name__", repr(factory))
        if any(e[2] == label for e in self._entries):
            raise ValueError(f"applier {label!r} is already registered")
        self._entries.append((stage, len(self._entries), label, factory))
        return factory

    def names(self) -> list[str]:
        return [e[2] for e in sorted(self._entries)]

    def build(self, ctx: HostContext, stages: Iterable[int] | None = None) -> list[Applier]:
        """The appliers, in order (only those of the given stages when stages is set)."""
        keep = None if stages is None else set(stages)
        out: list[Applier] = []
        for stage, _i, label, factory in sorted(self._entries):
            if keep is not None and stage not in keep:
                continue
            made = factory(ctx)
            items = [made] if isinstance(made, Applier) else list(made)
            for a in items:
                if not isinstance(a, Applier):
                    raise TypeError(f"factory {label!r} made {a!r}, which is not an Applier")
                out.append(a)
        names = [a.name for a in out]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"two appliers named {sorted(dup)}")
        return out


def builtin() -> Registry:
    """The appliers of a real box, in order. One line per subsystem or daemon."""
    from . import links, network, nftables, rules
    from .daemons import avahi, chrony, frr, kea, radvd, unbound

    r = Registry()
    r.register(links.LinksApplier, stage=LINKS, name="links")
    r.register(network.NetworkApplier, stage=NETWORK, name="network")
    r.register(rules.RulesApplier, stage=NETWORK + 50, name="rules")  # ip rules + policy tables
    r.register(nftables.NftApplier, stage=NFTABLES, name="nftables")
    r.register(kea.appliers, stage=DAEMONS, name="kea")  # kea-dhcp4 and kea-dhcp6
    r.register(unbound.UnboundApplier, stage=DAEMONS, name="unbound")
    r.register(radvd.RadvdApplier, stage=DAEMONS, name="radvd")
    r.register(chrony.ChronyApplier, stage=DAEMONS, name="chrony")
    r.register(avahi.AvahiApplier, stage=DAEMONS, name="avahi")
    r.register(frr.FrrApplier, stage=DAEMONS, name="frr")  # OSPF/OSPFv3/BGP (routing:)
    return r


# -- an applier's own bookkeeping in the state dir ---------------------------------------------------


def load_state(state_dir: str | os.PathLike, name: str) -> dict:
    """STATE/NAME.json, or what the single applied.json held before the registry; {} when neither."""
    for f in (Path(state_dir) / f"{name}.json", Path(state_dir) / "applied.json"):
        try:
            d = json.loads(f.read_text())
            if isinstance(d, dict):
                return d
        except (OSError, ValueError):
            continue
    return {}


def save_state(state_dir: str | os.PathLike, name: str, data: dict) -> None:
    """Atomically replace STATE/NAME.json."""
    f = Path(state_dir) / f"{name}.json"
    tmp = f.with_name(f".{f.name}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, f)
