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
from ..host.services import ServiceApplier, ServiceError
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

    def __init__(self, problems: list[Problem], status: int = 422, code: str | None = None):
        self.problems = problems
        self.status = status
        self.code = code
        super().__init__("; ".join(str(p) for p in problems))


class ApplyFailed(Exception):
    """Applying failed; the previous state was put back and HEAD did not move."""

    code = "apply_failed"


# A lock file in the config repo younger than this may belong to a git process at work (the
# commit is refused up front); an older one was left by a killed writer and is removed.
STALE_LOCK_SECONDS = 30.0


def _fault_file(path: str | None):
    """Fault injection for tests (the lab's agent runs in its own process): TALGATE_FAULTS names a
    JSON file {stage: action}, read at every stage, so a test can make one stage fail. Actions:
    "raise", "sleep:SECONDS", "touch:PATH" (e.g. a git lock file). Unset: no faults, no reads."""
    if not path:
        return None

    def fault(stage: str) -> None:
        try:
            with open(path) as f:
                action = json.load(f).get(stage)
        except (OSError, ValueError, AttributeError):
            return
        if not isinstance(action, str):
            return
        if action == "raise":
            raise RuntimeError(f"injected fault at {stage}")
        if action.startswith("sleep:"):
            time.sleep(float(action[6:]))
        elif action.startswith("touch:"):
            Path(action[6:]).touch()

    return fault


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
        self.faults = _fault_file(os.environ.get("TALGATE_FAULTS"))
        self.services.fault = self.faults
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

    def _fault(self, stage: str) -> None:
        if self.faults is not None:
            self.faults(stage)

    def _converge(self, cfg: RouterConfig, rs: Ruleset, tolerant: bool = False) -> dict:
        """Make the kernel and the daemons' configs equal cfg; returns what changed. Raises on the
        first failure of any applier; the services' part can be undone (services.undo)."""
        t0 = time.monotonic()
        net_changes, nft_changes = self._converge_kernel(cfg, rs)
        self._fault("services")
        svc_changes = self.services.apply(cfg, tolerant=tolerant)
        out = {"changes": net_changes + nft_changes + svc_changes, "net": net_changes, "nft": nft_changes,
               "services": svc_changes, "seconds": round(time.monotonic() - t0, 4)}
        if self.services.warnings:
            out["service_warnings"] = list(self.services.warnings)
        return out

    def _converge_kernel(self, cfg: RouterConfig, rs: Ruleset, inject: bool = True) -> tuple[int, int]:
        # Remember every link we may touch before touching it, so a restore can clean up.
        owned = set(self.applied.owned) | set(cfg.interfaces)
        self.applied.owned = tuple(sorted(owned))
        net_changes = self.net.apply(desired(cfg), owned)
        if inject:
            self._fault("net")
        nft_changes = self._converge_nft(rs)
        if inject:
            self._fault("nft")
        self.applied.owned = tuple(sorted(cfg.interfaces))
        return net_changes, nft_changes

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
        """Put every applier back to revision rev: the daemons' files byte for byte from the
        services' journal, the kernel by converging to rev. Raises when something could not be."""
        errors = self.services.undo()
        if rev is not None:
            cfg, _ = validate_text(self.repo.read(rev))
            if cfg is None:
                errors.append(f"revision {short(rev)} does not validate any more")
            else:
                try:
                    self._converge_kernel(cfg, render(cfg), inject=False)
                except Exception as e:  # noqa: BLE001 - reported with the services' errors
                    errors.append(str(e))
        if errors:
            raise RuntimeError("; ".join(errors))

    def _repo_preflight(self) -> list[str]:
        """Lock files would make the ref move (or the working-tree write) fail after the kernel
        changed: check them before anything changes. A fresh one may be a git process at work:
        refused. An old one was left by a killed writer: removed (and said so)."""
        notes = []
        for lock in self.repo.lock_files():
            try:
                age = time.time() - lock.stat().st_mtime
            except OSError:
                continue
            if age < STALE_LOCK_SECONDS:
                raise Refused([Problem("(repo)", f"{lock} exists: a git process is writing the config repo "
                                                 f"(or one was killed less than {STALE_LOCK_SECONDS:.0f} s ago); "
                                                 "nothing was changed, try again")], status=503, code="repo_busy")
            try:
                lock.unlink()
            except FileNotFoundError:
                continue
            notes.append(f"removed a stale lock file {lock} ({age:.0f} s old)")
        return notes

    def _record(self, result: dict | None, action: str, who: dict | None, **detail) -> None:
        """Audit an outcome that already happened: a full disk must not turn a landed commit (or
        a refusal) into a different answer; it becomes a note in the result instead."""
        try:
            self.audit.record(action, who, **detail)
        except OSError as e:
            if result is not None:
                result.setdefault("notes", []).append(f"the audit log could not be written: {e.strerror or e}")

    # -- operations ----------------------------------------------------------------------

    def commit(self, text: str, message: str, author: str, base: str | None = "HEAD", *,
               confirm: int | None = None, force: bool = False, ssh: str | None = None,
               who: dict | None = None, conn_kind: str = "SSH", on_rev=None) -> dict:
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
                result = self._commit_locked(cfg, rs, text, message, author, head, confirm, on_rev=on_rev)
        except (Refused, Conflict, ApplyFailed) as e:
            self._record(None, "refused", who, message=message, reason=str(e), ssh=ssh)
            raise
        self._record(result, "commit", who, rev=result["rev"], message=message, confirm=confirm,
                     forced=bool(force and cut) or None, ssh=ssh, changes=result["changes"])
        return {**result, "warnings": [w.to_dict() for w in warnings],
                "lockout_overridden": [str(c) for c in cut] if force and cut else None}

    def _commit_locked(self, cfg, rs, text, message, author, head, confirm, *, on_rev=None,
                       tolerant: bool = False) -> dict:
        """Commit text on top of head and make every applier equal it, all or nothing: any
        failure before HEAD moves puts every applier back to head and raises ApplyFailed; once
        HEAD moved the commit has landed and what fails later is reported as a warning."""
        notes = self._repo_preflight()
        oid = self.repo.create_commit(text, message, author, None, head)
        if on_rev is not None:
            on_rev(oid)
        self.services.begin()
        try:
            result = self._converge(cfg, rs, tolerant=tolerant)
            if confirm:
                # Persist the timer before HEAD moves: a crash in between leaves a timer for a commit
                # that never landed (discarded at start), never a landed commit without its timer.
                self._set_pending({"rev": oid, "previous": head, "seconds": confirm,
                                   "deadline": time.time() + confirm})
            self._fault("advance")
            self.repo.advance(oid, head)
        except Exception as e:  # noqa: BLE001 - whatever failed, every applier goes back to head
            if self.pending is not None and self.pending.get("rev") == oid:
                self.pending = None
                self._confirm_file().unlink(missing_ok=True)
            what = e if isinstance(e, (ApplyError, nfthost.NftError, ServiceError, Conflict)) else \
                f"{e.__class__.__name__}: {e}"
            self.last_error = f"apply of {short(oid)} failed: {what}; restored {short(head)}"
            try:
                self._restore(head)
            except Exception as e2:  # noqa: BLE001 - report both failures
                self.last_error += f"; restoring failed too: {e2}"
            raise ApplyFailed(self.last_error) from None
        self.services.end()
        # HEAD moved: the commit landed. Nothing below may turn it into a reported failure.
        try:
            self.repo.write_worktree(text)
        except Exception as e:  # noqa: BLE001 - the working tree is a convenience copy
            notes.append(f"committed, but the working tree ({self.repo.path / 'router.yaml'}) was not fully updated: {e}")
        self.applied.rev, self.applied.time = oid, time.time()
        try:
            self._save_applied()
        except OSError as e:
            notes.append(f"cannot record the applied revision in {self.state_dir}: {e.strerror}")
        self.last_error = None
        self.last_apply = result
        out = {"rev": oid, **result}
        if notes:
            out["notes"] = notes
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
            self.services.begin()
            try:
                result = self._converge(cfg, render(cfg))
            except Exception as e:  # noqa: BLE001 - reported, never a dead request or ticker
                what = e if isinstance(e, (ApplyError, nfthost.NftError, ServiceError)) else \
                    f"{e.__class__.__name__}: {e}"
                self.last_error = f"apply of {short(target)} failed: {what}"
                raise ApplyFailed(self.last_error) from None
            finally:
                self.services.end()
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
        self._record(result, "rollback", who, rev=result["rev"], target=target, message=message)
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
        """Roll back an unconfirmed commit whose deadline passed (called by the agent's timer).

        The rollback goes back to a revision that was applied before, so checks that only guard
        new input (blocklist files readable, the daemons' checkers, links present) do not stop
        it; a daemon whose previous config cannot be rendered keeps its last good one. Whatever
        happens, the pending state is cleared (no "0 s left" forever) and the audit says what."""
        with self.lock:
            if self.pending is None or self.pending_remaining() > 0:
                return None
            p = self.pending
            msg = f"auto-rollback of {short(p['rev'])}: not confirmed within {p['seconds']} s"
            who = {"user": "agent", "via": "confirm-timer"}
            try:
                if p["previous"] is None:
                    self.last_error = f"{msg}; it was the first commit, nothing to roll back to"
                    self._record(None, "rollback-failed", who, rev=p["rev"], message=self.last_error)
                    return None
                result = self._timer_rollback(p, msg)
            except Exception as e:  # noqa: BLE001 - the timer must end, whatever happened
                self.last_error = (f"{msg}; the rollback failed: {e}; {short(p['rev'])} stays applied — "
                                   "run `talgate rollback`")
                self._record(None, "rollback-failed", who, rev=p["rev"], target=p["previous"], message=self.last_error)
                return None
            finally:
                self._set_pending(None)
        self._record(result, "rollback", who, rev=result["rev"], target=p["previous"], message=msg,
                     warnings=result.get("service_warnings"))
        return result

    def _timer_rollback(self, p: dict, msg: str) -> dict:
        head = self.repo.head()
        if head != p["rev"]:
            raise RepoError(f"HEAD is {short(head)}, not the unconfirmed {short(p['rev'])}")
        text = self.repo.read(p["previous"])
        cfg, problems = validate_text(text)
        if cfg is None:
            raise RepoError(f"revision {short(p['previous'])} does not validate any more: "
                            + "; ".join(str(x) for x in problems[:3]))
        return self._commit_locked(cfg, render(cfg), text, msg, "talgate-agent", head, None, tolerant=True)

    # -- drift ---------------------------------------------------------------------------

    def drift(self) -> list[str]:
        """What differs between the kernel (and the daemons' rendered configs) and the last apply,
        without changing anything. The table is listed outside the lock (a big set takes ~0.6 s)
        and only when the ruleset's generation id moved, or once after a load to record its
        fingerprint; a rendered file is read only when its size, mtime or inode changed."""
        with self.lock:
            head = self.repo.head()
            if head is None or self.applied.rev is None:
                return []
            cfg, _ = validate_text(self.repo.read(self.applied.rev))
            if cfg is None:
                return []
            items = [_describe(op) for op in self.net.plan(desired(cfg), set(self.applied.owned))]
            items += self.services.drift(cfg)
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
