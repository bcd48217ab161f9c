"""RouterConfig → the ``inet talgate`` nftables table. Pure and deterministic.

The output is an nftables JSON command list (applied by the agent in one libnftables
transaction) and the same ruleset as nft text (for diffs and humans; loadable by ``nft -f``).
Every rule carries a comment naming the config item it came from ("rule NAME",
"forward NAME", "policy FROM-TO", "zone Z input", …) so counters and errors map back.

Only the ``inet talgate`` table is ever named: Talos (``inet talos``) and the CNI keep theirs.
Ports are matched through ``meta l4proto`` (the transport header after any IPv6 extension
headers), never ``ip6 nexthdr``, so extension headers cannot bypass a port match.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from dataclasses import dataclass, field

from ..model import names
from ..model.checks import SELF, resolve_addresses, rule_families, set_prefixes, target_zone
from ..model.config import ICMP_TYPES, ICMPV6_TYPES, RouterConfig, Rule
from ..model.kubernetes import CNI_LINKS
from ..model.prefix import disjoint

TABLE = "talgate"
FAMILY = "inet"

# RFC 4890: ICMPv6 that must not be dropped.
ICMPV6_ERRORS = ["destination-unreachable", "packet-too-big", "time-exceeded", "parameter-problem"]
ICMPV6_ND = ["nd-router-solicit", "nd-router-advert", "nd-neighbor-solicit", "nd-neighbor-advert",
             "ind-neighbor-solicit", "ind-neighbor-advert"]
ICMPV6_MLD = ["mld-listener-query", "mld-listener-report", "mld-listener-done", "mld2-listener-report"]


@dataclass(frozen=True)
class E:
    """One expression in both forms."""

    json: dict
    text: str


def _q(s: str) -> str:
    return json.dumps(s)


def _val_text(v) -> str:
    if isinstance(v, str) and not re.fullmatch(r"[0-9A-Fa-f:./-]+|[a-z][a-z0-9-]*", v):
        return _q(v)
    return str(v)


def _set_json(values):
    if len(values) == 1:
        return values[0]
    return {"set": values}


def _set_text(texts):
    return texts[0] if len(texts) == 1 else "{ " + ", ".join(texts) + " }"


def meta(key: str, values, op: str = "==") -> E:
    values = values if isinstance(values, list) else [values]
    txt = _set_text([_q(v) if key in ("iifname", "oifname") else _val_text(v) for v in values])
    op_t = "" if op == "==" else f"{op} "
    return E({"match": {"op": op, "left": {"meta": {"key": key}}, "right": _set_json(values)}},
             f"meta {key} {op_t}{txt}" if key not in ("iifname", "oifname") else f"{key} {op_t}{txt}")


def ct_state(states: list[str]) -> E:
    return E({"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": states if len(states) > 1 else states[0]}},
             "ct state " + ",".join(states))


def ct_status(status: str) -> E:
    return E({"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": status}}, f"ct status {status}")


def payload(proto: str, fld: str, values, op: str = "==") -> E:
    values = values if isinstance(values, list) else [values]
    op_t = "" if op == "==" else f"{op} "
    return E({"match": {"op": op, "left": {"payload": {"protocol": proto, "field": fld}}, "right": _set_json(values)}},
             f"{proto} {fld} {op_t}{_set_text([_val_text(v) if not isinstance(v, dict) else _range_text(v) for v in values])}")


def _range_text(v: dict) -> str:
    if "range" in v:
        return f"{v['range'][0]}-{v['range'][1]}"
    if "prefix" in v:
        return f"{v['prefix']['addr']}/{v['prefix']['len']}"
    raise ValueError(v)


def addr_match(fam: int, side: str, nets: list | None = None, set_ref: str | None = None) -> E:
    proto = "ip" if fam == 4 else "ip6"
    fld = "saddr" if side == "src" else "daddr"
    if set_ref:
        return E({"match": {"op": "==", "left": {"payload": {"protocol": proto, "field": fld}}, "right": f"@{set_ref}"}},
                 f"{proto} {fld} @{set_ref}")
    vals = [_net_json(n) for n in nets]
    return payload(proto, fld, vals)


def _net_json(n):
    if isinstance(n, str):  # canonical "addr/len" from the model
        addr, _, plen = n.partition("/")
        if not plen or int(plen) == (32 if ":" not in addr else 128):
            return addr
        return {"prefix": {"addr": addr, "len": int(plen)}}
    n = ipaddress.ip_network(n)
    if n.prefixlen == n.max_prefixlen:
        return str(n.network_address)
    return {"prefix": {"addr": str(n.network_address), "len": n.prefixlen}}


def ports_json(ports: list[str]):
    out = []
    for p in ports:
        lo, _, hi = p.partition("-")
        out.append(int(lo) if not hi else {"range": [int(lo), int(hi)]})
    return out


def tcp_flags_not_syn() -> E:
    return E({"match": {"op": "!=", "left": {"&": [{"payload": {"protocol": "tcp", "field": "flags"}},
                                                  ["fin", "syn", "rst", "ack"]]}, "right": "syn"}},
             "tcp flags & (fin|syn|rst|ack) != syn")


COUNTER = E({"counter": None}, "counter")
ACCEPT = E({"accept": None}, "accept")
DROP = E({"drop": None}, "drop")


def log(prefix: str) -> E:
    if len(prefix.encode()) > names.LOG_PREFIX_MAX:  # never reaches libnftables (it aborts past 136)
        raise ValueError(f"log prefix of {len(prefix.encode())} bytes; the kernel takes {names.LOG_PREFIX_MAX}")
    return E({"log": {"prefix": prefix}}, f"log prefix {_q(prefix)}")


def jump(chain: str) -> E:
    return E({"jump": {"target": chain}}, f"jump {chain}")


def reject(tcp: bool) -> E:
    if tcp:
        return E({"reject": {"type": "tcp reset"}}, "reject with tcp reset")
    return E({"reject": {"type": "icmpx", "expr": "admin-prohibited"}}, "reject with icmpx admin-prohibited")


def vmap(keys: list[str], entries: list[tuple[list[str], str]]) -> E:
    """iifname [. oifname] vmap { k : jump chain, ... }"""
    key_json = ({"meta": {"key": keys[0]}} if len(keys) == 1
                else {"concat": [{"meta": {"key": k}} for k in keys]})
    data = []
    texts = []
    for k, chain in entries:
        kj = k[0] if len(k) == 1 else {"concat": k}
        data.append([kj, {"jump": {"target": chain}}])
        texts.append(" . ".join(_q(x) for x in k) + f" : jump {chain}")
    return E({"vmap": {"key": key_json, "data": {"set": data}}},
             " . ".join(keys) + " vmap { " + ", ".join(texts) + " }")


@dataclass
class NRule:
    chain: str
    exprs: list[E]
    comment: str

    def json(self) -> dict:
        return {"rule": {"family": FAMILY, "table": TABLE, "chain": self.chain,
                         "expr": [e.json for e in self.exprs], "comment": self.comment}}

    def text(self) -> str:
        return " ".join(e.text for e in self.exprs) + f" comment {_q(self.comment)}"


@dataclass
class NChain:
    name: str
    hook: str | None = None
    type: str = "filter"
    prio: int = 0
    policy: str | None = None
    rules: list[NRule] = field(default_factory=list)


@dataclass
class NSet:
    name: str
    type: str
    elements: list


@dataclass
class Ruleset:
    chains: list[NChain]
    sets: list[NSet]
    _memo: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        """Behind validate's check_names: never two kernel objects under one name (the kernel would
        merge them and disagree with the tracer), never a name or comment over the kernel's limit."""
        for kind, objs in (("chain", self.chains), ("set", self.sets)):
            dup = names.duplicates([o.name for o in objs])
            if dup:
                raise ValueError(f"render: {kind} name(s) {', '.join(dup)[:200]} rendered twice")
            long = [o.name for o in objs if len(o.name.encode()) > names.NFT_NAME_MAX]
            if long:
                raise ValueError(f"render: {kind} name {long[0][:80]!r}… longer than {names.NFT_NAME_MAX} bytes")
        for c in self.chains:
            for r in c.rules:
                if len(r.comment.encode()) > names.NFT_COMMENT_MAX:
                    raise ValueError(f"render: comment {r.comment[:80]!r}… longer than {names.NFT_COMMENT_MAX} bytes")

    def commands(self) -> list[dict]:
        """The JSON command list: replace the whole table in one transaction."""
        t = {"family": FAMILY, "name": TABLE}
        cmds: list[dict] = [{"add": {"table": dict(t)}}, {"delete": {"table": dict(t)}}]
        cmds += self.create_commands()
        return cmds

    def _set_json(self, s: NSet, elements: bool = True) -> dict:
        sd = {"family": FAMILY, "table": TABLE, "name": s.name, "type": s.type, "flags": ["interval"]}
        if s.elements and elements:
            sd["elem"] = self.elements(s)
        return sd

    def elements(self, s: NSet) -> list:
        key = ("elem", s.name)
        if key not in self._memo:
            self._memo[key] = [_net_json(n) for n in s.elements]
        return self._memo[key]

    def _chain_json(self, c: NChain) -> dict:
        cd = {"family": FAMILY, "table": TABLE, "name": c.name}
        if c.hook:
            cd.update(type=c.type, hook=c.hook, prio=c.prio, policy=c.policy or "accept")
        return cd

    def create_commands(self) -> list[dict]:
        if "create" not in self._memo:
            t = {"family": FAMILY, "name": TABLE}
            cmds: list[dict] = [{"add": {"table": dict(t)}}]
            cmds += [{"add": {"set": self._set_json(s)}} for s in self.sets]
            cmds += [{"add": {"chain": self._chain_json(c)}} for c in self.chains]
            cmds += self._rule_commands()
            self._memo["create"] = cmds
        return self._memo["create"]

    def _rule_commands(self) -> list[dict]:
        """{"add": rule} for every rule, built once (the digest, the check and the load share it)."""
        if "rules" not in self._memo:
            self._memo["rules"] = [{"add": r.json()} for c in self.chains for r in c.rules]
        return self._memo["rules"]

    def digest(self) -> str:
        """sha256 identifying what commands() loads: the chains and rules as JSON, each set's
        entries as their canonical text (the JSON elements derive from it), so a big set is
        hashed without building its JSON."""
        if "digest" not in self._memo:
            h = hashlib.sha256()
            for s in self.sets:
                h.update(json.dumps([self._set_json(s, elements=False), len(s.elements)], sort_keys=True).encode())
                h.update("\n".join(s.elements).encode())
            h.update(json.dumps([self._chain_json(c) for c in self.chains], sort_keys=True).encode())
            h.update(json.dumps(self._rule_commands(), sort_keys=True).encode())
            self._memo["digest"] = h.hexdigest()
        return self._memo["digest"]

    def update_commands(self, prev: Ruleset) -> list[dict]:
        """One transaction turning prev (what the kernel holds) into self without reloading sets
        whose contents did not change: changed chains are flushed and refilled (unchanged ones stay,
        with their rules' hit counters), changed sets are flushed and refilled, the rest stay. Same end state as commands(), far less work when a
        big address set is unchanged."""
        t = {"family": FAMILY, "name": TABLE}
        new_chains = {c.name: c for c in self.chains}
        new_sets = {x.name: x for x in self.sets}
        old_sets = {x.name: x for x in prev.sets}
        cmds: list[dict] = [{"add": {"table": dict(t)}}]
        keep = self._unchanged_chains(prev)  # not flushed: their rules keep their hit counters
        cmds += [{"flush": {"chain": {"family": FAMILY, "table": TABLE, "name": c.name}}} for c in prev.chains
                 if c.name not in keep]
        cmds += [{"delete": {"chain": {"family": FAMILY, "table": TABLE, "name": c.name}}}
                 for c in prev.chains if c.name not in new_chains or
                 (c.hook, c.type, c.prio) != (new_chains[c.name].hook, new_chains[c.name].type, new_chains[c.name].prio)]
        for name, old in old_sets.items():
            new = new_sets.get(name)
            if new is None or new.type != old.type:
                cmds.append({"delete": {"set": {"family": FAMILY, "table": TABLE, "name": name}}})
            elif new.elements != old.elements:
                cmds.append({"flush": {"set": {"family": FAMILY, "table": TABLE, "name": name}}})
                if new.elements:
                    cmds.append({"add": {"element": {"family": FAMILY, "table": TABLE, "name": name,
                                                     "elem": self.elements(new)}}})
        cmds += [{"add": {"set": self._set_json(x)}} for x in self.sets
                 if x.name not in old_sets or old_sets[x.name].type != x.type]
        cmds += [{"add": {"chain": self._chain_json(c)}} for c in self.chains if c.name not in keep]
        cmds += [r for r in self._rule_commands() if r["add"]["rule"]["chain"] not in keep] if keep \
            else self._rule_commands()
        return cmds

    def _unchanged_chains(self, prev: Ruleset) -> set[str]:
        """Chains identical in prev and self (definition and rules) that use no set this update
        deletes: an update leaves them alone."""
        def by_chain(rs: Ruleset) -> dict[str, list]:
            out: dict[str, list] = {}
            for r in rs._rule_commands():
                out.setdefault(r["add"]["rule"]["chain"], []).append(r)
            return out

        old = {c.name: c for c in prev.chains}
        old_rules, new_rules = by_chain(prev), by_chain(self)
        new_sets = {x.name: x.type for x in self.sets}
        gone = [f'"@{x.name}"' for x in prev.sets if new_sets.get(x.name) != x.type]
        keep = set()
        for c in self.chains:
            o = old.get(c.name)
            if o is None or self._chain_json(o) != self._chain_json(c):
                continue
            rules = new_rules.get(c.name, [])
            if rules != old_rules.get(c.name, []):
                continue
            if gone and any(g in json.dumps(rules) for g in gone):
                continue
            keep.add(c.name)
        return keep

    def document(self) -> dict:
        return {"nftables": self.commands()}

    def text(self) -> str:
        out = [f"table {FAMILY} {TABLE} {{"]
        for s in self.sets:
            out.append(f"\tset {s.name} {{")
            out.append(f"\t\ttype {s.type}")
            out.append("\t\tflags interval")
            if s.elements:
                out.append("\t\telements = { " + ", ".join(s.elements) + " }")
            out.append("\t}")
        for c in self.chains:
            out.append(f"\tchain {c.name} {{")
            if c.hook:
                prio = {0: "filter", -100: "dstnat", 100: "srcnat"}.get(c.prio, str(c.prio))
                out.append(f"\t\ttype {c.type} hook {c.hook} priority {prio}; policy {c.policy or 'accept'};")
            for r in c.rules:
                out.append("\t\t" + r.text())
            out.append("\t}")
        out.append("}")
        return "\n".join(out) + "\n"


def chain_id(*parts: str) -> str:
    """Not injective ('a-b' and 'a_b' fold): document-derived names come from backend.model.names."""
    return "_".join(re.sub(r"[^A-Za-z0-9_]", "_", p) for p in parts)


def set_name(name: str, fam: int) -> str:
    return names.set_ident(name, fam)


def _verdict(action: str, tcp_only: bool = False) -> list[list[E]]:
    """Expression tails for an action; reject becomes tcp reset + icmpx."""
    if action == "accept":
        return [[ACCEPT]]
    if action == "drop":
        return [[DROP]]
    if tcp_only:
        return [[reject(True)]]
    return [[meta("l4proto", "tcp"), reject(True)], [reject(False)]]


def _default_rules(chain: str, action: str, comment: str, do_log: bool) -> list[NRule]:
    rules = []
    for tail in _verdict(action):
        exprs = [COUNTER]
        if do_log and action != "accept":
            exprs.append(log(names.log_prefix(comment)))
        rules.append(NRule(chain, tail[:-1] + exprs + tail[-1:], comment))
    return rules


def _l4(proto: str, fam: int, r: Rule) -> list[E]:
    """Protocol, port and ICMP-type matches for one family's part of a rule."""
    ex: list[E] = []
    if proto in ("tcp", "udp"):
        ex.append(meta("l4proto", proto))
        if r.sport:
            ex.append(payload(proto, "sport", ports_json(r.sport)))
        if r.dport:
            ex.append(payload(proto, "dport", ports_json(r.dport)))
    elif proto in ("icmp", "icmpv6"):
        if fam == 4:
            ex.append(meta("l4proto", "icmp"))
            if r.icmp_types:
                ex.append(payload("icmp", "type", sorted(r.icmp_types)))
        else:
            ex.append(meta("l4proto", "ipv6-icmp"))
            if r.icmp_types:
                ex.append(payload("icmpv6", "type", sorted(r.icmp_types)))
    return ex


def _side(cfg: RouterConfig, items: list[str], fam: int, side: str) -> E | None:
    if not items:
        return None
    if len(items) == 1 and items[0] in cfg.sets:
        return addr_match(fam, side, set_ref=set_name(items[0], fam))
    nets = [n for n in resolve_addresses(cfg, items) if n.version == fam]
    return addr_match(fam, side, nets=list(ipaddress.collapse_addresses(nets)))


def render_rule(cfg: RouterConfig, r: Rule, chain: str) -> list[NRule]:
    fams = sorted(rule_families(cfg, r))
    comment = names.rule_comment(r.name)
    # One nft rule per family only when something family-specific must be said.
    split = bool(r.src or r.dst) or r.proto in ("icmp", "icmpv6") or fams != [4, 6]
    parts = [(f, True) for f in fams] if split else [(0, False)]
    out = []
    for fam, specific in parts:
        ex: list[E] = []
        if specific and not (r.src or r.dst) and r.proto not in ("icmp", "icmpv6"):
            ex.append(meta("nfproto", "ipv4" if fam == 4 else "ipv6"))
        ex += _l4(r.proto, fam, r)
        for side in ("src", "dst"):
            m = _side(cfg, getattr(r, side), fam, side)
            if m:
                ex.append(m)
        if r.counter:
            ex.append(COUNTER)
        if r.log:
            ex.append(log(names.log_prefix(r.name)))
        for tail in _verdict(r.action, tcp_only=r.proto == "tcp"):
            out.append(NRule(chain, ex + tail, comment))
    return out


def _base(chain: str) -> list[NRule]:
    return [
        NRule(chain, [ct_state(["established", "related"]), ACCEPT], "builtin established"),
        NRule(chain, [ct_state(["invalid"]), COUNTER, DROP], "builtin invalid"),
        NRule(chain, [meta("l4proto", "tcp"), ct_state(["new"]), tcp_flags_not_syn(), COUNTER, DROP],
              "builtin tcp-new-without-syn"),
    ]


def render(cfg: RouterConfig) -> Ruleset:
    zones = list(cfg.zones)

    sets = []
    for sname in cfg.sets:
        items = disjoint(set_prefixes(cfg, sname))
        for fam in (4, 6):
            sets.append(NSet(set_name(sname, fam), "ipv4_addr" if fam == 4 else "ipv6_addr",
                             [t[3] for t in items if t[0] == fam]))

    inp = NChain("input", hook="input", policy="drop")
    inp.rules += _base("input")
    inp.rules.append(NRule("input", [meta("iif", "lo"), ACCEPT], "builtin loopback"))
    inp.rules += [
        NRule("input", [meta("l4proto", "ipv6-icmp"), payload("icmpv6", "type", ICMPV6_ERRORS), ACCEPT],
              "builtin icmpv6-errors"),
        NRule("input", [meta("l4proto", "ipv6-icmp"), payload("icmpv6", "type", ICMPV6_ND),
                        payload("ip6", "hoplimit", 255), ACCEPT], "builtin icmpv6-nd"),
        NRule("input", [meta("l4proto", "ipv6-icmp"), payload("icmpv6", "type", ICMPV6_MLD),
                        payload("ip6", "saddr", [{"prefix": {"addr": "fe80::", "len": 10}}]), ACCEPT],
              "builtin icmpv6-mld"),
    ]
    fwd = NChain("forward", hook="forward", policy="drop")
    fwd.rules += _base("forward")
    fwd.rules.append(NRule("forward", [meta("l4proto", "ipv6-icmp"), payload("icmpv6", "type", ICMPV6_ERRORS),
                                       ACCEPT], "builtin icmpv6-errors"))
    out = NChain("output", hook="output", policy="accept")
    chains = [inp, fwd, out]
    if cfg.system.kubernetes:
        inp.rules += _kubernetes_rules("input", cfg.system.kubernetes.pod_cidrs, links=False)
        fwd.rules += _kubernetes_rules("forward", cfg.system.kubernetes.pod_cidrs, links=True)

    # The enabled rules of every (from, to) zone pair, in config order: one pass over the rules,
    # not one per pair (50 zones and 1,000 rules would be 2.5 million tests).
    pair_rules: dict[tuple[str, str], list[Rule]] = {}
    for r in cfg.rules:
        if r.enabled:
            for a in dict.fromkeys(r.from_):
                for b in dict.fromkeys(r.to):
                    pair_rules.setdefault((a, b), []).append(r)
    fwd_by_pair: dict[tuple[str, str | None], list] = {}
    for f in cfg.nat.forwards:
        fwd_by_pair.setdefault((f.in_, target_zone(cfg, f.target_addr)), []).append(f)

    # input: per-zone chains with rules to self, then the zone's default.
    in_entries = []
    for z in zones:
        c = NChain(names.zone_in_chain(z))
        for r in pair_rules.get((z, SELF), ()):
            c.rules += render_rule(cfg, r, c.name)
        c.rules += _service_rules(cfg, z, c.name)
        c.rules += _routing_rules(cfg, z, c.name)
        c.rules += _default_rules(c.name, cfg.zones[z].input, names.zone_comment(z, "input"), cfg.zones[z].log)
        chains.append(c)
        in_entries += [([i], c.name) for i in cfg.zones[z].interfaces]
    if in_entries:
        inp.rules.append(NRule("input", [vmap(["iifname"], in_entries)], "builtin zone-dispatch"))
    inp.rules += _default_rules("input", "drop", "builtin unzoned-input", False)

    # forward: one chain per zone pair.
    policies = {(p.from_, p.to): p for p in cfg.policies}
    fwd_entries = []
    for a in zones:
        for b in zones:
            c = NChain(names.zone_pair_chain(a, b))
            for f in fwd_by_pair.get((a, b), ()):
                c.rules += _forward_accept(cfg, f, c.name)
            for r in pair_rules.get((a, b), ()):
                c.rules += render_rule(cfg, r, c.name)
            pol = policies.get((a, b))
            if pol:
                c.rules += _default_rules(c.name, pol.action, names.policy_comment(pol.key), pol.log)
            else:
                c.rules += _default_rules(c.name, cfg.zones[a].forward, names.zone_comment(a, "forward"),
                                          cfg.zones[a].log)
            chains.append(c)
            for i in cfg.zones[a].interfaces:
                for o in cfg.zones[b].interfaces:
                    fwd_entries.append(([i, o], c.name))
    if fwd_entries:
        fwd.rules.append(NRule("forward", [vmap(["iifname", "oifname"], fwd_entries)], "builtin zone-dispatch"))
    fwd.rules += _default_rules("forward", "drop", "builtin unzoned-forward", False)

    chains += _nat_chains(cfg)
    chains += _antispoof_chains(cfg)
    from .pbr import pbr_chains  # multi-WAN and policy routing marks

    chains += pbr_chains(cfg)
    return Ruleset(chains, sets)


# -- anti-spoofing -------------------------------------------------------------------------

ANTISPOOF_CHAIN = "antispoof"
ANTISPOOF_PRIO = -300  # "raw": before conntrack (-200) and DNAT (-100), so a spoofed packet leaves no state


def fib_saddr_oif_missing(strict: bool, mark: bool = False) -> E:
    """``fib saddr [. mark] [. iif] oif missing``: no route back to the source (through the arrival
    interface when strict). The router's own addresses resolve to local routes, which fib reports
    as missing too. With mark (multi-WAN), the lookup uses the packet's mark: a WAN's packets are
    checked against that WAN's table (backend/render/pbr.py marks them first)."""
    flags = ["saddr", *(["mark"] if mark else []), *(["iif"] if strict else [])]
    return E({"match": {"op": "==", "left": {"fib": {"result": "oif", "flags": flags}}, "right": False}},
             f"fib {' . '.join(flags)} oif missing")


def _antispoof_chains(cfg: RouterConfig) -> list[NChain]:
    """Strict (or loose) reverse-path filtering per interface (``interfaces.X.rp_filter``), in a
    prerouting chain at raw priority. What must pass without a route back comes first: DHCPv4
    discovery from 0.0.0.0 and IPv6 from the unspecified or a link-local source (DAD, ND, MLD,
    DHCPv6 — the kernel never forwards link-local sources). Each interface's drop rule is
    counted and commented "antispoof IFNAME"."""
    checks = [(name, itf.rp_filter) for name, itf in cfg.interfaces.items()
              if itf.enabled and itf.rp_filter != "off"]
    if not checks:
        return []
    c = NChain(ANTISPOOF_CHAIN, hook="prerouting", prio=ANTISPOOF_PRIO, policy="accept")
    c.rules.append(NRule(c.name, [payload("ip", "saddr", "0.0.0.0"), meta("l4proto", "udp"),
                                  payload("udp", "sport", 68), payload("udp", "dport", 67), ACCEPT],
                         "antispoof dhcpv4-discovery"))
    c.rules.append(NRule(c.name, [payload("ip6", "saddr", ["::", {"prefix": {"addr": "fe80::", "len": 10}}]), ACCEPT],
                         "antispoof ipv6-link-local"))
    for name, mode in checks:
        c.rules.append(NRule(c.name, [meta("iifname", name), fib_saddr_oif_missing(mode == "strict", bool(cfg.wans)), COUNTER, DROP],
                             f"antispoof {name}"))
    return [c]


def _kubernetes_rules(chain: str, pod_cidrs: list[str], links: bool) -> list[NRule]:
    """Pod traffic is Kubernetes's business (its CNI and Talos's own table police it)."""
    out = []
    if links:
        out += [NRule(chain, [meta(k, link), ACCEPT], "builtin kubernetes-cni")
                for k in ("iifname", "oifname") for link in CNI_LINKS]
    for cidr in pod_cidrs:
        net = ipaddress.ip_network(cidr)
        fam = "ip" if net.version == 4 else "ip6"
        for fld in ("saddr", "daddr") if links else ("saddr",):
            out.append(NRule(chain, [payload(fam, fld, [_net_json(net)]), ACCEPT], "builtin kubernetes-pods"))
    return out


def _service_rules(cfg: RouterConfig, zone: str, chain: str) -> list[NRule]:
    """Openings for the LAN services the config enables on this zone (DHCP, DNS, NTP, mDNS),
    after the user's rules and before the zone default; commented "service NAME"."""
    from ..model.services import openings

    out = []
    for svc, ifaces, proto, port, nfproto in openings(cfg, zone):
        ex = [meta("iifname", ifaces)] if ifaces else []
        if nfproto:
            ex.append(meta("nfproto", nfproto))
        ex += [meta("l4proto", proto), payload(proto, "dport", port), COUNTER, ACCEPT]
        out.append(NRule(chain, ex, f"service {svc}"))
    return out


def _routing_rules(cfg: RouterConfig, zone: str, chain: str) -> list[NRule]:
    """FRR's sessions (backend/model/routing.py openings): tcp/179 from each BGP neighbor, OSPF
    (protocol 89) on its interfaces; commented "service bgp" / "service ospf" / "service ospfv3"."""
    from ..model.routing import openings

    out = []
    for what, who, proto, port, nfproto in openings(cfg, zone):
        if port is None:  # OSPF: interfaces
            ex = [meta("iifname", who), meta("nfproto", nfproto), meta("l4proto", proto)]
        else:
            fam = 4 if nfproto == "ipv4" else 6
            ex = [addr_match(fam, "src", nets=[ipaddress.ip_network(a) for a in who]),
                  meta("l4proto", proto), payload(proto, "dport", port)]
        out.append(NRule(chain, ex + [COUNTER, ACCEPT], f"service {what}"))
    return out


def _zone_ifaces(cfg: RouterConfig, zone: str, key: str) -> E:
    return meta(key, sorted(cfg.zones[zone].interfaces))


def _forward_accept(cfg, f, chain) -> list[NRule]:
    fam = f.target_addr.version
    dport = [f.target_port] if f.target_port else ports_json([f.dport])
    ex = [payload("ip" if fam == 4 else "ip6", "daddr", str(f.target_addr)),
          meta("l4proto", f.proto), payload(f.proto, "dport", dport), ct_status("dnat"), COUNTER]
    if f.log:
        ex.append(log(names.log_prefix(names.forward_comment(f.name))))
    return [NRule(chain, ex + [ACCEPT], names.forward_comment(f.name))]


def _nat_chains(cfg: RouterConfig) -> list[NChain]:
    pre = NChain("prerouting_nat", hook="prerouting", type="nat", prio=-100)
    post = NChain("postrouting_nat", hook="postrouting", type="nat", prio=100)
    for f in cfg.nat.forwards:
        if not cfg.zones[f.in_].interfaces:
            continue
        fam = f.target_addr.version
        ex = [_zone_ifaces(cfg, f.in_, "iifname")]
        if f.src:
            m = _side(cfg, f.src, fam, "src")
            if m:
                ex.append(m)
        ex += [meta("l4proto", f.proto), payload(f.proto, "dport", ports_json([f.dport]))]
        ex.append(meta("nfproto", "ipv4" if fam == 4 else "ipv6"))
        dn = {"family": "ip" if fam == 4 else "ip6", "addr": str(f.target_addr)}
        tgt = str(f.target_addr) if fam == 4 else f"[{f.target_addr}]"
        if f.target_port:
            dn["port"] = f.target_port
            tgt += f":{f.target_port}"
        ex += [COUNTER, E({"dnat": dn}, f"dnat {dn['family']} to {tgt}")]
        pre.rules.append(NRule(pre.name, ex, names.forward_comment(f.name)))
    for s in cfg.nat.snat:
        if not cfg.zones[s.out].interfaces:
            continue
        fam = s.to.version
        ex = [_zone_ifaces(cfg, s.out, "oifname"), meta("nfproto", "ipv4" if fam == 4 else "ipv6")]
        m = _side(cfg, s.src, fam, "src")
        if m:
            ex.append(m)
        fam_s = "ip" if fam == 4 else "ip6"
        ex += [COUNTER, E({"snat": {"family": fam_s, "addr": str(s.to)}}, f"snat {fam_s} to {s.to}")]
        post.rules.append(NRule(post.name, ex, names.snat_comment(s.name)))
    from .nptv6 import nptv6_rules  # prefix translation: after the port forwards, before any masquerade

    npt_in, npt_out = nptv6_rules(cfg, pre.name, post.name)
    pre.rules += npt_in
    post.rules[:0] = npt_out
    for m in cfg.nat.masquerade:
        if not cfg.zones[m.out].interfaces:
            continue
        fams = {"ipv4": ["ipv4"], "ipv6": ["ipv6"], "any": ["ipv4", "ipv6"]}[m.family]
        for fam in fams:
            post.rules.append(NRule(post.name, [_zone_ifaces(cfg, m.out, "oifname"), meta("nfproto", fam), COUNTER,
                                                E({"masquerade": None}, "masquerade")], names.masquerade_comment(m.key)))
    return [pre, post]


__all__ = ["render", "Ruleset", "TABLE", "FAMILY", "ICMP_TYPES", "ICMPV6_TYPES"]
