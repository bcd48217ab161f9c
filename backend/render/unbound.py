"""RouterConfig → unbound.conf. Pure and deterministic.

Inputs beyond the config are passed in by the applier (it does the I/O): the blocklist files'
contents and the live DHCP leases whose names are published in the LAN domain. Unbound binds the
router's addresses on the zones in ``dns.zones`` (allow or refuse) only, never 0.0.0.0:53, and
is rendered with ``username: ""`` and ``chroot: ""``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from ..model.config import RouterConfig
from ..model.services import (
    DOMAIN_RE,
    ServicePaths,
    dns_zones,
    lan_domain,
    lease_domain,
    reserved_lease_names,
    sanitize_label,
    zone_interfaces,
)


@dataclass(frozen=True)
class LeaseName:
    """A name from a live DHCP lease (see backend/observe/leases.py)."""

    hostname: str
    address: str
    interface: str | None = None  # the DHCP scope's interface: which domain the name goes to


def control_socket(paths: ServicePaths) -> str:
    return f"{paths.run_dir('unbound')}/control.sock"


def parse_blocklist(text: str, fmt: str) -> list[str]:
    """Domains from a blocklist file's text ('domains': one per line; 'hosts': 'ADDR name...').
    Comments (#) and entries that are not domain names are skipped."""
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        names = parts[1:] if fmt == "hosts" else parts[:1]
        for n in names:
            n = n.strip().rstrip(".").lower()
            if n in ("localhost", "localhost.localdomain", "local", "broadcasthost", "0.0.0.0") or not n:
                continue
            if n.startswith("*."):
                n = n[2:]
            if len(n) <= 253 and re.fullmatch(DOMAIN_RE, n) and "." in n:  # longer: unbound refuses the config
                out.append(n)
    return out


def _q(s: str) -> str:
    return '"' + s.replace('"', "") + '"'


def host_records(cfg: RouterConfig, leases: list[LeaseName] = ()) -> list[tuple[str, str]]:
    """[(fqdn, address)] published in the LAN domain: dns.hosts, DHCP reservations, then live
    lease names that no reservation or host already claims."""
    domain = lan_domain(cfg)
    if not domain:
        return []
    out: list[tuple[str, str]] = []
    claimed: set[str] = set()
    if cfg.dns is not None:
        for h in cfg.dns.hosts:
            for a in [*h.ipv4, *h.ipv6]:
                out.append((f"{h.name.lower()}.{domain}", str(a)))
            claimed.add(h.name.lower())
    for scope in cfg.dhcp.values():
        for r in scope.reservations:
            for a in (r.ipv4, r.ipv6):
                if a is not None:
                    out.append((f"{r.name.lower()}.{domain}", str(a)))
            claimed.add(r.name.lower())
    if cfg.dns is None or cfg.dns.lease_names:
        seen_addr = {a for _, a in out}
        reserved = claimed | reserved_lease_names(cfg)
        for lease in sorted(leases, key=lambda x: (x.hostname, x.address, x.interface or "")):
            label = sanitize_label(lease.hostname)
            try:
                fam = ipaddress.ip_address(lease.address).version
            except ValueError:
                continue
            dom = lease_domain(cfg, lease.interface, fam)
            if label and dom and label not in reserved and lease.address not in seen_addr:
                out.append((f"{label}.{dom}", lease.address))
                seen_addr.add(lease.address)
    return out


def record_lines(fqdn: str, address: str, ttl: int = 300) -> list[str]:
    """The local-data RRs of one name (forward and PTR), as unbound-control local_data takes them."""
    ip = ipaddress.ip_address(address)
    rtype = "A" if ip.version == 4 else "AAAA"
    return [f"{fqdn}. {ttl} IN {rtype} {ip}", f"{ip.reverse_pointer}. {ttl} IN PTR {fqdn}."]


def render_unbound(cfg: RouterConfig, paths: ServicePaths, blocklists: dict[str, str] | None = None,
                   leases: list[LeaseName] = ()) -> str | None:
    """blocklists: {name: file text} for every enabled blocklist."""
    dns = cfg.dns
    if dns is None or not dns.enabled:
        return None
    blocklists = blocklists or {}
    bind_zones = dns_zones(cfg, ("allow", "refuse"))
    L = ["# rendered by talgate from router.yaml (dns); do not edit", "server:"]

    def s(line: str):
        L.append("    " + line)

    s(f"directory: {_q(paths.run_dir('unbound'))}")
    s('username: ""')
    s('chroot: ""')
    s('pidfile: ""')
    s("use-syslog: no")
    s('logfile: ""')
    s("verbosity: 1")
    s("do-daemonize: no")
    s("ip-freebind: yes")
    s("interface-automatic: no")
    s("do-ip4: yes")
    s("do-ip6: yes")
    s("module-config: \"iterator\"")
    s(f"msg-cache-size: {dns.cache_size}m")
    s(f"rrset-cache-size: {dns.cache_size * 2}m")
    s("hide-identity: yes")
    s("hide-version: yes")
    s("qname-minimisation: yes")
    s("prefetch: yes")
    addrs: list[str] = []
    for ifname in zone_interfaces(cfg, bind_zones):
        itf = cfg.interfaces[ifname]
        addrs += [str(a.ip) for a in [*itf.ipv4, *itf.ipv6]]
    for a in sorted(set(addrs), key=lambda x: (":" in x, x)):
        s(f"interface: {a}")
    s("access-control: 0.0.0.0/0 refuse")
    s("access-control: ::/0 refuse")
    s("access-control: 127.0.0.0/8 allow")
    s("access-control: ::1/128 allow")
    for z, mode in sorted(dns.zones.items()):
        for ifname in zone_interfaces(cfg, [z]):
            itf = cfg.interfaces[ifname]
            for a in [*itf.ipv4, *itf.ipv6]:
                s(f"access-control: {a.network} {mode}   # zone {z} ({ifname})")
    # The LAN domain: reservations, hosts and live leases; unknown names are NXDOMAIN.
    domain = lan_domain(cfg)
    if domain:
        s(f"private-domain: {_q(domain)}")
        s(f"local-zone: {_q(domain + '.')} static")
        for fqdn, addr in host_records(cfg, leases):
            for rr in record_lines(fqdn, addr):
                s(f"local-data: {_q(rr)}")
    # Blocklists: answered NXDOMAIN (the name and everything below it).
    blocked: set[str] = set()
    for b in dns.blocklists:
        if b.enabled:
            blocked.update(parse_blocklist(blocklists.get(b.name, ""), b.format))
    if domain:
        blocked = {d for d in blocked if d != domain and not domain.endswith("." + d)}
    for d in sorted(blocked):
        s(f"local-zone: {_q(d + '.')} always_nxdomain")
    if dns.mode == "forward":
        tls = any(f.tls_name for f in dns.forwarders)
        if tls:
            s('tls-cert-bundle: "/etc/ssl/certs/ca-certificates.crt"')
        L.append("forward-zone:")
        L.append('    name: "."')
        for f in dns.forwarders:
            port = f.port or (853 if f.tls_name else 53)
            L.append(f"    forward-addr: {f.address}@{port}" + (f"#{f.tls_name}" if f.tls_name else ""))
        if tls:
            L.append("    forward-tls-upstream: yes")
    L.append("remote-control:")
    L.append("    control-enable: yes")
    L.append(f"    control-interface: {_q(control_socket(paths))}")
    L.append("    control-use-cert: no")
    return "\n".join(L) + "\n"
