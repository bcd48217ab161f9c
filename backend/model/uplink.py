"""Uplinks that learn their address: ``ipv4: dhcp``, ``ipv6: {slaac, dhcpv6, prefix_delegation}``
on a WAN, and LAN addresses (and address-set entries) taken from a delegated prefix.

The document says *how* an address is learned; what was learned is a runtime fact (the agent's
uplink manager, backend/agent/uplink.py). :func:`effective` turns a document and those facts into a
plain document (every ``from_delegated`` entry replaced by a concrete address or prefix, plus the
firewall opening the DHCPv6 client needs), so the renderers (nft, radvd, Kea, Unbound) and the
network applier see ordinary static addresses and follow a prefix change without a commit.

    interfaces:
      wan0: {ipv4: dhcp, ipv6: {slaac: true, dhcpv6: true, prefix_delegation: {length: 56}}}
      lan0: {ipv4: [192.168.10.1/24], ipv6: [{from_delegated: wan0, subnet: 0x10, host: "::1"}]}
    sets:
      lan-pd: {addresses: [{from_delegated: wan0, subnet: 0x10}]}
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from pydantic import Field

from .base import IfName, Strict
from .problem import Problem
from .services import parse_pool

LAN_PREFIX = 64  # a delegated subnet given to a LAN is a /64 (SLAAC)
PD_LIFETIME_CAP = 7200  # how long a replaced prefix stays advertised as deprecated, at most (s)


class PrefixDelegation(Strict):
    length: int = Field(56, ge=48, le=64, description="The prefix length to ask the ISP for (a hint: the "
                        "ISP decides). Subnet ids of from_delegated entries are checked against it.")


class Ipv6Auto(Strict):
    """How a WAN learns its IPv6 configuration."""

    slaac: bool = Field(False, description="Accept router advertisements on this link (address and default route "
                        "learned by the kernel; accept_ra=2 in the router's namespace only).")
    dhcpv6: bool = Field(False, description="Ask for an address (IA_NA) and DNS servers by DHCPv6.")
    prefix_delegation: PrefixDelegation | None = Field(
        None, description="Ask for a delegated prefix (IA_PD) for the LAN interfaces (from_delegated).")


class DelegatedAddress(Strict):
    """An address (or, in an address set without host, a /64) inside a prefix delegated to a WAN."""

    from_delegated: IfName = Field(description="The WAN whose delegated prefix this is taken from.")
    subnet: int = Field(0, ge=0, le=2**32 - 1, description="The /64's subnet id inside the delegated prefix.")
    host: ipaddress.IPv6Address | None = Field(
        None, description="Interface id (the low 64 bits), e.g. ::1. On an interface the default is ::1; in an "
                          "address set without host the entry is the whole /64.")


def client_rule_name(ifname: str) -> str:
    """The input rule :func:`effective` adds for a WAN's DHCPv6 client (a name no rule may take)."""
    return f"talgate-dhcpv6-client-{ifname}"


# -- validation of the whole document ---------------------------------------------------------------


def _entries(cfg):
    """(path, entry, is_interface) for every from_delegated entry of the document."""
    for name, itf in cfg.interfaces.items():
        for i, e in itf.delegated:
            yield f"interfaces.{name}.ipv6[{i}]", e, True
    for sname, s in cfg.sets.items():
        for i, e in s.delegated:
            yield f"sets.{sname}.addresses[{i}]", e, False


def check(cfg) -> list[Problem]:
    p: list[Problem] = []
    seen: dict[tuple[str, int], str] = {}
    for path, e, on_itf in _entries(cfg):
        wan = cfg.interfaces.get(e.from_delegated)
        pd = wan.v6auto.prefix_delegation if wan is not None and wan.v6auto else None
        if wan is None:
            p.append(Problem(f"{path}.from_delegated", f"unknown interface {e.from_delegated!r}"))
            continue
        if pd is None:
            p.append(Problem(f"{path}.from_delegated", f"interface {e.from_delegated} does not ask for a delegated "
                                                       "prefix (ipv6: {prefix_delegation: {length: N}})"))
            continue
        bits = LAN_PREFIX - pd.length
        if e.subnet >= 1 << bits:
            p.append(Problem(f"{path}.subnet", f"subnet id {e.subnet:#x} is beyond the delegated length: a /{pd.length} "
                                               f"leaves {bits} bits for /64 subnets (0x0-{(1 << bits) - 1:#x})"))
        if e.host is not None and int(e.host) >= 1 << 64:
            p.append(Problem(f"{path}.host", f"{e.host} is not an interface id: only the low 64 bits may be set"))
        if on_itf:
            if e.host is not None and int(e.host) == 0:
                p.append(Problem(f"{path}.host", "::0 is the subnet-router anycast address, not a host"))
            if path.split(".")[1] == e.from_delegated:
                p.append(Problem(f"{path}.from_delegated", "an interface cannot take its address from its own "
                                                           "delegated prefix"))
            key = (e.from_delegated, e.subnet)
            if key in seen:
                p.append(Problem(f"{path}.subnet", f"subnet {e.subnet:#x} of {e.from_delegated}'s prefix is already "
                                                   f"used at {seen[key]}"))
            seen.setdefault(key, path)
    reserved = {client_rule_name(n) for n in cfg.interfaces}
    for i, r in enumerate(cfg.rules):
        if r.name in reserved:
            p.append(Problem(f"rules[{i}].name", f"{r.name!r} is reserved: the agent names the DHCPv6 client's "
                                                 "input rule of a WAN so"))
    for name, itf in cfg.interfaces.items():
        if (itf.dhcp4 or itf.v6auto) and cfg.dhcp.get(name) is not None:
            p.append(Problem(f"dhcp.{name}", f"{name} learns its address from upstream (ipv4: dhcp / ipv6: {{...}}); "
                                             "it cannot serve DHCP too"))
    return p


# -- runtime: the document under learned facts --------------------------------------------------------


def pd_address(prefix: str, subnet: int, host: ipaddress.IPv6Address | None) -> str | None:
    """The /64 (host None) or the address/64 of subnet inside a delegated prefix; None when the
    prefix is too long to hold that subnet id."""
    net = ipaddress.IPv6Network(prefix, strict=False)
    bits = LAN_PREFIX - net.prefixlen
    if bits < 0 or subnet >= 1 << bits:
        return None
    base = int(net.network_address) | (subnet << (128 - LAN_PREFIX))
    if host is None:
        return str(ipaddress.IPv6Network((base, LAN_PREFIX)))
    return f"{ipaddress.IPv6Address(base | int(host))}/{LAN_PREFIX}"


def uses_facts(cfg) -> bool:
    return any(itf.dhcp4 or itf.v6auto or itf.delegated for itf in cfg.interfaces.values()) or any(
        s.delegated for s in cfg.sets.values()) or any(
        isinstance(e.inside, DelegatedAddress) or isinstance(e.outside, DelegatedAddress) for e in cfg.nat.nptv6)


def resolve(cfg, delegated: Mapping[str, tuple[str, ...]]) -> tuple[dict, list[str]]:
    """{(kind, name): [concrete items]} for every from_delegated entry under the delegated prefixes,
    and what could not be placed (the ISP delegated less than the subnet id needs)."""
    out: dict[tuple[str, str], list[str]] = {}
    problems: list[str] = []
    for path, e, on_itf in _entries(cfg):
        kind, name = ("itf", path.split(".")[1]) if on_itf else ("set", path.split(".")[1])
        for pre in delegated.get(e.from_delegated, ()):
            host = e.host if e.host is not None else (ipaddress.IPv6Address(1) if on_itf else None)
            a = pd_address(pre, e.subnet, host)
            if a is None:
                problems.append(f"{path}: subnet id {e.subnet:#x} does not fit the delegated {pre}")
                continue
            out.setdefault((kind, name), []).append(a)
    return out, problems


def effective(cfg, delegated: Mapping[str, tuple[str, ...]] | None = None,
              deprecated: Mapping[str, tuple[str, ...]] | None = None,
              lifetimes: Mapping[str, tuple[int, int]] | None = None):
    """The document as the renderers see it under the learned prefixes: a copy with concrete
    addresses in place of from_delegated entries (none while nothing is delegated), the prefixes of
    a replaced delegation listed for radvd as deprecated, and an input rule letting DHCPv6 replies
    reach the client on a WAN that asks for DHCPv6. Returns cfg itself when it uses no uplink feature."""
    src = getattr(cfg, "_source", None) or cfg
    if not uses_facts(src):
        return src
    from .config import Rule
    from .nptv6 import concrete

    eff = src.model_copy(deep=True)
    eff._source = src
    eff._nets = {}
    items, _ = resolve(src, delegated or {})
    for (kind, name), addrs in items.items():
        if kind == "itf":
            itf = eff.interfaces[name]
            have = {str(a) for a in itf.ipv6}
            itf.ipv6 = itf.ipv6 + [ipaddress.IPv6Interface(a) for a in addrs if a not in have]
        else:
            s = eff.sets[name]
            s.addresses = s.addresses + [a for a in addrs if a not in s.addresses]
    for ifname, scope in eff.dhcp.items():  # DHCPv6 pools of a delegated /64: interface ids placed in it
        itf = src.interfaces.get(ifname)
        addrs = items.get(("itf", ifname))
        if scope.ipv6 is None or itf is None or not itf.delegated or itf.ipv6 or not addrs:
            continue  # without a prefix the scope has no subnet: Kea serves nothing there yet
        base = int(ipaddress.IPv6Interface(addrs[0]).network.network_address)
        pools = []
        for pool in scope.ipv6.pools:
            lo, hi = parse_pool(pool)
            pools.append(f"{ipaddress.IPv6Address(base | int(lo))}-{ipaddress.IPv6Address(base | int(hi))}")
        scope.ipv6.pools = pools
    for path, e, on_itf in _entries(src) if lifetimes else ():  # RA lifetimes of a delegated /64
        ra = eff.ra.get(path.split(".")[1]) if on_itf else None
        for pre in (delegated or {}).get(e.from_delegated, ()) if ra is not None else ():
            net = pd_address(pre, e.subnet, None)
            if net is not None and pre in lifetimes:
                ra._lifetimes[net] = tuple(lifetimes[pre])
    for e in eff.nat.nptv6:  # prefix translation: the delegated side as delegated now (None: not yet)
        e._inside, e._outside = concrete(e.inside, delegated), concrete(e.outside, delegated)
    if deprecated:
        old, _ = resolve(src, deprecated)
        for (kind, name), addrs in old.items():
            ra = eff.ra.get(name) if kind == "itf" else None
            if ra is not None:
                nets = {str(ipaddress.IPv6Interface(a).network) for a in addrs}
                current = {str(a.network) for a in eff.interfaces[name].ipv6}
                ra._deprecated = sorted(nets - current)
    extra = []
    for name, itf in src.interfaces.items():
        zone = src.zone_of(name)
        if itf.v6auto and (itf.v6auto.dhcpv6 or itf.v6auto.prefix_delegation) and zone:
            extra.append(Rule.model_validate({
                "name": client_rule_name(name), "from": zone, "to": "self", "proto": "udp",
                "sport": 547, "dport": 546, "src": ["fe80::/10"], "family": "ipv6", "action": "accept"}))
    eff.rules = extra + eff.rules
    return eff
