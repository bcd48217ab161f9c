"""avahi: mDNS reflection between zones. Restarted by its runner when ``.generation`` changes
(it cannot re-read its config)."""

from __future__ import annotations

import configparser
from pathlib import Path

from ...model import Problem
from ...render import avahi as r_avahi
from ..applier import Desired
from .base import DaemonApplier


class AvahiApplier(DaemonApplier):
    name = "avahi"
    file = "avahi-daemon.conf"
    section = "mdns"

    def render(self, desired: Desired) -> tuple[str | None, list[Problem]]:
        return r_avahi.render_avahi(desired.cfg), []

    def checker(self, f: Path) -> str | None:
        try:
            configparser.ConfigParser(strict=True).read_string(f.read_text())
            return None
        except configparser.Error as e:
            return str(e)
