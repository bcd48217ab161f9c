"""The ``inet talgate`` table through libnftables' JSON API (one transaction per apply).

Idempotence and drift: the netns's nftables generation id (one netlink round trip) tells whether
any transaction happened since our last load; only when it moved is our table read (over netlink,
backend/host/nfnl.py) and its fingerprint (handles and counter values left out) compared with the
one recorded after the load. Counters are read the same way, without touching any set.
The pipeline (backend/agent/pipeline.py) keeps that state.
"""

from __future__ import annotations

import ctypes
import threading

import nftables

from ..model.names import LOG_PREFIX_MAX, NFT_COMMENT_MAX, NFT_NAME_MAX
from ..render.nft import FAMILY, TABLE, Ruleset
from . import nfnl

_lock = threading.Lock()


class NftError(Exception):
    pass


def _nft(dry_run: bool = False) -> nftables.Nftables:
    n = nftables.Nftables()
    n.set_json_output(True)
    n.set_handle_output(False)
    if dry_run:
        # The binding does not wrap nft_ctx_set_dry_run (nft -c); call libnftables directly.
        lib = ctypes.CDLL("libnftables.so.1")
        lib.nft_ctx_set_dry_run.argtypes = [ctypes.c_void_p, ctypes.c_bool]
        lib.nft_ctx_set_dry_run(n._Nftables__ctx, True)
    return n


def _strings(x, what: str = ""):
    """(what, string, limit) for every name, comment and log prefix in a rule's expressions."""
    if isinstance(x, dict):
        for k, v in x.items():
            if k == "log" and isinstance(v, dict) and "prefix" in v:
                yield "log prefix", v["prefix"], LOG_PREFIX_MAX
            elif k in ("jump", "goto") and isinstance(v, dict) and "target" in v:
                yield "chain name", v["target"], NFT_NAME_MAX
            else:
                yield from _strings(v)
    elif isinstance(x, list):
        for v in x:
            yield from _strings(v)
    elif isinstance(x, str) and x.startswith("@"):
        yield "set name", x[1:], NFT_NAME_MAX


def over_limit(commands: list[dict]) -> str | None:
    """Why libnftables must not see these commands, or None. It returns an error for a log prefix of
    128-136 bytes and smashes its stack (aborting this process) from 137; a comment over 253 bytes
    makes it exit the process ("Memory allocation failure"). Set elements are not walked."""
    for cmd in commands:
        for obj in cmd.values() if isinstance(cmd, dict) else ():
            for kind, body in obj.items() if isinstance(obj, dict) else ():
                if not isinstance(body, dict):
                    continue
                items = []
                if "name" in body:
                    items.append((f"{kind} name", body["name"], NFT_NAME_MAX))
                if kind == "rule":
                    items.append(("chain name", body.get("chain", ""), NFT_NAME_MAX))
                    if "comment" in body:
                        items.append(("rule comment", body["comment"], NFT_COMMENT_MAX))
                    items += _strings(body.get("expr", []))
                for what, value, limit in items:
                    if not isinstance(value, str):
                        return f"{what} is not a string: {type(value).__name__}"
                    n = len(value.encode())
                    if n > limit or "\0" in value:
                        return (f"{what} of {n} bytes (the kernel takes at most {limit}, no NUL): "
                                f"{value[:60]!r}{'…' if len(value) > 60 else ''}")
    return None


# Element digests of our named sets, carried across our own transactions that leave a set alone
# (an update that keeps a 100,000-prefix set), so the fingerprint after them needs no element dump.
_known = nfnl.ElementDigests()


def _touched_sets(commands: list[dict]) -> set[str] | None:
    """Named sets whose elements a command list may change; None when it may change any."""
    out: set[str] = set()
    for c in commands:
        for verb, obj in c.items():
            for kind, body in obj.items():
                if kind == "table":
                    if verb != "add":
                        return None
                elif kind in ("set", "map", "element"):
                    out.add(body.get("name", ""))
                elif kind not in ("chain", "rule"):
                    return None
    return out


def run(commands: list[dict], check_only: bool = False) -> None:
    why = over_limit(commands)
    if why:
        raise NftError(f"not handed to libnftables: {why}")
    n = _nft(dry_run=check_only)
    with _lock:
        before = None if check_only else genid()
        rc, _out, err = n.json_cmd({"nftables": commands})
        if before is not None:
            _known.after(before, genid(), _touched_sets(commands) if rc == 0 else None)
    if rc != 0:
        raise NftError(err.strip() or f"nft exited {rc}")


def fingerprint() -> str | None:
    """Hash of our table as the kernel holds it (chains, sets and their elements, rules, objects),
    handles and counter values left out, or None when the table is absent. Read over netlink
    (backend/host/nfnl.py): libnftables would also parse every set element into JSON."""
    try:
        return nfnl.table_fingerprint(FAMILY, TABLE, _known)
    except (OSError, nfnl.NetlinkError, nfnl.Interrupted) as e:
        raise NftError(f"reading table {FAMILY} {TABLE}: {e}") from None


def render_hash(rs: Ruleset) -> str:
    return rs.digest()


def counters() -> dict[str, dict]:
    """Packets/bytes per rule comment ("rule NAME", "zone Z input", …), summed over the rules that
    share one; {} when the table is absent. One netlink dump of our table's rules: no set element
    is read, so a 100,000-prefix set costs nothing here."""
    try:
        return nfnl.rule_counters(FAMILY, TABLE)
    except (OSError, nfnl.NetlinkError, nfnl.Interrupted) as e:
        raise NftError(f"reading counters of table {FAMILY} {TABLE}: {e}") from None


# -- the ruleset generation id: a cheap "did anything change?" -------------------------------

def genid() -> int:
    """The netns's nftables generation id (bumped by every committed transaction, any table).
    One netlink round trip: cheap enough to poll, unlike listing a table with a big set."""
    try:
        return nfnl.genid()
    except (OSError, nfnl.NetlinkError) as e:
        raise NftError(f"nft generation id: {e}") from None
