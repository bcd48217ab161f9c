"""The one client of the agent's API (used by the CLI and the console): one typed method per route
in ``backend/api/routes.py``, answers validated against the route's response model.

Errors raise :class:`AgentError` with the agent's stable ``code``, ``problems`` (``[{path,
message}]``) and ``detail``; callers act on those, never on the message text. A transport can be
injected (``transport=``): the console's test double runs the real service layer in-process.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

from pydantic import BaseModel, ValidationError

from .api import models as m
from .api.errors import validation_problems
from .api.routes import BY_HANDLER, PREFIX

DEFAULT_SOCKETS = ("/run/talgate/agent.sock", "/run/talgate-lab/agent.sock")
Transport = Callable[[str, str, "bytes | None", dict], "tuple[int, bytes]"]


class AgentError(Exception):
    """The agent refused (``code`` from backend/api/errors.py), or could not be reached
    (``code == "unreachable"``, status 0), or answered something that is not the API
    (``code == "bad_response"``)."""

    def __init__(self, status: int, payload: dict):
        self.status = status
        self.payload = payload if isinstance(payload, dict) else {}
        self.code: str = str(self.payload.get("code") or ("unreachable" if status == 0 else "internal"))
        self.message: str = str(self.payload.get("message") or f"agent answered {status}")
        self.detail: dict = self.payload.get("detail") or {}
        super().__init__(self.message)

    @property
    def problems(self) -> list[dict]:
        return list(self.payload.get("problems") or [])


class AgentUnreachable(AgentError):
    def __init__(self, path: str, err: Exception):
        super().__init__(0, {"code": "unreachable", "message": f"cannot reach the agent at {path}: {err}"})
        self.cause = err

    @property
    def timed_out(self) -> bool:
        """The request may have been sent and acted on: no answer came in time."""
        return isinstance(self.cause, TimeoutError)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def find_socket(explicit: str | None = None) -> str:
    if explicit:
        return explicit
    env = os.environ.get("TALGATE_SOCKET")
    if env:
        return env
    for p in DEFAULT_SOCKETS:
        if Path(p).exists():
            return p
    return DEFAULT_SOCKETS[0]


class AgentClient:
    def __init__(self, socket_path: str | None = None, timeout: float = 60.0, transport: Transport | None = None,
                 who: dict | None = None):
        self.socket_path = "in-process" if transport is not None and socket_path is None else find_socket(socket_path)
        self.timeout = timeout
        self.transport = transport
        self.who = who  # who the caller says it is (default: from the environment)

    # -- the wire ----------------------------------------------------------------------------

    def _send(self, method: str, url: str, data: bytes | None, headers: dict,
              timeout: float | None = None) -> tuple[int, bytes]:
        if self.transport is not None:
            return self.transport(method, url, data, headers)
        timeout = timeout or self.timeout
        try:
            if self.socket_path.startswith("http://"):
                conn = http.client.HTTPConnection(self.socket_path[7:].rstrip("/"), timeout=timeout)
            else:
                conn = _UnixConnection(self.socket_path, timeout)
            conn.request(method, url, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            conn.close()
        except (OSError, http.client.HTTPException) as e:
            raise AgentUnreachable(self.socket_path, e) from None
        return resp.status, raw

    def request(self, method: str, path: str, body: dict | None = None, *, timeout: float | None = None,
                **query) -> dict:
        """A raw call (path under /v1): the JSON answer, or AgentError with the agent's code."""
        q = {k: v for k, v in query.items() if v is not None}
        url = PREFIX + path + (("?" + urlencode(q)) if q else "")
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if os.environ.get("TALGATE_TOKEN"):
            headers["Authorization"] = f"Bearer {os.environ['TALGATE_TOKEN']}"
        status, raw = self._send(method, url, data, headers, timeout)
        try:
            payload = json.loads(raw) if raw else {}
        except ValueError:
            payload = {"code": "bad_response", "message": raw.decode(errors="replace")[:500]}
        if not isinstance(payload, dict):
            payload = {"code": "bad_response", "message": f"not a JSON object: {str(payload)[:200]}"}
        if status >= 300:
            raise AgentError(status, payload)
        return payload

    def call(self, handler: str, *, timeout: float | None = None, **params) -> BaseModel:
        """Call the route whose service method is ``handler``: the request is checked against
        its model here (``bad_request`` before anything is sent), the answer against its response."""
        route = BY_HANDLER[handler]
        data: dict = {}
        if route.request is not None:
            if route.method == "GET":
                params = {k: v for k, v in params.items() if v is not None}
            try:
                data = route.request.model_validate(params).model_dump(mode="json", exclude_unset=True)
            except ValidationError as e:
                probs = validation_problems(e)
                raise AgentError(400, {"code": "bad_request", "problems": probs, "detail": {}, "message": "; ".join(
                    f"{p['path']}: {p['message']}" for p in probs[:3])}) from None
        if route.method == "GET":
            payload = self.request("GET", route.path, None, timeout=timeout, **data)
        else:
            payload = self.request(route.method, route.path, data, timeout=timeout)
        try:
            return route.response.model_validate(payload)
        except ValidationError as e:
            raise AgentError(502, {"code": "bad_response", "message": f"unexpected answer to {handler}: {e}"}) from None

    def _who(self) -> dict:
        if self.who is not None:
            return dict(self.who)
        d = {"author": os.environ.get("TALGATE_USER") or os.environ.get("SUDO_USER") or os.environ.get("USER") or None}
        if os.environ.get("TALGATE_IDENTITY"):  # e.g. the SSH key comment set by a forced command
            d["identity"] = os.environ["TALGATE_IDENTITY"][:200]
        if os.environ.get("SSH_CONNECTION"):
            d["ssh_connection"] = os.environ["SSH_CONNECTION"][:200]
        return {k: v for k, v in d.items() if v is not None}

    # -- reads -------------------------------------------------------------------------------

    def status(self) -> m.StatusResponse:
        return self.call("status")

    def config(self, rev: str | None = None) -> m.ConfigResponse:
        return self.call("config", rev=rev)

    def log(self, n: int = 50) -> list[m.LogEntry]:
        return self.call("log", n=n).entries

    def diff(self, a: str | None = None, b: str | None = None) -> m.DiffResponse:
        return self.call("diff", a=a, b=b)

    def diff_candidate(self, text: str, base: str | None = None) -> m.CandidateDiffResponse:
        return self.call("diff_candidate", config=text, base=base)

    def render(self, rev: str | None = None) -> m.RenderResponse:
        return self.call("render", rev=rev)

    def validate(self, text: str) -> m.ValidateResponse:
        return self.call("validate", config=text)

    def trace(self, packet: dict, candidate: str | None = None) -> m.TraceResponse:
        return self.call("trace", packet={k: v for k, v in packet.items() if v is not None}, config=candidate)

    def counters(self) -> list[m.Counter]:
        return self.call("counters").counters

    def audit(self, n: int = 100) -> list[dict]:
        return self.call("audit", n=n).entries

    def interfaces(self) -> list[m.Interface]:
        return self.call("interfaces").interfaces

    def neighbours(self) -> list[m.Neighbour]:
        return self.call("neighbours").neighbours

    def conntrack_top(self, n: int = 10) -> m.ConntrackTopResponse:
        return self.call("conntrack_top", n=n)

    def history(self, seconds: int | None = None) -> m.HistoryResponse:
        return self.call("history", seconds=seconds)

    def leases(self) -> list[m.Lease]:
        """DHCPv4 and DHCPv6 leases Kea holds (read-only socket too)."""
        return self.call("leases").leases

    def routes(self, table: str = "all") -> m.RoutesResponse:
        """Routing tables: connected, static, learned by BGP/OSPF (read-only socket too)."""
        return self.call("routes", table=table)

    # -- writes ------------------------------------------------------------------------------

    def commit(self, text: str, message: str, base: str | None = "HEAD", confirm: int | None = None,
               force: bool = False, wait: float | None = None) -> m.CommitResponse:
        """With ``wait``, the agent answers within that many seconds: the outcome, or ``state ==
        "running"`` with a ``job`` id (see :meth:`job`); the socket waits a little longer."""
        extra = {} if wait is None else {"wait": wait}
        return self.call("commit", timeout=None if wait is None else max(self.timeout, wait + 10), config=text,
                         message=message, base=base, confirm=confirm, force=force, **extra, **self._who())

    def job(self, job_id: str) -> m.Job:
        return self.call("jobs", id=job_id).job

    def jobs(self) -> list[m.Job]:
        return self.call("jobs").jobs or []

    def confirm(self) -> m.ConfirmResponse:
        return self.call("confirm", **self._who())

    def apply(self, rev: str | None = None) -> m.ApplyResponse:
        return self.call("apply", rev=rev, **self._who())

    def rollback(self, rev: str | None = None, base: str | None = "HEAD") -> m.CommitResponse:
        return self.call("rollback", rev=rev, base=base, **self._who())
