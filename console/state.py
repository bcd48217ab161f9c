"""The staged candidate kept across console restarts: a per-user state file, never in the config repo.

``$XDG_STATE_HOME/talgate/candidate.yaml`` (default ``~/.local/state/talgate/candidate.yaml``), mode 0600
in a 0700 directory: the candidate's text and the revision it was staged on (its base), written
atomically whenever the staged candidate changes, removed when it is committed or discarded. On start
the console offers to restore it; a base that is no longer HEAD leads to the rebase offer.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import yaml

MAX_BYTES = 4 * 1024 * 1024  # a router.yaml is tens of kB; a bigger file is not ours: ignored


def default_path(env=None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_STATE_HOME") or ""
    root = Path(base) if base and os.path.isabs(base) else Path(env.get("HOME") or "~").expanduser() / ".local/state"
    return root / "talgate" / "candidate.yaml"


def shown_path(path, home: str | None = None) -> str:
    """The state file's path for a dialog: under the home directory as ``~/…`` (shorter at 60 columns)."""
    home = os.path.expanduser("~") if home is None else home
    p = str(path)
    if home and home != "/" and p.startswith(home.rstrip("/") + "/"):
        return "~/" + p[len(home.rstrip("/")) + 1:]
    return p


def save(path: Path, text: str, base: str | None, host: str | None = None) -> None:
    """Write atomically, 0600 (the file is created with that mode: never readable by others, not even briefly)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    body = yaml.safe_dump({"base": base, "host": host, "saved": int(time.time()), "candidate": text},
                          sort_keys=False, allow_unicode=True, width=1 << 20)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load(path: Path) -> dict | None:
    """{base, host, saved, candidate} or None (absent, too big, or not a state file of ours)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        raw = f.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        return None
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("candidate"), str):
        return None
    if data.get("base") is not None and not isinstance(data["base"], str):
        return None
    return data


def clear(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
