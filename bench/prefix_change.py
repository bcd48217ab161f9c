#!/usr/bin/env python3
"""ISP renumbering → the lan host's new address reaches the internet, N times (default 5).

Builds the uplink lab (backend/lab/uplink.yaml: wan0 by DHCP/SLAAC/DHCPv6-PD against the isp's
Kea and radvd, backend/lab/isp_dhcp.py), lets the lan host take its address by RA, then restarts
the isp's kea-dhcp6 with another PD pool each round and measures from that restart until a TCP
connection from the lan host's new (preferred) address reaches the isp's whoami server and is
seen with that source. The Kea renew timer is 2 s, so a renewal lands 0-2 s after the change.
HEAD must not move. Needs root; builds its own tg-bench-pd-* namespaces.

Target: every round < 10 s.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import statistics
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.client import AgentClient  # noqa: E402
from backend.lab.isp_dhcp import up_with_isp_dhcp  # noqa: E402
from backend.lab.lab import Lab  # noqa: E402


def lan_addrs(lab: Lab) -> list[dict]:
    out = json.loads(lab.run("lan", ["ip", "-j", "-6", "addr", "show", "dev", "eth0", "scope", "global"]).stdout)
    return [a for i in out for a in i.get("addr_info", []) if "local" in a]


def probe(lab: Lab, dst: str) -> str | None:
    r = lab.run("lan", [sys.executable, "-m", "backend.lab.whoami", "--probe", dst, "80", "0.5"], timeout=10)
    return r.stdout.strip() if r.returncode == 0 else None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=5)
    args = ap.parse_args()
    cfg = resources.files("backend.lab").joinpath("uplink.yaml").read_text()
    lab = Lab(prefix="tg-bench-pd-", state=Path(tempfile.mkdtemp(prefix="talgate-bench-pd-")) / "state")
    lab.down()
    times = []
    try:
        isp = up_with_isp_dhcp(lab, cfg, pd_pool="2001:db8:4000::/48")
        lab.run("lan", ["sysctl", "-qw", "net.ipv6.conf.eth0.accept_ra=1", "net.ipv6.conf.eth0.autoconf=1"])
        lab.run("lan", ["ip", "-6", "route", "del", "default"])
        lab.run("lan", ["ip", "-6", "addr", "flush", "dev", "eth0", "scope", "global"])
        client = AgentClient(lab.socket)
        deadline = time.monotonic() + 40
        while not probe(lab, "2001:db8:203::10") and time.monotonic() < deadline:
            time.sleep(0.2)
        head = client.status()["head"]
        for i in range(args.n):
            pool = ipaddress.ip_network(f"2001:db8:{0x5000 + i * 0x100:x}::/48")
            t0 = time.monotonic()
            isp.restart_v6(str(pool))
            took = None
            while time.monotonic() - t0 < 20:
                new = [a["local"] for a in lan_addrs(lab)
                       if ipaddress.ip_address(a["local"]) in pool and a.get("preferred_life_time", 1) > 0]
                line = probe(lab, "2001:db8:203::10") if new else None
                if line and line.split()[-1] == new[0]:
                    took = time.monotonic() - t0
                    break
                time.sleep(0.05)
            times.append(took)
            print(f"round {i + 1}: {pool} -> " + (f"{took:.2f} s" if took is not None else "FAILED (> 20 s)"))
        assert client.status()["head"] == head, "HEAD moved"
    finally:
        lab.down()
    ok = [t for t in times if t is not None]
    if ok:
        print(f"prefix change -> working new address: median {statistics.median(ok):.2f} s, max {max(ok):.2f} s, "
              f"{len(ok)}/{len(times)} rounds (target < 10 s); HEAD unchanged")
    return 0 if len(ok) == len(times) and max(ok) < 10 else 1


if __name__ == "__main__":
    sys.exit(main())
