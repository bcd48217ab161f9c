"""Service daemons (Kea, radvd, Unbound, chrony, avahi): render their configs into the rendered
folder and reload them.

Each daemon is one applier module in ``backend/host/daemons/`` (on the shared base
``daemons/base.py``), registered in ``backend.host.applier.builtin``. The pipeline calls ``check``
before committing (blocklist files readable, each daemon's own checker accepts its rendered
config), ``apply`` while converging, ``drift`` in the reconcile loop (a rendered file that differs
from HEAD's is reported and rewritten) and ``status`` for ``talgate status``. This module keeps
the contract below and :class:`ServiceApplier`, all daemons as one object (tests, tools). The agent never starts daemons: in the lab the lab's supervisor does
(``backend/lab/supervisor.py``), on Kubernetes the service pods do. The contract with both:

- ``RENDERED/<svc>/<file>`` is replaced atomically, then ``RENDERED/<svc>/.generation`` is bumped;
  a service that is switched off loses its config file (and the generation is bumped too).
- Kea and Unbound are reloaded here through their control sockets under ``RUN/<svc>/``
  (Kea: ``config-reload``; Unbound: ``reload``). radvd, chrony and avahi are reloaded by whoever
  runs them when ``.generation`` changes (SIGHUP for radvd, a restart for chrony and avahi,
  which cannot re-read their configs).
- Live lease names are pushed into Unbound (``local_data``) by a small sync thread, so a new
  lease is resolvable within seconds without a reload.

Paths: the agent's ``--rendered`` folder is ``BASE/rendered``; ``BASE/run`` and ``BASE/state``
are its siblings (``/var/mnt/talgate/{rendered,run,state}`` on Talos — ``/var/lib/talgate/...``
inside the agent's container —, ``STATE/...`` in the lab).
On Talos the daemons see the pods' mounts (``/etc/talgate/<svc>``, ``/run/<svc>``, ``/var/lib/kea``)
and the rendered configs name those.
"""

from __future__ import annotations

from pathlib import Path

from ..model import Problem
from ..model.config import RouterConfig
from ..model.services import ServicePaths
from .applier import DAEMONS, Desired, HostContext, builtin
from .daemons.base import (
    TALOS_RENDERED,
    DaemonApplier,
    DaemonContext,
    ServiceError,
    bump_generation,
    read_bounded_file,
)
from .daemons.kea import kea_command, read_leases, subnet_interfaces
from .daemons.unbound import MAX_BLOCKLIST_BYTES, LeaseSync, blocklists, unbound_control

__all__ = ["MAX_BLOCKLIST_BYTES", "SERVICES", "TALOS_RENDERED", "LeaseSync", "ServiceApplier", "ServiceError",
           "blocklists", "bump_generation", "daemon_appliers", "kea_command", "read_bounded_file",
           "unbound_control"]


def daemon_appliers(d: DaemonContext) -> list[DaemonApplier]:
    """The daemons ``applier.builtin`` registers, in its order, sharing the context d."""
    ctx = HostContext(d.state_dir if d.rendered_dir else Path("."), d.rendered_dir, {"daemons": d})
    return builtin().build(ctx, stages=[DAEMONS])


# service -> (rendered file name, config section in router.yaml)
SERVICES: dict[str, tuple[str, str]] = {a.name: (a.file, a.section) for a in daemon_appliers(DaemonContext(None))}


class ServiceApplier:
    """Every daemon applier together, over a config (no pipeline): for tests and tools."""

    def __init__(self, rendered_dir: str | Path | None, paths: ServicePaths | None = None):
        self.d = DaemonContext(rendered_dir, paths)
        self.appliers = daemon_appliers(self.d)
        self.rendered_dir, self.paths = self.d.rendered_dir, self.d.paths

    @property
    def _cfg(self) -> RouterConfig | None:
        return self.d.cfg

    @_cfg.setter
    def _cfg(self, cfg: RouterConfig | None) -> None:
        self.d.cfg = cfg

    def host_path(self, daemon_path: str) -> Path:
        return self.d.host_path(daemon_path)

    def blocklists(self, cfg: RouterConfig, files: bool = True) -> tuple[dict[str, str], list[Problem]]:
        return blocklists(cfg, files)

    def check(self, cfg: RouterConfig, files: bool = True) -> list[Problem]:
        """files=False: no file named in the document is opened (the read-only socket)."""
        d = Desired(cfg, files=files)
        if self.d.rendered_dir is None:
            return []
        # Render errors (an unreadable blocklist) first: no daemon checker runs then.
        problems = [p for a in self.appliers for p in a.rendered(d)[1]]
        if any(p.severity == "error" for p in problems):
            return problems
        return [p for a in self.appliers for p in a.check(d)]

    def apply(self, cfg: RouterConfig) -> int:
        d = Desired(cfg)
        return sum(len(a.apply(d)) for a in self.appliers)

    def drift(self, cfg: RouterConfig) -> list[str]:
        d = Desired(cfg)
        return [x for a in self.appliers for x in a.drift(d)]

    @property
    def last_reload(self) -> dict[str, dict]:
        return {a.name: a.last_reload for a in self.appliers if a.last_reload is not None}

    def subnet_interfaces(self, cfg: RouterConfig | None = None) -> dict[int, str]:
        return subnet_interfaces(cfg or self.d.cfg)

    def leases(self) -> list[dict]:
        return read_leases(self.d)

    def status(self) -> dict:
        return {a.name: a.status() for a in self.appliers}
