"""The config repository: init, commit, log, diff, conflicts, crash-safe ref moves."""

from __future__ import annotations

import subprocess

import pytest

from backend.gitops import ConfigRepo, Conflict, RepoError


@pytest.fixture
def repo(tmp_path):
    return ConfigRepo.init(tmp_path / "repo", "version: 1\n", author="alice")


def test_init_commit_log_diff(repo):
    first = repo.head()
    second = repo.commit("version: 1\nsystem: {hostname: gw}\n", "set hostname", author="bob")
    assert repo.head() == second != first
    log = repo.log()
    assert [e.message for e in log] == ["set hostname", "initial configuration"]
    assert log[0].author == "bob" and log[0].parent == first
    d = repo.diff(first, second)
    assert "+system: {hostname: gw}" in d and d.startswith("--- ")
    assert repo.read(first) == "version: 1\n"
    assert repo.working_text() == repo.read() and not repo.worktree_dirty()
    assert repo.resolve("HEAD~1") == first and repo.resolve(second[:8]) == second


def test_commit_from_a_stale_base_is_refused(repo):
    base = repo.head()
    repo.commit("version: 1\n# a\n", "first writer", base=base)
    with pytest.raises(Conflict) as e:
        repo.commit("version: 1\n# b\n", "second writer", base=base)
    assert e.value.head == repo.head() and "HEAD is now" in str(e.value)
    assert repo.log()[0].message == "first writer"


def test_uncommitted_objects_do_not_move_head(repo):
    head = repo.head()
    oid = repo.create_commit("version: 1\n# pending\n", "pending", "carol", None, head)
    assert repo.head() == head and oid != head
    repo.advance(oid, head)
    assert repo.head() == oid


def test_git_sees_a_normal_repository(repo):
    repo.commit("version: 1\n# x\n", "x")
    out = subprocess.run(["git", "-C", str(repo.path), "log", "--format=%s"], capture_output=True, text=True)
    assert out.stdout.split("\n")[:2] == ["x", "initial configuration"]
    st = subprocess.run(["git", "-C", str(repo.path), "status", "--porcelain"], capture_output=True, text=True)
    assert st.stdout == ""


def test_errors(repo, tmp_path):
    with pytest.raises(RepoError, match="unknown revision"):
        repo.read("deadbeef")
    with pytest.raises(RepoError, match="needs a message"):
        repo.commit("version: 1\n#\n", "  ")
    with pytest.raises(RepoError, match="not a talgate config repo"):
        ConfigRepo(tmp_path / "nope")
    with pytest.raises(RepoError, match="already exists"):
        ConfigRepo.init(repo.path, "x")
