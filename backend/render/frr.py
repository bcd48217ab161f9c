"""frr.conf (FRR 8.4, integrated config) from ``routing:`` — pure: config in, text out.

Per BGP neighbor and family two prefix-lists are rendered, always defined and always ending in
an explicit deny (an FRR prefix-list that is referenced but not defined would permit everything):

- ``tg-in4-N<i>`` / ``tg-in6-N<i>``: deny the default route (unless ``accept_default``), deny
  anything inside the router's own connected subnets or its ``bgp.networks``, permit the neighbor's ``import`` entries,
  deny the rest.
- ``tg-out4-N<i>`` / ``tg-out6-N<i>``: permit ``bgp.networks`` and the neighbor's ``export``
  entries, deny the rest (no transit of routes learned from another peer).

OSPF/OSPFv3 routes pass ``tg-ospf4-in`` / ``tg-ospf6-in`` (``ip protocol ospf route-map``) before
zebra installs them: no default route unless ``accept_default``, nothing inside the router's own
connected subnets.

``no bgp ebgp-requires-policy`` is rendered because the prefix-lists are the policy (FRR 8.4
otherwise exchanges nothing with an eBGP peer that has no route-map).
"""

from __future__ import annotations

import ipaddress

from ..model.config import RouterConfig
from ..model.routing import Ospf, bgp_on, connected, ospf_on, parse_prefix_item, routing_of

REDIST = {"connected": "connected", "static": "static", "kernel": "kernel", "ospf": "ospf", "ospfv3": "ospf6",
          "bgp": "bgp"}


def prefix_list_name(direction: str, fam: int, index: int) -> str:
    return f"tg-{direction}{fam}-N{index}"


def _pl_line(name: str, fam: int, seq: int, action: str, item: str) -> str:
    net, ge, le = parse_prefix_item(item)
    txt = f"{'ip' if fam == 4 else 'ipv6'} prefix-list {name} seq {seq} {action} {net}"
    if ge is not None:
        txt += f" ge {ge}"
    if le is not None:
        txt += f" le {le}"
    return txt


def _any(fam: int) -> str:
    return "0.0.0.0/0 le 32" if fam == 4 else "::/0 le 128"


def _own_subnets(cfg: RouterConfig, fam: int, announced: list[str]) -> list[ipaddress._BaseNetwork]:
    """The router's connected subnets and what it announces itself: never learned from a peer."""
    nets = [net for _, net, _ in connected(cfg) if net.version == fam and not net.is_link_local]
    nets += [n for n in map(ipaddress.ip_network, announced) if n.version == fam]
    return list(ipaddress.collapse_addresses(nets))


def _prefix_lists(cfg: RouterConfig) -> list[str]:
    b = bgp_on(routing_of(cfg))
    out: list[str] = []
    if b is None:
        return out
    for i, nb in enumerate(b.neighbors):
        fam = nb.address.version
        top = 32 if fam == 4 else 128
        name = prefix_list_name("in", fam, i)
        seq = 5
        if not nb.accept_default:
            out.append(_pl_line(name, fam, seq, "deny", "0.0.0.0/0" if fam == 4 else "::/0"))
            seq += 5
        for net in _own_subnets(cfg, fam, b.networks):
            item = str(net) + (f" le {top}" if net.prefixlen < top else "")
            out.append(_pl_line(name, fam, seq, "deny", item))
            seq += 5
        for item in nb.import_:
            if ipaddress.ip_network(item.split()[0]).version == fam:
                out.append(_pl_line(name, fam, seq, "permit", item))
                seq += 5
        out.append(_pl_line(name, fam, seq, "deny", _any(fam)))
        name = prefix_list_name("out", fam, i)
        seq = 5
        items = [n for n in b.networks if ipaddress.ip_network(n).version == fam]
        items += [x for x in nb.export if ipaddress.ip_network(x.split()[0]).version == fam]
        for item in dict.fromkeys(items):
            out.append(_pl_line(name, fam, seq, "permit", item))
            seq += 5
        out.append(_pl_line(name, fam, seq, "deny", _any(fam)))
    return out


def _ospf_install_filter(cfg: RouterConfig, o: Ospf, fam: int) -> list[str]:
    """What zebra may install from OSPF (fam 4) or OSPFv3 (fam 6): no default route unless
    accept_default, nothing inside the router's own connected subnets, the rest."""
    name = f"tg-ospf{fam}-in"
    ip = "ip" if fam == 4 else "ipv6"
    top = 32 if fam == 4 else 128
    out, seq = [], 5
    if not o.accept_default:
        out.append(_pl_line(name, fam, seq, "deny", "0.0.0.0/0" if fam == 4 else "::/0"))
        seq += 5
    for net in _own_subnets(cfg, fam, []):
        out.append(_pl_line(name, fam, seq, "deny", str(net) + (f" le {top}" if net.prefixlen < top else "")))
        seq += 5
    out.append(_pl_line(name, fam, seq, "permit", _any(fam)))
    out += [f"route-map {name} permit 10", f" match {ip} address prefix-list {name}", "exit",
            f"{ip} protocol {'ospf' if fam == 4 else 'ospf6'} route-map {name}", "!"]
    return out


def _interfaces(cfg: RouterConfig, v4: Ospf | None, v6: Ospf | None) -> list[str]:
    out: list[str] = []
    names = list(dict.fromkeys([*(v4.interfaces if v4 else {}), *(v6.interfaces if v6 else {})]))
    for n in names:
        out.append(f"interface {n}")
        for proto, cmd in ((v4, "ip ospf"), (v6, "ipv6 ospf6")):
            if proto is not None and n in proto.interfaces:
                out += _ospf_interface(cmd, proto.interfaces[n])
        out += ["exit", "!"]
    return out


def render_frr(cfg: RouterConfig) -> str | None:
    """frr.conf text, or None when no routing protocol is enabled (FRR is then not run)."""
    r = routing_of(cfg)
    v4, v6, b = ospf_on(r, "ospf"), ospf_on(r, "ospfv3"), bgp_on(r)
    if not (v4 or v6 or b):
        return None
    lines = ["! rendered by talgate from router.yaml (routing:); edits here are overwritten",
             "frr version 8.4", "frr defaults traditional", f"hostname {cfg.system.hostname}",
             "service integrated-vtysh-config", "!"]
    lines += _interfaces(cfg, v4, v6)
    if v4 is not None:
        lines.append("router ospf")
        rid = v4.router_id or r.router_id
        if rid:
            lines.append(f" ospf router-id {rid}")
        lines += [f" redistribute {REDIST[x]}" for x in v4.redistribute]
        if v4.default_originate:
            lines.append(" default-information originate")
        lines += ["exit", "!"]
    if v6 is not None:
        lines.append("router ospf6")
        rid = v6.router_id or r.router_id
        if rid:
            lines.append(f" ospf6 router-id {rid}")
        lines += [f" redistribute {REDIST[x]}" for x in v6.redistribute]
        if v6.default_originate:
            lines.append(" default-information originate")
        lines += ["exit", "!"]
    if b is not None:
        lines.append(f"router bgp {b.asn}")
        rid = b.router_id or r.router_id
        if rid:
            lines.append(f" bgp router-id {rid}")
        lines += [" no bgp ebgp-requires-policy", " no bgp default ipv4-unicast", " bgp log-neighbor-changes"]
        active = [(i, nb) for i, nb in enumerate(b.neighbors)]
        for _i, nb in active:
            lines.append(f" neighbor {nb.address} remote-as {nb.remote_asn}")
            if nb.description:
                lines.append(f" neighbor {nb.address} description {nb.description}")
            if nb.ebgp_multihop:
                lines.append(f" neighbor {nb.address} ebgp-multihop {nb.ebgp_multihop}")
            if not nb.enabled:
                lines.append(f" neighbor {nb.address} shutdown")
        for fam, afi in ((4, "ipv4"), (6, "ipv6")):
            nbs = [(i, nb) for i, nb in active if nb.address.version == fam]
            nets = [n for n in b.networks if ipaddress.ip_network(n).version == fam]
            if not nbs and not nets:
                continue
            lines.append(f" address-family {afi} unicast")
            lines += [f"  network {n}" for n in nets]
            lines += [f"  redistribute {REDIST[x]}" for x in b.redistribute]
            for i, nb in nbs:
                lines.append(f"  neighbor {nb.address} activate")
                lines.append(f"  neighbor {nb.address} prefix-list {prefix_list_name('in', fam, i)} in")
                lines.append(f"  neighbor {nb.address} prefix-list {prefix_list_name('out', fam, i)} out")
            lines.append(" exit-address-family")
        lines += ["exit", "!"]
        lines += _prefix_lists(cfg)
        lines.append("!")
    if v4 is not None:
        lines += _ospf_install_filter(cfg, v4, 4)
    if v6 is not None:
        lines += _ospf_install_filter(cfg, v6, 6)
    lines.append("end")
    return "\n".join(lines) + "\n"


def _ospf_interface(cmd: str, o) -> list[str]:
    """One interface's OSPF (``ip ospf``) or OSPFv3 (``ipv6 ospf6``) lines: the same settings, two prefixes."""
    out = [f" {cmd} area {o.area}", f" {cmd} hello-interval {o.hello}", f" {cmd} dead-interval {o.dead}"]
    if o.cost is not None:
        out.append(f" {cmd} cost {o.cost}")
    if o.network:
        out.append(f" {cmd} network {o.network}")
    if o.passive:
        out.append(f" {cmd} passive")
    return out
