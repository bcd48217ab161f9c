"""Helpers for the multi-WAN lab (tests/lab/test_multiwan.py, bench/multiwan.py): break and repair
an ISP upstream, find which uplink a host's traffic leaves by, and a long-lived TCP flow.

An ISP "fails upstream" by not forwarding any more (its link to the router stays up, it still
answers ARP/ND and pings to its own address): exactly what a link-state check cannot see.
"""

from __future__ import annotations

import subprocess
import sys
import time

from .lab import Lab

INET4, INET6 = "203.0.113.10", "2001:db8:203::10"
# The source address inet's whoami server sees, per uplink.
SOURCE = {"isp": ("198.51.100.2", None), "isp2": ("100.64.0.2", "2001:db8:200::2")}

ECHO_SERVER = r"""
import socket, threading
def serve(c, peer):
    with c:
        f = c.makefile("rwb", buffering=0)
        for line in f:
            f.write(peer.encode() + b" " + line)
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", 7000)); s.listen(16)
while True:
    c, a = s.accept()
    threading.Thread(target=serve, args=(c, a[0].removeprefix("::ffff:")), daemon=True).start()
"""

ECHO_CLIENT = r"""
import socket, sys, time
dst, period = sys.argv[1], float(sys.argv[2])
s = socket.create_connection((dst, 7000), timeout=5)
f = s.makefile("rwb", buffering=0)
n = 0
while True:
    n += 1
    try:
        f.write(b"%d\n" % n)
        line = f.readline()
    except OSError as e:
        print("error", e, flush=True); break
    if not line:
        print("error closed", flush=True); break
    print(line.decode().strip(), flush=True)
    time.sleep(period)
"""


def set_forwarding(lab: Lab, host: str, on: bool) -> None:
    v = "1" if on else "0"
    lab.run(host, ["sysctl", "-qw", f"net.ipv4.ip_forward={v}", f"net.ipv6.conf.all.forwarding={v}"], check=True)


def source_seen(lab: Lab, host: str, dst: str = INET4, port: int = 80, timeout: float = 1.0) -> str | None:
    """The source address inet's whoami server saw for a new connection from host (None: failed)."""
    r = lab.run(host, [sys.executable, "-m", "backend.lab.whoami", "--probe", dst, str(port), str(timeout)],
                timeout=timeout + 10)
    if r.returncode != 0:
        return None
    parts = r.stdout.split()
    return parts[-1] if len(parts) == 4 else None


def wait_source(lab: Lab, host: str, want: str, within: float, dst: str = INET4, step: float = 0.05,
                probe_timeout: float = 0.3) -> float | None:
    """Seconds until a new connection from host reaches dst with source want (None: not within)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < within:
        if source_seen(lab, host, dst, timeout=probe_timeout) == want:
            return time.monotonic() - t0
        time.sleep(step)
    return None


def start_echo_server(lab: Lab) -> int:
    return lab.spawn("inet", [sys.executable, "-c", ECHO_SERVER], "echo-server.log")


def start_echo_client(lab: Lab, host: str = "lan", dst: str = INET4, period: float = 0.1) -> subprocess.Popen:
    """A long-lived TCP connection from host to inet:7000; each line it prints is 'SOURCE N' or 'error …'."""
    return subprocess.Popen(lab.exec_args(host, [sys.executable, "-u", "-c", ECHO_CLIENT, dst, str(period)]),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
