"""WAN health checks: a fact source (``Facts.wan_health``), not a commit.

One prober thread per WAN member with a ``check`` sends its probes with that WAN's mark and the
probe bit (``SO_MARK``; backend/host/rules.py keeps their ``ip rule`` while the WAN is down), so
every uplink is probed through itself, the active one or not. ICMP replies count only when they
come from the target with our identifier, our sequence number and our random payload (a spoofed
reply is ignored); TCP targets count a completed connect, HTTP targets a status below 400.

A member's state: ``unknown`` (no verdict yet; healthy), ``up``, ``down``, ``recovering`` (passing
again, waiting out ``hold_down``; still down). When a member's health changes the monitor sets the
facts (the pipeline converges: its rule and the failover table change), deletes the conntrack
entries pinned to a WAN that went down (their next packet starts over on the healthy uplink, with
its NAT; the kernel drops masqueraded IPv4 entries whose output link changed by itself, but routed
IPv6 and SNAT flows would keep leaving with the dead uplink's addresses) and writes an audit event
(``wan-down`` / ``wan-recovering`` / ``wan-up``).
Established flows on the surviving uplink are never touched: failback only moves new connections.

A prober that dies is restarted by the monitor's watchdog and its WAN goes back to ``unknown``:
without a checker the config decides, so no route stays withdrawn by a checker that is gone.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import select
import socket
import statistics
import struct
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from ..model.wan import MARK_MASK, PROBE_BIT, HealthCheck, Target, plan_marks

log = logging.getLogger("talgate.wan")
SO_MARK = getattr(socket, "SO_MARK", 36)
HEALTHY = ("unknown", "up")


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


class Probes:
    """The probes of one WAN (one mark). Stateless apart from the ICMP identifier and sequence."""

    def __init__(self, mark: int):
        self.mark = mark
        self.ident = int.from_bytes(os.urandom(2), "big")
        self.seq = int.from_bytes(os.urandom(2), "big")
        self._lock = threading.Lock()

    def _sock(self, fam: int, kind: int, proto: int = 0) -> socket.socket:
        s = socket.socket(fam, kind, proto)
        try:
            s.setsockopt(socket.SOL_SOCKET, SO_MARK, self.mark)
        except BaseException:
            s.close()
            raise
        return s

    def probe(self, t: Target, timeout: float) -> float | None:
        """RTT in ms, or None (lost, refused, timed out, spoofed)."""
        try:
            if t.kind == "icmp":
                return self.icmp(t.address, timeout)
            return self.tcp(t.address, t.port, timeout, http_path=t.path if t.kind == "http" else None)
        except OSError:
            return None

    def icmp(self, addr, timeout: float) -> float | None:
        v6 = addr.version == 6
        with self._lock:
            self.seq = (self.seq + 1) & 0xFFFF
            seq = self.seq
        nonce = os.urandom(16)
        fam, proto, req, rep = ((socket.AF_INET6, socket.IPPROTO_ICMPV6, 128, 129) if v6
                                else (socket.AF_INET, socket.IPPROTO_ICMP, 8, 0))
        hdr = struct.pack("!BBHHH", req, 0, 0, self.ident, seq)
        pkt = hdr + nonce
        if not v6:  # the kernel computes ICMPv6 checksums of raw sockets
            pkt = struct.pack("!BBHHH", req, 0, _checksum(pkt), self.ident, seq) + nonce
        with self._sock(fam, socket.SOCK_RAW, proto) as s:
            t0 = time.monotonic()
            s.sendto(pkt, (str(addr), 0))
            deadline = t0 + timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                r, _, _ = select.select([s], [], [], left)
                if not r:
                    return None
                data, src = s.recvfrom(2048)
                if not v6:
                    ihl = (data[0] & 0x0F) * 4 if data else 0
                    data = data[ihl:]
                if len(data) < 8 + len(nonce):
                    continue
                typ, _code, _ck, ident, rseq = struct.unpack("!BBHHH", data[:8])
                try:
                    same_src = ipaddress.ip_address(src[0].split("%")[0]) == addr
                except ValueError:
                    same_src = False
                if typ == rep and same_src and ident == self.ident and rseq == seq and data[8:8 + len(nonce)] == nonce:
                    return (time.monotonic() - t0) * 1000

    def tcp(self, addr, port: int, timeout: float, http_path: str | None = None) -> float | None:
        fam = socket.AF_INET6 if addr.version == 6 else socket.AF_INET
        with self._sock(fam, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            t0 = time.monotonic()
            s.connect((str(addr), port))
            if http_path is None:
                return (time.monotonic() - t0) * 1000
            host = f"[{addr}]" if addr.version == 6 else str(addr)
            s.sendall(f"GET {http_path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: talgate-health\r\n\r\n".encode())
            line = s.recv(256).split(b"\r\n", 1)[0].split()
            if len(line) >= 2 and line[0].startswith(b"HTTP/") and line[1].isdigit() and int(line[1]) < 400:
                return (time.monotonic() - t0) * 1000
            return None


class Health:
    """The verdict of one WAN from its rounds (pure: the clock is passed in; unit-tested)."""

    def __init__(self, check: HealthCheck):
        self.check = check
        self.state = "unknown"
        self.since = time.time()
        self.rounds: deque[list[float | None]] = deque(maxlen=check.window)
        self.fail_streak = 0
        self.ok_streak = 0
        self.recover_since: float | None = None

    @property
    def healthy(self) -> bool:
        return self.state in HEALTHY

    def loss(self) -> float | None:
        probes = [x for r in self.rounds for x in r]
        return 100.0 * sum(x is None for x in probes) / len(probes) if probes else None

    def rtt(self) -> float | None:
        got = [x for r in self.rounds for x in r if x is not None]
        return statistics.median(got) if got else None

    def feed(self, results: list[float | None], now: float) -> str | None:
        """One round's RTTs (None: lost). Returns the new state when it changed."""
        c = self.check
        self.rounds.append(results)
        passed = sum(x is not None for x in results) >= c.need
        full = len(self.rounds) == self.rounds.maxlen
        loss, rtt = self.loss(), self.rtt()
        degraded = (full and loss is not None and loss > c.max_loss) or (
            c.max_rtt is not None and rtt is not None and rtt > c.max_rtt)
        old = self.state
        if self.healthy:
            self.fail_streak = 0 if passed else self.fail_streak + 1
            if self.fail_streak >= c.down_after or degraded:
                self._to("down", now)
                self.ok_streak, self.recover_since = 0, None
            elif old == "unknown" and passed:
                self._to("up", now)
        else:
            if not passed or degraded:
                self.ok_streak, self.recover_since = 0, None
                if self.state != "down":
                    self._to("down", now)
            else:
                self.ok_streak += 1
                if self.ok_streak >= c.up_after:
                    if self.recover_since is None:
                        self.recover_since = now
                        self._to("recovering", now)
                    if now - self.recover_since >= c.hold_down:
                        self.fail_streak = 0
                        self._to("up", now)
        return self.state if self.state != old else None

    def _to(self, state: str, now: float) -> None:
        self.state = state
        self.since = time.time()


class Member:
    """One WAN's prober thread."""

    def __init__(self, monitor: WanMonitor, name: str, interface: str, mark: int, check: HealthCheck):
        self.monitor, self.name, self.interface, self.check = monitor, name, interface, check
        self.probes = Probes(mark | PROBE_BIT)
        self.health = Health(check)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True, name=f"wan-{name}")
        self.last: list[tuple[str, float | None]] = []
        self.crashed: str | None = None
        self.pool = ThreadPoolExecutor(max_workers=len(check.targets), thread_name_prefix=f"wan-{name}-probe")

    def start(self) -> Member:
        self.thread.start()
        return self

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                t0 = time.monotonic()
                self.monitor.fault(f"wan.{self.name}.round")
                results = list(self.pool.map(lambda t: self.probes.probe(t, self.check.timeout), self.check.targets))
                self.last = [(t.label(), r) for t, r in zip(self.check.targets, results, strict=True)]
                changed = self.health.feed(results, time.monotonic())
                if changed is not None:
                    self.monitor.changed(self, changed)
                self.stop.wait(max(0.0, self.check.interval - (time.monotonic() - t0)))
        except Exception as e:  # noqa: BLE001 - the watchdog restarts us
            self.crashed = f"{type(e).__name__}: {e}"
            log.error("wan %s: health checker crashed: %s", self.name, self.crashed)

    def alive(self) -> bool:
        return self.thread.is_alive()

    def close(self) -> None:
        self.stop.set()
        self.pool.shutdown(wait=False, cancel_futures=True)

    def status(self, active: bool) -> dict:
        h = self.health
        rtt, loss = h.rtt(), h.loss()
        return {"interface": self.interface, "state": h.state, "healthy": h.healthy, "active": active,
                "since": round(h.since, 3), "rtt_ms": None if rtt is None else round(rtt, 3),
                "loss_pct": None if loss is None else round(loss, 1), "checked": True,
                "targets": [{"target": lbl, "rtt_ms": None if r is None else round(r, 3)} for lbl, r in self.last]}


class WanMonitor:
    """Owns the probers of HEAD's ``wans``, feeds ``Facts.wan_health`` to the pipeline."""

    def __init__(self, pipeline, interval: float = 0.25):
        self.p = pipeline
        self.interval = interval
        self.members: dict[str, Member] = {}
        self._key: str | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self.restarts = 0
        self.transitions = 0

    def fault(self, stage: str) -> None:
        self.p._fault(stage)

    # -- the config ---------------------------------------------------------------------------

    def _cfg(self):
        from .pipeline import validate_text

        head = self.p.applied.rev
        if head is None:
            return None
        try:
            return validate_text(self.p.repo.read(head))[0]
        except Exception:  # noqa: BLE001 - a revision not in this repo (emptied, replaced): no WANs
            return None

    def sync(self) -> None:
        """Probers = the applied config's checked members; dead probers restarted (their WAN back to
        unknown); facts of members that have no prober any more dropped."""
        cfg = self._cfg()
        with self._lock:
            wanted: dict[str, tuple] = {}
            if cfg is not None and cfg.wans:
                slots = plan_marks(cfg)
                for name, m in cfg.wans.members.items():
                    if m.check is not None:
                        wanted[name] = (m.interface, slots[f"wan:{name}"].mark, m.check)
            key = repr(sorted((n, i, mk, c.model_dump_json()) for n, (i, mk, c) in wanted.items()))
            if key != self._key:
                for mem in self.members.values():
                    mem.close()
                self.members = {n: Member(self, n, i, mk, c).start() for n, (i, mk, c) in wanted.items()}
                self._key = key
            for n, mem in list(self.members.items()):
                if not mem.alive() and not mem.stop.is_set():
                    self.restarts += 1
                    why = mem.crashed or "exited"
                    log.warning("wan %s: restarting its health checker (%s)", n, why)
                    mem.close()
                    fresh = Member(self, n, mem.interface, mem.probes.mark & MARK_MASK, mem.check)
                    fresh.crashed = why
                    self.members[n] = fresh.start()
                    self._record("wan-checker-restart", n, mem.interface, reason=why)
            self._publish()

    # -- facts --------------------------------------------------------------------------------

    def health(self) -> dict[str, bool]:
        return {m.interface: m.health.healthy for m in self.members.values()}

    def _publish(self) -> list[str]:
        """Set the facts when they differ from the pipeline's; returns the interfaces that went down."""
        want = self.health()
        cur = dict(self.p.facts.wan_health)
        if want == cur:
            return []
        went_down = [i for i, ok in want.items() if not ok and cur.get(i, True)]
        try:
            with self.p.lock:
                self.p.set_facts(dataclasses.replace(self.p.facts, wan_health=want))
        except Exception as e:  # noqa: BLE001 - the drift loop retries under the same facts
            self.p.last_error = f"WAN failover: applying the new health facts failed: {e}"
            log.error("%s", self.p.last_error)
        for itf in went_down:
            self._flush(itf)
        return went_down

    def _flush(self, interface: str) -> None:
        """Delete the conntrack entries pinned to the WAN on interface (mark under MARK_MASK)."""
        mem = next((m for m in self.members.values() if m.interface == interface), None)
        if mem is None:
            return
        mark = mem.probes.mark & MARK_MASK
        try:
            from pyroute2 import Conntrack

            with Conntrack() as ct:  # family 0: IPv4 and IPv6 entries alike
                ct.flush(mark=mark, mark_mask=MARK_MASK)
        except Exception as e:  # noqa: BLE001 - a failed flush leaves stale flows, not a stuck route
            log.warning("wan %s: conntrack flush of mark %#x failed: %s", mem.name, mark, e)

    def changed(self, mem: Member, state: str) -> None:
        self.transitions += 1
        log.warning("wan %s (%s): %s", mem.name, mem.interface, state)
        with self._lock:
            if self.members.get(mem.name) is not mem:
                return
            went_down = self._publish()
        self._record(f"wan-{state}", mem.name, mem.interface, rtt_ms=mem.health.rtt(), loss_pct=mem.health.loss(),
                     flushed=bool(went_down) or None)

    def _record(self, action: str, name: str, interface: str, **detail) -> None:
        try:
            self.p.audit.record(action, {"user": "agent", "via": "wan-health"}, wan=name, interface=interface,
                                **{k: v for k, v in detail.items() if v is not None})
        except OSError as e:
            log.warning("audit: %s", e)

    # -- running ------------------------------------------------------------------------------

    def loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sync()
            except Exception as e:  # noqa: BLE001 - the watchdog must survive anything
                log.exception("wan monitor: %s", e)

    def start(self) -> WanMonitor:
        threading.Thread(target=self.loop, daemon=True, name="wan-monitor").start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            for m in self.members.values():
                m.close()

    def status(self) -> dict:
        """{member: {interface, state, healthy, active, rtt_ms, loss_pct, …}} for every WAN of the
        applied config (members without a check: always healthy)."""
        from ..host.rules import active_members

        cfg = self._cfg()
        if cfg is None or not cfg.wans:
            return {}
        active = set(active_members(cfg, self.p.facts))
        out = {}
        members = dict(self.members)  # no lock: status may be asked while the pipeline's lock is held
        if True:
            for name, m in cfg.wans.members.items():
                mem = members.get(name)
                if mem is not None:
                    out[name] = mem.status(name in active)
                    if mem.crashed:
                        out[name]["checker_restarted"] = mem.crashed
                else:
                    out[name] = {"interface": m.interface, "state": "unchecked", "healthy": True,
                                 "active": name in active, "rtt_ms": None, "loss_pct": None, "checked": False}
        return out
