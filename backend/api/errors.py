"""API errors: ``{code, message, problems: [{path, message}], detail}`` with a stable ``code``.

Clients act on ``code`` (and ``problems[].path``), never on ``message``: the wording may change.
"""

from __future__ import annotations

from typing import Any

# code → (HTTP status, what it means). The codes are the contract; add, never rename.
CODES: dict[str, tuple[int, str]] = {
    "bad_request": (400, "the request does not match the endpoint's model (problems name the fields)"),
    "invalid": (422, "the configuration does not validate (problems name the config paths)"),
    "kernel_refused": (422, "the kernel (or a daemon's checker) would refuse the rendered configuration"),
    "needs_confirm": (400, "a forced commit needs a confirm time: it must roll itself back unless confirmed"),
    "conflict": (409, "the edit's base revision is not HEAD any more (detail.head is HEAD now)"),
    "confirm_pending": (409, "a commit is waiting for confirmation: confirm or roll back first"),
    "would_cut": (409, "the commit would cut an access path (detail.cuts); force it with a confirm time"),
    "nothing_to_confirm": (409, "no commit is waiting for confirmation"),
    "nothing_to_roll_back": (409, "the rollback target is HEAD's configuration, or HEAD has no parent"),
    "not_found": (404, "no such endpoint or revision"),
    "unauthorized": (401, "missing or wrong API token"),
    "read_only": (403, "a write on the read-only socket"),
    "too_large": (413, "the request body is larger than the agent accepts"),
    "timeout": (408, "the request was not received in time"),
    "busy": (503, "too many requests at once; try again"),
    "repo_busy": (503, "the config repository is locked by another writer (a git process); nothing changed"),
    "apply_failed": (500, "applying failed; every applier was put back (detail.restored: the revision, None "
                          "if restoring failed too; detail.stage: what failed) and HEAD did not move"),
    "internal": (500, "an unexpected error in the agent (logged); nothing is assumed to have changed"),
}


def status_of(code: str) -> int:
    return CODES.get(code, (500, ""))[0]


class ApiError(Exception):
    """A refusal with a stable code. ``problems`` are ``{path, message[, severity]}`` dicts."""

    def __init__(self, code: str, message: str, problems: list[dict] | None = None, detail: dict | None = None):
        if code not in CODES:
            raise ValueError(f"unknown API error code {code!r}")
        self.code, self.message = code, message
        self.problems = list(problems or [])
        self.detail = dict(detail or {})
        super().__init__(message)

    @property
    def status(self) -> int:
        return status_of(self.code)

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "problems": self.problems, "detail": self.detail}


def problem(path: str, message: str, severity: str = "error") -> dict:
    return {"path": path, "message": message, "severity": severity}


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(request)"


def validation_problems(err, prefix: str = "") -> list[dict]:
    """A pydantic ValidationError → problems with dotted paths (``packet.src``, ``confirm``)."""
    out = []
    for e in err.errors(include_url=False):
        loc = tuple(x for x in e.get("loc", ()) if x not in ("function-after", "function-before"))
        path = _loc(loc)
        if prefix:
            path = prefix if path == "(request)" else f"{prefix}.{path}"
        out.append(problem(path, e.get("msg", "invalid value")))
    return out
