"""Multi-WAN and policy routing in the ``inet talgate`` table: marks, once per connection. Pure.

The kernel side (``ip rule``s from marks to tables, the tables' routes) is backend/host/rules.py;
the marks and tables come from backend/model/wan.py ``plan_marks``.

- ``wan_raw`` (prerouting, before the anti-spoofing chain): a packet arriving on a WAN carries
  that WAN's mark (with the probe bit, whose ``ip rule`` stays while the WAN is down), so the
  reverse-path check looks the source up in that WAN's table and replies to the backup WAN's
  probes are not "spoofed".
- ``wan_mark`` (prerouting, mangle): a connection that has a WAN mark keeps it (restored from
  ``ct mark`` on every packet: established flows stay on their uplink across failover and
  failback); a new connection from a WAN is pinned to it; a new connection matched by a rule with
  ``route_via`` / ``table`` gets that mark (a table's mark is also stored in ``ct mark``).
- ``wan_out`` (output, route): the router's own packets of a marked connection keep its uplink.
- ``wan_post`` (postrouting): a connection without a mark gets the mark of the WAN it actually
  left by, once (``ct mark`` is only set while it is 0: a retransmit is never re-marked).
- ``wan_nat`` (postrouting, srcnat): each WAN's masquerade (``wans.members.X.masquerade``).
"""

from __future__ import annotations

from ..model.checks import rule_families
from ..model.config import RouterConfig
from ..model.wan import MARK_MASK, PROBE_BIT, plan_marks, route_target
from .nft import ACCEPT, COUNTER, E, NChain, NRule, _l4, _side, meta

RAW_PRIO = -310      # before antispoof (-300)
MANGLE_PRIO = -150
NAT_PRIO = 99        # just before postrouting_nat (100)
CHAINS = ("wan_raw", "wan_mark", "wan_out", "wan_post", "wan_nat")


def _hex(v: int) -> str:
    return f"0x{v:08x}"


def _masked(key: str, op: str, value: int) -> E:
    """``ct mark & MASK OP value`` / ``meta mark & MASK OP value``."""
    left = {key: {"key": "mark"}}
    return E({"match": {"op": op, "left": {"&": [left, MARK_MASK]}, "right": value}},
             f"{key} mark & {_hex(MARK_MASK)} {op} {_hex(value)}")


def _set(key: str, value) -> E:
    """``KEY mark set VALUE``; value an int, "ct" (ct mark) or "meta&" (meta mark & MASK)."""
    if value == "ct":
        v, t = {"ct": {"key": "mark"}}, "ct mark"
    elif value == "meta&":
        v, t = {"&": [{"meta": {"key": "mark"}}, MARK_MASK]}, f"meta mark & {_hex(MARK_MASK)}"
    else:
        v, t = value, _hex(value)
    return E({"mangle": {"key": {key: {"key": "mark"}}, "value": v}}, f"{key} mark set {t}")


def pbr_chains(cfg: RouterConfig) -> list[NChain]:
    """The chains above, or [] when the document has no WANs and no routed rules."""
    slots = plan_marks(cfg)
    routed = [r for r in cfg.rules if r.enabled and (r.route_via or r.table is not None)]
    if not slots and not routed:
        return []
    members = cfg.wans.members if cfg.wans else {}
    raw = NChain("wan_raw", hook="prerouting", prio=RAW_PRIO)
    mark = NChain("wan_mark", hook="prerouting", prio=MANGLE_PRIO)
    out = NChain("wan_out", hook="output", type="route", prio=MANGLE_PRIO)
    post = NChain("wan_post", hook="postrouting", prio=MANGLE_PRIO)
    nat = NChain("wan_nat", hook="postrouting", type="nat", prio=NAT_PRIO)

    for name, m in members.items():
        s = slots[f"wan:{name}"]
        raw.rules.append(NRule(raw.name, [meta("iifname", m.interface), _set("meta", s.mark | PROBE_BIT)],
                               f"wan {name} inbound"))
    mark.rules.append(NRule(mark.name, [_masked("ct", "!=", 0), _set("meta", "ct"), ACCEPT], "wan restore"))
    if members:
        mark.rules.append(NRule(mark.name, [_masked("meta", "!=", 0), _set("ct", "meta&"), ACCEPT],
                                "wan inbound pin"))
    for r in routed:
        target = route_target(cfg, r)
        if target is None:
            continue
        ifaces = sorted({i for z in r.from_ for i in (cfg.zones[z].interfaces if z in cfg.zones else [])})
        if not ifaces:
            continue
        tail = [_set("meta", target.mark)]
        if target.kind == "table":
            tail.append(_set("ct", target.mark))
        fams = sorted(rule_families(cfg, r))
        split = bool(r.src or r.dst) or r.proto in ("icmp", "icmpv6") or fams != [4, 6]
        for fam in fams if split else [0]:
            ex = [meta("iifname", ifaces)]
            if split and not (r.src or r.dst) and r.proto not in ("icmp", "icmpv6"):
                ex.append(meta("nfproto", "ipv4" if fam == 4 else "ipv6"))
            ex += _l4(r.proto, fam, r)
            for side in ("src", "dst"):
                m_ = _side(cfg, getattr(r, side), fam, side) if fam else None
                if m_:
                    ex.append(m_)
            mark.rules.append(NRule(mark.name, ex + [COUNTER] + tail, f"route_via {r.name}"))
    out.rules.append(NRule(out.name, [_masked("meta", "==", 0), _masked("ct", "!=", 0), _set("meta", "ct")],
                           "wan restore"))
    for name, m in members.items():
        s = slots[f"wan:{name}"]
        post.rules.append(NRule(post.name, [_masked("ct", "==", 0), meta("oifname", m.interface), _set("ct", s.mark)],
                                f"wan {name} pin"))
        fams = {"ipv4": ["ipv4"], "ipv6": ["ipv6"], "any": ["ipv4", "ipv6"], "none": []}[m.masquerade]
        for fam in fams:
            nat.rules.append(NRule(nat.name, [meta("oifname", m.interface), meta("nfproto", fam), COUNTER,
                                              E({"masquerade": None}, "masquerade")], f"wan {name} masquerade"))
    return [c for c in (raw, mark, out, post, nat) if c.rules]
