"""The lab's service supervisor: runs Kea, Unbound, radvd, chrony and avahi inside ``tg-router``.

It plays the part the service pods play on Kubernetes. For each service it watches
``RENDERED/<svc>/`` (the agent writes the config there and bumps ``.generation``):

- config present and daemon not running → start it (logs in ``LOGS/<svc>.log``);
- daemon exited → restart it (with a small back-off), counting restarts;
- ``.generation`` changed → radvd gets SIGHUP; chrony and avahi, which cannot re-read their
  configs, are restarted; Kea and Unbound are reloaded by the agent through their control
  sockets, so nothing is done here;
- config removed → stop it.

State goes to ``RUN/supervisor.json`` (read by ``ServiceApplier.status``). Every daemon gets
its own pid/lock/socket folder under ``RUN/<svc>`` because ``/run`` is shared by all namespaces;
avahi, whose pid file path is compiled in, runs in a private mount namespace with ``RUN/avahi``
bound on ``/run/avahi-daemon``.

    python -m backend.lab.supervisor --base STATE      (STATE/rendered, STATE/run, STATE/state, STATE/logs)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

CONF = {
    "kea-dhcp4": "kea-dhcp4.conf",
    "kea-dhcp6": "kea-dhcp6.conf",
    "unbound": "unbound.conf",
    "radvd": "radvd.conf",
    "chrony": "chrony.conf",
    "avahi": "avahi-daemon.conf",
    "frr": "frr.conf",  # backend/lab/frr_run.py runs zebra, staticd, bgpd, ospfd, ospf6d; the agent reloads it
}
ON_GENERATION = {"radvd": "hup", "chrony": "restart", "avahi": "restart"}


class Daemon:
    def __init__(self, sup: Supervisor, name: str):
        self.sup = sup
        self.name = name
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        self.state = "off"
        self.generation: str | None = None
        self.started = 0.0
        self.next_start = 0.0
        self.last_exit: int | None = None

    @property
    def conf(self) -> Path:
        return self.sup.rendered / self.name / CONF[self.name]

    def gen(self) -> str | None:
        try:
            return (self.sup.rendered / self.name / ".generation").read_text().strip()
        except OSError:
            return None

    def argv(self) -> list[str]:
        c = str(self.conf)
        run = self.sup.run / self.name
        if self.name.startswith("kea"):
            return [self.name, "-c", c]
        if self.name == "unbound":
            return ["unbound", "-d", "-p", "-c", c]
        if self.name == "radvd":
            return ["radvd", "--nodaemon", "-C", c, "-p", str(run / "radvd.pid"), "-m", "stderr"]
        if self.name == "chrony":
            return ["chronyd", "-d", "-x", "-u", "root", "-f", c]
        if self.name == "frr":
            return [sys.executable, "-m", "backend.lab.frr_run", "--conf", c, "--run", str(run)]
        if self.name == "avahi":
            inner = (f"mkdir -p /run/avahi-daemon && mount --bind {run} /run/avahi-daemon && "
                     f"exec avahi-daemon --no-drop-root --no-chroot --no-rlimits -f {c}")
            return ["unshare", "-m", "--propagation", "private", "sh", "-c", inner]
        raise ValueError(self.name)

    def start(self) -> None:
        run = self.sup.run / self.name
        run.mkdir(parents=True, exist_ok=True)
        if self.name == "chrony":
            os.chmod(run, 0o750)
        env = dict(os.environ)
        if self.name.startswith("kea"):
            env["KEA_PIDFILE_DIR"] = env["KEA_LOCKFILE_DIR"] = str(run)
            (self.sup.state / "kea").mkdir(parents=True, exist_ok=True)
        if self.name == "chrony":
            (self.sup.state / "chrony").mkdir(parents=True, exist_ok=True)
        self.generation = self.gen()
        logf = open(self.sup.logs / f"{self.name}.log", "ab")  # noqa: SIM115 - handed to the child
        logf.write(f"--- {time.strftime('%H:%M:%S')} talgate supervisor: starting {' '.join(self.argv())}\n".encode())
        logf.flush()
        self.proc = subprocess.Popen(self.argv(), stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, cwd=str(run), start_new_session=True)
        logf.close()
        self.started = time.monotonic()
        self.state = "running"

    def stop(self, why: str = "") -> None:
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(5)
        self.proc = None

    def tick(self) -> None:
        now = time.monotonic()
        have_conf = self.conf.exists()
        if not have_conf:
            if self.proc:
                self.stop("config removed")
            self.state = "off"
            return
        if self.proc is not None and self.proc.poll() is not None:
            self.last_exit = self.proc.returncode
            self.proc = None
            self.restarts += 1
            # Back off when it keeps dying right after a start.
            quick = now - self.started < 5
            self.next_start = now + (min(5.0, 0.5 * self.restarts) if quick else 0.2)
            self.state = "crashed"
        if self.proc is None:
            if now >= self.next_start:
                self.start()
            return
        g = self.gen()
        if g != self.generation:
            self.generation = g
            act = ON_GENERATION.get(self.name)
            if act == "hup":
                self.proc.send_signal(signal.SIGHUP)
            elif act == "restart":
                self.stop("new config")
                self.start()

    def info(self) -> dict:
        return {"state": self.state, "pid": self.proc.pid if self.proc else None, "restarts": self.restarts,
                "last_exit": self.last_exit, "generation": self.generation}


class Supervisor:
    def __init__(self, base: Path):
        self.rendered = base / "rendered"
        self.run = base / "run"
        self.state = base / "state"
        self.logs = base / "logs"
        for d in (self.rendered, self.run, self.state, self.logs):
            d.mkdir(parents=True, exist_ok=True)
        self.daemons = {n: Daemon(self, n) for n in CONF}
        self.stopping = False

    def write_status(self) -> None:
        doc = {"pid": os.getpid(), "time": time.time(), "services": {n: d.info() for n, d in self.daemons.items()}}
        tmp = self.run / ".supervisor.json.tmp"
        tmp.write_text(json.dumps(doc, indent=2))
        os.replace(tmp, self.run / "supervisor.json")

    def loop(self, interval: float = 0.2) -> None:
        def stop(signum, frame):
            self.stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        while not self.stopping:
            for d in self.daemons.values():
                try:
                    d.tick()
                except OSError as e:
                    d.state = f"error: {e}"
            self.write_status()
            time.sleep(interval)
        for d in self.daemons.values():
            d.stop("supervisor stopping")
            d.state = "off"
        self.write_status()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m backend.lab.supervisor")
    ap.add_argument("--base", required=True, help="lab state folder (rendered/, run/, state/, logs/ inside)")
    a = ap.parse_args(argv)
    Supervisor(Path(a.base)).loop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
