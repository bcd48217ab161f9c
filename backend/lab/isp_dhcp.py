"""The lab's isp as a DHCP/DHCPv6/PD server: Kea 2.2 (kea-dhcp4, kea-dhcp6 with a PD pool) and
radvd (RA with the M and O flags and an autonomous prefix for SLAAC) on the isp host's eth0, plus
the isp's route for the delegated pool back to the router (a real ISP's BNG installs it from the
lease; Kea does not route). Started with ``Lab.spawn`` in the ``isp`` namespace, files in
``STATE/isp-dhcp``. Nothing here touches the router: it is the other side of the wire.

    isp = IspDhcp(lab); isp.start(pd_pool="2001:db8:4000::/48")
    isp.restart_v6(pd_pool="2001:db8:5000::/48")     # the ISP renumbers the delegation
    isp.restart_v4({"options": [...]})               # a hostile server (tests)
"""

from __future__ import annotations

import ipaddress
import json
import os
import time
from pathlib import Path

from .lab import Lab, _kill

LINK = "eth0"
V4_SUBNET = "198.51.100.0/24"
V6_SUBNET = "2001:db8:100::/64"
# eth0 is "not running" until the router's agent brings wan0 up: Kea keeps trying to open its sockets
RETRY = {"service-sockets-max-retries": 200, "service-sockets-retry-wait-time": 200}


def kea4(lifetime: int = 120, subnet: str = V4_SUBNET, pool: str | None = None,
         options: list[dict] | None = None) -> dict:
    net = ipaddress.IPv4Network(subnet)
    pool = pool or f"{net.network_address + 100} - {net.network_address + 199}"
    opts = options if options is not None else [
        {"name": "routers", "data": str(net.network_address + 1)},
        {"name": "domain-name-servers", "data": str(net.network_address + 1)},
        {"name": "domain-name", "data": "isp.example"}]
    return {"Dhcp4": {
        "interfaces-config": {"interfaces": [LINK], "dhcp-socket-type": "raw", **RETRY},
        "lease-database": {"type": "memfile", "persist": False},
        "valid-lifetime": lifetime, "renew-timer": lifetime // 2, "rebind-timer": lifetime * 7 // 8,
        "subnet4": [{"id": 1, "subnet": subnet, "interface": LINK, "pools": [{"pool": pool}], "option-data": opts}],
        "loggers": [{"name": "kea-dhcp4", "severity": "INFO", "output_options": [{"output": "stdout"}]}]}}


def kea6(state: str, pd_pool: str, delegated_len: int = 56, renew: int = 2, lifetime: int = 30) -> dict:
    pool = ipaddress.IPv6Network(pd_pool)
    return {"Dhcp6": {
        "interfaces-config": {"interfaces": [LINK], **RETRY},
        "data-directory": state, "server-id": {"type": "LL", "persist": False},
        "lease-database": {"type": "memfile", "persist": False},
        "renew-timer": renew, "rebind-timer": renew + renew // 2 + 1,
        "preferred-lifetime": lifetime * 2 // 3, "valid-lifetime": lifetime,
        "subnet6": [{"id": 1, "subnet": V6_SUBNET, "interface": LINK,
                     "pools": [{"pool": "2001:db8:100::1000 - 2001:db8:100::1fff"}],
                     "pd-pools": [{"prefix": str(pool.network_address), "prefix-len": pool.prefixlen,
                                   "delegated-len": delegated_len}],
                     "option-data": [{"name": "dns-servers", "data": "2001:db8:100::1"},
                                     {"name": "domain-search", "data": "isp.example"}]}],
        "loggers": [{"name": "kea-dhcp6", "severity": "INFO", "output_options": [{"output": "stdout"}]}]}}


RADVD = """interface eth0 {
    AdvSendAdvert on;
    MinRtrAdvInterval 3;
    MaxRtrAdvInterval 4;
    AdvManagedFlag on;
    AdvOtherConfigFlag on;
    prefix 2001:db8:100::/64 { AdvOnLink on; AdvAutonomous on; };
};
"""


class IspDhcp:
    def __init__(self, lab: Lab):
        self.lab = lab
        self.dir = Path(lab.state) / "isp-dhcp"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pids: dict[str, int] = {}
        self.pd_pool: str | None = None
        self.routed: str | None = None  # the pool routed to the router

    def _spawn(self, name: str, doc: dict | str, argv: list[str]) -> int:
        conf = self.dir / f"{name}.conf"
        conf.write_text(doc if isinstance(doc, str) else json.dumps(doc, indent=1))
        run = self.dir / name
        run.mkdir(exist_ok=True)
        env = ["env", f"KEA_PIDFILE_DIR={run}", f"KEA_LOCKFILE_DIR={run}"]
        pid = self.lab.spawn("isp", [*env, *[a.replace("CONF", str(conf)) for a in argv]], f"isp-{name}.log")
        self.pids[name] = pid
        return pid

    def start(self, pd_pool: str | None = "2001:db8:4000::/48", delegated_len: int = 56,
              v4: dict | None = None, radvd: bool = True, renew: int = 2) -> None:
        """kea-dhcp4 (v4: keyword arguments of kea4, e.g. hostile options), kea-dhcp6 with the PD
        pool (None: no DHCPv6 server) and radvd."""
        self.restart_v4(v4)
        if pd_pool is not None:
            self.restart_v6(pd_pool, delegated_len, renew)
        if radvd:
            self._spawn("radvd", RADVD, ["radvd", "--nodaemon", "-C", "CONF", "-p",
                                         str(self.dir / "radvd" / "radvd.pid"), "-m", "stderr"])

    def restart_v4(self, v4: dict | None = None) -> None:
        """(Re)start kea-dhcp4 (v4: keyword arguments of kea4; its leases are not kept)."""
        if "kea-dhcp4" in self.pids:
            _kill(self.pids.pop("kea-dhcp4"))
        self._spawn("kea-dhcp4", kea4(**(v4 or {})), ["kea-dhcp4", "-c", "CONF"])

    def restart_v6(self, pd_pool: str, delegated_len: int = 56, renew: int = 2) -> None:
        """(Re)start kea-dhcp6 with this PD pool (its leases are not kept: a renewing client gets a
        prefix of the new pool and its old one with lifetime 0) and route the pool to the router."""
        if "kea-dhcp6" in self.pids:
            _kill(self.pids.pop("kea-dhcp6"))
        self._spawn("kea-dhcp6", kea6(str(self.dir / "kea-dhcp6"), pd_pool, delegated_len, renew),
                    ["kea-dhcp6", "-c", "CONF"])
        if self.routed:
            self.route_pool(pd_pool)
        self.pd_pool = pd_pool

    def router_link_local(self, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            out = self.lab.run("router", ["ip", "-j", "-6", "addr", "show", "dev", "wan0", "scope", "link"]).stdout
            for i in json.loads(out or "[]"):
                for a in i.get("addr_info", []):
                    if a.get("local", "").startswith("fe80"):
                        return a["local"]
            if time.monotonic() > deadline:
                raise RuntimeError("the router's wan0 has no link-local address")
            time.sleep(0.1)

    def route_pool(self, pd_pool: str | None = None) -> None:
        """Route the PD pool to the router's wan0 link-local (once the agent brought wan0 up)."""
        pd_pool = pd_pool or self.pd_pool
        ll = self.router_link_local()
        if self.routed and self.routed != pd_pool:
            self.lab.run("isp", ["ip", "-6", "route", "del", self.routed])
        self.lab.run("isp", ["ip", "-6", "route", "replace", pd_pool, "via", ll, "dev", LINK], check=True)
        self.routed = pd_pool

    def stop(self) -> None:
        for name in list(self.pids):
            _kill(self.pids.pop(name))

    def alive(self, name: str) -> bool:
        pid = self.pids.get(name)
        return pid is not None and os.path.exists(f"/proc/{pid}")


def wants_isp_dhcp(config_text: str) -> bool:
    """Does this router document learn its uplink (ipv4: dhcp, ipv6: {...})? Then the isp serves it."""
    from ..model.load import validate_text
    from ..model.uplink import uses_facts

    cfg = validate_text(config_text)[0]
    return cfg is not None and uses_facts(cfg)


def up_with_isp_dhcp(lab: Lab, config_text: str, timeout: float = 30.0, **isp_kw) -> IspDhcp:
    """``lab.up`` with the isp serving DHCP/DHCPv6-PD/RA before the router's agent starts (its
    clients find a server at once), the PD pool routed to the router once wan0 is up."""
    lab.up(config_text, agent=False)
    try:
        isp = IspDhcp(lab)
        isp.start(**isp_kw)
        meta = lab.meta() or {"pids": {}}
        meta["pids"]["agent"] = lab.start_agent(config_text, timeout)
        meta["pids"].update({f"isp-{k}": v for k, v in isp.pids.items()})
        lab._write_meta(meta)
        if isp.pd_pool:
            isp.route_pool()
    except BaseException:
        lab.down()
        raise
    return isp
