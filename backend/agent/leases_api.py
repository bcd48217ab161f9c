"""``GET /v1/leases``: the DHCP leases Kea holds (read-only, answers on the read-only socket too).

``{"leases": [{"family": 4|6, "address", "hostname", "hwaddr" (v4) or "duid" (v6), "expires"
(epoch seconds), "interface", "state"}]}`` — read from Kea's lease files by
:mod:`backend.observe.leases`; the interface comes from the subnet ids the renderer derived.
Register with ``from .leases_api import register; register(agent)``.
"""

from __future__ import annotations


def leases(agent) -> dict:
    items = agent.p.services.leases()
    return {"leases": items}


def register(agent) -> None:
    from .server import Route

    def handler(caller, q, body):
        return leases(agent)

    agent.routes[("GET", "/leases")] = Route(handler)
