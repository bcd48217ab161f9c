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


MAX_JSON_DEPTH = 16  # request bodies are 2 deep (the trace packet); more is an attack
MAX_QUERY_FIELDS = 50


def _bad(message: str, path: str = "(body)") -> ApiError:
    return ApiError("bad_request", message, [{"path": path, "message": message, "severity": "error"}])


def check_json(v, limit: int = MAX_JSON_DEPTH) -> None:
    """Iterative (no recursion): at most ``limit`` containers deep, every string UTF-8 text (JSON's
    \\ud800 escapes can smuggle unpaired surrogates). ``bad_request`` otherwise."""
    stack = [(v, 1, "")]
    while stack:
        x, d, path = stack.pop()
        if isinstance(x, str):
            try:
                x.encode("utf-8")
            except UnicodeEncodeError as e:
                raise _bad(f"not UTF-8 text (an unpaired surrogate at character {e.start})", path or "(body)") from None
            continue
        items = x.items() if isinstance(x, dict) else enumerate(x) if isinstance(x, list) else ()
        if isinstance(x, (dict, list)) and d > limit:
            raise _bad(f"JSON nested more than {limit} levels deep")
        for k, y in items:
            if isinstance(k, str):
                check_json(k, 1)
            sub = f"{path}.{k}" if isinstance(k, str) and path else (k if isinstance(k, str) else f"{path}[{k}]")
            stack.append((y, d + 1, sub))


def parse_body(raw: bytes) -> dict:
    """A request body → a JSON object (``bad_request`` otherwise). Empty means ``{}``."""
    if not raw:
        return {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _bad(f"the request body is not UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start})") from None
    try:
        body = json.loads(text)
    except RecursionError:
        raise _bad(f"JSON nested more than {MAX_JSON_DEPTH} levels deep") from None
    except ValueError as e:
        raise _bad(f"the request body is not JSON: {str(e)[:200]}") from None
    if not isinstance(body, dict):
        raise _bad("the request body must be a JSON object")
    check_json(body)
    return body


def _request(route, query: str, body: dict) -> BaseModel | None:
    if route.request is None:
        data: dict = body if route.method != "GET" else {}
        if data or (route.method == "GET" and query):
            extra = sorted(data) or sorted(parse_qs(query, max_num_fields=MAX_QUERY_FIELDS))
            raise ApiError("bad_request", f"{route.method} {PREFIX}{route.path} takes no parameters",
                           [{"path": k, "message": "unexpected parameter", "severity": "error"} for k in extra])
        return None
    if route.method == "GET":
        try:
            data = {k: v[-1] for k, v in parse_qs(query, max_num_fields=MAX_QUERY_FIELDS).items()}
        except ValueError:
            raise _bad(f"more than {MAX_QUERY_FIELDS} query parameters", "(query)") from None
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
        return 404, ApiError("not_found", f"{'no ' + method + ' on' if known else 'unknown endpoint'} {u.path[:200]}")
    if route.write and caller.read_only:
        log.warning("refused write %s %s from the read-only socket (uid %s)", method, u.path[:200], caller.uid)
        return 403, ApiError("read_only", "read-only connection: the agent refuses writes on this socket")
    try:
        req = _request(route, u.query, body)
        fn = getattr(service, route.handler)
        out = fn(caller) if route.request is None else fn(req, caller)
        status = 200
        if isinstance(out, tuple):  # (202, answer): accepted, still running
            status, out = out
        if not isinstance(out, route.response):
            out = route.response.model_validate(out)
        return status, out
    except ApiError as e:
        return e.status, e
    except (MemoryError, RecursionError) as e:
        log.error("request %s %s: %s", method, u.path[:200], e.__class__.__name__)
        return 413, ApiError("too_large", f"the request needs more resources than the agent allows "
                                          f"({e.__class__.__name__})")
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
