"""Lost updates: the CLI sends the revision an edit started from, so two admins editing the same
revision cannot silently undo each other (issue 11, class 6)."""

from __future__ import annotations

import pygit2
import pytest

from backend.lab.lab import example_config

pytestmark = pytest.mark.lab


def _commit_file(lab, path, msg, *extra):
    return lab.cli("commit", "-m", msg, "-f", str(path), *extra)


def test_two_admins_with_config_get_copies(lab, tmp_path):
    head = lab.head()
    a, b = tmp_path / "alice.yaml", tmp_path / "bob.yaml"
    for f in (a, b):
        r = lab.cli("config", "get", "-o", str(f), "--socket", lab.lab.socket)
        assert r.returncode == 0, r.stderr
        assert f.read_text() == lab.client.config()["text"]
    a.write_text(a.read_text().replace("hostname: gw", "hostname: gw-alice"))
    b.write_text(b.read_text().replace("hostname: gw", "hostname: gw-bob"))
    ra = _commit_file(lab, a, "alice renames the box")
    assert ra.returncode == 0, ra.stderr
    alice_rev = lab.head()
    assert alice_rev != head
    rb = _commit_file(lab, b, "bob renames the box")
    assert rb.returncode != 0
    assert "conflict" in rb.stderr and alice_rev[:12] in rb.stderr, rb.stderr
    assert lab.head() == alice_rev and "gw-alice" in lab.client.config()["text"]
    # Alice's file now records the new HEAD: her next edit commits without --base.
    a.write_text(a.read_text().replace("hostname: gw-alice", "hostname: gw"))
    ra2 = _commit_file(lab, a, "alice renames it back")
    assert ra2.returncode == 0, ra2.stderr
    assert lab.client.config()["text"] == example_config()


def test_worktree_edit_is_based_on_what_the_agent_wrote(lab, tmp_path):
    head = lab.head()
    assert lab.client.status()["worktree_base"] == head
    # An admin edits the agent's working tree ...
    lab.worktree.write_text(example_config().replace("hostname: gw", "hostname: gw-worktree"))
    # ... while another commits from a copy of the same revision.
    other = tmp_path / "other.yaml"
    assert lab.cli("config", "get", "-o", str(other), "--socket", lab.lab.socket).returncode == 0
    other.write_text(other.read_text().replace("hostname: gw", "hostname: gw-other"))
    assert _commit_file(lab, other, "other admin").returncode == 0
    moved = lab.head()
    # The agent rewrote its working tree with the new HEAD; re-apply the stale edit on top of HEAD's text.
    assert lab.client.status()["worktree_base"] == moved
    stale = example_config().replace("hostname: gw", "hostname: gw-worktree")
    r = lab.cli("commit", "-m", "stale edit", "--base", head, "-f", "/dev/stdin", input=stale)
    assert r.returncode != 0 and "conflict" in r.stderr
    assert lab.head() == moved
    lab.client.rollback(head)  # back to the example for the next test
    assert lab.client.config()["text"] == example_config()


def test_stdin_without_a_base_is_refused_before_the_agent(lab):
    head = lab.head()
    r = lab.cli("commit", "-m", "no base", "-f", "/dev/stdin", input=example_config().replace("gw", "gw2"))
    assert r.returncode != 0
    assert "cannot tell which revision /dev/stdin was based on" in r.stderr and "--base" in r.stderr
    assert lab.head() == head


def test_file_in_a_git_clone_uses_the_clone_head(lab, tmp_path):
    head = lab.head()
    clone = tmp_path / "clone"
    pygit2.clone_repository(str(lab.lab.repo), str(clone))
    assert str(pygit2.Repository(str(clone)).head.target) == head
    (clone / "router.yaml").write_text(example_config().replace("hostname: gw", "hostname: gw-clone"))
    # Someone else commits first: the clone's HEAD is now stale.
    newer = example_config().replace("hostname: gw", "hostname: gw-newer")
    assert lab.cli("commit", "-m", "newer", "--base", head, "-f", "/dev/stdin", input=newer).returncode == 0
    r = _commit_file(lab, clone / "router.yaml", "from a stale clone")
    assert r.returncode != 0 and "conflict" in r.stderr
    lab.client.rollback(head)
    assert lab.client.config()["text"] == example_config()
