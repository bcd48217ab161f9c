"""What the uplink facts add to the network applier's desired state (backend/host/network.py).

- A WAN with ``ipv6: {...}`` accepts router advertisements although the router forwards
  (``accept_ra=2``, in the router's namespace only): the kernel learns the default route, and
  with ``slaac`` an address (``autoconf=1``; DHCPv6-only: ``autoconf=0``). Those are the kernel's
  (non-permanent addresses, ``proto ra`` routes): the applier leaves them alone.
- A gateway learned by DHCPv4 becomes a default route on its link (``proto 250``, like a
  configured one), withdrawn when the WAN health checks mark the link down. A configured route
  to the same destination and metric wins.
- A delegated prefix gets an ``unreachable`` route (RFC 7084 WPD-5, ``proto 250``, metric
  :data:`PD_METRIC`): the /64s used on the LANs are more specific (connected), the rest of the
  prefix is answered with ICMPv6 unreachable instead of bouncing back to the ISP. It follows the
  delegation (a new prefix replaces it, an expired one removes it) like any learned fact.
- Learned addresses (``Facts.addresses``) are already kept by ``network.desired_state``.
"""

from __future__ import annotations

import ipaddress

from .net import NetState, RouteKey

DHCP4_METRIC = 0  # the metric of a DHCPv4 default route (the kernel's default for IPv4)
PD_METRIC = 1024  # the metric of a delegated prefix's unreachable route (the kernel's default for IPv6)


def add_learned(cfg, facts, st: NetState) -> None:
    for name, itf in cfg.interfaces.items():
        if itf.v6auto is not None and itf.enabled and name in st.links:
            st.sysctls[f"net/ipv6/conf/{name}/accept_ra"] = "2"
            st.sysctls[f"net/ipv6/conf/{name}/autoconf"] = "1" if itf.v6auto.slaac else "0"
    for name, gws in facts.gateways.items():
        itf = cfg.interfaces.get(name)
        if itf is None or not itf.enabled or name not in st.links or not facts.healthy(name):
            continue
        for gw in gws[:1]:  # one default route per family and link
            ip = ipaddress.ip_address(gw)
            key = RouteKey(ip.version, "0.0.0.0/0" if ip.version == 4 else "::/0",
                           DHCP4_METRIC if ip.version == 4 else 1024)
            if key not in st.routes:
                st.routes[key] = {"gateway": str(ip), "oif": name, "name": f"learned:{name}"}
    for wan, prefixes in facts.delegated.items():
        if wan not in cfg.interfaces:
            continue
        for pre in prefixes:
            key = RouteKey(6, str(ipaddress.IPv6Network(pre)), PD_METRIC)
            if key not in st.routes:
                st.routes[key] = {"gateway": None, "oif": None, "type": "unreachable", "name": f"delegated:{wan}"}
