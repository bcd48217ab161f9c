"""The apply pipeline: validate → render → kernel check → commit → apply, all or nothing.

A candidate is committed only when the model checks pass, every link it names exists and the
kernel accepts its ruleset in a dry run. The commit object is written first, the kernel is
converged, and only then does the branch move; if applying fails half-way the previous HEAD is
re-applied and HEAD never moved.
"""

from __future__ import annotations

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
from ..model import Problem, validate_text
from ..model.config import RouterConfig
from ..render.nft import Ruleset, render


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

    def check_text(self, text: str) -> tuple[RouterConfig, Ruleset, list[Problem]]:
        """Model + semantic + kernel checks. Raises Refused; returns warnings otherwise."""
        cfg, problems = validate_text(text)
        if cfg is None:
            raise Refused(problems)
        rs = render(cfg)
        kernel = [Problem(f"interfaces.{n}", "no such link in the router's network namespace")
                  for n in self.net.missing_links(desired(cfg)) if cfg.interfaces[n].enabled]
        kernel += [p for p in self.services.check(cfg) if p.severity == "error"]
        if kernel:
            raise Refused(kernel)
        try:
            nfthost.check(rs)
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
        rh = nfthost.render_hash(rs)
        fp = nfthost.fingerprint(nfthost.list_table())
        nft_changes = 0
        if not (fp and rh == self.applied.render_hash and fp == self.applied.fingerprint):
            fp = nfthost.load(rs)
            nft_changes = 1
        self.applied.render_hash, self.applied.fingerprint = rh, fp
        self.applied.owned = tuple(sorted(cfg.interfaces))
        svc_changes = self.services.apply(cfg)
        return {"changes": net_changes + nft_changes + svc_changes, "net": net_changes, "nft": nft_changes,
                "services": svc_changes,
                "seconds": round(time.monotonic() - t0, 4)}

    def _restore(self, rev: str | None) -> None:
        """Best effort: put the kernel back to revision rev."""
        if rev is None:
            return
        cfg, _ = validate_text(self.repo.read(rev))
        if cfg is not None:
            self._converge(cfg, render(cfg))

    # -- operations ----------------------------------------------------------------------

    def commit(self, text: str, message: str, author: str, base: str | None = "HEAD") -> dict:
        cfg, rs, warnings = self.check_text(text)
        with self.lock:
            head = self.repo.head()
            if base == "HEAD":
                base = head
            if base != head:
                raise Conflict(base, head)
            if head is not None and self.repo.read(head) == text:
                return {"rev": head, "changes": 0, "warnings": [w.to_dict() for w in warnings],
                        "message": "nothing to commit: the candidate equals HEAD"}
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
            self.repo.advance(oid, head)
            self.repo.write_worktree(text)
            self.applied.rev, self.applied.time = oid, time.time()
            self._save_applied()
            self.last_error = None
            self.last_apply = result
            return {"rev": oid, **result, "warnings": [w.to_dict() for w in warnings]}

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

    def rollback(self, rev: str | None, author: str, base: str | None = "HEAD") -> dict:
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
            msg = f"rollback to {short(target)}"
            entry = next((e for e in self.repo.log(200) if e.rev == target), None)
            if entry:
                msg += f" ({entry.message.splitlines()[0]})"
            if text == self.repo.read(head):
                raise RepoError(f"HEAD already has the configuration of {short(target)}")
            return self.commit(text, msg, author, base=base)

    def status(self) -> dict:
        head = self.repo.head()
        return {
            "repo": str(self.repo.path),
            "head": head,
            "applied": self.applied.rev,
            "in_sync": head is not None and head == self.applied.rev,
            "worktree_dirty": self.repo.worktree_dirty(),
            "last_error": self.last_error,
            "last_apply": self.last_apply,
            "services": self.services.status(),
        }
