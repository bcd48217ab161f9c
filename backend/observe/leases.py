"""DHCP leases as Kea wrote them (read-only).

Kea's memfile lease files are append-only CSVs: every change appends a row, and the last row for
an address wins (a row with valid_lifetime 0 is a deleted lease). Kea's lease file cleanup (LFC)
rotates the file into ``NAME.2`` / ``NAME.1`` / ``NAME.completed``; those are read first, in the
order LFC writes them, so the live file's rows win.
"""

from __future__ import annotations

import csv
import re
import time
from pathlib import Path

STATES = {0: "active", 1: "declined", 2: "expired"}


# A DHCP client chooses its host name: control characters (terminal escapes reaching `talgate
# leases` or the console on the admin's terminal) are shown as "?", and the name is capped.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")
MAX_HOSTNAME = 253


def _unescape(s: str) -> str:
    return _CONTROL.sub("?", s.replace("&#x2c", ",").strip())[:MAX_HOSTNAME] if s else ""


def _rows(path: Path):
    for p in (path.with_name(path.name + ".completed"), path.with_name(path.name + ".2"),
              path.with_name(path.name + ".1"), path):
        try:
            with open(p, newline="") as f:
                yield from csv.DictReader(f)
        except OSError:
            continue
        except csv.Error:
            continue


def read_lease_file(path: str | Path, family: int, interfaces: dict[int, str] | None = None,
                    now: float | None = None, include_expired: bool = False) -> list[dict]:
    """Current leases in one Kea lease file. interfaces maps subnet-id → interface name."""
    now = time.time() if now is None else now
    interfaces = interfaces or {}
    last: dict[str, dict] = {}
    for row in _rows(Path(path)):
        addr = (row.get("address") or "").strip()
        if addr:
            last[addr] = row
    out = []
    for addr, row in last.items():
        try:
            valid = int(row.get("valid_lifetime") or 0)
            expire = int(row.get("expire") or 0)
            state = int(row.get("state") or 0)
            subnet = int(row.get("subnet_id") or 0)
        except ValueError:
            continue
        if valid == 0:
            continue  # deleted / released
        st = STATES.get(state, str(state))
        if expire <= now and st == "active":
            st = "expired"
        if st != "active" and not include_expired:
            continue
        if family == 6 and (row.get("lease_type") or "0").strip() not in ("0", ""):
            kind = "prefix"
        else:
            kind = "address"
        lease = {"family": family, "address": addr, "hostname": _unescape(row.get("hostname", "")).rstrip(".") or None,
                 "expires": expire, "interface": interfaces.get(subnet), "state": st, "subnet_id": subnet}
        if family == 4:
            lease["hwaddr"] = (row.get("hwaddr") or "").strip().lower() or None
            lease["client_id"] = (row.get("client_id") or "").strip() or None
        else:
            lease["duid"] = (row.get("duid") or "").strip().lower() or None
            lease["hwaddr"] = (row.get("hwaddr") or "").strip().lower() or None
            lease["type"] = kind
            if kind == "prefix":
                lease["prefix_len"] = int(row.get("prefix_len") or 128)
        out.append(lease)
    out.sort(key=lambda x: (x["family"], x["interface"] or "", _sort_key(x["address"])))
    return out


def _sort_key(addr: str):
    import ipaddress

    try:
        return int(ipaddress.ip_address(addr))
    except ValueError:
        return 0


def read_leases(lease_dir: str | Path, interfaces: dict[int, str] | None = None, now: float | None = None,
                include_expired: bool = False) -> list[dict]:
    """v4 and v6 leases from ``kea-leases4.csv`` / ``kea-leases6.csv`` in lease_dir."""
    d = Path(lease_dir)
    return (read_lease_file(d / "kea-leases4.csv", 4, interfaces, now, include_expired)
            + read_lease_file(d / "kea-leases6.csv", 6, interfaces, now, include_expired))


def lease_signature(lease_dir: str | Path) -> tuple:
    """Cheap change detector: (size, mtime) of the lease files."""
    out = []
    for n in ("kea-leases4.csv", "kea-leases6.csv"):
        try:
            st = (Path(lease_dir) / n).stat()
            out.append((st.st_size, st.st_mtime_ns, st.st_ino))
        except OSError:
            out.append(None)
    return tuple(out)
