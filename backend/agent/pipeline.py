"""The apply pipeline: validate → render → kernel check → commit → apply, all or nothing.

A candidate is committed only when the model checks pass, every link it names exists and the
kernel accepts its ruleset in a dry run. The commit object is written first, the kernel is
converged, and only then does the branch move; if applying fails half-way the previous HEAD is
re-applied and HEAD never moved.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..gitops import ConfigRepo, Conflict, RepoError, short
from ..host import nft as nfthost
from ..host.net import ApplyError, NetApplier, desired
from ..host.services import ServiceApplier
from ..model import Problem
from ..model import validate_text as _validate_text
from ..model.config import RouterConfig
from ..render.nft import Ruleset, render
from . import lockout
from .audit import Audit

_parsed: dict[str, tuple] = {}


def validate_text(text: str):
    """validate_text with a small cache: HEAD, the candidate and the previous revision are parsed
    once, not again for lockout, drift checks and rollbacks (a 100,000-prefix set costs ~1 s)."""
    key = hashlib.sha256(text.encode()).hexdigest()
    hit = _parsed.get(key)
    if hit is None:
        hit = _validate_text(text)
        if len(_parsed) >= 6:
            _parsed.pop(next(iter(_parsed)))
        _parsed[key] = hit
    return hit


class Refused(Exception):
    """The candidate was not committed; nothing changed."""

    def __init__(self, problems: list[Problem], status: int = 422):
        self.problems = problems
        self.status = status
        super().__init__("; ".join(str(p) for p in problems))


class ApplyFailed(Exception):
    """Applying failed; the previous state was put back and HEAD did not move."""


@dataclass
class Applied:
    rev: str | None = None
    render_hash: str | None = None
    fingerprint: str | None = None
    owned: tuple[str, ...] = ()
    time: float = 0.0
    original_mtu: dict | None = None
    genid: int | None = None


class Pipeline:
    def __init__(self, repo_path: str | os.PathLike, state_dir: str | os.PathLike,
                 rendered_dir: str | os.PathLike | None = None):
        self.repo = ConfigRepo.open_or_create(repo_path)
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.net = NetApplier()
        self.services = ServiceApplier(rendered_dir)
        self.applied = self._load_applied()
        self.net.original_mtu = self.applied.original_mtu = dict(self.applied.original_mtu or {})
        self.last_error: str | None = None
        self.last_apply: dict | None = None
        self.last_drift: dict | None = None
        self.drift_count = 0  # objects that differed at the last drift check (metrics)
        self._loaded: Ruleset | None = None  # the ruleset last loaded by this process
        self.audit = Audit(self.state_dir / "audit.jsonl")
        self.repo.clear_stale_locks()
        self.pending: dict | None = self._load_pending()

    # -- persisted state -----------------------------------------------------------------

    def _state_file(self) -> Path:
        return self.state_dir / "applied.json"

    def _load_applied(self) -> Applied:
        try:
            d = json.loads(self._state_file().read_text())
            d["owned"] = tuple(d.get("owned", ()))
            return Applied(**d)
        except (OSError, ValueError, TypeError):
            return Applied()

    def _save_applied(self) -> None:
        tmp = self._state_file().with_suffix(".tmp")
        tmp.write_text(json.dumps(self.applied.__dict__))
        os.replace(tmp, self._state_file())

    # -- checks --------------------------------------------------------------------------

    def check_text(self, text: str, files: bool = True) -> tuple[RouterConfig, Ruleset, list[Problem]]:
        """Model + semantic + kernel checks. Raises Refused; returns warnings otherwise. files=False
        (the read-only socket): no file the document names is opened."""
        cfg, problems = validate_text(text)
        if cfg is None:
            raise Refused(problems)
        try:
            rs = render(cfg)
        except ValueError as e:  # the renderer's own name guard (backend/render/nft.py Ruleset)
            raise Refused([Problem("(ruleset)", str(e))]) from None
        missing = set(self.net.missing_links(desired(cfg)))
        kernel = [Problem(f"interfaces.{n}", "no such link in the router's network namespace")
                  for n, itf in cfg.interfaces.items() if n in missing and itf.enabled]
        kernel += [Problem(f"routes[{i}].interface", f"no such link {r.interface!r} in the router's network namespace")
                   for i, r in enumerate(cfg.routes) if r.interface in missing]
        kernel += [p for p in self.services.check(cfg, files=files) if p.severity == "error"]
        if kernel:
            raise Refused(kernel)
        try:
            nfthost.run(self._nft_commands(rs), check_only=True)  # nft -c: the kernel's own verdict
        except nfthost.NftError as e:
            raise Refused([Problem("(ruleset)", f"the kernel would refuse the rendered ruleset: {e}")]) from None
        return cfg, rs, problems

    # -- the kernel ----------------------------------------------------------------------

    def _converge(self, cfg: RouterConfig, rs: Ruleset) -> dict:
        """Make the kernel equal cfg; returns what changed. Raises ApplyError/NftError."""
        t0 = time.monotonic()
        # Remember every link we may touch before touching it, so a restore can clean up.
        owned = set(self.applied.owned) | set(cfg.interfaces)
        self.applied.owned = tuple(sorted(owned))
        net_changes = self.net.apply(desired(cfg), owned)
        nft_changes = self._converge_nft(rs)
        self.applied.owned = tuple(sorted(cfg.interfaces))
        svc_changes = self.services.apply(cfg)
        return {"changes": net_changes + nft_changes + svc_changes, "net": net_changes, "nft": nft_changes,
                "services": svc_changes,
                "seconds": round(time.monotonic() - t0, 4)}

    def _nft_in_step(self) -> bool:
        """True when our table is exactly what we last loaded (nothing committed a transaction
        since, or what did left our table as we recorded it)."""
        g = nfthost.genid()
        if self.applied.genid is not None and g == self.applied.genid:
            return True
        if self.applied.fingerprint and nfthost.fingerprint() == self.applied.fingerprint:
            self.applied.genid = g  # another table changed (Talos, the CNI), not ours
            return True
        return False

    def _nft_commands(self, rs: Ruleset) -> list[dict]:
        """An update of the loaded ruleset when the kernel is in step with it, else a full replace."""
        if self._loaded is not None and self._nft_in_step():
            return rs.update_commands(self._loaded)
        return rs.commands()

    def _converge_nft(self, rs: Ruleset) -> int:
        rh = nfthost.render_hash(rs)
        if rh == self.applied.render_hash and self._nft_in_step():
            self._loaded = self._loaded or rs
            return 0
        nfthost.run(self._nft_commands(rs))
        self._loaded = rs
        self.applied.render_hash, self.applied.genid = rh, nfthost.genid()
        # The kernel's listing of a big table costs ~0.6 s: recorded later by drift(), while the
        # generation id proves nothing has touched the ruleset since this load.
        self.applied.fingerprint = None
        return 1

    def _restore(self, rev: str | None) -> None:
        """Best effort: put the kernel back to revision rev."""
        if rev is None:
            return
        cfg, _ = validate_text(self.repo.read(rev))
        if cfg is not None:
            self._converge(cfg, render(cfg))

    # -- operations ----------------------------------------------------------------------

    def commit(self, text: str, message: str, author: str, base: str | None = "HEAD", *,
               confirm: int | None = None, force: bool = False, ssh: str | None = None,
               who: dict | None = None, conn_kind: str = "SSH") -> dict:
        """Validate, check lockout, commit and apply text; with confirm, arm the rollback timer."""
        who = who or {"user": author}
        try:
            cfg, rs, warnings = self.check_text(text)
            if force and not confirm:
                raise Refused([Problem("(commit)", "--force needs --confirm SECONDS: a forced change must "
                                                   "roll itself back unless you confirm it")], status=400)
            with self.lock:
                if self.pending is not None:
                    raise Refused([Problem("(commit)", f"commit {short(self.pending['rev'])} is waiting for "
                                                       f"confirmation ({self.pending_remaining():.0f} s left): run "
                                                       "`talgate confirm` or `talgate rollback` first")], status=409)
                head = self.repo.head()
                if base == "HEAD":
                    base = head
                if base != head:
                    raise Conflict(base, head)
                if head is not None and self.repo.read(head) == text:
                    return {"rev": head, "changes": 0, "warnings": [w.to_dict() for w in warnings],
                            "message": "nothing to commit: the candidate equals HEAD"}
                running = validate_text(self.repo.read(head))[0] if head else None
                cut = lockout.cuts(running, cfg, ssh, rs, conn_kind)
                if cut and not force:
                    raise Refused([Problem("(lockout)", f"would cut {c}") for c in cut]
                                  + [Problem("(lockout)", "nothing was changed; fix the rule, or apply anyway with "
                                                          "--force --confirm SECONDS (rolled back unless confirmed)")],
                                  status=409)
                result = self._commit_locked(cfg, rs, text, message, author, head, confirm)
        except (Refused, Conflict, ApplyFailed) as e:
            self.audit.record("refused", who, message=message, reason=str(e), ssh=ssh)
            raise
        self.audit.record("commit", who, rev=result["rev"], message=message, confirm=confirm,
                          forced=bool(force and cut) or None, ssh=ssh, changes=result["changes"])
        return {**result, "warnings": [w.to_dict() for w in warnings],
                "lockout_overridden": [str(c) for c in cut] if force and cut else None}

    def _commit_locked(self, cfg, rs, text, message, author, head, confirm) -> dict:
        oid = self.repo.create_commit(text, message, author, None, head)
        try:
            result = self._converge(cfg, rs)
        except (ApplyError, nfthost.NftError) as e:
            self.last_error = f"apply of {short(oid)} failed: {e}; restored {short(head)}"
            try:
                self._restore(head)
            except Exception as e2:  # noqa: BLE001 - report both failures
                self.last_error += f"; restoring failed too: {e2}"
            raise ApplyFailed(self.last_error) from None
        if confirm:
            # Persist the timer before HEAD moves: a crash in between leaves a timer for a commit
            # that never landed (discarded at start), never a landed commit without its timer.
            self._set_pending({"rev": oid, "previous": head, "seconds": confirm,
                               "deadline": time.time() + confirm})
        self.repo.advance(oid, head)
        self.repo.write_worktree(text)
        self.applied.rev, self.applied.time = oid, time.time()
        self._save_applied()
        self.last_error = None
        self.last_apply = result
        out = {"rev": oid, **result}
        if confirm:
            out["confirm"] = self.confirm_status()
        return out

    def apply(self, rev: str | None = None) -> dict:
        """Converge the kernel to HEAD (or rev); zero changes when already there."""
        with self.lock:
            target = self.repo.resolve(rev)
            cfg, problems = validate_text(self.repo.read(target))
            if cfg is None:
                raise Refused(problems)
            try:
                result = self._converge(cfg, render(cfg))
            except (ApplyError, nfthost.NftError) as e:
                self.last_error = f"apply of {short(target)} failed: {e}"
                raise ApplyFailed(self.last_error) from None
            self.applied.rev, self.applied.time = target, time.time()
            self._save_applied()
            self.last_error = None
            self.last_apply = result
            return {"rev": target, **result}

    def rollback(self, rev: str | None, author: str, base: str | None = "HEAD", *, who: dict | None = None,
                 message: str | None = None) -> dict:
        """A new commit restoring rev (default: HEAD's parent). Clears a pending confirm."""
        who = who or {"user": author}
        with self.lock:
            head = self.repo.resolve("HEAD")
            if rev is None:
                parent = self.repo.log(2)
                if len(parent) < 2:
                    raise RepoError("nothing to roll back to: HEAD has no parent")
                target = parent[1].rev
            else:
                target = self.repo.resolve(rev)
            text = self.repo.read(target)
            if message is None:
                message = f"rollback to {short(target)}"
                entry = next((e for e in self.repo.log(200) if e.rev == target), None)
                if entry:
                    message += f" ({entry.message.splitlines()[0]})"
            if text == self.repo.read(head):
                raise RepoError(f"HEAD already has the configuration of {short(target)}")
            cfg, rs, _ = self.check_text(text)
            self._set_pending(None)
            result = self._commit_locked(cfg, rs, text, message, author, head, None)
        self.audit.record("rollback", who, rev=result["rev"], target=target, message=message)
        return result

    # -- commit-confirm ------------------------------------------------------------------

    def _confirm_file(self) -> Path:
        return self.state_dir / "confirm.json"

    def _load_pending(self) -> dict | None:
        try:
            d = json.loads(self._confirm_file().read_text())
        except (OSError, ValueError):
            return None
        if self.repo.head() != d.get("rev"):
            # The commit never landed (crash before HEAD moved) or was superseded: no timer.
            self._confirm_file().unlink(missing_ok=True)
            return None
        return d

    def _set_pending(self, d: dict | None) -> None:
        self.pending = d
        if d is None:
            self._confirm_file().unlink(missing_ok=True)
            return
        tmp = self._confirm_file().with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump(d, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._confirm_file())

    def pending_remaining(self) -> float:
        return max(0.0, self.pending["deadline"] - time.time()) if self.pending else 0.0

    def confirm_status(self) -> dict | None:
        if self.pending is None:
            return None
        return {"rev": self.pending["rev"], "deadline": self.pending["deadline"],
                "seconds": self.pending["seconds"], "remaining": round(self.pending_remaining(), 1)}

    def confirm(self, who: dict | None = None) -> dict:
        with self.lock:
            if self.pending is None:
                raise RepoError("nothing to confirm: no commit is waiting for confirmation")
            rev = self.pending["rev"]
            self._set_pending(None)
        self.audit.record("confirm", who, rev=rev)
        return {"rev": rev, "confirmed": True}

    def tick(self) -> dict | None:
        """Roll back an unconfirmed commit whose deadline passed (called by the agent's timer)."""
        with self.lock:
            if self.pending is None or self.pending_remaining() > 0:
                return None
            p = self.pending
            msg = f"auto-rollback of {short(p['rev'])}: not confirmed within {p['seconds']} s"
            if p["previous"] is None:
                self._set_pending(None)
                self.last_error = f"{msg}; it was the first commit, nothing to roll back to"
                return None
            return self.rollback(p["previous"], "talgate-agent", who={"user": "agent", "via": "confirm-timer"},
                                 message=msg)

    # -- drift ---------------------------------------------------------------------------

    def drift(self) -> list[str]:
        """What differs between the kernel and the last apply, without changing anything. The
        table is listed outside the lock (a big set takes ~0.6 s) and only when the ruleset's
        generation id moved, or once after a load to record its fingerprint."""
        with self.lock:
            head = self.repo.head()
            if head is None or self.applied.rev is None:
                return []
            cfg, _ = validate_text(self.repo.read(self.applied.rev))
            if cfg is None:
                return []
            items = [_describe(op) for op in self.net.plan(desired(cfg), set(self.applied.owned))]
            g, known_genid, known_fp = nfthost.genid(), self.applied.genid, self.applied.fingerprint
        if g == known_genid and known_fp is not None:
            return items
        fp = nfthost.fingerprint()
        with self.lock:
            if self.applied.genid != known_genid:
                return items  # a commit landed meanwhile; look again next round
            if g == known_genid:
                if nfthost.genid() == g:  # nothing changed while listing: this is our load
                    self.applied.fingerprint = fp
                    self._save_applied()
            elif fp is None:
                items.append("nft: table inet talgate is gone")
            elif known_fp is None or fp != known_fp:
                items.append("nft: table inet talgate was changed")
            else:
                self.applied.genid = g  # another table changed, ours is intact
        return items

    def repair(self) -> dict | None:
        """Restore HEAD when something changed behind the agent's back; records what drifted."""
        items = self.drift()
        self.drift_count = len(items)
        if not items:
            return None
        with self.lock:
            result = self.apply()
            self.last_drift = {"time": time.time(), "items": items, "repaired": result["changes"]}
        self.audit.record("drift-repair", {"user": "agent", "via": "reconcile"}, items=items, rev=result["rev"])
        return self.last_drift

    def status(self) -> dict:
        head = self.repo.head()
        return {
            "repo": str(self.repo.path),
            "head": head,
            "applied": self.applied.rev,
            "in_sync": head is not None and head == self.applied.rev,
            "worktree_dirty": self.repo.worktree_dirty(),
            "worktree_base": self.repo.worktree_base(),
            "last_error": self.last_error,
            "last_apply": self.last_apply,
            "last_drift": self.last_drift,
            "confirm": self.confirm_status(),
            "services": self.services.status(),
        }


def _describe(op: tuple) -> str:
    kind = op[0]
    if kind.startswith("route"):
        key = op[1]
        return f"{kind.replace('-', ' ')}: {key.dst} (metric {key.metric})"
    return f"{kind.replace('-', ' ')}: {op[1]}" + (f" {op[2]}" if len(op) > 2 else "")
