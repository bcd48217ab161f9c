"""The config repository: one ``router.yaml`` in a git repo with a working tree.

pygit2 (libgit2) in-process: no git binary needed. A commit writes its objects first and
moves the branch ref last, with the expected old target, so a crash never leaves a partial
commit and two writers from the same base cannot both win.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pygit2

CONFIG_FILE = "router.yaml"
BRANCH = "refs/heads/main"
# In the git dir: the revision whose text was last written to the working tree (the base an edit
# of the working tree starts from; the CLI sends it so a stale edit is a conflict, not a lost update).
WORKTREE_BASE = "talgate-worktree-base"
# What a client may name: a (possibly abbreviated) commit id, HEAD or main, with ~N / ^ suffixes.
# Anything else (HEAD:router.yaml, @{-1}, :/regex, ^{tree}) is refused before libgit2 sees it.
_REV = re.compile(r"(HEAD|main|[0-9a-fA-F]{4,40})([~^][0-9]{0,6})*")


class RepoError(Exception):
    """A repository operation that cannot be done; ``code`` is the API error code it maps to."""

    def __init__(self, message: str, code: str = "bad_request"):
        self.code = code
        super().__init__(message)


class Conflict(RepoError):
    """The caller's base revision is not HEAD any more."""

    def __init__(self, base: str | None, head: str):
        self.base, self.head = base, head
        super().__init__(f"conflict: your change is based on {short(base)} but HEAD is now {short(head)}; "
                         "reload, re-apply your edit and commit again")


def short(rev: str | None) -> str:
    return rev[:12] if rev else "(none)"


@dataclass(frozen=True)
class LogEntry:
    rev: str
    author: str
    email: str
    time: int
    message: str
    parent: str | None

    def to_dict(self) -> dict:
        return asdict(self)


class ConfigRepo:
    clock = staticmethod(time.time)  # commit timestamps (a test double fixes it)

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            self.repo = pygit2.Repository(str(self.path))
        except pygit2.GitError as e:
            raise RepoError(f"{self.path}: not a talgate config repo ({e})") from None

    # -- creation ------------------------------------------------------------------------

    @classmethod
    def init(cls, path: str | os.PathLike, text: str, author: str = "talgate",
             message: str = "initial configuration") -> ConfigRepo:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if (path / ".git").exists():
            raise RepoError(f"{path}: a repository already exists")
        pygit2.init_repository(str(path), initial_head="main")
        r = cls(path)
        r.commit(text, message, author=author, base=None)
        return r

    @classmethod
    def open_or_create(cls, path: str | os.PathLike) -> ConfigRepo:
        """Open the repo, creating an empty one (no commits yet) when the folder has none."""
        path = Path(path)
        if not (path / ".git").exists():
            path.mkdir(parents=True, exist_ok=True)
            pygit2.init_repository(str(path), initial_head="main")
        return cls(path)

    def clear_stale_locks(self) -> list[str]:
        """Remove lock files a killed writer left behind (call only while no writer runs)."""
        removed = []
        for lock in self.lock_files():
            lock.unlink(missing_ok=True)
            removed.append(str(lock))
        return removed

    def lock_files(self) -> list[Path]:
        """Git lock files present now (index, HEAD, branch refs, packed refs)."""
        gitdir = Path(self.repo.path)
        return [lock for lock in [gitdir / "index.lock", gitdir / "HEAD.lock", gitdir / "packed-refs.lock",
                                  *gitdir.glob("refs/heads/*.lock")] if lock.exists()]

    # -- reading -------------------------------------------------------------------------

    def head(self) -> str | None:
        try:
            return str(self.repo.references[BRANCH].target)
        except KeyError:
            return None

    def resolve(self, rev: str | None) -> str:
        """A full revision id from a full or abbreviated id, 'HEAD', 'HEAD~N'."""
        if rev is None or rev == "HEAD":
            h = self.head()
            if h is None:
                raise RepoError("the repository has no commits", code="not_found")
            return h
        shown = repr(rev[:60] + ("…" if len(rev) > 60 else "")) if isinstance(rev, str) else repr(type(rev).__name__)
        if not isinstance(rev, str) or len(rev) > 100 or not _REV.fullmatch(rev):
            raise RepoError(f"revision {shown}: not a revision (a commit id, HEAD, main, HEAD~N)")
        try:
            obj = self.repo.revparse_single(rev)
            commit = obj.peel(pygit2.Commit)
        except (KeyError, ValueError, pygit2.GitError):
            raise RepoError(f"unknown revision {shown}", code="not_found") from None
        return str(commit.id)

    def read(self, rev: str | None = None) -> str:
        commit = self.repo[self.resolve(rev)]
        try:
            blob = commit.tree[CONFIG_FILE]
        except KeyError:
            raise RepoError(f"revision {short(str(commit.id))} has no {CONFIG_FILE}") from None
        return _decode(blob.data, f"{CONFIG_FILE} at {short(str(commit.id))}")

    def working_text(self) -> str:
        """The working tree's router.yaml: a regular file (never blocks on a FIFO), bounded, UTF-8;
        RepoError saying what is wrong otherwise (FileNotFoundError when there is none)."""
        return _decode(self._working_bytes(), CONFIG_FILE)

    def _working_bytes(self, expect_size: int | None = None) -> bytes | None:
        from ..model.load import MAX_DOCUMENT_BYTES

        fd = os.open(self.path / CONFIG_FILE, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise RepoError(f"{CONFIG_FILE}: not a regular file")
            if expect_size is not None and st.st_size != expect_size:
                return None
            if st.st_size > MAX_DOCUMENT_BYTES:
                raise RepoError(f"{CONFIG_FILE}: document is {st.st_size} bytes, the limit is "
                                f"{MAX_DOCUMENT_BYTES} bytes ({MAX_DOCUMENT_BYTES >> 20} MiB)")
            return f.read(MAX_DOCUMENT_BYTES + 1)

    def log(self, limit: int = 50, rev: str | None = None) -> list[LogEntry]:
        h = self.head()
        if h is None:
            return []
        out = []
        for c in self.repo.walk(self.resolve(rev) if rev else h, pygit2.enums.SortMode.TOPOLOGICAL):
            out.append(LogEntry(str(c.id), c.author.name, c.author.email, c.commit_time, c.message.strip(),
                                str(c.parent_ids[0]) if c.parent_ids else None))
            if len(out) >= limit:
                break
        return out

    def diff(self, a: str | None, b: str | None = None, text_b: str | None = None) -> str:
        """Unified diff of router.yaml from revision a to revision b (or to text_b)."""
        ra = self.resolve(a)
        ta = self.read(ra)
        if text_b is None:
            rb = self.resolve(b)
            tb, label_b = self.read(rb), short(rb)
        else:
            tb, label_b = text_b, "candidate"
        return "".join(difflib.unified_diff(ta.splitlines(True), tb.splitlines(True),
                                            f"{short(ra)}/{CONFIG_FILE}", f"{label_b}/{CONFIG_FILE}"))

    # -- writing -------------------------------------------------------------------------

    def commit(self, text: str, message: str, author: str = "talgate", email: str | None = None,
               base: str | None = "HEAD", write_worktree: bool = True) -> str:
        """Commit text as router.yaml. base must equal HEAD ('HEAD' = whatever it is now)."""
        head = self.head()
        if base == "HEAD":
            base = head
        if base != head:
            raise Conflict(base, head)
        if not message.strip():
            raise RepoError("a commit needs a message")
        oid = self.create_commit(text, message, author, email, head)
        self.advance(oid, head)
        if write_worktree:
            self.write_worktree(text)
        return oid

    def create_commit(self, text: str, message: str, author: str, email: str | None,
                      parent: str | None) -> str:
        """Write the commit's objects without moving any ref (safe to abandon)."""
        blob = self.repo.create_blob(text.encode())
        tb = self.repo.TreeBuilder()
        tb.insert(CONFIG_FILE, blob, pygit2.enums.FileMode.BLOB)
        tree = tb.write()
        sig = pygit2.Signature(author or "talgate", email or f"{author or 'talgate'}@talgate.local", int(self.clock()), 0)
        parents = [pygit2.Oid(hex=parent)] if parent else []
        oid = self.repo.create_commit(None, sig, sig, message.strip() + "\n", tree, parents)
        return str(oid)

    def advance(self, oid: str, expected_old: str | None) -> None:
        """Move main to oid iff it still points at expected_old (callers hold the agent lock)."""
        if self.head() != expected_old:
            raise Conflict(expected_old, self.head())
        target = pygit2.Oid(hex=oid)
        if expected_old is None:
            self.repo.references.create(BRANCH, target)
            self.repo.set_head(BRANCH)
        else:
            self.repo.references[BRANCH].set_target(target, message="talgate commit")

    def reset_head(self, rev: str) -> None:
        """Point main back at rev (used when applying a new commit failed)."""
        self.repo.references[BRANCH].set_target(pygit2.Oid(hex=rev), message="talgate: apply failed")

    def write_worktree(self, text: str) -> None:
        """Write text (HEAD's) to the working tree and record HEAD as the worktree's base."""
        p = self.path / CONFIG_FILE
        tmp = p.with_suffix(".yaml.tmp")
        tmp.write_text(text)
        os.replace(tmp, p)
        head = self.head()
        if head is not None:
            b = Path(self.repo.path) / WORKTREE_BASE
            b.with_suffix(".tmp").write_text(head + "\n")
            os.replace(b.with_suffix(".tmp"), b)
        # Keep the index in step so `git status` in the repo is clean.
        idx = self.repo.index
        idx.read()
        idx.add(CONFIG_FILE)
        idx.write()

    def worktree_base(self) -> str | None:
        """The revision the working tree was last written from (None when unknown)."""
        try:  # bounded and non-blocking: status (read-only socket too) calls this on every poll
            fd = os.open(Path(self.repo.path) / WORKTREE_BASE, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    return None
                rev = f.read(100).decode(errors="replace").strip()
        except OSError:
            return None
        try:
            return self.resolve(rev) if len(rev) == 40 else None
        except RepoError:
            return None

    def worktree_dirty(self) -> bool:
        """Compares bytes (a non-UTF-8 working tree is dirty, not an error), reading the file only
        when its size equals HEAD's."""
        try:
            blob = self.repo[self.resolve(None)].tree[CONFIG_FILE]
            data = self._working_bytes(expect_size=blob.size)
            return data is None or data != blob.data
        except (OSError, KeyError, RepoError):
            return True


def _decode(data: bytes, source: str) -> str:
    from ..model.load import ConfigError, decode_document

    try:
        return decode_document(data, source)
    except ConfigError as e:
        raise RepoError(str(e)) from None
