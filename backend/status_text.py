"""`talgate status` as text: what the agent reports, a line each (the CLI prints them)."""

from __future__ import annotations

import time


def uplink_lines(uplinks: dict) -> list[str]:
    """What each WAN learned (backend/agent/uplink.py): addresses, gateways, DNS, prefixes, expiry."""
    def left(t):
        return f"expires in {max(0, t - time.time()):.0f} s" if t else ""

    out = []
    for link, u in sorted(uplinks.items()):
        v4 = u.get("ipv4")
        if v4:
            out.append(f"uplink     {link} ipv4 {v4['address']} gw {v4.get('gateway') or '-'} "
                       f"dns {','.join(v4.get('dns') or []) or '-'} {left(v4.get('expires'))}")
        v6 = u.get("ipv6") or {}
        for a in v6.get("addresses") or []:
            out.append(f"uplink     {link} dhcpv6 {a['address']} {left(a.get('expires'))}")
        slaac = v6.get("slaac") or {}
        for a in slaac.get("addresses") or []:
            out.append(f"uplink     {link} slaac {a} gw {','.join(slaac.get('gateways') or []) or '-'}")
        if v6.get("dns"):
            out.append(f"uplink     {link} dns6 {','.join(v6['dns'])}")
        for p in v6.get("delegated") or []:
            out.append(f"uplink     {link} delegated {p['prefix']} {left(p.get('expires'))}")
        for p in v6.get("deprecated") or []:
            out.append(f"uplink     {link} deprecated {p}")
        for c in u.get("clients") or []:
            state = f"pid {c['pid']}" if c.get("running") else "not running"
            out.append(f"uplink     {link} dhclient -{c['family']} {state} restarts {c.get('restarts', 0)}")
        for msg in u.get("problems") or []:
            out.append(f"uplink     {link} problem: {msg}")
        for e in (u.get("events") or [])[-3:]:
            if e.get("level") != "info":
                out.append(f"uplink     {link} {e['level']}: {e['message']}")
    return out


def routing_lines(routing: dict | None) -> list[str]:
    """BGP peers and OSPF neighbors (backend/observe/routing_state.py), as FRR said at most a few s ago."""
    if not routing:
        return []
    out = []
    for s in routing.get("sessions") or []:
        rcv = "-" if s.get("received") is None else s["received"]
        snt = "" if s.get("sent") is None else f" sent {s['sent']}"
        counts = "" if s.get("accepted") is None else f" received {rcv} accepted {s['accepted']}{snt}"
        where = f" on {s['interface']}" if s.get("interface") else ""
        out.append(f"routing    {s['protocol']} {s['peer']}{where} {s['state']} up {s.get('uptime') or '-'}{counts}")
    out += [f"routing    error: {e}" for e in routing.get("errors") or []]
    return out


def status_lines(st: dict) -> list[str]:
    """`talgate status` as text, a line per fact (the --json form is the status itself)."""
    lines: list[str] = []
    lines.append(f"hostname   {st.get('hostname')}")
    lines.append(f"repo       {st['repo']}")
    lines.append(f"head       {(st['head'] or '-')[:12]}")
    lines.append(f"applied    {(st['applied'] or '-')[:12]}" + ("" if st["in_sync"] else "   (differs from HEAD)"))
    lines.append(f"sockets    rw {st['sockets']['rw']}  ro {st['sockets']['ro']}")
    lines.append(f"worktree   {'edited (talgate diff / talgate commit)' if st['worktree_dirty'] else 'clean'}")
    lines.append(f"last error {st['last_error'] or '-'}")
    if st.get("confirm"):
        c = st["confirm"]
        lines.append(f"confirm    {c['rev'][:12]} rolls back in {c['remaining']:.0f} s unless `talgate confirm`")
    if st.get("last_drift"):
        d = st["last_drift"]
        when = time.strftime("%H:%M:%S", time.localtime(d["time"]))
        lines.append(f"last drift {when}: {'; '.join(d['items'])} (repaired)")
    for name, w in (st.get("wans") or {}).items():
        rtt = "-" if w.get("rtt_ms") is None else f"{w['rtt_ms']:.1f} ms"
        loss = "-" if w.get("loss_pct") is None else f"{w['loss_pct']:.0f}%"
        lines.append(f"wan        {name:<10} {w.get('interface', '?'):<8} {w.get('state', '?'):<10} "
                     f"{'active' if w.get('active') else 'standby':<8} rtt {rtt:<9} loss {loss}")
    if st.get("links"):
        lines.append("links      " + ", ".join(f"{n} ({k})" for n, k in st["links"].items()))
    for name, svc in (st.get("services") or {}).items():
        extra = f"pid {svc.get('pid')}" if svc.get("pid") else ""
        lines.append(f"service    {name:<10} {svc.get('state', '?'):<10} {extra}")
    lines += uplink_lines((st.get("facts") or {}).get("uplinks") or {})
    lines += routing_lines(st.get("routing"))
    # Commits that outlived their client's wait end up here: running, landed or failed (last 3).
    for j in (st.get("jobs") or [])[-3:]:
        when = time.strftime("%H:%M:%S", time.localtime(j.get("finished") or j.get("started") or 0))
        rev = (j.get("rev") or "-")[:12]
        extra = f"  {j['error']}" if j.get("error") else ""
        lines.append(f"job        {j.get('id')} {j.get('kind', 'commit')} {j.get('state'):<8} rev {rev} at {when}{extra}")
    return lines
