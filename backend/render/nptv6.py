"""nat.nptv6 → nft rules (backend/model/nptv6.py): a stateful 1:1 prefix mapping, host part kept.

Out of the interface (postrouting_nat, before any masquerade): ``oifname WAN ip6 saddr INSIDE
snat ip6 prefix to ip6 saddr map { INSIDE : OUTSIDE }``; into it (prerouting_nat, after the port
forwards): ``iifname WAN ip6 daddr OUTSIDE dnat ip6 prefix to ip6 daddr map { OUTSIDE : INSIDE }``.
A side delegated by the ISP and not (yet) delegated renders nothing.
"""

from __future__ import annotations

import ipaddress

from ..model import names
from .nft import COUNTER, E, NRule, _net_json, meta, payload


def _prefix_map(kind: str, fld: str, frm: ipaddress.IPv6Network, to: ipaddress.IPv6Network) -> E:
    key = {"payload": {"protocol": "ip6", "field": fld}}
    js = {kind: {"family": "ip6", "addr": {"map": {"key": key, "data": {"set": [[_net_json(frm), _net_json(to)]]}}},
                 "flags": "netmap", "type_flags": "prefix"}}
    return E(js, f"{kind} ip6 prefix to ip6 {fld} map {{ {frm} : {to} }}")


def nptv6_rules(cfg, pre: str, post: str) -> tuple[list[NRule], list[NRule]]:
    """(prerouting rules, postrouting rules) of every translation whose prefixes are known."""
    ins, outs = [], []
    for e in cfg.nat.nptv6:
        inside, outside = e.prefixes()
        if inside is None or outside is None or e.interface not in cfg.interfaces:
            continue
        c = names.nptv6_comment(e.key)
        outs.append(NRule(post, [meta("oifname", e.interface), meta("nfproto", "ipv6"),
                                 payload("ip6", "saddr", [_net_json(inside)]), COUNTER,
                                 _prefix_map("snat", "saddr", inside, outside)], c))
        ins.append(NRule(pre, [meta("iifname", e.interface), meta("nfproto", "ipv6"),
                               payload("ip6", "daddr", [_net_json(outside)]), COUNTER,
                               _prefix_map("dnat", "daddr", outside, inside)], c))
    return ins, outs
