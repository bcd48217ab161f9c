"""Lockout proof: would the candidate drop an admin's way in?

Access paths are the caller's own connection (the client sends SSH_CONNECTION when it has one)
and the management access the config declares (`system.access`, from the running config and
the candidate both, so removing a declaration cannot sneak past). Each is traced as the first
packet of a new connection through the candidate's ruleset.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ..model.config import RouterConfig
from ..trace.evaluator import Packet, Tracer


@dataclass
class Cut:
    path: str        # what would be cut, in words
    verdict: str
    rule: str | None

    def __str__(self) -> str:
        return f"{self.path}: {self.verdict} by {self.rule or 'no rule (no route)'}"


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


def _declared_packets(cfg: RouterConfig, names_seen: set[str]):
    for a in cfg.system.access:
        if a.name in names_seen or a.from_ not in cfg.zones:
            continue
        names_seen.add(a.name)
        for ifname in cfg.zones[a.from_].interfaces:
            itf = cfg.interfaces.get(ifname)
            if not itf or not itf.enabled:
                continue
            for addr in [*itf.ipv4, *itf.ipv6]:
                net = ipaddress.ip_network(a.src) if a.src else addr.network
                if net.version != addr.version:
                    continue
                src = next((h for h in (net[1], net[2]) if h != addr.ip), net[0]) if net.num_addresses > 2 else net[0]
                yield a.name, Packet(iif=ifname, src=str(src), dst=str(addr.ip), proto=a.proto, dport=a.port)


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
    seen: set[str] = set()
    sources = [candidate] + ([running] if running is not None else [])
    for cfg in sources:
        for name, pkt in _declared_packets(cfg, seen):
            if pkt.iif not in candidate.interfaces:
                out.append(Cut(f"access {name!r} via {pkt.iif} (the candidate removes the interface)", "drop", None))
                continue
            r = tracer.trace(pkt)
            if r.verdict != "accept":
                out.append(Cut(f"access {name!r} ({pkt.src} -> {pkt.dst} {pkt.proto}/{pkt.dport})", r.verdict, r.rule))
    return out
