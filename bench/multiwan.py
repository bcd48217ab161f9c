#!/usr/bin/env python3
"""Multi-WAN failover and failback times on the multiwan lab (needs root; run it in a private
world, see /work/notes/PREAMBLE.md; builds its own tg-XXXX-* namespaces).

A prober in tg-lan opens a new TCP connection to inet's whoami server (203.0.113.10:80) every
20 ms and notes the source address the server saw (198.51.100.2: isp, 100.64.0.2: isp2). Each
round: isp stops forwarding (its link stays up) → time until a new connection arrives by isp2
("failover"); isp forwards again → time until new connections use isp again ("failback", which
includes the hold-down). Prints every round and the median of N rounds (default 5).

    python bench/multiwan.py [--rounds 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import queue
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.lab.lab import Lab, lab_config  # noqa: E402
from backend.lab.mwan import SOURCE, set_forwarding  # noqa: E402

PROBER = r"""
import socket, sys, time
while True:
    t = time.time()
    try:
        with socket.create_connection(("203.0.113.10", 80), timeout=0.2) as s:
            src = s.recv(200).decode().split()[-1]
    except OSError:
        src = "fail"
    print(f"{t:.4f} {src}", flush=True)
    time.sleep(0.02)
"""


def run(rounds: int) -> dict:
    state = Path(tempfile.mkdtemp(prefix="tg-bench-mwan-"))
    lab = Lab(prefix=f"tg-{secrets.token_hex(2)}-", state=state / "state")
    lab.up(lab_config("multiwan.yaml"))
    lines: queue.Queue = queue.Queue()
    prober = subprocess.Popen(lab.exec_args("lan", [sys.executable, "-u", "-c", PROBER]), stdout=subprocess.PIPE,
                              text=True)
    threading.Thread(target=lambda: [lines.put(x.split()) for x in prober.stdout], daemon=True).start()

    def first(src: str, after: float, within: float) -> float | None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                t, s = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if float(t) >= after and s == src:
                return float(t) - after
        return None

    out = {"failover": [], "failback": [], "config": "backend/lab/multiwan.yaml"}
    try:
        assert first(SOURCE["isp"][0], time.time(), 20) is not None, "lan does not reach inet by isp"
        for i in range(rounds):
            time.sleep(1.0)
            t0 = time.time()
            set_forwarding(lab, "isp", False)
            fo = first(SOURCE["isp2"][0], t0, 20)
            time.sleep(1.0)
            t1 = time.time()
            set_forwarding(lab, "isp", True)
            fb = first(SOURCE["isp"][0], t1, 30)
            print(f"round {i + 1}: failover {fo if fo is None else f'{fo:.2f} s'}, "
                  f"failback {fb if fb is None else f'{fb:.2f} s'} (includes the hold-down)", file=sys.stderr)
            out["failover"].append(fo)
            out["failback"].append(fb)
    finally:
        prober.kill()
        lab.down()
    for k in ("failover", "failback"):
        got = [x for x in out[k] if x is not None]
        out[f"{k}_median"] = round(statistics.median(got), 3) if len(got) == rounds else None
        out[f"{k}_max"] = round(max(got), 3) if got else None
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    r = run(a.rounds)
    if a.json:
        print(json.dumps(r, indent=2))
    else:
        print(f"failover (isp stops forwarding → new connections by isp2): median {r['failover_median']} s, "
              f"max {r['failover_max']} s over {a.rounds} rounds")
        print(f"failback (isp forwards again → new connections by isp, after the hold-down): median "
              f"{r['failback_median']} s, max {r['failback_max']} s")
    return 0 if r["failover_median"] is not None and r["failover_median"] < 3.0 else 1


if __name__ == "__main__":
    sys.exit(main())
