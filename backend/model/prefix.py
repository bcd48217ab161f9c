"""Fast prefix parsing for big address sets (100,000 prefixes must validate, render and trace in
well under a second). IPv4 takes a regex + integer path; anything else falls back to ipaddress."""

from __future__ import annotations

import bisect
import functools
import ipaddress
import re

_V4 = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:/(\d{1,2}))?")


@functools.lru_cache(maxsize=1 << 18)
def parse(s: str) -> tuple[int, int, int, str]:
    """(version, first, last, canonical "addr/len") of a host or prefix; host bits must be zero.
    Raises ValueError with ipaddress's own message for anything invalid."""
    m = _V4.fullmatch(s)
    if m:
        parts = m.groups()
        octets = parts[:4]
        if all(len(o) == 1 or o[0] != "0" for o in octets):
            a, b, c, d = (int(o) for o in octets)
            plen = int(parts[4]) if parts[4] is not None else 32
            if a < 256 and b < 256 and c < 256 and d < 256 and plen <= 32:
                ip = (a << 24) | (b << 16) | (c << 8) | d
                host = (1 << (32 - plen)) - 1
                if not ip & host:
                    return 4, ip, ip | host, f"{a}.{b}.{c}.{d}/{plen}"
    net = ipaddress.ip_network(s, strict=True)
    return net.version, int(net.network_address), int(net.broadcast_address), str(net)


def disjoint(items: list[tuple[int, int, int, str]]) -> list[tuple[int, int, int, str]]:
    """Drop prefixes nested in another one (CIDR prefixes never partly overlap), sorted."""
    out: list[tuple[int, int, int, str]] = []
    for it in sorted(items):  # plain tuple order (no key function): prefixes sharing a start come
        if out and out[-1][0] == it[0]:  # smallest first, so a larger one replaces the last kept
            if it[2] <= out[-1][2]:
                continue
            if it[1] == out[-1][1]:
                out[-1] = it
                continue
        out.append(it)
    return out


class RangeSet:
    """Membership test over disjoint ranges of one IP version (bisect, O(log n))."""

    def __init__(self, items: list[tuple[int, int, int, str]]):
        self.by_ver = {}
        for ver in (4, 6):
            rs = [(lo, hi) for v, lo, hi, _ in disjoint(items) if v == ver]
            self.by_ver[ver] = ([lo for lo, _ in rs], [hi for _, hi in rs])

    def __contains__(self, ip) -> bool:
        los, his = self.by_ver[ip.version]
        i = bisect.bisect_right(los, int(ip)) - 1
        return i >= 0 and int(ip) <= his[i]
