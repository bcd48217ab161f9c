"""BGP peer and OSPF neighbor state for ``talgate status`` and the console, without asking FRR on
every poll: a background thread of the agent asks vtysh every :data:`REFRESH` seconds (each call
bounded by :data:`TIMEOUT` seconds and :data:`MAX_BYTES` of output) and keeps the answer; status
(on either socket) only copies the last answer, so it never waits for FRR.

One entry per session: ``{"protocol": "bgp"|"ospf"|"ospfv3", "peer", "state", "uptime",
"received", "accepted", "sent", "interface", "remote_as"}`` (BGP prefix counts summed over the
address families; OSPF has no prefix counts). ``received`` (before the import policy) is known
only where FRR keeps the routes it refused (``soft-reconfiguration inbound``, which talgate does
not render: it costs a copy of every route received), so it is usually None; ``accepted`` is what
passed the import prefix-list. At most :data:`MAX_SESSIONS` entries.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import threading
import time
from pathlib import Path

log = logging.getLogger("talgate.routing")

REFRESH = 5.0
TIMEOUT = 4.0
MAX_BYTES = 4 << 20
MAX_SESSIONS = 64


def vtysh_json(vty: Path, cmd: str, timeout: float = TIMEOUT) -> dict | None:
    """vtysh's JSON answer to cmd, None when it fails, times out or says too much."""
    try:
        p = subprocess.Popen(["vtysh", "--vty_socket", str(vty), "-c", cmd], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True)
    except OSError:
        return None
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if not select.select([p.stdout], [], [], left)[0]:
                continue
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                break
            out += chunk
            if len(out) > MAX_BYTES:
                return None
        if p.wait(max(0.01, deadline - time.monotonic())) != 0:
            return None
    except subprocess.TimeoutExpired:
        return None
    finally:
        if p.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(p.pid, signal.SIGKILL)  # vtysh and anything it started (they hold the pipe)
            p.wait()
        p.stdout.close()
    try:
        doc = json.loads(out or b"{}")
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _int(v) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def bgp_sessions(doc: dict) -> list[dict]:
    """``show bgp neighbors json`` → sessions."""
    out = []
    for peer, n in doc.items():
        if not isinstance(n, dict) or "bgpState" not in n:
            continue
        received = accepted = sent = None
        for info in (n.get("addressFamilyInfo") or {}).values():
            if not isinstance(info, dict):
                continue
            acc = _int(info.get("acceptedPrefixCounter"))
            if acc is not None:
                accepted = (accepted or 0) + acc
            snt = _int(info.get("sentPrefixCounter"))
            if snt is not None:
                sent = (sent or 0) + snt
            rcv = _int(info.get("prefixReceivedCount", info.get("prefixCounter")))
            if rcv is not None:
                received = (received or 0) + rcv
        up = n.get("bgpTimerUpString") if n.get("bgpState") == "Established" else None
        out.append({"protocol": "bgp", "peer": str(peer)[:64], "state": str(n["bgpState"])[:32],
                    "uptime": str(up)[:32] if up else None, "received": received, "accepted": accepted,
                    "sent": sent, "interface": None, "remote_as": _int(n.get("remoteAs"))})
    return out


def ospf_sessions(doc: dict, protocol: str) -> list[dict]:
    """``show ip ospf neighbor json`` (ospf) / ``show ipv6 ospf6 neighbor json`` (ospfv3) → sessions."""
    out = []
    nbrs = doc.get("neighbors")
    if isinstance(nbrs, dict):  # ospf: {router id: [{...}]}
        items = [(rid, n) for rid, ns in nbrs.items() for n in (ns if isinstance(ns, list) else [ns])]
    elif isinstance(nbrs, list):  # ospf6: [{"neighborId": ...}]
        items = [(n.get("neighborId"), n) for n in nbrs if isinstance(n, dict)]
    else:
        items = []
    for rid, n in items:
        if not isinstance(n, dict):
            continue
        state = n.get("nbrState") or n.get("state") or "?"
        up = n.get("upTime") or n.get("duration")
        out.append({"protocol": protocol, "peer": str(rid)[:64], "state": str(state)[:32],
                    "uptime": str(up)[:32] if up else None, "received": None, "accepted": None, "sent": None,
                    "interface": str(n.get("ifaceName") or n.get("interfaceName") or "")[:32] or None,
                    "remote_as": None})
    return out


def read_sessions(vty: Path) -> tuple[list[dict], list[str]]:
    """Every session FRR knows, and what could not be read."""
    sessions, errors = [], []
    for cmd, parse in (("show bgp neighbors json", bgp_sessions),
                       ("show ip ospf neighbor json", lambda d: ospf_sessions(d, "ospf")),
                       ("show ipv6 ospf6 neighbor json", lambda d: ospf_sessions(d, "ospfv3"))):
        doc = vtysh_json(vty, cmd)
        if doc is None:
            errors.append(f"{cmd}: no answer within {TIMEOUT:.0f} s")
            continue
        sessions += parse(doc)
    return sessions[:MAX_SESSIONS], errors


class RoutingState:
    """The agent's cache of :func:`read_sessions`, refreshed by a daemon thread."""

    def __init__(self, vty_of, refresh: float = REFRESH, reader=read_sessions):
        self._vty_of = vty_of  # () -> the vty folder, or None when FRR is not running
        self.refresh = refresh
        self._reader = reader
        self._lock = threading.Lock()
        self._snap: dict | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def snapshot(self) -> dict | None:
        """The last answer (never blocks on FRR): {"time", "sessions", "errors"}, None when FRR is
        not running (or was not asked yet)."""
        with self._lock:
            return None if self._snap is None else json.loads(json.dumps(self._snap))

    def poll(self) -> None:
        vty = self._vty_of()
        if vty is None or not Path(vty).exists():
            snap = None
        else:
            sessions, errors = self._reader(Path(vty))
            snap = {"time": round(time.time(), 3), "sessions": sessions, "errors": errors}
        with self._lock:
            self._snap = snap

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception as e:  # noqa: BLE001 - the cache keeps its last answer
                log.debug("routing state: %s", e)
            self._stop.wait(self.refresh)

    def start(self) -> RoutingState:
        self._thread = threading.Thread(target=self._run, name="routing-state", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
