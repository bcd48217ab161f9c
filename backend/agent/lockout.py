"""Lockout proof: would the candidate drop an admin's way in?

Access paths are the caller's own connection (the client sends SSH_CONNECTION when it has one)
and the management access the config declares (`system.access`). The proof is on content, not
names:

- every entry of the RUNNING config is expanded into the paths it admits: each source prefix
  (the entry's `src`, else each subnet of the zone's interfaces), probed from real addresses
  inside it (first and last usable, the exact address of a /32 or /128, never the router's
  own), plus the addresses where a rule of the running config or the candidate narrows that
  prefix (a rule `src: 192.168.99.10/32` puts 192.168.99.10 among the probes), for every
  family, to every router address of the arriving interface. Probes the running ruleset
  accepts today must stay accepted by the candidate; probes it already drops are not flagged.
  Renaming an entry or changing its port therefore cannot drop the old path unchecked.
- entries of the candidate whose content (zone, proto, port, src) is not in the running config
  are new declarations: every probe of theirs must be accepted by the candidate.

Each probe is traced as the first packet of a new connection. A path is cut if any admitted
source loses access.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ..model import prefix
from ..model.checks import set_prefixes
from ..model.config import AccessPath, RouterConfig
from ..trace.evaluator import Packet, Tracer

MAX_NARROWING = 64   # rule-derived source prefixes per admitted prefix (a 100,000-entry set stays cheap)
MAX_SHOWN = 3        # further failing sources named in one cut


@dataclass
class Cut:
    path: str        # what would be cut, in words
    verdict: str
    rule: str | None
    also: list[str] = field(default_factory=list)  # more sources cut the same way
    why: str | None = None  # in words, instead of "verdict by rule"

    def __str__(self) -> str:
        s = f"{self.path}: " + (self.why or f"{self.verdict} by {self.rule or 'no rule (no route)'}")
        if self.also:
            more = len(self.also) - MAX_SHOWN
            s += f" (also from {', '.join(self.also[:MAX_SHOWN])}" + (f" and {more} more" if more > 0 else "") + ")"
        return s


def _ssh_packet(running: RouterConfig, ssh_connection: str) -> Packet | None:
    try:
        client, _cport, server, sport = ssh_connection.split()[:4]
        client_ip = ipaddress.ip_address(client.split("%")[0])
        server_ip = ipaddress.ip_address(server.split("%")[0])
    except (ValueError, IndexError):
        return None
    if client_ip.is_loopback:
        return None
    iif = Tracer(running).route(client_ip)
    if iif is None:
        return None
    return Packet(iif=iif, src=str(client_ip), dst=str(server_ip), proto="tcp", dport=int(sport))


# -- probe sources --------------------------------------------------------------------------


def probe_hosts(net, own=frozenset()) -> list:
    """Real addresses inside net to probe from: the exact address of a /32 or /128, both
    addresses of a /31 or /127, else the first and the last usable address; the router's own
    addresses are skipped (walking inwards a few steps)."""
    spare = net.max_prefixlen - net.prefixlen
    if spare <= 1:
        return [h for h in (net[0], net[-1]) if h not in own][: 1 + spare]
    first, last = 1, net.num_addresses - (2 if net.version == 4 else 1)
    out = []
    for start, step in ((first, 1), (last, -1)):
        i = start
        while first <= i <= last and net[i] in own and abs(i - start) < 8:
            i += step
        if first <= i <= last and net[i] not in own and net[i] not in out:
            out.append(net[i])
    return out


class _ToSelf:
    """The rules of some configs that go to the router and match on source addresses, by zone."""

    def __init__(self, cfgs):
        self.by_zone: dict[str, list] = {}
        for cfg in cfgs:
            for r in cfg.rules:
                if r.enabled and r.src and "self" in r.to:
                    for z in r.from_:
                        self.by_zone.setdefault(z, []).append((cfg, r))

    def rules(self, a: AccessPath):
        for cfg, r in self.by_zone.get(a.from_, ()):
            if r.proto in ("any", a.proto) and _port_in(a.port, r.dport):
                yield cfg, r


def _narrowing(to_self: _ToSelf, a: AccessPath, net) -> list:
    """Prefixes inside net where a rule from a's zone to the router, for a's proto and port,
    decides by source address: the access differs there from the rest of net."""
    out: list = []
    lo, hi = int(net.network_address), int(net.broadcast_address)
    for cfg, r in to_self.rules(a):
        for item in r.src:
            for ver, first, last, text in set_prefixes(cfg, item) if item in cfg.sets else [prefix.parse(item)]:
                # CIDR prefixes nest or are disjoint: a narrower one inside net is where access may differ
                if ver == net.version and lo <= first and last <= hi and (first, last) != (lo, hi):
                    inner = ipaddress.ip_network(text)
                    if inner not in out:
                        out.append(inner)
                        if len(out) >= MAX_NARROWING:
                            return out
    return out


def _port_in(port: int, ports: list[str]) -> bool:
    if not ports:
        return True
    for p in ports:
        lo, _, hi = p.partition("-")
        if int(lo) <= port <= int(hi or lo):
            return True
    return False


def _probes(cfg: RouterConfig, a: AccessPath, tracer: Tracer, to_self: _ToSelf, own) -> list[Packet]:
    """Every (interface, source, router address) path entry a of cfg admits, as packets."""
    zone = cfg.zones.get(a.from_)
    if zone is None:
        return []
    ifaces = [n for n in zone.interfaces if n in cfg.interfaces and cfg.interfaces[n].enabled]
    prefixes: list[tuple[object, str | None]] = []   # (source prefix, interface it belongs to)
    if a.src:
        prefixes.append((ipaddress.ip_network(a.src), None))
    else:
        for n in ifaces:
            itf = cfg.interfaces[n]
            prefixes += [(addr.network, n) for addr in [*itf.ipv4, *itf.ipv6]]
    out: list[Packet] = []
    seen: set[tuple] = set()
    for net, owner in prefixes:
        sources = probe_hosts(net, own)
        for inner in _narrowing(to_self, a, net):
            sources += [h for h in probe_hosts(inner, own) if h not in sources]
        for src in sources:
            if owner is not None:
                iifs = [owner]
            else:
                routed = tracer.route(src)
                iifs = [routed] if routed in ifaces else ifaces
            for iif in iifs:
                itf = cfg.interfaces[iif]
                for dst in (x.ip for x in (itf.ipv4 if src.version == 4 else itf.ipv6)):
                    key = (iif, src, dst)
                    if key not in seen:
                        seen.add(key)
                        out.append(Packet(iif=iif, src=str(src), dst=str(dst), proto=a.proto, dport=a.port))
    return out


_last_running: list = []  # [(config, Tracer)]: HEAD's ruleset is rendered once, not at every commit


def _running_tracer(running: RouterConfig) -> Tracer:
    """A tracer of the running config; a validated config is immutable and the pipeline hands the
    same object for the same text, so the last one is reused."""
    if _last_running and _last_running[0][0] is running:
        return _last_running[0][1]
    t = Tracer(running)
    _last_running[:] = [(running, t)]
    return t


def _fresh(pkt: Packet) -> Packet:
    return Packet(iif=pkt.iif, src=pkt.src, dst=pkt.dst, proto=pkt.proto, dport=pkt.dport)


def _reaches_router(r) -> bool:
    """An access path works when the router itself accepts it (not when it is forwarded on)."""
    return r.verdict == "accept" and r.hook == "input"


def _content(a: AccessPath) -> tuple:
    return (a.from_, a.proto, a.port, a.src)


# -- the proof -------------------------------------------------------------------------------


def cuts(running: RouterConfig | None, candidate: RouterConfig, ssh_connection: str | None,
         ruleset=None, kind: str = "SSH") -> list[Cut]:
    tracer = Tracer(candidate, ruleset)
    out: list[Cut] = []
    if ssh_connection and running is not None:
        pkt = _ssh_packet(running, ssh_connection)
        if pkt is not None:
            if pkt.iif not in candidate.interfaces:
                out.append(Cut(f"your {kind} connection from {pkt.src} (arrives on {pkt.iif}, which the candidate "
                               f"removes)", "drop", None))
            else:
                r = tracer.trace(pkt)
                if r.verdict != "accept":
                    out.append(Cut(f"your {kind} connection {pkt.src} -> {pkt.dst} tcp/{pkt.dport}", r.verdict, r.rule))

    grouped: dict[tuple, Cut] = {}

    def failed(a: AccessPath, pkt: Packet) -> None:
        if pkt.iif not in candidate.interfaces:
            key = (a.name, "gone", pkt.iif)
            if key not in grouped:
                grouped[key] = Cut(f"access {a.name!r} via {pkt.iif} (the candidate removes the interface)",
                                   "drop", None)
            return
        r = tracer.trace(_fresh(pkt))
        if _reaches_router(r):
            return
        key = (a.name, a.proto, a.port, pkt.dst, r.verdict, r.rule, r.hook)
        if key in grouped:
            if pkt.src not in grouped[key].also:
                grouped[key].also.append(pkt.src)
        else:
            why = None
            if r.hook != "input":  # the address is no longer the router's: the admin reaches someone else
                why = (f"{pkt.dst} is no longer the router's address (" +
                       (f"forwarded to {r.egress}" if r.verdict == "accept" else f"{r.verdict}") + ")")
            grouped[key] = Cut(f"access {a.name!r} ({pkt.src} -> {pkt.dst} {pkt.proto}/{pkt.dport})",
                               r.verdict, r.rule, why=why)

    known: set[tuple] = set()
    if running is not None:
        now = _running_tracer(running)
        own = set(now.router_addresses()) | set(tracer.router_addresses())
        to_self = _ToSelf((running, candidate))
        for a in running.system.access:
            known.add(_content(a))
            for pkt in _probes(running, a, now, to_self, own):
                if _reaches_router(now.trace(_fresh(pkt))):   # admitted today: must stay so
                    failed(a, pkt)
    else:
        own = set(tracer.router_addresses())
    for a in candidate.system.access:
        if _content(a) in known:
            continue  # the same path as a running entry, proven above against what runs today
        for pkt in _probes(candidate, a, tracer, _ToSelf(()), own):
            failed(a, pkt)
    return out + list(grouped.values())
