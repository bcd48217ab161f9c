"""RouterConfig → kea-dhcp4.conf / kea-dhcp6.conf (JSON). Pure and deterministic.

Subnet ids are derived from interface and subnet (not list positions), so adding a scope never
renumbers another one's leases. The lease files and control sockets are the ones the applier
and ``backend/observe/leases.py`` read.
"""

from __future__ import annotations

import json

from ..model.config import RouterConfig
from ..model.names import kea_subnet_id
from ..model.services import ServicePaths, dhcp_interfaces, kea_state_dir, lan_domain, parse_pool, serves


def subnet_id(ifname: str, subnet: str) -> int:
    return kea_subnet_id(ifname, subnet)


def lease_file(paths: ServicePaths, version: int) -> str:
    return f"{kea_state_dir(paths)}/kea-leases{version}.csv"


def control_socket(paths: ServicePaths, version: int) -> str:
    return f"{paths.run_dir(f'kea-dhcp{version}')}/kea-dhcp{version}.sock"


def _pool(p: str) -> str:
    lo, hi = parse_pool(p)
    return f"{lo} - {hi}"


def _opt(name: str, data: list) -> dict:
    return {"name": name, "data": ", ".join(str(x) for x in data)}


def render_dhcp4(cfg: RouterConfig, paths: ServicePaths) -> str | None:
    ifaces = dhcp_interfaces(cfg, 4)
    if not ifaces:
        return None
    domain = lan_domain(cfg)
    subnets = []
    for ifname in ifaces:
        scope = cfg.dhcp[ifname]
        v4 = scope.ipv4
        addr = cfg.interfaces[ifname].ipv4[0]
        net = str(addr.network)
        routers = v4.routers if v4.routers is not None else [addr.ip]
        dns = v4.dns if v4.dns is not None else ([addr.ip] if serves(cfg, "dns", ifname) else [])
        ntp = v4.ntp if v4.ntp is not None else ([addr.ip] if serves(cfg, "ntp", ifname) else [])
        dom = v4.domain or domain
        opts = []
        if routers:
            opts.append(_opt("routers", routers))
        if dns:
            opts.append(_opt("domain-name-servers", dns))
        if ntp:
            opts.append(_opt("ntp-servers", ntp))
        if dom:
            opts += [_opt("domain-name", [dom]), _opt("domain-search", [dom])]
        res = [{"hw-address": r.mac, "ip-address": str(r.ipv4), "hostname": r.name}
               for r in scope.reservations if r.ipv4 is not None]
        subnets.append({
            "id": subnet_id(ifname, net),
            "subnet": net,
            "interface": ifname,
            "pools": [{"pool": _pool(p)} for p in v4.pools],
            "valid-lifetime": v4.lease_time,
            "renew-timer": v4.lease_time // 2,
            "rebind-timer": v4.lease_time * 7 // 8,
            "option-data": opts,
            "reservations": res,
            "user-context": {"talgate": f"dhcp.{ifname}.ipv4"},
        })
    doc = {"Dhcp4": {
        "interfaces-config": {"interfaces": ifaces, "dhcp-socket-type": "raw", "service-sockets-max-retries": 5,
                              "service-sockets-retry-wait-time": 1000},
        "control-socket": {"socket-type": "unix", "socket-name": control_socket(paths, 4)},
        "lease-database": {"type": "memfile", "persist": True, "name": lease_file(paths, 4), "lfc-interval": 3600},
        "expired-leases-processing": {"reclaim-timer-wait-time": 10, "hold-reclaimed-time": 3600},
        "host-reservation-identifiers": ["hw-address"],
        "reservations-out-of-pool": True,
        # Keep the client's host name (sanitised) in the lease so DNS can publish it.
        "ddns-send-updates": False,
        "ddns-replace-client-name": "never",
        "hostname-char-set": "[^A-Za-z0-9.-]",
        "hostname-char-replacement": "-",
        "authoritative": True,
        "subnet4": subnets,
        "loggers": [{"name": "kea-dhcp4", "output_options": [{"output": "stdout"}], "severity": "INFO"}],
    }}
    return json.dumps(doc, indent=2) + "\n"


def render_dhcp6(cfg: RouterConfig, paths: ServicePaths) -> str | None:
    ifaces = dhcp_interfaces(cfg, 6)
    if not ifaces:
        return None
    domain = lan_domain(cfg)
    subnets = []
    for ifname in ifaces:
        scope = cfg.dhcp[ifname]
        v6 = scope.ipv6
        addr = next((a for a in cfg.interfaces[ifname].ipv6 if not a.ip.is_link_local),
                    cfg.interfaces[ifname].ipv6[0])
        net = str(addr.network)
        dns = v6.dns if v6.dns is not None else ([addr.ip] if serves(cfg, "dns", ifname) else [])
        ntp = v6.ntp if v6.ntp is not None else ([addr.ip] if serves(cfg, "ntp", ifname) else [])
        dom = v6.domain or domain
        opts = []
        if dns:
            opts.append(_opt("dns-servers", dns))
        if ntp:
            opts.append(_opt("sntp-servers", ntp))
        if dom:
            opts.append(_opt("domain-search", [dom]))
        res = [{"duid": r.duid, "ip-addresses": [str(r.ipv6)], "hostname": r.name}
               for r in scope.reservations if r.ipv6 is not None]
        pref = v6.preferred_time or v6.lease_time * 5 // 8
        subnets.append({
            "id": subnet_id(ifname, net),
            "subnet": net,
            "interface": ifname,
            "pools": [{"pool": _pool(p)} for p in v6.pools],
            "valid-lifetime": v6.lease_time,
            "preferred-lifetime": pref,
            "renew-timer": pref // 2,
            "rebind-timer": pref * 4 // 5,
            "option-data": opts,
            "reservations": res,
            "user-context": {"talgate": f"dhcp.{ifname}.ipv6"},
        })
    state = kea_state_dir(paths)
    doc = {"Dhcp6": {
        "interfaces-config": {"interfaces": ifaces, "service-sockets-max-retries": 5,
                              "service-sockets-retry-wait-time": 1000},
        "control-socket": {"socket-type": "unix", "socket-name": control_socket(paths, 6)},
        "lease-database": {"type": "memfile", "persist": True, "name": lease_file(paths, 6), "lfc-interval": 3600},
        "expired-leases-processing": {"reclaim-timer-wait-time": 10, "hold-reclaimed-time": 3600},
        # Kea 2.2 exits unless it can write its server-id file: keep it with the leases.
        "data-directory": state,
        "server-id": {"type": "LL", "persist": True},
        "host-reservation-identifiers": ["duid"],
        "reservations-out-of-pool": True,
        "ddns-send-updates": False,
        "ddns-replace-client-name": "never",
        "hostname-char-set": "[^A-Za-z0-9.-]",
        "hostname-char-replacement": "-",
        "subnet6": subnets,
        "loggers": [{"name": "kea-dhcp6", "output_options": [{"output": "stdout"}], "severity": "INFO"}],
    }}
    return json.dumps(doc, indent=2) + "\n"
