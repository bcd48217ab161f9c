"""A large router config for benchmarks: N rules, M interfaces/zones, a P-prefix address set."""

from __future__ import annotations

import ipaddress

import yaml


def large_config(rules: int = 1000, interfaces: int = 50, prefixes: int = 100_000) -> str:
    ifs = {}
    zones = {}
    for i in range(interfaces):
        name = "wan0" if i == 0 else f"lan{i}"
        ifs[name] = {"ipv4": [f"10.{i // 256}.{i % 256}.1/24"], "ipv6": [f"2001:db8:{i:x}::1/64"]}
        zones["wan" if i == 0 else f"z{i}"] = {"interfaces": [name]}
    net = ipaddress.ip_network("100.64.0.0/10")
    subnets = net.subnets(new_prefix=28)
    blocklist = [str(next(subnets)) for _ in range(prefixes)]
    zl = [z for z in zones if z != "wan"]
    out = {
        "version": 1,
        "system": {"hostname": "big"},
        "interfaces": ifs,
        "zones": zones,
        "sets": {"blocklist": {"addresses": blocklist}},
        "policies": [{"from": z, "to": "wan", "action": "accept"} for z in zl],
        "rules": [{"name": "block-listed", "from": "wan", "to": zl, "src": ["blocklist"], "action": "drop"}],
        "nat": {"masquerade": [{"out": "wan"}]},
        "routes": [{"name": "default", "to": "0.0.0.0/0", "via": "10.0.0.254"}],
    }
    for k in range(rules - 1):
        z = zl[k % len(zl)]
        out["rules"].append({"name": f"r{k}", "from": z, "to": "self" if k % 3 == 0 else "wan", "proto": "tcp",
                             "dport": 1024 + k, "src": [f"10.{(k % len(zl) + 1) // 256}.{(k % len(zl) + 1) % 256}.{k % 250 + 2}/32"],
                             "action": "accept" if k % 2 else "drop"})
    return yaml.safe_dump(out, sort_keys=False)
