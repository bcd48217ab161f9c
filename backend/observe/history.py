"""A ring of 1 s rx/tx samples per interface (300 deep), filled by a sampler thread in the agent.

Each tick reads only ``/proc/net/dev`` (see :mod:`links`), so 200 links at 1 Hz stay far below
1 % of a core. Rates are bytes per second between consecutive samples.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from . import links

DEPTH = 300


class History:
    def __init__(self, depth: int = DEPTH, interval: float = 1.0, reader=links.read_totals):
        self.depth, self.interval, self.reader = depth, interval, reader
        self._lock = threading.Lock()
        self._last: dict[str, tuple[int, int]] = {}
        self._last_t: float | None = None
        self.times: deque[float] = deque(maxlen=depth)
        self.rx: dict[str, deque[float]] = {}
        self.tx: dict[str, deque[float]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        try:
            totals = self.reader()
        except OSError:
            return
        with self._lock:
            if self._last_t is not None:
                dt = max(now - self._last_t, 1e-3)
                self.times.append(now)
                n = len(self.times)
                for name, (rx, tx) in totals.items():
                    prx, ptx = self._last.get(name, (rx, tx))
                    for ring, cur, prev in ((self.rx, rx, prx), (self.tx, tx, ptx)):
                        q = ring.get(name)
                        if q is None:
                            q = ring[name] = deque([0.0] * (n - 1), maxlen=self.depth)
                        q.append(max(cur - prev, 0) / dt)
                for ring in (self.rx, self.tx):
                    for name in list(ring):
                        if name not in totals:
                            del ring[name]
            self._last, self._last_t = totals, now

    def rates(self) -> dict[str, tuple[float, float]]:
        with self._lock:
            return {n: (self.rx[n][-1] if self.rx[n] else 0.0, self.tx[n][-1] if self.tx[n] else 0.0)
                    for n in self.rx}

    def snapshot(self, seconds: int | None = None) -> dict:
        k = self.depth if seconds is None else max(1, min(int(seconds), self.depth))
        with self._lock:
            times = list(self.times)[-k:]
            return {"interval": self.interval, "times": times,
                    "interfaces": {n: {"rx": list(self.rx[n])[-k:], "tx": list(self.tx[n])[-k:]}
                                   for n in sorted(self.rx) if n != "lo"}}

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="talgate-sampler", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        nxt = time.monotonic()
        while not self._stop.is_set():
            self.sample()
            nxt += self.interval
            delay = nxt - time.monotonic()
            if delay < 0:  # fell behind (suspend, load): skip missed ticks
                nxt, delay = time.monotonic(), 0
            self._stop.wait(delay)
