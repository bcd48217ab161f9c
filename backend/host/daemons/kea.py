"""Kea DHCPv4 and DHCPv6: two servers, two rendered files, reloaded through their control sockets
(``config-reload``). The lease files Kea keeps are read here too (``leases``)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from ...model import Problem
from ...render import kea as r_kea
from ..applier import Desired, HostContext
from .base import DaemonApplier, DaemonContext


def kea_command(sock_path: str, command: str, arguments: dict | None = None, timeout: float = 5.0) -> dict:
    """One command over Kea's unix control socket; returns the response object."""
    msg = {"command": command}
    if arguments is not None:
        msg["arguments"] = arguments
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sock_path)
        s.sendall(json.dumps(msg).encode())
        buf = b""
        resp = None
        while len(buf) < 1 << 22:  # bounded: Kea's answers to these commands are small
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            try:
                resp = json.loads(buf)
                break
            except ValueError:
                continue
    if resp is None:
        resp = json.loads(buf or b"{}")
    if isinstance(resp, list):
        resp = resp[0] if resp else {}
    return resp


def subnet_interfaces(cfg) -> dict[int, str]:
    """Kea subnet id -> interface, as the renderer numbered them."""
    out: dict[int, str] = {}
    if cfg is None:
        return out
    for ifname, itf in cfg.interfaces.items():
        for a in [*itf.ipv4, *itf.ipv6]:
            out[r_kea.subnet_id(ifname, str(a.network))] = ifname
    return out


def lease_dir(d: DaemonContext) -> Path | None:
    return None if d.rendered_dir is None else d.state_dir / "kea"


def read_leases(d: DaemonContext, cfg=None) -> list[dict]:
    from ...observe.leases import read_leases as _read

    ld = lease_dir(d)
    if ld is None:
        return []
    return _read(ld, subnet_interfaces(cfg if cfg is not None else d.cfg))


class KeaApplier(DaemonApplier):
    section = "dhcp"

    def __init__(self, ctx: HostContext | DaemonContext, version: int):
        super().__init__(ctx)
        self.version = version
        self.name = f"kea-dhcp{version}"
        self.file = f"kea-dhcp{version}.conf"

    def render(self, desired: Desired) -> tuple[str | None, list[Problem]]:
        fn = r_kea.render_dhcp4 if self.version == 4 else r_kea.render_dhcp6
        return fn(desired.cfg, self.d.paths), []

    def check_command(self, f: Path) -> list[str]:
        return [self.name, "-t", str(f)]

    def check_env(self, f: Path) -> dict:
        return {"KEA_PIDFILE_DIR": str(f.parent), "KEA_LOCKFILE_DIR": str(f.parent)}

    def run_dir(self) -> Path:
        # Kea's two servers share run/kea in the pods (manifests/services/kea).
        return self.d.run_dir / "kea" if self.d.on_pods else self.d.run_dir / self.name

    def dirs(self) -> None:
        super().dirs()
        (self.d.state_dir / "kea").mkdir(parents=True, exist_ok=True)

    def _socket(self) -> Path:
        return self.d.host_path(r_kea.control_socket(self.d.paths, self.version))

    def reload(self) -> dict:
        sock = self._socket()
        if not sock.exists():
            return {"ok": None, "detail": "not running; it reads the new config when it starts"}
        resp = kea_command(str(sock), "config-reload")
        return {"ok": resp.get("result") == 0, "detail": resp.get("text")}

    def probe(self) -> str:
        try:
            r = kea_command(str(self._socket()), "version-get", timeout=1)
        except OSError:
            return "not answering"
        return "running" if r.get("result") == 0 else "unknown"

    def leases(self) -> list[dict]:
        return read_leases(self.d)


def appliers(ctx: HostContext) -> list[KeaApplier]:
    return [KeaApplier(ctx, 4), KeaApplier(ctx, 6)]
