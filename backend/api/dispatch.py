"""Transport-independent request handling: look the route up, refuse writes on a read-only
connection, validate the request model (``bad_request`` with field paths), call the service,
check and serialize its typed answer, map every failure to an error with a stable code.

``backend/agent/server.py`` (HTTP over Unix/TCP sockets) and :class:`InProcessTransport` (the
console's test double and the in-process contract tests) both go through :func:`dispatch`, so the
two answer byte-for-byte alike.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ValidationError

from .errors import ApiError, validation_problems
from .models import Caller
from .routes import BY_KEY, PREFIX, ROUTES

log = logging.getLogger("talgate.api")


def parse_body(raw: bytes) -> dict:
    """A request body → a JSON object (``bad_request`` otherwise). Empty means ``{}``."""
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise ApiError("bad_request", f"the request body is not JSON: {e}",
                       [{"path": "(body)", "message": "not JSON", "severity": "error"}]) from None
    if not isinstance(body, dict):
        raise ApiError("bad_request", "the request body must be a JSON object",
                       [{"path": "(body)", "message": "expected a JSON object", "severity": "error"}])
    return body


def _request(route, query: str, body: dict) -> BaseModel | None:
    if route.request is None:
        data: dict = body if route.method != "GET" else {}
        if data or (route.method == "GET" and query):
            extra = sorted(data) or sorted(parse_qs(query))
            raise ApiError("bad_request", f"{route.method} {PREFIX}{route.path} takes no parameters",
                           [{"path": k, "message": "unexpected parameter", "severity": "error"} for k in extra])
        return None
    if route.method == "GET":
        data = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=False).items()}
    else:
        data = body
    try:
        return route.request.model_validate(data)
    except ValidationError as e:
        probs = validation_problems(e)
        raise ApiError("bad_request", "the request does not match " + route.request.__name__ + ": "
                       + "; ".join(f"{p['path']}: {p['message']}" for p in probs[:3]), probs) from None


def call(service, method: str, target: str, body: dict, caller: Caller) -> tuple[int, BaseModel | ApiError]:
    u = urlsplit(target)
    path = u.path[len(PREFIX):] if u.path.startswith(PREFIX + "/") else None
    route = BY_KEY.get((method, path)) if path is not None else None
    if route is None:
        known = path is not None and any(r.path == path for r in ROUTES)
        return 404, ApiError("not_found", f"{'no ' + method + ' on' if known else 'unknown endpoint'} {u.path}")
    if route.write and caller.read_only:
        log.warning("refused write %s %s from the read-only socket (uid %s)", method, u.path, caller.uid)
        return 403, ApiError("read_only", "read-only connection: the agent refuses writes on this socket")
    try:
        req = _request(route, u.query, body)
        fn = getattr(service, route.handler)
        out = fn(caller) if route.request is None else fn(req, caller)
        if not isinstance(out, route.response):
            out = route.response.model_validate(out)
        return 200, out
    except ApiError as e:
        return e.status, e
    except Exception as e:  # noqa: BLE001 - never kill the agent over one request
        log.exception("internal error in %s %s", method, u.path)
        return 500, ApiError("internal", f"internal error: {e.__class__.__name__}: {e}")


def dispatch(service, method: str, target: str, body: dict, caller: Caller) -> tuple[int, dict]:
    """(HTTP status, JSON-ready answer) for one request."""
    status, out = call(service, method, target, body, caller)
    if isinstance(out, ApiError):
        return status, out.to_dict()
    return status, out.model_dump(mode="json")


def encode(payload: dict) -> bytes:
    return json.dumps(payload, default=str).encode()


class InProcessTransport:
    """The client's transport for an in-process service: same dispatch, same JSON on the wire."""

    def __init__(self, service, caller: Caller):
        self.service, self.caller = service, caller

    def __call__(self, method: str, target: str, data: bytes | None, headers: dict) -> tuple[int, bytes]:
        try:
            body = parse_body(data or b"")
        except ApiError as e:
            return e.status, encode(e.to_dict())
        status, payload = dispatch(self.service, method, target, body, self.caller)
        return status, encode(payload)
