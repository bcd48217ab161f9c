"""Client for the agent's HTTP+JSON API over a Unix socket (used by the CLI and the console)."""

from __future__ import annotations

import http.client
import json
import os
import socket
from pathlib import Path
from urllib.parse import urlencode

DEFAULT_SOCKETS = ("/run/talgate/agent.sock", "/run/talgate-lab/agent.sock")


class AgentError(Exception):
    def __init__(self, status: int, payload: dict):
        self.status, self.payload = status, payload
        super().__init__(payload.get("error") or f"agent answered {status}")

    @property
    def problems(self) -> list[dict]:
        return self.payload.get("problems") or []


class AgentUnreachable(AgentError):
    def __init__(self, path: str, err: Exception):
        super().__init__(0, {"error": f"cannot reach the agent at {path}: {err}"})
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
    def __init__(self, socket_path: str | None = None, timeout: float = 60.0):
        self.socket_path = find_socket(socket_path)
        self.timeout = timeout

    def request(self, method: str, path: str, body: dict | None = None, *, timeout: float | None = None,
                **query) -> dict:
        q = {k: v for k, v in query.items() if v is not None}
        url = "/v1" + path + (("?" + urlencode(q)) if q else "")
        timeout = timeout or self.timeout
        try:
            if self.socket_path.startswith("http://"):
                conn = http.client.HTTPConnection(self.socket_path[7:].rstrip("/"), timeout=timeout)
            else:
                conn = _UnixConnection(self.socket_path, timeout)
            data = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if data is not None else {}
            if os.environ.get("TALGATE_TOKEN"):
                headers["Authorization"] = f"Bearer {os.environ['TALGATE_TOKEN']}"
            conn.request(method, url, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            conn.close()
        except (OSError, http.client.HTTPException) as e:
            raise AgentUnreachable(self.socket_path, e) from None
        try:
            payload = json.loads(raw) if raw else {}
        except ValueError:
            payload = {"error": raw.decode(errors="replace")}
        if resp.status >= 300:
            raise AgentError(resp.status, payload)
        return payload

    def _who(self) -> dict:
        d = {"author": os.environ.get("TALGATE_USER") or os.environ.get("SUDO_USER") or os.environ.get("USER") or None}
        if os.environ.get("TALGATE_IDENTITY"):  # e.g. the SSH key comment set by a forced command
            d["identity"] = os.environ["TALGATE_IDENTITY"]
        if os.environ.get("SSH_CONNECTION"):
            d["ssh_connection"] = os.environ["SSH_CONNECTION"]
        return d

    # convenience wrappers
    def status(self) -> dict:
        return self.request("GET", "/status")

    def config(self, rev: str | None = None) -> dict:
        return self.request("GET", "/config", rev=rev)

    def log(self, n: int = 50) -> list[dict]:
        return self.request("GET", "/log", n=n)["entries"]

    def diff(self, a: str | None = None, b: str | None = None) -> dict:
        return self.request("GET", "/diff", a=a, b=b)

    def diff_candidate(self, text: str, base: str | None = None) -> dict:
        return self.request("POST", "/diff", {"config": text, "base": base})

    def render(self, rev: str | None = None) -> dict:
        return self.request("GET", "/render", rev=rev)

    def validate(self, text: str) -> dict:
        return self.request("POST", "/validate", {"config": text})

    def trace(self, packet: dict, candidate: str | None = None) -> dict:
        return self.request("POST", "/trace", {"packet": packet, "config": candidate})

    def counters(self) -> dict:
        return self.request("GET", "/counters")["counters"]

    def commit(self, text: str, message: str, base: str | None = "HEAD", confirm: int | None = None,
               force: bool = False, wait: float | None = None) -> dict:
        """With ``wait``, the agent answers within that many seconds: the outcome, or
        ``{"state": "running", "job", "rev"}`` (see ``job``); the socket waits a little longer."""
        body = {"config": text, "message": message, "base": base, "confirm": confirm, "force": force, **self._who()}
        if wait is None:
            return self.request("POST", "/commit", body)
        return self.request("POST", "/commit", {**body, "wait": wait}, timeout=max(self.timeout, wait + 10))

    def job(self, job_id: str) -> dict:
        return self.request("GET", "/jobs", id=job_id)["job"]

    def confirm(self) -> dict:
        return self.request("POST", "/confirm", self._who())

    def audit(self, n: int = 100) -> list[dict]:
        return self.request("GET", "/audit", n=n)["entries"]

    def apply(self, rev: str | None = None) -> dict:
        return self.request("POST", "/apply", {"rev": rev, **self._who()})

    def rollback(self, rev: str | None = None) -> dict:
        return self.request("POST", "/rollback", {"rev": rev, **self._who()})
