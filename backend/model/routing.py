"""Dynamic routing in router.yaml: OSPF (v2), OSPFv3 and BGP, run by FRR.

```yaml
routing:
  router_id: 192.0.2.1            # IPv4, shared by OSPF, OSPFv3 and BGP unless they set their own
  ospf:
    interfaces:
      lan0: {area: 0.0.0.0, hello: 10, dead: 40, cost: 10}
    redistribute: [connected]
  ospfv3:
    interfaces: {lan0: {area: 0}}
  bgp:
    asn: 65001
    networks: [2001:db8:10::/56]   # announced when the route is in the routing table
    neighbors:
      - address: 198.51.100.1
        remote_asn: 65002
        import: ["203.0.113.0/24 le 28"]   # what is accepted from it; default: nothing
```

Import policy (rendered as FRR prefix-lists, one per neighbor and family): a neighbor's routes are
accepted only when a prefix in its ``import`` allows them; a default route only with
``accept_default: true``; prefixes inside the router's own connected subnets never. Export: only
``bgp.networks`` (and the neighbor's ``export`` entries), so routes learned from one peer are not
passed on to another (no accidental transit). OSPF and OSPFv3 (link-state: every router holds the
same database) are filtered where zebra installs them: a default route only with
``accept_default: true``, nothing inside the router's own connected subnets.

Firewall: the zone input chains open tcp/179 from each configured neighbor address (in the zone
of the interface whose subnet holds it, or the neighbor's ``zone``), and IP protocol 89 (OSPF) on
the interfaces OSPF/OSPFv3 run on — nothing else, no rule to write by hand.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from .base import IfName, Name, Strict, listify
from .problem import Problem
from .wan import RoutingTable

MAX_ASN = 4294967295
MAX_NEIGHBORS = 256
MAX_PREFIX_ITEMS = 1000  # import/export entries per neighbor (each is one prefix-list line)


def _area(v) -> str:
    """An OSPF area: an integer 0-4294967295 or a dotted quad; normalised to the dotted form."""
    if isinstance(v, bool):
        raise ValueError(f"invalid OSPF area {v!r}: expected a number 0-4294967295 or a dotted quad like 0.0.0.0")
    if isinstance(v, int):
        if not 0 <= v <= MAX_ASN:
            raise ValueError(f"OSPF area {v} out of range 0-4294967295")
        return str(ipaddress.IPv4Address(v))
    if isinstance(v, str) and re.fullmatch(r"\d{1,10}", v):
        return _area(int(v))
    if isinstance(v, str) and re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", v):
        try:
            return str(ipaddress.IPv4Address(v))
        except ValueError:
            pass
    raise ValueError(f"invalid OSPF area {v!r}: expected a number 0-4294967295 or a dotted quad like 0.0.0.0")


Area = Annotated[str, BeforeValidator(_area)]
Asn = Annotated[int, Field(ge=1, le=MAX_ASN, description="Autonomous system number, 1-4294967295.")]


def _router_id(v):
    if isinstance(v, str):
        try:
            return str(ipaddress.IPv4Address(v))
        except ValueError:
            pass
    raise ValueError(f"invalid router id {v!r}: a router id is an IPv4 address (dotted quad)")


RouterId = Annotated[str, BeforeValidator(_router_id)]


def parse_prefix_item(v) -> tuple[ipaddress._BaseNetwork, int | None, int | None]:
    """'P', 'P le N', 'P ge N', 'P ge N le M' → (network, ge, le); raises ValueError."""
    if not isinstance(v, str) or len(v) > 100:
        raise ValueError(f"invalid prefix filter {v!r}: expected 'PREFIX [ge N] [le M]'")
    m = re.fullmatch(r"\s*(\S+)(?:\s+ge\s+(\d{1,3}))?(?:\s+le\s+(\d{1,3}))?\s*", v)
    if not m:
        raise ValueError(f"invalid prefix filter {v!r}: expected 'PREFIX [ge N] [le M]'")
    try:
        net = ipaddress.ip_network(m.group(1), strict=True)
    except ValueError as e:
        raise ValueError(f"invalid prefix filter {v!r}: {e}") from None
    ge = int(m.group(2)) if m.group(2) else None
    le = int(m.group(3)) if m.group(3) else None
    top = net.max_prefixlen
    for word, n in (("ge", ge), ("le", le)):
        if n is not None and not net.prefixlen < n <= top:
            raise ValueError(f"invalid prefix filter {v!r}: {word} must be longer than /{net.prefixlen} "
                             f"and at most {top}")
    if ge is not None and le is not None and ge > le:
        raise ValueError(f"invalid prefix filter {v!r}: ge {ge} is greater than le {le}")
    return net, ge, le


def _prefix_items(v) -> list[str]:
    items = listify(v)
    if len(items) > MAX_PREFIX_ITEMS:
        raise ValueError(f"{len(items)} entries; at most {MAX_PREFIX_ITEMS}")
    out = []
    for i, x in enumerate(items):
        try:
            net, ge, le = parse_prefix_item(x)
        except ValueError as e:
            raise ValueError(f"item {i}: {e}" if len(items) > 1 else str(e)) from None
        out.append(str(net) + (f" ge {ge}" if ge is not None else "") + (f" le {le}" if le is not None else ""))
    return out


PrefixFilters = Annotated[list[str], BeforeValidator(_prefix_items)]


def _networks(v) -> list[str]:
    out = []
    for x in listify(v):
        if not isinstance(x, str):
            raise ValueError(f"invalid prefix {x!r}")
        try:
            out.append(str(ipaddress.ip_network(x, strict=True)))
        except ValueError as e:
            raise ValueError(f"invalid prefix {x!r}: {e}") from None
    return out


Networks = Annotated[list[str], BeforeValidator(_networks)]
Redistribute = Annotated[list[Literal["connected", "static", "kernel", "ospf", "ospfv3", "bgp"]],
                         BeforeValidator(listify)]


class OspfInterface(Strict):
    area: Area = Field("0.0.0.0", description="Area: a number or a dotted quad (0 = backbone).")
    cost: int | None = Field(None, ge=1, le=65535)
    hello: int = Field(10, ge=1, le=65535, description="Hello interval (s); must match the neighbors'.")
    dead: int = Field(40, ge=1, le=65535, description="Dead interval (s); must match the neighbors'.")
    passive: bool = Field(False, description="Announce the interface's subnet but form no adjacency on it.")
    network: Literal["broadcast", "point-to-point"] | None = Field(None, description="OSPF network type.")

    @model_validator(mode="after")
    def _timers(self):
        if self.dead <= self.hello:
            raise ValueError(f"dead interval {self.dead} must be longer than the hello interval {self.hello}")
        return self


class Ospf(Strict):
    enabled: bool = True
    router_id: RouterId | None = Field(None, description="Default: routing.router_id.")
    interfaces: dict[IfName, OspfInterface] = Field(default_factory=dict)
    redistribute: Redistribute = Field(default_factory=list)
    default_originate: bool = Field(False, description="Announce a default route into OSPF (when the router has one).")
    accept_default: bool = Field(False, description="Install a default route learned by OSPF (refused otherwise).")


class BgpNeighbor(Strict):
    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    remote_asn: Asn
    description: str | None = Field(None, max_length=80, pattern=r"^[^\n\r!#]*$")
    ebgp_multihop: int | None = Field(None, ge=2, le=255, description="Allow an eBGP peer this many hops away.")
    zone: Name | None = Field(None, description="Zone the session arrives from (default: the zone of the interface "
                                                "whose subnet holds the address; needed for multihop peers).")
    import_: PrefixFilters = Field(default_factory=list, alias="import",
                                   description="Prefixes accepted from this neighbor ('P', 'P le N', 'P ge N le M'); "
                                               "empty: nothing is accepted.")
    export: PrefixFilters = Field(default_factory=list,
                                  description="Prefixes announced to it besides bgp.networks.")
    accept_default: bool = Field(False, description="Accept a default route from it (refused otherwise).")
    enabled: bool = True


class Bgp(Strict):
    enabled: bool = True
    asn: Asn
    router_id: RouterId | None = Field(None, description="Default: routing.router_id.")
    neighbors: list[BgpNeighbor] = Field(default_factory=list, max_length=MAX_NEIGHBORS)
    networks: Networks = Field(default_factory=list, description="Prefixes announced (when in the routing table).")
    redistribute: Redistribute = Field(default_factory=list,
                                       description="Sources redistributed into BGP (still limited by export).")

    @field_validator("redistribute")
    @classmethod
    def _no_self(cls, v):
        if "bgp" in v:
            raise ValueError("BGP cannot redistribute itself")
        return v


class Routing(Strict):
    router_id: RouterId | None = Field(None, description="IPv4 router id shared by OSPF, OSPFv3 and BGP.")
    ospf: Ospf | None = None
    ospfv3: Ospf | None = None
    bgp: Bgp | None = None
    # Policy routing (backend/model/wan.py, backend/host/rules.py): rules[].table sends traffic here.
    tables: dict[Name, RoutingTable] = Field(default_factory=dict, max_length=64,
                                             description="Extra routing tables (id, routes) for policy routing.")

    @field_validator("ospf", "ospfv3")
    @classmethod
    def _no_self(cls, v, info):
        if v is not None and info.field_name in v.redistribute:
            raise ValueError(f"{info.field_name} cannot redistribute itself")
        return v


def routing_of(cfg) -> Routing | None:
    return getattr(cfg, "routing", None)


def ospf_on(r: Routing | None, which: str) -> Ospf | None:
    o = getattr(r, which, None) if r is not None else None
    return o if o is not None and o.enabled else None


def bgp_on(r: Routing | None) -> Bgp | None:
    return r.bgp if r is not None and r.bgp is not None and r.bgp.enabled else None


def enabled(cfg) -> bool:
    r = routing_of(cfg)
    return bool(ospf_on(r, "ospf") or ospf_on(r, "ospfv3") or bgp_on(r))


def connected(cfg) -> list[tuple[str, ipaddress._BaseNetwork, ipaddress._BaseAddress]]:
    """[(ifname, subnet, address)] of the enabled interfaces' addresses."""
    return [(n, a.network, a.ip) for n, itf in cfg.interfaces.items() if itf.enabled for a in [*itf.ipv4, *itf.ipv6]]


def neighbor_link(cfg, nb: BgpNeighbor) -> str | None:
    for name, net, _ in connected(cfg):
        if nb.address.version == net.version and nb.address in net:
            return name
    return None


def neighbor_zone(cfg, nb: BgpNeighbor) -> str | None:
    if nb.zone:
        return nb.zone
    link = neighbor_link(cfg, nb)
    return cfg.zone_of(link) if link else None


def check_routing(cfg) -> list[Problem]:
    r = routing_of(cfg)
    if r is None:
        return []
    p: list[Problem] = []
    own = {ip for _, _, ip in connected(cfg)}
    for which, fam in (("ospf", 4), ("ospfv3", 6)):
        o = ospf_on(r, which)
        if o is None:
            continue
        if not o.interfaces:
            p.append(Problem(f"routing.{which}.interfaces", f"{which} runs on no interface"))
        for name in o.interfaces:
            path = f"routing.{which}.interfaces.{name}"
            itf = cfg.interfaces.get(name)
            if itf is None:
                p.append(Problem(path, f"no interface {name!r} in interfaces"))
            elif not itf.enabled:
                p.append(Problem(path, f"interface {name} is disabled", "warning"))
            elif fam == 4 and not itf.ipv4:
                p.append(Problem(path, f"OSPF needs an IPv4 address on {name}"))
            elif cfg.zone_of(name) is None:
                p.append(Problem(path, f"interface {name} is in no zone: the firewall would drop its OSPF packets"))
        if fam == 4 and o.router_id is None and r.router_id is None:
            p.append(Problem(f"routing.{which}.router_id", "no router id: FRR picks one from the interfaces, and it "
                                                          "changes when they do (set routing.router_id)", "warning"))
    b = bgp_on(r)
    if b is not None:
        if b.router_id is None and r.router_id is None:
            p.append(Problem("routing.bgp.router_id", "no router id: FRR picks one from the interfaces, and it "
                                                      "changes when they do (set routing.router_id)", "warning"))
        counts = Counter(nb.address for nb in b.neighbors)
        seen: dict = {}
        for i, nb in enumerate(b.neighbors):
            path = f"routing.bgp.neighbors[{i}]"
            if counts[nb.address] > 1 and nb.address in seen:
                p.append(Problem(f"{path}.address", f"duplicate neighbor {nb.address} (also at "
                                                    f"routing.bgp.neighbors[{seen[nb.address]}])"))
                continue
            seen.setdefault(nb.address, i)
            if nb.address in own:
                p.append(Problem(f"{path}.address", f"{nb.address} is one of the router's own addresses"))
                continue
            if nb.address.is_multicast or nb.address.is_unspecified or nb.address.is_loopback:
                p.append(Problem(f"{path}.address", f"{nb.address} cannot be a BGP neighbor"))
                continue
            if nb.zone is not None and nb.zone not in cfg.zones:
                p.append(Problem(f"{path}.zone", f"no zone {nb.zone!r}"))
            link = neighbor_link(cfg, nb)
            ebgp = nb.remote_asn != b.asn
            if link is None:
                if ebgp and nb.ebgp_multihop is None:
                    p.append(Problem(f"{path}.address", f"{nb.address} is not in any connected subnet: an eBGP session "
                                                        "needs a directly connected peer (or set ebgp_multihop)"))
                elif nb.zone is None:
                    p.append(Problem(f"{path}.zone", f"{nb.address} is not in any connected subnet: name the zone its "
                                                     "session arrives from (the firewall opens tcp/179 there)"))
            elif cfg.zone_of(link) is None and nb.zone is None:
                p.append(Problem(f"{path}.address", f"{nb.address} is on {link}, which is in no zone: the firewall "
                                                    "would drop the session"))
            for key, items in (("import", nb.import_), ("export", nb.export)):
                for j, item in enumerate(items):
                    net = ipaddress.ip_network(item.split()[0])
                    if net.version != nb.address.version:
                        p.append(Problem(f"{path}.{key}[{j}]", f"{item} is not in the family of the session "
                                                              f"({nb.address}); it would never match"))
                    elif key == "import" and net.prefixlen == 0 and not nb.accept_default:
                        p.append(Problem(f"{path}.import[{j}]", "the default route is refused unless "
                                                                "accept_default is true", "warning"))
    return p


def openings(cfg, zone: str) -> list[tuple[str, list, str | int, int | None, str | None]]:
    """What the firewall opens to the router for routing on one zone:
    [(what, [saddr networks] or [interfaces], l4proto, dport or None, nfproto)]. BGP: tcp/179 from
    each enabled neighbor whose session arrives in this zone; OSPF: protocol 89 on its interfaces."""
    r = routing_of(cfg)
    if r is None or zone not in cfg.zones:
        return []
    out = []
    zifs = set(cfg.zones[zone].interfaces)
    for which, nfproto in (("ospf", "ipv4"), ("ospfv3", "ipv6")):
        o = ospf_on(r, which)
        if o is not None:
            ifs = sorted(n for n in o.interfaces if n in zifs and not o.interfaces[n].passive)
            if ifs:
                out.append((which, ifs, 89, None, nfproto))
    b = bgp_on(r)
    if b is not None:
        for fam, nfproto in ((4, "ipv4"), (6, "ipv6")):
            addrs = sorted({nb.address for nb in b.neighbors if nb.enabled and nb.address.version == fam
                            and neighbor_zone(cfg, nb) == zone}, key=int)
            if addrs:
                out.append(("bgp", [str(a) for a in addrs], "tcp", 179, nfproto))
    return out
