"""Request and response models of every endpoint (pydantic). The route table (``routes.py``) names
them; the transport validates requests against them, the client validates answers against them,
and ``talgate api schema`` publishes them as OpenAPI."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

REV = Field(default=None, max_length=200, description="a revision: full or short id, HEAD, HEAD~N")
TEXT_MAX = 64 * 1024 * 1024  # the transport's body cap is the real bound; this one is only a backstop


@dataclass
class Caller:
    """Who is asking, as the transport established it (the service layer never sees HTTP)."""

    uid: int | None
    pid: int | None
    user: str
    read_only: bool
    ssh: str | None = None        # "client port server port" of the caller's connection
    tcp_peer: str | None = None   # remote API clients: the TCP peer the kernel saw


# -- requests --------------------------------------------------------------------------------

class Body(BaseModel):
    """A JSON request body: unknown fields and wrong types are refused (``bad_request``)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Query(BaseModel):
    """Query-string parameters (strings on the wire, converted to the field's type)."""

    model_config = ConfigDict(extra="forbid")


def _signature(v):
    """A commit author git can hold (a newline wrote a commit header libgit2 could not read back;
    the same rule as backend.gitops.repo.bad_signature, which the API may not import)."""
    if isinstance(v, str) and any(c in "<>" or ord(c) < 32 or ord(c) == 127 for c in v):
        raise ValueError("control characters and < > are not allowed")
    return v


def _no_nul(v):
    if isinstance(v, str) and "\x00" in v:
        raise ValueError("a NUL character is not allowed")
    return v


class Who(Body):
    author: Annotated[str | None, BeforeValidator(_signature)] = Field(
        default=None, max_length=200, description="who the client says is acting")
    identity: str | None = Field(default=None, max_length=200, description="e.g. the SSH key comment")
    ssh_connection: str | None = Field(default=None, max_length=200,
                                       description="$SSH_CONNECTION of the caller (lockout check)")


def clamped(lo: int, hi: int):
    """A whole number from the query string: digits only (no sign, no spaces inside, at most 18),
    at least lo; more than hi is read as hi (asking for "all" is not an error)."""

    def parse(v):
        if isinstance(v, str):
            t = v.strip()
            if not (t.isascii() and t.isdigit() and len(t) <= 18):
                raise ValueError(f"must be a whole number from {lo} to {hi}")
            v = int(t)
        if isinstance(v, int) and not isinstance(v, bool) and v > hi:
            return hi
        return v

    return Annotated[int, BeforeValidator(parse), Field(ge=lo, le=hi)]


class RevQuery(Query):
    rev: str | None = REV


class LogQuery(Query):
    n: clamped(0, 10000) = 50


class AuditQuery(Query):
    n: clamped(0, 10000) = 100


class DiffQuery(Query):
    a: str | None = REV
    b: str | None = REV


class ConntrackQuery(Query):
    n: clamped(1, 1000) = 10


class HistoryQuery(Query):
    seconds: clamped(1, 86400) | None = None


class ConfigBody(Body):
    config: str = Field(min_length=1, max_length=TEXT_MAX, description="a router.yaml document")


class CandidateDiffRequest(ConfigBody):
    base: str | None = REV


class ValidateRequest(ConfigBody):
    pass


def _ip(v: str) -> str:
    try:
        ipaddress.ip_address(v)
    except ValueError:
        raise ValueError("not an IPv4 or IPv6 address") from None
    return v


class TracePacket(Body):
    iif: str = Field(min_length=1, max_length=15, description="ingress interface")
    src: str = Field(max_length=64)
    dst: str = Field(max_length=64)
    proto: Literal["tcp", "udp", "icmp", "icmpv6"] = "tcp"
    dport: int | None = Field(default=None, ge=1, le=65535)
    sport: int | None = Field(default=None, ge=1, le=65535)
    icmp_type: str | None = Field(default=None, max_length=40)

    _src = field_validator("src", "dst")(_ip)


class TraceRequest(Body):
    packet: TracePacket
    config: str | None = Field(default=None, max_length=TEXT_MAX,
                               description="a candidate document; HEAD when absent")


class CommitRequest(Who):
    config: str = Field(min_length=1, max_length=TEXT_MAX)
    message: Annotated[str, BeforeValidator(_no_nul)] = Field(min_length=1, max_length=10000)
    base: str | None = Field(default="HEAD", max_length=200,
                             description="the revision the edit started from; HEAD replaces whatever is there")
    confirm: int | None = Field(default=None, ge=1, le=86400,
                                description="seconds until an automatic rollback unless confirmed")
    force: bool = Field(default=False, description="apply past the lockout check (needs confirm)")
    wait: float | None = Field(default=None, ge=0, le=86400,
                               description="answer within this many seconds: the outcome, or 202 with "
                                           "state running and a job id while the commit goes on")


class ApplyRequest(Who):
    rev: str | None = REV


class RollbackRequest(Who):
    rev: str | None = REV
    base: str | None = Field(default="HEAD", max_length=200)


class ConfirmRequest(Who):
    pass


class JobsQuery(Query):
    id: str | None = Field(default=None, max_length=64, description="one job; all kept jobs when absent")


# -- responses -------------------------------------------------------------------------------

class Out(BaseModel):
    """A response. Fields may be added (clients ignore unknown ones); none is renamed or removed.

    Attributes are the typed way in; ``answer["field"]``, ``answer.get("field")`` and ``answer ==
    {...}`` read the same fields for scripts written against the JSON (an unknown key is a
    KeyError, as in a dict)."""

    model_config = ConfigDict(extra="allow")

    def __getitem__(self, key: str):
        if key in type(self).model_fields or key in (self.model_extra or {}):
            return getattr(self, key)
        raise KeyError(key)

    def get(self, key: str, default=None):
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: str) -> bool:
        return key in type(self).model_fields or key in (self.model_extra or {})

    def __eq__(self, other) -> bool:
        """Equal to a dict with the same JSON (``answer.problems == [{...}]`` in scripts and tests)."""
        if isinstance(other, dict):
            return self.model_dump(mode="json") == other
        return super().__eq__(other)

    __hash__ = None  # mutable, like a dict


class Problem(Out):
    path: str
    message: str
    severity: Literal["error", "warning"] = "error"


class ErrorResponse(Out):
    code: str = Field(description="stable error code; see the table in backend/api/errors.py")
    message: str = Field(description="for people; wording may change")
    problems: list[Problem] = []
    detail: dict = {}


class ConfirmState(Out):
    rev: str
    deadline: float
    seconds: int
    remaining: float


class Drift(Out):
    time: float
    items: list[str]
    repaired: int


class Sockets(Out):
    rw: str | None = None
    ro: str | None = None


class StatusResponse(Out):
    repo: str | None = None
    head: str | None = None
    applied: str | None = None
    in_sync: bool = False
    worktree_dirty: bool = False
    worktree_base: str | None = None
    last_error: str | None = None
    last_apply: dict | None = None
    last_drift: Drift | None = None
    confirm: ConfirmState | None = None
    services: dict[str, dict] = {}
    sockets: Sockets = Sockets()
    read_only: bool = False
    pid: int | None = None
    hostname: str | None = None
    jobs: list[Job] = []
    wans: dict[str, dict] = {}  # WAN member -> state, healthy, active, rtt_ms, loss_pct (backend/agent/wan.py)
    links: dict[str, str] = Field({}, description="HEAD's interfaces the agent makes, name -> kind (vlan, bridge, "
                                                  "bond, dummy)")
    routing: dict | None = Field(None, description="BGP peers and OSPF neighbors as FRR last said (refreshed every "
                                                   "few seconds by the agent): {time, sessions: [{protocol, peer, "
                                                   "state, uptime, received, accepted, interface}], errors}")


class ConfigResponse(Out):
    rev: str
    text: str


class LogEntry(Out):
    rev: str
    author: str
    email: str | None = None
    time: float
    message: str
    parent: str | None = None


class LogResponse(Out):
    entries: list[LogEntry]


class DiffResponse(Out):
    a: str
    b: str
    diff: str


class CandidateDiffResponse(Out):
    base: str | None
    diff: str
    problems: list[Problem] = []
    nft_diff: str | None = None


class RenderResponse(Out):
    rev: str
    nft: str


class ValidateResponse(Out):
    ok: bool
    problems: list[Problem] = []


class Counter(Out):
    kind: str = Field(description="rule, policy, zone, forward, masquerade, snat, service or builtin")
    name: str = Field(description="the config item's name (a zone's name for zone defaults)")
    hook: str | None = Field(default=None, description="input or forward, for a zone's default")
    packets: int
    bytes: int


class CountersResponse(Out):
    counters: list[Counter]


class TraceStep(Out):
    chain: str
    rule: str | None = None
    verdict: str | None = None


class TraceResponse(Out):
    verdict: str
    rule: str | None = None
    hook: str | None = None
    ingress_zone: str | None = None
    egress: str | None = None
    egress_zone: str | None = None
    nat: list[dict] = []
    steps: list[TraceStep] = []
    packet: dict = {}
    config: Literal["running", "candidate"]


class CommitResponse(Out):
    rev: str | None
    changes: int = 0
    seconds: float | None = None
    warnings: list[Problem] = []
    message: str | None = Field(default=None, description="set when nothing was committed (no change), "
                                                          "or while it still runs")
    confirm: ConfirmState | None = None
    lockout_overridden: list[str] | None = None
    state: Literal["landed", "running"] | None = Field(
        default=None, description="with wait: running (HTTP 202) while the commit goes on in the background")
    job: str | None = Field(default=None, description="the job id (GET /v1/jobs?id=, status.jobs)")
    notes: list[str] = []


class Job(Out):
    id: str
    kind: str
    state: Literal["running", "landed", "failed"]
    rev: str | None = None
    started: float
    finished: float | None = None
    error: str | None = None
    code: str | None = Field(default=None, description="the error code a failed job's request would have had")
    changes: int | None = None


class JobsResponse(Out):
    jobs: list[Job] | None = None
    job: Job | None = None


class ApplyResponse(Out):
    rev: str
    changes: int
    seconds: float | None = None


class ConfirmResponse(Out):
    rev: str
    confirmed: bool


class AuditResponse(Out):
    entries: list[dict]


class Interface(Out):
    name: str
    state: str | None = None
    mtu: int | None = None
    mac: str | None = None
    ipv4: list[str] = []
    ipv6: list[str] = []
    counters: dict[str, int] = {}
    rx_rate: float | None = None
    tx_rate: float | None = None


class InterfacesResponse(Out):
    interfaces: list[Interface]


class Neighbour(Out):
    dst: str | None = None
    dev: str | None = None
    lladdr: str | None = None
    state: str | None = None


class NeighboursResponse(Out):
    neighbours: list[Neighbour]


class Talker(Out):
    src: str
    flows: int
    peers: int
    packets: int
    bytes: int


class ConntrackTopResponse(Out):
    total: int
    accounting: bool
    truncated: bool = False  # more flows than the reader takes (MAX_FLOWS)
    top: list[Talker]


class Rates(Out):
    rx: list[float]
    tx: list[float]


class HistoryResponse(Out):
    interval: float
    times: list[float]
    interfaces: dict[str, Rates]


class Lease(Out):
    family: Literal[4, 6]
    address: str
    hostname: str | None = None
    hwaddr: str | None = None
    duid: str | None = None
    expires: float | None = None
    interface: str | None = None
    state: str | None = None


class LeasesResponse(Out):
    leases: list[Lease]


# -- routes (GET /v1/routes; backend/observe/routes.py) ---------------------------------------------


class RoutesQuery(Query):
    table: str = Field("all", pattern=r"^(all|main|local|default|[0-9]{1,10})$",
                       description="a table name (main, local, default), a number, or all (every table but local)")


class RouteEntry(Out):
    family: Literal[4, 6]
    dst: str
    table: str
    kind: str = Field(description="connected, static, bgp, ospf, ospfv3, kernel, …")
    protocol: str
    type: str = "unicast"
    gateway: str | None = None
    dev: str | None = None
    metric: int | None = None
    distance: int | None = None
    source: Literal["kernel", "frr"] = "kernel"
    selected: bool = True
    installed: bool = True
    age: str | None = None


class RoutesResponse(Out):
    routes: list[RouteEntry]
    truncated: bool = False
    frr: bool = Field(False, description="FRR answered (its learned routes that lost are listed too)")
