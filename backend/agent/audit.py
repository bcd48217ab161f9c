"""The audit log: every commit, confirm, rollback, drift repair and refusal, with who and from where.

Append-only JSON lines under the agent's state folder, each line flushed and fsynced before the
operation reports success, so a crash never loses an entry that a client saw acknowledged.

Bounded both ways: one entry is at most MAX_ENTRY bytes (long fields are cut with a marker
saying how much was left out), and ``read`` only reads the tail of the file it needs.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

MAX_FIELD = 1000       # characters of one string field
MAX_ITEMS = 50         # items of one list field (drift items, changes …)
MAX_ENTRY = 8192       # bytes of one JSON line
MAX_READ_ENTRIES = 1000


def _bound(v, depth: int = 0):
    if isinstance(v, str):
        return v if len(v) <= MAX_FIELD else v[:MAX_FIELD] + f"… [truncated {len(v) - MAX_FIELD} characters]"
    if isinstance(v, (int, float, bool)) or v is None:
        return v
    if depth >= 3:
        return _bound(json.dumps(v, default=str)[:MAX_FIELD + 1], depth)
    if isinstance(v, dict):
        items = list(v.items())
        out = {str(k)[:100]: _bound(x, depth + 1) for k, x in items[:MAX_ITEMS]}
        if len(items) > MAX_ITEMS:
            out["…"] = f"[truncated {len(items) - MAX_ITEMS} keys]"
        return out
    if isinstance(v, (list, tuple)):
        out = [_bound(x, depth + 1) for x in v[:MAX_ITEMS]]
        if len(v) > MAX_ITEMS:
            out.append(f"… [truncated {len(v) - MAX_ITEMS} items]")
        return out
    return _bound(str(v), depth)


class Audit:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def record(self, action: str, who: dict | None = None, **detail) -> dict:
        entry = {"time": round(time.time(), 3), "action": action, **(who or {"user": "agent", "via": "agent"}),
                 **{k: v for k, v in detail.items() if v is not None}}
        entry = _bound(entry)
        line = json.dumps(entry, default=str)
        if len(line.encode()) > MAX_ENTRY:
            # Still too big after cutting each field: keep who/what/when, and say so.
            keep = ("time", "action", "user", "unix_user", "uid", "pid", "via", "rev")
            entry = {k: entry[k] for k in keep if k in entry}
            entry["truncated"] = f"entry was {len(line)} bytes, the limit is {MAX_ENTRY}: details dropped"
            line = json.dumps(entry, default=str)
        with self._lock, open(self.path, "a") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
        return entry

    def read(self, n: int = 100) -> list[dict]:
        """The last n entries (at most MAX_READ_ENTRIES), reading only the file's tail."""
        n = max(0, min(int(n), MAX_READ_ENTRIES))
        if n == 0:
            return []
        want = n * (MAX_ENTRY + 1)
        try:
            with open(self.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                start = max(0, size - want)
                f.seek(start)
                data = f.read(want)
        except OSError:
            return []
        lines = data.split(b"\n")
        if start > 0:
            lines = lines[1:]  # the first line may be cut
        out = []
        for line in lines[-n - 1:]:
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a torn last line after a crash
        return out[-n:]
