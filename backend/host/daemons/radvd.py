"""radvd: router advertisements. Its runner sends SIGHUP when ``.generation`` changes."""

from __future__ import annotations

from pathlib import Path

from ...model import Problem
from ...render import radvd as r_radvd
from ..applier import Desired
from .base import DaemonApplier


class RadvdApplier(DaemonApplier):
    name = "radvd"
    file = "radvd.conf"
    section = "ra"

    def render(self, desired: Desired) -> tuple[str | None, list[Problem]]:
        return r_radvd.render_radvd(desired.cfg), []

    def check_command(self, f: Path) -> list[str]:
        return ["radvd", "-c", "-C", str(f)]
