"""Tiny TCP/UDP "who am I" servers for lab hosts (stdlib only, starts fast).

Every TCP connection gets one line — ``talgate-lab HOST PORT PEER`` — and is closed, so tests can
tell which host answered and which source address it saw (NAT checks). UDP datagrams get the
same line back. Run inside a lab namespace: ``python -m backend.lab.whoami HOST PORT...``.
"""

from __future__ import annotations

import selectors
import socket
import sys


def serve(host: str, ports: list[int]) -> None:
    sel = selectors.DefaultSelector()
    for port in ports:
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            s = socket.socket(socket.AF_INET6, kind)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("::", port))
            if kind == socket.SOCK_STREAM:
                s.listen(64)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, (port, kind))
    while True:
        for key, _ in sel.select():
            s, (port, kind) = key.fileobj, key.data
            try:
                if kind == socket.SOCK_STREAM:
                    conn, peer = s.accept()
                    with conn:
                        conn.sendall(_line(host, port, peer))
                else:
                    _data, peer = s.recvfrom(2048)
                    s.sendto(_line(host, port, peer), peer)
            except OSError:
                pass


def _line(host: str, port: int, peer) -> bytes:
    addr = peer[0]
    if addr.startswith("::ffff:"):
        addr = addr[7:]
    return f"talgate-lab {host} {port} {addr}\n".encode()


def probe(dst: str, port: int, timeout: float = 2.0, udp: bool = False) -> str:
    """Connect and return the server's line, or raise OSError."""
    fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect((dst, port))
        if udp:
            s.send(b"?")
            return s.recv(2048).decode().strip()
        return s.recv(2048).decode().strip()


if __name__ == "__main__":
    if sys.argv[1] == "--probe":
        try:
            print(probe(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]) if len(sys.argv) > 4 else 2.0))
        except OSError as e:
            print(f"error {e.__class__.__name__}: {e}")
            sys.exit(1)
    else:
        serve(sys.argv[1], [int(p) for p in sys.argv[2:]])
