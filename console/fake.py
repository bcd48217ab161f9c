"""The console's test double and its fixture data, for snapshot tests, screenshots and benchmarks.

:class:`FakeAgent` is NOT a second agent: it is ``backend.testing.InProcessAgent`` — the real service
layer and pipeline (validation, lockout proof, git commits, confirm, rollback, drift) on a temporary
git repo with fake kernel appliers — started on the fixture document below, with fixture samples for
what only a kernel could tell (links, rates, neighbours, conntrack, leases). The console talks to it
through the real client (``agent.client``; ``agent.ro_client`` has the read-only socket's rights).
"""

from __future__ import annotations

import math

from backend.client import AgentError
from backend.testing import InProcessAgent

# The fixed document the snapshots show: the lab example as of issue 3, copied so that later edits
# to backend/lab/example.yaml do not move the console's snapshots.
FIXTURE = """\
# talgate lab example — the router of `talgate lab up`.
# Edit this file in the config repo's working tree, then `talgate diff` and `talgate commit -m MSG`.
version: 1
system:
  hostname: gw
  domain: lan.example
  management_interface: mgmt0

interfaces:
  wan0:
    description: uplink to the isp
    ipv4: [198.51.100.2/24]
    ipv6: [2001:db8:100::2/64]
  lan0:
    ipv4: [192.168.10.1/24]
    ipv6: [2001:db8:10:10::1/64]
  guest0:
    ipv4: [192.168.20.1/24]
    ipv6: [2001:db8:10:20::1/64]
  mgmt0:
    ipv4: [192.168.99.1/24]
    ipv6: [2001:db8:10:99::1/64]

zones:
  wan:   {interfaces: [wan0], input: drop, forward: drop}
  lan:   {interfaces: [lan0], input: drop, forward: drop}
  guest: {interfaces: [guest0], input: drop, forward: drop}
  mgmt:  {interfaces: [mgmt0], input: drop, forward: drop}

# Zone to zone defaults. Anything not listed falls back to the source zone's `forward`.
policies:
  - {from: lan, to: wan, action: accept}
  - {from: guest, to: wan, action: accept}
  - {from: mgmt, to: wan, action: accept}
  - {from: mgmt, to: lan, action: accept}
  - {from: guest, to: lan, action: drop}
  - {from: guest, to: mgmt, action: drop}

rules:
  - {name: ssh-from-mgmt, from: mgmt, to: self, proto: tcp, dport: 22, action: accept}
  - name: ping-router
    from: [wan, lan, guest, mgmt]
    to: self
    proto: icmp
    icmp_types: [echo-request]
    action: accept

nat:
  masquerade:
    - {out: wan}            # IPv4 only; IPv6 is routed (2001:db8:10::/56 is ours)
  forwards:
    - {name: web, in: wan, proto: tcp, dport: 8443, to: "192.168.10.10:443"}

routes:
  - {name: default-v4, to: 0.0.0.0/0, via: 198.51.100.1}
  - {name: default-v6, to: "::/0", via: "2001:db8:100::1"}
"""


# DHCP for the leases screen (FakeAgent(dhcp=True)): lan0 serves v4 and v6, guest0 v4; one reservation.
DHCP_SECTION = """
dhcp:
  lan0:
    ipv4: {pools: [192.168.10.100-192.168.10.199]}
    ipv6: {pools: ["2001:db8:10:10::1000-2001:db8:10:10::1fff"]}
    reservations:
      - {name: printer, mac: "02:00:00:00:10:50", ipv4: 192.168.10.50}
  guest0:
    ipv4: {pools: [192.168.20.100-192.168.20.199]}
"""


def example_config() -> str:
    return FIXTURE


T0 = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC: fixed so snapshots do not move
NOW = T0 + 300.0  # the console's clock in snapshots and tests (Store.clock)


def fixed_clock() -> float:
    return NOW


def fake_leases() -> list[dict]:
    """Deterministic Kea leases (expiry relative to NOW)."""
    v4 = [("192.168.10.50", "printer", "02:00:00:00:10:50", "lan0", 3000),
          ("192.168.10.101", "laptop", "02:00:00:00:10:65", "lan0", 3540),
          ("192.168.10.102", "phone-anna", "02:00:00:00:10:66", "lan0", 1210),
          ("192.168.10.117", None, "02:00:00:00:10:75", "lan0", 95),
          ("192.168.20.100", "tv", "02:00:00:00:20:64", "guest0", 2400),
          ("192.168.20.131", "guest-phone", "02:00:00:00:20:83", "guest0", 600)]
    v6 = [("2001:db8:10:10::1000", "laptop", "00:01:00:01:2c:5a:11:22:02:00:00:00:10:65", "lan0", 3300),
          ("2001:db8:10:10::1001", "nas", "00:04:d2:3f:41:9e:7e:52:44:1b:95:ad:52:0c:a7:2f", "lan0", 1800)]
    out = []
    for i, (a, h, mac, ifname, ttl) in enumerate(v4):
        out.append({"family": 4, "address": a, "hostname": h, "hwaddr": mac, "client_id": None,
                    "expires": int(NOW + ttl), "interface": ifname, "state": "active",
                    "subnet_id": 1 if ifname == "lan0" else 2})
        if i == 3:
            out[-1]["state"] = "declined"
    for a, h, duid, ifname, ttl in v6:
        out.append({"family": 6, "address": a, "hostname": h, "duid": duid, "hwaddr": None, "type": "address",
                    "expires": int(NOW + ttl), "interface": ifname, "state": "active", "subnet_id": 1})
    return out


def wave(n: int, seed: int, scale: float) -> list[float]:
    return [max(0.0, scale * (0.55 + 0.4 * math.sin((i + seed * 7) / 9.0) + 0.2 * math.sin(i / 2.3 + seed)))
            for i in range(n)]


def big_config(rules: int = 1000, interfaces: int = 0) -> str:
    """The lab example plus ``rules`` extra rules (and extra interfaces in the lan zone): bench input."""
    import yaml

    data = yaml.safe_load(example_config())
    for i in range(interfaces):
        data["interfaces"][f"vx{i}"] = {"ipv4": [f"10.{i // 250}.{i % 250}.1/24"]}
        data["zones"]["lan"]["interfaces"].append(f"vx{i}")
    for i in range(rules):
        data["rules"].append({"name": f"r{i:04d}", "from": "lan", "to": "wan", "proto": "tcp",
                              "dport": 1024 + i, "action": "drop" if i % 3 else "accept"})
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)


# The console runs over SSH from the management network: the lockout proof protects this connection.
SSH_CONNECTION = "192.168.99.2 50022 192.168.99.1 22"


def fake_interfaces(names: list[str]) -> list[dict]:
    addrs = {"wan0": (["198.51.100.2/24"], ["2001:db8:100::2/64"]), "lan0": (["192.168.10.1/24"], []),
             "guest0": (["192.168.20.1/24"], []), "mgmt0": (["192.168.99.1/24"], [])}
    out = []
    for k, n in enumerate(names):
        v4, v6 = addrs.get(n, ([], []))
        out.append({"name": n, "state": "up", "mtu": 1500, "mac": f"02:00:00:00:00:{k % 256:02x}", "ipv4": v4,
                    "ipv6": v6, "rx_rate": 1000.0 * (k + 1), "tx_rate": 500.0 * (k + 1),
                    "counters": {"rx_bytes": 123456 * (k + 1), "rx_packets": 1000 * (k + 1), "rx_errors": 0,
                                 "rx_dropped": 0, "tx_bytes": 654321 * (k + 1), "tx_packets": 900 * (k + 1),
                                 "tx_errors": 0, "tx_dropped": 0}})
    return out


def fake_neighbours() -> list[dict]:
    return [{"dst": "198.51.100.1", "dev": "wan0", "lladdr": "02:00:00:00:01:01", "state": "reachable"},
            {"dst": "192.168.10.10", "dev": "lan0", "lladdr": "02:00:00:00:01:02", "state": "stale"}]


def fake_routes(table: str = "all") -> dict:
    """Routing tables as the agent reports them (connected, static, BGP, OSPF; one learned BGP route
    that lost to a connected one)."""
    k = {"source": "kernel", "selected": True, "installed": True, "type": "unicast"}
    routes = [
        {**k, "family": 4, "dst": "0.0.0.0/0", "table": "main", "kind": "static", "protocol": "talgate",
         "gateway": "198.51.100.1", "dev": "wan0", "metric": None},
        {**k, "family": 4, "dst": "192.168.10.0/24", "table": "main", "kind": "connected", "protocol": "kernel",
         "gateway": None, "dev": "lan0", "metric": None},
        {**k, "family": 4, "dst": "192.168.20.0/24", "table": "main", "kind": "connected", "protocol": "kernel",
         "gateway": None, "dev": "guest0", "metric": None},
        {**k, "family": 4, "dst": "192.168.77.0/24", "table": "main", "kind": "ospf", "protocol": "ospf",
         "gateway": "192.168.10.10", "dev": "lan0", "metric": 20},
        {**k, "family": 4, "dst": "198.51.100.0/24", "table": "main", "kind": "connected", "protocol": "kernel",
         "gateway": None, "dev": "wan0", "metric": None},
        {**k, "family": 4, "dst": "203.0.113.128/26", "table": "main", "kind": "bgp", "protocol": "bgp",
         "gateway": "198.51.100.1", "dev": "wan0", "metric": 20},
        {"source": "frr", "selected": False, "installed": False, "type": "unicast", "family": 4,
         "dst": "192.168.10.0/24", "table": "main", "kind": "bgp", "protocol": "bgp", "gateway": "198.51.100.1",
         "dev": "wan0", "metric": 0, "distance": 20, "age": "00:12:31"},
        {**k, "family": 6, "dst": "::/0", "table": "main", "kind": "static", "protocol": "talgate",
         "gateway": "2001:db8:100::1", "dev": "wan0", "metric": 1024},
        {**k, "family": 6, "dst": "2001:db8:10:10::/64", "table": "main", "kind": "connected", "protocol": "kernel",
         "gateway": None, "dev": "lan0", "metric": 256},
        {**k, "family": 6, "dst": "2001:db8:77::/48", "table": "main", "kind": "ospfv3", "protocol": "ospf",
         "gateway": "fe80::ff:fe00:102", "dev": "lan0", "metric": 20},
        {**k, "family": 6, "dst": "2001:db8:bbbb::/48", "table": "main", "kind": "bgp", "protocol": "bgp",
         "gateway": "2001:db8:100::1", "dev": "wan0", "metric": 20},
        {**k, "family": 4, "dst": "10.99.0.0/16", "table": "100", "kind": "static", "protocol": "talgate",
         "gateway": "192.168.10.10", "dev": "lan0", "metric": None},
    ]
    if table != "all":
        routes = [r for r in routes if r["table"] == table]
    return {"routes": routes, "truncated": False, "frr": True}


def fake_history(names: list[str], seconds: int | None = None) -> dict:
    n = 300 if seconds is None else max(1, min(300, seconds))
    return {"interval": 1.0, "times": [T0 + i for i in range(300 - n, 300)],
            "interfaces": {name: {"rx": wave(300, k, 1e5 * (k + 1))[-n:], "tx": wave(300, k + 3, 4e4 * (k + 1))[-n:]}
                           for k, name in enumerate(names)}}


def fake_conntrack(n: int = 10) -> dict:
    top = [{"src": "192.168.10.10", "flows": 12, "peers": 4, "packets": 5400, "bytes": 4_100_000},
           {"src": "192.168.20.10", "flows": 5, "peers": 2, "packets": 800, "bytes": 96_000},
           {"src": "2001:db8:10:10::10", "flows": 2, "peers": 1, "packets": 40, "bytes": 5_200}]
    return {"total": 19, "accounting": True, "top": top[:n]}


class FakeAgent(InProcessAgent):
    """The real agent minus the kernel, on the fixture document (see the module docstring).

    ``confirm_pending``: a commit made with a 47 s confirm is waiting. ``drift``: the (fake) kernel's
    ruleset was changed behind the agent's back and the agent's drift repair ran. ``read_only``:
    :attr:`console_client` has the read-only socket's rights."""

    def __init__(self, text: str | None = None, read_only: bool = False, extra_ifaces: int = 0, dhcp: bool = False,
                 confirm_pending: bool = False, drift: bool = False, events: bool = False):
        self.read_only = read_only
        self.ifnames = ["wan0", "lan0", "guest0", "mgmt0"] + [f"vx{i}" for i in range(extra_ifaces)]
        text = text or example_config() + (DHCP_SECTION if dhcp else "")
        super().__init__(text, links=self.ifnames, start=T0, clock=fixed_clock,
                         who={"author": "admin", "ssh_connection": SSH_CONNECTION},
                         readers={"interfaces": lambda: fake_interfaces(self.ifnames), "neighbours": fake_neighbours,
                                  "history": lambda s: fake_history(self.ifnames, s), "conntrack": fake_conntrack,
                                  "leases": fake_leases, "routes": fake_routes})
        if events:
            self._events(text)
        if confirm_pending:
            self.client.commit(text + "# staged with a confirm\n", "risky change", base=self.head, confirm=47)
        if drift:
            self.nft.kernel = {"ruleset": "changed behind the agent's back"}
            self.pipeline.repair()
        self.sent.clear()

    def _events(self, text: str) -> None:
        """Real audit entries for the events screen: a confirmed commit, an unconfirmed one the
        confirm timer rolls back, a refused stale commit and a drift repair (times then fixed)."""
        import json

        import yaml

        data = yaml.safe_load(text)
        data["rules"].insert(0, {"name": "web-test", "from": "wan", "to": "self", "proto": "tcp", "dport": 8080,
                                 "action": "accept"})
        first = self.head
        self.client.commit(yaml.safe_dump(data, sort_keys=False), "open 8080 for a test", base=first, confirm=60)
        self.client.confirm()
        self.client.commit(text, "close 8080 again", base=self.head, confirm=47)
        clock = self.pipeline.clock
        self.pipeline.clock = lambda: clock() + 120  # the confirm window passes
        try:
            self.pipeline.tick()
        finally:
            self.pipeline.clock = clock
        try:
            self.client.commit(text + "# stale\n", "edit from an old base", base=first)
        except AgentError:
            pass  # refused: HEAD moved
        self.nft.kernel = {"ruleset": "changed behind the agent's back"}
        self.pipeline.repair()
        path = self.pipeline.audit.path
        entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        path.write_text("".join(json.dumps({**e, "time": T0 + 60.0 * i}) + "\n" for i, e in enumerate(entries)))

    @property
    def console_client(self):
        """What the console is given: the read-only socket's client in read-only mode."""
        return self.ro_client if self.read_only else self.client
