"""All or nothing across every applier, and an answer that matches the outcome (issue 11 class 2,
issue 12 item 4), without a kernel: the network and nftables appliers are replaced by a fake
kernel that records what was applied, the services applier is the real one writing its rendered
folder. Each stage is made to fail in turn after the kernel changed; afterwards the fake kernel,
every file under the rendered folder (configs, .generation, the NTS key and certificate), HEAD
and the working tree must be exactly as before, and the answer a 4xx/5xx with a code.

The same with the real kernel and daemons: tests/lab/test_atomic_lab.py."""

from __future__ import annotations

import copy
import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from backend.agent import pipeline as pl
from backend.agent.server import Agent, Caller
from backend.api.models import StatusResponse
from backend.host import nft as nfthost
from backend.host.applier import DAEMONS, HostContext, builtin
from backend.host.daemons.avahi import AvahiApplier
from backend.host.daemons.base import DaemonApplier
from backend.host.links import LinksApplier
from backend.host.net import ApplyError
from backend.host.network import NetworkApplier
from backend.host.nftables import NftApplier
from backend.host.rules import RulesApplier
from backend.host.services import SERVICES
from backend.lab.lab import example_config
from backend.render.nft import Ruleset
from tests.unit.fakelinks import FakeLinkKernel

SERVICES_YAML = """
dhcp:
  lan0:
    ipv4: {pools: [192.168.10.100-192.168.10.199]}
    ipv6: {pools: ["2001:db8:10:10::1000-2001:db8:10:10::1fff"]}
ra:
  lan0: {}
dns:
  zones: {lan: allow}
  lease_names: false
ntp:
  serve: [lan]
  servers: [{address: 198.51.100.1}]
  nts_server: true
mdns:
  reflect: [lan, guest]
routing:
  router_id: 198.51.100.2
  ospf: {interfaces: {lan0: {hello: 10, dead: 40}}}
  bgp:
    asn: 65001
    neighbors: [{address: 198.51.100.1, remote_asn: 65002, import: ["203.0.113.0/24 le 32"]}]
"""
BASE = example_config() + SERVICES_YAML


def candidate(base: str = BASE, vlan: bool = True) -> str:
    """Changes every applier: a VLAN (links; vlan=False for a kernel without 802.1Q), an address and a route (net), a new WAN port (nft), both DHCP pools,
    router advertisements, the zones Unbound serves, chrony's certificate and avahi's host name."""
    t = base.replace("hostname: gw", "hostname: gw2")
    if vlan:
        t = t.replace("interfaces:\n", "interfaces:\n  lan0.30: {kind: vlan, link: lan0, id: 30, ipv4: [192.168.30.1/24]}\n", 1)
    t = t.replace("192.168.20.1/24", "192.168.21.1/24")
    t = t.replace("  - {name: default-v6", "  - {name: extra, to: 10.77.0.0/16, via: 192.168.10.10}\n"
                                         "  - {name: default-v6")
    t = t.replace("rules:\n", "rules:\n  - {name: open-wan, from: wan, to: self, proto: tcp, dport: 2222, "
                              "action: accept}\n")
    t = t.replace("192.168.10.100-192.168.10.199", "192.168.10.100-192.168.10.150")
    t = t.replace("2001:db8:10:10::1000-2001:db8:10:10::1fff", "2001:db8:10:10::1000-2001:db8:10:10::1eff")
    t = t.replace("ra:\n  lan0: {}\n", "ra:\n  lan0: {}\n  guest0: {}\n")
    t = t.replace("zones: {lan: allow}", "zones: {lan: allow, guest: allow}")
    t = t.replace("servers: [{address: 198.51.100.1}]", "servers: [{address: 198.51.100.1}, {address: 198.51.100.3}]")
    return t


class FakeKernel:
    """Links/addresses/routes and the nftables ruleset as last applied."""

    def __init__(self):
        self.net: dict = {}
        self.nft: str | None = None
        self.gen = 0
        self.fail_nft_load = False
        self.links = FakeLinkKernel()
        for n in ("wan0", "lan0", "guest0", "mgmt0"):
            self.links.add(n)

    def snapshot(self) -> dict:
        return {"net": copy.deepcopy(self.net), "nft": self.nft, "links": self.links.snapshot()}


class FakeNet:
    """Stands in for net.NetApplier under the registry's network applier (host/network.py)."""

    def __init__(self, kernel: FakeKernel):
        self.k = kernel
        self.original_mtu: dict = {}
        self.fail_half_way = False

    def missing_links(self, st):
        return []

    def _state(self, want) -> dict:
        return {"links": dict(want.links), "addrs": {k: sorted(v) for k, v in want.addrs.items()},
                "routes": sorted((str(k), json.dumps(v, sort_keys=True)) for k, v in want.routes.items())}

    def plan(self, want, owned_before=frozenset()):
        return [] if self.k.net == self._state(want) else [("net-state", "all", self._state(want))]

    def execute(self, ops) -> int:
        for op in ops:
            self._apply(op[2])
        return len(ops)

    def _apply(self, new: dict) -> int:
        if self.fail_half_way and any("10.77.0.0/16" in k for k, _ in new["routes"]):
            self.k.net = {**self.k.net, "addrs": new["addrs"]}  # the addresses changed, then...
            raise ApplyError("routes (extra)", "kernel refused route-add: Network is unreachable")
        self.k.net = new
        return 1


@pytest.fixture
def rig(tmp_path, monkeypatch):
    k = FakeKernel()

    def run(commands, check_only=False):
        if check_only:
            return
        if k.fail_nft_load:
            raise nfthost.NftError("Error: Could not process rule: No space left on device")
        k.nft = json.dumps(commands)
        k.gen += 1

    monkeypatch.setattr(nfthost, "run", run)
    monkeypatch.setattr(Ruleset, "update_commands", lambda self, old: self.commands())  # full replaces only
    monkeypatch.setattr(nfthost, "genid", lambda: k.gen)
    monkeypatch.setattr(nfthost, "fingerprint", lambda: k.nft and str(hash(k.nft)))
    checker_errors: dict[str, str] = {}
    for cls in (DaemonApplier, AvahiApplier):
        monkeypatch.setattr(cls, "checker", lambda self, f: checker_errors.get(self.name))
    base = tmp_path / "base"
    # The registry's appliers: the network one over a fake kernel, nftables over the fake nft.
    net = FakeNet(k)
    ctx = HostContext(tmp_path / "state", base / "rendered")
    (tmp_path / "state").mkdir()
    appliers = [LinksApplier(ctx, kernel=k.links), NetworkApplier(ctx, net=net), RulesApplier(ctx), NftApplier(ctx),
                *builtin().build(ctx, stages=[DAEMONS])]
    assert [a.name for a in appliers] == APPLIERS
    p = pl.Pipeline(tmp_path / "repo", tmp_path / "state", base / "rendered", appliers=appliers)
    faults: dict[str, str] = {}
    hits: list[str] = []

    def fault(stage: str) -> None:
        hits.append(stage)
        action = faults.get(stage)
        if action == "raise":
            raise RuntimeError(f"injected fault at {stage}")
        if action and action.startswith("touch:"):
            Path(action[6:]).touch()
        if action and action.startswith("sleep:"):
            time.sleep(float(action[6:]))

    p.faults = fault
    p.commit(BASE, "base", "test")
    agent = Agent(p, str(tmp_path / "agent.sock"), None)
    r = type("Rig", (), {})()
    r.p, r.k, r.agent, r.faults, r.hits, r.base, r.checker_errors = p, k, agent, faults, hits, base, checker_errors
    r.net = net
    r.caller = Caller(0, 1, "root", False)
    r.gitdir = Path(p.repo.repo.path)

    def state() -> dict:
        rendered = {str(f.relative_to(base)): f.read_bytes() for f in sorted(base.rglob("*"))
                    if f.is_file() and "/ca/" not in f"/{f.relative_to(base)}"}
        return {"kernel": k.snapshot(), "rendered": rendered, "head": p.repo.head(),
                "worktree": (tmp_path / "repo" / "router.yaml").read_text()}

    def commit(text: str, **body) -> tuple[int, dict]:
        return agent.dispatch("POST", "/v1/commit", r.caller, {"config": text, "message": "change", **body})

    r.state, r.commit = state, commit
    yield r
    for j in list(agent.jobs.all()):
        j.done.wait(30)


def _assert_restored(rig, before: dict, status: int, answer: dict, stage: str) -> None:
    assert status >= 400, answer
    assert answer.get("code") == "apply_failed", answer
    assert answer["detail"]["restored"] == before["head"] and answer["detail"]["restore_errors"] == [], answer
    after = rig.state()
    assert after["head"] == before["head"]
    assert after["kernel"] == before["kernel"]
    assert after["worktree"] == before["worktree"]
    changed = sorted(f for f in set(before["rendered"]) | set(after["rendered"])
                     if before["rendered"].get(f) != after["rendered"].get(f))
    assert changed == [], f"{stage}: rendered files differ: {changed}"
    st = rig.agent.dispatch("GET", "/v1/status", rig.caller, {})[1]
    assert st["last_error"] and "restored" in st["last_error"], st["last_error"]
    assert st["head"] == before["head"] and st["in_sync"]


# Every applier of the registry fails in turn after it changed things (its name is the stage),
# then the groups ("net", "nft", "services"), each daemon's write and reload, the NTS certificate
# and HEAD's move.
APPLIERS = [a.name for a in builtin().build(HostContext(Path("/nonexistent"), Path("/nonexistent/rendered")))]
STAGES = APPLIERS + ["net", "nft", "services", "chrony.cert", "advance"] + [
    f"{svc}.{what}" for svc in SERVICES for what in ("write", "reload")]


@pytest.mark.parametrize("stage", STAGES)
def test_a_failure_at_any_stage_restores_every_applier(rig, stage):
    before = rig.state()
    rig.faults[stage] = "raise"
    status, answer = rig.commit(candidate())
    assert stage in rig.hits, f"the candidate never reached {stage}: {rig.hits}"
    _assert_restored(rig, before, status, answer, stage)
    assert all(a.d.cfg.system.hostname == "gw" for a in rig.p.services.appliers)  # lease names follow it
    # Not sticky: the same commit lands once the fault is gone, and every file changes.
    rig.faults.clear()
    status, answer = rig.commit(candidate())
    assert status == 200, answer
    after = rig.state()
    assert after["kernel"] != before["kernel"] and after["head"] == answer["rev"]
    for svc, (name, _) in SERVICES.items():
        assert after["rendered"][f"rendered/{svc}/{name}"] != before["rendered"][f"rendered/{svc}/{name}"], svc


def test_the_kernel_refusing_half_way_restores_everything(rig):
    before = rig.state()
    rig.net.fail_half_way = True
    status, answer = rig.commit(candidate())
    _assert_restored(rig, before, status, answer, "net half-way")
    assert answer["detail"]["stage"] == "network", answer


def test_nft_load_failure_after_the_addresses_changed_restores_everything(rig):
    before = rig.state()
    rig.k.fail_nft_load = True
    status, answer = rig.commit(candidate())
    _assert_restored(rig, before, status, answer, "nft load")


def test_rendered_dir_not_writable_while_a_rule_and_a_dhcp_pool_change(rig):
    """Issue 12's "done when": a DHCP pool and a firewall rule change, the rendered-config folder
    of the DHCP server cannot be written (root ignores modes: the folder is a file instead)."""
    text = BASE.replace("192.168.10.100-192.168.10.199", "192.168.10.100-192.168.10.120").replace(
        "rules:\n", "rules:\n  - {name: open-wan, from: wan, to: self, proto: tcp, dport: 2222, action: accept}\n")
    d = rig.base / "rendered" / "kea-dhcp4"
    shutil.rmtree(d)
    d.write_text("not a folder\n")
    before = rig.state()
    status, answer = rig.commit(text)
    _assert_restored(rig, before, status, answer, "kea-dhcp4 folder")
    assert answer["detail"]["stage"] == "kea-dhcp4", answer


def test_a_daemon_checker_refusal_changes_nothing(rig):
    for svc in SERVICES:
        rig.checker_errors.clear()
        rig.checker_errors[svc] = "syntax error"
        before = rig.state()
        status, answer = rig.commit(candidate())
        assert status == 422, answer
        assert rig.state() == before, svc
        assert any(svc in p["message"] for p in answer["problems"]), answer


def test_a_fresh_git_lock_is_refused_before_anything_changes(rig):
    for lock in ("index.lock", "refs/heads/main.lock"):
        (rig.gitdir / lock).touch()
        before = rig.state()
        status, answer = rig.commit(candidate())
        assert status == 503 and answer.get("code") == "repo_busy", answer
        assert lock.split("/")[-1] in answer["problems"][0]["message"]
        assert rig.state() == before
        (rig.gitdir / lock).unlink()


@pytest.mark.parametrize("lock", ["index.lock", "refs/heads/main.lock"])
def test_a_stale_git_lock_is_removed_and_the_commit_lands(rig, lock):
    f = rig.gitdir / lock
    f.touch()
    old = time.time() - 3600
    os.utime(f, (old, old))
    status, answer = rig.commit(candidate())
    assert status == 200, answer
    assert rig.p.repo.head() == answer["rev"]
    assert any("stale lock" in n for n in answer["notes"])
    assert not f.exists()


def test_a_ref_lock_appearing_mid_commit_restores_everything(rig):
    before = rig.state()
    rig.faults["advance"] = f"touch:{rig.gitdir / 'refs/heads/main.lock'}"
    status, answer = rig.commit(candidate())
    _assert_restored(rig, before, status, answer, "ref lock")


def test_an_index_lock_appearing_mid_commit_cannot_turn_a_landed_commit_into_a_failure(rig):
    """HEAD moved and the kernel applied it: the answer says so (with a note), never "failed"."""
    rig.faults["advance"] = f"touch:{rig.gitdir / 'index.lock'}"
    status, answer = rig.commit(candidate())
    assert status == 200, answer
    assert rig.p.repo.head() == answer["rev"]
    assert any("was not fully updated" in n for n in answer["notes"]), answer
    st = rig.agent.dispatch("GET", "/v1/status", rig.caller, {})[1]
    assert st["last_error"] is None and st["in_sync"]


def test_a_full_disk_for_the_audit_log_cannot_turn_a_landed_commit_into_a_failure(rig, monkeypatch):
    def full(*a, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rig.p.audit, "record", full)
    status, answer = rig.commit(candidate())
    assert status == 200, answer
    assert rig.p.repo.head() == answer["rev"]
    assert any("audit log could not be written" in n for n in answer["notes"])


def test_confirm_with_a_failure_clears_the_timer(rig):
    rig.faults["avahi.write"] = "raise"
    status, answer = rig.commit(candidate(), confirm=60)
    assert status == 500 and answer["code"] == "apply_failed"
    assert rig.p.pending is None and not (rig.p.state_dir / "confirm.json").exists()


# ---- drift covers the daemons' configs ---------------------------------------------------------


def test_drift_finds_and_repairs_a_changed_or_removed_daemon_config(rig):
    good = rig.state()
    conf = rig.base / "rendered" / "kea-dhcp4" / "kea-dhcp4.conf"
    conf.write_text(conf.read_text().replace("192.168.10.199", "192.168.10.250"))
    (rig.base / "rendered" / "avahi" / "avahi-daemon.conf").unlink()
    items = rig.p.drift()
    assert "service kea-dhcp4: kea-dhcp4.conf was changed" in items
    assert "service avahi: avahi-daemon.conf is missing" in items
    d = rig.p.repair()
    assert d and d["repaired"] == 2
    after = rig.state()
    for f in ("rendered/kea-dhcp4/kea-dhcp4.conf", "rendered/avahi/avahi-daemon.conf"):
        assert after["rendered"][f] == good["rendered"][f]
    assert rig.p.drift() == []


# ---- the confirm timer -------------------------------------------------------------------------


def test_confirm_timer_rolls_back_when_the_previous_blocklist_is_gone(rig, tmp_path):
    """Issue 11 class 5: a confirm whose previous revision can no longer be checked (its blocklist
    file removed) rolled back never and blocked every other commit ("0 s left" forever)."""
    bl = tmp_path / "ads.txt"
    bl.write_text("ads.example\n")
    with_bl = BASE.replace("  lease_names: false\n", f"  lease_names: false\n  blocklists: [{{name: ads, file: {bl}}}]\n")
    status, answer = rig.commit(with_bl)
    assert status == 200, answer
    good = rig.state()
    risky = with_bl.replace("rules:\n", "rules:\n  - {name: open-wan, from: wan, to: self, proto: tcp, "
                                        "dport: 2222, action: accept}\n")
    status, answer = rig.commit(risky, confirm=30)
    assert status == 200, answer
    unconfirmed = answer["rev"]
    bl.unlink()
    rig.p.pending["deadline"] = time.time() - 1
    r = rig.p.tick()
    assert r is not None, rig.p.last_error
    assert rig.p.pending is None and not (rig.p.state_dir / "confirm.json").exists()
    after = rig.state()
    assert after["kernel"] == good["kernel"]
    assert after["rendered"] == good["rendered"]  # Unbound keeps its last good config (with the list)
    assert rig.p.repo.read() == with_bl and rig.p.repo.head() != unconfirmed
    audit = rig.p.audit.read(5)
    assert audit[-1]["action"] == "rollback" and audit[-1]["via"] == "confirm-timer"
    # Other commits are not blocked any more (this one is refused for its own reason: the file).
    status, answer = rig.commit(risky)
    assert status == 422 and "dns.blocklists[0].file" in str(answer["problems"])


def test_confirm_timer_clears_the_pending_state_even_when_the_rollback_fails(rig):
    status, answer = rig.commit(candidate(), confirm=30)
    assert status == 200, answer
    rig.p.pending["deadline"] = time.time() - 1
    rig.k.fail_nft_load = True
    assert rig.p.tick() is None
    assert rig.p.pending is None
    assert "the rollback failed" in rig.p.last_error and "talgate rollback" in rig.p.last_error
    assert rig.p.audit.read(1)[-1]["action"] == "rollback-failed"
    rig.k.fail_nft_load = False
    status, answer = rig.commit(BASE)
    assert status == 200, answer


def test_confirm_timer_rollback_tolerates_a_daemon_failure(rig):
    before = rig.state()
    status, answer = rig.commit(candidate(), confirm=30)
    assert status == 200, answer
    rig.p.pending["deadline"] = time.time() - 1
    rig.faults["kea-dhcp4.write"] = "raise"
    r = rig.p.tick()
    assert r is not None and rig.p.pending is None, rig.p.last_error
    assert any("kea-dhcp4" in w for w in r["service_warnings"])
    after = rig.state()
    assert after["kernel"] == before["kernel"]  # the firewall and addresses went back regardless


# ---- the answer matches the outcome: long commits ----------------------------------------------


def _job(rig, job_id: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, out = rig.agent.dispatch("GET", f"/v1/jobs?id={job_id}", rig.caller, {})
        assert status == 200, out
        if out["job"]["state"] != "running":
            return out["job"]
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still running")


def test_a_commit_longer_than_the_clients_wait_answers_202_then_lands(rig):
    rig.faults["net"] = "sleep:1.0"
    status, answer = rig.commit(candidate(), wait=0.2)
    assert status == 202, answer
    assert answer["state"] == "running" and answer["job"]
    assert answer["rev"] is not None and rig.p.repo.head() != answer["rev"]  # created, not landed yet
    job = _job(rig, answer["job"])
    assert job["state"] == "landed" and job["rev"] == answer["rev"] == rig.p.repo.head()
    st = rig.agent.dispatch("GET", "/v1/status", rig.caller, {})[1]
    assert any(j["id"] == answer["job"] and j["state"] == "landed" for j in st["jobs"])


def test_a_slow_commit_that_fails_is_reported_failed_by_its_job(rig):
    before = rig.state()
    rig.faults["net"] = "sleep:0.6"
    rig.faults["avahi.write"] = "raise"
    status, answer = rig.commit(candidate(), wait=0.1)
    assert status == 202, answer
    job = _job(rig, answer["job"])
    assert job["state"] == "failed" and job["code"] == "apply_failed" and job["error"]
    assert rig.state()["head"] == before["head"]


def test_a_commit_within_the_wait_answers_normally(rig):
    status, answer = rig.commit(candidate(), wait=30)
    assert status == 200 and answer["rev"] == rig.p.repo.head()


def test_wait_is_bounded(rig):
    for bad in (-1, "x", 10**9, True):
        status, answer = rig.commit(candidate(), wait=bad)
        assert status == 400 and answer["code"] == "bad_request", (bad, answer)
        assert [p["path"] for p in answer["problems"]] == ["wait"], (bad, answer)


def test_the_cli_says_still_running_and_exits_with_its_own_code(monkeypatch, capsys, tmp_path):
    from backend import cli
    from backend.client import AgentClient

    f = tmp_path / "router.yaml"
    f.write_text(BASE)
    seen = {}

    def commit(self, text, message, base="HEAD", confirm=None, force=False, wait=None):
        seen["wait"] = wait
        from backend.api.models import CommitResponse

        return CommitResponse(state="running", job="abc123", rev="f" * 40)

    monkeypatch.setattr(AgentClient, "commit", commit)
    monkeypatch.setattr(AgentClient, "status", lambda self: StatusResponse(repo=str(tmp_path), head="a" * 40))
    rc = cli.main(["commit", "-m", "slow", "-f", str(f), "--base", "HEAD", "--socket", str(tmp_path / "none.sock")])
    out = capsys.readouterr()
    assert rc == cli.EXIT_RUNNING != 1
    assert "still running, rev ffffffffffff" in out.out and "talgate status" in out.out
    assert "fail" not in (out.out + out.err).lower()
    assert 0 < seen["wait"] < AgentClient(str(tmp_path / "none.sock")).timeout


def test_the_cli_never_says_failed_when_the_answer_timed_out(monkeypatch, capsys, tmp_path):

    from backend import cli
    from backend.client import AgentClient, AgentUnreachable

    f = tmp_path / "router.yaml"
    f.write_text(BASE)

    def commit(self, *a, **kw):
        raise AgentUnreachable(self.socket_path, TimeoutError("timed out"))

    monkeypatch.setattr(AgentClient, "commit", commit)
    monkeypatch.setattr(AgentClient, "status", lambda self: StatusResponse(repo=str(tmp_path), head="a" * 40))
    rc = cli.main(["commit", "-m", "slow", "-f", str(f), "--base", "HEAD", "--socket", str(tmp_path / "none.sock")])
    out = capsys.readouterr()
    assert rc == cli.EXIT_RUNNING
    assert "talgate status" in out.err and "may still" in out.err


def test_jobs_are_bounded(rig):
    jobs = rig.agent.jobs
    for _ in range(jobs.keep + 10):
        jobs.start("commit", lambda job: {"rev": None})
    for j in list(jobs.all()):
        j.done.wait(5)
    assert len(jobs.all()) <= jobs.keep + 1


def test_many_concurrent_slow_commits_answer_consistently(rig):
    """Two clients, one lock: the second waits behind the first; both answers match HEAD's story."""
    rig.faults["net"] = "sleep:0.5"
    results = []

    def go(text):
        results.append(rig.commit(text, wait=0.1))

    ts = [threading.Thread(target=go, args=(t,)) for t in (candidate(), BASE.replace("gw", "gw3", 1))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    outcomes = [_job(rig, a["job"]) for s, a in results if s == 202]
    landed = [j for j in outcomes if j["state"] == "landed"]
    failed = [j for j in outcomes if j["state"] == "failed"]
    assert len(landed) + len(failed) == 2 and landed
    assert rig.p.repo.head() in [j["rev"] for j in landed]
    for j in failed:
        assert j["code"] in ("conflict", "apply_failed", None) and j["rev"] != rig.p.repo.head()
