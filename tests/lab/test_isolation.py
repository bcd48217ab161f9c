"""The lab touches nothing outside its own tg-* namespaces."""

from __future__ import annotations

import subprocess

import pytest

from .conftest import new_lab

pytestmark = pytest.mark.lab


def _host_state() -> dict:
    def run(*cmd):
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

    return {
        "links": run("ip", "-d", "link", "show"),
        "addrs": run("ip", "addr", "show"),
        "routes4": run("ip", "route", "show", "table", "all"),
        "routes6": run("ip", "-6", "route", "show", "table", "all"),
        "rules": run("ip", "rule", "show") + run("ip", "-6", "rule", "show"),
        "ruleset": run("nft", "-s", "list", "ruleset"),
    }


def test_lab_up_and_down_leave_the_machine_as_it_was(tmp_path_factory):
    before = _host_state()
    lab = new_lab(tmp_path_factory)
    try:
        assert len(lab.existing()) == 5
        assert _host_state() == before, "lab up changed the machine's own namespace"
    finally:
        removed = lab.down()
    assert len(removed) == 5
    assert lab.existing() == []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert lab.prefix not in netns
    assert not lab.state.exists()
    assert _host_state() == before


def test_lab_refuses_a_prefix_outside_tg():
    from backend.lab.lab import Lab, LabError

    with pytest.raises(LabError, match="must start with 'tg-'"):
        Lab(prefix="lab-")
