"""Reading one nftables table over raw netlink (NETLINK_NETFILTER), without libnftables.

libnftables (1.0.6) loads every element of every set into its cache before it lists anything,
even one chain and even with terse output: with a 100,000-prefix set that is ~0.5 s per read.
The kernel's own dumps can be asked for one table's rules only, so reading rule counters costs
milliseconds, and the table's fingerprint dumps each set's elements once, hashing the raw
netlink attributes instead of building and parsing JSON.

Every call opens its own socket (thread-safe, nothing shared); every dump is bounded by what the
kernel holds in this network namespace.
"""

from __future__ import annotations

import hashlib
import socket
import struct
import threading

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFPROTO = {"inet": 1, "ip": 2, "arp": 3, "netdev": 5, "bridge": 7, "ip6": 10}

NLM_F_REQUEST = 0x1
NLM_F_DUMP_INTR = 0x10
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3

NFT_MSG_GETTABLE = 1
NFT_MSG_GETCHAIN = 4
NFT_MSG_GETRULE = 7
NFT_MSG_GETSET = 10
NFT_MSG_GETSETELEM = 13
NFT_MSG_GETGEN = 16
NFT_MSG_GETOBJ = 19
NFT_MSG_GETFLOWTABLE = 23

# attribute numbers (linux/netfilter/nf_tables.h)
NFTA_TABLE_NAME, NFTA_TABLE_HANDLE = 1, 4
NFTA_CHAIN_TABLE, NFTA_CHAIN_HANDLE, NFTA_CHAIN_COUNTERS = 1, 2, 8
NFTA_RULE_TABLE, NFTA_RULE_HANDLE, NFTA_RULE_EXPRESSIONS, NFTA_RULE_POSITION, NFTA_RULE_USERDATA = 1, 3, 4, 6, 7
NFTA_SET_TABLE, NFTA_SET_NAME, NFTA_SET_FLAGS, NFTA_SET_HANDLE = 1, 2, 3, 16
NFT_SET_INTERVAL, NFT_SET_CONCAT = 0x4, 0x80
NFTA_SET_ELEM_LIST_TABLE, NFTA_SET_ELEM_LIST_SET, NFTA_SET_ELEM_LIST_ELEMENTS = 1, 2, 3
NFTA_OBJ_TABLE, NFTA_OBJ_HANDLE = 1, 6
NFTA_FLOWTABLE_TABLE, NFTA_FLOWTABLE_HANDLE = 1, 5
NFTA_GEN_ID = 1
NFTA_LIST_ELEM = 1
NFTA_EXPR_NAME, NFTA_EXPR_DATA = 1, 2
NFTA_COUNTER_BYTES, NFTA_COUNTER_PACKETS = 1, 2
NFTNL_UDATA_RULE_COMMENT = 0  # libnftnl's TLV inside NFTA_RULE_USERDATA

_HDR = struct.Struct("=IHHII")
_NLA = struct.Struct("=HH")
_U64 = struct.Struct(">Q")
_CTR = struct.Struct("=HH8sHH8s")  # a counter's data: two attributes with big-endian 64-bit values
_COUNTER = b"counter\0"


class NetlinkError(Exception):
    def __init__(self, errno: int, what: str):
        self.errno = errno
        super().__init__(f"{what}: netlink error {errno}")


class Interrupted(Exception):
    """The ruleset changed while it was being dumped (NLM_F_DUMP_INTR): ask again."""


def _attr(atype: int, value: bytes) -> bytes:
    n = 4 + len(value)
    return _NLA.pack(n, atype) + value + b"\0" * (-n % 4)


def _name(s: str) -> bytes:
    return s.encode() + b"\0"


class _Socket:
    def __init__(self):
        self.s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_NETFILTER)
        self.s.bind((0, 0))
        self.seq = 0
        self.buf = bytearray(1 << 16)  # the kernel fills at most ~32 KiB per dump read

    def close(self) -> None:
        self.s.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def genid(self) -> int:
        """The netns's nftables generation id (bumped by every committed transaction, any table)."""
        for m in self.dump(NFT_MSG_GETGEN, 0, flags=NLM_F_REQUEST):
            for t, a, _b in _attrs(m):
                if t == NFTA_GEN_ID:
                    return struct.unpack_from("!I", m, a)[0]
        raise NetlinkError(-61, "nft generation id: no NFTA_GEN_ID in the answer")  # ENODATA

    def dump(self, msg: int, family: int, attrs: bytes = b"", flags: int = NLM_F_REQUEST | NLM_F_DUMP) -> list[bytes]:
        """The attributes (after nfgenmsg) of every message the dump (or the single get) answers with."""
        return [chunk[a:b] for chunk, a, b in self.spans(msg, family, attrs, flags)]

    def spans(self, msg: int, family: int, attrs: bytes = b"",
              flags: int = NLM_F_REQUEST | NLM_F_DUMP) -> list[tuple[bytes, int, int]]:
        """(chunk, start, end) of every answer's attributes: one copy per read, none per message."""
        self.seq += 1
        body = struct.pack("=BBH", family, 0, 0) + attrs
        self.s.send(_HDR.pack(16 + len(body), (NFNL_SUBSYS_NFTABLES << 8) | msg, flags, self.seq, 0) + body)
        out: list[tuple[bytes, int, int]] = []
        intr = False
        hdr = _HDR.unpack_from
        while True:
            n = self.s.recv_into(self.buf, 0, socket.MSG_TRUNC)
            if n > len(self.buf):
                raise NetlinkError(-90, f"nft dump {msg}: message larger than {len(self.buf)} bytes")  # EMSGSIZE
            chunk = bytes(self.buf[:n])
            off = 0
            while off + 16 <= n:
                length, mtype, mflags, seq, _pid = hdr(chunk, off)
                if length < 16 or off + length > n:
                    raise NetlinkError(-71, f"nft dump {msg}: malformed answer")  # EPROTO
                if seq == self.seq:
                    intr |= bool(mflags & NLM_F_DUMP_INTR)
                    if mtype == NLMSG_DONE:
                        if intr:
                            raise Interrupted()
                        return out
                    if mtype == NLMSG_ERROR:
                        (err,) = struct.unpack_from("=i", chunk, off + 16)
                        if err:
                            raise NetlinkError(err, f"nft dump {msg}")
                        return out
                    out.append((chunk, off + 20, off + length))
                    if not flags & NLM_F_DUMP:
                        return out  # the answer to a single get
                off += (length + 3) & ~3


def _attrs(m: bytes, off: int = 0, end: int | None = None):
    """(type, value start, value end) of each attribute in m[off:end]."""
    end = len(m) if end is None else end
    while off + 4 <= end:
        alen, atype = _NLA.unpack_from(m, off)
        if alen < 4:
            return
        yield atype & 0x3FFF, off + 4, off + alen
        off += (alen + 3) & ~3


def _str_attr(m: bytes, atype: int) -> str | None:
    for t, a, b in _attrs(m):
        if t == atype:
            return m[a:b].rstrip(b"\0").decode(errors="replace")
    return None


def _comment(m: bytes, a: int, b: int) -> str | None:
    while a + 2 <= b:
        t, ln = m[a], m[a + 1]
        if t == NFTNL_UDATA_RULE_COMMENT:
            return m[a + 2:a + 2 + ln].rstrip(b"\0").decode(errors="replace")
        a += 2 + ln
    return None


def genid() -> int:
    with _Socket() as s:
        return s.genid()


def rule_counters(family: str, table: str) -> dict[str, dict]:
    """Packets/bytes per rule comment in one table, summed over the rules that share one, from a
    dump of that table's rules only (no set, no element is read). {} when the table is absent."""
    for _ in range(5):
        try:
            with _Socket() as s:
                msgs = s.spans(NFT_MSG_GETRULE, NFPROTO[family], _attr(NFTA_RULE_TABLE, _name(table)))
            break
        except Interrupted:
            continue
    else:
        raise Interrupted("the ruleset kept changing while its rules were read")
    out: dict[str, dict] = {}
    nla = _NLA.unpack_from
    ctr = _CTR.unpack_from
    names: dict[bytes, str] = {}
    for m, off, end in msgs:
        comment = None
        packets = nbytes = 0
        seen = False
        while off + 4 <= end:  # the rule's attributes
            alen, t = nla(m, off)
            if alen < 4:
                break
            t &= 0x3FFF
            if t == NFTA_RULE_USERDATA:
                comment = m[off + 4:off + alen]
            elif t == NFTA_RULE_EXPRESSIONS:
                # Only counter expressions are parsed: find each "counter" name, its data follows.
                i = m.find(_COUNTER, off + 4, off + alen)
                while i >= 0:
                    dlen, dt = nla(m, i + 8)  # NFTA_EXPR_NAME is 4 + 8 bytes, NFTA_EXPR_DATA comes next
                    if dt & 0x3FFF == NFTA_EXPR_DATA:
                        seen = True
                        a, b = i + 12, i + 8 + dlen
                        if b - a == 24:  # the usual layout: bytes then packets, 12 bytes each
                            l1, t1, v1, l2, t2, v2 = ctr(m, a)
                            if (l1, t1 & 0x3FFF, l2, t2 & 0x3FFF) == (12, NFTA_COUNTER_BYTES, 12, NFTA_COUNTER_PACKETS):
                                nbytes += int.from_bytes(v1, "big")
                                packets += int.from_bytes(v2, "big")
                                i = m.find(_COUNTER, b, off + alen)
                                continue
                        for t2, x, _y in _attrs(m, a, b):
                            if t2 == NFTA_COUNTER_PACKETS:
                                packets += _U64.unpack_from(m, x)[0]
                            elif t2 == NFTA_COUNTER_BYTES:
                                nbytes += _U64.unpack_from(m, x)[0]
                    i = m.find(_COUNTER, i + 8, off + alen)
            off += (alen + 3) & ~3
        if comment is None or not seen:
            continue
        name = names.get(comment)
        if name is None:
            name = names[comment] = _comment(comment, 0, len(comment))
            if name is None:
                continue
        d = out.get(name)
        if d is None:
            out[name] = {"packets": packets, "bytes": nbytes}
        else:
            d["packets"] += packets
            d["bytes"] += nbytes
    return out


def _without(m: bytes, drop: set[int]) -> bytes:
    return b"".join(m[a - 4:b] + b"\0" * (-(b - a) % 4) for t, a, b in _attrs(m) if t not in drop)


def _rule_without_state(m: bytes) -> bytes:
    """A rule's attributes without its handle, its position and its counters' values."""
    parts = []
    for t, a, b in _attrs(m):
        if t in (NFTA_RULE_HANDLE, NFTA_RULE_POSITION):
            continue
        if t == NFTA_RULE_EXPRESSIONS:
            for _t, ea, eb in _attrs(m, a, b):
                name = next((m[x:y] for tt, x, y in _attrs(m, ea, eb) if tt == NFTA_EXPR_NAME), None)
                e = _COUNTER if name == _COUNTER else m[ea:eb]
                parts.append(struct.pack("=HI", 0xFFFF, len(e)) + e)
            continue
        parts.append(struct.pack("=HI", t, b - a) + m[a:b])
    return b"".join(parts)


class ElementDigests:
    """Digests of named sets' elements, valid at generation `gen` of the ruleset. The set
    elements are the costly part of a fingerprint (the kernel walks a 100,000-entry tree once per
    32 KiB it answers); a set nobody touched since (see `after`) need not be read again."""

    def __init__(self):
        self.lock = threading.Lock()
        self.gen: int | None = None
        self.digests: dict[str, bytes] = {}

    def snapshot(self, gen: int) -> dict[str, bytes]:
        with self.lock:
            return dict(self.digests) if self.gen == gen else {}

    def store(self, gen: int, digests: dict[str, bytes]) -> None:
        with self.lock:
            self.gen, self.digests = gen, digests

    def after(self, before: int, after: int, touched: set[str] | None) -> None:
        """One transaction of ours moved the generation from `before` to `after`, changing only the
        sets named in touched (None: any). Nothing else can have committed in between only if the
        generation moved by exactly one."""
        with self.lock:
            if touched is not None and self.gen == before and after == ((before + 1) & 0xFFFFFFFF or 1):
                self.gen = after
                self.digests = {k: v for k, v in self.digests.items() if k not in touched}
            else:
                self.gen, self.digests = None, {}


def table_fingerprint(family: str, table: str, known: ElementDigests | None = None) -> str | None:
    """A hash of everything one table holds as the kernel reports it (table flags, chains, sets
    and every set's elements, rules, objects, flowtables), handles and counter values left out;
    None when the table is absent. Consistent: taken again when a transaction landed meanwhile.
    With known, named sets whose element digest is valid at this generation are not read again,
    and the digests read are kept there."""
    fam = NFPROTO[family]
    for _ in range(5):
        try:
            with _Socket() as s:
                g = s.genid()
                reuse = known.snapshot(g) if known else {}
                digests: dict[str, bytes] = {}
                fp = _fingerprint(s, fam, table, reuse, digests)
                if s.genid() == g:
                    if known:
                        known.store(g, digests)
                    return fp
        except Interrupted:
            continue
        except NetlinkError as e:
            if e.errno == -2:  # ENOENT: the table (or a set) went away while dumping
                continue
            raise
    raise Interrupted("the ruleset kept changing while the table was read")


def _fingerprint(s: _Socket, fam: int, table: str, reuse: dict[str, bytes], digests: dict[str, bytes]) -> str | None:
    name = _name(table)
    h = hashlib.sha256()

    def feed(tag: bytes, data: bytes) -> None:
        h.update(tag + struct.pack("=I", len(data)))
        h.update(data)

    tables = [m for m in s.dump(NFT_MSG_GETTABLE, fam) if _str_attr(m, NFTA_TABLE_NAME) == table]
    if not tables:
        return None
    feed(b"T", _without(tables[0], {NFTA_TABLE_HANDLE}))
    for m in s.dump(NFT_MSG_GETCHAIN, fam):
        if _str_attr(m, NFTA_CHAIN_TABLE) == table:
            feed(b"C", _without(m, {NFTA_CHAIN_HANDLE, NFTA_CHAIN_COUNTERS}))
    for m in s.dump(NFT_MSG_GETSET, fam, _attr(NFTA_SET_TABLE, name)):
        head = _without(m, {NFTA_SET_HANDLE})
        feed(b"S", head)
        set_name = _str_attr(m, NFTA_SET_NAME) or ""
        # Anonymous sets ("__set0", vmaps) come and go with the rules that use them: always read.
        key = None if set_name.startswith("__") else set_name
        d = reuse.get(key) if key else None
        if d is None or d[:32] != hashlib.sha256(head).digest():
            d = hashlib.sha256(head).digest() + _elements_digest(s, fam, name, set_name, m)
        if key:
            digests[key] = d
        feed(b"E", d)
    for m in s.dump(NFT_MSG_GETRULE, fam, _attr(NFTA_RULE_TABLE, name)):
        feed(b"R", _rule_without_state(m))
    for m in s.dump(NFT_MSG_GETOBJ, fam, _attr(NFTA_OBJ_TABLE, name)):
        feed(b"O", _without(m, {NFTA_OBJ_HANDLE}))
    for m in s.dump(NFT_MSG_GETFLOWTABLE, fam, _attr(NFTA_FLOWTABLE_TABLE, name)):
        feed(b"F", _without(m, {NFTA_FLOWTABLE_HANDLE}))
    return h.hexdigest()


def _elements_digest(s: _Socket, fam: int, table: bytes, set_name: str, set_msg: bytes) -> bytes:
    # A plain interval set (an rbtree) walks in key order; other kinds (hash sets: vmaps,
    # anonymous sets) in an order of their random seed and size, so their elements are sorted.
    flags = next((struct.unpack_from("!I", set_msg, a)[0] for t, a, _b in _attrs(set_msg) if t == NFTA_SET_FLAGS), 0)
    ordered = flags & (NFT_SET_INTERVAL | NFT_SET_CONCAT) == NFT_SET_INTERVAL
    h = hashlib.sha256()
    elems = []
    for chunk, a, b in s.spans(NFT_MSG_GETSETELEM, fam, _attr(NFTA_SET_ELEM_LIST_TABLE, table)
                               + _attr(NFTA_SET_ELEM_LIST_SET, _name(set_name))):
        for t, x, y in _attrs(chunk, a, b):
            if t == NFTA_SET_ELEM_LIST_ELEMENTS:
                if ordered:  # whole TLVs, so where the kernel split its answer does not matter
                    h.update(chunk[x:y])
                else:
                    elems += [chunk[i:j] for _t, i, j in _attrs(chunk, x, y)]
    for e in sorted(elems):
        h.update(struct.pack("=H", len(e)) + e)
    return h.digest()
