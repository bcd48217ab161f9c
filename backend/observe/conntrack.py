"""Top talkers from the conntrack table: ``/proc/net/nf_conntrack`` when present, else ``conntrack -L``.

Flows are grouped by original source address. Bytes and packets are summed when the kernel
accounts them (``net.netfilter.nf_conntrack_acct=1``); otherwise only flows are counted.
"""

from __future__ import annotations

import os
import subprocess
import threading

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


# Lines of the conntrack table read per request: a hostile network can fill the table (hundreds of
# thousands of entries, ~200 MB when read whole and parsed) and anyone on the read-only socket can
# ask for the top talkers; past this the answer says "truncated" (~40 MB at most).
MAX_FLOWS = 65536


def _lines(path: str):
    """The table's lines, streamed (never read whole): the proc file, else `conntrack -L` (5 s)."""
    if os.path.exists(path):
        with open(path) as f:
            yield from f
        return
    try:
        p = subprocess.Popen(["conntrack", "-L", "-o", "extended"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    except OSError:
        return
    timer = threading.Timer(5, p.kill)
    timer.start()
    try:
        yield from p.stdout
    finally:
        timer.cancel()
        p.kill()
        p.stdout.close()
        p.wait()


def read_flows(path: str = PROC, limit: int = MAX_FLOWS) -> list[dict]:
    out = []
    for i, line in enumerate(_lines(path)):
        if i >= limit:
            break
        f = parse_line(line)
        if f:
            out.append(f)
    return out


def top_talkers(flows, n: int = 10) -> list[dict]:
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


def top(n: int = 10, path: str = PROC, limit: int = MAX_FLOWS) -> dict:
    """Top talkers of at most ``limit`` flows, streamed and aggregated one line at a time."""
    seen = {"total": 0, "accounting": False, "truncated": False}

    def flows():
        for i, line in enumerate(_lines(path)):
            if i >= limit:
                seen["truncated"] = True
                break
            f = parse_line(line)
            if f:
                seen["total"] += 1
                seen["accounting"] = seen["accounting"] or bool(f["bytes"])
                yield f

    rows = top_talkers(flows(), n)
    return {**seen, "top": rows}
