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
