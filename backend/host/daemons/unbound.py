"""Unbound: DNS for the LAN (local names, blocklists, forwarders), reloaded through its control
socket (``reload``). Live lease names are pushed into it (``local_data``) by :class:`LeaseSync`,
so a new lease resolves within seconds without a reload; the sync reports its errors in status."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from ...model import Problem
from ...model.services import dhcp_interfaces
from ...render import unbound as r_unbound
from ..applier import Desired
from . import kea
from .base import DaemonApplier, read_bounded_file

MAX_ANSWER = 64 << 20  # unbound-control answers read at most (list_local_data of many leases is large)


def unbound_control(sock_path: str, command: str, data: list[str] | None = None, timeout: float = 5.0) -> str:
    """One unbound-control command over the unix control socket (control-use-cert: no).
    ``data`` lines are sent after the command (for local_datas / local_datas_remove)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sock_path)
        payload = f"UBCT1 {command}\n"
        if data is not None:
            payload += "".join(line + "\n" for line in data) + "\x04\x0a"
        s.sendall(payload.encode())
        out = b""
        while len(out) < MAX_ANSWER:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    return out[:MAX_ANSWER].decode(errors="replace")


# A blocklist file is read whole and rendered into unbound.conf: the biggest public lists (hosts
# format, ~1 M names) are ~30 MB; more than 64 MiB is refused rather than risk the agent's memory.
MAX_BLOCKLIST_BYTES = 64 * 1024 * 1024


def blocklists(cfg, files: bool = True) -> tuple[dict[str, str], list[Problem]]:
    """{name: text} of the enabled blocklists. files=False (requests on the read-only socket)
    reads none and says so in a warning per list: the agent never opens a path for them."""
    texts, problems = {}, []
    if cfg.dns is None:
        return texts, problems
    for i, b in enumerate(cfg.dns.blocklists):
        if not b.enabled:
            continue
        if not files:
            problems.append(Problem(f"dns.blocklists[{i}].file", "not read on the read-only socket "
                                    "(checked when committed)", "warning"))
            continue
        try:
            texts[b.name] = read_bounded_file(b.file, MAX_BLOCKLIST_BYTES)
        except (OSError, ValueError) as e:
            why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            problems.append(Problem(f"dns.blocklists[{i}].file", f"cannot read {b.file}: {why}"))
    return texts, problems


class UnboundApplier(DaemonApplier):
    name = "unbound"
    file = "unbound.conf"
    section = "dns"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.sync: LeaseSync | None = None

    def render(self, desired: Desired) -> tuple[str | None, list[Problem]]:
        texts, problems = blocklists(desired.cfg, desired.files)
        return r_unbound.render_unbound(desired.cfg, self.d.paths, texts), problems

    def check_command(self, f: Path) -> list[str]:
        return ["unbound-checkconf", str(f)]

    def control_socket(self) -> Path:
        return self.d.host_path(r_unbound.control_socket(self.d.paths))

    def reload(self) -> dict:
        sock = self.control_socket()
        if not sock.exists():
            return {"ok": None, "detail": "not running; it reads the new config when it starts"}
        txt = unbound_control(str(sock), "reload", timeout=15)
        if self.sync:
            self.sync.pushed.clear()
        return {"ok": txt.strip().startswith("ok"), "detail": txt.strip()[:200]}

    def probe(self) -> str:
        try:
            txt = unbound_control(str(self.control_socket()), "status", timeout=1)
        except OSError:
            return "not answering"
        return "running" if "is running" in txt else "unknown"

    def after_apply(self, desired: Desired) -> None:
        cfg = desired.cfg
        want = (cfg.dns is not None and cfg.dns.enabled and cfg.dns.lease_names
                and bool(dhcp_interfaces(cfg, 4) or dhcp_interfaces(cfg, 6)))
        if want and self.sync is None:
            self.sync = LeaseSync(self)
            self.sync.start()
        if self.sync is not None:
            self.sync.wake()

    def status_extra(self) -> dict:
        if self.sync is None:
            return {}
        return {"lease_names": len(self.sync.pushed), "lease_sync": self.sync.report()}


class LeaseSync(threading.Thread):
    """Publishes live lease names in Unbound's LAN zone through its control socket. A failing
    round is recorded (``last_error``, ``last_error_time``, ``errors``) and shown in status; the
    thread keeps going and the next good round records ``last_ok``."""

    def __init__(self, applier: UnboundApplier, interval: float = 1.0):
        super().__init__(daemon=True, name="lease-names")
        self.a = applier
        self.interval = interval
        self.pushed: set[str] = set()
        self._wake = threading.Event()
        self.last_error: str | None = None
        self.last_error_time: float | None = None
        self.last_ok: float | None = None
        self.errors = 0

    def wake(self) -> None:
        self.pushed.clear()
        self._wake.set()

    def round(self) -> bool:
        """One sync; False (and the error recorded) when it failed."""
        try:
            self.sync()
        except Exception as e:  # noqa: BLE001 - keep syncing, but say why it failed
            self.errors += 1
            self.last_error = f"{type(e).__name__}: {e}"[:300]
            self.last_error_time = time.time()
            return False
        self.last_ok = time.time()
        return True

    def report(self) -> dict:
        return {"last_ok": self.last_ok, "last_error": self.last_error, "last_error_time": self.last_error_time,
                "errors": self.errors}

    def run(self) -> None:  # pragma: no cover - exercised by the lab tests
        while True:
            self.round()
            self._wake.wait(self.interval)
            self._wake.clear()

    def desired(self) -> set[str]:
        cfg = self.a.d.cfg
        if cfg is None or cfg.dns is None or not cfg.dns.enabled or not cfg.dns.lease_names:
            return set()
        leases = [r_unbound.LeaseName(x["hostname"], x["address"], x.get("interface"))
                  for x in kea.read_leases(self.a.d, cfg)
                  if x["hostname"] and x.get("type", "address") == "address"]
        static = set(r_unbound.host_records(cfg, []))
        rrs = set()
        for fqdn, addr in r_unbound.host_records(cfg, leases):
            if (fqdn, addr) not in static:
                rrs.update(r_unbound.record_lines(fqdn, addr, ttl=60))
        return rrs

    def sync(self) -> None:
        sock = self.a.control_socket()
        if not sock.exists():
            self.pushed.clear()
            return
        want = self.desired()
        have = unbound_control(str(sock), "list_local_data", timeout=5)
        present = {" ".join(line.split()) for line in have.splitlines()}
        missing = [rr for rr in want if " ".join(rr.split()) not in present]
        stale = self.pushed - want
        for rr in stale:
            name = rr.split()[0]
            if not any(w.split()[0] == name for w in want):
                unbound_control(str(sock), f"local_data_remove {name}")
        for rr in missing:
            unbound_control(str(sock), f"local_data {rr}")
        self.pushed = want
