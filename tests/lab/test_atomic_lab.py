"""All or nothing with the real kernel and daemons (issue 11 class 2, issue 12 item 4): each stage
of a commit is made to fail in turn after the kernel changed — through the agent's fault file
(TALGATE_FAULTS, read at every stage) or a real fault (a rendered folder that cannot be written,
a git lock) — and the ruleset, addresses, routes, every rendered daemon file and HEAD must be
byte-identical to before, `talgate status` must show the error and the answer must carry a code.
Plus: a commit slower than the client's wait is "still running", then landed; the confirm timer
rolls back even when the previous revision's blocklist file is gone."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from backend.client import AgentError
from backend.host.services import SERVICES

from ..security.test_atomic import APPLIERS, BASE, candidate
from .conftest import new_lab
from .util import LabHelper

pytestmark = pytest.mark.lab


class AtomicLab(LabHelper):
    def __init__(self, lab, faults: Path):
        super().__init__(lab)
        self.faults = faults

    def set_faults(self, d: dict) -> None:
        self.faults.write_text(json.dumps(d))

    @property
    def rendered_dir(self) -> Path:
        return self.lab.state / "rendered"

    def everything(self) -> dict:
        base = self.rendered_dir
        files = {str(f.relative_to(base)): f.read_bytes() for f in sorted(base.rglob("*")) if f.is_file()}
        return {**self.kernel_state(), "rendered": files, "head": self.head(),
                "worktree": self.worktree.read_text()}

    @property
    def gitdir(self) -> Path:
        return Path(self.lab.repo) / ".git"

    def lab_locks(self) -> list[Path]:
        return [self.gitdir / "index.lock", self.gitdir / "refs/heads/main.lock"]


@pytest.fixture(scope="module")
def alab(tmp_path_factory):
    faults = tmp_path_factory.mktemp("faults") / "faults.json"
    faults.write_text("{}")
    old = os.environ.get("TALGATE_FAULTS")
    os.environ["TALGATE_FAULTS"] = str(faults)  # inherited by the lab's agent only
    try:
        lab = new_lab(tmp_path_factory, BASE)
    finally:
        if old is None:
            os.environ.pop("TALGATE_FAULTS", None)
        else:
            os.environ["TALGATE_FAULTS"] = old
    h = AtomicLab(lab, faults)
    try:
        yield h
    finally:
        lab.down()


@pytest.fixture
def clean(alab):
    alab.set_faults({})
    yield alab
    alab.set_faults({})
    for lock in alab.lab_locks():
        lock.unlink(missing_ok=True)


def _assert_restored(lab: AtomicLab, before: dict, err: AgentError, stage: str) -> None:
    assert 400 <= err.status < 600, err.payload
    assert err.payload.get("code") == "apply_failed", err.payload
    assert "restored" in str(err) and "restoring failed" not in str(err), str(err)
    after = lab.everything()
    for k in ("ruleset", "addrs", "routes4", "routes6", "head", "worktree"):
        assert after[k] == before[k], f"{stage}: {k} differs"
    changed = sorted(f for f in set(before["rendered"]) | set(after["rendered"])
                     if before["rendered"].get(f) != after["rendered"].get(f))
    assert changed == [], f"{stage}: rendered files differ: {changed}"
    st = lab.cli("status")
    assert st.returncode == 0 and "restored" in st.stdout, st.stdout


# Each registered applier fails in turn after it changed things (the stage is its name), then the
# groups, each daemon's write and reload, the NTS certificate and HEAD's move.
STAGES = APPLIERS + ["net", "nft", "services", "chrony.cert", "advance"] + [
    f"{svc}.{what}" for svc in SERVICES for what in ("write", "reload")]


@pytest.mark.parametrize("stage", STAGES)
def test_a_failure_at_any_stage_restores_kernel_daemons_and_head(clean, stage):
    lab = clean
    before = lab.everything()
    lab.set_faults({stage: "raise"} if stage != "advance" else
                   {stage: f"touch:{lab.gitdir / 'refs/heads/main.lock'}"})
    with pytest.raises(AgentError) as e:
        lab.client.commit(candidate(vlan=False), f"fault at {stage}")
    _assert_restored(lab, before, e.value, stage)
    assert lab.tcp("mgmt", "192.168.99.1", 22) is not None


def test_a_service_folder_not_writable_while_a_rule_and_a_dhcp_pool_change(clean):
    """Issue 12's "done when", with the real kernel and daemons."""
    lab = clean
    text = BASE.replace("192.168.10.100-192.168.10.199", "192.168.10.100-192.168.10.120").replace(
        "rules:\n", "rules:\n  - {name: open-wan, from: wan, to: self, proto: tcp, dport: 2222, action: accept}\n")
    d = lab.rendered_dir / "kea-dhcp4"
    saved = lab.lab.state / "kea-dhcp4.saved"
    shutil.move(d, saved)
    d.write_text("not a folder\n")  # the agent runs as root: modes would not stop it
    try:
        before = lab.everything()
        c = lab.cli("commit", "-m", "rule and pool", "-f", "/dev/stdin", "--base", "HEAD", input=text)
        assert c.returncode == 1, c.stdout + c.stderr
        assert "restored" in c.stderr and "kea-dhcp4" in c.stderr, c.stderr
        after = lab.everything()
        assert {k: after[k] for k in before if k != "worktree"} == {k: before[k] for k in before if k != "worktree"}
        assert "dport 2222" not in after["ruleset"]
        # The commit's error, or the drift repair's that follows it (kea-dhcp4.conf is "missing").
        st = lab.cli("status")
        assert "last error" in st.stdout and "kea-dhcp4" in st.stdout, st.stdout
    finally:
        d.unlink()
        shutil.move(saved, d)


def test_an_index_lock_appearing_mid_commit_is_reported_as_landed(clean):
    lab = clean
    head = lab.head()
    lab.set_faults({"advance": f"touch:{lab.gitdir / 'index.lock'}"})
    text = BASE.replace("hostname: gw", "hostname: gw4")
    c = lab.cli("commit", "-m", "lands despite the index lock", "-f", "/dev/stdin", "--base", "HEAD", input=text)
    assert c.returncode == 0, c.stderr
    assert "committed" in c.stdout and "was not fully updated" in c.stderr
    assert lab.head() != head and lab.client.config()["text"] == text
    assert lab.client.status()["last_error"] is None
    (lab.gitdir / "index.lock").unlink()
    r = lab.client.commit(BASE, "back")
    assert r["rev"] == lab.head()


def test_a_stale_ref_lock_is_cleared_before_anything_changes(clean):
    lab = clean
    lock = lab.gitdir / "refs/heads/main.lock"
    lock.touch()
    try:
        before = lab.everything()
        with pytest.raises(AgentError) as e:
            lab.client.commit(candidate(vlan=False), "behind a fresh lock")
        assert e.value.status == 503 and e.value.payload["code"] == "repo_busy"
        assert lab.everything() == before
        old = time.time() - 3600
        os.utime(lock, (old, old))
        r = lab.client.commit(candidate(vlan=False), "behind a stale lock")
        assert r["rev"] == lab.head() and any("stale lock" in n for n in r["notes"])
        assert "dport 2222" in lab.router("nft", "list", "table", "inet", "talgate")
    finally:
        lock.unlink(missing_ok=True)
        lab.client.commit(BASE, "back to base")


def test_a_commit_slower_than_the_clients_wait_is_still_running_then_landed(clean):
    lab = clean
    lab.set_faults({"net": "sleep:4"})
    text = BASE.replace("hostname: gw", "hostname: gw5")
    env = {"TALGATE_COMMIT_WAIT": "0.5"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        c = lab.cli("commit", "-m", "slow", "-f", "/dev/stdin", "--base", "HEAD", input=text)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert c.returncode == 3, c.stdout + c.stderr
    assert "still running, rev " in c.stdout and "talgate status" in c.stdout
    assert "fail" not in (c.stdout + c.stderr).lower()
    rev = c.stdout.split("still running, rev ")[1].split()[0]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        jobs = [j for j in lab.client.status()["jobs"] if (j["rev"] or "").startswith(rev)]
        if jobs and jobs[0]["state"] != "running":
            break
        time.sleep(0.2)
    assert jobs[0]["state"] == "landed", jobs
    assert lab.head().startswith(rev)
    lab.set_faults({})
    lab.client.commit(BASE, "back to base")


def test_confirm_timer_rolls_back_when_the_previous_blocklist_is_gone(clean, tmp_path):
    lab = clean
    bl = tmp_path / "ads.txt"
    bl.write_text("ads.example\n")
    with_bl = BASE.replace("  lease_names: false\n", f"  lease_names: false\n  blocklists: [{{name: ads, file: {bl}}}]\n")
    lab.client.commit(with_bl, "with a blocklist")
    good = lab.everything()
    risky = with_bl.replace("rules:\n", "rules:\n  - {name: open-wan, from: wan, to: self, proto: tcp, "
                                        "dport: 2222, action: accept}\n")
    r = lab.client.commit(risky, "risky", confirm=2)
    assert r["confirm"]
    bl.unlink()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and lab.client.status()["confirm"]:
        time.sleep(0.2)
    st = lab.client.status()
    assert st["confirm"] is None, st
    after = lab.everything()
    for k in ("ruleset", "addrs", "routes4", "routes6", "rendered"):  # Unbound kept its last good config
        assert after[k] == good[k], k
    assert lab.client.config()["text"] == with_bl
    assert lab.client.audit(3)[-1]["action"] == "rollback"
    lab.client.commit(BASE, "back to base")
