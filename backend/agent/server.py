"""The agent's transport: HTTP+JSON over Unix sockets (one read-write, one read-only) and, for
remote clients, TCP with a bearer token. Transport only: parse, identify the caller, hand the
request to :func:`backend.api.dispatch.dispatch` (route table → request model → service layer),
serialize. Read-only enforcement lives in one place: the route table's ``write`` flag.

Every request is bounded before the service sees it (the read-only socket is world-writable): a body
of at most ``Limits.body`` bytes with a valid Content-Length, read within ``READ_DEADLINE`` seconds;
UTF-8 JSON, an object at most 16 deep (``backend.api.dispatch.parse_body``), then the route's request
model (types, lengths, ranges; integer query parameters clamped); at most ``Limits.connections``
connections per listener (more get 503 ``busy`` at once) and ``Limits.workers`` requests being worked
on (the read-only socket parses documents for anyone: one at a time; the cheap reads in
``LIGHT``, status first, never wait for one). Every error body is
``{code, message, problems, detail}`` (backend/api/errors.py).
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
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from ..api.dispatch import MAX_JSON_DEPTH, dispatch, encode, parse_body
from ..api.errors import ApiError
from ..api.models import Caller
from ..gitops import RepoError
from ..model.load import MAX_DOCUMENT_BYTES
from ..model.problem import shorten
from .pipeline import ApplyFailed, Pipeline, Refused
from .service import Service

log = logging.getLogger("talgate.agent")

IDLE_TIMEOUT = 10.0     # seconds a connection may stay silent (between bytes, or between requests)
READ_DEADLINE = 60.0    # seconds to send one request's line, headers and body (slow drip included)
WORK_WAIT = 30.0        # seconds a request waits for a worker before 503
MAX_ERROR = 2000        # characters of an error message in a response
__all__ = ["MAX_JSON_DEPTH", "Agent", "Limits", "read_body", "run_agent"]


@dataclass(frozen=True)
class Limits:
    body: int           # bytes of one request body
    connections: int    # concurrent connections on the listener
    workers: int | None  # concurrent requests being handled (None: as many as connections)


# Read-write (and token TCP): the document limit with room for JSON escaping (\uXXXX can triple
# non-ASCII text); the loader holds the document itself to MAX_DOCUMENT_BYTES. Read-only: 4 MiB
# (a ~170,000-prefix document: ~150 MB and a few seconds to validate; a 950,000-node one ~400 MB)
# and one document worked on at a time (two node-heavy ones at once pushed the agent under
# RLIMIT_AS 1.5 GiB to where even status answered 413), so unprivileged users together can hold
# at most ~16 x 4 MiB of bodies plus one parse.
RW_LIMITS = Limits(body=3 * MAX_DOCUMENT_BYTES, connections=32, workers=None)
RO_LIMITS = Limits(body=4 * 1024 * 1024, connections=16, workers=1)
# Cheap reads of bounded size that never parse a document from the request: served without
# waiting for a worker, so slow validates cannot shut monitoring (status polls) out.
LIGHT = {("GET", "/v1" + p) for p in ("/status", "/log", "/config", "/audit", "/jobs", "/interfaces", "/neighbours",
                                      "/history")}


def _bad(message: str) -> ApiError:
    return ApiError("bad_request", message, [{"path": "(request)", "message": message, "severity": "error"}])


def read_body(headers, read, limit: int, method: str) -> dict:
    """The request body as a JSON object, or ApiError (bad_request / too_large) naming the problem.
    read(n) reads exactly n bytes (fewer: the client went away → ConnectionError)."""
    if headers.get("Transfer-Encoding"):
        raise _bad("Transfer-Encoding is not supported: send a Content-Length")
    cl = headers.get_all("Content-Length") or []
    if len(cl) > 1:
        raise _bad("more than one Content-Length header")
    if not cl:
        if method == "POST":
            raise _bad("POST needs a Content-Length header")
        return {}
    v = cl[0].strip()
    if not (v.isascii() and v.isdigit() and len(v) <= 18):
        raise _bad(f"Content-Length must be a non-negative whole number, not {shorten(cl[0], 40)!r}")
    length = int(v)
    if length > limit:
        raise ApiError("too_large", f"request body is {length} bytes, the limit on this socket is {limit} bytes",
                       detail={"limit": limit})
    if length == 0:
        return {}
    raw = read(length)
    if len(raw) < length:
        raise ConnectionError("the client sent less than its Content-Length")
    return parse_body(raw)


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

    @property
    def jobs(self):
        """Background commits (the service's)."""
        return self.service.background

    # -- sockets -------------------------------------------------------------------------

    def _handler(self, read_only: bool, token: str | None = None, limits: Limits = RW_LIMITS):
        """The HTTP handler class for one listener. Unix sockets: the peer is vouched for by the
        kernel (SO_PEERCRED). TCP: a bearer token is required (checked before the body is read) and
        the TCP peer is the caller's connection for the lockout check."""
        agent = self
        workers = threading.BoundedSemaphore(limits.workers) if limits.workers else None

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = IDLE_TIMEOUT  # socket timeout: a silent client is dropped (reads and writes)

            def log_message(self, fmt, *args):
                log.debug("%s", shorten(fmt % args, 300))

            def handle_one_request(self):
                # A client dripping bytes resets the idle timeout; the whole request (line, headers,
                # body) must still arrive within READ_DEADLINE or the connection is shut down.
                self._reading = threading.Lock()
                self._expired = False
                timer = threading.Timer(READ_DEADLINE, self._expire)
                timer.daemon = True
                self._timer = timer
                timer.start()
                try:
                    super().handle_one_request()
                finally:
                    timer.cancel()

            def _expire(self):
                with self._reading:
                    if self._timer is None:
                        return  # the request was read in time
                    self._expired = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

            def _read_done(self) -> bool:
                with self._reading:
                    self._timer.cancel()
                    self._timer = None
                    return not self._expired

            def _caller(self) -> Caller:
                if token is None:
                    uid, pid = _peer(self.connection)
                    return Caller(uid, pid, _username(uid), read_only)
                peer, local = self.connection.getpeername(), self.connection.getsockname()
                conn = f"{_host(peer[0])} {peer[1]} {_host(local[0])} {local[1]}"
                return Caller(None, None, "api", read_only, conn, tcp_peer=_host(peer[0]))

            def _handle(self, method):
                if token is not None and not hmac.compare_digest(
                        self.headers.get("Authorization", "").encode(errors="replace"), f"Bearer {token}".encode()):
                    # Before reading the body: an unauthenticated peer gets nothing buffered.
                    self.close_connection = True
                    if self._read_done():
                        self._send(401, ApiError("unauthorized", "missing or wrong API token").to_dict())
                    return
                try:
                    body = read_body(self.headers, self.rfile.read, limits.body, method)
                except ApiError as e:
                    # The body was not (fully) read: answer and close, never read the rest.
                    self.close_connection = True
                    if self._read_done():
                        self._send(e.status, e.to_dict())
                    return
                except (ConnectionError, OSError):
                    self.close_connection = True
                    return
                if not self._read_done():
                    self.close_connection = True
                    return
                gate = None if (method, self.path.partition("?")[0]) in LIGHT else workers
                if gate is not None and not gate.acquire(timeout=WORK_WAIT):
                    status, out = 503, ApiError("busy", "the agent is busy on this socket: try again").to_dict()
                else:
                    try:
                        status, out = agent.dispatch(method, self.path, self._caller(), body)
                    finally:
                        if gate is not None:
                            gate.release()
                    del body
                self._send(status, out)

            def _send(self, status: int, out: dict):
                if status >= 400 and isinstance(out.get("message"), str):
                    out["message"] = shorten(out["message"], MAX_ERROR)
                data = encode(out)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if self.close_connection:
                    self.send_header("Connection", "close")
                self.end_headers()
                # In pieces: the socket timeout then bounds each piece, not the whole answer.
                view = memoryview(data)
                for i in range(0, len(view), 1 << 18):
                    self.wfile.write(view[i:i + (1 << 18)])

            def do_GET(self):  # noqa: N802
                self._handle("GET")

            def do_POST(self):  # noqa: N802
                self._handle("POST")

            def do_PUT(self):  # noqa: N802 - no such endpoints: a JSON 404 rather than http.server's 501 page
                self._handle("PUT")

            def do_DELETE(self):  # noqa: N802
                self._handle("DELETE")

        return Handler

    def _make_server(self, path: str, read_only: bool):
        limits = RO_LIMITS if read_only else RW_LIMITS

        class Server(_Bounded, socketserver.UnixStreamServer):
            def get_request(self):
                conn, _ = self.socket.accept()
                return conn, ("unix", 0)

        if os.path.exists(path):
            os.unlink(path)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        srv = Server(path, self._handler(read_only, limits=limits))
        srv.slots = threading.BoundedSemaphore(limits.connections)
        if self.socket_group is not None:
            os.chown(path, 0, self.socket_group)
        os.chmod(path, 0o666 if read_only else 0o660)
        return srv

    def _make_tcp_server(self, listen: str, token: str):
        host, _, port = listen.rpartition(":")
        host = host.strip("[]") or "::"

        class Server(_Bounded, socketserver.TCPServer):
            allow_reuse_address = True
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

        srv = Server((host, int(port)), self._handler(False, token, RW_LIMITS))
        srv.slots = threading.BoundedSemaphore(RW_LIMITS.connections)
        return srv

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


class _Bounded(socketserver.ThreadingMixIn):
    """A thread per connection, at most ``slots`` of them: one more is answered 503 by the accepting
    thread without reading anything, and closed."""
    daemon_threads = True
    block_on_close = False
    slots: threading.BoundedSemaphore

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            _refuse_busy(request)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


def _refuse_busy(conn: socket.socket) -> None:
    data = encode(ApiError("busy", "too many connections to the agent on this socket: try again").to_dict())
    head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n").encode()
    try:
        conn.setblocking(False)
        conn.send(head + data)
    except OSError:
        pass


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
    from .uplink import Uplinks

    # DHCP/DHCPv6/PD clients of the WANs that learn their address (idle when none does); leases
    # still valid from before a restart are facts of the start-up apply.
    uplinks = Uplinks(p, state, dhclient=os.environ.get("TALGATE_DHCLIENT", "dhclient"))
    uplinks.restore()
    if p.repo.head() is None:
        log.info("config repo %s has no commits yet: waiting for the first `talgate commit`", repo)
    else:
        try:
            r = p.apply()
            log.info("converged to HEAD %s: %s changes", r["rev"][:12], r["changes"])
        except (Refused, ApplyFailed, RepoError) as e:
            p.last_error = f"start-up apply failed: {e}"
            log.error("%s", p.last_error)
    from .wan import WanMonitor

    p.wans = WanMonitor(p).start()  # WAN health checks: Facts.wan_health, no commit
    if metrics_listen:
        from .metrics import serve_metrics

        try:
            serve_metrics(p, metrics_listen)
        except OSError as e:
            log.error("metrics: cannot listen on %s: %s", metrics_listen, e)
    uplinks.start()
    from ..observe.routing_state import RoutingState

    # BGP/OSPF session state for status, asked of FRR by a thread every few seconds (never by a poll)
    p.routing_state = RoutingState(lambda: next((Path(x["vty"]) for a in p.services.appliers if hasattr(a, "vty")
                                                 and (x := a.status_extra()).get("vty")), None)).start()
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
