"""The lab: the example router built from network namespaces on this kernel.

Every namespace is ``PREFIX + host`` (``tg-router``, ``tg-isp``, ``tg-lan``, …); veth pairs are
created directly inside their namespaces, so the machine's own namespace never sees a link,
address, route or rule of the lab. The router side of each link is left bare: the agent, started
inside ``tg-router``, configures it from the committed example config.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

HOSTS = ("router", "isp", "lan", "guest", "mgmt")
DEFAULT_PREFIX = "tg-"
DEFAULT_STATE = "/run/talgate-lab"

# host -> (router link, host addresses, host routes, extra commands)
TOPOLOGY = {
    "isp": ("wan0", ["198.51.100.1/24", "2001:db8:100::1/64"],
            ["2001:db8:10::/56 via 2001:db8:100::2"],
            ["addr add 203.0.113.10/32 dev lo", "addr add 2001:db8:203::10/128 dev lo"]),
    "lan": ("lan0", ["192.168.10.10/24", "2001:db8:10:10::10/64"],
            ["default via 192.168.10.1", "default via 2001:db8:10:10::1"], []),
    "guest": ("guest0", ["192.168.20.10/24", "2001:db8:10:20::10/64"],
              ["default via 192.168.20.1", "default via 2001:db8:10:20::1"], []),
    "mgmt": ("mgmt0", ["192.168.99.10/24", "2001:db8:10:99::10/64"],
             ["default via 192.168.99.1", "default via 2001:db8:10:99::1"], []),
}

# whoami servers per host (router:22 stands in for sshd).
SERVERS = {"isp": [80, 443], "lan": [80, 443], "guest": [80], "mgmt": [80], "router": [22]}


class LabError(Exception):
    pass


def example_config() -> str:
    return resources.files("backend.lab").joinpath("example.yaml").read_text()


@dataclass
class Lab:
    prefix: str = DEFAULT_PREFIX
    state: Path = Path(DEFAULT_STATE)

    def __post_init__(self):
        if not self.prefix.startswith("tg-"):
            raise LabError(f"lab prefix {self.prefix!r} must start with 'tg-'")
        self.state = Path(self.state)

    # -- names and paths -----------------------------------------------------------------

    def ns(self, host: str) -> str:
        return self.prefix + host

    @property
    def socket(self) -> str:
        return str(self.state / "agent.sock")

    @property
    def ro_socket(self) -> str:
        return str(self.state / "agent-ro.sock")

    @property
    def repo(self) -> str:
        return str(self.state / "repo")

    def _meta_path(self) -> Path:
        return self.state / "lab.json"

    # -- helpers -------------------------------------------------------------------------

    @staticmethod
    def _run(args: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
        r = subprocess.run(args, capture_output=True, text=True, **kw)
        if check and r.returncode != 0:
            raise LabError(f"{' '.join(args)}: {r.stderr.strip() or r.stdout.strip()}")
        return r

    def _batch(self, ns: str | None, lines: list[str]) -> None:
        args = ["ip"] + (["-n", ns] if ns else []) + ["-batch", "-"]
        r = subprocess.run(args, input="\n".join(lines) + "\n", capture_output=True, text=True)
        if r.returncode != 0:
            raise LabError(f"ip {'-n ' + ns if ns else ''} -batch: {r.stderr.strip()}")

    def existing(self) -> list[str]:
        out = self._run(["ip", "netns", "list"]).stdout.split()
        names = {line for line in out if line.startswith(self.prefix)}
        return [self.ns(h) for h in HOSTS if self.ns(h) in names]

    def spawn(self, host: str, args: list[str], log_name: str) -> int:
        logf = open(self.state / log_name, "ab")  # noqa: SIM115 - handed to the child
        p = subprocess.Popen(["ip", "netns", "exec", self.ns(host), *args], stdout=logf, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True, cwd="/")
        logf.close()
        return p.pid

    # -- up / down -----------------------------------------------------------------------

    def up(self, config_text: str | None = None, agent: bool = True, timeout: float = 30.0) -> dict:
        if self.existing():
            raise LabError(f"the lab is already up ({', '.join(self.existing())}); run `talgate lab down` first")
        if self.state.exists():
            shutil.rmtree(self.state)
        self.state.mkdir(parents=True)
        meta = {"prefix": self.prefix, "state": str(self.state), "pids": {}, "started": time.time()}
        try:
            for h in HOSTS:
                self._run(["ip", "netns", "add", self.ns(h)])
                # Before any link exists: no DAD (link-locals are usable at once and never
                # "tentative" mid-test) and no RAs (the router sends none yet).
                self._run(["ip", "netns", "exec", self.ns(h), "sysctl", "-qw",
                           "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0",
                           "net.ipv6.conf.all.accept_ra=0", "net.ipv6.conf.default.accept_ra=0"])
            router = self.ns("router")
            for h, (rlink, addrs, routes, extra) in TOPOLOGY.items():
                self._run(["ip", "link", "add", "name", rlink, "netns", router, "type", "veth",
                           "peer", "name", "eth0", "netns", self.ns(h)])
                lines = ["link set lo up", "link set eth0 up"]
                lines += [f"addr add {a} dev eth0" + (" nodad" if ":" in a else "") for a in addrs]
                lines += extra
                lines += [f"route add {r}" for r in routes]
                self._batch(self.ns(h), lines)
            self._batch(router, ["link set lo up"])
            for h, ports in SERVERS.items():
                meta["pids"][f"whoami-{h}"] = self.spawn(
                    h, [sys.executable, "-m", "backend.lab.whoami", h, *map(str, ports)], f"whoami-{h}.log")
            # LAN service daemons (Kea, Unbound, radvd, chrony, avahi) run under the lab's
            # supervisor in tg-router; they start once the agent renders their configs.
            meta["pids"]["supervisor"] = self.start_supervisor()
            self._write_meta(meta)
            if agent:
                meta["pids"]["agent"] = self.start_agent(config_text or example_config(), timeout)
                self._write_meta(meta)
        except BaseException:
            self.down()
            raise
        return meta

    def start_supervisor(self) -> int:
        """backend/lab/supervisor.py in tg-router: daemons' logs go to STATE/logs/<service>.log."""
        return self.spawn("router", [sys.executable, "-m", "backend.lab.supervisor", "--base", str(self.state)],
                          "supervisor.log")

    def services(self) -> dict:
        """The supervisor's view of the service daemons (state, pid, restarts)."""
        try:
            return json.loads((self.state / "run" / "supervisor.json").read_text()).get("services", {})
        except (OSError, ValueError):
            return {}

    def restart_agent(self, extra: tuple[str, ...] = (), config_text: str | None = None) -> int:
        """Stop the lab's agent (if it runs) and start it again; returns the new pid."""
        self.stop_agent()
        meta = self.meta() or {"pids": {}}
        meta["pids"]["agent"] = self.start_agent(config_text or example_config(), extra=extra)
        self._write_meta(meta)
        return meta["pids"]["agent"]

    def start_agent(self, config_text: str, timeout: float = 30.0, extra: tuple[str, ...] = ()) -> int:
        """Start the agent in the router namespace (the repo is created from config_text only
        when it does not exist yet) and wait until it has converged."""
        init = self.state / "initial.yaml"
        init.write_text(config_text)
        pid = self.spawn("router", [sys.executable, "-m", "backend.cli", "agent", "--repo", self.repo,
                                    "--state", str(self.state / "agent"), "--socket", self.socket,
                                    "--ro-socket", self.ro_socket, "--rendered", str(self.state / "rendered"),
                                    "--init-from", str(init), *extra], "agent.log")
        self.wait_agent(pid, timeout)
        return pid

    def wait_agent(self, pid: int, timeout: float = 30.0) -> dict:
        from ..client import AgentClient, AgentError

        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if not _alive(pid):
                raise LabError(f"the agent exited during start-up; see {self.state / 'agent.log'}:\n"
                               + self.log_tail("agent.log"))
            try:
                st = AgentClient(self.socket, timeout=5).status()
                if st.get("applied") and st.get("applied") == st.get("head"):
                    return st
                last = st.get("last_error")
            except AgentError as e:
                last = str(e)
            time.sleep(0.05)
        raise LabError(f"the agent did not converge within {timeout:.0f} s ({last}); see "
                       f"{self.state / 'agent.log'}:\n" + self.log_tail("agent.log"))

    def log_tail(self, name: str, lines: int = 20) -> str:
        try:
            return "\n".join((self.state / name).read_text().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _write_meta(self, meta: dict) -> None:
        self._meta_path().write_text(json.dumps(meta, indent=2))

    def meta(self) -> dict | None:
        try:
            return json.loads(self._meta_path().read_text())
        except (OSError, ValueError):
            return None

    def stop_agent(self) -> None:
        meta = self.meta() or {}
        pid = meta.get("pids", {}).pop("agent", None)
        if pid:
            _kill(pid)
            self._write_meta(meta)

    def down(self) -> list[str]:
        meta = self.meta() or {}
        for pid in meta.get("pids", {}).values():
            _kill(pid)
        removed = []
        for ns in self.existing():
            pids = self._run(["ip", "netns", "pids", ns], check=False).stdout.split()
            for pid in pids:
                _kill(int(pid))
            self._run(["ip", "netns", "del", ns], check=False)
            removed.append(ns)
        if self.state.exists():
            shutil.rmtree(self.state, ignore_errors=True)
        return removed

    # -- status / exec -------------------------------------------------------------------

    def status(self) -> dict:
        meta = self.meta() or {}
        out = {"prefix": self.prefix, "state": str(self.state), "namespaces": self.existing(),
               "socket": self.socket, "ro_socket": self.ro_socket, "repo": self.repo,
               "processes": {name: {"pid": pid, "alive": _alive(pid)} for name, pid in meta.get("pids", {}).items()}}
        out["up"] = len(out["namespaces"]) == len(HOSTS)
        return out

    def exec_args(self, host: str, cmd: list[str]) -> list[str]:
        if host not in HOSTS:
            raise LabError(f"unknown lab host {host!r} (hosts: {', '.join(HOSTS)})")
        if self.ns(host) not in self.existing():
            raise LabError(f"{self.ns(host)} does not exist; run `talgate lab up` first")
        return ["ip", "netns", "exec", self.ns(host), *cmd]

    def run(self, host: str, cmd: list[str], timeout: float = 30.0, check: bool = False) -> subprocess.CompletedProcess:
        r = subprocess.run(self.exec_args(host, cmd), capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise LabError(f"{host}: {' '.join(cmd)}: {r.stderr.strip()}")
        return r


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child counts as dead.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def _kill(pid: int, timeout: float = 3.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG)[0]:
                    return
            except ChildProcessError:
                pass
            if not _alive(pid):
                return
            time.sleep(0.02)
