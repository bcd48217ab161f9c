"""What the console knows: the agent's status, the latest observations, and the candidate.

The store is filled by the app's single poll worker (off the UI thread) and read by the screens.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from backend.client import AgentError, AgentUnreachable

from .candidate import Candidate

# What each screen needs from the agent on every poll (status is always fetched).
NEEDS = {
    "dashboard": {"interfaces", "history"},
    "interfaces": {"interfaces"},
    "firewall": {"counters"},
    "nat": {"counters"},
    "traffic": {"interfaces", "history", "conntrack"},
    "changes": {"log"},
    "leases": {"leases"},
    "events": {"audit"},
    "routes": {"routes"},
}


def _plain(x):
    """The client's typed answers → the plain JSON-like data the screens render."""
    if isinstance(x, list):
        return [_plain(i) for i in x]
    return x.model_dump(mode="json") if hasattr(x, "model_dump") else x


@dataclass
class Store:
    client: object
    read_only: bool = False
    status: dict | None = None
    connected: bool = False
    error: str | None = None
    interfaces: list[dict] = field(default_factory=list)
    history: dict = field(default_factory=dict)
    counters: dict = field(default_factory=dict)  # (kind, name, hook) → {packets, bytes}
    conntrack: dict = field(default_factory=dict)
    log: list[dict] = field(default_factory=list)
    leases: list[dict] = field(default_factory=list)
    audit: list[dict] = field(default_factory=list)  # the agent's audit log (events screen)
    routes: dict = field(default_factory=dict)  # GET /v1/routes (routes screen)
    problems: list[dict] = field(default_factory=list)
    nft_diff: str | None = None
    candidate: Candidate = field(default_factory=Candidate)
    screen_title: str = "dashboard"
    polls: int = 0
    clock: Callable[[], float] = time.time  # fixed in snapshots
    status_time: float = 0.0  # clock() when the last status arrived
    auto_rollback: dict | None = None  # the last auto-rollback of an unconfirmed commit seen: {rev, to, message, time}

    @property
    def confirm_pending(self) -> dict | None:
        """The agent's pending commit-confirm: {rev, deadline, seconds, remaining}, or None."""
        return (self.status or {}).get("confirm") or None

    def confirm_countdown(self) -> int | None:
        """Seconds left before the agent rolls the pending commit back. Counted from the agent's
        ``remaining`` at the last poll (immune to clock skew with a remote agent), else its deadline."""
        c = self.confirm_pending
        if not c:
            return None
        if c.get("remaining") is not None:
            return max(0, int(c["remaining"] - (self.clock() - self.status_time) + 0.5))
        if c.get("deadline"):
            return max(0, int(c["deadline"] - self.clock()))
        return None

    def counter(self, kind: str, name: str, hook: str | None = None) -> dict:
        """The hit counter of one config item (kind as the agent reports it: rule, policy, zone …)."""
        return self.counters.get((kind, name, hook), {})

    def fetch(self, needs: set[str]) -> dict:
        """Runs in a worker thread: one status call plus what the screen needs. Never raises."""
        out: dict = {"needs": needs}
        try:
            was_pending = self.confirm_pending
            st = _plain(self.client.status())
            out["status"] = st
            if was_pending and not st.get("confirm"):
                # The pending confirm is gone: confirmed, or rolled back by the agent's timer? HEAD says.
                try:
                    out["confirm_end"] = (was_pending, _plain(self.client.log(1)))
                except AgentError:
                    pass
            if st.get("head") and st["head"] not in (self.candidate.head_rev, self.candidate.head_rev_latest):
                out["config"] = _plain(self.client.config(st["head"]))
            for n in sorted(needs):
                try:
                    if n == "interfaces":
                        out[n] = _plain(self.client.interfaces())
                    elif n == "history":
                        out[n] = _plain(self.client.history())
                    elif n == "counters":
                        out[n] = {(c.kind, c.name, c.hook): {"packets": c.packets, "bytes": c.bytes}
                                  for c in self.client.counters()}
                    elif n == "conntrack":
                        out[n] = _plain(self.client.conntrack_top(10))
                    elif n == "log":
                        out[n] = _plain(self.client.log(100))
                    elif n == "leases":
                        out[n] = _plain(self.client.leases())
                    elif n == "audit":
                        out[n] = self.client.audit(200)
                    elif n == "routes":
                        out[n] = _plain(self.client.routes())
                except AgentUnreachable:
                    raise
                except AgentError as e:
                    out.setdefault("errors", []).append(f"{n}: {e.message}")
        except AgentUnreachable as e:
            out["unreachable"] = str(e)
        except AgentError as e:
            out["unreachable"] = e.message
        return out

    def absorb(self, out: dict) -> set[str]:
        """On the UI thread: take a fetch result; returns what changed ('config', 'status', …)."""
        changed = set()
        self.polls += 1
        if "unreachable" in out:
            self.connected, self.error = False, out["unreachable"]
            return {"connection"}
        if not self.connected:
            changed.add("connection")
        self.connected, self.error = True, "; ".join(out.get("errors", [])) or None
        self.status = out["status"]
        self.status_time = self.clock()
        if "confirm_end" in out:
            was, head = out["confirm_end"]
            e = head[0] if head else {}
            if (e.get("message") or "").startswith("auto-rollback") and e.get("rev") != was.get("rev"):
                self.auto_rollback = {"rev": was.get("rev"), "to": e.get("rev"), "message": e["message"],
                                      "time": e.get("time")}
                changed.add("auto_rollback")
        if self.status.get("read_only"):
            self.read_only = True
        changed.add("status")
        if "config" in out:
            cfg = out["config"]
            if cfg["rev"] == self.candidate.head_rev and cfg["text"] == self.candidate.head_text:
                pass  # HEAD as we have it: nothing to re-parse or redraw
            elif not self.candidate.dirty:
                self.candidate.reset(cfg["text"], cfg["rev"])
                changed.add("config")
            else:
                # Keep the edits; the commit will name the old base and the agent will refuse it.
                self.candidate.head_rev_latest = cfg["rev"]
                changed.add("config")
        for n in ("interfaces", "history", "counters", "conntrack", "log", "leases", "audit", "routes"):
            if n in out and out[n] != getattr(self, n, None):
                # Equal data is not a change: a 1,000-row table is not re-diffed for nothing.
                setattr(self, n, out[n])
                changed.add(n)
        return changed

    @property
    def head_moved(self) -> bool:
        latest = self.candidate.head_rev_latest
        return bool(latest and latest != self.candidate.head_rev)
