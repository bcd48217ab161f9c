"""The CLI acts on the agent's error codes (a hint per code, exit status), never on message text:
run against the agent's test double (the real service layer with fake appliers, in-process)."""

from __future__ import annotations

import pytest
import yaml

from backend import cli
from backend.lab.lab import example_config
from backend.testing import InProcessAgent


@pytest.fixture
def agent(monkeypatch):
    a = InProcessAgent(example_config())
    monkeypatch.setattr(cli, "_client", lambda args: a.client)
    try:
        yield a
    finally:
        a.close()


def _doc(fn) -> str:
    d = yaml.safe_load(example_config())
    fn(d)
    return yaml.safe_dump(d, sort_keys=False)


@pytest.mark.parametrize("code,edit,extra", [
    ("would_cut", lambda d: d["rules"].insert(0, {"name": "cut", "from": "mgmt", "to": "self", "proto": "tcp",
                                                   "dport": 22, "action": "drop"}), []),
    ("needs_confirm", lambda d: d["system"].update(hostname="gw2"), ["--force"]),
    ("conflict", lambda d: d["system"].update(hostname="gw3"), ["--base", "OLD"]),
])
def test_refusals_print_the_code_and_its_hint(agent, tmp_path, capsys, code, edit, extra):
    old = agent.head
    if "OLD" in extra:
        agent.client.commit(_doc(lambda d: d["system"].update(hostname="moved")), "moved", base=old)
        extra = ["--base", old]
    f = tmp_path / "router.yaml"
    f.write_text(_doc(edit))
    head = agent.head
    rc = cli.main(["commit", "-f", str(f), "-m", "try", *([] if "--base" in extra else ["--base", "HEAD"]), *extra])
    err = capsys.readouterr().err
    assert rc == 1 and f"[{code}]" in err and cli.HINTS[code] in err, err
    assert agent.head == head


def test_problems_are_printed_with_their_paths(agent, tmp_path, capsys):
    f = tmp_path / "router.yaml"
    f.write_text(_doc(lambda d: d["zones"]["lan"].update(interfaces=["nope0"])))
    assert cli.main(["commit", "-f", str(f), "-m", "bad", "--base", "HEAD"]) == 1
    err = capsys.readouterr().err
    assert "[invalid]" in err and any(line.startswith("zones.lan") for line in err.splitlines()), err
