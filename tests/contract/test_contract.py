"""The API contract (see conftest.py): the same assertions against the in-process service layer and
the real agent in the lab. Codes, problem paths and shapes only — never message text."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from backend.api.errors import CODES
from backend.api.routes import ROUTES
from backend.client import AgentError
from backend.lab.lab import example_config

REV = re.compile(r"^[0-9a-f]{40}$")
BLOCK_SSH = {"name": "block-ssh", "from": "mgmt", "to": "self", "proto": "tcp", "dport": 22, "action": "drop"}


def edited(fn) -> str:
    data = yaml.safe_load(example_config())
    fn(data)
    return yaml.safe_dump(data, sort_keys=False)


def hostname(name: str) -> str:
    return edited(lambda d: d["system"].update(hostname=name))


def refused(call, code: str) -> AgentError:
    with pytest.raises(AgentError) as e:
        call()
    assert e.value.code == code, (e.value.code, e.value.payload)
    assert e.value.status == CODES[code][0]
    assert set(e.value.payload) >= {"code", "message", "problems", "detail"}
    return e.value


def test_reads_answer_with_their_response_models(api):
    for r in ROUTES:
        if r.method == "GET" and r.request is None or r.handler in ("log", "audit", "config", "render", "history",
                                                                      "conntrack_top"):
            out = api.client.call(r.handler)
            assert isinstance(out, r.response), r.handler
    st = api.client.status()
    assert REV.match(st.head) and st.head == st.applied and st.in_sync and st.read_only is False
    assert api.ro_client.status().read_only is True
    assert api.client.config().rev == st.head and api.client.log(1)[0].rev == st.head


def test_counters_are_structured(api):
    counters = {(c.kind, c.name, c.hook) for c in api.client.counters()}
    assert ("rule", "ssh-from-mgmt", None) in counters and ("policy", "lan-wan", None) in counters
    assert ("zone", "wan", "input") in counters and ("zone", "lan", "forward") in counters
    assert ("forward", "web", None) in counters


def test_read_only_socket_refuses_every_write(api):
    head = api.client.status().head
    writes = {r.handler for r in ROUTES if r.write}
    assert writes == {"commit", "apply", "rollback", "confirm"}
    refused(lambda: api.ro_client.commit(hostname("gw-ro"), "forged", base=head), "read_only")
    refused(lambda: api.ro_client.apply(), "read_only")
    refused(lambda: api.ro_client.rollback(), "read_only")
    refused(lambda: api.ro_client.confirm(), "read_only")
    assert api.client.status().head == head
    # the reads answer there
    assert api.ro_client.config().rev == head and api.ro_client.validate(example_config()).ok


def test_validate_problems_have_paths(api):
    bad = edited(lambda d: d["rules"].append({"name": "x", "from": "nowhere", "to": "wan", "action": "drop"}))
    v = api.client.validate(bad)
    assert v.ok is False and v.problems and all(p.severity == "error" for p in v.problems)
    assert any(p.path.startswith("rules[") for p in v.problems), v.problems
    v = api.client.validate("version: 1\nsystem: [\n")
    assert v.ok is False and v.problems
    assert api.client.validate(example_config()).ok


def test_invalid_commit_is_refused_with_paths_and_nothing_moves(api):
    head = api.client.status().head
    bad = edited(lambda d: d["zones"]["lan"].update(interfaces=["nope0"]))
    e = refused(lambda: api.client.commit(bad, "bad", base=head), "invalid")
    assert any(p["path"].startswith("zones.lan") for p in e.problems), e.problems
    assert api.client.status().head == head


def test_bad_requests_name_the_fields(api):
    status, out = api.raw("POST", "/v1/commit", json.dumps({"config": 5, "bogus": 1}).encode())
    assert status == 400 and out["code"] == "bad_request"
    paths = {p["path"] for p in out["problems"]}
    assert {"config", "message", "bogus"} <= paths, paths
    status, out = api.raw("POST", "/v1/commit", json.dumps({"config": "x", "message": "m", "confirm": 0}).encode())
    assert status == 400 and out["code"] == "bad_request" and [p["path"] for p in out["problems"]] == ["confirm"]
    status, out = api.raw("POST", "/v1/trace", json.dumps({"packet": {"iif": "wan0", "src": "foo",
                                                                      "dst": "198.51.100.2"}}).encode())
    assert status == 400 and [p["path"] for p in out["problems"]] == ["packet.src"]
    status, out = api.raw("GET", "/v1/log?n=-1")
    assert status == 400 and out["code"] == "bad_request" and [p["path"] for p in out["problems"]] == ["n"]
    status, out = api.raw("GET", "/v1/audit?n=abc")
    assert status == 400 and out["code"] == "bad_request" and [p["path"] for p in out["problems"]] == ["n"]
    status, out = api.raw("GET", "/v1/log?n=99999999")  # more than the most is the most, not an error
    assert status == 200 and isinstance(out["entries"], list)
    status, out = api.raw("POST", "/v1/validate", b"[1, 2]")
    assert status == 400 and out["code"] == "bad_request"
    status, out = api.raw("POST", "/v1/validate", b"{not json")
    assert status == 400 and out["code"] == "bad_request"
    # the client checks the same models before sending
    e = refused(lambda: api.client.commit("x", "m", confirm=0), "bad_request")
    assert [p["path"] for p in e.problems] == ["confirm"]


def test_trace_arguments_and_verdicts(api):
    r = api.client.trace({"iif": "wan0", "src": "203.0.113.10", "dst": "198.51.100.2", "proto": "tcp",
                          "dport": 8443})
    assert r.verdict == "accept" and r.config == "running" and r.nat
    e = refused(lambda: api.client.trace({"iif": "nope0", "src": "203.0.113.10", "dst": "198.51.100.2",
                                          "proto": "tcp", "dport": 80}), "bad_request")
    assert [p["path"] for p in e.problems] == ["packet.iif"]
    e = refused(lambda: api.client.trace({"iif": "wan0", "src": "2001:db8::1", "dst": "198.51.100.2",
                                          "proto": "udp"}), "bad_request")
    assert sorted(p["path"] for p in e.problems) == ["packet.dport", "packet.src"]
    r = api.client.trace({"iif": "guest0", "src": "192.168.20.10", "dst": "203.0.113.10", "proto": "tcp",
                          "dport": 80}, candidate=edited(lambda d: d["rules"].insert(0, {
                              "name": "no-web", "from": "guest", "to": "wan", "proto": "tcp", "dport": 80,
                              "action": "drop"})))
    assert r.verdict == "drop" and r.rule == "rule no-web" and r.config == "candidate"


def test_not_found(api):
    status, out = api.raw("GET", "/v1/nope")
    assert status == 404 and out["code"] == "not_found"
    status, out = api.raw("GET", "/v1/commit")
    assert status == 404 and out["code"] == "not_found"
    refused(lambda: api.client.config("0123456789abcdef0123"), "not_found")


def test_conflict_names_head(api):
    base = api.client.status().head
    first = api.client.commit(hostname("gw-a"), "a", base=base)
    assert REV.match(first.rev) and first.rev != base
    e = refused(lambda: api.client.commit(hostname("gw-b"), "b", base=base), "conflict")
    assert e.detail["head"] == first.rev and e.detail["base"] == base
    assert api.client.status().head == first.rev


def test_would_cut_lists_the_cuts_and_force_needs_confirm(api):
    head = api.client.status().head
    cutting = edited(lambda d: d["rules"].insert(0, dict(BLOCK_SSH)))
    e = refused(lambda: api.client.commit(cutting, "cut", base=head), "would_cut")
    assert e.detail["cuts"] and all(c["rule"] == "rule block-ssh" for c in e.detail["cuts"])
    assert all(set(c) >= {"path", "verdict", "rule"} for c in e.detail["cuts"])
    refused(lambda: api.client.commit(cutting, "cut", base=head, force=True), "needs_confirm")
    assert api.client.status().head == head
    # the caller's own SSH connection is protected too (the same rule, appended after the accept, cuts nothing)
    ssh = api.make_client({"author": "contract", "ssh_connection": "192.168.99.2 50022 192.168.99.1 22"})
    after = edited(lambda d: d["rules"].append(dict(BLOCK_SSH)))
    r = ssh.commit(after, "harmless: ssh-from-mgmt accepts first", base=head)
    assert r.rev != head and r.lockout_overridden is None


def test_confirm_flow(api):
    head = api.client.status().head
    refused(lambda: api.client.confirm(), "nothing_to_confirm")
    r = api.client.commit(hostname("gw-confirm"), "risky", base=head, confirm=300)
    assert r.confirm is not None and r.confirm.rev == r.rev and r.confirm.seconds == 300
    assert 0 < r.confirm.remaining <= 300
    st = api.client.status()
    assert st.confirm is not None and st.confirm.rev == r.rev
    e = refused(lambda: api.client.commit(hostname("gw-next"), "next", base=r.rev), "confirm_pending")
    assert e.detail["rev"] == r.rev
    assert api.client.confirm().rev == r.rev
    assert api.client.status().confirm is None
    refused(lambda: api.client.confirm(), "nothing_to_confirm")


def test_rollback(api):
    head = api.client.status().head
    refused(lambda: api.client.rollback(head), "nothing_to_roll_back")
    r = api.client.commit(hostname("gw-rb"), "to roll back", base=head)
    back = api.client.rollback()
    assert back.rev not in (head, r.rev) and api.client.config().text == api.client.config(head).text
    assert api.client.log(1)[0].rev == back.rev


def test_apply_is_idempotent(api):
    api.client.apply()
    r = api.client.apply()
    assert r.changes == 0 and r.rev == api.client.status().head


def test_unchanged_commit_is_a_no_op(api):
    head = api.client.status().head
    r = api.client.commit(api.client.config().text, "same", base=head)
    assert r.rev == head and r.changes == 0 and r.message


def test_apply_failure_restores_and_says_where(api):
    head = api.client.status().head
    candidate = edited(lambda d: d["rules"].append({"name": "open-2222", "from": "wan", "to": "self", "proto": "tcp",
                                                    "dport": 2222, "action": "accept"}))
    api.fault("nftables")  # the nftables applier fails after it changed things
    try:
        e = refused(lambda: api.client.commit(candidate, "fails half-way", base=head), "apply_failed")
    finally:
        api.fault(None)
    assert e.detail["stage"] == "nftables" and e.detail["restored"] == head and e.detail["restore_errors"] == []
    st = api.client.status()
    assert st.head == head and st.last_error
    r = api.client.commit(candidate, "lands once the fault is gone", base=head)
    assert r.rev != head and api.client.status().last_error is None
