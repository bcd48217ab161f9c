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


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def bump_generation(d: Path) -> int:
    g = d / ".generation"
    try:
        n = int(g.read_text().strip() or "0") + 1
    except (OSError, ValueError):
        n = 1
    write_atomic(g, f"{n}\n")
    return n


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
        if problems or text is None:
            return list(problems)
        self.dirs()
        tmp = Path(tempfile.mkdtemp(prefix=f".check-{self.name}-", dir=self.d.rendered_dir.parent))
        try:
            f = tmp / self.file
            f.write_text(text)
            err = self.checker(f)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return [Problem(self.section, f"{self.name} refuses the rendered config: {err}")] if err else []

    def _want(self, desired: Desired) -> tuple[bool, str | None]:
        """(known, text): known is False when the config cannot be rendered now (keep the last)."""
        text, problems = self.rendered(desired)
        return (not problems, text)

    def plan(self, desired: Desired) -> list[str]:
        if self.d.rendered_dir is None:
            return []
        return self._differences(desired)

    def _differences(self, desired: Desired) -> list[str]:
        known, text = self._want(desired)
        if not known:
            return []
        cur = read(self.path)
        if text is None:
            return [f"{self.name}: remove {self.file}"] if cur is not None else []
        out = [] if cur == text else [f"{self.name}: {'write' if cur is None else 'rewrite'} {self.file}"]
        return out + self.extra_drift(desired, text)

    def apply(self, desired: Desired) -> list[str]:
        if self.d.rendered_dir is None:
            return []
        with self._lock:
            known, text = self._want(desired)
            self.dirs()
            changes: list[str] = []
            if known:
                cur = read(self.path)
                if text is None:
                    if cur is not None:
                        self.path.unlink()
                        bump_generation(self.dir)
                        changes.append(f"{self.name}: removed {self.file}")
                else:
                    extra = self.extra_files(desired, text)
                    if cur != text or extra:
                        write_atomic(self.path, text)
                        bump_generation(self.dir)
                        changes.append(f"{self.name}: wrote {self.file}")
                        self.last_reload = {"time": time.time(), **self._safe_reload()}
                        if self.last_reload["ok"] is False and not self.last_reload.get("unreachable"):
                            # The running daemon answered and refused the new config: fail the
                            # apply (the pipeline puts every applier back to the previous HEAD).
                            raise ServiceError(f"{self.name} refused to reload: {self.last_reload.get('detail')}")
            # A config that cannot be rendered now (HEAD's blocklist vanished): keep serving the
            # last good one rather than an empty one; check() refuses new commits like that.
            self.d.cfg = desired.cfg
            self.after_apply(desired)
            return changes

    def _safe_reload(self) -> dict:
        try:
            return self.reload()
        except OSError as e:
            # Not answering (down, restarting): it reads the file when it starts; not a failure.
            return {"ok": False, "unreachable": True, "detail": f"control socket: {e}"}

    def drift(self, desired: Desired) -> list[str]:
        if self.d.rendered_dir is None:
            return []
        return self._differences(desired)

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
