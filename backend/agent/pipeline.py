"""The apply pipeline: validate → render → kernel check → commit → apply, all or nothing.

A candidate is committed only when the model checks pass and every applier's check passes (every
link it names exists, the kernel accepts its ruleset in a dry run, each daemon's own checker accepts
its config). The commit object is written first, every applier converges, and only then does the
branch move; if any applier fails half-way every applier is put back to the previous HEAD and HEAD
never moved.

The pipeline knows the applier registry (backend/host/applier.py), not the appliers: network,
nftables and one per daemon by default; tests and the console's test double pass their own list.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass, fields
from pathlib import Path

from ..gitops import ConfigRepo, Conflict, RepoError, short
from ..host.applier import Applier, Desired, Facts, HostContext, Registry, builtin
from ..model import Problem
from ..model import validate_text as _validate_text
from ..model.config import RouterConfig
from ..render.nft import Ruleset
from . import lockout
from .audit import Audit

_parsed: dict[str, tuple] = {}
MAX_LISTED = 100  # changes listed by name in an apply's result (and status.last_apply); the count is exact


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

    def __init__(self, problems: list[Problem], status: int = 422, code: str | None = None,
                 detail: dict | None = None):
        self.problems = problems
        self.status = status
        self.code = code  # the API error code (backend/api/errors.py); None: invalid
        self.detail = detail or {}
        super().__init__("; ".join(str(p) for p in problems))


class ApplyFailed(Exception):
    """Applying failed; the previous state was put back and HEAD did not move. ``detail``: the
    stage (applier) that failed, the revision restored (None when restoring failed too), and
    what failed while restoring."""

    code = "apply_failed"

    def __init__(self, message: str, detail: dict | None = None):
        self.detail = detail or {}
        super().__init__(message)


# A lock file in the config repo younger than this may belong to a git process at work (the
# commit is refused up front); an older one was left by a killed writer and is removed.
STALE_LOCK_SECONDS = 30.0


def _fault_file(path: str | None):
    """Fault injection for tests (the lab's agent runs in its own process): TALGATE_FAULTS names a
    JSON file {stage: action}, read at every stage, so a test can make one stage fail. Stages: each
    applier's name (after it applied), its group ("net", "nft", "services"), "<daemon>.write",
    "<daemon>.reload", "chrony.cert", "advance". Actions: "raise", "sleep:SECONDS", "touch:PATH".
    Unset: no faults, no reads."""
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
    time: float = 0.0


class _Services:
    """``pipeline.services``: the daemon appliers seen together (leases, status)."""

    def __init__(self, appliers: list[Applier]):
        self.appliers = [a for a in appliers if a.group == "services"]

    def leases(self) -> list[dict]:
        for a in self.appliers:
            if hasattr(a, "leases"):
                return a.leases()
        return []

    def blocklists(self, cfg: RouterConfig, files: bool = True) -> tuple[dict[str, str], list[Problem]]:
        from ..host.daemons.unbound import blocklists

        return blocklists(cfg, files)

    def status(self) -> dict:
        """{daemon: status}; daemons with nothing to say (no rendered folder) left out."""
        return {a.name: st for a in self.appliers if (st := a.status())}


class Pipeline:
    clock = staticmethod(time.time)  # confirm deadlines, apply and drift times (a test double fixes it)
    routing_state = None  # the agent's FRR session reader (observe/routing_state.py), set by the server

    def __init__(self, repo_path: str | os.PathLike, state_dir: str | os.PathLike,
                 rendered_dir: str | os.PathLike | None = None, *,
                 appliers: Registry | list[Applier] | None = None, facts: Facts | None = None):
        """appliers: a Registry (built here) or a list of ready appliers; default: the box's own
        (backend.host.applier.builtin). facts: the runtime facts to start from (default: none)."""
        self.repo = ConfigRepo.open_or_create(repo_path)
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        ctx = HostContext(self.state_dir, Path(rendered_dir) if rendered_dir else None)
        if appliers is None:
            appliers = builtin()
        self.appliers: list[Applier] = appliers.build(ctx) if isinstance(appliers, Registry) else list(appliers)
        self.services = _Services(self.appliers)
        self.facts = facts or Facts()
        self.applied = self._load_applied()
        self.last_error: str | None = None
        self.last_apply: dict | None = None
        self.last_drift: dict | None = None
        self.drift_count = 0  # objects that differed at the last drift check (metrics)
        self.generation = 0  # bumped by every apply: a drift result from before one is stale
        self._current: Desired | None = None  # the desired state last applied
        self.audit = Audit(self.state_dir / "audit.jsonl")
        self.faults = _fault_file(os.environ.get("TALGATE_FAULTS"))
        for a in self.appliers:
            if hasattr(a, "fault"):
                a.fault = self._fault
        self.repo.clear_stale_locks()
        self.pending: dict | None = self._load_pending()
        self.wans = None  # the WAN health monitor (backend/agent/wan.py), when the agent runs one

    # -- persisted state -----------------------------------------------------------------

    def _state_file(self) -> Path:
        return self.state_dir / "applied.json"

    def _load_applied(self) -> Applied:
        try:
            d = json.loads(self._state_file().read_text())
            known = {f.name for f in fields(Applied)}
            return Applied(**{k: v for k, v in d.items() if k in known})
        except (OSError, ValueError, TypeError, AttributeError):
            return Applied()

    def _save_applied(self) -> None:
        tmp = self._state_file().with_suffix(".tmp")
        tmp.write_text(json.dumps(self.applied.__dict__))
        os.replace(tmp, self._state_file())

    # -- desired state -------------------------------------------------------------------

    def desired(self, cfg: RouterConfig, rev: str | None = None) -> Desired:
        """Config + the current facts (+ render products, computed once and shared)."""
        return Desired(cfg, self.facts, rev)

    def _desired_of(self, rev: str | None, fresh: bool = False) -> Desired | None:
        """The desired state of a revision, reusing the last applied one's render products. With
        fresh (an explicit apply), only the ruleset is reused (a pure function of the config): the
        daemons' configs are rendered again (a blocklist file may have changed on disk)."""
        if rev is None:
            return None
        cur = self._current
        if cur is not None and cur.rev == rev:
            if fresh:
                return Desired(cur.cfg, self.facts, rev, ruleset=cur.ruleset)
            if cur.facts != self.facts:
                self._current = cur = cur.with_facts(self.facts)
            return cur
        cfg, _ = validate_text(self.repo.read(rev))
        return None if cfg is None else self.desired(cfg, rev)

    def set_facts(self, facts: Facts, apply: bool = True) -> dict | None:
        """New runtime facts (a WAN went down, a prefix was delegated); with apply, converge
        every applier to HEAD under them."""
        with self.lock:
            self.facts = facts
            if apply and self.repo.head() is not None:
                return self.apply()
        return None

    # -- checks --------------------------------------------------------------------------

    def _check(self, text: str, rev: str | None = None, files: bool = True) -> tuple[Desired, list[Problem]]:
        """files=False (the read-only socket): no file the document names is opened."""
        cfg, problems = validate_text(text)
        if cfg is None:
            raise Refused(problems)
        d = self.desired(cfg, rev)
        d.files = files
        try:
            d.ruleset  # noqa: B018 - rendered once here, shared by the lockout proof, nft -c and the load
        except ValueError as e:  # the renderer's own name guard (backend/render/nft.py Ruleset)
            raise Refused([Problem("(ruleset)", str(e))]) from None
        kernel: list[Problem] = []
        groups: set[str] = set()
        for a in self.appliers:
            errs = [p for p in a.check(d) if p.severity == "error"]
            kernel += errs
            groups |= {a.group} if errs else set()
        if kernel:
            # the network's checks (links present, owned) are about the document on this box; the
            # others are the kernel's and the daemons' own checkers refusing what was rendered
            raise Refused(kernel, code="invalid" if groups <= {"net"} else "kernel_refused")
        return d, problems

    def check_text(self, text: str, files: bool = True) -> tuple[RouterConfig, Ruleset, list[Problem]]:
        """Model + semantic + every applier's checks. Raises Refused; returns warnings otherwise. files=False
        (the read-only socket): no file the document names is opened."""
        d, problems = self._check(text, files=files)
        return d.cfg, d.ruleset, problems

    def plan(self, text: str) -> dict[str, list[str]]:
        """What each applier would change to reach text (nothing is changed)."""
        d, _ = self._check(text)
        return {a.name: a.plan(d) for a in self.appliers}

    # -- the kernel ----------------------------------------------------------------------

    def _fault(self, stage: str) -> None:
        if self.faults is not None:
            self.faults(stage)

    def _converge(self, d: Desired) -> dict:
        """Every applier, in order, to d; returns what changed. Raises _Failed(stage, error)."""
        t0 = time.monotonic()
        counts = {"net": 0, "nft": 0, "services": 0}
        changes: list[str] = []
        self.generation += 1
        for i, a in enumerate(self.appliers):
            try:
                out = a.apply(d)
                counts[a.group] = counts.get(a.group, 0) + len(out)
                changes += out
                # Fault injection (tests): after each applier changed things, and after the last
                # applier of each group ("net", "nft", "services").
                self._fault(a.name)
                if i + 1 == len(self.appliers) or self.appliers[i + 1].group != a.group:
                    self._fault(a.group)
            except Exception as e:  # noqa: BLE001 - any failure: all or nothing
                raise _Failed(a.name, e) from e
        self._current = d
        shown = changes[:MAX_LISTED] + ([f"… and {len(changes) - MAX_LISTED} more"] if len(changes) > MAX_LISTED else [])
        out = {"changes": len(changes), **counts, "applied": shown, "seconds": round(time.monotonic() - t0, 4)}
        warnings = [w for a in self.appliers for w in getattr(a, "warnings", ())]
        if warnings:
            out["service_warnings"] = warnings
        return out

    def _transaction(self, d: Desired, previous: Desired | None, then=None) -> dict:
        """Converge every applier to d, then run ``then`` (moving HEAD); when anything fails,
        put every applier back to previous — by its journal (``undo``: the daemons' files byte
        for byte) or by applying previous (the kernel) — record last_error, raise ApplyFailed."""
        for a in self.appliers:
            if hasattr(a, "begin"):
                a.begin()
            if previous is None and hasattr(a, "begin_first"):
                a.begin_first(d)  # no revision to go back to: the applier remembers what was there
        try:
            try:
                result = self._converge(d)
                if then is not None:
                    then()
            except Exception as e:  # noqa: BLE001 - whatever failed, every applier goes back
                f = e if isinstance(e, _Failed) else _Failed("commit", e)
                detail = self._restore(d, previous, f)
                raise ApplyFailed(self.last_error, detail) from None
        finally:
            for a in self.appliers:
                if hasattr(a, "end"):
                    a.end()
        return result

    def _restore(self, d: Desired, previous: Desired | None, f: _Failed) -> dict:
        e = f.error
        what = e if type(e).__name__.endswith("Error") and str(e) else f"{type(e).__name__}: {e}"
        self.last_error = f"apply of {short(d.rev)} failed in {f.stage}: {what}"
        errors: list[str] = []
        self.generation += 1
        for a in self.appliers:
            try:
                if hasattr(a, "undo"):
                    errors += a.undo()
                elif previous is not None:
                    a.apply(previous)
                elif hasattr(a, "undo_first"):
                    errors += a.undo_first()  # the first commit: remove what this transaction added
            except Exception as e2:  # noqa: BLE001 - report every failure, restore the rest
                errors.append(f"{a.name}: {e2}")
        self._current = previous if not errors else None
        if previous is None:
            self.last_error += ("; the daemons' files were put back and what this commit added to the kernel's links "
                                "and addresses removed; there is no previous revision for the rest of the kernel")
        else:
            self.last_error += f"; restored {short(previous.rev)}"
        if errors:
            self.last_error += f"; restoring failed too: {'; '.join(errors)}"
        return {"stage": f.stage, "restored": None if errors or previous is None else previous.rev,
                "restore_errors": errors}

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
            d, warnings = self._check(text)
            cfg = d.cfg
            if force and not confirm:
                raise Refused([Problem("(commit)", "--force needs --confirm SECONDS: a forced change must "
                                                   "roll itself back unless you confirm it")], status=400,
                              code="needs_confirm")
            with self.lock:
                if self.pending is not None:
                    raise Refused([Problem("(commit)", f"commit {short(self.pending['rev'])} is waiting for "
                                                       f"confirmation ({self.pending_remaining():.0f} s left): run "
                                                       "`talgate confirm` or `talgate rollback` first")], status=409,
                                  code="confirm_pending", detail={"rev": self.pending["rev"]})
                head = self.repo.head()
                if base == "HEAD":
                    base = head
                if base != head:
                    raise Conflict(base, head)
                if head is not None and self.repo.read(head) == text:
                    return {"rev": head, "changes": 0, "warnings": [w.to_dict() for w in warnings],
                            "message": "nothing to commit: the candidate equals HEAD"}
                running = validate_text(self.repo.read(head))[0] if head else None
                cut = lockout.cuts(running, cfg, ssh, d.ruleset, conn_kind)
                if cut and not force:
                    raise Refused([Problem("(lockout)", f"would cut {c}") for c in cut]
                                  + [Problem("(lockout)", "nothing was changed; fix the rule, or apply anyway with "
                                                          "--force --confirm SECONDS (rolled back unless confirmed)")],
                                  status=409, code="would_cut",
                                  detail={"cuts": [{"path": c.path, "verdict": c.verdict, "rule": c.rule} for c in cut]})
                result = self._commit_locked(d, text, message, author, head, confirm, on_rev=on_rev)
        except (Refused, Conflict, ApplyFailed) as e:
            self._record(None, "refused", who, message=message, reason=str(e), ssh=ssh)
            raise
        self._record(result, "commit", who, rev=result["rev"], message=message, confirm=confirm,
                     forced=bool(force and cut) or None, ssh=ssh, changes=result["changes"])
        return {**result, "warnings": [w.to_dict() for w in warnings],
                "lockout_overridden": [str(c) for c in cut] if force and cut else None}

    def _commit_locked(self, d: Desired, text, message, author, head, confirm, *, on_rev=None) -> dict:
        """Commit text on top of head and make every applier equal it, all or nothing: any
        failure before HEAD moves puts every applier back to head and raises ApplyFailed; once
        HEAD moved the commit has landed and what fails later is a note in the result."""
        notes = self._repo_preflight()
        oid = self.repo.create_commit(text, message, author, None, head)
        if on_rev is not None:
            on_rev(oid)
        d.rev = oid
        previous = self._desired_of(head)

        def land():
            if confirm:
                # Persist the timer before HEAD moves: a crash in between leaves a timer for a commit
                # that never landed (discarded at start), never a landed commit without its timer.
                self._set_pending({"rev": oid, "previous": head, "seconds": confirm,
                                   "deadline": self.clock() + confirm})
            try:
                self._fault("advance")
                self.repo.advance(oid, head)
            except BaseException:
                if self.pending is not None and self.pending.get("rev") == oid:
                    self._set_pending(None)
                raise

        result = self._transaction(d, previous, land)
        # HEAD moved: the commit landed. Nothing below may turn it into a reported failure.
        try:
            self.repo.write_worktree(text)
        except Exception as e:  # noqa: BLE001 - the working tree is a convenience copy
            notes.append(f"committed, but the working tree ({self.repo.path / 'router.yaml'}) was not fully updated: {e}")
        self.applied.rev, self.applied.time = oid, self.clock()
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
            d = self._desired_of(target, fresh=True)
            result = self._transaction(d, self._desired_of(self.applied.rev))
            self.applied.rev, self.applied.time = target, self.clock()
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
                    raise RepoError("nothing to roll back to: HEAD has no parent", code="nothing_to_roll_back")
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
                raise RepoError(f"HEAD already has the configuration of {short(target)}",
                                code="nothing_to_roll_back")
            d, _ = self._check(text)
            self._set_pending(None)
            result = self._commit_locked(d, text, message, author, head, None)
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
        return max(0.0, self.pending["deadline"] - self.clock()) if self.pending else 0.0

    def confirm_status(self) -> dict | None:
        if self.pending is None:
            return None
        return {"rev": self.pending["rev"], "deadline": self.pending["deadline"],
                "seconds": self.pending["seconds"], "remaining": round(self.pending_remaining(), 1)}

    def confirm(self, who: dict | None = None) -> dict:
        with self.lock:
            if self.pending is None:
                raise RepoError("nothing to confirm: no commit is waiting for confirmation", code="nothing_to_confirm")
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
        d = self.desired(cfg)
        d.tolerant = True
        return self._commit_locked(d, text, msg, "talgate-agent", head, None)

    # -- drift ---------------------------------------------------------------------------

    def drift(self) -> list[str]:
        """What differs between the kernel/daemons and the last apply (under the current facts),
        without changing anything. The appliers look outside the lock (listing a big set takes
        ~0.6 s); a result from before an apply that landed meanwhile is dropped."""
        with self.lock:
            if self.repo.head() is None or self.applied.rev is None:
                return []
            d = self._desired_of(self.applied.rev)
            if d is None:
                return []
            gen = self.generation
        items: list[str] = []
        for a in self.appliers:
            items += a.drift(d)
        with self.lock:
            if self.generation != gen:
                return []  # an apply landed meanwhile; look again next round
        return items

    def repair(self) -> dict | None:
        """Restore HEAD when something changed behind the agent's back; records what drifted."""
        items = self.drift()
        self.drift_count = len(items)
        if not items:
            return None
        with self.lock:
            result = self.apply()
            self.last_drift = {"time": self.clock(), "items": items, "repaired": result["changes"]}
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
            "appliers": [a.name for a in self.appliers],
            "facts": self.facts.to_dict(),
            "wans": self.wans.status() if self.wans is not None else {},
        }



class _Failed(Exception):
    def __init__(self, stage: str, error: BaseException):
        self.stage, self.error = stage, error
        super().__init__(f"{stage}: {error}")
