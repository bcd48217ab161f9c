"""Plain-text table of routes (``talgate routes``): columns sized to their content."""

from __future__ import annotations

COLUMNS = (("table", "table"), ("kind", "kind"), ("dst", "destination"), ("via", "via"), ("dev", "dev"),
           ("metric", "metric"), ("state", "state"))


def cells(r: dict) -> dict[str, str]:
    state = "" if r.get("source") == "kernel" else ("installed" if r.get("installed") else "not installed")
    return {"table": r.get("table") or "", "kind": r.get("kind") or "", "dst": r.get("dst") or "",
            "via": r.get("gateway") or "-", "dev": r.get("dev") or "-",
            "metric": "" if r.get("metric") is None else str(r["metric"]), "state": state or "kernel"}


def table_lines(routes: list[dict], truncated: bool = False, frr: bool = False) -> list[str]:
    rows = [cells(r) for r in routes]
    widths = {k: max([len(h)] + [len(row[k]) for row in rows]) for k, h in COLUMNS}
    lines = ["  ".join(h.ljust(widths[k]) for k, h in COLUMNS).rstrip()]
    lines += ["  ".join(row[k].ljust(widths[k]) for k, _ in COLUMNS).rstrip() for row in rows]
    if not rows:
        lines.append("(no routes)")
    if truncated:
        lines.append("(more routes than shown: the list is cut)")
    if not frr:
        lines.append("(FRR is not running: kernel routes only)")
    return lines
