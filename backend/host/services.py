"""Service daemons (Kea, radvd, Unbound, chrony, avahi): render their configs into the rendered
folder and reload them. The pipeline calls ``check`` before committing and ``apply`` while
converging; the LAN-services work fills this in (no services are configured yet)."""

from __future__ import annotations

from pathlib import Path

from ..model import Problem
from ..model.config import RouterConfig


class ServiceApplier:
    def __init__(self, rendered_dir: str | Path | None):
        self.rendered_dir = Path(rendered_dir) if rendered_dir else None

    def check(self, cfg: RouterConfig) -> list[Problem]:
        """Problems the daemons' own checkers find in the rendered configs (errors refuse the commit)."""
        return []

    def apply(self, cfg: RouterConfig) -> int:
        """Write changed configs and reload their daemons; returns the number of changes."""
        return 0

    def status(self) -> dict:
        return {}
