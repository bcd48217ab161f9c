"""Crash safety: SIGKILL the agent at random moments during commits, ≥ 20 times. Every time the
repo must be sound (git fsck, no partial or lost commits: every acknowledged commit is in
HEAD's history) and, after a restart, the kernel must equal the render of HEAD."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time

import pytest

from backend.client import AgentClient, AgentError
from backend.lab.lab import example_config
from backend.model import load_config
from backend.render.nft import render

pytestmark = pytest.mark.lab

ROUNDS = 24


def variant(i: int) -> str:
    text = example_config().replace("dport: 22, action: accept}", f"dport: [22, {2000 + i}], action: accept}}")
    if i % 2:
        text = text.replace("192.168.20.1/24", "192.168.21.1/24")
    return text


def _strip(listing: list[dict]) -> list[dict]:
    out = []
    for o in listing:
        for k, v in o.items():
            if k == "metainfo":
                continue
            v = {kk: vv for kk, vv in v.items() if kk != "handle"} if isinstance(v, dict) else v
            if k == "rule":
                v["expr"] = [{"counter": None} if "counter" in e else e for e in v["expr"]]
            out.append({k: v})
    return out


def expected_listing(text: str) -> list[dict]:
    doc = json.dumps(render(load_config(text)).document())
    r = subprocess.run(["unshare", "--net", "sh", "-c", "nft -j -f - && nft -j list table inet talgate"],
                       input=doc, capture_output=True, text=True, check=True)
    return _strip(json.loads(r.stdout)["nftables"])


def test_sigkill_during_commits_leaves_everything_consistent(lab):
    seed = int(os.environ.get("TALGATE_CRASH_SEED", time.time()))
    rnd = random.Random(seed)
    acked: list[str] = []
    for i in range(ROUNDS):
        result: dict = {}

        def commit(i=i, result=result):
            try:
                result["rev"] = AgentClient(lab.lab.socket, timeout=10).commit(variant(i), f"crash round {i}")["rev"]
            except AgentError as e:
                result["error"] = str(e)

        t = threading.Thread(target=commit)
        t.start()
        time.sleep(rnd.uniform(0, 0.12))
        pid = lab.lab.meta()["pids"]["agent"]
        os.kill(pid, signal.SIGKILL)
        t.join(15)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        if "rev" in result:
            acked.append(result["rev"])
        lab.lab.restart_agent()  # the killed agent is already gone: this only starts it

        repo = lab.lab.repo
        fsck = subprocess.run(["git", "-C", repo, "fsck", "--strict", "--no-dangling"], capture_output=True, text=True)
        assert fsck.returncode == 0, f"seed {seed} round {i}: {fsck.stdout} {fsck.stderr}"
        history = set(subprocess.run(["git", "-C", repo, "rev-list", "HEAD"], capture_output=True, text=True,
                                     check=True).stdout.split())
        lost = [r for r in acked if r not in history]
        assert not lost, f"seed {seed} round {i}: acknowledged commits lost: {lost}"
        head_text = lab.client.config()["text"]
        load_config(head_text)  # HEAD is a whole, valid document
        kernel = _strip(json.loads(lab.router("nft", "-j", "list", "table", "inet", "talgate"))["nftables"])
        assert kernel == expected_listing(head_text), f"seed {seed} round {i}: kernel differs from HEAD"
        addrs = lab.router("ip", "-4", "addr", "show", "guest0")
        want = "192.168.21.1/24" if "192.168.21.1/24" in head_text else "192.168.20.1/24"
        assert want in addrs, f"seed {seed} round {i}: guest0 has {addrs}"
    print(f"seed {seed}: {len(acked)} of {ROUNDS} commits acknowledged before the kill")
    assert len(acked) >= 1, f"seed {seed}: no commit was ever acknowledged; the kills came too early"
