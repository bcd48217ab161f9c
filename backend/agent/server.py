"""The agent's API: HTTP+JSON over Unix sockets, one read-write and one read-only.

Read-only enforcement lives in one place: ``Route.write`` — a write arriving on the read-only
socket is refused here, whatever client sent it.

Every request is bounded before a handler sees it (the read-only socket is world-writable):
a body of at most ``Limits.body`` bytes with a valid Content-Length, read within
``READ_DEADLINE`` seconds; a JSON object at most ``MAX_JSON_DEPTH`` deep whose known fields
have the right types and lengths; integer query parameters parsed and clamped; at most
``Limits.connections`` connections per listener (more get 503 at once) and ``Limits.workers``
requests being worked on (the read-only socket parses documents for anyone: one at a time;
the cheap reads in ``LIGHT``, status first, never wait for one).
Every error body is ``{"error": message, "code": stable code, ...}``.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import pwd
import signal
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse

from ..gitops import Conflict, RepoError
from ..gitops.repo import bad_signature
from ..model.load import MAX_DOCUMENT_BYTES, shorten
from ..render.nft import render
from .jobs import Jobs
from .pipeline import ApplyFailed, Pipeline, Refused

log = logging.getLogger("talgate.agent")
API = "/v1"
MAX_WAIT = 86400  # seconds a commit request may ask to be waited for

IDLE_TIMEOUT = 10.0     # seconds a connection may stay silent (between bytes, or between requests)
READ_DEADLINE = 60.0    # seconds to send one request's line, headers and body (slow drip included)
WORK_WAIT = 30.0        # seconds a request waits for a worker before 503
MAX_JSON_DEPTH = 16     # request bodies are 2 deep (the trace packet); more is an attack
MAX_ERROR = 2000        # characters of an error message in a response


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
# waiting for a worker, so two slow validates cannot shut monitoring (status polls) out.
LIGHT = {("GET", p) for p in ("/status", "/log", "/config", "/audit", "/jobs", "/interfaces", "/neighbours",
                              "/history")}

# Fields a request body may carry: type and maximum length (strings). None is always allowed.
FIELDS: dict[str, tuple[type, int | None]] = {
    "config": (str, None), "message": (str, 16384), "author": (str, 256), "base": (str, 128),
    "rev": (str, 128), "identity": (str, 1024), "ssh_connection": (str, 256), "packet": (dict, None),
    "confirm": (int, None), "force": (bool, None),
}
# Integer query parameters: (minimum, maximum); larger values are clamped to the maximum.
QUERY_INTS: dict[str, tuple[int, int]] = {"n": (0, 10000), "seconds": (1, 86400)}

CODES = {400: "bad_request", 401: "unauthorized", 403: "read_only", 404: "not_found", 409: "conflict",
         411: "bad_request", 413: "too_large", 422: "invalid", 500: "internal", 503: "busy"}


@dataclass
class Route:
    fn: Callable
    write: bool = False


@dataclass
class Caller:
    uid: int | None
    pid: int | None
    user: str
    read_only: bool
    ssh: str | None = None        # "client port server port" of the caller's connection
    tcp_peer: str | None = None   # remote API clients: the TCP peer the kernel saw


class HttpError(Exception):
    def __init__(self, status: int, error: str, **extra):
        self.status, self.error, self.extra = status, error, extra
        super().__init__(error)


def _type_name(v) -> str:
    return {str: "a string", int: "a number", float: "a number", bool: "true/false", list: "a list",
            dict: "an object", type(None): "null"}.get(type(v), type(v).__name__)


def check_body(body: dict) -> None:
    """Known fields have their types and lengths, strings are UTF-8 text (HttpError 400 naming the field)."""
    for key, (typ, limit) in FIELDS.items():
        v = body.get(key)
        if v is None:
            continue
        if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
            raise HttpError(400, f"{key}: must be {_type_name(typ())}, not {_type_name(v)}", field=key)
        if isinstance(v, str):
            if limit is not None and len(v) > limit:
                raise HttpError(400, f"{key}: {len(v)} characters, the limit is {limit}", field=key)
            try:
                v.encode("utf-8")
            except UnicodeEncodeError as e:
                raise HttpError(400, f"{key}: not UTF-8 text (an unpaired surrogate at character {e.start})",
                                field=key) from None
            if key == "author" and bad_signature(v):
                raise HttpError(400, f"author: control characters and < > are not allowed, got {shorten(v, 80)!r}",
                                field=key)
            if key == "message" and "\x00" in v:
                raise HttpError(400, "message: a NUL character is not allowed", field=key)


# A trace packet's fields: type and range (ints) or maximum length (strings); tcp_flags: a list of strings.
PACKET_FIELDS: dict[str, tuple[type, int, int]] = {
    "iif": (str, 0, 64), "src": (str, 0, 64), "dst": (str, 0, 64), "proto": (str, 0, 16), "icmp_type": (str, 0, 64),
    "ct_state": (str, 0, 32), "sport": (int, 0, 65535), "dport": (int, 0, 65535), "hoplimit": (int, 0, 255),
}


def check_packet(pk: dict) -> None:
    """A trace packet's known fields have their types and ranges (HttpError 400 naming packet.FIELD);
    unknown fields are refused by the Packet constructor."""
    for key, v in pk.items():
        if v is None:
            continue
        if key == "tcp_flags":
            if not (isinstance(v, list) and len(v) <= 16 and all(isinstance(f, str) and len(f) <= 16 for f in v)):
                raise HttpError(400, "packet.tcp_flags: must be a list of flag names (syn, ack, …)", field=key)
            continue
        if key not in PACKET_FIELDS:
            continue
        typ, lo, hi = PACKET_FIELDS[key]
        if not isinstance(v, typ) or isinstance(v, bool):
            raise HttpError(400, f"packet.{key}: must be {_type_name(typ())}, not {_type_name(v)}", field=key)
        if typ is int and not lo <= v <= hi:
            raise HttpError(400, f"packet.{key}: must be from {lo} to {hi}, not {v}", field=key)
        if typ is str and len(v) > hi:
            raise HttpError(400, f"packet.{key}: {len(v)} characters, the limit is {hi}", field=key)


def check_query(q: dict) -> dict:
    """Integer parameters parsed and clamped; HttpError 400 naming a bad one."""
    for key, (lo, hi) in QUERY_INTS.items():
        if key not in q:
            continue
        v = q[key].strip()
        if not (v.isascii() and v.isdigit() and len(v) <= 18):
            raise HttpError(400, f"{key}: must be a whole number from {lo} to {hi}, not {shorten(q[key], 40)!r}",
                            parameter=key)
        n = int(v)
        if n < lo:
            raise HttpError(400, f"{key}: must be a whole number from {lo} to {hi}, not {n}", parameter=key)
        q[key] = str(min(n, hi))
    return q


def json_depth_ok(v, limit: int = MAX_JSON_DEPTH) -> bool:
    """Iterative (no recursion): True when v is at most limit containers deep."""
    stack = [(v, 1)]
    while stack:
        x, d = stack.pop()
        if isinstance(x, dict):
            x = list(x.values())
        if isinstance(x, list):
            if d > limit:
                return False
            stack.extend((y, d + 1) for y in x if isinstance(y, (dict, list)))
    return True


def parse_body(headers, read, limit: int, method: str) -> dict:
    """The request body as a JSON object, or HttpError (400/413) naming the problem. read(n) reads
    exactly n bytes (fewer: the client went away)."""
    if headers.get("Transfer-Encoding"):
        raise HttpError(400, "Transfer-Encoding is not supported: send a Content-Length")
    cl = headers.get_all("Content-Length") or []
    if len(cl) > 1:
        raise HttpError(400, "more than one Content-Length header")
    if not cl:
        if method == "POST":
            raise HttpError(400, "POST needs a Content-Length header")
        return {}
    v = cl[0].strip()
    if not (v.isascii() and v.isdigit() and len(v) <= 18):
        raise HttpError(400, f"Content-Length must be a non-negative whole number, not {shorten(cl[0], 40)!r}")
    length = int(v)
    if length > limit:
        raise HttpError(413, f"request body is {length} bytes, the limit on this socket is {limit} bytes",
                        limit=limit)
    if length == 0:
        return {}
    raw = read(length)
    if len(raw) < length:
        raise ConnectionError("the client sent less than its Content-Length")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise HttpError(400, f"bad request body: not UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start})") from None
    del raw
    try:
        body = json.loads(text)
    except RecursionError:
        raise HttpError(400, f"bad request body: JSON nested more than {MAX_JSON_DEPTH} levels deep") from None
    except ValueError as e:  # includes UnicodeDecodeError: not UTF-8
        raise HttpError(400, f"bad request body: {shorten(str(e), 200)}") from None
    if not isinstance(body, dict):
        raise HttpError(400, f"bad request body: must be a JSON object, not {_type_name(body)}")
    if not json_depth_ok(body):
        raise HttpError(400, f"bad request body: JSON nested more than {MAX_JSON_DEPTH} levels deep")
    check_body(body)
    return body


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
    def __init__(self, pipeline: Pipeline, socket_path: str, ro_socket_path: str | None,
                 socket_group: int | None = None, reconcile_interval: float = 2.0,
                 tcp_listen: str | None = None, tcp_token: str | None = None):
        self.p = pipeline
        self.tcp_listen, self.tcp_token = tcp_listen, tcp_token
        self.reconcile_interval = reconcile_interval
        self.socket_group = socket_group
        self.socket_path = socket_path
        self.ro_socket_path = ro_socket_path
        self.servers: list[socketserver.BaseServer] = []
        self.jobs = Jobs()
        self.routes: dict[tuple[str, str], Route] = {
            ("GET", "/status"): Route(self.status),
            ("GET", "/config"): Route(self.config),
            ("GET", "/log"): Route(self.log),
            ("GET", "/diff"): Route(self.diff),
            ("POST", "/diff"): Route(self.diff_candidate),
            ("GET", "/render"): Route(self.render),
            ("POST", "/validate"): Route(self.validate),
            ("GET", "/counters"): Route(self.counters),
            ("POST", "/trace"): Route(self.trace),
            ("POST", "/commit"): Route(self.commit, write=True),
            ("POST", "/apply"): Route(self.apply, write=True),
            ("POST", "/rollback"): Route(self.rollback, write=True),
            ("POST", "/confirm"): Route(self.confirm, write=True),
            ("GET", "/audit"): Route(self.audit),
            ("GET", "/jobs"): Route(self.job_list),
        }
        from .leases_api import register as register_leases
        from .observe_api import register

        register(self)
        register_leases(self)

    # -- handlers ------------------------------------------------------------------------

    def status(self, caller: Caller, q: dict, body: dict) -> dict:
        st = self.p.status()
        st["sockets"] = {"rw": self.socket_path, "ro": self.ro_socket_path}
        st["read_only"] = caller.read_only
        st["pid"] = os.getpid()
        st["jobs"] = [j.to_dict() for j in self.jobs.all()]
        try:
            from .pipeline import validate_text as cached  # HEAD is parsed once, not per poll

            cfg = cached(self.p.repo.read())[0]
            st["hostname"] = cfg.system.hostname if cfg is not None else None
        except Exception:  # noqa: BLE001 - status must always answer
            st["hostname"] = None
        return st

    def config(self, caller, q, body):
        rev = q.get("rev")
        r = self.p.repo.resolve(rev)
        return {"rev": r, "text": self.p.repo.read(r)}

    def log(self, caller, q, body):
        n = int(q.get("n", 50))
        return {"entries": [e.to_dict() for e in self.p.repo.log(n)]}

    def diff(self, caller, q, body):
        a = q.get("a") or "HEAD~1"
        b = q.get("b") or "HEAD"
        return {"a": self.p.repo.resolve(a), "b": self.p.repo.resolve(b), "diff": self.p.repo.diff(a, b)}

    def diff_candidate(self, caller, q, body):
        text = _need(body, "config")
        base = body.get("base") or "HEAD"
        out = {"base": self.p.repo.resolve(base), "diff": self.p.repo.diff(base, text_b=text)}
        from ..model import validate_text

        cfg, problems = validate_text(text)
        out["problems"] = [p.to_dict() for p in problems]
        if cfg is not None:
            import difflib

            old_cfg, _ = validate_text(self.p.repo.read(base))
            old = render(old_cfg).text() if old_cfg else ""
            out["nft_diff"] = "".join(difflib.unified_diff(old.splitlines(True), render(cfg).text().splitlines(True),
                                                           "HEAD.nft", "candidate.nft"))
        return out

    def render(self, caller, q, body):
        from ..model import validate_text

        r = self.p.repo.resolve(q.get("rev"))
        cfg, problems = validate_text(self.p.repo.read(r))
        if cfg is None:
            raise HttpError(422, "the revision does not validate", problems=[p.to_dict() for p in problems])
        return {"rev": r, "nft": render(cfg).text()}

    def validate(self, caller, q, body):
        text = _need(body, "config")
        try:
            # The read-only socket never makes the agent open a path from the request (no reads of
            # root's files, no blocking on a FIFO, no existence oracle): file-backed checks are skipped.
            cfg, _rs, warnings = self.p.check_text(text, files=not caller.read_only)
        except Refused as e:
            return {"ok": False, "problems": [p.to_dict() for p in e.problems]}
        if caller.read_only and getattr(self.p, "services", None) is not None:
            warnings = [*warnings, *self.p.services.blocklists(cfg, files=False)[1]]
        return {"ok": True, "problems": [p.to_dict() for p in warnings]}

    def trace(self, caller, q, body):
        """Would this packet pass? Against HEAD, or a candidate document when one is sent."""
        from ..model import validate_text
        from ..trace.evaluator import Packet, Tracer

        text = body.get("config") or self.p.repo.read()
        cfg, problems = validate_text(text)
        if cfg is None:
            raise HttpError(422, "the configuration does not validate", problems=[p.to_dict() for p in problems])
        pk = _need(body, "packet")
        check_packet(pk)
        try:
            pkt = Packet(**{k: v for k, v in pk.items() if v is not None})
        except (TypeError, ValueError) as e:
            raise HttpError(400, f"bad packet: {e}") from None
        if pkt.iif not in cfg.interfaces and pkt.iif != "lo":
            raise HttpError(400, f"--in {pkt.iif}: no such interface in the configuration "
                                 f"({', '.join(cfg.interfaces)})")
        res = Tracer(cfg).trace(pkt).to_dict()
        res["config"] = "candidate" if body.get("config") else "running"
        return res

    def counters(self, caller, q, body):
        from ..host import nft as nfthost

        return {"counters": nfthost.counters()}

    def commit(self, caller, q, body):
        """Commit and apply. With ``wait`` (seconds) the answer comes within that time: the
        outcome, or 202 ``{"state": "running", "job", "rev"}`` while the commit goes on in the
        background (``GET /v1/jobs?id=`` and ``status.jobs`` tell how it ended)."""
        text = _need(body, "config")
        msg = _need(body, "message")
        author = body.get("author") or caller.user
        confirm = body.get("confirm")
        if confirm is not None and (not isinstance(confirm, int) or not 1 <= confirm <= 86400):
            raise HttpError(400, "--confirm: seconds must be a whole number from 1 to 86400")
        wait = body.get("wait")
        if wait is not None and (isinstance(wait, bool) or not isinstance(wait, (int, float))
                                 or not 0 <= wait <= MAX_WAIT):
            raise HttpError(400, f"wait: seconds must be a number from 0 to {MAX_WAIT}")
        log.info("commit by %s (uid %s pid %s): %s", author, caller.uid, caller.pid, msg)
        base, force, who = body.get("base", "HEAD"), bool(body.get("force")), _who(caller, body)
        conn_kind = "API" if caller.tcp_peer else "SSH"
        job = self.jobs.start("commit", lambda job: self.p.commit(
            text, msg, author, base=base, confirm=confirm, force=force, ssh=caller.ssh, who=who,
            conn_kind=conn_kind, on_rev=job.set_rev), code_of=_code)
        if not job.done.wait(wait):
            return 202, {"state": "running", "job": job.id, "rev": job.rev,
                         "message": "the commit is still running; `talgate status` shows how it ends"}
        if job.exc is not None:
            raise job.exc
        return {**job.result, "state": "landed", "job": job.id}

    def job_list(self, caller, q, body):
        job_id = q.get("id")
        if job_id is None:
            return {"jobs": [j.to_dict() for j in self.jobs.all()]}
        job = self.jobs.get(job_id)
        if job is None:
            head = self.p.repo.head()
            raise HttpError(404, f"id: no job {job_id[:40]!r}: the agent keeps its last {self.jobs.keep} jobs and none "
                                 f"across a restart; HEAD is {head[:12] if head else 'empty'} (a commit landed only "
                                 "if HEAD is its revision or came after it)", head=head)
        return {"job": job.to_dict()}

    def apply(self, caller, q, body):
        r = self.p.apply(body.get("rev"))
        self.p.audit.record("apply", _who(caller, body), rev=r["rev"], changes=r["changes"])
        return r

    def rollback(self, caller, q, body):
        author = body.get("author") or caller.user
        return self.p.rollback(body.get("rev"), author, base=body.get("base", "HEAD"), who=_who(caller, body))

    def confirm(self, caller, q, body):
        return self.p.confirm(_who(caller, body))

    def audit(self, caller, q, body):
        return {"entries": self.p.audit.read(int(q.get("n", 100)))}

    # -- dispatch ------------------------------------------------------------------------

    def dispatch(self, method: str, path: str, caller: Caller, body: dict) -> tuple[int, dict]:
        u = urlparse(path)
        shown = shorten(u.path, 200)
        if not u.path.startswith(API):
            return 404, {"error": f"unknown path {shown}"}
        route = self.routes.get((method, u.path[len(API):]))
        if route is None:
            return 404, {"error": f"unknown endpoint {method} {shown}"}
        if route.write and caller.read_only:
            log.warning("refused write %s %s from read-only socket (uid %s)", method, shown, caller.uid)
            return 403, {"error": "read-only connection: the agent refuses writes on this socket"}
        try:
            q = check_query({k: v[-1] for k, v in parse_qs(u.query, max_num_fields=50).items()})
        except HttpError as e:
            return e.status, {"error": e.error, **e.extra}
        except ValueError as e:  # more than 50 query fields
            return 400, {"error": f"bad query: {e}"}
        try:
            out = route.fn(caller, q, body)
            return out if isinstance(out, tuple) else (200, out)
        except HttpError as e:
            return e.status, {"error": e.error, **e.extra}
        except Refused as e:
            return e.status, {"error": "refused: nothing was changed", "problems": [p.to_dict() for p in e.problems],
                              **({"code": e.code} if e.code else {})}
        except Conflict as e:
            return 409, {"error": str(e), "head": e.head}
        except ApplyFailed as e:
            return 500, {"error": str(e), "code": e.code}
        except RepoError as e:
            return 400, {"error": str(e)}
        except (MemoryError, RecursionError) as e:
            log.error("request %s %s: %s", method, shown, e.__class__.__name__)
            return 413, {"error": f"the request needs more resources than the agent allows ({e.__class__.__name__})"}
        except Exception as e:  # noqa: BLE001 - never kill the agent over one request
            log.exception("internal error")
            return 500, {"error": f"internal error: {e.__class__.__name__}: {e}"}

    # -- sockets -------------------------------------------------------------------------

    def _handler(self, read_only: bool, token: str | None = None, limits: Limits = RW_LIMITS):
        """The HTTP handler class for one listener. Unix sockets: the peer is vouched for by the
        kernel (SO_PEERCRED). TCP: a bearer token is required and the TCP peer is the caller's
        connection for the lockout check."""
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

            def _caller(self, body: dict) -> Caller | None:
                if token is None:
                    uid, pid = _peer(self.connection)
                    return Caller(uid, pid, _username(uid), read_only, body.get("ssh_connection"))
                got = self.headers.get("Authorization", "")
                if not hmac.compare_digest(got.encode(errors="replace"), f"Bearer {token}".encode()):
                    return None
                peer, local = self.connection.getpeername(), self.connection.getsockname()
                conn = f"{_host(peer[0])} {peer[1]} {_host(local[0])} {local[1]}"
                return Caller(None, None, "api", read_only, conn, tcp_peer=_host(peer[0]))

            def _handle(self, method):
                if token is not None and not hmac.compare_digest(
                        self.headers.get("Authorization", "").encode(errors="replace"), f"Bearer {token}".encode()):
                    # Before reading the body: an unauthenticated peer gets nothing buffered.
                    self.close_connection = True
                    if self._read_done():
                        self._send(401, {"error": "missing or wrong API token"})
                    return
                try:
                    body = parse_body(self.headers, self.rfile.read, limits.body, method)
                except HttpError as e:
                    # The body was not (fully) read: answer and close, never read the rest.
                    self.close_connection = True
                    if self._read_done():
                        self._send(e.status, {"error": e.error, **e.extra})
                    return
                except (ConnectionError, OSError):
                    self.close_connection = True
                    return
                if not self._read_done():
                    self.close_connection = True
                    return
                caller = self._caller(body)
                if caller is None:
                    status, out = 401, {"error": "missing or wrong API token"}
                else:
                    gate = None if (method, urlparse(self.path).path.removeprefix(API)) in LIGHT else workers
                    if gate is not None and not gate.acquire(timeout=WORK_WAIT):
                        status, out = 503, {"error": "the agent is busy on this socket: try again"}
                    else:
                        try:
                            status, out = agent.dispatch(method, self.path, caller, body)
                        finally:
                            if gate is not None:
                                gate.release()
                    del body
                self._send(status, out)

            def _send(self, status: int, out: dict):
                if status >= 400 and isinstance(out.get("error"), str):
                    out["error"] = shorten(out["error"], MAX_ERROR)
                    out.setdefault("code", CODES.get(status, "bad_request" if status < 500 else "internal"))
                data = json.dumps(out, default=str).encode()
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
    data = json.dumps({"error": "too many connections to the agent on this socket: try again",
                       "code": "busy"}).encode()
    head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n").encode()
    try:
        conn.setblocking(False)
        conn.send(head + data)
    except OSError:
        pass


def _who(caller: Caller, body: dict) -> dict:
    """Who did it and from where: the client's claim (user, SSH key comment, Kubernetes user) next
    to what the kernel vouches for (the socket peer's uid and pid)."""
    who = {"user": body.get("author") or caller.user, "unix_user": caller.user, "uid": caller.uid,
           "pid": caller.pid, "via": "read-only socket" if caller.read_only else "socket"}
    if caller.tcp_peer:
        who["via"] = f"api from {caller.tcp_peer}"
    elif caller.ssh:
        who["via"] = f"ssh from {caller.ssh.split()[0]}"
    if body.get("identity"):
        who["identity"] = str(body["identity"])[:200]
    return who


def _code(e: BaseException) -> str:
    """The stable code of a failed job's error (the same the synchronous answer carries)."""
    if isinstance(e, (ApplyFailed, Refused)):
        return e.code or "refused"
    if isinstance(e, Conflict):
        return "conflict"
    if isinstance(e, HttpError):
        return e.extra.get("code") or "bad_request"
    if isinstance(e, RepoError):
        return "repo"
    return "internal"


def _need(body: dict, key: str):
    if key not in body or body[key] in (None, ""):
        raise HttpError(400, f"missing {key!r} in request")
    return body[key]


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
