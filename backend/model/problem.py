"""A problem with a document: a path into it and a message (errors refuse, warnings are shown)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    severity: str = "error"  # "error" | "warning"

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
