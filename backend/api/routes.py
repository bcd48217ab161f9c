"""The one route table: every endpoint's method, path, request model, response model, the service
method that handles it and whether it writes. Read-only enforcement is ``Route.write``: the
transport refuses a write route on the read-only socket before anything else runs."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from . import models as m

PREFIX = "/v1"


@dataclass(frozen=True)
class Route:
    method: str                        # GET (request model = query string) or POST (JSON body)
    path: str                          # under /v1
    handler: str                       # the service method (and the client method) of the same name
    request: type[BaseModel] | None
    response: type[BaseModel]
    summary: str
    write: bool = False


ROUTES: tuple[Route, ...] = (
    Route("GET", "/status", "status", None, m.StatusResponse, "agent, repo, apply, confirm and service state"),
    Route("GET", "/config", "config", m.RevQuery, m.ConfigResponse, "the document at HEAD (or rev)"),
    Route("GET", "/log", "log", m.LogQuery, m.LogResponse, "config history, newest first"),
    Route("GET", "/diff", "diff", m.DiffQuery, m.DiffResponse, "diff between two revisions"),
    Route("POST", "/diff", "diff_candidate", m.CandidateDiffRequest, m.CandidateDiffResponse,
          "diff of a candidate against base (YAML and rendered nftables), with its problems"),
    Route("GET", "/render", "render", m.RevQuery, m.RenderResponse, "the nftables ruleset of HEAD (or rev)"),
    Route("POST", "/validate", "validate", m.ValidateRequest, m.ValidateResponse,
          "model, semantic and kernel checks of a candidate; nothing is changed"),
    Route("GET", "/counters", "counters", None, m.CountersResponse, "packets/bytes per config item"),
    Route("POST", "/trace", "trace", m.TraceRequest, m.TraceResponse,
          "would this packet pass? against HEAD or a candidate"),
    Route("POST", "/commit", "commit", m.CommitRequest, m.CommitResponse,
          "validate, lockout-check, commit and apply a candidate", write=True),
    Route("POST", "/apply", "apply", m.ApplyRequest, m.ApplyResponse, "converge the kernel to HEAD", write=True),
    Route("POST", "/rollback", "rollback", m.RollbackRequest, m.CommitResponse,
          "a new commit restoring rev (default: HEAD's parent)", write=True),
    Route("POST", "/confirm", "confirm", m.ConfirmRequest, m.ConfirmResponse,
          "keep the commit waiting for confirmation", write=True),
    Route("GET", "/audit", "audit", m.AuditQuery, m.AuditResponse, "the audit trail, newest last"),
    Route("GET", "/jobs", "jobs", m.JobsQuery, m.JobsResponse,
          "background commits (one with ?id=): running, landed or failed with its code"),
    Route("GET", "/interfaces", "interfaces", None, m.InterfacesResponse, "links: state, addresses, counters, rates"),
    Route("GET", "/neighbours", "neighbours", None, m.NeighboursResponse, "the neighbour table"),
    Route("GET", "/conntrack/top", "conntrack_top", m.ConntrackQuery, m.ConntrackTopResponse,
          "top talkers by conntrack bytes"),
    Route("GET", "/history", "history", m.HistoryQuery, m.HistoryResponse, "1 s rx/tx rates per link"),
    Route("GET", "/leases", "leases", None, m.LeasesResponse, "DHCPv4/v6 leases Kea holds"),
    Route("GET", "/routes", "routes", m.RoutesQuery, m.RoutesResponse,
          "routing tables: connected, static and learned (BGP/OSPF) routes, per table"),
)

BY_KEY: dict[tuple[str, str], Route] = {(r.method, r.path): r for r in ROUTES}
BY_HANDLER: dict[str, Route] = {r.handler: r for r in ROUTES}
assert len(BY_KEY) == len(ROUTES) and len(BY_HANDLER) == len(ROUTES)


def lookup(method: str, path: str) -> Route | None:
    return BY_KEY.get((method, path))


def paths() -> set[str]:
    return {r.path for r in ROUTES}
