"""What a DHCP/DHCPv6 client reported, checked and bounded before it becomes a runtime fact.

The reports come from ``dhclient`` (its ``-sf`` hook, :data:`HOOK`, writes the variables dhclient
sets as one JSON file per event). Everything in them was chosen by whoever answered on the WAN, so
nothing is trusted: absurd values are refused (with a message for the uplink's events) or cut to a
bound, and only what passes is installed.

    update = parse(env, own_networks, now)   # -> Update(kind, ...) | None, messages
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from ..model.base import HOSTNAME_RE

MAX_VALUE = 16 * 1024          # bytes of one variable the hook keeps
MAX_VARS = 100                 # variables the hook keeps
MAX_REPORT = 2 * 1024 * 1024   # bytes of one report file the agent reads
MAX_DNS = 8                    # DNS servers kept per uplink and family
MAX_DOMAINS = 6                # search domains kept
MAX_LEASE = 30 * 86400         # a lease longer than this is treated as this long
MIN_LEASE = 10                 # ... and shorter as this
V4_PREFIX = (8, 30)            # accepted IPv4 subnet lengths on a WAN
PD_PREFIX = (32, 64)           # accepted delegated prefix lengths (a /64 still holds one LAN)

V4_REASONS = {"BOUND", "RENEW", "REBIND", "REBOOT"}
V4_GONE = {"EXPIRE", "FAIL", "RELEASE", "STOP", "TIMEOUT"}
V6_REASONS = {"BOUND6", "RENEW6", "REBIND6"}
V6_GONE = {"EXPIRE6", "RELEASE6", "STOP6"}

# The -sf hook: a standalone script (no import of the agent's code), run by dhclient as root with
# the server's answers in its environment. Its only job is to hand them over, bounded, atomically.
HOOK = """#!{python} -I
import json, os, time
spool = {spool!r}
keep = {{k: v[:{max_value}] for k, v in os.environ.items()
        if k in ("reason", "interface") or k.startswith(("new_", "old_", "cur_"))}}
keep = dict(sorted(keep.items())[:{max_vars}])
name = "%d-%d" % (time.time_ns(), os.getpid())
tmp = os.path.join(spool, "." + name)
with open(tmp, "w") as f:
    json.dump({{"family": {family}, "env": keep}}, f)
os.rename(tmp, os.path.join(spool, name + ".json"))
"""


def hook_text(python: str, spool: str, family: int) -> str:
    return HOOK.format(python=python, spool=spool, family=family, max_value=MAX_VALUE, max_vars=MAX_VARS)


@dataclass
class Update:
    """One checked report. kind: 'v4' (lease), 'v4-gone', 'v6-addr', 'v6-prefix', 'v6-gone'."""

    kind: str
    link: str
    address: str | None = None          # "ip/len" (v4) or "ip/128" (v6 IA_NA)
    prefix: str | None = None           # a delegated prefix
    gateway: str | None = None
    dns: list[str] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)
    expires: float | None = None        # epoch seconds
    preferred: float | None = None
    server: str | None = None
    lifetimes: tuple[int, int] | None = None  # a delegation's valid and preferred lifetimes (seconds)


def _int(v, default: int | None = None) -> int | None:
    try:
        return int(str(v)[:20])
    except (TypeError, ValueError):
        return default


def _lease(seconds: int | None) -> int:
    return max(MIN_LEASE, min(MAX_LEASE, seconds if seconds is not None else MIN_LEASE))


def _list(v: str | None, version: int, what: str, msgs: list[str]) -> list[str]:
    """Unicast addresses of a server list, at most MAX_DNS; the rest dropped with a message."""
    items = (v or "")[:MAX_VALUE].replace(",", " ").split()
    out: list[str] = []
    bad = 0
    for s in items:
        try:
            ip = ipaddress.ip_address(s)
        except ValueError:
            bad += 1
            continue
        if ip.version != version or ip.is_multicast or ip.is_unspecified or ip.is_loopback:
            bad += 1
            continue
        if str(ip) not in out:
            out.append(str(ip))
    if bad:
        msgs.append(f"{bad} invalid {what} ignored")
    if len(out) > MAX_DNS:
        msgs.append(f"{len(out)} {what} offered; kept the first {MAX_DNS}")
        out = out[:MAX_DNS]
    return out


def _domains(v: str | None, what: str, msgs: list[str]) -> list[str]:
    out = []
    for d in (v or "")[:MAX_VALUE].split():
        d = d.strip('"').rstrip(".")
        if len(d) > 253 or not re.fullmatch(HOSTNAME_RE, d):
            msgs.append(f"{what} {d[:40]!r}{'…' if len(d) > 40 else ''} ({len(d)} characters) is not a domain name: ignored")
            continue
        if d not in out:
            out.append(d)
    if len(out) > MAX_DOMAINS:
        msgs.append(f"{len(out)} {what}s offered; kept the first {MAX_DOMAINS}")
        out = out[:MAX_DOMAINS]
    return out


def _overlaps(net, own: list) -> str | None:
    for name, other in own:
        if other.version == net.version and net.overlaps(other):
            return f"{other} of {name}"
    return None


def parse(env: dict, link: str, family: int, own: list, now: float) -> tuple[Update | None, list[str]]:
    """own: [(interface, network)] the router already uses (LAN subnets, other links): a lease
    overlapping one is refused. Returns the update (None: nothing to install) and messages."""
    msgs: list[str] = []
    env = {str(k): str(v) for k, v in env.items()}
    reason = env.get("reason", "")
    if env.get("interface") != link:
        return None, [f"a report for interface {env.get('interface', '?')[:20]!r} on the client of {link}: ignored"]
    if family == 4:
        return _parse4(env, link, reason, own, now, msgs)
    return _parse6(env, link, reason, own, now, msgs)


def _parse4(env, link, reason, own, now, msgs):
    if reason in V4_GONE:
        return Update("v4-gone", link), msgs
    if reason not in V4_REASONS:
        return None, msgs
    try:
        ip = ipaddress.IPv4Address(env.get("new_ip_address", ""))
        net = ipaddress.IPv4Network(f"{ip}/{env.get('new_subnet_mask', '')}", strict=False)
    except ValueError:
        return None, [f"DHCPv4 lease refused: address {env.get('new_ip_address', '')[:40]!r} / mask "
                      f"{env.get('new_subnet_mask', '')[:40]!r} is not valid"]
    lo, hi = V4_PREFIX
    if not lo <= net.prefixlen <= hi:
        return None, [f"DHCPv4 lease refused: {ip}/{net.prefixlen} (a WAN subnet must be /{lo} to /{hi})"]
    if ip.is_multicast or ip.is_loopback or ip.is_unspecified or ip.is_link_local or ip.is_reserved \
            or ip in (net.network_address, net.broadcast_address):
        return None, [f"DHCPv4 lease refused: {ip} is not a usable host address"]
    clash = _overlaps(net, own)
    if clash:
        return None, [f"DHCPv4 lease refused: {net} overlaps the router's own {clash}"]
    gw = None
    for g in env.get("new_routers", "")[:MAX_VALUE].split():
        try:
            gip = ipaddress.IPv4Address(g)
        except ValueError:
            msgs.append(f"gateway {g[:40]!r} is not an address: ignored")
            continue
        if gip not in net or gip == ip or gip in (net.network_address, net.broadcast_address):
            msgs.append(f"gateway {gip} is outside {net} (or not a host in it): no default route from it")
            continue
        gw = str(gip)
        break
    expiry = _int(env.get("new_expiry"))
    lease = _lease(_int(env.get("new_dhcp_lease_time")))
    expires = min(expiry, now + MAX_LEASE) if expiry and expiry > now else now + lease
    return Update("v4", link, address=f"{ip}/{net.prefixlen}", gateway=gw,
                  dns=_list(env.get("new_domain_name_servers"), 4, "DNS servers", msgs),
                  domains=_domains(" ".join(filter(None, [env.get("new_domain_name", ""),
                                                         env.get("new_domain_search", "")])), "domain", msgs),
                  expires=expires, server=env.get("new_dhcp_server_identifier", "")[:64] or None), msgs


def _parse6(env, link, reason, own, now, msgs):
    gone = reason in V6_GONE
    if not gone and reason not in V6_REASONS:
        return None, msgs
    pre = "old_" if gone else "new_"
    life = _int(env.get(f"{pre}max_life"), 0)
    pref = _int(env.get(f"{pre}preferred_life"), 0)
    starts = _int(env.get(f"{pre}life_starts")) or int(now)
    if not (now - 86400 < starts < now + 60):
        starts = int(now)  # a clock we do not believe: count from now
    if gone or life <= 0:
        target = env.get(f"{pre}ip6_prefix") or env.get(f"{pre}ip6_address")
        if not target:
            return None, msgs
        kind = "v6-prefix" if env.get(f"{pre}ip6_prefix") else "v6-addr"
        try:
            norm = (str(ipaddress.IPv6Network(target[:64], strict=False)) if kind == "v6-prefix"
                    else f"{ipaddress.IPv6Address(target[:64])}/128")
        except ValueError:
            return None, [f"DHCPv6 {reason}: {target[:40]!r} is not an IPv6 {kind[3:]}: ignored"]
        return Update("v6-gone", link, prefix=norm if kind == "v6-prefix" else None,
                      address=norm if kind == "v6-addr" else None), msgs
    expires = starts + _lease(life)
    preferred = starts + max(0, min(pref, life))
    dns = _list(env.get("new_dhcp6_name_servers"), 6, "DNS servers", msgs)
    domains = _domains(env.get("new_dhcp6_domain_search"), "search domain", msgs)
    if env.get("new_ip6_prefix"):
        raw = env["new_ip6_prefix"][:64]
        try:
            net = ipaddress.IPv6Network(raw, strict=False)
        except ValueError:
            return None, [f"delegated prefix {raw[:40]!r} refused: not an IPv6 prefix"]
        lo, hi = PD_PREFIX
        if not lo <= net.prefixlen <= hi:
            return None, [f"delegated prefix {net} refused: a delegation must be /{lo} to /{hi} "
                          f"(a /{net.prefixlen} {'cannot hold a /64 LAN' if net.prefixlen > hi else 'is absurd'})"]
        if not net.is_global and not net.is_private or net.is_multicast or net.is_link_local or net.is_loopback \
                or net.is_site_local or net.network_address.ipv4_mapped is not None:
            return None, [f"delegated prefix {net} refused: not a unicast prefix"]
        clash = _overlaps(net, own)
        if clash:
            return None, [f"delegated prefix {net} refused: overlaps the router's own {clash}"]
        return Update("v6-prefix", link, prefix=str(net), dns=dns, domains=domains, expires=expires,
                      preferred=preferred, lifetimes=(_lease(life), min(max(0, pref), _lease(life)))), msgs
    raw = env.get("new_ip6_address", "")[:64]
    try:
        ip = ipaddress.IPv6Address(raw)
    except ValueError:
        return None, [f"DHCPv6 address {raw[:40]!r} refused: not an IPv6 address"]
    if ip.is_multicast or ip.is_link_local or ip.is_loopback or ip.is_unspecified or ip.ipv4_mapped:
        return None, [f"DHCPv6 address {ip} refused: not a unicast address"]
    clash = _overlaps(ipaddress.IPv6Network(f"{ip}/128"), own)
    if clash:
        return None, [f"DHCPv6 address {ip} refused: inside the router's own {clash}"]
    return Update("v6-addr", link, address=f"{ip}/128", dns=dns, domains=domains, expires=expires,
                  preferred=preferred), msgs
