"""Appliers over memory instead of the kernel: for tests and the console's test double.

A :class:`FakeApplier` implements the applier protocol over a dict (its "kernel"): ``apply``
stores the part of the desired state it owns, ``drift`` compares, ``check`` refuses links that do
not exist in its ``links``. Faults can be injected per method (``fail``), also after the change was
made (``fail_after_change``: a half-way failure). Use :func:`fake_appliers` for a network/nftables/
services trio and pass it as ``Pipeline(..., appliers=fake_appliers())``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from typing import Any

from ..model import Problem
from ..model.kinds import agent_made
from .applier import Desired


def _project_network(d: Desired) -> dict:
    from .network import desired_state

    st = desired_state(d)
    return {"links": {n: v for n, v in sorted(st.links.items())},
            "addrs": {n: sorted(v) for n, v in sorted(st.addrs.items())},
            "routes": sorted(f"{k.dst} metric {k.metric} via {v['gateway']} dev {v['oif']}"
                             for k, v in st.routes.items())}


def _project_nft(d: Desired) -> dict:
    rs = d.ruleset
    return {"ruleset": hashlib.sha256(json.dumps(rs.create_commands(), sort_keys=True).encode()).hexdigest()}


def _project_services(d: Desired) -> dict:
    doc = d.cfg.model_dump(mode="json")
    return {k: doc.get(k) for k in ("dhcp", "dns", "ra", "ntp", "mdns")}


PROJECTIONS: dict[str, Callable[[Desired], dict]] = {
    "net": _project_network, "nft": _project_nft, "services": _project_services}


class FakeApplier:
    def __init__(self, name: str, group: str = "services", *, links: Iterable[str] | None = None,
                 project: Callable[[Desired], dict] | None = None):
        self.name, self.group = name, group
        self.links = None if links is None else set(links)
        self.project = project or PROJECTIONS.get(group, _project_services)
        self.kernel: dict[str, Any] = {}          # what this fake "kernel" holds now
        self.calls: list[tuple[str, str | None]] = []  # (method, rev)
        self.fail: dict[str, BaseException] = {}   # method -> exception raised by it
        self.fail_after_change = False             # apply: change the "kernel", then raise

    def _maybe_fail(self, method: str) -> None:
        e = self.fail.get(method)
        if e is not None:
            raise e

    def check(self, d: Desired) -> list[Problem]:
        self.calls.append(("check", d.rev))
        self._maybe_fail("check")
        if self.links is None:
            return []
        return [Problem(f"interfaces.{n}", "no such link in the router's network namespace")
                for n, itf in d.cfg.interfaces.items() if itf.enabled and n not in self.links and not agent_made(itf)]

    def _diff(self, want: dict) -> list[str]:
        return [f"{self.name}: {k}" for k in sorted(set(want) | set(self.kernel))
                if want.get(k) != self.kernel.get(k)]

    def plan(self, d: Desired) -> list[str]:
        self.calls.append(("plan", d.rev))
        self._maybe_fail("plan")
        return self._diff(self.project(d))

    def apply(self, d: Desired) -> list[str]:
        self.calls.append(("apply", d.rev))
        want = self.project(d)
        if not self.fail_after_change:
            self._maybe_fail("apply")
        out = self._diff(want)
        self.kernel = dict(want)
        if self.fail_after_change:
            self._maybe_fail("apply")
        return out

    def drift(self, d: Desired) -> list[str]:
        self.calls.append(("drift", d.rev))
        self._maybe_fail("drift")
        return self._diff(self.project(d))

    def status(self) -> dict:
        return {"fake": True, "keys": sorted(self.kernel)}

    def leases(self) -> list[dict]:
        return []


def fake_appliers(links: Iterable[str] | None = None) -> list[FakeApplier]:
    """network (refusing links not in ``links`` when given), nftables and services, in order."""
    return [FakeApplier("network", "net", links=links), FakeApplier("nftables", "nft"),
            FakeApplier("services", "services")]
