"""Lab fixtures: every test module gets its own namespaces (tg-<random>-HOST) and state folder,
so lab tests can run in parallel with each other and with a `talgate lab up` demo."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess

import pytest

from backend.lab.lab import Lab

from .util import LabHelper


def _why_no_lab() -> str | None:
    if os.geteuid() != 0:
        return "lab tests need root (network namespaces)"
    for tool in ("ip", "nft"):
        if not shutil.which(tool):
            return f"lab tests need {tool!r} (make install installs it)"
    r = subprocess.run(["ip", "netns", "list"], capture_output=True)
    if r.returncode != 0:
        return "lab tests need `ip netns` to work"
    return None


def new_lab(tmp_path_factory, config_text: str | None = None) -> Lab:
    reason = _why_no_lab()
    if reason:
        pytest.skip(reason)
    lab = Lab(prefix=f"tg-{secrets.token_hex(2)}-", state=tmp_path_factory.mktemp("lab") / "state")
    lab.up(config_text)
    return lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = new_lab(tmp_path_factory)
    try:
        yield LabHelper(lab)
    finally:
        lab.down()
