"""Run nft in a throw-away network namespace (unshare -n): never the machine's own ruleset."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest


def need_nft():
    if os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("unshare"):
        pytest.skip("needs root, nft and unshare to check rulesets in a private network namespace")


def nft_in_private_ns(script: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["unshare", "--net", "sh", "-c", script], input=stdin, capture_output=True, text=True,
                          timeout=60)


def load_and_list(doc: dict | None = None, text: str | None = None) -> list[dict]:
    """Load a JSON document or nft text into a private namespace; return the kernel's listing."""
    if doc is not None:
        r = nft_in_private_ns("nft -j -f - && nft -j list table inet talgate", json.dumps(doc))
    else:
        r = nft_in_private_ns("nft -f - && nft -j list table inet talgate", text)
    assert r.returncode == 0, r.stderr
    out = []
    for o in json.loads(r.stdout)["nftables"]:
        for k, v in o.items():
            if k == "metainfo":
                continue
            if isinstance(v, dict):
                v = {kk: vv for kk, vv in v.items() if kk != "handle"}
            out.append({k: v})
    return out
