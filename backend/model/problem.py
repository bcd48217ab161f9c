"""A problem with a document: a path into it and a message (errors refuse, warnings are shown)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

MAX_MESSAGE = 500      # characters of one problem's message (inputs are echoed shortened)
MAX_PATH = 300         # characters of one problem's path


def shorten(text: str, limit: int) -> str:
    """text, cut to limit characters with a marker saying how much was left out."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"… ({len(text) - limit} more characters)"


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    severity: str = "error"  # "error" | "warning"

    def __post_init__(self):
        # Every problem is echoed to clients and may land in the audit log: bounded by construction.
        object.__setattr__(self, "path", shorten(str(self.path), MAX_PATH))
        object.__setattr__(self, "message", shorten(str(self.message), MAX_MESSAGE))

    def __str__(self) -> str:
        tag = "" if self.severity == "error" else "warning: "
        return f"{self.path}: {tag}{self.message}"

    def to_dict(self) -> dict:
        return asdict(self)


class ConfigError(Exception):
    """Raised with the problems that make a document unusable."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
