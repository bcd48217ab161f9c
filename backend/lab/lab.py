"""The lab: the example router built from network namespaces on this kernel.

Every namespace is ``PREFIX + host`` (``tg-router``, ``tg-isp``, ``tg-lan``, …); veth pairs are
created directly inside their namespaces, so the machine's own namespace never sees a link,
address, route or rule of the lab. The router side of each link is left bare: the agent, started
inside ``tg-router``, configures it from the committed example config.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

DEFAULT_PREFIX = "tg-"
DEFAULT_STATE = "/run/talgate-lab"


@dataclass(frozen=True)
class End:
    """One host's end of a veth pair: its interface name and what is configured on it (the router's
    ends stay bare: the agent configures them from the committed config)."""

    host: str
    ifname: str
    addrs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Topology:
    """A lab: hosts (namespaces), veth links between them, per-host routes and extra ``ip``
    commands, sysctls, and the whoami servers. Chosen per lab (``lab up --topology``); ``lab
    status`` and ``lab exec`` read it back from the lab's lab.json."""

    name: str
    hosts: tuple[str, ...]
    links: tuple[tuple[End, End], ...]             # (a, b): a's end is created first
    routes: dict[str, tuple[str, ...]] = field(default_factory=dict)   # host -> `ip route add` args
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict)    # host -> `ip` commands before routes
    sysctls: dict[str, tuple[str, ...]] = field(default_factory=dict)  # host -> sysctl assignments
    servers: dict[str, tuple[int, ...]] = field(default_factory=dict)  # host -> whoami ports
    description: str = ""


def _lan_hosts():
    """lan, guest, mgmt: the same in every topology."""
    links = (
        (End("router", "lan0"), End("lan", "eth0", ("192.168.10.10/24", "2001:db8:10:10::10/64"))),
        (End("router", "guest0"), End("guest", "eth0", ("192.168.20.10/24", "2001:db8:10:20::10/64"))),
        (End("router", "mgmt0"), End("mgmt", "eth0", ("192.168.99.10/24", "2001:db8:10:99::10/64"))),
    )
    routes = {"lan": ("default via 192.168.10.1", "default via 2001:db8:10:10::1"),
              "guest": ("default via 192.168.20.1", "default via 2001:db8:10:20::1"),
              "mgmt": ("default via 192.168.99.1", "default via 2001:db8:10:99::1")}
    return links, routes


def _default_topology() -> Topology:
    links, routes = _lan_hosts()
    return Topology(
        "default", ("router", "isp", "lan", "guest", "mgmt"),
        ((End("router", "wan0"), End("isp", "eth0", ("198.51.100.1/24", "2001:db8:100::1/64"))), *links),
        routes={"isp": ("2001:db8:10::/56 via 2001:db8:100::2",), **routes},
        extra={"isp": ("addr add 203.0.113.10/32 dev lo", "addr add 2001:db8:203::10/128 dev lo")},
        # router:22 stands in for sshd
        servers={"isp": (80, 443), "lan": (80, 443), "guest": (80,), "mgmt": (80,), "router": (22,)},
        description="router with one uplink wan0 to isp, which also plays the internet (203.0.113.10)")


FORWARDING = ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")


def _multiwan_topology() -> Topology:
    links, routes = _lan_hosts()
    return Topology(
        "multiwan", ("router", "isp", "isp2", "inet", "lan", "guest", "mgmt"),
        ((End("router", "wan0"), End("isp", "eth0", ("198.51.100.1/24", "2001:db8:100::1/64"))),
         (End("router", "wan1"), End("isp2", "eth0", ("100.64.0.1/24", "2001:db8:200::1/64"))),
         (End("isp", "eth1", ("192.0.2.1/30", "2001:db8:1::1/64")),
          End("inet", "eth0", ("192.0.2.2/30", "2001:db8:1::2/64"))),
         (End("isp2", "eth1", ("192.0.2.5/30", "2001:db8:2::1/64")),
          End("inet", "eth1", ("192.0.2.6/30", "2001:db8:2::2/64"))),
         *links),
        routes={
            "isp": ("203.0.113.0/24 via 192.0.2.2", "2001:db8:203::/48 via 2001:db8:1::2",
                    "100.64.0.0/24 via 192.0.2.2", "2001:db8:200::/64 via 2001:db8:1::2",
                    "2001:db8:10::/56 via 2001:db8:100::2"),
            "isp2": ("203.0.113.0/24 via 192.0.2.6", "2001:db8:203::/48 via 2001:db8:2::2",
                     "198.51.100.0/24 via 192.0.2.6", "2001:db8:100::/64 via 2001:db8:2::2",
                     "2001:db8:10::/56 via 2001:db8:200::2"),
            # inet routes back to each ISP's customers through that ISP, from its "internet" address
            # (so a UDP answer of a server bound to any address comes from the address asked)
            "inet": ("198.51.100.0/24 via 192.0.2.1 src 203.0.113.10",
                     "2001:db8:100::/64 via 2001:db8:1::1 src 2001:db8:203::10",
                     "2001:db8:10::/56 via 2001:db8:1::1 src 2001:db8:203::10",
                     "100.64.0.0/24 via 192.0.2.5 src 203.0.113.10",
                     "2001:db8:200::/64 via 2001:db8:2::1 src 2001:db8:203::10"),
            **routes},
        extra={"inet": ("addr add 203.0.113.10/32 dev lo", "addr add 2001:db8:203::10/128 dev lo nodad")},
        sysctls={"isp": FORWARDING, "isp2": FORWARDING, "inet": FORWARDING},
        servers={"inet": (80, 443), "lan": (80, 443), "guest": (80,), "mgmt": (80,), "router": (22,)},
        description="router with two uplinks: wan0 to isp, wan1 to isp2; both ISPs reach the internet host "
                    "inet (203.0.113.10, 2001:db8:203::10), so an ISP failing upstream is that ISP host not "
                    "forwarding while its link stays up")


TOPOLOGIES: dict[str, Topology] = {t.name: t for t in (_default_topology(), _multiwan_topology())}
# The default lab's hosts (kept for callers that name them).
HOSTS = TOPOLOGIES["default"].hosts
TOPOLOGY_LINE = re.compile(r"^#\s*talgate-lab:\s*topology=([a-z0-9-]+)\s*$", re.M)


def topology_of(config_text: str | None, name: str | None = None) -> Topology:
    """The topology named explicitly, else by a ``# talgate-lab: topology=NAME`` line in the lab
    config, else the default one."""
    if name is None and config_text:
        m = TOPOLOGY_LINE.search(config_text)
        name = m.group(1) if m else None
    name = name or "default"
    if name not in TOPOLOGIES:
        raise LabError(f"unknown lab topology {name!r} (known: {', '.join(TOPOLOGIES)})")
    return TOPOLOGIES[name]


class LabError(Exception):
    pass


def example_config() -> str:
    return resources.files("backend.lab").joinpath("example.yaml").read_text()


def lab_config(name: str) -> str:
    """A config shipped with the lab (example.yaml, multiwan.yaml)."""
    return resources.files("backend.lab").joinpath(name).read_text()


@dataclass
class Lab:
    prefix: str = DEFAULT_PREFIX
    state: Path = Path(DEFAULT_STATE)
    topology: str | None = None  # None: the running lab's (lab.json), else chosen by `up`

    def __post_init__(self):
        if not self.prefix.startswith("tg-"):
            raise LabError(f"lab prefix {self.prefix!r} must start with 'tg-'")
        self.state = Path(self.state)

    @property
    def topo(self) -> Topology:
        """This lab's topology: the one named, else the one the running lab recorded, else default."""
        name = self.topology or (self.meta() or {}).get("topology") or "default"
        return TOPOLOGIES.get(name, TOPOLOGIES["default"])

    @property
    def hosts(self) -> tuple[str, ...]:
        return self.topo.hosts

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
        every = dict.fromkeys([*self.hosts, *(h for t in TOPOLOGIES.values() for h in t.hosts)])
        return [self.ns(h) for h in every if self.ns(h) in names]

    def spawn(self, host: str, args: list[str], log_name: str) -> int:
        logf = open(self.state / log_name, "ab")  # noqa: SIM115 - handed to the child
        p = subprocess.Popen(["ip", "netns", "exec", self.ns(host), *args], stdout=logf, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True, cwd="/")
        logf.close()
        return p.pid

    # -- up / down -----------------------------------------------------------------------

    def up(self, config_text: str | None = None, agent: bool = True, timeout: float = 30.0,
           topology: str | None = None) -> dict:
        """Build the lab. The topology: ``topology``, else this Lab's, else the one the config names
        in a ``# talgate-lab: topology=NAME`` line, else the default one."""
        topo = topology_of(config_text, topology or self.topology)
        if self.existing():
            raise LabError(f"the lab is already up ({', '.join(self.existing())}); run `talgate lab down` first")
        if self.state.exists():
            shutil.rmtree(self.state)
        self.state.mkdir(parents=True)
        self.topology = topo.name
        meta = {"prefix": self.prefix, "state": str(self.state), "pids": {}, "started": time.time(),
                "topology": topo.name}
        try:
            for h in topo.hosts:
                self._run(["ip", "netns", "add", self.ns(h)])
                # Before any link exists: no DAD (link-locals are usable at once and never
                # "tentative" mid-test) and no RAs (the router sends none yet).
                self._run(["ip", "netns", "exec", self.ns(h), "sysctl", "-qw",
                           "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0",
                           "net.ipv6.conf.all.accept_ra=0", "net.ipv6.conf.default.accept_ra=0"])
            router = self.ns("router")
            for h, sysctls in topo.sysctls.items():
                self._run(["ip", "netns", "exec", self.ns(h), "sysctl", "-qw", *sysctls])
            lines: dict[str, list[str]] = {h: ["link set lo up"] for h in topo.hosts if h != "router"}
            for a, b in topo.links:
                self._run(["ip", "link", "add", "name", a.ifname, "netns", self.ns(a.host), "type", "veth",
                           "peer", "name", b.ifname, "netns", self.ns(b.host)])
                for end in (a, b):
                    if end.host == "router":
                        continue  # the agent configures the router's links
                    lines[end.host].append(f"link set {end.ifname} up")
                    lines[end.host] += [f"addr add {x} dev {end.ifname}" + (" nodad" if ":" in x else "")
                                        for x in end.addrs]
            for h, ls in lines.items():
                ls += list(topo.extra.get(h, ()))
                ls += [f"route add {r}" for r in topo.routes.get(h, ())]
                self._batch(self.ns(h), ls)
            self._batch(router, ["link set lo up"])
            for h, ports in topo.servers.items():
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
        out = {"prefix": self.prefix, "state": str(self.state), "topology": self.topo.name,
               "hosts": list(self.hosts), "namespaces": self.existing(),
               "socket": self.socket, "ro_socket": self.ro_socket, "repo": self.repo,
               "processes": {name: {"pid": pid, "alive": _alive(pid)} for name, pid in meta.get("pids", {}).items()}}
        out["up"] = set(out["namespaces"]) >= {self.ns(h) for h in self.hosts}
        return out

    def exec_args(self, host: str, cmd: list[str]) -> list[str]:
        if host not in self.hosts:
            raise LabError(f"unknown lab host {host!r} (hosts of the {self.topo.name} lab: {', '.join(self.hosts)})")
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
