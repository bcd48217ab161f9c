"""The nftables applier: our ``inet talgate`` table, loaded in one transaction.

The ruleset is the shared render product ``desired.ruleset`` (rendered once per commit: the lockout
proof, ``nft -c`` and the load use the same object). Idempotence and drift use the netns's
generation id and a fingerprint of our table (see ``nft.py``); that bookkeeping is kept in
``STATE/nftables.json``.
"""

from __future__ import annotations

import threading
from pathlib import Path

from ..model import Problem
from . import nft as nfthost
from .applier import Desired, HostContext, load_state, save_state


class NftApplier:
    name = "nftables"
    group = "nft"

    def __init__(self, ctx: HostContext):
        self._file = Path(ctx.state_dir) / "nftables.json"
        self._lock = threading.RLock()
        st = self._load(ctx)
        self.render_hash: str | None = st.get("render_hash")
        self.genid: int | None = st.get("genid")
        self.fingerprint: str | None = st.get("fingerprint")
        self.loaded = None  # the Ruleset last loaded by this process

    def _load(self, ctx: HostContext) -> dict:
        return load_state(ctx.state_dir, "nftables")

    def _save(self) -> None:
        save_state(self._file.parent, "nftables", {"render_hash": self.render_hash, "genid": self.genid,
                                   "fingerprint": self.fingerprint})

    # -- helpers -----------------------------------------------------------------------------------

    def in_step(self) -> bool:
        """True when our table is exactly what we last loaded (nothing committed a transaction
        since, or what did left our table as we recorded it)."""
        g = nfthost.genid()
        if self.genid is not None and g == self.genid:
            return True
        if self.fingerprint and nfthost.fingerprint() == self.fingerprint:
            self.genid = g  # another table changed (Talos, the CNI), not ours
            return True
        return False

    def commands(self, rs) -> list[dict]:
        """An update of the loaded ruleset when the kernel is in step with it, else a full replace."""
        if self.loaded is not None and self.in_step():
            return rs.update_commands(self.loaded)
        return rs.commands()

    # -- the protocol ------------------------------------------------------------------------------

    def check(self, d: Desired) -> list[Problem]:
        try:
            with self._lock:
                cmds = self.commands(d.ruleset)
            nfthost.run(cmds, check_only=True)  # nft -c: the kernel's own verdict
        except nfthost.NftError as e:
            return [Problem("(ruleset)", f"the kernel would refuse the rendered ruleset: {e}")]
        return []

    def plan(self, d: Desired) -> list[str]:
        with self._lock:
            if nfthost.render_hash(d.ruleset) == self.render_hash and self.in_step():
                return []
        return [f"nft: load table {nfthost.FAMILY} {nfthost.TABLE}"]

    def apply(self, d: Desired) -> list[str]:
        rs = d.ruleset
        with self._lock:
            rh = nfthost.render_hash(rs)
            if rh == self.render_hash and self.in_step():
                self.loaded = self.loaded or rs
                return []
            nfthost.run(self.commands(rs))
            self.loaded = rs
            self.render_hash, self.genid = rh, nfthost.genid()
            # The kernel's listing of a big table costs ~0.6 s: recorded later by drift(), while
            # the generation id proves nothing has touched the ruleset since this load.
            self.fingerprint = None
            self._save()
            return [f"nft: loaded table {nfthost.FAMILY} {nfthost.TABLE}"]

    def drift(self, d: Desired) -> list[str]:
        """Lists the table only when the generation id moved, or once after a load to record
        its fingerprint; changes nothing in the kernel."""
        with self._lock:
            if self.render_hash is None:
                return []  # never loaded by this agent: nothing to compare with
            g, known_genid, known_fp = nfthost.genid(), self.genid, self.fingerprint
        if g == known_genid and known_fp is not None:
            return []
        fp = nfthost.fingerprint()
        with self._lock:
            if self.genid != known_genid:
                return []  # a load happened meanwhile; look again next round
            if g == known_genid:
                if nfthost.genid() == g:  # nothing changed while listing: this is our load
                    self.fingerprint = fp
                    self._save()
                return []
            if fp is None:
                return [f"nft: table {nfthost.FAMILY} {nfthost.TABLE} is gone"]
            if known_fp is None or fp != known_fp:
                return [f"nft: table {nfthost.FAMILY} {nfthost.TABLE} was changed"]
            self.genid = g  # another table changed, ours is intact
            self._save()
            return []

    def status(self) -> dict:
        return {"loaded": self.render_hash is not None, "genid": self.genid,
                "render_hash": (self.render_hash or "")[:12] or None}
