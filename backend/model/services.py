"""LAN services in router.yaml: DHCPv4/v6 (Kea), router advertisements (radvd), DNS (Unbound),
NTP (chrony) and mDNS reflection (avahi).

Structure lives in the pydantic models below; checks that need the whole document (subnets,
zones, duplicates) are in :func:`check_services`, called from :mod:`backend.model.checks`.
Problems name paths such as ``dhcp.lan0.ipv4.pools[0]``.

```yaml
dhcp:
  lan0:
    ipv4: {pools: [192.168.10.100-192.168.10.199], lease_time: 3600}
    ipv6: {pools: ["2001:db8:10:10::1000-2001:db8:10:10::1fff"]}
    reservations:
      - {name: printer, mac: "02:00:00:00:10:50", ipv4: 192.168.10.50,
         duid: "00:03:00:01:02:00:00:00:10:50", ipv6: "2001:db8:10:10::50"}
ra:
  lan0: {}                      # prefixes from lan0's addresses, RDNSS/DNSSL from dns
dns:
  zones: {lan: allow, guest: refuse}
  blocklists: [{name: ads, file: /var/mnt/talgate/blocklists/ads.txt, format: domains}]
ntp:
  serve: [lan]
  servers: [{address: time.cloudflare.com, nts: true}]
mdns:
  reflect: [lan, guest]
```
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from collections import Counter
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, PrivateAttr, field_validator, model_validator

from .base import DOMAIN_RE, LABEL_RE, Name, Strict, listify
from .problem import Problem

MAC_RE = r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$"
DUID_RE = r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){1,129}$"



def _domain(v):
    if not isinstance(v, str) or len(v) > 253 or not re.fullmatch(DOMAIN_RE, v):
        raise ValueError(f"invalid domain name {v!r}")
    return v.rstrip(".").lower() or v


Domain = Annotated[str, BeforeValidator(_domain)]


_listify = listify


NameList = Annotated[list[Name], BeforeValidator(_listify)]


# ---- DHCP ------------------------------------------------------------------------------


def parse_pool(v: str) -> tuple[ipaddress._BaseAddress, ipaddress._BaseAddress]:
    """'A-B' (or a prefix 'N/L') → (first, last)."""
    if "/" in v:
        net = ipaddress.ip_network(v, strict=True)
        return net[0], net[-1]
    a, sep, b = v.partition("-")
    if not sep:
        raise ValueError(f"invalid pool {v!r}: expected FIRST-LAST or a prefix")
    lo, hi = ipaddress.ip_address(a.strip()), ipaddress.ip_address(b.strip())
    if lo.version != hi.version:
        raise ValueError(f"pool {v!r} mixes IPv4 and IPv6")
    if lo > hi:
        raise ValueError(f"pool {v!r} is reversed")
    return lo, hi


def _pool(v):
    if not isinstance(v, str):
        raise ValueError(f"invalid pool {v!r}")
    try:
        lo, hi = parse_pool(v)
    except ValueError as e:
        raise ValueError(str(e) if "pool" in str(e) else f"invalid pool {v!r}: {e}") from None
    return f"{lo}-{hi}"


Pools = Annotated[list[Annotated[str, BeforeValidator(_pool)]], BeforeValidator(_listify)]
AddrList4 = Annotated[list[ipaddress.IPv4Address], BeforeValidator(_listify)]
AddrList6 = Annotated[list[ipaddress.IPv6Address], BeforeValidator(_listify)]


class DhcpV4(Strict):
    enabled: bool = True
    pools: Pools = Field(default_factory=list, description="Ranges 'FIRST-LAST' (or prefixes) inside the subnet.")
    lease_time: int = Field(3600, ge=60, le=31536000, description="Valid lifetime in seconds.")
    routers: AddrList4 | None = Field(None, description="Option 3; default: the interface's address.")
    dns: AddrList4 | None = Field(None, description="Option 6; default: the interface's address when dns serves the zone.")
    ntp: AddrList4 | None = Field(None, description="Option 42; default: the interface's address when ntp serves the zone.")
    domain: Domain | None = Field(None, description="Option 15; default: dns.domain / system.domain.")


class DhcpV6(Strict):
    enabled: bool = True
    pools: Pools = Field(default_factory=list)
    lease_time: int = Field(3600, ge=60, le=31536000)
    preferred_time: int | None = Field(None, ge=60, le=31536000)
    dns: AddrList6 | None = Field(None, description="Option 23; default: the interface's address when dns serves the zone.")
    ntp: AddrList6 | None = Field(None, description="Option 31 (SNTP); default: the interface's address when ntp serves it.")
    domain: Domain | None = None


class Reservation(Strict):
    name: Annotated[str, Field(pattern=LABEL_RE)] = Field(description="Host name (one DNS label); also its DNS name.")
    mac: Annotated[str, Field(pattern=MAC_RE)] | None = None
    ipv4: ipaddress.IPv4Address | None = None
    duid: Annotated[str, Field(pattern=DUID_RE)] | None = None
    ipv6: ipaddress.IPv6Address | None = None

    @field_validator("mac", "duid")
    @classmethod
    def _lower(cls, v):
        return v.lower() if v else v

    @model_validator(mode="after")
    def _pairs(self):
        if self.ipv4 is not None and not self.mac:
            raise ValueError("an ipv4 reservation needs mac")
        if self.ipv6 is not None and not self.duid:
            raise ValueError("an ipv6 reservation needs duid")
        if self.ipv4 is None and self.ipv6 is None:
            raise ValueError("a reservation needs ipv4 and/or ipv6")
        return self


class DhcpScope(Strict):
    ipv4: DhcpV4 | None = None
    ipv6: DhcpV6 | None = None
    reservations: list[Reservation] = Field(default_factory=list)


# ---- router advertisements -------------------------------------------------------------


class RouterAdvert(Strict):
    enabled: bool = True
    managed: bool = Field(False, description="M flag: addresses from DHCPv6.")
    other: bool = Field(False, description="O flag: other configuration from DHCPv6.")
    autonomous: bool = Field(True, description="A flag on the prefixes: clients form SLAAC addresses.")
    prefixes: Annotated[list[str], BeforeValidator(_listify)] | None = Field(
        None, description="Default: the /64s of the interface's global IPv6 addresses.")
    rdnss: AddrList6 | None = Field(None, description="Default: the interface's address when dns serves the zone.")
    dnssl: Annotated[list[Domain], BeforeValidator(_listify)] | None = Field(None, description="Default: the LAN domain.")
    interval: int = Field(200, ge=4, le=1800, description="MaxRtrAdvInterval in seconds.")
    lifetime: int = Field(1800, ge=0, le=9000, description="Router lifetime in seconds (0: not a default router).")
    # Prefixes of a replaced delegation, advertised with preferred lifetime 0 (backend/model/uplink.py).
    _deprecated: list[str] = PrivateAttr(default_factory=list)
    # /64 of a delegated prefix -> the delegation's (valid, preferred) lifetimes (backend/model/uplink.py).
    _lifetimes: dict[str, tuple[int, int]] = PrivateAttr(default_factory=dict)

    @field_validator("prefixes")
    @classmethod
    def _prefixes(cls, v):
        if v is None:
            return v
        out = []
        for p in v:
            try:
                n = ipaddress.IPv6Network(p, strict=True)
            except ValueError as e:
                raise ValueError(f"invalid IPv6 prefix {p!r}: {e}") from None
            out.append(str(n))
        return out


# ---- DNS -------------------------------------------------------------------------------


class Forwarder(Strict):
    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    port: int | None = Field(None, ge=1, le=65535)
    tls_name: Domain | None = Field(None, description="Use DNS over TLS (port 853) and check this name.")


class Blocklist(Strict):
    name: Name
    file: str = Field(description="A file on the router: one domain per line, or hosts format.")
    format: Literal["domains", "hosts"] = "domains"
    enabled: bool = True


class LocalHost(Strict):
    name: Annotated[str, Field(pattern=LABEL_RE)]
    ipv4: AddrList4 = Field(default_factory=list)
    ipv6: AddrList6 = Field(default_factory=list)


class Dns(Strict):
    enabled: bool = True
    zones: dict[Name, Literal["allow", "refuse", "deny"]] = Field(
        default_factory=dict,
        description="Per zone: allow (served), refuse (answered REFUSED), deny (dropped). Unlisted zones get nothing.")
    domain: Domain | None = Field(None, description="The LAN domain (default: system.domain).")
    mode: Literal["recursive", "forward"] = "recursive"
    forwarders: list[Forwarder] = Field(default_factory=list)
    blocklists: list[Blocklist] = Field(default_factory=list)
    hosts: list[LocalHost] = Field(default_factory=list, description="Extra names in the LAN domain.")
    lease_names: bool = Field(
        True, description="Names from live DHCP leases, each in the domain its own DHCP scope hands out (default: "
                          "the LAN domain). A client's name is sanitised to one label [a-z0-9-] and never published "
                          "when reserved: the router's host name, wpad, isatap, localhost, … or a name of dns.hosts "
                          "or a reservation.")
    cache_size: int = Field(32, ge=1, le=4096, description="Message cache size in MB.")

    @model_validator(mode="after")
    def _fwd(self):
        if self.mode == "forward" and not self.forwarders:
            raise ValueError("mode forward needs forwarders")
        return self


# ---- NTP -------------------------------------------------------------------------------


class NtpServer(Strict):
    address: Annotated[str, BeforeValidator(lambda v: v if isinstance(v, str) and re.fullmatch(r"[0-9A-Fa-f:.]+", v)
                                            else _domain(v))]
    nts: bool = Field(False, description="Authenticate with NTS.")
    pool: bool = False


class Ntp(Strict):
    enabled: bool = True
    serve: NameList = Field(default_factory=list, description="Zones that get time from the router.")
    servers: list[NtpServer] = Field(default_factory=list, description="Upstream servers.")
    nts_server: bool = Field(False, description="Serve NTS (tcp/4460) with a certificate from the box's CA.")
    local_stratum: int | None = Field(10, ge=1, le=15,
                                      description="Serve time at this stratum while no upstream is reachable.")


# ---- mDNS ------------------------------------------------------------------------------


class Mdns(Strict):
    enabled: bool = True
    reflect: NameList = Field(default_factory=list, description="Zones between which mDNS is reflected.")


# ---- paths the rendered configs name -----------------------------------------------------


@dataclass(frozen=True)
class ServicePaths:
    """Where each daemon finds its files, as the daemon sees them (lab: the host's paths;
    Kubernetes: the pod's mounts)."""

    rendered: str
    run: str
    state: str

    def conf(self, svc: str, name: str) -> str:
        return f"{self.rendered}/{svc}/{name}"

    def run_dir(self, svc: str) -> str:
        return f"{self.run}/{svc}"

    @classmethod
    def pod(cls) -> ServicePaths:
        """The mounts of manifests/services (hostPath /var/mnt/talgate/... inside the pods)."""
        return PodPaths()


@dataclass(frozen=True)
class PodPaths(ServicePaths):
    rendered: str = "/etc/talgate"
    run: str = "/run"
    state: str = "/var/lib"

    def run_dir(self, svc: str) -> str:
        return {"kea-dhcp4": "/run/kea", "kea-dhcp6": "/run/kea"}.get(svc, f"/run/{svc}")


def kea_state_dir(paths: ServicePaths) -> str:
    return "/var/lib/kea" if isinstance(paths, PodPaths) else f"{paths.state}/kea"


def chrony_state_dir(paths: ServicePaths) -> str:
    return "/var/lib/chrony" if isinstance(paths, PodPaths) else f"{paths.state}/chrony"


# ---- checks ------------------------------------------------------------------------------


def _iface_nets(cfg, ifname: str, version: int):
    itf = cfg.interfaces.get(ifname)
    if itf is None:
        return []
    return [a for a in (itf.ipv4 if version == 4 else itf.ipv6)]


def lan_domain(cfg) -> str | None:
    d = (cfg.dns.domain if cfg.dns and cfg.dns.domain else None) or cfg.system.domain
    return d.rstrip(".").lower() if d else None


def check_services(cfg) -> list:
    """Semantic checks of the service sections (Problem list)."""
    p: list = []
    zones = set(cfg.zones)

    def zone_refs(base: str, names: list[str]):
        for j, z in enumerate(names):
            if z not in zones:
                p.append(Problem(f"{base}[{j}]", f"unknown zone {z!r}"))

    # DHCP
    all_macs: dict[str, str] = {}
    all_duids: dict[str, str] = {}
    for ifname, scope in cfg.dhcp.items():
        base = f"dhcp.{ifname}"
        if ifname not in cfg.interfaces:
            p.append(Problem(base, f"unknown interface {ifname!r}"))
            continue
        if cfg.zone_of(ifname) is None:
            p.append(Problem(base, f"interface {ifname!r} is in no zone; the firewall could not open DHCP on it"))
        subnets = {}
        for fam, ver, sect in (("ipv4", 4, scope.ipv4), ("ipv6", 6, scope.ipv6)):
            nets = _iface_nets(cfg, ifname, ver)
            if sect is None:
                continue
            if not nets and ver == 6 and cfg.interfaces[ifname].delegated:
                # the /64 comes from a delegated prefix (backend/model/uplink.py): pools are interface ids
                for i, pool in enumerate(sect.pools):
                    lo, hi = parse_pool(pool)
                    if lo.version != 6 or int(hi) >= 1 << 64 or int(lo) == 0:
                        p.append(Problem(f"{base}.{fam}.pools[{i}]", f"{pool}: {ifname}'s /64 comes from a delegated "
                                                                     "prefix; a pool is a range of interface ids "
                                                                     "(e.g. ::1000-::1fff)"))
                continue
            if not nets:
                p.append(Problem(f"{base}.{fam}", f"interface {ifname} has no {fam} address to serve a subnet from"))
                continue
            net = nets[0].network
            subnets[ver] = (net, nets[0].ip)
            ranges = []
            for i, pool in enumerate(sect.pools):
                lo, hi = parse_pool(pool)
                path = f"{base}.{fam}.pools[{i}]"
                if lo.version != ver:
                    p.append(Problem(path, f"{pool} is not an {fam} pool"))
                    continue
                if lo not in net or hi not in net:
                    p.append(Problem(path, f"{pool} is outside subnet {net}"))
                    continue
                if ver == 4 and (lo == net.network_address or hi == net.broadcast_address):
                    p.append(Problem(path, f"{pool} includes the network or broadcast address of {net}"))
                if lo <= nets[0].ip <= hi:
                    p.append(Problem(path, f"{pool} includes the router's own address {nets[0].ip}"))
                ranges.append((lo, hi, i))
            p += _pool_overlaps(ranges, f"{base}.{fam}", sect.pools)
        seen_ip: dict = {}
        for i, r in enumerate(scope.reservations):
            path = f"{base}.reservations[{i}]"  # names: backend.model.names (DNS names, all scopes)
            for fam, ver, addr in (("ipv4", 4, r.ipv4), ("ipv6", 6, r.ipv6)):
                if addr is None:
                    continue
                if ver not in subnets:
                    p.append(Problem(f"{path}.{fam}", f"{base} serves no {fam} subnet"))
                    continue
                net, own = subnets[ver]
                if addr not in net:
                    p.append(Problem(f"{path}.{fam}", f"{addr} is outside subnet {net}"))
                elif addr == own:
                    p.append(Problem(f"{path}.{fam}", f"{addr} is the router's own address"))
                elif ver == 4 and addr in (net.network_address, net.broadcast_address):
                    p.append(Problem(f"{path}.{fam}", f"{addr} is the network or broadcast address of {net}"))
                if addr in seen_ip:
                    p.append(Problem(f"{path}.{fam}", f"{addr} is already reserved at {seen_ip[addr]}"))
                seen_ip.setdefault(addr, path)
            if r.mac:
                if r.mac in all_macs:
                    p.append(Problem(f"{path}.mac", f"duplicate MAC {r.mac} (also at {all_macs[r.mac]})"))
                all_macs.setdefault(r.mac, path)
            if r.duid:
                if r.duid in all_duids:
                    p.append(Problem(f"{path}.duid", f"duplicate DUID {r.duid} (also at {all_duids[r.duid]})"))
                all_duids.setdefault(r.duid, path)

    # RA
    for ifname, ra in cfg.ra.items():
        base = f"ra.{ifname}"
        if ifname not in cfg.interfaces:
            p.append(Problem(base, f"unknown interface {ifname!r}"))
            continue
        v6 = [a for a in _iface_nets(cfg, ifname, 6) if not a.ip.is_link_local]
        if ra.prefixes is None:
            if not v6 and not cfg.interfaces[ifname].delegated:  # delegated: the prefixes come at runtime
                p.append(Problem(base, f"interface {ifname} has no IPv6 address to advertise a prefix from"))
            elif ra.autonomous and not cfg.interfaces[ifname].delegated and not any(
                    a.network.prefixlen == 64 for a in v6):
                p.append(Problem(base, f"SLAAC needs a /64; {ifname} has {', '.join(str(a.network) for a in v6)}",
                                 severity="warning"))
        else:
            los, his = _merged_nets([a.network for a in v6])
            for i, pre in enumerate(ra.prefixes):
                n = ipaddress.ip_network(pre)
                k = bisect.bisect_right(los, int(n.broadcast_address)) - 1
                if k < 0 or his[k] < int(n.network_address):  # overlaps none of the interface's networks
                    p.append(Problem(f"{base}.prefixes[{i}]", f"{pre} is not on interface {ifname}"))

    # DNS
    if cfg.dns is not None:
        for z in cfg.dns.zones:
            if z not in zones:
                p.append(Problem(f"dns.zones.{z}", f"unknown zone {z!r}"))
        seen = Counter(b.name for b in cfg.dns.blocklists)
        for i, b in enumerate(cfg.dns.blocklists):
            if seen[b.name] > 1:
                p.append(Problem(f"dns.blocklists[{i}].name", f"duplicate blocklist name {b.name!r}"))
                seen[b.name] = 1
            if not b.file.startswith("/"):
                p.append(Problem(f"dns.blocklists[{i}].file", f"{b.file!r} is not an absolute path"))
        # Host and reservation names colliding as DNS names: backend.model.names.check_names.
        if (cfg.dns.hosts or any(s.reservations for s in cfg.dhcp.values())) and not lan_domain(cfg):
            p.append(Problem("dns.domain", "no LAN domain (dns.domain or system.domain): reservation names "
                                           "are not published", severity="warning"))
    # NTP
    if cfg.ntp is not None:
        zone_refs("ntp.serve", cfg.ntp.serve)
    # mDNS
    if cfg.mdns is not None:
        zone_refs("mdns.reflect", cfg.mdns.reflect)
        if cfg.mdns.enabled and len(set(cfg.mdns.reflect)) < 2:
            p.append(Problem("mdns.reflect", "reflection needs at least two zones"))
        for j, z in enumerate(cfg.mdns.reflect):
            if z in zones and not cfg.zones[z].interfaces:
                p.append(Problem(f"mdns.reflect[{j}]", f"zone {z!r} has no interfaces"))
    return p


# ---- derived views used by renderers and the firewall ----------------------------------


def _pool_overlaps(ranges: list, base: str, pools: list) -> list[Problem]:
    """Pools (lo, hi, index) that overlap an earlier one: sorted and swept, O(n log n) (every pair
    was minutes of CPU and a problem per pair for a few thousand pools). One problem per pool,
    naming the earlier pool it overlaps."""
    out = []
    widest = None  # (last address, index) of the pool reaching furthest so far
    for lo, hi, i in sorted(ranges, key=lambda t: (t[0], -int(t[1]), t[2])):
        if widest is not None and lo <= widest[0]:
            j = widest[1]
            later, earlier = max(i, j), min(i, j)
            out.append((later, Problem(f"{base}.pools[{later}]", f"{pools[later]} overlaps {base}.pools[{earlier}]")))
        if widest is None or hi > widest[0]:
            widest = (hi, i)
    return [pr for _, pr in sorted(out, key=lambda t: t[0])]


def _merged_nets(nets: list) -> tuple[list[int], list[int]]:
    """Networks of one family as sorted, merged integer ranges (firsts, lasts) for bisect."""
    los: list[int] = []
    his: list[int] = []
    for lo, hi in sorted((int(n.network_address), int(n.broadcast_address)) for n in nets):
        if his and lo <= his[-1] + 1:
            his[-1] = max(his[-1], hi)
        else:
            los.append(lo)
            his.append(hi)
    return los, his


def zone_interfaces(cfg, zones: list[str]) -> list[str]:
    out = []
    for z in zones:
        if z in cfg.zones:
            out += [i for i in cfg.zones[z].interfaces if i in cfg.interfaces and cfg.interfaces[i].enabled]
    return sorted(set(out))


def dns_zones(cfg, modes=("allow", "refuse")) -> list[str]:
    if cfg.dns is None or not cfg.dns.enabled:
        return []
    return [z for z, m in cfg.dns.zones.items() if m in modes and z in cfg.zones]


def ntp_zones(cfg) -> list[str]:
    if cfg.ntp is None or not cfg.ntp.enabled:
        return []
    return [z for z in cfg.ntp.serve if z in cfg.zones]


def mdns_zones(cfg) -> list[str]:
    if cfg.mdns is None or not cfg.mdns.enabled:
        return []
    return [z for z in cfg.mdns.reflect if z in cfg.zones]


def dhcp_interfaces(cfg, version: int) -> list[str]:
    out = []
    for ifname, scope in cfg.dhcp.items():
        sect = scope.ipv4 if version == 4 else scope.ipv6
        if sect is not None and sect.enabled and ifname in cfg.interfaces and cfg.interfaces[ifname].enabled \
                and _iface_nets(cfg, ifname, version):
            out.append(ifname)
    return sorted(out)


def ra_interfaces(cfg) -> list[str]:
    return sorted(i for i, ra in cfg.ra.items() if ra.enabled and i in cfg.interfaces and cfg.interfaces[i].enabled)


def serves(cfg, service: str, ifname: str) -> bool:
    z = cfg.zone_of(ifname)
    if z is None:
        return False
    if service == "dns":
        return z in dns_zones(cfg, ("allow",))
    if service == "ntp":
        return z in ntp_zones(cfg)
    return False


# Names a DHCP client may never claim: they steer other clients (WPAD/ISATAP proxy and tunnel
# discovery) or name the router and the host itself. Plus, per config: reserved_lease_names().
RESERVED_LABELS = frozenset({"wpad", "isatap", "localhost", "localdomain", "local", "broadcasthost",
                             "ip6-localhost", "ip6-loopback"})
MAX_HOSTNAME_INPUT = 255  # DHCP option 12 / DHCPv6 FQDN are at most 255 bytes


def sanitize_label(name: str | bytes | None) -> str | None:
    """A DHCP client's host name → one DNS label ([a-z0-9-], 1–63, no '-' at either end), or None
    when nothing usable is left. The first dot-separated part is used; spaces and '_' become '-'
    (as Kea does), anything else outside ASCII letters, digits and '-' refuses the name (no IDN,
    punycode or control bytes), as do '_'-names (service labels) and all-digit labels."""
    if not name:
        return None
    if isinstance(name, bytes):
        try:
            name = name.decode("ascii")
        except UnicodeDecodeError:
            return None
    if not isinstance(name, str) or len(name) > MAX_HOSTNAME_INPUT or name.startswith("_"):
        return None
    label = name.split(".")[0].strip().lower()
    label = re.sub(r"[ _]", "-", label)
    if not re.fullmatch(r"[a-z0-9-]+", label, flags=re.ASCII):
        return None
    label = label.strip("-")[:63].rstrip("-")
    if not label or label.isdigit() or label.startswith("xn--") or not re.fullmatch(LABEL_RE, label):
        return None
    return label


def reserved_lease_names(cfg) -> set[str]:
    """Labels no DHCP client gets published under: RESERVED_LABELS, the router's host name (and
    its first label), and the names the document itself gives (dns.hosts, DHCP reservations)."""
    out = set(RESERVED_LABELS)
    host = cfg.system.hostname.lower()
    out |= {host, host.split(".")[0]}
    if cfg.dns is not None:
        out |= {h.name.lower() for h in cfg.dns.hosts}
    for scope in cfg.dhcp.values():
        out |= {r.name.lower() for r in scope.reservations}
    return out


def lease_domain(cfg, interface: str | None, family: int) -> str | None:
    """The domain a lease's name is published in: the domain its own DHCP scope hands out
    (dhcp.IFACE.ipv4/ipv6.domain), by default the LAN domain. A client never lands in another
    scope's domain; sharing the LAN domain across zones is what the default configures."""
    scope = cfg.dhcp.get(interface) if interface else None
    sub = (scope.ipv4 if family == 4 else scope.ipv6) if scope else None
    d = sub.domain if sub is not None and sub.domain else lan_domain(cfg)
    return d.rstrip(".").lower() if d else None


def openings(cfg, zone: str) -> list[tuple[str, list[str], str, int, str | None]]:
    """What the firewall opens to the router for the services on one zone:
    [(service, interfaces or [] for the whole zone, l4proto, port, nfproto or None)]."""
    if zone not in cfg.zones:
        return []
    zifs = zone_interfaces(cfg, [zone])
    out: list[tuple[str, list[str], str, int, str | None]] = []

    def ifs(sub: list[str]) -> list[str]:
        return [] if sorted(sub) == zifs else sorted(sub)

    d4 = [i for i in dhcp_interfaces(cfg, 4) if i in zifs]
    if d4:
        out.append(("dhcp", ifs(d4), "udp", 67, "ipv4"))
    d6 = [i for i in dhcp_interfaces(cfg, 6) if i in zifs]
    if d6:
        out.append(("dhcpv6", ifs(d6), "udp", 547, "ipv6"))
    if zone in dns_zones(cfg, ("allow", "refuse")) and zifs:
        out += [("dns", [], "udp", 53, None), ("dns", [], "tcp", 53, None)]
    if zone in ntp_zones(cfg) and zifs:
        out.append(("ntp", [], "udp", 123, None))
        if cfg.ntp.nts_server:
            out.append(("nts", [], "tcp", 4460, None))
    mz = mdns_zones(cfg)
    if zone in mz and len(set(mz)) >= 2 and zifs:
        out.append(("mdns", [], "udp", 5353, None))
    return out
