"""The typed API: the route table, the transport-independent dispatch, the error codes, the OpenAPI
document (docs/openapi.json must equal what `talgate api schema` prints)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.agent.service import Service, structured_counters
from backend.api import models as m
from backend.api.dispatch import dispatch
from backend.api.errors import CODES, ApiError
from backend.api.openapi import document
from backend.api.routes import ROUTES
from backend.cli import main as cli_main
from backend.client import AgentClient

ROOT = Path(__file__).resolve().parents[2]


def test_openapi_document_is_in_sync(capsys):
    assert cli_main(["api", "schema"]) == 0
    printed = capsys.readouterr().out
    assert json.loads(printed) == document()
    committed = (ROOT / "docs/openapi.json").read_text()
    assert json.loads(committed) == document(), "docs/openapi.json is stale: talgate api schema > docs/openapi.json"
    paths = document()["paths"]
    assert {(m_.upper(), p) for p, ops in paths.items() for m_ in ops} == {(r.method, "/v1" + r.path) for r in ROUTES}


def test_every_route_has_one_service_method_and_one_client_method():
    for r in ROUTES:
        assert callable(getattr(Service, r.handler, None)), r.handler
        assert callable(getattr(AgentClient, r.handler, None)), r.handler
        assert r.method in ("GET", "POST") and r.path.startswith("/")
        assert r.request is None or (r.method == "GET") == issubclass(r.request, m.Query), r.handler


def test_error_codes_are_stable():
    # Renaming or removing a code breaks clients: this list only grows.
    assert set(CODES) >= {"bad_request", "invalid", "kernel_refused", "needs_confirm", "conflict", "confirm_pending",
                          "would_cut", "nothing_to_confirm", "nothing_to_roll_back", "not_found", "unauthorized",
                          "read_only", "too_large", "timeout", "busy", "apply_failed", "internal"}
    with pytest.raises(ValueError):
        ApiError("no_such_code", "x")


class Recorder:
    """A service that records which handler ran (proves nothing runs behind a refusal)."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        route = next(r for r in ROUTES if r.handler == name)

        def handler(*args):
            self.calls.append(name)
            return route.response.model_construct()

        return handler


def test_read_only_is_enforced_by_the_route_flag_before_anything_runs():
    for r in ROUTES:
        svc = Recorder()
        status, out = dispatch(svc, r.method, "/v1" + r.path, {}, m.Caller(1, 1, "u", read_only=True))
        if r.write:
            assert (status, out["code"], svc.calls) == (403, "read_only", [])
        else:
            assert out.get("code") != "read_only"


def test_internal_errors_are_coded_and_do_not_escape():
    class Broken:
        def status(self, caller):
            raise RuntimeError("boom")

    status, out = dispatch(Broken(), "GET", "/v1/status", {}, m.Caller(1, 1, "u", read_only=False))
    assert status == 500 and out["code"] == "internal" and out["problems"] == [] and out["detail"] == {}


def test_request_models_refuse_wrong_types_and_unknown_fields():
    class Svc:
        def commit(self, req, caller):  # pragma: no cover - never reached
            raise AssertionError

    for body, paths in (({"config": "x", "message": "m", "confirm": "90"}, ["confirm"]),
                        ({"config": "x", "message": "m", "force": 1}, ["force"]),
                        ({"config": "x", "message": "m", "extra": 1}, ["extra"]),
                        ({}, ["config", "message"])):
        status, out = dispatch(Svc(), "POST", "/v1/commit", body, m.Caller(1, 1, "u", read_only=False))
        assert status == 400 and out["code"] == "bad_request"
        assert [p["path"] for p in out["problems"]] == paths, out


def test_counters_are_split_into_kind_name_hook():
    got = structured_counters({"rule ssh": {"packets": 1, "bytes": 2}, "zone lan input": {"packets": 3, "bytes": 4},
                               "policy lan-wan": {"packets": 5, "bytes": 6}, "forward web": {"packets": 0, "bytes": 0}})
    assert [(c.kind, c.name, c.hook, c.packets) for c in got] == [
        ("forward", "web", None, 0), ("policy", "lan-wan", None, 5), ("rule", "ssh", None, 1),
        ("zone", "lan", "input", 3)]


def test_responses_read_like_dicts_for_scripts():
    st = m.StatusResponse(head="a" * 40, extra_field=1)
    assert st["head"] == st.head and st.get("nope") is None and "head" in st and st["extra_field"] == 1
    with pytest.raises(KeyError):
        st["nope"]


@pytest.mark.parametrize("raw,path", [
    (b'{"config": "\\ud800"}', "config"),          # an unpaired surrogate smuggled through a JSON escape
    (b'{"a":' * 20 + b"1" + b"}" * 20, "(body)"),   # deeper than any request needs
    (b"\xff\xfe{}", "(body)"),                      # not UTF-8
    (b"[1]", "(body)"),                             # not an object
    (b"{nope", "(body)"),                           # not JSON
])
def test_bodies_are_bounded_before_any_model(raw, path):
    from backend.api.dispatch import parse_body

    with pytest.raises(ApiError) as e:
        parse_body(raw)
    assert e.value.code == "bad_request" and [p["path"] for p in e.value.problems] == [path]


def test_query_strings_are_bounded():
    status, out = dispatch(Recorder(), "GET", "/v1/log?" + "&".join(f"x{i}=1" for i in range(60)), {},
                           m.Caller(1, 1, "u", read_only=True))
    assert status == 400 and out["code"] == "bad_request" and out["problems"][0]["path"] == "(query)"


def test_responses_compare_equal_to_their_json():
    p = m.Problem(path="a", message="b")
    assert p == {"path": "a", "message": "b", "severity": "error"} and p != {"path": "a"}
    assert m.ValidateResponse(ok=False, problems=[p]).problems == [{"path": "a", "message": "b", "severity": "error"}]


def test_every_code_the_backend_raises_is_in_the_table():
    import re

    used = set()
    for f in ("backend/agent/pipeline.py", "backend/gitops/repo.py", "backend/agent/service.py"):
        used |= set(re.findall(r'code="([a-z_]+)"', (ROOT / f).read_text()))
        used |= set(re.findall(r'ApiError\(\s*"([a-z_]+)"', (ROOT / f).read_text()))
    assert used and used <= set(CODES), used - set(CODES)
