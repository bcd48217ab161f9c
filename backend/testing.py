"""The agent's test double: the REAL service layer (backend/agent/service.py) and the real pipeline
(validation, lockout proof, git commits, commit-confirm, rollback, drift) on a temporary git repo,
with fake kernel appliers (backend/host/fake.py: memory instead of netlink/nft/daemons) and readers
that return fixture samples (links, neighbours, conntrack, rate history, leases).

Clients talk to it through the real client (backend/client.py) over :class:`InProcessTransport`,
which runs the same dispatch as the socket transport: route table, read-only refusal, request
models, error codes. Nothing here re-implements a handler; tests inspect the real state (the git
log, the pipeline's pending confirm) and the requests the client sent (``sent``).

Used by the console's snapshot/behaviour tests (console/fake.py supplies the fixture data), the
in-process target of tests/contract, and benchmarks.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import weakref
import zlib
from collections.abc import Callable
from pathlib import Path

from .agent.pipeline import Pipeline
from .agent.service import Service
from .api.dispatch import InProcessTransport
from .api.models import Caller
from .client import AgentClient
from .host.fake import FakeApplier


class FakeNft(FakeApplier):
    """The nftables applier over memory; keeps the loaded ruleset so counters can be read from it."""

    def __init__(self):
        super().__init__("nftables", "nft")
        self.ruleset = None

    def apply(self, d):
        out = super().apply(d)
        self.ruleset = d.ruleset
        return out

    def counters(self) -> dict[str, dict]:
        """Deterministic packet/bytes per rule comment of the loaded ruleset (rules with a counter)."""
        out: dict[str, dict] = {}
        for chain in (self.ruleset.chains if self.ruleset is not None else []):
            for r in chain.rules:
                if not any(isinstance(e.json, dict) and "counter" in e.json for e in r.exprs):
                    continue
                n = zlib.crc32(r.comment.encode()) % 997
                d = out.setdefault(r.comment, {"packets": 0, "bytes": 0})
                d["packets"] += n
                d["bytes"] += n * 84
        return out


class FixtureReaders:
    """The Readers protocol over fixture callables; counters come from the fake nft applier."""

    def __init__(self, nft: FakeNft, *, interfaces: Callable[[], list[dict]] = list,
                 neighbours: Callable[[], list[dict]] = list, history: Callable[[int | None], dict] | None = None,
                 conntrack: Callable[[int], dict] | None = None, leases: Callable[[], list[dict]] = list,
                 routes: Callable[[str], dict] | None = None):
        self.nft = nft
        self._routes = routes or (lambda t: {"routes": [], "truncated": False, "frr": False})
        self._interfaces, self._neighbours, self._leases = interfaces, neighbours, leases
        self._history = history or (lambda s: {"interval": 1.0, "times": [], "interfaces": {}})
        self._conntrack = conntrack or (lambda n: {"total": 0, "accounting": False, "top": []})

    def interfaces(self) -> list[dict]:
        return self._interfaces()

    def neighbours(self) -> list[dict]:
        return self._neighbours()

    def conntrack_top(self, n: int) -> dict:
        return self._conntrack(n)

    def history(self, seconds: int | None) -> dict:
        return self._history(seconds)

    def leases(self) -> list[dict]:
        return self._leases()

    def counters(self) -> dict[str, dict]:
        return self.nft.counters()

    def routes(self, table: str) -> dict:
        return self._routes(table)


class RecordingTransport(InProcessTransport):
    """InProcessTransport that remembers what the client sent: (method, path, body)."""

    def __init__(self, service, caller: Caller, log: list):
        super().__init__(service, caller)
        self.log = log

    def __call__(self, method, target, data, headers):
        try:
            body = json.loads(data) if data else None
        except ValueError:
            body = {"(not json)": data.decode(errors="replace")}
        self.log.append((method, target.split("?")[0].removeprefix("/v1"), body))
        return super().__call__(method, target, data, headers)


class InProcessAgent:
    """A real agent minus the kernel: ``.client`` (read-write) and ``.ro_client`` (read-only socket
    semantics) are real AgentClients. ``start`` fixes commit times (``start`` + 60 s per commit),
    ``clock`` the pipeline's clock (confirm deadlines and countdowns, drift times)."""

    def __init__(self, text: str, *, links: list[str] | None = None, readers: dict | None = None,
                 start: float | None = None, clock: Callable[[], float] | None = None,
                 who: dict | None = None, pid: int = 4242,
                 sockets: tuple[str, str] = ("/run/talgate/agent.sock", "/run/talgate/agent-ro.sock")):
        self.dir = Path(tempfile.mkdtemp(prefix="talgate-double-"))
        self.nft = FakeNft()
        self.appliers = [FakeApplier("network", "net", links=links), self.nft, FakeApplier("services", "services")]
        self.pipeline = Pipeline(self.dir / "repo", self.dir / "state", None, appliers=self.appliers)
        # removed when the last client (→ service → pipeline) is gone
        self._cleanup = weakref.finalize(self.pipeline, shutil.rmtree, str(self.dir), True)
        self._t = start
        if start is not None:
            self.pipeline.repo.clock = self._tick
        if clock is not None:
            self.pipeline.clock = clock
        self.pipeline.repo.commit(text, "initial configuration", author="talgate", base=None)
        self.pipeline.apply()
        self.readers = FixtureReaders(self.nft, **(readers or {}))
        self.service = Service(self.pipeline, self.readers, sockets=sockets, pid=pid)
        self.sent: list[tuple[str, str, dict | None]] = []
        self.who = who if who is not None else {"author": "admin"}
        self.client = self.make_client(read_only=False)
        self.ro_client = self.make_client(read_only=True)

    def _tick(self) -> float:
        t = self._t
        self._t += 60.0
        return t

    def make_client(self, read_only: bool = False) -> AgentClient:
        caller = Caller(uid=1000, pid=4243, user="admin", read_only=read_only)
        return AgentClient(transport=RecordingTransport(self.service, caller, self.sent), who=self.who)

    # -- what tests look at (the real state) ---------------------------------------------------

    @property
    def head(self) -> str:
        return self.pipeline.repo.head()

    def text(self, rev: str | None = None) -> str:
        return self.pipeline.repo.read(rev)

    def log(self) -> list:
        return self.pipeline.repo.log(1000)

    @property
    def pending(self) -> dict | None:
        return self.pipeline.pending

    def requests(self, path: str, method: str = "POST") -> list[dict]:
        return [b or {} for m, p, b in self.sent if p == path and m == method]

    def close(self) -> None:
        self._cleanup()
