"""IPv6 prefix translation (``nat.nptv6``): an inside prefix (ULA, or a delegated /64) is seen
from the WAN as an outside prefix of the same length, host part kept, both directions::

    nat:
      nptv6:
        - {interface: wan0, inside: fd00:10:10::/64, outside: {from_delegated: wan0, subnet: 0x20}}
        - {interface: wan1, inside: fd00:10:10::/64, outside: 2001:db8:77:10::/64}

Either side may be ``{from_delegated: WAN, subnet: N}``: the /64 of subnet N of the prefix
delegated to that WAN, following it when the ISP changes it (no commit; nothing rendered while
nothing is delegated).

What the kernel does (backend/render/nptv6.py): a stateful 1:1 prefix mapping in nftables
(``snat ip6 prefix to ip6 saddr map {...}`` on the way out of the interface, ``dnat ip6 prefix
to ip6 daddr map {...}`` on the way in; conntrack's NETMAP). It is not RFC 6296's stateless,
checksum-neutral NPTv6 (nft has no such statement: the ports/checksums are rewritten by conntrack,
and a connection lives in conntrack like any NAT). Inbound connections to an outside address reach
the inside host only when a rule or policy lets the WAN zone reach it (the forward chain sees the
inside address).
"""

from __future__ import annotations

import ipaddress

from pydantic import Field, PrivateAttr

from .base import IfName, Name, Strict
from .problem import Problem
from .uplink import LAN_PREFIX, DelegatedAddress, pd_address

MAX_ENTRIES = 64


class Nptv6(Strict):
    name: Name | None = None
    interface: IfName = Field(description="The WAN link the translation happens on (out of it and into it).")
    inside: ipaddress.IPv6Network | DelegatedAddress = Field(description="The prefix the LAN hosts use.")
    outside: ipaddress.IPv6Network | DelegatedAddress = Field(description="The prefix the world sees.")

    # the concrete prefixes under the learned facts (model/uplink.effective); unset: the static ones
    _inside: ipaddress.IPv6Network | None = PrivateAttr(default=None)
    _outside: ipaddress.IPv6Network | None = PrivateAttr(default=None)

    @property
    def key(self) -> str:
        return self.name or f"nptv6-{self.interface}"

    def prefixes(self) -> tuple[ipaddress.IPv6Network | None, ipaddress.IPv6Network | None]:
        """(inside, outside) as the kernel gets them; None on a side not delegated yet."""
        return (self._inside or concrete(self.inside, None), self._outside or concrete(self.outside, None))


def _length(side) -> int | None:
    if isinstance(side, ipaddress.IPv6Network):
        return side.prefixlen
    return LAN_PREFIX


def concrete(side, delegated) -> ipaddress.IPv6Network | None:
    """The network of one side under the delegated prefixes (the first that holds the subnet id);
    None while nothing is delegated to its WAN."""
    if isinstance(side, ipaddress.IPv6Network):
        return side
    for pre in (delegated or {}).get(side.from_delegated, ()):
        net = pd_address(pre, side.subnet, None)
        if net is not None:
            return ipaddress.IPv6Network(net)
    return None


def check(cfg) -> list[Problem]:
    p: list[Problem] = []
    entries = cfg.nat.nptv6
    if len(entries) > MAX_ENTRIES:
        return [Problem("nat.nptv6", f"at most {MAX_ENTRIES} entries")]
    seen: dict[str, str] = {}
    for i, e in enumerate(entries):
        path = f"nat.nptv6[{i}]"
        if e.interface not in cfg.interfaces:
            p.append(Problem(f"{path}.interface", f"unknown interface {e.interface!r}"))
        for side in ("inside", "outside"):
            v = getattr(e, side)
            if isinstance(v, DelegatedAddress):
                wan = cfg.interfaces.get(v.from_delegated)
                pd = wan.v6auto.prefix_delegation if wan is not None and wan.v6auto else None
                if wan is None:
                    p.append(Problem(f"{path}.{side}.from_delegated", f"unknown interface {v.from_delegated!r}"))
                elif pd is None:
                    p.append(Problem(f"{path}.{side}.from_delegated", f"interface {v.from_delegated} does not ask "
                                     "for a delegated prefix (ipv6: {prefix_delegation: {length: N}})"))
                elif v.subnet >= 1 << (LAN_PREFIX - pd.length):
                    p.append(Problem(f"{path}.{side}.subnet", f"subnet id {v.subnet:#x} is beyond the delegated "
                                     f"length /{pd.length}"))
                if v.host is not None:
                    p.append(Problem(f"{path}.{side}.host", "a prefix, not an address: no host here"))
            elif v.prefixlen > LAN_PREFIX or v.prefixlen < 16:
                p.append(Problem(f"{path}.{side}", f"a /{v.prefixlen}: prefix translation maps /16 to /64 prefixes"))
        li, lo = _length(e.inside), _length(e.outside)
        if li != lo:
            p.append(Problem(f"{path}.outside", f"the inside is a /{li} and the outside a /{lo}: prefix translation "
                                                "maps prefixes of the same length"))
        if isinstance(e.inside, ipaddress.IPv6Network) and isinstance(e.outside, ipaddress.IPv6Network) \
                and e.inside.overlaps(e.outside):
            p.append(Problem(f"{path}.outside", f"{e.outside} overlaps the inside {e.inside}"))
        if isinstance(e.inside, DelegatedAddress) and isinstance(e.outside, DelegatedAddress) \
                and (e.inside.from_delegated, e.inside.subnet) == (e.outside.from_delegated, e.outside.subnet):
            p.append(Problem(f"{path}.outside", "the same delegated subnet on both sides"))
        for side in ("inside", "outside"):  # one mapping per prefix and direction on an interface
            k = f"{e.interface} {side} {getattr(e, side)}"
            if k in seen:
                p.append(Problem(f"{path}.{side}", f"already mapped on {e.interface} at {seen[k]}"))
            seen.setdefault(k, path)
    return p
