"""RouterConfig → chrony.conf. Pure and deterministic.

chronyd always runs with ``-x``: it serves time but never steers the system clock (the lab's
clock is the machine's, on Talos it is Talos's). ``allow`` lists exactly the subnets of the
zones in ``ntp.serve``; NTS is served with a key/certificate the applier issues from the box's CA.
"""

from __future__ import annotations

from ..model.config import RouterConfig
from ..model.services import ServicePaths, chrony_state_dir, ntp_zones, zone_interfaces


def command_socket(paths: ServicePaths) -> str:
    return f"{paths.run_dir('chrony')}/chronyd.sock"


def nts_files(paths: ServicePaths) -> tuple[str, str]:
    """(key, certificate) of the NTS server, issued by the applier next to the config."""
    return paths.conf("chrony", "nts.key"), paths.conf("chrony", "nts.crt")


def render_chrony(cfg: RouterConfig, paths: ServicePaths) -> str | None:
    ntp = cfg.ntp
    if ntp is None or not ntp.enabled:
        return None
    L = ["# rendered by talgate from router.yaml (ntp); do not edit",
         "# run with chronyd -x: serve time, never steer the system clock"]
    for s in ntp.servers:
        kind = "pool" if s.pool else "server"
        L.append(f"{kind} {s.address} iburst" + (" nts" if s.nts else ""))
    if ntp.local_stratum:
        L.append(f"local stratum {ntp.local_stratum} orphan")
    zones = ntp_zones(cfg)
    nets = []
    for ifname in zone_interfaces(cfg, zones):
        itf = cfg.interfaces[ifname]
        nets += [str(a.network) for a in [*itf.ipv4, *itf.ipv6]]
    for n in sorted(set(nets)):
        L.append(f"allow {n}")
    if not nets:
        L.append("port 0")
    run = paths.run_dir("chrony")
    state = chrony_state_dir(paths)
    L += [
        f"pidfile {run}/chronyd.pid",
        f"bindcmdaddress {command_socket(paths)}",
        "cmdport 0",
        f"ntsdumpdir {state}",
    ]
    if ntp.nts_server and nets:
        key, crt = nts_files(paths)
        L += [f"ntsserverkey {key}", f"ntsservercert {crt}", "ntsport 4460"]
    return "\n".join(L) + "\n"
