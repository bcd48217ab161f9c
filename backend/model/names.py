"""Every document name that reaches the kernel or a daemon, mapped in one place.

The nft renderer (``backend/render/nft.py``) takes its chain names, set names, rule comments and
log prefixes from here, and :func:`check_names` (called from ``checks.check``) refuses, naming the
paths of both items, any two names that would land on one identifier, and any identifier over its
target's limit. So a document either reaches the kernel with one kernel object per document object,
or is refused at validate time; the kernel, the tracer and the document cannot disagree by a merge.

nft identifiers keep the document's names verbatim. ``NAME_RE`` allows ``[A-Za-z0-9_.-]`` and nft
takes all of those in identifiers (also unquoted in its text syntax, after our fixed prefixes), so
nothing is folded: ``ssh_admins`` and ``ssh-admins`` are two sets. An identifier with one name
between fixed parts (``set_NAME_v4``, ``zone_NAME_in``) is injective by construction. Zone pairs
(``zone_A_to_B``) keep their readable, established form, which two crafted zone names can still
reach (``a`` → ``b_to_c`` and ``a_to_b`` → ``c``; ``x`` → ``y_in`` and zone ``x_to_y``'s input chain):
that, and anything a later change introduces, is what the collision check refuses.

Limits (measured on this kernel and libnftables 1.0.6, see
tests/security/test_names.py::test_the_limits_are_the_kernels):

- chain and set names: 255 bytes (256 → ERANGE from the kernel, 257 → refused by libnftables);
- rule comments: 128 characters, the limit of nft's text parser ("comment too long, 128
  characters maximum allowed"), so the text form (`talgate render`, diffs, `nft -f`) loads what
  the JSON transaction loads; the kernel itself takes 253 bytes (NFT_USERDATA_MAXLEN 256 less the
  TLV header and NUL; at 254 libnftables reports "Memory allocation failure" and exits the calling
  process, which the host layer's guard prevents);
- log prefixes: 127 bytes (NF_LOG_PREFIXLEN 128 with the NUL; 128-136 → ERANGE, at 137 or more
  libnftables smashes its stack and aborts the calling process). Ours are at most
  ``LOG_PREFIX_LEN`` bytes by construction (:func:`log_prefix`);
- interface names: 15 bytes (IFNAMSIZ 16 with the NUL);
- DNS: a label 63, a name 253 characters, compared case-insensitively.
"""

from __future__ import annotations

import hashlib
import zlib
from collections import defaultdict
from dataclasses import dataclass

NFT_NAME_MAX = 255
NFT_COMMENT_MAX = 128  # nft's text parser; the kernel's own limit is NFT_KERNEL_COMMENT_MAX
NFT_KERNEL_COMMENT_MAX = 253
LOG_PREFIX_MAX = 127
LOG_PREFIX_LEN = 64  # what log_prefix() renders at most: short, well inside the kernel's 127
IFNAME_MAX = 15
DNS_LABEL_MAX = 63
DNS_NAME_MAX = 253

# Chains the renderer creates on its own (no document name in them). Document-derived chains all
# start with "zone_", so they can never be one of these.
BUILTIN_CHAINS = ("input", "forward", "output", "prerouting_nat", "postrouting_nat",
                  "wan_raw", "wan_mark", "wan_out", "wan_post", "wan_nat")  # the last: render/pbr.py


# -- nft identifiers -------------------------------------------------------------------------


def zone_in_chain(zone: str) -> str:
    """The chain for traffic from zone to the router itself."""
    return f"zone_{zone}_in"


def zone_pair_chain(a: str, b: str) -> str:
    """The chain for traffic forwarded from zone a to zone b."""
    return f"zone_{a}_to_{b}"


def set_ident(name: str, fam: int) -> str:
    """The nft set holding address set name's IPv4 (fam 4) or IPv6 (fam 6) entries."""
    return f"set_{name}_v{fam}"


def kea_subnet_id(ifname: str, subnet: str) -> int:
    """Kea's subnet id (it keys the leases): derived from interface and subnet, not list positions,
    so adding a scope never renumbers another one's leases. 31 bits: two scopes can collide, which
    check_names refuses."""
    return (zlib.crc32(f"{ifname} {subnet}".encode()) & 0x7FFFFFFF) or 1


# -- rule comments and log prefixes ----------------------------------------------------------


def rule_comment(name: str) -> str:
    return f"rule {name}"


def policy_comment(key: str) -> str:
    """``policy FROM-TO`` (or ``policy NAME``). An unnamed policy between two long zone names would
    pass nft's 128-character comment limit: then the key is cut short plus 8 hex digits of its hash
    (distinct keys stay distinct; give the policy a `name` for a readable comment)."""
    c = f"policy {key}"
    if len(c.encode()) <= NFT_COMMENT_MAX:
        return c
    tag = "~" + hashlib.sha256(key.encode()).hexdigest()[:8]
    keep = NFT_COMMENT_MAX - len("policy ") - len(tag)
    return "policy " + key.encode()[:keep].decode("utf-8", "ignore") + tag


def zone_comment(zone: str, hook: str) -> str:
    """hook: 'input' or 'forward' (the zone's default for that direction)."""
    return f"zone {zone} {hook}"


def forward_comment(name: str) -> str:
    return f"forward {name}"


def snat_comment(name: str) -> str:
    return f"snat {name}"


def masquerade_comment(key: str) -> str:
    return f"masquerade {key}"


def nptv6_comment(key: str) -> str:
    return f"nptv6 {key}"


def log_prefix(label: str) -> str:
    """The log prefix for a logged rule: ``tg LABEL: `` when that fits in LOG_PREFIX_LEN bytes,
    else the label cut short plus 8 hex digits of its hash (the full name is in the rule's
    comment). Never longer than LOG_PREFIX_LEN bytes, whatever label is."""
    p = f"tg {label}: "
    if len(p.encode()) <= LOG_PREFIX_LEN:
        return p
    tag = "~" + hashlib.sha256(label.encode()).hexdigest()[:8] + ": "
    keep = LOG_PREFIX_LEN - len("tg ") - len(tag)
    return "tg " + label.encode()[:keep].decode("utf-8", "ignore") + tag


# -- the map -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ident:
    """One name as a target sees it. Two Idents with the same space and key are one object there."""

    space: str   # "nft chain", "nft set", "nft log prefix", "nft comment", "link", "host name", …
    key: str     # the identifier as the target compares it
    path: str    # the config path of the item it comes from
    limit: int   # the target's maximum length in bytes
    unique: bool = True  # False: only the length matters (rules may share a comment)
    shown: str | None = None  # the identifier as rendered, when key is folded (DNS: lower-cased)
    note: str = ""  # what the item is, when the path alone does not say it


def nft_names(cfg) -> list[Ident]:
    """Every nft identifier, comment and log prefix the document leads to, with its path."""
    out: list[Ident] = []
    zones = list(cfg.zones)

    def chain(ident: str, path: str):
        out.append(Ident("nft chain", ident, path, NFT_NAME_MAX))

    def comment(text: str, path: str):
        out.append(Ident("nft comment", text, path, NFT_COMMENT_MAX, unique=False))

    def prefix(label: str, path: str):
        out.append(Ident("nft log prefix", log_prefix(label), path, LOG_PREFIX_MAX))

    for c in BUILTIN_CHAINS:
        chain(c, "(builtin)")
    for z in zones:
        out.append(Ident("nft chain", zone_in_chain(z), f"zones.{z}", NFT_NAME_MAX,
                         note=f" (traffic from zone {z!r} to the router)"))
        for hook in ("input", "forward"):
            comment(zone_comment(z, hook), f"zones.{z}")
            if cfg.zones[z].log:
                prefix(zone_comment(z, hook), f"zones.{z}.log")
    for a in zones:
        for b in zones:
            out.append(Ident("nft chain", zone_pair_chain(a, b), f"zones.{a}", NFT_NAME_MAX,
                             note=f" (traffic from zone {a!r} to zone {b!r})"))
    for sname in cfg.sets:
        for fam in (4, 6):
            out.append(Ident("nft set", set_ident(sname, fam), f"sets.{sname}", NFT_NAME_MAX))
    for i, r in enumerate(cfg.rules):
        comment(rule_comment(r.name), f"rules[{i}].name")
        if r.log:
            prefix(r.name, f"rules[{i}].name")
    for i, pol in enumerate(cfg.policies):
        path = f"policies[{i}]" + (".name" if pol.name else "")
        comment(policy_comment(pol.key), path)
        if pol.log:
            prefix(policy_comment(pol.key), path)
    for i, f in enumerate(cfg.nat.forwards):
        comment(forward_comment(f.name), f"nat.forwards[{i}].name")
        if f.log:
            prefix(forward_comment(f.name), f"nat.forwards[{i}].name")
    for i, s in enumerate(cfg.nat.snat):
        comment(snat_comment(s.name), f"nat.snat[{i}].name")
    for i, m in enumerate(cfg.nat.masquerade):
        comment(masquerade_comment(m.key), f"nat.masquerade[{i}]")
    for i, n in enumerate(cfg.nat.nptv6):
        comment(nptv6_comment(n.key), f"nat.nptv6[{i}]")
    for ifname in cfg.interfaces:
        out.append(Ident("link", ifname, f"interfaces.{ifname}", IFNAME_MAX))
    return out


def daemon_names(cfg) -> list[Ident]:
    """Names and ids the LAN daemons see: host names of reservations and dns.hosts (Kea, and Unbound
    publishes NAME.DOMAIN; case-insensitive, unique across all scopes) and Kea's subnet ids (unique
    per server)."""
    from .services import _iface_nets, dhcp_interfaces, lan_domain

    out: list[Ident] = []
    domain = lan_domain(cfg)

    def host(label: str, path: str):
        # One host name per device (Kea's reservation, Unbound's NAME.DOMAIN), whatever the scope.
        out.append(Ident("host name", label.lower(), path, DNS_LABEL_MAX, shown=label))
        if domain:
            out.append(Ident("DNS name", f"{label}.{domain}", path, DNS_NAME_MAX, unique=False))

    for ifname, scope in cfg.dhcp.items():
        for i, r in enumerate(scope.reservations):
            host(r.name, f"dhcp.{ifname}.reservations[{i}].name")
    if cfg.dns is not None:
        for i, h in enumerate(cfg.dns.hosts):
            host(h.name, f"dns.hosts[{i}].name")
    for fam in (4, 6):
        for ifname in dhcp_interfaces(cfg, fam):
            nets = _iface_nets(cfg, ifname, fam)
            if fam == 6:
                nets = [a for a in nets if not a.ip.is_link_local] or nets
            out.append(Ident(f"kea-dhcp{fam} subnet id", str(kea_subnet_id(ifname, str(nets[0].network))),
                             f"dhcp.{ifname}.ipv{fam}", NFT_NAME_MAX))
    return out


def _what(space: str) -> str:
    return {"nft chain": "nftables chain", "nft set": "nftables set", "nft log prefix": "log prefix",
            "nft comment": "rule comment", "link": "interface name"}.get(space, space)


def check_names(cfg) -> list:
    """Problems for names that would collide in, or not fit, the kernel or a daemon."""
    from .problem import Problem

    p: list = []
    idents = nft_names(cfg) + daemon_names(cfg)
    seen: dict[tuple[str, str], Ident] = {}
    reported: set[tuple[str, str]] = set()
    for x in idents:
        shown = x.shown or x.key
        n = len(shown.encode())
        if n > x.limit:
            p.append(Problem(x.path, f"{_what(x.space)} {shown[:80]!r}{'…' if len(shown) > 80 else ''} is {n} "
                                     f"bytes; the limit is {x.limit}: use a shorter name"))
        if not x.unique:
            continue
        first = seen.setdefault((x.space, x.key), x)
        if first is not x and (first.path, x.path) not in reported:
            reported.add((first.path, x.path))
            same = "" if (first.shown or first.key) == shown else f", {first.shown!r} there"
            p.append(Problem(x.path, f"{_what(x.space)} {shown!r}{x.note} would be the same as the one of "
                                     f"{first.path}{first.note}{same}: rename one of them"))
    p += _lan_domain_room(cfg)
    return p


def _lan_domain_room(cfg) -> list:
    """A live DHCP lease may publish any 63-character label in the LAN domain: keep room for it."""
    from .problem import Problem
    from .services import lan_domain

    domain = lan_domain(cfg)
    room = DNS_NAME_MAX - DNS_LABEL_MAX - 1
    if not domain or len(domain) <= room:
        return []
    path = "dns.domain" if cfg.dns is not None and cfg.dns.domain else "system.domain"
    return [Problem(path, f"the LAN domain is {len(domain)} characters; at most {room} leave room for a "
                          f"{DNS_LABEL_MAX}-character host name within DNS's {DNS_NAME_MAX}")]


def duplicates(names: list[str]) -> list[str]:
    """Names that occur more than once (for the renderer's own guard)."""
    count: dict[str, int] = defaultdict(int)
    for n in names:
        count[n] += 1
    return sorted(n for n, c in count.items() if c > 1)
