"""The agent's service layer: one method per route (``backend/api/routes.py``), typed requests in,
typed responses out, failures as ``ApiError(code, …)``. It knows nothing about HTTP or sockets:
``server.py`` is the transport, and the console's test double calls this same class in-process
(with fake kernel appliers) — there is no second implementation of any handler.
"""

from __future__ import annotations

import difflib
import ipaddress
import logging
import os
from typing import Protocol

from ..api import models as m
from ..api.errors import CODES, ApiError, problem
from ..api.models import Caller
from ..gitops import Conflict, RepoError
from ..render.nft import render
from .jobs import Jobs
from .pipeline import ApplyFailed, Pipeline, Refused, validate_text

log = logging.getLogger("talgate.agent")


class Readers(Protocol):
    """What *is*: link stats, neighbours, conntrack, rate history, leases, nft counters."""

    def interfaces(self) -> list[dict]: ...
    def neighbours(self) -> list[dict]: ...
    def conntrack_top(self, n: int) -> dict: ...
    def history(self, seconds: int | None) -> dict: ...
    def leases(self) -> list[dict]: ...
    def counters(self) -> dict[str, dict]: ...
    def routes(self, table: str) -> dict: ...


class KernelReaders:
    """The real readers (the router's network namespace, Kea's lease files, our nft table). A
    sampler thread keeps 300 s of 1 s rx/tx rates so graphs have data the moment a console opens."""

    def __init__(self, pipeline: Pipeline, start_sampler: bool = True):
        from ..observe import links
        from ..observe.history import History

        self.p = pipeline
        self.hist = History()
        self.addrs = links.AddressCache()
        if start_sampler:
            self.hist.start()

    def interfaces(self) -> list[dict]:
        from ..observe import links

        return links.interfaces(self.addrs, self.hist.rates())

    def neighbours(self) -> list[dict]:
        from ..observe import links

        return links.neighbours()

    def conntrack_top(self, n: int) -> dict:
        from ..observe import conntrack

        return conntrack.top(n)

    def history(self, seconds: int | None) -> dict:
        return self.hist.snapshot(seconds)

    def leases(self) -> list[dict]:
        return self.p.services.leases()

    def counters(self) -> dict[str, dict]:
        from ..host import nft as nfthost

        return nfthost.counters()

    def routes(self, table: str) -> dict:
        from ..observe import routes

        vty = next((a.vty() for a in self.p.services.appliers if hasattr(a, "vty")), None)
        return routes.routes(table, vty)

    def stop(self) -> None:
        self.hist.stop()


def _routing(p) -> dict | None:
    """The BGP/OSPF sessions the agent's thread last read from FRR (backend/observe/routing_state.py)."""
    rs = getattr(p, "routing_state", None)
    return rs.snapshot() if rs is not None else None


def structured_counters(raw: dict[str, dict]) -> list[m.Counter]:
    """nft rule comments ("rule NAME", "zone Z input", "policy a-b" …) → kind + name (+ hook)."""
    out = []
    for comment, c in sorted(raw.items()):
        kind, _, name = comment.partition(" ")
        hook = None
        if kind == "zone":
            name, _, hook = name.rpartition(" ")
        out.append(m.Counter(kind=kind, name=name, hook=hook or None, packets=int(c.get("packets", 0)),
                             bytes=int(c.get("bytes", 0))))
    return out


def _problems(ps) -> list[dict]:
    return [p.to_dict() for p in ps]


def _known(code: str | None, fallback: str) -> str:
    if code in CODES:
        return code
    if code is not None:
        log.warning("unknown API error code %r from the pipeline: answering %s", code, fallback)
    return fallback


def _error(e: BaseException) -> ApiError:
    """A pipeline/repo exception → the API error with its code (never decided from message text)."""
    if isinstance(e, ApiError):
        return e
    if isinstance(e, Refused):
        return ApiError(_known(e.code, "invalid"), "refused: nothing was changed", _problems(e.problems),
                        getattr(e, "detail", None))
    if isinstance(e, Conflict):
        return ApiError("conflict", str(e), [problem("base", str(e))], {"head": e.head, "base": e.base})
    if isinstance(e, ApplyFailed):
        return ApiError(_known(getattr(e, "code", None), "apply_failed"), str(e), detail=getattr(e, "detail", None))
    if isinstance(e, RepoError):
        return ApiError(_known(getattr(e, "code", None), "bad_request"), str(e))
    raise e


def _code(e: BaseException) -> str:
    """The stable code of a failed job's error (the same the synchronous answer carries)."""
    try:
        return _error(e).code
    except BaseException:  # noqa: BLE001 - anything else is a bug
        return "internal"


class Service:
    def __init__(self, pipeline: Pipeline, readers: Readers | None = None,
                 sockets: tuple[str | None, str | None] = (None, None), pid: int | None = None):
        self.p = pipeline
        self.readers = readers if readers is not None else KernelReaders(pipeline)
        self.sockets = sockets
        self.pid = pid if pid is not None else os.getpid()
        self.background = Jobs()  # commits that outlive their request

    # -- reads -------------------------------------------------------------------------------

    def status(self, caller: Caller) -> m.StatusResponse:
        st = self.p.status()
        try:
            cfg = validate_text(self.p.repo.read())[0] if st.get("head") else None
            hostname = cfg.system.hostname if cfg else None
            links = {n: i.kind for n, i in cfg.interfaces.items() if i.kind != "ethernet"} if cfg else {}
        except Exception:  # noqa: BLE001 - status must always answer
            hostname, links = None, {}
        return m.StatusResponse(**{**st, "sockets": m.Sockets(rw=self.sockets[0], ro=self.sockets[1]),
                                   "read_only": caller.read_only, "pid": self.pid, "hostname": hostname, "links": links,
                                   "jobs": [j.to_dict() for j in self.background.all()],
                                   "routing": _routing(self.p)})

    def _resolve(self, rev: str | None, path: str) -> str:
        """A revision from the request (RepoError → its code, with the parameter's path)."""
        try:
            return self.p.repo.resolve(rev)
        except RepoError as e:
            raise ApiError(_known(e.code, "bad_request"), str(e), [problem(path, str(e))]) from None

    def config(self, req: m.RevQuery, caller: Caller) -> m.ConfigResponse:
        r = self._resolve(req.rev, "rev")
        try:
            return m.ConfigResponse(rev=r, text=self.p.repo.read(r))
        except RepoError as e:
            raise _error(e) from None

    def log(self, req: m.LogQuery, caller: Caller) -> m.LogResponse:
        return m.LogResponse(entries=[e.to_dict() for e in self.p.repo.log(req.n)])

    def diff(self, req: m.DiffQuery, caller: Caller) -> m.DiffResponse:
        a, b = self._resolve(req.a or "HEAD~1", "a"), self._resolve(req.b or "HEAD", "b")
        try:
            return m.DiffResponse(a=a, b=b, diff=self.p.repo.diff(a, b))
        except RepoError as e:
            raise _error(e) from None

    def diff_candidate(self, req: m.CandidateDiffRequest, caller: Caller) -> m.CandidateDiffResponse:
        rev = self._resolve(req.base or "HEAD", "base")
        try:
            out = m.CandidateDiffResponse(base=rev, diff=self.p.repo.diff(rev, text_b=req.config))
            old_text = self.p.repo.read(rev)
        except RepoError as e:
            raise _error(e) from None
        cfg, problems = validate_text(req.config)
        out.problems = [m.Problem(**p.to_dict()) for p in problems]
        if cfg is not None:
            old_cfg, _ = validate_text(old_text)
            old = render(old_cfg).text() if old_cfg else ""
            out.nft_diff = "".join(difflib.unified_diff(old.splitlines(True), render(cfg).text().splitlines(True),
                                                        "HEAD.nft", "candidate.nft"))
        return out

    def render(self, req: m.RevQuery, caller: Caller) -> m.RenderResponse:
        r = self._resolve(req.rev, "rev")
        try:
            text = self.p.repo.read(r)
        except RepoError as e:
            raise _error(e) from None
        cfg, problems = validate_text(text)
        if cfg is None:
            raise ApiError("invalid", "the revision does not validate", _problems(problems))
        facts = getattr(self.p, "facts", None)
        if facts is not None:  # what the kernel holds: the document under the learned prefixes
            from ..model.uplink import effective

            cfg = effective(cfg, facts.delegated, facts.deprecated, facts.lifetimes)
        return m.RenderResponse(rev=r, nft=render(cfg).text())

    def validate(self, req: m.ValidateRequest, caller: Caller) -> m.ValidateResponse:
        try:
            # The read-only socket never makes the agent open a path from the request (no reads of
            # root's files, no blocking on a FIFO, no existence oracle): file-backed checks are skipped.
            cfg, _rs, warnings = self.p.check_text(req.config, files=not caller.read_only)
        except Refused as e:
            return m.ValidateResponse(ok=False, problems=_problems(e.problems))
        if caller.read_only and getattr(self.p, "services", None) is not None:
            warnings = [*warnings, *self.p.services.blocklists(cfg, files=False)[1]]
        return m.ValidateResponse(ok=True, problems=_problems(warnings))

    def trace(self, req: m.TraceRequest, caller: Caller) -> m.TraceResponse:
        """Would this packet pass? Against HEAD, or a candidate document when one is sent."""
        from ..trace.evaluator import Packet, Tracer

        text = req.config or self.p.repo.read()
        cfg, problems = validate_text(text)
        if cfg is None:
            raise ApiError("invalid", "the configuration does not validate", _problems(problems))
        pk = req.packet
        bad = []
        if pk.iif not in cfg.interfaces and pk.iif != "lo":
            bad.append(problem("packet.iif", f"no such interface in the configuration ({', '.join(cfg.interfaces)})"))
        family = ipaddress.ip_address(pk.src).version
        if ipaddress.ip_address(pk.dst).version != family:
            bad.append(problem("packet.src", "source and destination are of different IP versions"))
        if pk.proto in ("tcp", "udp") and pk.dport is None:
            bad.append(problem("packet.dport", f"a destination port is needed for {pk.proto}"))
        if pk.proto == "icmpv6" and family == 4:
            bad.append(problem("packet.proto", "icmpv6 needs IPv6 addresses"))
        if bad:
            raise ApiError("bad_request", "; ".join(f"{p['path']}: {p['message']}" for p in bad), bad)
        args = {k: v for k, v in pk.model_dump().items() if v is not None}
        try:
            pkt = Packet(**args)
        except (TypeError, ValueError) as e:
            raise ApiError("bad_request", f"bad packet: {e}", [problem("packet", str(e))]) from None
        facts = getattr(self.p, "facts", None)
        if facts is not None:  # addresses and sets from a delegated prefix: as the kernel has them now
            from ..model.uplink import effective

            cfg = effective(cfg, facts.delegated, facts.deprecated, facts.lifetimes)
        res = Tracer(cfg).trace(pkt).to_dict()
        return m.TraceResponse(**res, config="candidate" if req.config else "running")

    def counters(self, caller: Caller) -> m.CountersResponse:
        return m.CountersResponse(counters=structured_counters(self.readers.counters()))

    def audit(self, req: m.AuditQuery, caller: Caller) -> m.AuditResponse:
        return m.AuditResponse(entries=self.p.audit.read(req.n))

    def interfaces(self, caller: Caller) -> m.InterfacesResponse:
        return m.InterfacesResponse(interfaces=self.readers.interfaces())

    def neighbours(self, caller: Caller) -> m.NeighboursResponse:
        return m.NeighboursResponse(neighbours=self.readers.neighbours())

    def conntrack_top(self, req: m.ConntrackQuery, caller: Caller) -> m.ConntrackTopResponse:
        return m.ConntrackTopResponse(**self.readers.conntrack_top(req.n))

    def history(self, req: m.HistoryQuery, caller: Caller) -> m.HistoryResponse:
        return m.HistoryResponse(**self.readers.history(req.seconds))

    def leases(self, caller: Caller) -> m.LeasesResponse:
        return m.LeasesResponse(leases=self.readers.leases())

    def routes(self, req: m.RoutesQuery, caller: Caller) -> m.RoutesResponse:
        return m.RoutesResponse(**self.readers.routes(req.table))

    # -- writes (the transport refuses them on the read-only socket: Route.write) -------------

    def commit(self, req: m.CommitRequest, caller: Caller):
        """Commit and apply. With ``wait`` (seconds) the answer comes within that time: the
        outcome, or (202) ``state: running`` with a job id while the commit goes on in the
        background (``GET /v1/jobs?id=`` and ``status.jobs`` tell how it ended)."""
        author = req.author or caller.user
        log.info("commit by %s (uid %s pid %s): %s", author, caller.uid, caller.pid, req.message)
        who, ssh, kind = _who(caller, req), _ssh(caller, req), "API" if caller.tcp_peer else "SSH"
        job = self.background.start("commit", lambda job: self.p.commit(
            req.config, req.message, author, base=req.base, confirm=req.confirm, force=req.force, ssh=ssh,
            who=who, conn_kind=kind, on_rev=job.set_rev), code_of=_code)
        if not job.done.wait(req.wait):
            return 202, m.CommitResponse(rev=job.rev, state="running", job=job.id,
                                         message="the commit is still running; `talgate status` shows how it ends")
        if job.exc is not None:
            raise _error(job.exc) from None
        return m.CommitResponse(**{**job.result, "state": "landed", "job": job.id})

    def jobs(self, req: m.JobsQuery, caller: Caller) -> m.JobsResponse:
        if req.id is None:
            return m.JobsResponse(jobs=[j.to_dict() for j in self.background.all()])
        job = self.background.get(req.id)
        if job is None:
            head = self.p.repo.head()
            raise ApiError("not_found", f"no job {req.id[:40]!r}: the agent keeps its last {self.background.keep} jobs "
                           f"and none across a restart; HEAD is {head[:12] if head else 'empty'} (a commit landed "
                           "only if HEAD is its revision or came after it)", [problem("id", "no such job")],
                           detail={"head": head})
        return m.JobsResponse(job=job.to_dict())

    def apply(self, req: m.ApplyRequest, caller: Caller) -> m.ApplyResponse:
        try:
            r = self.p.apply(req.rev)
        except (Refused, ApplyFailed, RepoError) as e:
            raise _error(e) from None
        self.p.audit.record("apply", _who(caller, req), rev=r["rev"], changes=r["changes"])
        return m.ApplyResponse(**r)

    def rollback(self, req: m.RollbackRequest, caller: Caller) -> m.CommitResponse:
        try:
            r = self.p.rollback(req.rev, req.author or caller.user, base=req.base, who=_who(caller, req))
        except (Refused, Conflict, ApplyFailed, RepoError) as e:
            raise _error(e) from None
        return m.CommitResponse(**r)

    def confirm(self, req: m.ConfirmRequest, caller: Caller) -> m.ConfirmResponse:
        try:
            return m.ConfirmResponse(**self.p.confirm(_who(caller, req)))
        except RepoError as e:
            raise _error(e) from None


def _ssh(caller: Caller, req: m.Who) -> str | None:
    """The caller's connection for the lockout check: what the kernel saw for TCP clients, the
    client's $SSH_CONNECTION on the Unix sockets."""
    return caller.ssh if caller.tcp_peer else (caller.ssh or req.ssh_connection)


def _who(caller: Caller, req: m.Who) -> dict:
    """Who did it and from where: the client's claim (user, SSH key comment) next to what the
    kernel vouches for (the socket peer's uid and pid)."""
    who = {"user": req.author or caller.user, "unix_user": caller.user, "uid": caller.uid,
           "pid": caller.pid, "via": "read-only socket" if caller.read_only else "socket"}
    ssh = _ssh(caller, req)
    if caller.tcp_peer:
        who["via"] = f"api from {caller.tcp_peer}"
    elif ssh:
        who["via"] = f"ssh from {ssh.split()[0]}"
    if req.identity:
        who["identity"] = req.identity
    return who
