"""What every daemon applier shares: render its file atomically, bump ``.generation``, reload.

The rendered-file contract (see backend/host/services.py): ``RENDERED/<svc>/<file>`` is replaced
atomically, then ``RENDERED/<svc>/.generation`` is bumped; a service switched off loses its file
(and the generation is bumped too). A daemon module subclasses :class:`DaemonApplier` and fills in
``name``, ``file``, ``section`` and ``render``; optionally ``check_command`` (the daemon's own
checker), ``reload`` (its control socket) and ``probe``.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from ...model import Problem
from ...model.config import RouterConfig
from ...model.services import PodPaths, ServicePaths
from ..applier import Desired, HostContext

# The agent's --rendered on Talos: /var/lib/talgate/rendered inside its container (the user volume
# /var/mnt/talgate, talos/patches/50-agent.yaml), /var/mnt/talgate/rendered on the host. The service
# pods see the same folders at their own mounts (manifests/services), so the configs name those.
TALOS_RENDERED = ("/var/lib/talgate/rendered", "/var/mnt/talgate/rendered")


class ServiceError(Exception):
    pass


def write_atomic(path: Path, text: str | bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode() if isinstance(text, str) else text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read_bounded_file(path: str, limit: int) -> str:
    """A file named in the document: only a regular file (a FIFO, a device or a directory is
    refused without reading, never blocking: O_NONBLOCK), at most limit bytes, decoded as UTF-8
    with replacement. Raises OSError or ValueError with a message for the problem."""
    st = os.stat(path)  # refuse devices before opening them at all
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"not a regular file ({_kind(st.st_mode)})")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)  # what was opened, not what the name pointed at a moment ago
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"not a regular file ({_kind(st.st_mode)})")
        if st.st_size > limit:
            raise ValueError(f"{st.st_size} bytes, the limit is {limit >> 20} MiB")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"more than {limit >> 20} MiB")
    return data.decode("utf-8", errors="replace")


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a file"


def read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, ValueError):
        return None


def read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def bump_generation(d: Path, journal: Journal | None = None) -> int:
    g = d / ".generation"
    if journal is not None:
        journal.remember(g)
    try:
        n = int(g.read_text().strip() or "0") + 1
    except (OSError, ValueError):
        n = 1
    write_atomic(g, f"{n}\n")
    return n


class Journal:
    """What every file an apply touches held before (bytes and mode, or absent), so a failed
    transaction can put the rendered folder back byte for byte; and whether the daemon was
    reloaded with a new file (then it is reloaded again after the undo)."""

    def __init__(self) -> None:
        self.saved: dict[Path, tuple[bytes | None, int]] = {}
        self.reloaded = False

    def remember(self, path: Path) -> None:
        if path in self.saved:
            return
        try:
            st = os.lstat(path)
            data = path.read_bytes() if stat.S_ISREG(st.st_mode) else None
            mode = stat.S_IMODE(st.st_mode)
        except OSError:
            data, mode = None, 0o644
        self.saved[path] = (data, mode)

    def undo(self) -> list[str]:
        errors = []
        for path, (data, mode) in reversed(list(self.saved.items())):
            try:
                if data is None:
                    if os.path.isfile(path) or os.path.islink(path):
                        path.unlink()
                elif read_bytes(path) != data:
                    write_atomic(path, data, mode)
            except OSError as e:
                errors.append(f"cannot restore {path}: {e.strerror or e}")
        return errors


class DaemonContext:
    """Paths the daemon appliers of one agent share (one per pipeline: ``HostContext.share``)."""

    def __init__(self, rendered_dir: str | Path | None, paths: ServicePaths | None = None):
        self.rendered_dir = Path(rendered_dir) if rendered_dir else None
        self.cfg: RouterConfig | None = None  # the config last applied (lease names, subnets)
        if self.rendered_dir is None:
            self.paths = None
            return
        base = self.rendered_dir.parent
        self.run_dir = base / "run"
        self.state_dir = base / "state"
        if paths is not None:
            self.paths = paths
        elif str(self.rendered_dir) in TALOS_RENDERED:
            self.paths = PodPaths()
        else:
            self.paths = ServicePaths(str(self.rendered_dir), str(self.run_dir), str(self.state_dir))

    @classmethod
    def of(cls, ctx: HostContext) -> DaemonContext:
        return ctx.share("daemons", lambda: cls(ctx.rendered_dir))

    @property
    def on_pods(self) -> bool:
        return isinstance(self.paths, PodPaths)

    def host_path(self, daemon_path: str) -> Path:
        """Map a path the daemon sees to the agent's view."""
        if not self.on_pods:
            return Path(daemon_path)
        for pod, host in (("/etc/talgate", self.rendered_dir), ("/var/lib/kea", self.state_dir / "kea"),
                          ("/var/lib/chrony", self.state_dir / "chrony"), ("/run", self.run_dir)):
            if daemon_path == pod or daemon_path.startswith(pod + "/"):
                return Path(str(host) + daemon_path[len(pod):])
        return Path(daemon_path)

    def supervisor(self) -> dict:
        """The lab supervisor's view of the daemons (RUN/supervisor.json), {} elsewhere."""
        import json

        try:
            return json.loads((self.run_dir / "supervisor.json").read_text()).get("services", {})
        except (OSError, ValueError, AttributeError):
            return {}


class DaemonApplier:
    """One daemon: one rendered file under RENDERED/<name>/. Subclasses fill in the hooks."""

    name: str = ""
    file: str = ""
    section: str = ""  # router.yaml section its problems point at
    group = "services"

    def __init__(self, ctx: HostContext | DaemonContext):
        self.d = ctx if isinstance(ctx, DaemonContext) else DaemonContext.of(ctx)
        self.last_reload: dict | None = None
        self._lock = threading.Lock()
        self.journal = Journal()  # what the running transaction changed (begin/undo/end)
        self.warnings: list[str] = []  # kept on the previous config by a tolerant apply
        self.fault = None  # fault injection for tests: called with a stage name (see the pipeline)
        self._cfg_before: RouterConfig | None = None

    # -- hooks -------------------------------------------------------------------------------------

    def render(self, desired: Desired) -> tuple[str | None, list[Problem]]:
        """(config text, or None when the service is off; problems that refuse the commit)."""
        raise NotImplementedError

    def check_command(self, f: Path) -> list[str] | None:
        """The daemon's own checker for file f (None: nothing to run)."""
        return None

    def check_env(self, f: Path) -> dict | None:
        return None

    def checker(self, f: Path) -> str | None:
        """None when the daemon's checker accepts f (or is not installed here), else its complaint."""
        cmd = self.check_command(f)
        if cmd is None or shutil.which(cmd[0]) is None:
            return None
        env = self.check_env(f)
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=30,
                               env=None if env is None else {**os.environ, **env})
        except subprocess.TimeoutExpired:
            return f"{cmd[0]} did not answer within 30 s"
        if r.returncode == 0:
            return None
        lines = [ln for ln in (r.stderr + r.stdout).splitlines() if ln.strip()]
        errs = [ln for ln in lines if "ERROR" in ln or "error" in ln.lower() or "fatal" in ln.lower()]
        return (errs or lines or [f"exit status {r.returncode}"])[-1].strip()

    def reload(self) -> dict:
        """Tell the running daemon to read its new config; {"ok": True|False|None, "detail"}."""
        return {"ok": None, "detail": "reloaded by its runner on .generation"}

    def extra_files(self, desired: Desired, text: str) -> bool:
        """Files next to the config (keys, certificates); True when they were (re)written."""
        return False

    def extra_drift(self, desired: Desired, text: str) -> list[str]:
        return []

    def after_apply(self, desired: Desired) -> None:
        pass

    def probe(self) -> str:
        """Without a supervisor (Kubernetes): is the daemon answering?"""
        return "configured"

    def dirs(self) -> None:
        """Folders the daemon needs (its run dir at least)."""
        self.run_dir().mkdir(parents=True, exist_ok=True)

    def run_dir(self) -> Path:
        """RUN/<name> as the agent sees it."""
        return self.d.run_dir / self.name

    def status_extra(self) -> dict:
        return {}

    # -- shared machinery ------------------------------------------------------------------------

    @property
    def dir(self) -> Path:
        return self.d.rendered_dir / self.name

    @property
    def path(self) -> Path:
        return self.dir / self.file

    def rendered(self, desired: Desired) -> tuple[str | None, list[Problem]]:
        """render(), once per desired state (the checker and the write share it)."""
        return desired.product(f"daemon:{self.name}", lambda: self.render(desired))

    def check(self, desired: Desired) -> list[Problem]:
        if self.d.rendered_dir is None:
            return []
        text, problems = self.rendered(desired)
        if text is None or any(p.severity == "error" for p in problems):
            return list(problems)
        self.dirs()
        tmp = Path(tempfile.mkdtemp(prefix=f".check-{self.name}-", dir=self.d.rendered_dir.parent))
        try:
            f = tmp / self.file
            f.write_text(text)
            err = self.checker(f)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return list(problems) + ([Problem(self.section, f"{self.name} refuses the rendered config: {err}")]
                                 if err else [])

    def _want(self, desired: Desired) -> tuple[bool, str | None]:
        """(known, text): known is False when the config cannot be rendered now (keep the last)."""
        text, problems = self.rendered(desired)
        return (not any(p.severity == "error" for p in problems) and desired.files, text)

    def plan(self, desired: Desired) -> list[str]:
        if self.d.rendered_dir is None:
            return []
        return self._differences(desired)

    def _differences(self, desired: Desired, drift: bool = False) -> list[str]:
        """What apply would change (plan: "write X"), or how the file differs (drift: "X was changed")."""
        known, text = self._want(desired)
        if not known:
            return []
        cur = read(self.path)
        if text is None:
            if cur is None:
                return []
            return [f"service {self.name}: {self.file} exists but the service is off" if drift
                    else f"{self.name}: remove {self.file}"]
        if cur == text:
            out = []
        elif drift:
            out = [f"service {self.name}: {self.file} {'is missing' if cur is None else 'was changed'}"]
        else:
            out = [f"{self.name}: {'write' if cur is None else 'rewrite'} {self.file}"]
        return out + self.extra_drift(desired, text)

    # -- transactions (the pipeline: begin, apply..., then end or undo) ------------------------------

    def begin(self) -> None:
        """Start a transaction: undo() puts back everything apply() changes from here on."""
        self.journal = Journal()
        self.warnings = []
        self._cfg_before = self.d.cfg

    def end(self) -> None:
        """The transaction landed: forget how to undo it."""
        self.journal = Journal()

    def undo(self) -> list[str]:
        """Put every file the transaction changed back byte for byte (config, .generation, keys)
        and reload the daemon when it had been reloaded with the new file; returns what failed."""
        j, self.journal = self.journal, Journal()
        errors = [f"{self.name}: {e}" for e in j.undo()]
        self.d.cfg = self._cfg_before
        if j.reloaded:
            res = self._safe_reload()
            self.last_reload = {"time": time.time(), **res}
            if res["ok"] is False:
                errors.append(f"{self.name}: reload of the restored config failed: {res.get('detail')}")
        return errors

    def _fault(self, stage: str) -> None:
        if self.fault is not None:
            self.fault(stage)

    def remember(self, path: Path) -> None:
        """Journal a file before changing it (hooks that write files next to the config)."""
        self.journal.remember(path)

    def apply(self, desired: Desired) -> list[str]:
        """Write the config when it changed, bump .generation, reload. Raises on the first failure
        (a file that cannot be written, a key, a daemon refusing its reload); the pipeline then
        undoes the transaction. With ``desired.tolerant`` (the confirm timer's rollback) a failure
        puts this daemon back to its previous files and is a warning instead."""
        if self.d.rendered_dir is None:
            return []
        with self._lock:
            mark = dict(self.journal.saved), self.journal.reloaded
            try:
                return self._apply(desired)
            except Exception as e:  # noqa: BLE001 - any failure: the caller restores (or, tolerant, this one)
                if not desired.tolerant:
                    raise
                part = Journal()
                part.saved = {k: v for k, v in self.journal.saved.items() if k not in mark[0]}
                part.reloaded = self.journal.reloaded and not mark[1]
                self.journal.saved, self.journal.reloaded = mark
                errors = [f"{self.name}: {x}" for x in part.undo()]
                if part.reloaded:
                    self.last_reload = {"time": time.time(), **self._safe_reload()}
                self.warnings += errors
                self.warnings.append(f"{self.name}: {e}; kept its previous config")
                return []

    def _apply(self, desired: Desired) -> list[str]:
        known, text = self._want(desired)
        self.dirs()
        changes: list[str] = []
        if not known:
            # A config that cannot be rendered now (HEAD's blocklist vanished, a rollback to a
            # revision whose blocklist is gone): keep serving the last good one rather than an
            # empty one; check() refuses new commits like that.
            self.warnings += [f"{self.name}: {p}; kept its last good config" for p in self.rendered(desired)[1]
                              if p.severity == "error"]
        else:
            cur = read(self.path)
            if text is None:
                if cur is not None:
                    self._fault(f"{self.name}.write")
                    self.journal.remember(self.path)
                    self.path.unlink()
                    bump_generation(self.dir, self.journal)
                    changes.append(f"{self.name}: removed {self.file}")
            else:
                extra = self.extra_files(desired, text)
                if cur != text or extra:
                    self._fault(f"{self.name}.write")
                    self.journal.remember(self.path)
                    write_atomic(self.path, text)
                    bump_generation(self.dir, self.journal)
                    changes.append(f"{self.name}: wrote {self.file}")
                    self.journal.reloaded = True
                    self._fault(f"{self.name}.reload")
                    self.last_reload = {"time": time.time(), **self._safe_reload()}
                    if self.last_reload["ok"] is False:
                        # The running daemon answered and refused the new config.
                        raise ServiceError(f"{self.name} refused to reload: {self.last_reload.get('detail')}")
        self.d.cfg = desired.cfg
        self.after_apply(desired)
        return changes

    def _safe_reload(self) -> dict:
        try:
            return self.reload()
        except (ConnectionRefusedError, FileNotFoundError) as e:
            # A socket left by a daemon that died: its runner restarts it with the new file.
            return {"ok": None, "detail": f"not answering ({e.strerror}); it reads the new config when it starts"}
        except OSError as e:
            return {"ok": False, "detail": f"control socket: {e}"}

    def drift(self, desired: Desired) -> list[str]:
        if self.d.rendered_dir is None:
            return []
        return self._differences(desired, drift=True)

    def status(self) -> dict:
        if self.d.rendered_dir is None:
            return {}
        configured = self.path.exists()
        gen = read(self.dir / ".generation")
        st: dict = {"configured": configured, "generation": int(gen) if gen and gen.strip().isdigit() else 0}
        s = self.d.supervisor().get(self.name)
        if s:
            st.update(state=s.get("state"), pid=s.get("pid"), restarts=s.get("restarts", 0))
        else:
            st["state"] = "off" if not configured else self.probe()
        if self.last_reload is not None:
            st["last_reload"] = self.last_reload
        st.update(self.status_extra())
        return st
