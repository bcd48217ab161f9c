"""The packet tracer: "would this packet pass?", answered from the rendered ruleset.

It interprets the very Ruleset the agent loads (``backend.render.nft``) — the same chains,
rules, vmaps and sets — for the first packet of a new connection: prerouting DNAT, the routing
decision (router address → input, else the longest-prefix route → forward), the filter chains
with jumps, and postrouting SNAT/masquerade. It reports the verdict, the rule (by its config
name) that decided, the NAT translations and the egress interface. Pure: no I/O.

Agreement with the kernel is proven in tests/unit/test_trace_kernel.py (generated rulesets and
packets against nftrace in a private namespace) and tests/lab/test_trace_lab.py (real probes).
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import asdict, dataclass, field

from ..model import prefix
from ..model.config import RouterConfig
from ..model.prefix import RangeSet
from ..render.nft import ANTISPOOF_CHAIN, NChain, Ruleset, render

L4_NAMES = {"tcp": "tcp", "udp": "udp", "icmp": "icmp", "icmpv6": "ipv6-icmp", "ipv6-icmp": "ipv6-icmp"}


@dataclass
class Packet:
    iif: str
    src: str
    dst: str
    proto: str = "tcp"          # tcp | udp | icmp | icmpv6
    sport: int = 40000
    dport: int | None = None
    icmp_type: str = "echo-request"
    tcp_flags: tuple[str, ...] = ("syn",)
    ct_state: str = "new"
    hoplimit: int = 64

    def __post_init__(self):
        for flag, value in (("--src", self.src), ("--dst", self.dst)):
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise ValueError(f"{flag} {value!r} is not an IPv4 or IPv6 address") from None
        self.src_ip = ipaddress.ip_address(self.src)
        self.dst_ip = ipaddress.ip_address(self.dst)
        if self.src_ip.version != self.dst_ip.version:
            raise ValueError(f"--src {self.src} and --dst {self.dst} are of different IP versions")
        self.proto = {"ipv6-icmp": "icmpv6"}.get(self.proto, self.proto)
        if self.proto not in ("tcp", "udp", "icmp", "icmpv6"):
            raise ValueError(f"--proto {self.proto!r}: expected tcp, udp, icmp or icmpv6")
        if self.proto == "icmp" and self.family == 6:
            self.proto = "icmpv6"  # ICMP for IPv6 is ICMPv6, as in the config
        if self.proto == "icmpv6" and self.family == 4:
            raise ValueError("--proto icmpv6 needs IPv6 addresses")
        if self.proto in ("tcp", "udp") and self.dport is None:
            raise ValueError(f"--dport is needed for {self.proto}")
        self.ct_status: set[str] = set()

    @property
    def family(self) -> int:
        return self.src_ip.version


@dataclass
class Step:
    chain: str
    rule: str | None
    verdict: str | None


@dataclass
class TraceResult:
    verdict: str                       # accept | drop | reject | no-route
    rule: str | None                   # config name of the deciding rule ("rule x", "policy a-b", …)
    hook: str                          # prerouting (antispoof) | input | forward
    ingress_zone: str | None
    egress: str | None                 # interface, "self" for the router, None when dropped before routing
    egress_zone: str | None
    nat: list[dict] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    packet: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


class _Verdict(Exception):
    def __init__(self, verdict: str, chain: str, comment: str | None):
        self.verdict, self.chain, self.comment = verdict, chain, comment


def _nat_addr(addr, ip):
    """The address a nat statement gives: a plain one, or a prefix map (nat.nptv6: the host part
    kept, like the kernel's NETMAP)."""
    if not isinstance(addr, dict):
        return ipaddress.ip_address(addr)
    for frm, to in addr["map"]["data"]["set"]:
        src = ipaddress.ip_network(f"{frm['prefix']['addr']}/{frm['prefix']['len']}")
        if ip in src:
            dst = ipaddress.ip_network(f"{to['prefix']['addr']}/{to['prefix']['len']}")
            return dst.network_address + (int(ip) - int(src.network_address))
    return ip


class Tracer:
    def __init__(self, cfg: RouterConfig, rs: Ruleset | None = None):
        self.cfg = cfg
        self._rs = rs
        self._sets: dict[str, RangeSet] = {}  # parsed on first use: big sets cost nothing until needed

    # Rendered on first use: route() (the lockout check's "where does my SSH come from") needs none.
    @functools.cached_property
    def rs(self) -> Ruleset:
        return self._rs or render(self.cfg)

    @functools.cached_property
    def chains(self) -> dict:
        return {c.name: c for c in self.rs.chains}

    @functools.cached_property
    def _set_elems(self) -> dict:
        return {s.name: s.elements for s in self.rs.sets}

    def _set(self, name: str) -> RangeSet:
        rs = self._sets.get(name)
        if rs is None:
            rs = self._sets[name] = RangeSet([prefix.parse(e) for e in self._set_elems[name]])
        return rs

    # -- value matching ------------------------------------------------------------------

    def _value(self, pkt: Packet, left: dict, ctx: dict):
        if "meta" in left:
            key = left["meta"]["key"]
            return {"iifname": pkt.iif, "iif": pkt.iif, "oifname": ctx.get("oif"),
                    "l4proto": L4_NAMES[pkt.proto], "nfproto": f"ipv{pkt.family}"}[key]
        if "ct" in left:
            return {pkt.ct_state} if left["ct"]["key"] == "state" else pkt.ct_status
        if "payload" in left:
            proto, fld = left["payload"]["protocol"], left["payload"]["field"]
            if proto in ("ip", "ip6"):
                if (proto == "ip") != (pkt.family == 4):
                    return _NOMATCH
                if fld == "hoplimit":
                    return pkt.hoplimit
                return ctx["src"] if fld == "saddr" else ctx["dst"]
            if proto in ("tcp", "udp"):
                if pkt.proto != proto:
                    return _NOMATCH
                return pkt.sport if fld == "sport" else ctx["dport"]
            if proto in ("icmp", "icmpv6"):
                if pkt.proto != proto:
                    return _NOMATCH
                return pkt.icmp_type
        if "&" in left:  # tcp flags & (fin|syn|rst|ack)
            if pkt.proto != "tcp":
                return _NOMATCH
            mask = set(left["&"][1])
            return tuple(sorted(set(pkt.tcp_flags) & mask))
        if "concat" in left:
            return tuple(self._value(pkt, x, ctx) for x in left["concat"])
        if "fib" in left:
            flags = set(left["fib"]["flags"])
            if left["fib"]["result"] != "oif" or flags - {"saddr", "iif", "mark"} or "saddr" not in flags:
                raise NotImplementedError(f"tracer: unknown fib expression {left}")
            return self.fib_saddr_oif(pkt, ctx, strict="iif" in flags, mark="mark" in flags)
        raise NotImplementedError(f"tracer: unknown expression {left}")

    def _elem_match(self, v, e) -> bool:
        if isinstance(e, dict):
            if "range" in e:
                return isinstance(v, int) and e["range"][0] <= v <= e["range"][1]
            if "prefix" in e:
                net = ipaddress.ip_network(f"{e['prefix']['addr']}/{e['prefix']['len']}")
                return _ip(v) is not None and _ip(v).version == net.version and _ip(v) in net
            if "concat" in e:
                return isinstance(v, tuple) and len(v) == len(e["concat"]) and all(
                    self._elem_match(a, b) for a, b in zip(v, e["concat"], strict=True))
        if isinstance(e, str) and e.startswith("@"):
            ip = _ip(v)
            return ip is not None and ip in self._set(e[1:])
        if isinstance(v, ipaddress._BaseAddress):
            try:
                return v == ipaddress.ip_address(e)
            except ValueError:
                return False
        return v == e

    def _match(self, pkt: Packet, m: dict, ctx: dict) -> bool:
        v = self._value(pkt, m["left"], ctx)
        if v is _NOMATCH:
            return False
        right = m["right"]
        op = m["op"]
        if "fib" in m["left"]:  # fib … oif exists (true) / missing (false)
            hit = (v is not None) == bool(right)
            return not hit if op == "!=" else hit
        if "&" in m["left"]:
            want = tuple(sorted(right if isinstance(right, list) else [right]))
            return (v != want) if op == "!=" else (v == want)
        if isinstance(v, set):  # ct state/status: "in" = any of
            wanted = set(right if isinstance(right, list) else [right])
            return bool(v & wanted)
        elems = right["set"] if isinstance(right, dict) and "set" in right else [right]
        hit = any(self._elem_match(v, e) for e in elems)
        return not hit if op == "!=" else hit

    # -- chains --------------------------------------------------------------------------

    def _run_chain(self, chain: NChain, pkt: Packet, ctx: dict, steps: list[Step], depth: int = 0) -> None:
        """Evaluate chain; raises _Verdict on a terminal verdict, returns when it falls through."""
        if depth > 16:
            raise RuntimeError("tracer: jump depth exceeded")
        for rule in chain.rules:
            matched = True
            for e in rule.exprs:
                j = e.json
                if "match" in j:
                    if not self._match(pkt, j["match"], ctx):
                        matched = False
                        break
                elif "vmap" in j:
                    key = self._value(pkt, j["vmap"]["key"], ctx)
                    target = next((vd for k, vd in j["vmap"]["data"]["set"] if self._elem_match(key, k)), None)
                    if target is None:
                        matched = False
                        break
                    steps.append(Step(chain.name, rule.comment, f"jump {target['jump']['target']}"))
                    self._run_chain(self.chains[target["jump"]["target"]], pkt, ctx, steps, depth + 1)
                    matched = False  # fell through the jumped chain: continue after this rule
                    break
                elif "jump" in j:
                    steps.append(Step(chain.name, rule.comment, f"jump {j['jump']['target']}"))
                    self._run_chain(self.chains[j["jump"]["target"]], pkt, ctx, steps, depth + 1)
                    matched = False
                    break
                elif "accept" in j or "drop" in j or "reject" in j:
                    verdict = next(iter(j))
                    steps.append(Step(chain.name, rule.comment, verdict))
                    raise _Verdict(verdict, chain.name, rule.comment)
                elif "dnat" in j or "snat" in j or "masquerade" in j:
                    fam = next(iter(j.values())) or {}
                    if fam.get("family") and fam["family"] != ("ip" if pkt.family == 4 else "ip6"):
                        matched = False  # `dnat ip to` never applies to an IPv6 packet
                        break
                    steps.append(Step(chain.name, rule.comment, next(iter(j))))
                    raise _Verdict(next(iter(j)), chain.name, rule.comment) from None
                # counter / log: statements without a verdict
            if not matched:
                continue
        return

    def _base(self, name: str, pkt: Packet, ctx: dict, steps: list[Step]) -> tuple[str, str | None]:
        chain = self.chains[name]
        try:
            self._run_chain(chain, pkt, ctx, steps)
        except _Verdict as v:
            return v.verdict, v.comment
        steps.append(Step(name, None, f"policy {chain.policy or 'accept'}"))
        return chain.policy or "accept", f"{name} policy"

    def _nat(self, name: str, pkt: Packet, ctx: dict, steps: list[Step]) -> tuple[str, dict] | None:
        chain = self.chains[name]
        for rule in chain.rules:
            try:
                self._run_chain(NChain(name, rules=[rule]), pkt, ctx, steps)
            except _Verdict as v:
                stmt = next(e.json for e in rule.exprs if v.verdict in e.json)
                return rule.comment, stmt
        return None

    # -- routing -------------------------------------------------------------------------

    def router_addresses(self) -> dict:
        out = {}
        for name, itf in self.cfg.interfaces.items():
            if itf.enabled:
                for a in [*itf.ipv4, *itf.ipv6]:
                    out[a.ip] = name
        return out

    def route(self, dst, depth: int = 0, wan: str | None = None) -> str | None:
        """Egress interface for dst: connected subnets, then static routes; longest prefix wins,
        then the lower metric (connected routes first), as in the kernel's FIB. With ``wans``, a
        default route goes by the preferred WAN (its table comes before main's default), or by
        the WAN member ``wan`` (a packet carrying that WAN's mark)."""
        cands: list[tuple[int, int, str]] = []
        members = self.cfg.wans.members if getattr(self.cfg, "wans", None) else {}
        usable = [m for n, m in members.items() if (m.gateway if dst.version == 4 else m.gateway6) is not None
                  and (wan is None or n == wan)]
        if usable:
            cands.append((0, 1, min(usable, key=lambda m: m.priority).interface))
        for name, itf in self.cfg.interfaces.items():
            if itf.enabled:
                cands += [(a.network.prefixlen, 0, name) for a in [*itf.ipv4, *itf.ipv6]
                          if a.version == dst.version and dst in a.network]
        for r in self.cfg.routes:
            net = ipaddress.ip_network(r.to)
            if net.version != dst.version or dst not in net:
                continue
            oif = r.interface
            if oif is None and r.via is not None and depth < 4:
                oif = self.route(r.via, depth + 1)
            if oif is not None:
                cands.append((net.prefixlen, -(r.metric or (1024 if net.version == 6 else 1)), oif))
        return max(cands, key=lambda c: (c[0], c[1]))[2] if cands else None

    def fib_saddr_oif(self, pkt: Packet, ctx: dict, strict: bool, mark: bool = False) -> str | None:
        """What the kernel's ``fib saddr [. iif] oif`` yields in prerouting: the interface the
        route back to the source leaves through (only if it is the arrival interface when strict),
        None ("missing") when there is no such route or the source is local (the router's own or
        a loopback address, or IPv6 subnet-router anycast)."""
        src = ctx["src"]
        if src.version == 4 and int(src) == 0 and (ctx["dst"] == ipaddress.IPv4Address("255.255.255.255")
                                                   or ctx["dst"] in ipaddress.IPv4Network("224.0.0.0/24")):
            return pkt.iif  # nft_fib4: a zeronet source to a local broadcast/multicast is the iif's
        if src.version == 6 and src.is_link_local:
            itf = self.cfg.interfaces.get(pkt.iif)  # looked up on the arrival link (fe80::/64 on every link)
            return pkt.iif if itf is None or itf.enabled else None
        if src in self.router_addresses() or src.is_loopback:
            return None
        if src.version == 6 and any(a.network.prefixlen < 127 and src == a.network.network_address
                                    for itf in self.cfg.interfaces.values() if itf.enabled for a in itf.ipv6):
            return None  # RTF_ANYCAST
        # with mark (multi-WAN): a packet arriving on a WAN carries its mark (render/pbr.py wan_raw)
        # and is looked up in that WAN's table
        wan = None
        if mark and getattr(self.cfg, "wans", None):
            wan = next((n for n, m in self.cfg.wans.members.items() if m.interface == pkt.iif), None)
        oif = self.route(src, wan=wan)
        if oif is None or (strict and oif != pkt.iif):
            return None
        return oif

    def _primary(self, ifname: str, family: int):
        itf = self.cfg.interfaces.get(ifname)
        addrs = [a.ip for a in (itf.ipv4 if family == 4 else itf.ipv6)] if itf else []
        return addrs[0] if addrs else None

    # -- the trace -----------------------------------------------------------------------

    def trace(self, pkt: Packet) -> TraceResult:
        steps: list[Step] = []
        nat: list[dict] = []
        ctx = {"src": pkt.src_ip, "dst": pkt.dst_ip, "dport": pkt.dport, "oif": None}
        zone_in = self.cfg.zone_of(pkt.iif)
        pdict = {k: v for k, v in asdict(pkt).items()}

        if ANTISPOOF_CHAIN in self.chains:  # prerouting at raw priority: before conntrack and DNAT
            try:
                self._run_chain(self.chains[ANTISPOOF_CHAIN], pkt, ctx, steps)
            except _Verdict as v:
                if v.verdict != "accept":  # accept only ends this base chain
                    return TraceResult(v.verdict, v.comment, "prerouting", zone_in, None, None, nat, steps, pdict)

        if pkt.ct_state == "new":
            hit = self._nat("prerouting_nat", pkt, ctx, steps)
            if hit and "dnat" in hit[1]:
                d = hit[1]["dnat"]
                new_dst = _nat_addr(d["addr"], ctx["dst"])
                new_port = d.get("port", ctx["dport"])
                if (new_dst, new_port) != (ctx["dst"], ctx["dport"]):
                    # The kernel marks a connection DNATed only when the mapping changes its tuple.
                    ctx["dst"], ctx["dport"] = new_dst, new_port
                    pkt.ct_status = {"dnat"}
                    nat.append({"type": "dnat", "rule": hit[0], "to": _hostport(new_dst, new_port)})

        local = self.router_addresses()
        if pkt.family == 4 and (ctx["src"] in local or ctx["src"].is_loopback):
            # The kernel's routing refuses an IPv4 source that is its own (a martian; accept_local=0).
            return TraceResult("no-route", None, "prerouting", zone_in, None, None, nat, steps, pdict)
        if ctx["dst"] in local or ctx["dst"].is_loopback:
            verdict, rule = self._base("input", pkt, ctx, steps)
            return TraceResult(verdict, rule, "input", zone_in, "self" if verdict == "accept" else None,
                               "self", nat, steps, pdict)
        oif = self.route(ctx["dst"])
        if oif is None or (pkt.family == 6 and ctx["src"].is_link_local and oif != pkt.iif):
            # ip6_forward drops a link-local source unless it leaves where it came in (a redirect case)
            return TraceResult("no-route", None, "forward", zone_in, None, None, nat, steps, pdict)
        ctx["oif"] = oif
        verdict, rule = self._base("forward", pkt, ctx, steps)
        if verdict == "accept" and pkt.ct_state == "new":
            hit = self._nat("postrouting_nat", pkt, ctx, steps)
            if hit:
                stmt = hit[1]
                if "masquerade" in stmt:
                    to = self._primary(oif, pkt.family)
                    nat.append({"type": "masquerade", "rule": hit[0], "to": str(to) if to else None})
                elif "snat" in stmt:
                    nat.append({"type": "snat", "rule": hit[0], "to": str(_nat_addr(stmt["snat"]["addr"], ctx["src"]))})
        return TraceResult(verdict, rule, "forward", zone_in, oif, self.cfg.zone_of(oif), nat, steps, pdict)


class _NoMatch:
    pass


_NOMATCH = _NoMatch()


def _ip(v):
    if isinstance(v, ipaddress._BaseAddress):
        return v
    return None


def _hostport(ip, port) -> str:
    if port is None:
        return str(ip)
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def trace(cfg: RouterConfig, pkt: Packet) -> TraceResult:
    return Tracer(cfg).trace(pkt)
