"""The audit log: every commit, confirm, rollback, drift repair and refusal, with who and from where.

Append-only JSON lines under the agent's state folder, each line flushed and fsynced before the
operation reports success, so a crash never loses an entry that a client saw acknowledged.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path


class Audit:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def record(self, action: str, who: dict | None = None, **detail) -> dict:
        entry = {"time": round(time.time(), 3), "action": action, **(who or {"user": "agent", "via": "agent"}),
                 **{k: v for k, v in detail.items() if v is not None}}
        line = json.dumps(entry, default=str) + "\n"
        with self._lock, open(self.path, "a") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        return entry

    def read(self, n: int = 100) -> list[dict]:
        try:
            lines = self.path.read_text().splitlines()
        except OSError:
            return []
        out = []
        for line in lines[-n:]:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a torn last line after a crash
        return out
