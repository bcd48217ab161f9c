"""Probing and snapshot helpers for lab tests."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from backend.client import AgentClient
from backend.lab.lab import Lab

REPO_ROOT = Path(__file__).resolve().parents[2]


class LabHelper:
    def __init__(self, lab: Lab):
        self.lab = lab
        self.client = AgentClient(lab.socket)
        self.ro_client = AgentClient(lab.ro_socket)

    # -- traffic -------------------------------------------------------------------------

    def tcp(self, host: str, dst: str, port: int, timeout: float = 1.0) -> str | None:
        """The whoami line the server answered with, or None when the connection failed."""
        r = self.lab.run(host, [sys.executable, "-m", "backend.lab.whoami", "--probe", dst, str(port), str(timeout)],
                         timeout=timeout + 10)
        return r.stdout.strip() if r.returncode == 0 else None

    def ping(self, host: str, dst: str, timeout: float = 1.0) -> bool:
        r = self.lab.run(host, ["ping", "-n", "-c1", "-W", str(int(max(1, timeout))), dst], timeout=timeout + 10)
        return r.returncode == 0

    def parallel(self, calls: list) -> list:
        with ThreadPoolExecutor(max_workers=16) as ex:
            return list(ex.map(lambda c: c[0](*c[1:]), calls))

    # -- CLI and state -------------------------------------------------------------------

    def cli(self, *args: str, socket: str | None = None, input: str | None = None) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "backend.cli", *args]
        if args and args[0] not in ("config", "lab") and "--socket" not in args:
            cmd += ["--socket", socket or self.lab.socket]
        return subprocess.run(cmd, capture_output=True, text=True, input=input, timeout=60, cwd=REPO_ROOT)

    @property
    def worktree(self) -> Path:
        return Path(self.lab.repo) / "router.yaml"

    def router(self, *cmd: str) -> str:
        return self.lab.run("router", list(cmd), check=True).stdout

    def kernel_state(self) -> dict:
        """What must stay byte-identical when a change is refused."""
        return {
            "ruleset": self.router("nft", "-s", "list", "ruleset"),  # -s: without counter values
            "addrs": self.router("ip", "-d", "addr", "show"),
            "routes4": self.router("ip", "route", "show", "table", "all"),
            "routes6": self.router("ip", "-6", "route", "show", "table", "all"),
        }

    def head(self) -> str:
        return self.client.status()["head"]

    def assert_kernel_is_head(self) -> None:
        """The router's `inet talgate` table equals render(HEAD) loaded into a fresh namespace (counter
        values and handles aside), and re-applying HEAD changes nothing (addresses, routes, daemons)."""
        import json

        from tests.unit.nftcheck import load_and_list

        def norm(listing: list[dict]) -> list[dict]:
            out = []
            for o in listing:
                (k, v), = o.items()
                if k == "rule":
                    v = dict(v, expr=[{"counter": None} if "counter" in e else e for e in v["expr"]])
                if k == "set" and "elem" in v:
                    v = dict(v, elem=sorted(v["elem"], key=json.dumps))
                out.append({k: v})
            return out

        live = []
        for o in json.loads(self.router("nft", "-j", "list", "table", "inet", "talgate"))["nftables"]:
            for k, v in o.items():
                if k != "metainfo":
                    live.append({k: {kk: vv for kk, vv in v.items() if kk != "handle"} if isinstance(v, dict) else v})
        want = load_and_list(text=self.client.render()["nft"])
        assert norm(live) == norm(want), "the kernel's table differs from render(HEAD)"
        assert self.client.apply()["changes"] == 0, "re-applying HEAD changed something: the kernel was not HEAD"
