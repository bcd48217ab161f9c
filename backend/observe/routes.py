"""The routing tables as they are: the kernel's (netlink, every table but ``local`` unless asked)
and, when FRR runs, what it learned (``show ip route json`` / ``show ipv6 route json``), including
routes it holds but did not install (a BGP route losing to a connected one).

Read-only. Bounded: at most MAX_ROUTES entries (``truncated`` says when more existed) and at most
MAX_FRR_BYTES of FRR's answer. The table filter is a name or a number, never a path.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
from pathlib import Path

MAX_ROUTES = 5000
MAX_FRR_BYTES = 16 << 20
TABLE_RE = r"^(all|main|local|default|[0-9]{1,10})$"

TABLES = {254: "main", 255: "local", 253: "default"}
# rtnetlink protocols (/etc/iproute2/rt_protos) that matter here; 250 is the talgate agent's.
PROTOS = {2: "kernel", 3: "boot", 4: "static", 11: "zebra", 16: "dhcp", 186: "bgp", 187: "isis", 188: "ospf",
          189: "rip", 196: "static", 250: "talgate"}
TYPES = {1: "unicast", 2: "local", 3: "broadcast", 4: "anycast", 5: "multicast", 6: "blackhole", 7: "unreachable",
         8: "prohibit"}


def table_name(t: int) -> str:
    return TABLES.get(t, str(t))


def table_number(name: str) -> int | None:
    """None for "all"; the number of a named or numbered table."""
    if name == "all":
        return None
    for k, v in TABLES.items():
        if v == name:
            return k
    return int(name)


def kind_of(proto: str, scope: int, family: int) -> str:
    """What an admin calls the route: connected, static, bgp, ospf, ospfv3, kernel, …"""
    if proto == "kernel" and scope == 253:
        return "connected"
    if proto == "kernel" and family == 6 and scope == 0:
        return "connected"
    if proto in ("talgate", "static", "boot"):
        return "static"
    if proto == "ospf":
        return "ospfv3" if family == 6 else "ospf"
    return proto


def _ifname(index: int | None, cache: dict) -> str | None:
    if index is None:
        return None
    if index not in cache:
        try:
            cache[index] = socket.if_indextoname(index)
        except OSError:
            cache[index] = str(index)
    return cache[index]


def kernel_routes(table: str = "all", limit: int = MAX_ROUTES) -> tuple[list[dict], bool]:
    """([route], truncated) from netlink; "all" leaves out the local table."""
    from pyroute2 import IPRoute

    want = table_number(table)
    out: list[dict] = []
    names: dict = {}
    truncated = False
    with IPRoute() as ipr:
        for fam in (socket.AF_INET, socket.AF_INET6):
            for r in ipr.get_routes(family=fam):
                attrs = dict(r.get("attrs", []))
                t = attrs.get("RTA_TABLE", r.get("table"))
                if (want is None and t == 255) or (want is not None and t != want):
                    continue
                typ = TYPES.get(r.get("type"), str(r.get("type")))
                if fam == socket.AF_INET6 and typ == "unicast" and attrs.get("RTA_DST", "").startswith("fe80::") \
                        and want is None:
                    continue  # link-local routes on every link: noise in "all"
                if typ in ("multicast",) or (fam == socket.AF_INET6 and attrs.get("RTA_DST", "").startswith("ff00")):
                    continue
                if len(out) >= limit:
                    truncated = True
                    break
                v = 4 if fam == socket.AF_INET else 6
                dst = attrs.get("RTA_DST")
                dst = f"{dst}/{r['dst_len']}" if dst else ("0.0.0.0/0" if v == 4 else "::/0")
                gw, dev = attrs.get("RTA_GATEWAY"), attrs.get("RTA_OIF")
                for hop in attrs.get("RTA_MULTIPATH") or []:
                    hop_attrs = dict(hop.get("attrs", []))
                    gw = gw or hop_attrs.get("RTA_GATEWAY")
                    dev = dev or hop.get("oif")
                proto = PROTOS.get(r.get("proto"), str(r.get("proto")))
                out.append({"family": v, "dst": dst, "table": table_name(t), "kind": kind_of(proto, r.get("scope", 0), v),
                            "protocol": proto, "type": typ, "gateway": gw, "dev": _ifname(dev, names),
                            "metric": attrs.get("RTA_PRIORITY"), "source": "kernel", "selected": True,
                            "installed": True})
    return out, truncated


def _vtysh(vty: Path, cmd: str) -> dict | None:
    try:
        p = subprocess.Popen(["vtysh", "--vty_socket", str(vty), "-c", cmd], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    except OSError:
        return None
    try:
        data = p.stdout.read(MAX_FRR_BYTES + 1)
        p.stdout.close()
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        return None
    if len(data) > MAX_FRR_BYTES:
        p.kill()
        return None
    try:
        doc = json.loads(data or b"{}")
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def frr_routes(vty: Path, table: str = "all", limit: int = MAX_ROUTES) -> tuple[list[dict], bool] | None:
    """FRR's RIB (connected, static, learned; selected or not), or None when FRR does not answer."""
    if not (vty / "zebra.vty").exists():
        return None
    want = table_number(table)
    out: list[dict] = []
    truncated, answered = False, False
    for v, cmd in ((4, "show ip route json"), (6, "show ipv6 route json")):
        doc = _vtysh(vty, cmd)
        if doc is None:
            continue
        answered = True
        for prefix, entries in doc.items():
            for e in entries if isinstance(entries, list) else []:
                t = e.get("table", 254)
                if want is not None and t != want:
                    continue
                if len(out) >= limit:
                    return out, True
                hops = e.get("nexthops") or [{}]
                proto = str(e.get("protocol", ""))
                kind = {"ospf6": "ospfv3"}.get(proto, proto)
                out.append({"family": v, "dst": prefix, "table": table_name(t), "kind": kind, "protocol": proto,
                            "type": "unicast", "gateway": hops[0].get("ip"), "dev": hops[0].get("interfaceName"),
                            "metric": e.get("metric"), "distance": e.get("distance"), "source": "frr",
                            "selected": bool(e.get("selected")), "installed": bool(e.get("installed")),
                            "age": e.get("uptime")})
    return (out, truncated) if answered else None


def routes(table: str = "all", vty: Path | None = None) -> dict:
    """{"routes": [...], "truncated": bool, "frr": bool}: the kernel's routes, plus FRR's learned
    routes (bgp, ospf, ospfv3) it did not install, so "learned but losing" is visible too."""
    if not re.fullmatch(TABLE_RE, table):
        raise ValueError(f"unknown table {table!r}: a name (main, local, default, all) or a number")
    rs, truncated = kernel_routes(table)
    frr = frr_routes(vty, table) if vty is not None else None
    if frr is not None:
        learned, t2 = frr
        truncated = truncated or t2
        for r in learned:
            if r["kind"] in ("bgp", "ospf", "ospfv3") and not r["installed"] and len(rs) < MAX_ROUTES:
                rs.append(r)
    rs.sort(key=lambda r: (r["table"] != "main", r["table"], r["family"], _sort_key(r["dst"]), r["source"]))
    return {"routes": rs, "truncated": truncated, "frr": frr is not None}


def _sort_key(dst: str) -> tuple:
    import ipaddress

    try:
        n = ipaddress.ip_network(dst, strict=False)
        return (int(n.network_address), n.prefixlen)
    except ValueError:
        return (0, 0)
