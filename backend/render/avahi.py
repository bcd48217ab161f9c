"""RouterConfig → avahi-daemon.conf (mDNS reflection only). Pure and deterministic.

avahi reflects mDNS between exactly the interfaces of the zones in ``mdns.reflect``; it publishes
nothing of its own and runs without D-Bus (``enable-dbus=no``).
"""

from __future__ import annotations

from ..model.config import RouterConfig
from ..model.services import mdns_zones, zone_interfaces


def render_avahi(cfg: RouterConfig) -> str | None:
    zones = mdns_zones(cfg)
    ifaces = zone_interfaces(cfg, zones)
    if len(set(zones)) < 2 or len(ifaces) < 2:
        return None
    host = cfg.system.hostname.split(".")[0]
    return "\n".join([
        "# rendered by talgate from router.yaml (mdns); do not edit",
        "[server]",
        f"host-name={host}",
        "use-ipv4=yes",
        "use-ipv6=yes",
        f"allow-interfaces={','.join(ifaces)}",
        "enable-dbus=no",
        "ratelimit-interval-usec=1000000",
        "ratelimit-burst=1000",
        "",
        "[wide-area]",
        "enable-wide-area=no",
        "",
        "[publish]",
        "disable-publishing=yes",
        "disable-user-service-publishing=yes",
        "publish-hinfo=no",
        "publish-workstation=no",
        "",
        "[reflector]",
        "enable-reflector=yes",
        "reflect-ipv=no",
        "",
        "[rlimits]",
        "",
    ]) + "\n"
