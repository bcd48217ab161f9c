"""chrony: NTP (and NTS-KE) for the LAN. Restarted by its runner when ``.generation`` changes.
The NTS server key and certificate come from the box CA (backend/host/pki.py)."""

from __future__ import annotations

import os
from pathlib import Path

from ...model import Problem
from ...model.services import ntp_zones, zone_interfaces
from ...render import chrony as r_chrony
from ..applier import Desired
from ..pki import BoxCA
from .base import DaemonApplier, read, write_atomic


def nts_names(cfg) -> list[str]:
    names = sorted({cfg.system.hostname} | ({f"{cfg.system.hostname}.{cfg.system.domain}"}
                                             if cfg.system.domain else set()))
    # Clients that name the router by address (the DHCP/RA-announced NTP server) verify an IP SAN.
    return names + sorted({str(a.ip) for i in zone_interfaces(cfg, ntp_zones(cfg))
                           for a in [*cfg.interfaces[i].ipv4, *cfg.interfaces[i].ipv6]})


class ChronyApplier(DaemonApplier):
    name = "chrony"
    file = "chrony.conf"
    section = "ntp"

    def render(self, desired: Desired) -> tuple[str | None, list[Problem]]:
        return r_chrony.render_chrony(desired.cfg, self.d.paths), []

    def check_command(self, f: Path) -> list[str]:
        return ["chronyd", "-p", "-f", str(f)]

    def dirs(self) -> None:
        super().dirs()
        os.chmod(self.run_dir(), 0o750)  # chronyd refuses a command socket dir others can read
        (self.d.state_dir / "chrony").mkdir(parents=True, exist_ok=True)

    @property
    def ca(self) -> BoxCA:
        return BoxCA(self.d.state_dir / "ca")

    def _nts(self, cfg) -> tuple[Path, Path, Path, str] | None:
        if cfg.ntp is None or not cfg.ntp.enabled or not cfg.ntp.nts_server:
            return None
        key, crt = (self.d.host_path(p) for p in r_chrony.nts_files(self.d.paths))
        return key, crt, key.with_name("nts.names"), " ".join(nts_names(cfg))

    def extra_files(self, desired: Desired, text: str) -> bool:
        """Issue the NTS server key/certificate from the box CA when needed; True when new."""
        nts = self._nts(desired.cfg)
        if nts is None:
            return False
        key, crt, stamp, names = nts
        if key.exists() and crt.exists() and read(stamp) == names:
            return False
        self._fault("chrony.cert")
        ca = self.ca
        for f in (key, crt, stamp, ca.key_path, ca.crt_path):
            self.remember(f)
        ca.issue_server(key, crt, names.split(), desired.cfg.system.hostname)
        write_atomic(stamp, names)
        return True

    def extra_drift(self, desired: Desired, text: str) -> list[str]:
        nts = self._nts(desired.cfg)
        if nts is None:
            return []
        key, crt, stamp, names = nts
        if key.exists() and crt.exists() and read(stamp) == names:
            return []
        return ["service chrony: the NTS key/certificate is missing or names other hosts"]

    def status_extra(self) -> dict:
        nts = self._nts(self.d.cfg) if self.d.cfg is not None else None
        return {"nts_ca": self.ca.status()} if nts is not None else {}
