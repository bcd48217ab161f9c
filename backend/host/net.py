"""Links, addresses, routes and sysctls through pyroute2 (netlink), idempotently.

The agent owns: the state and MTU of links named in the config, their permanent non-link-local
addresses, routes in the main table with protocol RTPROT_TALGATE, and the forwarding sysctls.
Everything else in the namespace (the management link on Talos, kernel and DHCP routes,
SLAAC addresses) is left alone. Links the document may never own (the loopback, CNI and pod
links: backend.model.links) are never touched, even when a state names them. Whatever the
kernel refuses, or a link that vanished, is an ApplyError naming the config path.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from ..model.config import RouterConfig
from ..model.links import foreign_link

RTPROT_TALGATE = 250  # "proto 250" in `ip route`; ours alone
RTN_UNREACHABLE = 7   # route type of the unused part of a delegated prefix
MAIN_TABLE = 254
IFA_F_NODAD = 0x02
IFA_F_PERMANENT = 0x80

SYSCTLS = {
    "net/ipv4/ip_forward": "1",
    "net/ipv6/conf/all/forwarding": "1",
    # Per-flow packet/byte accounting in conntrack (top talkers). Present only once the conntrack
    # module is loaded (our ruleset loads it): set when it exists, skipped otherwise.
    "net/netfilter/nf_conntrack_acct": "1",
}
OPTIONAL_SYSCTLS = {"net/netfilter/nf_conntrack_acct"}


class ApplyError(Exception):
    def __init__(self, path: str, message: str):
        self.path = path
        super().__init__(f"{path}: {message}")


@dataclass(frozen=True)
class RouteKey:
    family: int
    dst: str
    metric: int


@dataclass
class NetState:
    """Desired (or observed) state of what the agent owns."""

    links: dict[str, dict] = field(default_factory=dict)          # name -> {up, mtu}
    addrs: dict[str, set[str]] = field(default_factory=dict)       # name -> {"ip/len"}
    routes: dict[RouteKey, dict] = field(default_factory=dict)     # key -> {gateway, oif}
    sysctls: dict[str, str] = field(default_factory=dict)


def desired(cfg: RouterConfig) -> NetState:
    st = NetState(sysctls=dict(SYSCTLS))
    for name, itf in cfg.interfaces.items():
        st.links[name] = {"up": itf.enabled, "mtu": itf.mtu}
        st.addrs[name] = {str(a) for a in [*itf.ipv4, *itf.ipv6]} if itf.enabled else set()
    for r in cfg.routes:
        net = ipaddress.ip_network(r.to)
        metric = r.metric or (1024 if net.version == 6 else 0)
        st.routes[RouteKey(net.version, str(net), metric)] = {
            "gateway": str(r.via) if r.via else None, "oif": r.interface, "name": r.key}
    return st


def _family(fam: int) -> int:
    return 2 if fam == 4 else 10


class NetApplier:
    """Converge links/addresses/routes/sysctls of the current network namespace."""

    def __init__(self, proc_sys: str = "/proc/sys"):
        self.proc_sys = Path(proc_sys)
        # MTU each link had before the config first set one, so removing `mtu` restores it.
        self.original_mtu: dict[str, int] = {}

    # -- observation ---------------------------------------------------------------------

    def missing_links(self, st: NetState) -> list[str]:
        """Links st names (its links and its routes' interfaces) that do not exist."""
        names = list(st.links) + [r["oif"] for r in st.routes.values() if r.get("oif") and r["oif"] not in st.links]
        out = []
        for n in dict.fromkeys(names):
            try:
                socket.if_nametoindex(n)  # one ioctl in this netns (pyroute2 parsed a link message per name)
            except OSError:
                out.append(n)
        return out

    def observe(self, owned: set[str], extra_sysctls=None) -> NetState:
        st = NetState()
        with IPRoute() as ipr:
            names = {}
            for link in ipr.get_links():
                name = link.get_attr("IFLA_IFNAME")
                names[link["index"]] = name
                if name in owned:
                    st.links[name] = {"up": bool(link["flags"] & 1), "mtu": link.get_attr("IFLA_MTU")}
                    st.addrs[name] = set()
            for a in ipr.get_addr():
                name = names.get(a["index"])
                if name not in owned:
                    continue
                flags = a.get_attr("IFA_FLAGS") or a["flags"]
                ip = ipaddress.ip_address(a.get_attr("IFA_ADDRESS"))
                if ip.is_link_local or not flags & IFA_F_PERMANENT:
                    continue
                st.addrs[name].add(f"{ip}/{a['prefixlen']}")
            for fam in (4, 6):
                for r in ipr.get_routes(family=_family(fam), table=MAIN_TABLE):
                    if r["proto"] != RTPROT_TALGATE:
                        continue
                    dst = r.get_attr("RTA_DST") or ("0.0.0.0" if fam == 4 else "::")
                    key = RouteKey(fam, str(ipaddress.ip_network(f"{dst}/{r['dst_len']}")),
                                   r.get_attr("RTA_PRIORITY") or 0)
                    st.routes[key] = {"gateway": r.get_attr("RTA_GATEWAY"), "oif": names.get(r.get_attr("RTA_OIF"))}
                    if r["type"] == RTN_UNREACHABLE:
                        st.routes[key] = {"gateway": None, "oif": None, "type": "unreachable"}
        for k in [*SYSCTLS, *(extra_sysctls or ())]:
            try:
                st.sysctls[k] = (self.proc_sys / k).read_text().strip()
            except OSError:
                pass
        return st

    # -- planning ------------------------------------------------------------------------

    def plan(self, want: NetState, owned_before: set[str] = frozenset()) -> list[tuple]:
        """The operations that turn the observed state into want (empty when converged)."""
        owned = {n for n in set(want.links) | set(owned_before) if not foreign_link(n)}
        have = self.observe(owned, [k for k in want.sysctls if k not in SYSCTLS])
        ops: list[tuple] = []
        for k, v in want.sysctls.items():
            if k in OPTIONAL_SYSCTLS and k not in have.sysctls:
                continue  # not in this kernel (yet): nothing to set, no drift
            if have.sysctls.get(k) != v:
                ops.append(("sysctl", k, v))
        for name, lw in want.links.items():
            lh = have.links.get(name)
            if lh is None or name not in owned:
                continue
            mtu = lw["mtu"]
            if mtu:
                self.original_mtu.setdefault(name, lh["mtu"])
            else:
                mtu = self.original_mtu.pop(name, None)
            if mtu and lh["mtu"] != mtu:
                ops.append(("link-mtu", name, mtu))
            if lw["up"] != lh["up"]:
                ops.append(("link-state", name, "up" if lw["up"] else "down"))
        for key in sorted(set(have.routes) - set(want.routes), key=str):
            ops.append(("route-del", key, have.routes[key]))
        for name in sorted(owned):
            wa = want.addrs.get(name, set())
            ha = have.addrs.get(name, set())
            if name not in have.links:
                continue
            for a in sorted(ha - wa):
                ops.append(("addr-del", name, a))
            for a in sorted(wa - ha):
                ops.append(("addr-add", name, a))
        for key, rw in sorted(want.routes.items(), key=lambda kv: str(kv[0])):
            rh = have.routes.get(key)
            if rh is None:
                ops.append(("route-add", key, rw))
            elif rh["gateway"] != rw["gateway"] or (rw["oif"] and rh["oif"] != rw["oif"]) or rh.get("type") != rw.get("type"):
                ops.append(("route-replace", key, rw))
        return ops

    # -- execution -----------------------------------------------------------------------

    def execute(self, ops: list[tuple]) -> int:
        if not ops:
            return 0
        with IPRoute() as ipr:
            for op in ops:
                try:
                    self._one(ipr, op)
                except ApplyError:
                    raise
                except NetlinkError as e:
                    raise ApplyError(_op_path(op), f"kernel refused {op[0]} {op[1]}: {e.args[1] if len(e.args) > 1 else e}") from None
                except (OSError, ValueError, LookupError) as e:
                    raise ApplyError(_op_path(op), f"could not {op[0]} {op[1]}: {e}") from None
        return len(ops)

    @staticmethod
    def _index(ipr: IPRoute, name: str, op: tuple) -> int:
        found = ipr.link_lookup(ifname=name)
        if not found:
            raise ApplyError(_op_path(op), f"no such link {name!r} in the router's network namespace")
        return found[0]

    def _one(self, ipr: IPRoute, op: tuple) -> None:
        kind = op[0]
        if kind == "sysctl":
            (self.proc_sys / op[1]).write_text(op[2] + "\n")
            return
        if kind.startswith("link") or kind.startswith("addr"):
            if foreign_link(op[1]):
                raise ApplyError(_op_path(op), f"refusing to {kind} on {op[1]!r}: {foreign_link(op[1])}")
            idx = self._index(ipr, op[1], op)
        if kind == "link-mtu":
            ipr.link("set", index=idx, mtu=op[2])
        elif kind == "link-state":
            ipr.link("set", index=idx, state=op[2])
        elif kind in ("addr-add", "addr-del"):
            itf = ipaddress.ip_interface(op[2])
            kw = {"index": idx, "address": str(itf.ip), "prefixlen": itf.network.prefixlen}
            if kind == "addr-add":
                if itf.version == 6:
                    kw["flags"] = IFA_F_NODAD  # a router's static address; no DAD wait on apply
                ipr.addr("add", **kw)
            else:
                ipr.addr("del", **kw)
        elif kind.startswith("route"):
            key, rw = op[1], op[2]
            kw = {"dst": key.dst, "family": _family(key.family), "table": MAIN_TABLE, "proto": RTPROT_TALGATE}
            if key.metric:
                kw["priority"] = key.metric
            if kind == "route-del":
                try:
                    ipr.route("del", **kw)
                except NetlinkError as e:
                    if e.code != 3:  # ESRCH: already gone with its address
                        raise
                return
            if rw.get("type") == "unreachable":  # the unused part of a delegated prefix (RFC 7084 WPD-5)
                kw["type"] = "unreachable"
            if rw.get("gateway"):
                kw["gateway"] = rw["gateway"]
            if rw.get("oif"):
                kw["oif"] = self._index(ipr, rw["oif"], op)
            ipr.route("replace" if kind == "route-replace" else "add", **kw)

    def apply(self, want: NetState, owned_before: set[str] = frozenset()) -> int:
        try:
            ops = self.plan(want, owned_before)
        except (NetlinkError, OSError) as e:
            raise ApplyError("interfaces", f"could not read the kernel's links, addresses and routes: {e}") from None
        return self.execute(ops)


def _op_path(op: tuple) -> str:
    kind = op[0]
    if kind == "sysctl":
        return f"sysctl {op[1]}"
    if kind.startswith("link"):
        return f"interfaces.{op[1]}.mtu" if kind == "link-mtu" else f"interfaces.{op[1]}"
    if kind.startswith("addr"):
        fam = "ipv6" if ":" in op[2] else "ipv4"
        return f"interfaces.{op[1]}.{fam}"
    return f"routes ({op[2].get('name', op[1].dst) if len(op) > 2 else op[1].dst})"
