"""Import hygiene (DESIGN.md): backend/ never imports textual; console/ never touches the kernel."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imports(folder: str) -> dict[str, set[str]]:
    out = {}
    for f in (ROOT / folder).rglob("*.py"):
        mods = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                mods |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                mods.add(node.module.split(".")[0])
        out[str(f.relative_to(ROOT))] = mods
    return out


def test_backend_is_headless():
    bad = {f: m & {"textual", "rich", "textual_plotext"} for f, m in imports("backend").items()}
    assert not {f: m for f, m in bad.items() if m}


def test_console_never_touches_the_kernel():
    bad = {f: m & {"pyroute2", "nftables"} for f, m in imports("console").items()}
    assert not {f: m for f, m in bad.items() if m}
    deep = [f for f, m in imports("console").items()
            if any(x in (ROOT / f).read_text() for x in ("backend.host", "backend.agent"))]
    assert not deep, f"the console must talk to the agent through backend.client: {deep}"


def test_renderers_are_pure():
    bad = {f: m & {"subprocess", "socket", "pyroute2", "nftables", "os"} for f, m in imports("backend/render").items()}
    assert not {f: m for f, m in bad.items() if m}


def test_import_contracts():
    """import-linter's contracts in pyproject.toml (layers; console → backend.client only)."""
    import shutil
    import subprocess
    import sys

    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is a dev dependency (make install)"
    r = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]


def test_console_import_loads_no_agent_internals():
    """At run time too: starting the console loads the client, never the kernel or agent code."""
    import subprocess
    import sys

    code = ("import sys, console.app; bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('pyroute2', 'nftables', 'pygit2') or m.startswith(('backend.host', 'backend.agent', "
            "'backend.render', 'backend.trace', 'backend.gitops', 'backend.lab'))); print(bad); "
            "sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
