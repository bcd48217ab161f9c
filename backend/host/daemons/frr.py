"""FRR (OSPF, OSPFv3, BGP): ``RENDERED/frr/frr.conf`` from ``routing:``, checked by FRR's own
parser (``vtysh -C -f``), applied to the running daemons with ``frr-reload.py --reload`` through
their vty sockets in ``RUN/frr`` (the lab's runner: backend/lab/frr_run.py). No routing section:
no file, and the runner is stopped. Routes FRR learns go to the kernel through zebra (protocols
bgp/ospf); the network applier owns only its own protocol, so it never touches them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ...model import Problem
from ...render.frr import render_frr
from ..applier import Desired
from .base import DaemonApplier

FRR_RELOAD = "/usr/lib/frr/frr-reload.py"


def vty_dir(d) -> Path:
    """The daemons' vty sockets: RUN/frr/sock (a link the lab runner makes to its socket folder)."""
    return d.run_dir / "frr" / "sock"


def vtysh_args(d) -> list[str]:
    return ["vtysh", "--vty_socket", str(vty_dir(d))]


def running(d) -> bool:
    """The lab runner loaded the config and its daemons answer on their vty sockets."""
    return (d.run_dir / "frr" / "loaded").exists() and (vty_dir(d) / "zebra.vty").exists()


class FrrApplier(DaemonApplier):
    name = "frr"
    file = "frr.conf"
    section = "routing"

    def render(self, desired: Desired) -> tuple[str | None, list[Problem]]:
        return render_frr(desired.cfg), []

    def check_command(self, f: Path) -> list[str]:
        return ["vtysh", "-C", "-f", str(f)]

    def reload(self) -> dict:
        if not self.path.exists():
            return {"ok": None, "detail": "routing is off; the runner stops FRR"}
        if not running(self.d):
            return {"ok": None, "detail": "not running; it loads the new config when it starts"}
        if not os.path.exists(FRR_RELOAD) or shutil.which("vtysh") is None:
            return {"ok": None, "detail": "frr-reload.py is not installed; reloaded when FRR restarts"}
        run = vty_dir(self.d)
        cmd = ["python3", FRR_RELOAD, "--reload", "--stdout", "--vty_socket", str(run), "--confdir",
               str(self.dir), "--rundir", str(self.run_dir()), str(self.path)]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            return {"ok": False, "detail": "frr-reload.py did not finish within 60 s"}
        out = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()]
        bad = [ln for ln in out if "ERROR" in ln or "failed" in ln.lower()]
        res = {"ok": r.returncode == 0, "detail": ((bad or out or ["reloaded"])[-1]).strip()[:200]}
        if res["ok"] and "\nrouter bgp " in (self.path.read_text() if self.path.exists() else ""):
            # A changed prefix-list is not applied to routes already received: ask the peers to
            # send them again (route refresh; the sessions stay up) and re-announce ours.
            try:
                c = subprocess.run([*vtysh_args(self.d), "-c", "clear bgp * soft"], capture_output=True, text=True,
                                   timeout=30)
                if c.returncode != 0:
                    res["detail"] += f"; clear bgp soft: {(c.stdout + c.stderr).strip()[:100]}"
            except subprocess.TimeoutExpired:
                res["detail"] += "; clear bgp soft did not finish within 30 s"
        return res

    def vty(self) -> Path | None:
        """The daemons' vty socket folder (the routes reader asks FRR there), None without one."""
        return vty_dir(self.d) if self.d.rendered_dir is not None else None

    def probe(self) -> str:
        return "running" if running(self.d) else "not answering"

    def status_extra(self) -> dict:
        return {"vty": str(vty_dir(self.d))} if running(self.d) else {}
