"""Runs FRR (zebra, staticd, bgpd, ospfd, ospf6d) for the lab supervisor, in ``tg-router`` only.

What watchfrr and ``frrinit.sh`` do on a Debian box, reduced to the lab: every daemon runs in the
foreground with its sockets and pid file under RUN (``--vty_socket``, ``-z``), as root (the lab's
folders), logging to stdout; once every vty socket answers, ``vtysh -b`` loads the integrated
``frr.conf`` from the rendered folder. When any daemon exits, the others are stopped and this
runner exits non-zero, so the supervisor restarts the whole set and the config is loaded again
(zebra sweeps the routes the dead set left in the kernel). Later config changes are applied by the
agent (``frr-reload.py`` through the same vty sockets).

    python -m backend.lab.frr_run --conf RENDERED/frr/frr.conf --run RUN/frr
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

SBIN = "/usr/lib/frr"
DAEMONS = ("zebra", "staticd", "bgpd", "ospfd", "ospf6d")


def argv(daemon: str, run: Path) -> list[str]:
    args = [f"{SBIN}/{daemon}", "--vty_socket", str(run), "-z", str(run / "zserv.api"), "-i",
            str(run / f"{daemon}.pid"), "--log", "stdout", "-f", str(run / "empty.conf")]
    if daemon in ("bgpd",):
        args += ["-p", "179"]
    return args


def socket_dir(top: Path) -> Path:
    """/run/talgate-frr/<hash of RUN/frr>: one per lab, mode 0755."""
    import hashlib

    h = hashlib.sha256(str(top.resolve()).encode()).hexdigest()[:16]
    base = Path("/run/talgate-frr")
    base.mkdir(mode=0o755, exist_ok=True)
    d = base / h
    d.mkdir(mode=0o755, exist_ok=True)
    return d


def vtysh(run: Path, conf_dir: Path) -> list[str]:
    return ["vtysh", "--vty_socket", str(run), "--config_dir", str(conf_dir)]


def main(args: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m backend.lab.frr_run")
    ap.add_argument("--conf", required=True)
    ap.add_argument("--run", required=True)
    a = ap.parse_args(args)
    conf, top = Path(a.conf), Path(a.run)
    top.mkdir(parents=True, exist_ok=True)
    run = socket_dir(top)
    (run / "empty.conf").write_text("")
    # The daemons drop to the frr user (keeping the capabilities they need; FRR's vty group is
    # compiled in, so they cannot stay root): their folder is theirs, somewhere the frr user can
    # reach (the lab's state may sit in a 0700 folder), and RUN/frr/sock points at it.
    try:
        import grp
        import pwd

        uid, gid = pwd.getpwnam("frr").pw_uid, grp.getgrnam("frr").gr_gid
        for f in (run, run / "empty.conf"):
            os.chown(f, uid, gid)
    except (KeyError, PermissionError) as e:
        print(f"frr_run: cannot hand {run} to the frr user: {e}", flush=True)
    link = top / "sock"
    if not (link.is_symlink() and os.readlink(link) == str(run)):
        link.unlink(missing_ok=True)
        link.symlink_to(run)
    procs: dict[str, subprocess.Popen] = {}
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = 0
    try:
        for d in DAEMONS:
            for stale in (run / f"{d}.vty", run / f"{d}.pid"):
                stale.unlink(missing_ok=True)
            procs[d] = subprocess.Popen(argv(d, run), stdin=subprocess.DEVNULL)
            if d == "zebra":  # the others connect to its zserv socket
                _wait(lambda: (run / "zserv.api").exists(), 10)
        if not _wait(lambda: all((run / f"{d}.vty").exists() for d in DAEMONS)
                     or any(p.poll() is not None for p in procs.values()), 15):
            print("frr_run: the daemons' vty sockets did not appear within 15 s", flush=True)
            return 1
        gen = _generation(conf)
        r = subprocess.run([*vtysh(run, conf.parent), "-b"], capture_output=True, text=True, timeout=60)
        print(f"frr_run: vtysh -b exit {r.returncode} {(r.stdout + r.stderr).strip()[-2000:]}", flush=True)
        (top / "loaded").write_text(f"{time.time()}\n")
        if _generation(conf) != gen:
            # The agent wrote a new file while we loaded the old one and found us not loaded yet
            # (it reloads once `loaded` exists): apply the difference ourselves.
            r = subprocess.run(["python3", "/usr/lib/frr/frr-reload.py", "--reload", "--stdout", "--vty_socket",
                                str(run), "--confdir", str(conf.parent), "--rundir", str(top), str(conf)],
                               capture_output=True, text=True, timeout=60)
            print(f"frr_run: frr-reload exit {r.returncode}", flush=True)
        while not stopping:
            dead = [d for d, p in procs.items() if p.poll() is not None]
            if dead:
                print(f"frr_run: {', '.join(dead)} exited ({procs[dead[0]].returncode}); stopping the others",
                      flush=True)
                code = 1
                break
            time.sleep(0.2)
    finally:
        (top / "loaded").unlink(missing_ok=True)
        for p in procs.values():
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + 5
        for p in procs.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if stopping:
            shutil.rmtree(run, ignore_errors=True)
            (top / "sock").unlink(missing_ok=True)
    return code


def _generation(conf: Path) -> str | None:
    try:
        return (conf.parent / ".generation").read_text().strip()
    except OSError:
        return None


def _wait(cond, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
