#!/usr/bin/env python3
"""Forwarding and commit benchmarks on the lab (needs root; builds its own tg-bench-* namespaces).

Prints, measured in the same run:
  * iperf3 TCP throughput lan → internet (203.0.113.10) through the router with the example
    firewall + NAT, and with bare forwarding (no nft table at all, a return route on the isp
    instead of NAT), as a ratio (target ≥ 0.9);
  * commit → applied latency for the example config (client-side wall time of `commit`, the
    agent's own apply time), median and max over alternating commits.

Runs alternate (firewall, bare, firewall, bare, …) so drift in the machine's load hits both.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.client import AgentClient  # noqa: E402
from backend.lab.lab import Lab, example_config  # noqa: E402


def iperf(lab: Lab, seconds: float) -> float:
    r = lab.run("lan", ["iperf3", "-c", "203.0.113.10", "-t", str(seconds), "-J", "-O", "1"], timeout=seconds + 30)
    if r.returncode != 0:
        raise SystemExit(f"iperf3 failed: {r.stdout[-500:]} {r.stderr[-500:]}")
    return json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"] / 1e9


def commit_latency(lab: Lab, n: int) -> tuple[list[float], list[float]]:
    c = AgentClient(lab.socket)
    base = example_config()
    other = base.replace("dport: 22, action: accept}", "dport: [22, 2222], action: accept}")
    wall, agent = [], []
    for i in range(n):
        text = other if i % 2 == 0 else base
        t0 = time.perf_counter()
        r = c.commit(text, f"bench {i}")
        wall.append((time.perf_counter() - t0) * 1000)
        agent.append(r["seconds"] * 1000)
    return wall, agent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=4, help="length of one iperf3 run")
    ap.add_argument("--rounds", type=int, default=3, help="alternating firewall/bare rounds")
    ap.add_argument("--commits", type=int, default=20)
    args = ap.parse_args()

    state = Path(tempfile.mkdtemp(prefix="talgate-bench-"))
    lab = Lab(prefix="tg-bench-", state=state / "lab")
    lab.down()
    lab.up()
    try:
        wall, agent = commit_latency(lab, args.commits)
        ruleset = AgentClient(lab.socket).render()["nft"]
        lab.stop_agent()  # from here on the bench flips the ruleset itself
        rules_file = state / "ruleset.nft"
        rules_file.write_text(ruleset)

        server = subprocess.Popen(lab.exec_args("isp", ["iperf3", "-s", "-B", "203.0.113.10"]),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        fw, bare = [], []
        try:
            for _ in range(args.rounds):
                lab.run("router", ["nft", "-f", str(rules_file)], check=True)
                lab.run("isp", ["ip", "route", "del", "192.168.10.0/24"])
                fw.append(iperf(lab, args.seconds))
                lab.run("router", ["nft", "delete", "table", "inet", "talgate"], check=True)
                lab.run("isp", ["ip", "route", "replace", "192.168.10.0/24", "via", "198.51.100.2"], check=True)
                bare.append(iperf(lab, args.seconds))
        finally:
            server.terminate()
            server.wait(5)
    finally:
        lab.down()

    fw_m, bare_m = statistics.median(fw), statistics.median(bare)
    print("talgate forwarding benchmark (lab, veth, one TCP stream, same run)")
    print(f"  firewall + NAT   {fw_m:7.2f} Gbit/s   runs {', '.join(f'{x:.2f}' for x in fw)}")
    print(f"  bare forwarding  {bare_m:7.2f} Gbit/s   runs {', '.join(f'{x:.2f}' for x in bare)}")
    ratio = fw_m / bare_m
    print(f"  ratio            {ratio:7.3f}          (target >= 0.9) {'OK' if ratio >= 0.9 else 'BELOW TARGET'}")
    print(f"commit -> applied, example config, {len(wall)} commits")
    print(f"  client wall      median {statistics.median(wall):6.1f} ms   max {max(wall):6.1f} ms")
    print(f"  agent apply      median {statistics.median(agent):6.1f} ms   max {max(agent):6.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
