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


def run(commands: list[dict], check_only: bool = False) -> None:
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
