"""RouterConfig → radvd.conf. Pure and deterministic.

Per interface in ``ra``: the /64s of its global IPv6 addresses (or the listed prefixes), the M/O
flags, RDNSS (the interface's address when dns serves its zone) and DNSSL (the LAN domain). A /64 of
a delegated prefix is advertised with the delegation's valid/preferred lifetimes (at most radvd's
defaults, at least the RA interval): as given by the ISP, not counted down between renewals.
"""

from __future__ import annotations

import ipaddress

from ..model.config import RouterConfig
from ..model.services import lan_domain, ra_interfaces, serves

RADVD_VALID, RADVD_PREFERRED = 86400, 14400  # radvd's default prefix lifetimes


def _on(b: bool) -> str:
    return "on" if b else "off"


def render_radvd(cfg: RouterConfig) -> str | None:
    ifaces = ra_interfaces(cfg)
    if not ifaces:
        return None
    domain = lan_domain(cfg)
    L = ["# rendered by talgate from router.yaml (ra); do not edit"]
    for ifname in ifaces:
        ra = cfg.ra[ifname]
        glob = [a for a in cfg.interfaces[ifname].ipv6 if not a.ip.is_link_local]
        if ra.prefixes is not None:
            prefixes = ra.prefixes
        else:
            prefixes = sorted({str(a.network) for a in glob})
        if ra.rdnss is not None:
            rdnss = [str(a) for a in ra.rdnss]
        else:
            rdnss = [str(glob[0].ip)] if glob and serves(cfg, "dns", ifname) else []
        dnssl = ra.dnssl if ra.dnssl is not None else ([domain] if domain and rdnss else [])
        L.append(f"interface {ifname} {{")
        L.append("    AdvSendAdvert on;")
        L.append(f"    MaxRtrAdvInterval {ra.interval};")
        L.append(f"    MinRtrAdvInterval {max(3, int(ra.interval * 0.33))};")
        L.append(f"    AdvDefaultLifetime {ra.lifetime if ra.lifetime == 0 else max(ra.lifetime, ra.interval)};")
        L.append(f"    AdvManagedFlag {_on(ra.managed)};")
        L.append(f"    AdvOtherConfigFlag {_on(ra.other)};")
        for p in prefixes:
            net = ipaddress.IPv6Network(p)
            auto = ra.autonomous and net.prefixlen == 64
            L.append(f"    prefix {net} {{")
            L.append("        AdvOnLink on;")
            L.append(f"        AdvAutonomous {_on(auto)};")
            if str(net) in ra._lifetimes:  # RFC 7084 L-13: never longer than the delegation's
                valid = max(min(ra._lifetimes[str(net)][0], RADVD_VALID), ra.interval)  # radvd: > MaxRtrAdvInterval
                L.append(f"        AdvValidLifetime {valid};")
                L.append(f"        AdvPreferredLifetime {min(ra._lifetimes[str(net)][1], RADVD_PREFERRED, valid)};")
            L.append("    };")
        for p in ra._deprecated:  # a replaced delegated prefix: hosts stop using it for new connections
            L.append(f"    prefix {p} {{")
            L.append("        AdvOnLink on;")
            L.append(f"        AdvAutonomous {_on(ra.autonomous)};")
            L.append("        AdvPreferredLifetime 0;")
            L.append(f"        AdvValidLifetime {max(ra.interval * 3, 60)};")
            L.append("    };")
        if rdnss:
            L.append(f"    RDNSS {' '.join(rdnss)} {{")
            L.append(f"        AdvRDNSSLifetime {max(ra.interval * 3, 1200)};")
            L.append("    };")
        if dnssl:
            L.append(f"    DNSSL {' '.join(dnssl)} {{")
            L.append(f"        AdvDNSSLLifetime {max(ra.interval * 3, 1200)};")
            L.append("    };")
        L.append("};")
    return "\n".join(L) + "\n"
