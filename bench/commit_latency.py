#!/usr/bin/env python3
"""Commit → applied latency for the example config and for a large one (1,000 rules, 50
interfaces, a 100,000-prefix address set), and the ratio to a bare `nft -f` of the same ruleset,
all measured in the same run. Needs root; builds its own tg-bench-* namespaces.

Targets: example < 300 ms, large < 2 s, large-config ratio <= 1.5x a bare `nft -f`, a rule-counter
read < 20 ms with the big set loaded (it dumps our table's rules over netlink, no set element).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from large_config import large_config  # noqa: E402

from backend.client import AgentClient  # noqa: E402
from backend.lab.lab import Lab, _kill, example_config  # noqa: E402
from backend.model import load_config  # noqa: E402
from backend.render.nft import render  # noqa: E402


def timed_commits(client: AgentClient, texts: list[str], n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        client.commit(texts[i % len(texts)], f"bench {i}")
        out.append((time.perf_counter() - t0) * 1000)
    return out


def bare_nft(ns: str, ruleset_text: str, n: int, state: Path) -> list[float]:
    f = state / "bare.nft"
    f.write_text("table inet talgate\ndelete table inet talgate\n" + ruleset_text)
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", str(f)], check=True)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def big_router(ns: str, interfaces: int) -> None:
    subprocess.run(["ip", "netns", "add", ns], check=True)
    lines = ["link set lo up"]
    for i in range(interfaces):
        name = "wan0" if i == 0 else f"lan{i}"
        lines += [f"link add {name} type veth peer name p{i}", f"link set {name} up", f"link set p{i} up"]
    subprocess.run(["ip", "-n", ns, "-batch", "-"], input="\n".join(lines) + "\n", text=True, check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--commits", type=int, default=10)
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--interfaces", type=int, default=50)
    ap.add_argument("--prefixes", type=int, default=100_000)
    args = ap.parse_args()
    state = Path(tempfile.mkdtemp(prefix="talgate-bench-"))
    results = {}

    # example config, in the lab
    lab = Lab(prefix="tg-bench-", state=state / "lab")
    lab.down()
    lab.up()
    try:
        c = AgentClient(lab.socket)
        ex = example_config()
        alt = ex.replace("dport: 22, action: accept}", "dport: [22, 2222], action: accept}")
        results["example"] = (timed_commits(c, [alt, ex], args.commits),
                              bare_nft(lab.ns("router"), render(load_config(ex)).text(), args.commits, state))
    finally:
        lab.down()

    # large config, in a router namespace of its own
    ns = "tg-bench-big"
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    big_router(ns, args.interfaces)
    agent = None
    try:
        big = large_config(args.rules, args.interfaces, args.prefixes)
        big2 = big.replace("dport: 1024\n", "dport: 1023\n", 1)
        (state / "init.yaml").write_text("version: 1\n")
        sock = str(state / "big.sock")
        agent = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "backend.cli", "agent",
                                  "--repo", str(state / "big-repo"), "--state", str(state / "big-state"),
                                  "--socket", sock, "--ro-socket", str(state / "big-ro.sock"),
                                  "--rendered", str(state / "big-rendered"), "--init-from", str(state / "init.yaml")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        c = AgentClient(sock, timeout=120)
        for _ in range(200):
            try:
                c.status()
                break
            except Exception:  # noqa: BLE001 - starting
                time.sleep(0.05)
        t0 = time.perf_counter()
        c.commit(big, "large config")
        first = (time.perf_counter() - t0) * 1000
        results["large"] = (timed_commits(c, [big2, big], args.commits),
                            bare_nft(ns, render(load_config(big)).text(), args.commits, state))
        # Texts the agent has never seen (a user's next edit): nothing parsed is cached.
        fresh = [big.replace("dport: 1024\n", f"dport: {40000 + i}\n", 1) for i in range(args.commits)]
        results["fresh"] = (timed_commits(c, fresh, args.commits), results["large"][1])
        counters_api = []
        for _ in range(args.commits):
            t0 = time.perf_counter()
            n_counters = len(c.counters())
            counters_api.append((time.perf_counter() - t0) * 1000)
        counters_direct = counter_reads(ns, args.commits * 5)
    finally:
        if agent:
            _kill(agent.pid)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(state, ignore_errors=True)

    print("commit -> applied (client wall time: validate, kernel check, git commit, apply)")
    for name, target in (("example", 300), ("large", 2000), ("fresh", 2000)):
        commits, bare = results[name]
        m, b = statistics.median(commits), statistics.median(bare)
        print(f"  {name:<8} median {m:7.1f} ms  max {max(commits):7.1f} ms   bare `nft -f` {b:6.1f} ms   "
              f"ratio {m / b:5.2f}x   target < {target} ms {'OK' if m < target else 'OVER'}")
    print("  (large: two texts in turn, parsed once each; fresh: a text never seen before every time)")
    print(f"  large, first commit (from an empty ruleset): {first:.0f} ms")
    print(f"  large = {args.rules} rules, {args.interfaces} interfaces, a {args.prefixes}-prefix set")
    ratio = statistics.median(results["large"][0]) / statistics.median(results["large"][1])
    print(f"large-config ratio (commit / bare nft -f): {ratio:.2f}x   target <= 1.5 {'OK' if ratio <= 1.5 else 'OVER'}")
    cr = statistics.median(counters_direct)
    print(f"counter read with the {args.prefixes}-prefix set loaded ({n_counters} rule comments): "
          f"{cr:.1f} ms median, {min(counters_direct):.1f} ms min in the agent's netns   target < 20 ms "
          f"{'OK' if cr < 20 else 'OVER'};  via the agent API {statistics.median(counters_api):.1f} ms")
    return 0


def counter_reads(ns: str, n: int) -> list[float]:
    """backend.host.nft.counters() timed n times inside the router namespace, in ms."""
    code = ("import sys, time, json; sys.path.insert(0, sys.argv[1])\n"
            "from backend.host import nft\n"
            "out = []\n"
            "for _ in range(int(sys.argv[2])):\n"
            "    t0 = time.perf_counter(); nft.counters(); out.append((time.perf_counter() - t0) * 1000)\n"
            "print(json.dumps(out))\n")
    r = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code, str(Path(__file__).resolve().parents[1]),
                        str(n)], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


if __name__ == "__main__":
    sys.exit(main())
