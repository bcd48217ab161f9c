"""The router's configuration document (``router.yaml``), version 1.

Pydantic v2 models, unknown keys rejected everywhere. Structural validation lives here
(types, ranges, prefixes, ports); checks that need the whole document (references,
duplicates, overlaps, shadowing) live in :mod:`backend.model.checks`.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from . import prefix
from .base import HOSTNAME_RE, NAME_RE, IfName, Name, Strict, listify, route_gateway
from .kubernetes import POD_SUBNETS, SERVICE_SUBNETS
from .nptv6 import Nptv6
from .routing import Routing
from .services import DhcpScope, Dns, Mdns, Ntp, RouterAdvert
from .uplink import DelegatedAddress, Ipv6Auto
from .wan import Wans

Action = Literal["accept", "drop", "reject"]

# ICMP type names nft understands (icmp / icmpv6 type names).
ICMP_TYPES = {
    "echo-reply", "destination-unreachable", "source-quench", "redirect", "echo-request",
    "router-advertisement", "router-solicitation", "time-exceeded", "parameter-problem",
    "timestamp-request", "timestamp-reply", "info-request", "info-reply",
    "address-mask-request", "address-mask-reply",
}
ICMPV6_TYPES = {
    "destination-unreachable", "packet-too-big", "time-exceeded", "parameter-problem",
    "echo-request", "echo-reply", "mld-listener-query", "mld-listener-report",
    "mld-listener-done", "mld-listener-reduction", "nd-router-solicit", "nd-router-advert",
    "nd-neighbor-solicit", "nd-neighbor-advert", "nd-redirect", "router-renumbering",
    "ind-neighbor-solicit", "ind-neighbor-advert", "mld2-listener-report",
}




_listify = listify


def _port_item(v) -> str:
    """A port item is N or "N-M"; returned normalised as a string."""
    if isinstance(v, bool):
        raise ValueError("a port must be a number 1-65535 or a range 'N-M'")
    if isinstance(v, int):
        lo = hi = v
    elif isinstance(v, str) and re.fullmatch(r"\s*\d+\s*(-\s*\d+\s*)?", v):
        parts = [int(p) for p in v.split("-")]
        lo, hi = parts[0], parts[-1]
    else:
        raise ValueError(f"invalid port {v!r}: expected a number 1-65535 or a range 'N-M'")
    if not (1 <= lo <= 65535 and 1 <= hi <= 65535):
        raise ValueError(f"port {v!r} out of range 1-65535")
    if lo > hi:
        raise ValueError(f"port range {v!r} is reversed")
    return str(lo) if lo == hi else f"{lo}-{hi}"


def _ports(v):
    return [_port_item(p) for p in _listify(v)]


Ports = Annotated[list[str], BeforeValidator(_ports)]
NameList = Annotated[list[Name], BeforeValidator(_listify)]


def _address(v: str) -> str:
    """An address item: a host or prefix (host bits must be zero), or a set name."""
    if not isinstance(v, str):
        raise ValueError(f"invalid address {v!r}")
    if re.fullmatch(NAME_RE, v) and not re.fullmatch(r"[0-9.]+|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*", v):
        return v  # a named address set, resolved by the checks
    try:
        return prefix.parse(v)[3]
    except ValueError as e:
        raise ValueError(f"invalid address or prefix {v!r}: {e}") from None


def _addresses(v) -> list[str]:
    out = []
    items = _listify(v)
    for i, a in enumerate(items):
        try:
            out.append(_address(a))
        except ValueError as e:
            raise ValueError(f"item {i}: {e}" if len(items) > 1 else str(e)) from None
    return out


AddressList = Annotated[list[str], BeforeValidator(_addresses)]


def _prefix(v: str) -> str:
    if not isinstance(v, str):
        raise ValueError(f"invalid prefix {v!r}")
    try:
        return str(ipaddress.ip_network(v, strict=True))
    except ValueError as e:
        raise ValueError(f"invalid prefix {v!r}: {e}") from None


class Kubernetes(Strict):
    """Set when the router runs Talos + Kubernetes: LAN subnets must stay out of these CIDRs and
    the firewall lets pod traffic through (Kubernetes polices it)."""

    pod_cidrs: Annotated[list[str], BeforeValidator(lambda v: [_prefix(x) for x in _listify(v)])] = Field(
        default_factory=lambda: list(POD_SUBNETS))
    service_cidrs: Annotated[list[str], BeforeValidator(lambda v: [_prefix(x) for x in _listify(v)])] = Field(
        default_factory=lambda: list(SERVICE_SUBNETS))


class AccessPath(Strict):
    """A management path that must keep working: a commit that would drop it is refused."""

    name: Name
    from_: Name = Field(alias="from", description="Zone the admin connects from.")
    proto: Literal["tcp", "udp"] = "tcp"
    port: int = Field(ge=1, le=65535)
    src: Annotated[str, BeforeValidator(_prefix)] | None = Field(
        None, description="Admin source prefix; default: the zone's own subnets.")


class System(Strict):
    hostname: str = Field("talgate", pattern=HOSTNAME_RE, max_length=253, description="The router's host name.")
    domain: str | None = Field(None, pattern=HOSTNAME_RE, max_length=253, description="The LAN's DNS domain.")
    management_interface: IfName | None = Field(
        None, description="The link Talos configures itself (management); all others belong to the agent."
    )
    kubernetes: Kubernetes | None = Field(None, description="Pod/service CIDRs when running on Talos + Kubernetes.")
    access: list[AccessPath] = Field(
        default_factory=list,
        description="Management access to protect (SSH 22, Kubernetes API 6443, Talos API 50000 …): "
                    "a commit that would drop one is refused unless forced with a confirm timer.")


def _yaml_off(v):
    """YAML 1.1 reads a bare `off` as false (and `on` as true): take them as the words meant."""
    return {False: "off", True: "strict"}.get(v, v) if isinstance(v, bool) else v


def _tagged(*members, pick):
    """A union that validates only the member pick(value) names (one error, not one per member; the
    capitalised tags are dropped from problem paths by backend.model.load)."""
    from typing import Union

    from pydantic import Discriminator, Tag

    return Annotated[Union[tuple(Annotated[t, Tag(tag)] for tag, t in members)],  # noqa: UP007
                     Discriminator(pick)]


class Interface(Strict):
    description: str | None = None
    enabled: bool = True
    mtu: int | None = Field(None, ge=576, le=65535, description="Link MTU (IPv6 needs >= 1280).")
    ipv4: _tagged(("Static", list[ipaddress.IPv4Interface]), ("Dhcp", Literal["dhcp"]),
                  pick=lambda v: "Dhcp" if v == "dhcp" else "Static") = Field(
        default_factory=list, description="Static IPv4 addresses (CIDR), or 'dhcp' (learned: backend/model/uplink.py).")
    ipv6: _tagged(("Static", list[_tagged(("Address", ipaddress.IPv6Interface), ("Delegated", DelegatedAddress),
                                          pick=lambda v: "Delegated" if isinstance(v, dict) else "Address")]),
                  ("Auto", Ipv6Auto), pick=lambda v: "Auto" if isinstance(v, dict) else "Static") = Field(
        default_factory=list, description="Static IPv6 addresses (CIDR) and addresses from a delegated prefix "
        "({from_delegated: WAN, subnet: N, host: ::1}), or how a WAN learns them ({slaac, dhcpv6, prefix_delegation}).")
    rp_filter: Annotated[Literal["strict", "loose", "off"], BeforeValidator(_yaml_off)] = Field(
        "strict",
        description="Anti-spoofing: a reverse-path check in nftables before conntrack (chain antispoof, rule "
                    "'antispoof IFNAME', counted). strict (default) drops a packet arriving here unless the route "
                    "back to its source leaves through this interface; loose only needs some route back (for "
                    "asymmetric routing); off disables the check on this link. strict and loose also drop "
                    "packets whose source is one of the router's own addresses. DHCPv4 discovery from 0.0.0.0 "
                    "and IPv6 link-local/unspecified sources (ND, DAD, DHCPv6) always pass.")

    # What the uplink forms of ipv4/ipv6 said (after validation ipv4/ipv6 hold static addresses only).
    _dhcp4: bool = PrivateAttr(False)
    _v6auto: Ipv6Auto | None = PrivateAttr(None)
    _delegated: list = PrivateAttr(default_factory=list)  # [(index in ipv6, DelegatedAddress)]

    @field_validator("ipv4", "ipv6", mode="before")
    @classmethod
    def _list(cls, v):
        return v if v == "dhcp" or isinstance(v, dict) else _listify(v)

    @model_validator(mode="after")
    def _uplink(self):
        if self.ipv4 == "dhcp":
            self.ipv4, self._dhcp4 = [], True
        if isinstance(self.ipv6, Ipv6Auto):
            self.ipv6, self._v6auto = [], self.ipv6
        elif any(isinstance(a, DelegatedAddress) for a in self.ipv6):
            self._delegated = [(i, a) for i, a in enumerate(self.ipv6) if isinstance(a, DelegatedAddress)]
            self.ipv6 = [a for a in self.ipv6 if not isinstance(a, DelegatedAddress)]
        return self

    @property
    def dhcp4(self) -> bool:
        return self._dhcp4

    @property
    def v6auto(self) -> Ipv6Auto | None:
        return self._v6auto

    @property
    def delegated(self) -> list:
        return self._delegated

    @model_validator(mode="after")
    def _mtu_v6(self):
        if self.ipv6 and self.mtu is not None and self.mtu < 1280:
            raise ValueError("mtu below 1280 cannot carry IPv6")
        return self


class EthernetInterface(Interface):
    """A link that exists on its own (a NIC, or a veth in the lab): the agent configures it, never
    creates or deletes it."""

    kind: Literal["ethernet"] = Field("ethernet", description="What the link is: ethernet (default) for an "
                                      "existing link; the agent creates and removes the other kinds.")


# Links the agent creates and removes (backend/host/links.py); the whole-document checks (parents
# and members known, no loops, a port in one master) are in backend/model/kinds.py.
VlanId = Annotated[int, Field(ge=1, le=4094, description="An 802.1Q VLAN id, 1-4094.")]


class VlanInterface(Interface):
    """An 802.1Q VLAN on a parent link (a trunk): frames tagged `id` on `link`. Name it e.g.
    `lan0.20` (any name of at most 15 bytes)."""

    kind: Literal["vlan"]
    link: IfName = Field(description="The parent link (an interface of this document) the tagged frames use.")
    id: VlanId


class BridgePort(Strict):
    """A bridge port's VLANs (only with `vlan_filtering`)."""

    vids: Annotated[list[VlanId], BeforeValidator(_listify)] = Field(
        default_factory=list, max_length=4094, description="VLANs this port carries tagged (a trunk).")
    pvid: VlanId | None = Field(None, description="The VLAN untagged frames arriving here belong to (an access port).")
    untagged: bool = Field(True, description="Frames of the pvid VLAN leave this port untagged.")


def _bridge_ports(v):
    """`ports: [a, b]` is `ports: {a: {}, b: {}}`."""
    if isinstance(v, (list, str)):
        items = _listify(v)
        if all(isinstance(x, str) for x in items):
            return {x: {} for x in items}
    return v


class BridgeInterface(Interface):
    """A bridge of member ports (interfaces of this document; they carry no addresses of their own)."""

    kind: Literal["bridge"]
    ports: Annotated[dict[IfName, BridgePort], BeforeValidator(_bridge_ports)] = Field(
        default_factory=dict, max_length=256, description="Member ports: a list of names, or name -> {vids, pvid, untagged}.")
    vlan_filtering: bool = Field(False, description="802.1Q-aware bridge: ports carry only their vids/pvid.")
    pvid: VlanId | None = Field(None, description="With vlan_filtering: the VLAN of the bridge's own untagged "
                                                  "traffic (its addresses). VLANs on the bridge (kind vlan, "
                                                  "link: the bridge) are added to it tagged.")
    stp: bool = Field(False, description="Run the kernel's spanning tree on the bridge.")

    @model_validator(mode="after")
    def _vlans_need_filtering(self):
        if not self.vlan_filtering and (self.pvid is not None
                                        or any(p.vids or p.pvid is not None for p in self.ports.values())):
            raise ValueError("per-port vids/pvid and pvid need vlan_filtering: true")
        return self


class BondInterface(Interface):
    """A bond (link aggregation) of member links (ethernet interfaces of this document)."""

    kind: Literal["bond"]
    mode: Annotated[Literal["802.3ad", "active-backup"], BeforeValidator(
        lambda v: "802.3ad" if v in ("lacp", "LACP") else v)] = Field(
        "active-backup", description="802.3ad (LACP; `lacp` is accepted) or active-backup.")
    members: Annotated[list[IfName], BeforeValidator(_listify)] = Field(min_length=1, max_length=16)
    miimon: int = Field(100, ge=0, le=60000, description="Link monitoring interval, milliseconds (0: off).")
    primary: IfName | None = Field(None, description="active-backup: the member preferred when it is up.")
    lacp_rate: Literal["slow", "fast"] = Field("slow", description="802.3ad: LACPDU rate asked of the partner.")

    @model_validator(mode="after")
    def _primary(self):
        if self.primary is not None and (self.mode != "active-backup" or self.primary not in self.members):
            raise ValueError("primary must be one of the members, and only in mode active-backup")
        if len(set(self.members)) != len(self.members):
            raise ValueError("a member is listed twice")
        return self


class DummyInterface(Interface):
    """A dummy link: always up, holds addresses (a loopback-like anchor for routing)."""

    kind: Literal["dummy"]


# Interface kinds: `interfaces.NAME.kind` selects the model (a discriminated union). A new kind is one
# model class (subclass of Interface with `kind: Literal[...]`) registered here, plus its applier.
INTERFACE_KINDS: dict[str, type[Interface]] = {"ethernet": EthernetInterface, "vlan": VlanInterface,
                                               "bridge": BridgeInterface, "bond": BondInterface,
                                               "dummy": DummyInterface}


def _interface_kind(v) -> str | None:
    """The union member's tag, 'Kind[NAME]' (problem paths skip such union tags)."""
    k = v.get("kind", "ethernet") if isinstance(v, dict) else getattr(v, "kind", "ethernet")
    return f"Kind[{k}]" if isinstance(k, str) and k in INTERFACE_KINDS else None


def _interface_union():
    from pydantic import Discriminator, Tag

    members = tuple(Annotated[cls, Tag(f"Kind[{kind}]")] for kind, cls in INTERFACE_KINDS.items())
    if len(members) == 1:  # a one-member union is the member itself; the Literal checks the kind
        return next(iter(INTERFACE_KINDS.values()))
    from typing import Union

    return Annotated[Union[members], Discriminator(  # noqa: UP007 - built from the registry
        _interface_kind, custom_error_type="interface_kind",
        custom_error_message=f"unknown interface kind (known: {', '.join(INTERFACE_KINDS)})")]


AnyInterface = _interface_union()


class Zone(Strict):
    description: str | None = None
    interfaces: list[IfName] = Field(default_factory=list)
    input: Action = Field("drop", description="Default for traffic from this zone to the router itself.")
    forward: Action = Field("drop", description="Default for traffic from this zone to any zone without a policy.")
    log: bool = Field(False, description="Log packets that hit this zone's defaults.")


class Policy(Strict):
    name: Name | None = None
    from_: Name = Field(alias="from")
    to: Name
    action: Action
    log: bool = False

    @property
    def key(self) -> str:
        return self.name or f"{self.from_}-{self.to}"


def _set_items(v) -> list:
    """Set items: prefixes, or {from_delegated: WAN, subnet: N[, host]} (kept for the model)."""
    items = _listify(v)
    if not any(isinstance(a, dict) for a in items):
        return _addresses(items)
    return [a if isinstance(a, dict) else _addresses([a])[0] for a in items]


class AddressSet(Strict):
    description: str | None = None
    addresses: Annotated[list[str | DelegatedAddress], BeforeValidator(_set_items)] = Field(
        default_factory=list, description="Prefixes, or {from_delegated: WAN, subnet: N[, host: ::5]} entries "
                                          "(the /64, or one address, of a delegated prefix; follow its changes).")
    _delegated: list = PrivateAttr(default_factory=list)  # [(index, DelegatedAddress)]

    @field_validator("addresses")
    @classmethod
    def _no_names(cls, v):
        for a in v:
            if isinstance(a, str) and "/" not in a:
                raise ValueError(f"invalid address or prefix {a!r}")
        return v

    @model_validator(mode="after")
    def _split(self):
        if any(isinstance(a, DelegatedAddress) for a in self.addresses):
            self._delegated = [(i, a) for i, a in enumerate(self.addresses) if isinstance(a, DelegatedAddress)]
            self.addresses = [a for a in self.addresses if isinstance(a, str)]
        return self

    @property
    def delegated(self) -> list:
        return self._delegated


class Rule(Strict):
    name: Name
    description: str | None = None
    enabled: bool = True
    from_: NameList = Field(alias="from", description="Source zone(s).")
    to: NameList = Field(description="Destination zone(s), or 'self' for the router itself.")
    src: AddressList = Field(default_factory=list, description="Source prefixes or address-set names.")
    dst: AddressList = Field(default_factory=list, description="Destination prefixes or address-set names.")
    proto: Literal["tcp", "udp", "icmp", "icmpv6", "any"] = Field(
        "any", description="'icmp' is ICMP for IPv4 and ICMPv6 for IPv6 (types matched by name); 'icmpv6' is IPv6 only."
    )
    sport: Ports = Field(default_factory=list)
    dport: Ports = Field(default_factory=list)
    icmp_types: Annotated[list[str], BeforeValidator(_listify)] = Field(default_factory=list)
    family: Literal["ipv4", "ipv6", "any"] = "any"
    action: Action
    log: bool = False
    counter: bool = True
    # Policy routing (backend/model/wan.py): what this rule accepts leaves by that WAN / table.
    route_via: Name | None = Field(None, description="WAN member (wans.members) the matched traffic leaves by.")
    table: Name | int | None = Field(None, description="Routing table (routing.tables name or id) for the matched traffic.")

    @model_validator(mode="after")
    def _consistent(self):
        if (self.sport or self.dport) and self.proto not in ("tcp", "udp"):
            raise ValueError("ports need proto tcp or udp")
        if self.icmp_types:
            if self.proto not in ("icmp", "icmpv6"):
                raise ValueError("icmp_types need proto icmp or icmpv6")
            known = ICMP_TYPES | ICMPV6_TYPES if self.proto == "icmp" else ICMPV6_TYPES
            bad = [t for t in self.icmp_types if t not in known]
            if bad:
                raise ValueError(f"unknown {self.proto} type(s) {', '.join(bad)}")
        if self.proto == "icmpv6" and self.family == "ipv4":
            raise ValueError("proto icmpv6 does not exist in family ipv4")
        if not self.from_:
            raise ValueError("from needs at least one zone")
        if not self.to:
            raise ValueError("to needs at least one zone or 'self'")
        return self


class Masquerade(Strict):
    name: Name | None = None
    out: Name = Field(description="Outbound zone.")
    family: Literal["ipv4", "ipv6", "any"] = Field(
        "ipv4", description="ipv4 by default; ipv6 or any opts in to NAT66 masquerading."
    )

    @property
    def key(self) -> str:
        return self.name or f"masquerade-{self.out}"


class Snat(Strict):
    name: Name
    out: Name = Field(description="Outbound zone.")
    src: AddressList = Field(default_factory=list)
    to: ipaddress.IPv4Address | ipaddress.IPv6Address


class PortForward(Strict):
    name: Name
    in_: Name = Field(alias="in", description="Zone the connection arrives from.")
    proto: Literal["tcp", "udp"] = "tcp"
    dport: Annotated[str, BeforeValidator(_port_item)]
    to: str = Field(description="Target 'ADDR:PORT', '[V6ADDR]:PORT' or just ADDR (same port).")
    src: AddressList = Field(default_factory=list, description="Only from these sources.")
    log: bool = False

    @field_validator("to")
    @classmethod
    def _target(cls, v: str) -> str:
        cls._split(v)
        return v

    @staticmethod
    def _split(v: str):
        m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d+))?|([0-9.]+)(?::(\d+))?|([0-9A-Fa-f:]+)", v)
        if not m:
            raise ValueError(f"invalid forward target {v!r}: expected ADDR:PORT or [V6ADDR]:PORT")
        addr = m.group(1) or m.group(3) or m.group(5)
        port = m.group(2) or m.group(4)
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            raise ValueError(f"invalid forward target address {addr!r}") from None
        if port is not None:
            _port_item(int(port))
        return ip, (int(port) if port else None)

    @property
    def target_addr(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        return self._split(self.to)[0]

    @property
    def target_port(self) -> int | None:
        return self._split(self.to)[1]


class Nat(Strict):
    masquerade: list[Masquerade] = Field(default_factory=list)
    snat: list[Snat] = Field(default_factory=list)
    forwards: list[PortForward] = Field(default_factory=list)
    nptv6: list[Nptv6] = Field(default_factory=list, description="IPv6 prefix translation (backend/model/nptv6.py).")


class Route(Strict):
    name: Name | None = None
    to: Annotated[str, BeforeValidator(lambda v: "0.0.0.0/0" if v == "default" else _prefix(v))]
    via: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    interface: IfName | None = None
    metric: int = Field(0, ge=0, le=2**32 - 1)

    @model_validator(mode="after")
    def _gw(self):
        return route_gateway(self)

    @property
    def key(self) -> str:
        return self.name or f"{self.to}"


class RouterConfig(Strict):
    """talgate router configuration, version 1."""

    model_config = ConfigDict(extra="forbid", title="talgate router.yaml", populate_by_name=True)

    version: Literal[1] = 1
    system: System = Field(default_factory=System)
    interfaces: dict[IfName, AnyInterface] = Field(default_factory=dict)
    zones: dict[Name, Zone] = Field(default_factory=dict)
    sets: dict[Name, AddressSet] = Field(default_factory=dict, description="Named address sets.")
    policies: list[Policy] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    nat: Nat = Field(default_factory=Nat)
    routes: list[Route] = Field(default_factory=list)
    # LAN services (backend/model/services.py).
    dhcp: dict[IfName, DhcpScope] = Field(default_factory=dict, description="DHCPv4/v6 (Kea) per interface.")
    ra: dict[IfName, RouterAdvert] = Field(default_factory=dict, description="Router advertisements (radvd).")
    dns: Dns | None = Field(None, description="The LAN resolver (Unbound).")
    ntp: Ntp | None = Field(None, description="Time service (chrony).")
    mdns: Mdns | None = Field(None, description="mDNS reflection between zones (avahi).")
    routing: Routing | None = Field(None, description="Dynamic routing (FRR): OSPF, OSPFv3, BGP (backend/model/routing.py); "
                                      "extra routing tables for policy routing (tables, backend/model/wan.py).")
    # Multi-WAN (backend/model/wan.py).
    wans: Wans | None = Field(None, description="Uplinks with health checks: failover or balance.")

    # Parsed address sets, filled lazily by backend.model.checks (set_networks, set_prefixes; a config is
    # immutable once validated; big sets are parsed once, not once per rule and zone pair).
    _nets: dict = PrivateAttr(default_factory=dict)
    # The document an effective copy was made from (backend.model.uplink.effective), else None.
    _source: object = PrivateAttr(None)

    def zone_of(self, ifname: str) -> str | None:
        for zname, z in self.zones.items():
            if ifname in z.interfaces:
                return zname
        return None
