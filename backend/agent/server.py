"""The agent's transport: HTTP+JSON over Unix sockets (one read-write, one read-only) and, for
remote clients, TCP with a bearer token. Transport only: parse, identify the caller, hand the
request to :func:`backend.api.dispatch.dispatch` (route table → request model → service layer),
serialize. Read-only enforcement lives in one place: the route table's ``write`` flag.
"""

from __future__ import annotations

import hmac
import logging
import os
import pwd
import signal
import socket
import socketserver
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler

from ..api.dispatch import dispatch, encode, parse_body
from ..api.errors import ApiError
from ..api.models import Caller
from ..gitops import RepoError
from .pipeline import ApplyFailed, Pipeline, Refused
from .service import Service

log = logging.getLogger("talgate.agent")


def _peer(sock: socket.socket) -> tuple[int | None, int | None]:
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, _gid = struct.unpack("3i", creds)
        return uid, pid
    except OSError:
        return None, None


def _username(uid: int | None) -> str:
    if uid is None:
        return "unknown"
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid{uid}"


class Agent:
    """The transport: sockets, HTTP parsing, the caller's identity. Every request goes through
    :func:`backend.api.dispatch.dispatch` (route table, read-only refusal, request models) to the
    service layer (``service.py``), which holds all handler logic."""

    def __init__(self, pipeline: Pipeline, socket_path: str, ro_socket_path: str | None,
                 socket_group: int | None = None, reconcile_interval: float = 2.0,
                 tcp_listen: str | None = None, tcp_token: str | None = None, readers=None):
        self.p = pipeline
        self.tcp_listen, self.tcp_token = tcp_listen, tcp_token
        self.reconcile_interval = reconcile_interval
        self.socket_group = socket_group
        self.socket_path = socket_path
        self.ro_socket_path = ro_socket_path
        self.servers: list[socketserver.BaseServer] = []
        self.service = Service(pipeline, readers, sockets=(socket_path, ro_socket_path))

    def dispatch(self, method: str, path: str, caller: Caller, body: dict) -> tuple[int, dict]:
        return dispatch(self.service, method, path, body, caller)

    # -- sockets -------------------------------------------------------------------------

    def _handler(self, read_only: bool, token: str | None = None):
        """The HTTP handler class for one listener. Unix sockets: the peer is vouched for by the
        kernel (SO_PEERCRED). TCP: a bearer token is required and the TCP peer is the caller's
        connection for the lockout check."""
        agent = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                log.debug("%s", fmt % args)

            def _caller(self) -> Caller | None:
                if token is None:
                    uid, pid = _peer(self.connection)
                    return Caller(uid, pid, _username(uid), read_only)
                got = self.headers.get("Authorization", "")
                if not hmac.compare_digest(got.encode(), f"Bearer {token}".encode()):
                    return None
                peer, local = self.connection.getpeername(), self.connection.getsockname()
                conn = f"{_host(peer[0])} {peer[1]} {_host(local[0])} {local[1]}"
                return Caller(None, None, "api", read_only, conn, tcp_peer=_host(peer[0]))

            def _handle(self, method):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                caller = self._caller()
                try:
                    if caller is None:
                        raise ApiError("unauthorized", "missing or wrong API token")
                    body = parse_body(raw) if method != "GET" else {}
                except ApiError as e:
                    status, out = e.status, e.to_dict()
                else:
                    status, out = agent.dispatch(method, self.path, caller, body)
                data = encode(out)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802
                self._handle("GET")

            def do_POST(self):  # noqa: N802
                self._handle("POST")

        return Handler

    def _make_server(self, path: str, read_only: bool):
        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

            def get_request(self):
                conn, _ = self.socket.accept()
                return conn, ("unix", 0)

        if os.path.exists(path):
            os.unlink(path)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        srv = Server(path, self._handler(read_only))
        if self.socket_group is not None:
            os.chown(path, 0, self.socket_group)
        os.chmod(path, 0o666 if read_only else 0o660)
        return srv

    def _make_tcp_server(self, listen: str, token: str):
        host, _, port = listen.rpartition(":")
        host = host.strip("[]") or "::"

        class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
            daemon_threads = True
            allow_reuse_address = True
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

        return Server((host, int(port)), self._handler(False, token))

    def serve(self) -> None:
        self.servers.append(self._make_server(self.socket_path, read_only=False))
        if self.ro_socket_path:
            self.servers.append(self._make_server(self.ro_socket_path, read_only=True))
        if self.tcp_listen:
            self.servers.append(self._make_tcp_server(self.tcp_listen, self.tcp_token))
            log.info("remote API on %s (token required)", self.tcp_listen)
        threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in self.servers]
        for t in threads:
            t.start()
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        threading.Thread(target=self._ticker, args=(stop,), daemon=True, name="ticker").start()
        log.info("serving on %s (rw) and %s (ro)", self.socket_path, self.ro_socket_path)
        stop.wait()
        self.shutdown()

    def _ticker(self, stop: threading.Event) -> None:
        """Confirm deadlines (4 Hz) and drift repair (every reconcile_interval seconds)."""
        next_reconcile = time.monotonic() + self.reconcile_interval
        while not stop.wait(0.25):
            try:
                r = self.p.tick()
                if r:
                    log.warning("confirm deadline passed: rolled back with %s", r["rev"][:12])
                if self.reconcile_interval and time.monotonic() >= next_reconcile:
                    next_reconcile = time.monotonic() + self.reconcile_interval
                    d = self.p.repair()
                    if d:
                        log.warning("drift repaired: %s", "; ".join(d["items"]))
            except Exception as e:  # noqa: BLE001 - the ticker must survive anything
                log.exception("ticker: %s", e)
                self.p.last_error = f"background: {e}"

    def shutdown(self) -> None:
        stop = getattr(self.service.readers, "stop", None)
        if stop:
            stop()
        for s in self.servers:
            s.shutdown()
            s.server_close()
        for path in (self.socket_path, self.ro_socket_path):
            if path and os.path.exists(path):
                os.unlink(path)


def _host(addr: str) -> str:
    return addr[7:] if addr.startswith("::ffff:") else addr


def socket_in_use(path: str) -> bool:
    """True when something answers on the socket (another agent): never steal it."""
    if not os.path.exists(path):
        return False
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(1)
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def run_agent(repo: str, state: str, socket_path: str, ro_socket_path: str | None,
              init_from: str | None = None, rendered: str | None = None, socket_group: int | None = None,
              reconcile_interval: float = 2.0, metrics_listen: str | None = None,
              tcp_listen: str | None = None, token_file: str | None = None) -> int:
    from ..gitops import ConfigRepo

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for path in (socket_path, ro_socket_path):
        if path and socket_in_use(path):
            log.error("another agent is serving on %s; refusing to start a second one", path)
            return 1
    if init_from and not os.path.exists(os.path.join(repo, ".git")):
        with open(init_from) as f:
            ConfigRepo.init(repo, f.read(), message="initial configuration")
        log.info("initialised config repo %s from %s", repo, init_from)
    p = Pipeline(repo, state, rendered)
    if p.repo.head() is None:
        log.info("config repo %s has no commits yet: waiting for the first `talgate commit`", repo)
    else:
        try:
            r = p.apply()
            log.info("converged to HEAD %s: %s changes", r["rev"][:12], r["changes"])
        except (Refused, ApplyFailed, RepoError) as e:
            p.last_error = f"start-up apply failed: {e}"
            log.error("%s", p.last_error)
    if metrics_listen:
        from .metrics import serve_metrics

        try:
            serve_metrics(p, metrics_listen)
        except OSError as e:
            log.error("metrics: cannot listen on %s: %s", metrics_listen, e)
    overdue = p.tick()  # a confirm deadline that passed while the agent was down: roll back now
    if overdue:
        log.warning("confirm deadline passed while the agent was down: rolled back with %s", overdue["rev"][:12])
    token = None
    if tcp_listen:
        try:
            token = open(token_file).read().strip() if token_file else ""
        except OSError as e:
            log.error("--token-file %s: %s", token_file, e.strerror)
            return 1
        if len(token) < 16:
            log.error("--listen needs --token-file with a token of at least 16 characters")
            return 1
    Agent(p, socket_path, ro_socket_path, socket_group, reconcile_interval, tcp_listen, token).serve()
    return 0
