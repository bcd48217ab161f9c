"""Semantic checks over a structurally valid RouterConfig.

Each check returns Problems with a path into the document; errors stop a commit, warnings
are shown. Bad input never reaches a renderer.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections import Counter

from . import prefix
from .config import RouterConfig, Rule
from .kinds import kind_problems
from .kubernetes import kubernetes_problems
from .names import check_names
from .problem import Problem

SELF = "self"


def _dups(items, path_of, what: str) -> list[Problem]:
    """Problems for every repeated name; items is [(index, name)]."""
    counts = Counter(name for _, name in items if name)
    out, seen = [], {}
    for i, name in items:
        if name and counts[name] > 1:
            if name in seen:
                out.append(Problem(path_of(i), f"duplicate {what} name {name!r} (also at {path_of(seen[name])})"))
            else:
                seen[name] = i
    return out


def interface_networks(cfg: RouterConfig):
    """[(ifname, network, interface-address)] of every configured address."""
    out = []
    for name, itf in cfg.interfaces.items():
        for a in [*itf.ipv4, *itf.ipv6]:
            out.append((name, a.network, a))
    return out


def _overlaps(nets) -> list[Problem]:
    """Duplicate addresses and overlapping subnets among interface_networks(): sorted and swept,
    O(n log n). Each is reported at the later item (document order), naming the earlier one."""
    out, seen_ip = [], {}
    for ver, fam in ((4, "ipv4"), (6, "ipv6")):
        items = sorted((int(net.network_address), -int(net.broadcast_address), k)
                       for k, (_, net, _) in enumerate(nets) if net.version == ver)
        widest = None  # (last address, index) of the item reaching furthest so far
        for lo, neg_hi, k in items:
            n, net, a = nets[k]
            if a.ip in seen_ip:
                j = seen_ip[a.ip]
                later, earlier = max(j, k), min(j, k)
                out.append((later, Problem(f"interfaces.{nets[later][0]}.{fam}",
                                           f"address {a.ip} is also on {nets[earlier][0]}")))
            elif widest is not None and lo <= widest[0]:
                j = widest[1]
                later, earlier = max(j, k), min(j, k)
                out.append((later, Problem(f"interfaces.{nets[later][0]}.{fam}", f"subnet {nets[later][1]} overlaps "
                                           f"{nets[earlier][1]} on interface {nets[earlier][0]}")))
            seen_ip.setdefault(a.ip, k)
            if widest is None or -neg_hi > widest[0]:
                widest = (-neg_hi, k)
    return [pr for _, pr in sorted(out, key=lambda t: t[0])]


def set_networks(cfg: RouterConfig, name: str) -> list[ipaddress._BaseNetwork]:
    """The parsed networks of address set name, parsed once per config."""
    nets = cfg._nets.get(name)
    if nets is None:
        nets = cfg._nets[name] = [ipaddress.ip_network(x) for x in cfg.sets[name].addresses]
    return nets


def set_prefixes(cfg: RouterConfig, name: str) -> list[tuple[int, int, int, str]]:
    """(version, first, last, "addr/len") of every entry of set name, parsed once per config."""
    key = ("prefixes", name)
    got = cfg._nets.get(key)
    if got is None:
        got = cfg._nets[key] = [prefix.parse(a) for a in cfg.sets[name].addresses]
    return got


def set_families(cfg: RouterConfig, name: str) -> set[int]:
    key = ("families", name)
    fams = cfg._nets.get(key)
    if fams is None:
        fams = cfg._nets[key] = {p[0] for p in set_prefixes(cfg, name)} | (
            {6} if cfg.sets[name].delegated else set())  # from a delegated prefix: IPv6 once learned
    return fams


def resolve_addresses(cfg: RouterConfig, items: list[str]) -> list[ipaddress._BaseNetwork]:
    nets = []
    for a in items:
        if a in cfg.sets:
            nets.extend(set_networks(cfg, a))
        else:
            nets.append(ipaddress.ip_network(a))
    return nets


def rule_families(cfg: RouterConfig, r: Rule) -> set[int]:
    """IP versions a rule applies to (dual-stack unless addresses, proto or family narrow it)."""
    fams = {4, 6}
    if r.family == "ipv4":
        fams = {4}
    elif r.family == "ipv6" or r.proto == "icmpv6":
        fams = {6}
    if r.proto == "icmp" and r.icmp_types:
        from .config import ICMP_TYPES, ICMPV6_TYPES

        fams &= ({4} if set(r.icmp_types) <= ICMP_TYPES else set()) | (
            {6} if set(r.icmp_types) <= ICMPV6_TYPES else set())
    for side in (r.src, r.dst):
        if side:
            side_fams: set[int] = set()
            for a in side:
                side_fams |= set_families(cfg, a) if a in cfg.sets else {prefix.parse(a)[0]}
            fams &= side_fams
    return fams


def check(cfg: RouterConfig) -> list[Problem]:
    p: list[Problem] = []
    zones = set(cfg.zones)
    ifaces = set(cfg.interfaces)

    if cfg.system.management_interface and cfg.system.management_interface not in ifaces:
        p.append(Problem("system.management_interface",
                         f"unknown interface {cfg.system.management_interface!r}"))

    if cfg.system.kubernetes:
        k = cfg.system.kubernetes
        p += [Problem(path, msg) for path, msg in kubernetes_problems(cfg, k.pod_cidrs, k.service_cidrs)]

    p += _dups(list(enumerate(a.name for a in cfg.system.access)), lambda i: f"system.access[{i}].name", "access")
    for i, a in enumerate(cfg.system.access):
        if a.from_ not in zones:
            p.append(Problem(f"system.access[{i}].from", f"unknown zone {a.from_!r}"))

    # Interfaces: overlapping subnets, duplicate addresses. Sorted by subnet and swept (not every
    # pair: a few thousand addresses made this minutes of CPU behind the world-writable socket);
    # each address is reported once, at the later of the two items, naming the earlier one.
    nets = interface_networks(cfg)
    p += _overlaps(nets)

    # Zones: known interfaces, each interface in one zone.
    owner: dict[str, str] = {}
    for zname, z in cfg.zones.items():
        if zname == SELF:
            p.append(Problem(f"zones.{zname}", "'self' is reserved for the router itself"))
        for j, itf in enumerate(z.interfaces):
            if itf not in ifaces:
                p.append(Problem(f"zones.{zname}.interfaces[{j}]", f"unknown interface {itf!r}"))
            elif itf in owner:
                p.append(Problem(f"zones.{zname}.interfaces[{j}]",
                                 f"interface {itf!r} is already in zone {owner[itf]!r}"))
            else:
                owner[itf] = zname

    # Address sets: one family mix is fine, but no empty-string garbage and no duplicates.
    for sname, s in cfg.sets.items():
        dup = [a for a, c in Counter(s.addresses).items() if c > 1]
        for a in dup:
            p.append(Problem(f"sets.{sname}.addresses", f"duplicate entry {a}"))

    # Policies.
    pairs: dict[tuple[str, str], int] = {}
    for i, pol in enumerate(cfg.policies):
        for field, z in (("from", pol.from_), ("to", pol.to)):
            if z not in zones:
                p.append(Problem(f"policies[{i}].{field}", f"unknown zone {z!r}"))
        key = (pol.from_, pol.to)
        if key in pairs:
            p.append(Problem(f"policies[{i}]", f"a policy from {pol.from_} to {pol.to} already exists "
                                               f"at policies[{pairs[key]}]"))
        pairs.setdefault(key, i)
    p += _dups(list(enumerate(pol.key for pol in cfg.policies)), lambda i: f"policies[{i}].name", "policy")

    # Rules.
    p += _dups(list(enumerate(r.name for r in cfg.rules)), lambda i: f"rules[{i}].name", "rule")
    for i, r in enumerate(cfg.rules):
        for j, z in enumerate(r.from_):
            if z not in zones:
                p.append(Problem(f"rules[{i}].from" + (f"[{j}]" if len(r.from_) > 1 else ""), f"unknown zone {z!r}"))
        for j, z in enumerate(r.to):
            if z != SELF and z not in zones:
                p.append(Problem(f"rules[{i}].to" + (f"[{j}]" if len(r.to) > 1 else ""),
                                 f"unknown zone {z!r} (zones: {', '.join(sorted(zones)) or 'none'}, or 'self')"))
        bad_ref = False
        for side in ("src", "dst"):
            for j, a in enumerate(getattr(r, side)):
                if "/" not in a and a not in cfg.sets:
                    p.append(Problem(f"rules[{i}].{side}[{j}]", f"unknown address set {a!r}"))
                    bad_ref = True
        if not bad_ref and not rule_families(cfg, r):
            p.append(Problem(f"rules[{i}]", f"rule {r.name!r} can never match: its addresses, proto and "
                                            "family have no IP version in common"))
    p += rendered_size(cfg)
    if not any(x.severity == "error" and x.path.startswith("rules") for x in p):
        p += shadowed_rules(cfg)

    # NAT.
    nat_names = [(f"nat.snat[{i}].name", s.name) for i, s in enumerate(cfg.nat.snat)]
    nat_names += [(f"nat.forwards[{i}].name", f.name) for i, f in enumerate(cfg.nat.forwards)]
    paths = dict(enumerate(path for path, _ in nat_names))
    p += _dups([(i, n) for i, (_, n) in enumerate(nat_names)], lambda i: paths[i], "NAT")
    for i, m in enumerate(cfg.nat.masquerade):
        if m.out not in zones:
            p.append(Problem(f"nat.masquerade[{i}].out", f"unknown zone {m.out!r}"))
    for i, s in enumerate(cfg.nat.snat):
        if s.out not in zones:
            p.append(Problem(f"nat.snat[{i}].out", f"unknown zone {s.out!r}"))
        for j, a in enumerate(s.src):
            if "/" not in a and a not in cfg.sets:
                p.append(Problem(f"nat.snat[{i}].src[{j}]", f"unknown address set {a!r}"))
            elif "/" in a and ipaddress.ip_network(a).version != s.to.version:
                p.append(Problem(f"nat.snat[{i}].src[{j}]", f"{a} is not in the family of {s.to}"))
    for i, f in enumerate(cfg.nat.forwards):
        if f.in_ not in zones:
            p.append(Problem(f"nat.forwards[{i}].in", f"unknown zone {f.in_!r}"))
        tgt = f.target_addr
        if target_zone(cfg, tgt) is None:
            p.append(Problem(f"nat.forwards[{i}].to",
                             f"target {tgt} is outside every interface subnet; no zone can reach it"))
        for j, a in enumerate(f.src):
            if "/" not in a and a not in cfg.sets:
                p.append(Problem(f"nat.forwards[{i}].src[{j}]", f"unknown address set {a!r}"))

    # Routes.
    p += _dups(list(enumerate(r.name for r in cfg.routes)), lambda i: f"routes[{i}].name", "route")
    seen_dst: dict[tuple, int] = {}
    for i, r in enumerate(cfg.routes):
        if r.interface and r.interface not in ifaces:
            p.append(Problem(f"routes[{i}].interface", f"unknown interface {r.interface!r}"))
        if r.via is not None and any(a.ip == r.via for _, _, a in nets):
            p.append(Problem(f"routes[{i}].via", f"gateway {r.via} is one of the router's own addresses"))
        elif r.via is not None and not r.interface:
            if not any(net.version == r.via.version and r.via in net for _, net, _ in nets):
                p.append(Problem(f"routes[{i}].via",
                                 f"gateway {r.via} is not on any interface subnet (add 'interface')"))
        key = (r.to, r.metric)
        if key in seen_dst:
            p.append(Problem(f"routes[{i}].to", f"route to {r.to} with metric {r.metric} already at "
                                                f"routes[{seen_dst[key]}]"))
        seen_dst.setdefault(key, i)

    p += link_problems(cfg)
    p += kind_problems(cfg)  # vlan/bridge/bond/dummy: parents, members, loops

    # LAN services (DHCP, RA, DNS, NTP, mDNS).
    from .services import check_services

    p += check_services(cfg)
    from .wan import check_wans

    p += check_wans(cfg)
    from .routing import check_routing

    p += check_routing(cfg)
    p += check_names(cfg)
    from .uplink import check as check_uplinks

    p += check_uplinks(cfg)
    from .nptv6 import check as check_nptv6

    p += check_nptv6(cfg)
    return p


# nft rules a document may render to. Every zone pair gets a chain and a rule lists zones on both
# sides: a 500 KB document of 100 zones and 20 rules rendered 230,000 rules (13 MB of nft text, and
# libnftables' memory to check it) for anyone who can reach validate. 10,000 ordinary rules: ~40,000.
MAX_RENDERED_RULES = 100_000


def rendered_size(cfg: RouterConfig) -> list[Problem]:
    """A problem when the document would render more than MAX_RENDERED_RULES nft rules (counted
    generously: up to 4 per rule per zone pair, 3 per zone pair for the chain's defaults)."""
    n = len(cfg.zones)
    total = 3 * n * n + 4 * len(cfg.nat.forwards)
    if total > MAX_RENDERED_RULES:
        return [Problem("zones", f"{n} zones make {n * n} zone-pair chains (~{total} firewall rules); the limit is "
                                 f"{MAX_RENDERED_RULES} rules")]
    for i, r in enumerate(cfg.rules):
        if r.enabled:
            total += 4 * len(set(r.from_)) * len(set(r.to))
            if total > MAX_RENDERED_RULES:
                return [Problem(f"rules[{i}]", f"the rules up to here render to more than {MAX_RENDERED_RULES} firewall "
                                               "rules (each rule once per pair of its from and to zones)")]
    return []


def link_problems(cfg: RouterConfig) -> list[Problem]:
    """Links the document may not own (the loopback, CNI and pod links), and routes the kernel
    would refuse half-way through an apply: on a disabled link, or via a gateway that only a
    disabled interface's subnet reaches."""
    from .links import foreign_link

    p = []
    for name in cfg.interfaces:
        why = foreign_link(name)
        if why:
            p.append(Problem(f"interfaces.{name}", f"{name!r} cannot be configured: {why}"))
    mgmt = cfg.interfaces.get(cfg.system.management_interface or "")
    if mgmt is not None and not mgmt.enabled:
        p.append(Problem(f"interfaces.{cfg.system.management_interface}.enabled",
                         "the management interface cannot be disabled (Talos reaches the box through it)"))
    for i, r in enumerate(cfg.routes):
        itf = cfg.interfaces.get(r.interface) if r.interface else None
        if itf is not None and not itf.enabled:
            p.append(Problem(f"routes[{i}].interface", f"interface {r.interface!r} is disabled; the kernel "
                                                       "refuses a route over a link that is down"))
        elif r.via is not None:
            reach = [n for n, net, _ in interface_networks(cfg) if net.version == r.via.version and r.via in net]
            if not r.interface and reach and not any(cfg.interfaces[n].enabled for n in reach):
                p.append(Problem(f"routes[{i}].via", f"gateway {r.via} is only on the subnet of disabled "
                                                     f"interface {reach[0]!r}"))
            elif r.interface and reach and r.interface not in reach:
                p.append(Problem(f"routes[{i}].via", f"gateway {r.via} is on the subnet of interface {reach[0]!r}, "
                                                     f"not of {r.interface!r}"))
    return p


def target_zone(cfg: RouterConfig, addr) -> str | None:
    for ifname, net, _ in interface_networks(cfg):
        if net.version == addr.version and addr in net:
            return cfg.zone_of(ifname)
    return None


# ---- shadowing -------------------------------------------------------------------------


def _port_ranges(ports: list[str]) -> list[tuple[int, int]]:
    """Sorted, merged (disjoint) port ranges."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted((int(lo), int(hi or lo)) for lo, _, hi in (p.partition("-") for p in ports)):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _merged(cfg: RouterConfig, items: list[str]) -> dict[int, tuple[list[int], list[int]]]:
    """The addresses of a rule side as disjoint, merged ranges per IP version: {ver: (firsts, lasts)}.
    A set's ranges are computed once per config."""
    key = ("merged", tuple(items))
    got = cfg._nets.get(key)
    if got is not None:
        return got
    parsed = []
    for a in items:
        parsed.extend(set_prefixes(cfg, a) if a in cfg.sets else [prefix.parse(a)])
    got = {}
    for ver in (4, 6):
        los: list[int] = []
        his: list[int] = []
        for _, lo, hi, _ in sorted(t for t in parsed if t[0] == ver):
            if his and lo <= his[-1] + 1:
                his[-1] = max(his[-1], hi)
            else:
                los.append(lo)
                his.append(hi)
        got[ver] = (los, his)
    cfg._nets[key] = got
    return got


def _addrs_cover(outer: dict | None, inner: dict | None) -> bool:
    """outer/inner: _merged() ranges, or None for "any address". Every range of inner inside one of
    outer's (bisect: O(inner log outer), not every pair of prefixes)."""
    if outer is None:
        return True
    if inner is None:
        return False
    for ver, (ilos, ihis) in inner.items():
        los, his = outer[ver]
        for lo, hi in zip(ilos, ihis, strict=True):
            i = bisect.bisect_right(los, lo) - 1
            if i < 0 or hi > his[i]:
                return False
    return True


def _size(m: dict | None) -> int:
    return 0 if m is None else sum(len(los) for los, _ in m.values())


class _Match:
    """What a rule matches, resolved once (not once per pair of rules)."""

    __slots__ = ("fams", "proto", "icmp", "sport", "dport", "src", "dst", "cost")

    def __init__(self, cfg: RouterConfig, r: Rule):
        self.fams = rule_families(cfg, r)
        self.proto = r.proto
        self.icmp = frozenset(r.icmp_types) if r.icmp_types else None
        self.sport = _port_ranges(r.sport) if r.sport else None
        self.dport = _port_ranges(r.dport) if r.dport else None
        self.src = _merged(cfg, r.src) if r.src else None
        self.dst = _merged(cfg, r.dst) if r.dst else None
        # what comparing another rule with this one costs at most (steps of SHADOW_BUDGET)
        self.cost = 1 + len(self.sport or ()) + len(self.dport or ()) + _size(self.src) + _size(self.dst)


def _covers(a: _Match, b: _Match) -> bool:
    """With b's zones within a's (checked by the caller): does a match every packet b matches?"""
    if not b.fams <= a.fams:
        return False
    if a.proto != "any" and a.proto != b.proto:
        return False
    if a.icmp and not (b.icmp and b.icmp <= a.icmp):
        return False
    return (_ranges_cover(a.dport, b.dport) and _ranges_cover(a.sport, b.sport)
            and _addrs_cover(a.src, b.src) and _addrs_cover(a.dst, b.dst))


def _ranges_cover(outer: list | None, inner: list | None) -> bool:
    if outer is None:
        return True
    if inner is None:
        return False
    los = [a for a, _ in outer]
    for lo, hi in inner:
        i = bisect.bisect_right(los, lo) - 1
        if i < 0 or hi > outer[i][1]:
            return False
    return True


# Steps (rule pairs, weighted by their ports and address ranges) the shadowing check may take: a
# warning only, and without a bound a few hundred KB of rules were minutes of CPU for anyone who can
# reach validate (the read-only socket). ~1-2 s on this (loaded) box; the rest is skipped with a note.
SHADOW_BUDGET = 5_000_000


def shadowed_rules(cfg: RouterConfig, budget: int | None = None) -> list[Problem]:
    """Rules an earlier rule with the same or wider zones fully covers. Earlier rules are grouped
    by their zones, so a rule is compared only with those whose zones contain its own. At most
    ``budget`` steps (SHADOW_BUDGET); past it the remaining rules are not checked (one warning)."""
    out = []
    left = SHADOW_BUDGET if budget is None else budget
    groups: dict[tuple[frozenset, frozenset], list[tuple[int, Rule, _Match]]] = {}
    for i, r in enumerate(cfg.rules):
        if not r.enabled:
            continue
        rf, rt, m = frozenset(r.from_), frozenset(r.to), _Match(cfg, r)
        first = None
        for (ef, et), earlier in groups.items():
            if rf <= ef and rt <= et:
                for j, e, em in earlier:
                    if first is not None and j >= first[0]:
                        break
                    left -= m.cost + em.cost
                    if _covers(em, m):
                        first = (j, e)
                        break
        if left < 0:
            out.append(Problem(f"rules[{i}]", f"shadowing not checked from here on ({len(cfg.rules) - i} rules): "
                                              "too many rules to compare in reasonable time", severity="warning"))
            break
        if first is not None:
            j, earlier = first
            verb = "same action" if earlier.action == r.action else f"{earlier.action}s it first"
            out.append(Problem(f"rules[{i}]", f"rule {r.name!r} is shadowed by rules[{j}] "
                                              f"({earlier.name!r}, {verb}); it never matches",
                               severity="warning"))
        groups.setdefault((rf, rt), []).append((i, r, m))
    return out
