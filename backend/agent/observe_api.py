"""Read-only observation endpoints (link stats, neighbours, conntrack …), registered on the agent.

Each handler has the signature ``fn(caller, query: dict, body: dict) -> dict`` and is added as
``agent.routes[(METHOD, "/path")] = Route(fn)`` (paths are under /v1). All of them are reads, so
they answer on the read-only socket too. A sampler thread keeps 300 s of 1 s rx/tx rates so the
console's graphs have data the moment it opens.
"""

from __future__ import annotations

from ..observe import conntrack, links
from ..observe.history import History


def register(agent) -> None:
    from .server import Route

    hist = History()
    addrs = links.AddressCache()
    agent.history = hist

    def interfaces(caller, q, body):
        return {"interfaces": links.interfaces(addrs, hist.rates())}

    def neighbours(caller, q, body):
        return {"neighbours": links.neighbours()}

    def conntrack_top(caller, q, body):
        return conntrack.top(int(q.get("n", 10)))

    def history(caller, q, body):
        s = q.get("seconds")
        return hist.snapshot(int(s) if s else None)

    agent.routes[("GET", "/interfaces")] = Route(interfaces)
    agent.routes[("GET", "/neighbours")] = Route(neighbours)
    agent.routes[("GET", "/conntrack/top")] = Route(conntrack_top)
    agent.routes[("GET", "/history")] = Route(history)
    hist.start()
