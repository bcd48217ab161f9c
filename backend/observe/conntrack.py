"""Top talkers from the conntrack table: ``/proc/net/nf_conntrack`` when present, else ``conntrack -L``.

Flows are grouped by original source address. Bytes and packets are summed when the kernel
accounts them (``net.netfilter.nf_conntrack_acct=1``); otherwise only flows are counted.
"""

from __future__ import annotations

import os
import subprocess

PROC = "/proc/net/nf_conntrack"


def parse_line(line: str) -> dict | None:
    """One ``-o extended`` / ``/proc/net/nf_conntrack`` line → {src, dst, proto, dport, bytes, packets}."""
    parts = line.split()
    if len(parts) < 4:
        return None
    kv: dict[str, list[str]] = {}
    for p in parts:
        k, sep, v = p.partition("=")
        if sep:
            kv.setdefault(k, []).append(v)
    if "src" not in kv or "dst" not in kv:
        return None
    proto = parts[2] if parts[0] in ("ipv4", "ipv6") else parts[0]
    return {"src": kv["src"][0], "dst": kv["dst"][0], "proto": proto,
            "dport": int(kv["dport"][0]) if "dport" in kv else None,
            "bytes": sum(int(v) for v in kv.get("bytes", [])),
            "packets": sum(int(v) for v in kv.get("packets", []))}


def read_flows(path: str = PROC) -> list[dict]:
    if os.path.exists(path):
        with open(path) as f:
            lines = f.read().splitlines()
    else:
        try:
            r = subprocess.run(["conntrack", "-L", "-o", "extended"], capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            return []
        lines = r.stdout.splitlines()
    return [f for f in map(parse_line, lines) if f]


def top_talkers(flows: list[dict], n: int = 10) -> list[dict]:
    by: dict[str, dict] = {}
    for f in flows:
        d = by.setdefault(f["src"], {"src": f["src"], "flows": 0, "bytes": 0, "packets": 0, "peers": set()})
        d["flows"] += 1
        d["bytes"] += f["bytes"]
        d["packets"] += f["packets"]
        d["peers"].add(f["dst"])
    rows = sorted(by.values(), key=lambda d: (-d["bytes"], -d["flows"], d["src"]))[:n]
    for d in rows:
        d["peers"] = len(d["peers"])
    return rows


def top(n: int = 10) -> dict:
    flows = read_flows()
    return {"total": len(flows), "accounting": any(f["bytes"] for f in flows), "top": top_talkers(flows, n)}
