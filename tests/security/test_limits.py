"""Unit tests of the input bounds (issue 11, classes 1 and 8): the YAML loader, request parsing,
revisions, the audit log, files named in the document. No root, no agent process."""

from __future__ import annotations

import json
import os
import time
from email.message import Message
from io import BytesIO
from pathlib import Path

import pytest
import yaml

from backend.agent import audit as audit_mod
from backend.agent.server import MAX_JSON_DEPTH, read_body
from backend.api.errors import CODES, ApiError
from backend.gitops import ConfigRepo, RepoError
from backend.host.services import MAX_BLOCKLIST_BYTES, ServiceApplier, read_bounded_file
from backend.lab.lab import example_config
from backend.model import ConfigError, validate_text
from backend.model import load as L

from .hostile import bomb_420, bomb_561

LOADERS = [pytest.param(None, id="libyaml" if yaml.__with_libyaml__ else "pure"),
           pytest.param(yaml.SafeLoader, id="pure-python")]


# -- YAML --------------------------------------------------------------------------------


@pytest.mark.parametrize("bomb", [bomb_420, bomb_561])
def test_alias_bomb_refused_fast_with_a_short_message(bomb):
    t = time.monotonic()
    cfg, problems = validate_text(bomb())
    assert time.monotonic() - t < 1.0
    assert cfg is None and len(problems) == 1
    p = problems[0]
    assert p.path.startswith("router.yaml:") and "aliases are expanded" in p.message
    assert len(p.message) < 200


@pytest.mark.parametrize("loader", LOADERS)
def test_shape_limits_with_both_parsers(loader):
    with pytest.raises(ConfigError, match="aliases are expanded"):
        L.check_shape(bomb_561(), loader=loader)
    with pytest.raises(ConfigError, match=f"more than {L.MAX_DEPTH} levels"):
        L.check_shape("a:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 200)), loader=loader)
    with pytest.raises(ConfigError, match=f"more than {L.MAX_DEPTH} levels"):
        L.check_shape("x: " + "[" * 100 + "]" * 100 + "\n", loader=loader)
    with pytest.raises(ConfigError, match="recursive"):
        L.check_shape("x: &a [1, *a]\n", loader=loader)
    # depth through an alias counts too
    deep = "[" * 40 + "1" + "]" * 40
    with pytest.raises(ConfigError, match="through an alias"):
        L.check_shape(f"a: &a {deep}\nb: {'[' * 30}*a{']' * 30}\n", loader=loader)
    # a modest legitimate use of aliases passes
    L.check_shape("a: &a [1, 2, 3]\nb: *a\nc: *a\n", loader=loader)
    L.check_shape(example_config(), loader=loader)


def test_100k_deep_flow_yaml_is_a_problem_not_a_crash():
    cfg, problems = validate_text("x: " + "[" * 100_000)
    assert cfg is None and problems and problems[0].path.startswith("router.yaml")


def test_document_size_limit_is_checked_first():
    text = "#" * (50 << 20)
    t = time.monotonic()
    cfg, problems = validate_text(text)
    assert time.monotonic() - t < 1.0
    assert cfg is None
    assert [str(p) for p in problems] == [f"router.yaml: document is {50 << 20} bytes, the limit is "
                                          f"{L.MAX_DOCUMENT_BYTES} bytes (16 MiB)"]


def test_surrogates_and_non_utf8_are_problems():
    cfg, problems = validate_text("version: 1\nsystem: {hostname: \udc80}\n")
    assert cfg is None and "not UTF-8" in problems[0].message
    with pytest.raises(ConfigError) as e:
        L.decode_document(b"version: 1\nsystem:\n  hostname: \xff\n")
    assert str(e.value) == "router.yaml: not UTF-8 text: byte 0xff at line 3, column 13"


def test_messages_and_problem_counts_are_capped():
    long_name = "x" * 100_000
    cfg, problems = validate_text(f"version: 1\nsystem: {{hostname: {long_name}}}\n")
    assert cfg is None
    assert all(len(p.message) <= L.MAX_MESSAGE + 40 and len(p.path) <= L.MAX_PATH + 40 for p in problems)
    many = "version: 1\nsets:\n" + "".join(f"  s{i}: {{addresses: [nope]}}\n" for i in range(1000))
    cfg, problems = validate_text(many)
    assert cfg is None and len(problems) == L.MAX_PROBLEMS
    assert "more problems" in problems[-1].message


def test_read_document_is_bounded(tmp_path):
    t = time.monotonic()
    with pytest.raises(ConfigError, match=f"document is more than|document is {L.MAX_DOCUMENT_BYTES + 1} bytes"):
        L.read_document("/dev/zero")  # read up to the limit, then refused
    with pytest.raises(ConfigError, match="cannot read: Is a directory"):
        L.read_document(str(tmp_path))
    big = tmp_path / "big.yaml"
    with open(big, "wb") as f:
        f.truncate(50 << 20)
    with pytest.raises(ConfigError, match=f"document is {50 << 20} bytes"):
        L.read_document(str(big))
    assert time.monotonic() - t < 2.0
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"version: 1\n\xfe\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: not UTF-8 text: byte 0xfe at line 2, column 1"):
        L.read_document(str(bad))
    ok = tmp_path / "ok.yaml"
    ok.write_text("version: 1\n")
    assert L.read_document(str(ok)) == "version: 1\n"


# -- request parsing ---------------------------------------------------------------------


def _headers(**h) -> Message:
    m = Message()
    for k, v in h.items():
        m[k.replace("_", "-")] = v
    return m


def _parse(raw: bytes, method: str = "POST", limit: int = 1 << 20, **headers):
    if "Content_Length" not in headers and raw is not None:
        headers["Content_Length"] = str(len(raw))
    return read_body(_headers(**headers), BytesIO(raw or b"").read, limit, method)


def _refused(fn, code: str = "bad_request") -> ApiError:
    with pytest.raises(ApiError) as e:
        fn()
    assert e.value.code == code and e.value.status == CODES[code][0], e.value.to_dict()
    assert len(e.value.message) < 400
    return e.value


@pytest.mark.parametrize("cl", ["abc", "-1", "1e3", " 12x", "99999999999999999999999", "+5"])
def test_bad_content_length_is_400(cl):
    _refused(lambda: _parse(b"{}", Content_Length=cl))


def test_missing_and_oversized_bodies():
    _refused(lambda: read_body(_headers(), BytesIO().read, 100, "POST"))
    assert read_body(_headers(), BytesIO().read, 100, "GET") == {}
    e = _refused(lambda: read_body(_headers(Content_Length=str(50 << 20)), BytesIO().read, 100, "POST"), "too_large")
    assert e.detail["limit"] == 100
    _refused(lambda: _parse(b"{}", Transfer_Encoding="chunked"))


def test_deep_json_and_non_objects_are_400():
    for raw in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
                b'{"packet":' + b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1) + b"}",
                b"[]", b"12", b"\xff\xfe", b"{"):
        _refused(lambda raw=raw: _parse(raw))


@pytest.mark.parametrize("body,field", [
    ({"config": 12}, "config"), ({"message": []}, "message"), ({"packet": "x"}, "packet"),
    ({"confirm": True}, "confirm"), ({"confirm": "60"}, "confirm"), ({"force": 1}, "force"),
    ({"author": "x" * 1000}, "author"), ({"config": "\ud800"}, "config"),
])
def test_wrong_field_types_name_the_field(body, field):
    from backend.api.dispatch import call, parse_body
    from backend.api.models import Caller

    class Nothing:  # nothing behind the request models may run
        def __getattr__(self, name):
            raise AssertionError(name)

    def post():
        route = "/v1/trace" if field == "packet" else "/v1/commit"
        status, out = call(Nothing(), "POST", route, parse_body(json.dumps(body).encode()),
                           Caller(0, 0, "u", read_only=True if field == "packet" else False))
        raise out

    e = _refused(post)
    assert field in [p["path"] for p in e.problems], e.problems


def test_query_parameters():
    from backend.api.models import LogQuery

    assert LogQuery.model_validate({"n": "5"}).n == 5
    assert LogQuery.model_validate({"n": "99999999"}).n == 10000
    for bad in ("abc", "-1", "1.5", "", "١٢"):
        with pytest.raises(ValueError):
            LogQuery.model_validate({"n": bad})


# -- revisions and the working tree ------------------------------------------------------


@pytest.mark.parametrize("rev", ["HEAD:router.yaml", "HEAD^{tree}", "@{-1}", ":/initial", "x" * 5000,
                                 "HEAD~5", "deadbeef", "-n"])
def test_bad_revisions_are_repo_errors_naming_them(tmp_path, rev):
    repo = ConfigRepo.init(tmp_path / "r", "version: 1\n")
    with pytest.raises(RepoError) as e:
        repo.resolve(rev)
    assert "revision" in str(e.value) and len(str(e.value)) < 200


def test_good_revisions(tmp_path):
    repo = ConfigRepo.init(tmp_path / "r", "version: 1\n")
    head = repo.head()
    repo.commit("version: 1\n# two\n", "two")
    for rev in ("HEAD~1", "HEAD^", "main~1", head[:8], head):
        assert repo.resolve(rev) == head


def test_non_utf8_working_tree_and_blob(tmp_path):
    repo = ConfigRepo.init(tmp_path / "r", "version: 1\n")
    (tmp_path / "r" / "router.yaml").write_bytes(b"version: 1\n\xff\n")
    assert repo.worktree_dirty() is True
    with pytest.raises(RepoError, match="router.yaml: not UTF-8 text: byte 0xff at line 2"):
        repo.working_text()
    # a commit made behind the agent's back with invalid bytes
    import pygit2

    r = repo.repo
    blob = r.create_blob(b"version: 1\n\xff\n")
    tb = r.TreeBuilder()
    tb.insert("router.yaml", blob, pygit2.enums.FileMode.BLOB)
    sig = pygit2.Signature("x", "x@x")
    r.create_commit("refs/heads/main", sig, sig, "bad", tb.write(), [pygit2.Oid(hex=repo.head())])
    with pytest.raises(RepoError, match=r"router.yaml at \w+: not UTF-8 text"):
        repo.read()


def test_worktree_fifo_is_dirty_without_blocking(tmp_path):
    repo = ConfigRepo.init(tmp_path / "r", "version: 1\n")
    wt = tmp_path / "r" / "router.yaml"
    wt.unlink()
    os.mkfifo(wt)
    assert repo.worktree_dirty() is True


# -- audit -------------------------------------------------------------------------------


def test_audit_entries_and_reads_are_bounded(tmp_path):
    a = audit_mod.Audit(tmp_path / "audit.jsonl")
    e = a.record("refused", {"user": "u" * 10_000}, reason="r" * 35_000_000, items=list(range(10_000)))
    line = (tmp_path / "audit.jsonl").read_bytes()
    assert len(line) <= audit_mod.MAX_ENTRY + 1
    assert "truncated" in e["reason"] and "truncated" in e["items"][-1]
    big = a.record("refused", None, **{f"k{i}": "v" * 900 for i in range(60)})
    assert "truncated" in big
    for i in range(3000):
        a.record("x", None, i=i)
    assert [x["i"] for x in a.read(3)] == [2997, 2998, 2999]
    assert a.read(0) == []
    assert len(a.read(10**9)) == audit_mod.MAX_READ_ENTRIES


# -- files named in the document ---------------------------------------------------------


def test_read_bounded_file(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, what in ((str(fifo), "a FIFO"), ("/dev/zero", "a character device"), (str(tmp_path), "a directory")):
        t = time.monotonic()
        with pytest.raises(ValueError, match=what):
            read_bounded_file(path, 1 << 20)
        assert time.monotonic() - t < 1.0
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.truncate(2 << 20)
    with pytest.raises(ValueError, match="the limit is 1 MiB"):
        read_bounded_file(str(big), 1 << 20)
    ok = tmp_path / "ok"
    ok.write_bytes(b"ads.example\n\xff\n")
    assert read_bounded_file(str(ok), 1 << 20) == "ads.example\n\ufffd\n"
    assert MAX_BLOCKLIST_BYTES == 64 << 20


def _blocklist_cfg(path: str):
    text = example_config() + f"""
dns:
  blocklists:
    - {{name: ads, file: {path}}}
"""
    cfg, problems = validate_text(text)
    assert cfg is not None, problems
    return cfg


def test_blocklists_problems_and_read_only(tmp_path):
    svc = ServiceApplier(None)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, what in ((str(fifo), "a FIFO"), ("/dev/zero", "a character device")):
        texts, problems = svc.blocklists(_blocklist_cfg(path))
        assert texts == {} and [p.path for p in problems] == ["dns.blocklists[0].file"]
        assert what in problems[0].message
    # read-only: nothing opened, the same warning whatever the path is
    answers = {str(svc.blocklists(_blocklist_cfg(p), files=False)) for p in ("/root/.bashrc", "/nonexistent/x")}
    assert len(answers) == 1
    texts, problems = svc.blocklists(_blocklist_cfg("/nonexistent/x"), files=False)
    assert texts == {} and problems[0].severity == "warning" and "read-only" in problems[0].message


def test_worktree_base_record_is_read_bounded_and_non_blocking(tmp_path):
    repo = ConfigRepo.init(tmp_path / "r", "version: 1\n")
    assert repo.worktree_base() == repo.head()
    rec = Path(repo.repo.path) / "talgate-worktree-base"
    rec.unlink()
    os.mkfifo(rec)
    t = time.monotonic()
    assert repo.worktree_base() is None
    assert time.monotonic() - t < 1.0
