"""Read-only observation endpoints (link stats, neighbours, conntrack …), registered on the agent.

Each handler has the signature ``fn(caller, query: dict, body: dict) -> dict`` and is added as
``agent.routes[(METHOD, "/path")] = Route(fn)`` (paths are under /v1).
"""

from __future__ import annotations


def register(agent) -> None:
    """Add observation routes to the agent (none yet beyond /counters)."""
    return None
