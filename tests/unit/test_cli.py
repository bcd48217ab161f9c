"""The talgate command line, offline parts: validate and schema exit codes and output."""

from __future__ import annotations

import json
import subprocess
import sys

from backend.lab.lab import example_config


def talgate(*args, input=None):
    return subprocess.run([sys.executable, "-m", "backend.cli", *args], capture_output=True, text=True, input=input)


def test_validate_good_file(tmp_path):
    f = tmp_path / "router.yaml"
    f.write_text(example_config())
    r = talgate("config", "validate", str(f))
    assert r.returncode == 0 and r.stdout.strip() == f"{f}: valid"


def test_validate_bad_file_prints_path_message_lines(tmp_path):
    r = talgate("config", "validate", "-", input=example_config().replace("dport: 22", "dport: 0"))
    assert r.returncode == 1
    assert r.stderr.splitlines() == ["rules[0].dport: port 0 out of range 1-65535"], r.stderr
    assert r.stdout == ""


def test_validate_missing_file():
    r = talgate("config", "validate", "/nonexistent/router.yaml")
    assert r.returncode == 1
    assert r.stderr.strip() == "/nonexistent/router.yaml: cannot read: No such file or directory"


def test_schema_prints_json_schema():
    r = talgate("config", "schema")
    assert r.returncode == 0
    assert json.loads(r.stdout)["title"] == "talgate router.yaml"


def test_unreachable_agent_is_a_clear_error(tmp_path):
    r = talgate("status", "--socket", str(tmp_path / "none.sock"))
    assert r.returncode == 2
    assert r.stderr.startswith(f"talgate: cannot reach the agent at {tmp_path / 'none.sock'}: "), r.stderr


def test_version():
    r = talgate("--version")
    assert r.returncode == 0 and r.stdout.startswith("talgate ")


def test_a_reader_that_leaves_early_gets_no_traceback():
    r = subprocess.run(f"{sys.executable} -m backend.cli config schema | true",
                       shell=True, capture_output=True, text=True)
    assert r.stderr == "", r.stderr
