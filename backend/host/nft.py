"""The ``inet talgate`` table through libnftables' JSON API (one transaction per apply).

Idempotence and drift: the netns's nftables generation id (one netlink round trip) tells whether
any transaction happened since our last load; only when it moved is our table listed and its
fingerprint (handles and counter values left out) compared with the one recorded after the load.
The pipeline (backend/agent/pipeline.py) keeps that state.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import re
import threading

import nftables

from ..model.names import LOG_PREFIX_MAX, NFT_COMMENT_MAX, NFT_NAME_MAX
from ..render.nft import FAMILY, TABLE, Ruleset

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


def run(commands: list[dict], check_only: bool = False) -> None:
    why = over_limit(commands)
    if why:
        raise NftError(f"not handed to libnftables: {why}")
    n = _nft(dry_run=check_only)
    with _lock:
        rc, _out, err = n.json_cmd({"nftables": commands})
    if rc != 0:
        raise NftError(err.strip() or f"nft exited {rc}")


def list_table() -> list[dict] | None:
    """Our table as the kernel lists it (no handles), or None when absent."""
    n = _nft()
    with _lock:
        rc, out, err = n.json_cmd({"nftables": [{"list": {"table": {"family": FAMILY, "name": TABLE}}}]})
    if rc != 0:
        if "No such file" in err or "does not exist" in err:
            return None
        raise NftError(err.strip())
    return [o for o in out.get("nftables", []) if "metainfo" not in o]


_COUNTER = re.compile(r'"counter": \{"packets": \d+, "bytes": \d+\}')
_HANDLE = re.compile(r', "handle": \d+')


def fingerprint() -> str | None:
    """Hash of our table as the kernel lists it, handles and counter values left out, or None when
    the table is absent. The raw listing is hashed (no JSON walk: a 100,000-element set stays cheap)."""
    n = _nft()
    with _lock:
        rc, out, err = n.cmd(f"list table {FAMILY} {TABLE}")
    if rc != 0:
        if "No such file" in err or "does not exist" in err:
            return None
        raise NftError(err.strip())
    return hashlib.sha256(_HANDLE.sub("", _COUNTER.sub('"counter": null', out)).encode()).hexdigest()


def render_hash(rs: Ruleset) -> str:
    return hashlib.sha256(json.dumps(rs.create_commands(), sort_keys=True).encode()).hexdigest()


def counters() -> dict[str, dict]:
    """Packets/bytes per rule comment, summed over the rules that share one."""
    out: dict[str, dict] = {}
    for o in list_table() or []:
        r = o.get("rule")
        if not r or "comment" not in r:
            continue
        for e in r.get("expr", []):
            c = e.get("counter") if isinstance(e, dict) else None
            if isinstance(c, dict):
                d = out.setdefault(r["comment"], {"packets": 0, "bytes": 0})
                d["packets"] += c.get("packets", 0)
                d["bytes"] += c.get("bytes", 0)
    return out


# -- the ruleset generation id: a cheap "did anything change?" -------------------------------

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_GETGEN = 16
NFTA_GEN_ID = 1


def genid() -> int:
    """The netns's nftables generation id (bumped by every committed transaction, any table).
    One netlink round trip: cheap enough to poll, unlike listing a table with a big set."""
    import socket
    import struct

    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    try:
        s.bind((0, 0))
        msg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN
        body = struct.pack("=BBH", socket.AF_UNSPEC, 0, 0)
        s.send(struct.pack("=IHHII", 16 + len(body), msg_type, 1, 1, 0) + body)  # NLM_F_REQUEST
        data = s.recv(65536)
    finally:
        s.close()
    length, mtype, _flags, _seq, _pid = struct.unpack_from("=IHHII", data)
    if mtype == 2:  # NLMSG_ERROR
        (err,) = struct.unpack_from("=i", data, 16)
        raise NftError(f"nft generation id: netlink error {err}")
    off = 16 + 4
    while off + 4 <= length:
        alen, atype = struct.unpack_from("=HH", data, off)
        if atype & 0x3FFF == NFTA_GEN_ID:
            return struct.unpack_from("!I", data, off + 4)[0]
        off += (alen + 3) & ~3
    raise NftError("nft generation id: no NFTA_GEN_ID in the answer")
