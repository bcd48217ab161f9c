"""Service daemons (Kea, radvd, Unbound, chrony, avahi): render their configs into the rendered
folder and reload them.

The pipeline calls ``check`` before committing (blocklist files readable, each daemon's own
checker accepts its rendered config), ``apply`` while converging and ``status`` for
``talgate status``. The agent never starts daemons: in the lab the lab's supervisor does
(``backend/lab/supervisor.py``), on Kubernetes the service pods do. The contract with both:

- ``RENDERED/<svc>/<file>`` is replaced atomically, then ``RENDERED/<svc>/.generation`` is bumped;
  a service that is switched off loses its config file (and the generation is bumped too).
- Kea and Unbound are reloaded here through their control sockets under ``RUN/<svc>/``
  (Kea: ``config-reload``; Unbound: ``reload``). radvd, chrony and avahi are reloaded by whoever
  runs them when ``.generation`` changes (SIGHUP for radvd, a restart for chrony and avahi,
  which cannot re-read their configs).
- Live lease names are pushed into Unbound (``local_data``) by a small sync thread, so a new
  lease is resolvable within seconds without a reload.

Paths: the agent's ``--rendered`` folder is ``BASE/rendered``; ``BASE/run`` and ``BASE/state``
are its siblings (``/var/mnt/talgate/{rendered,run,state}`` on Talos — ``/var/lib/talgate/...``
inside the agent's container —, ``STATE/...`` in the lab).
On Talos the daemons see the pods' mounts (``/etc/talgate/<svc>``, ``/run/<svc>``, ``/var/lib/kea``)
and the rendered configs name those.
"""

from __future__ import annotations

import configparser
import json
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from ..model import Problem
from ..model.config import RouterConfig
from ..model.services import PodPaths, ServicePaths, dhcp_interfaces, ntp_zones, zone_interfaces
from ..render import avahi as r_avahi
from ..render import chrony as r_chrony
from ..render import kea as r_kea
from ..render import radvd as r_radvd
from ..render import unbound as r_unbound

# The agent's --rendered on Talos: /var/lib/talgate/rendered inside its container (the user volume
# /var/mnt/talgate, talos/patches/50-agent.yaml), /var/mnt/talgate/rendered on the host. The service
# pods see the same folders at their own mounts (manifests/services), so the configs name those.
TALOS_RENDERED = ("/var/lib/talgate/rendered", "/var/mnt/talgate/rendered")

# A blocklist file is read whole and rendered into unbound.conf: the biggest public lists (hosts
# format, ~1 M names) are ~30 MB; more than 64 MiB is refused rather than risk the agent's memory.
MAX_BLOCKLIST_BYTES = 64 * 1024 * 1024

# service -> (rendered file name, config section in router.yaml)
SERVICES: dict[str, tuple[str, str]] = {
    "kea-dhcp4": ("kea-dhcp4.conf", "dhcp"),
    "kea-dhcp6": ("kea-dhcp6.conf", "dhcp"),
    "unbound": ("unbound.conf", "dns"),
    "radvd": ("radvd.conf", "ra"),
    "chrony": ("chrony.conf", "ntp"),
    "avahi": ("avahi-daemon.conf", "mdns"),
}


class ServiceError(Exception):
    pass


# ---- control channels ------------------------------------------------------------------


def kea_command(sock_path: str, command: str, arguments: dict | None = None, timeout: float = 5.0) -> dict:
    """One command over Kea's unix control socket; returns the response object."""
    msg = {"command": command}
    if arguments is not None:
        msg["arguments"] = arguments
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sock_path)
        s.sendall(json.dumps(msg).encode())
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            try:
                resp = json.loads(buf)
                break
            except ValueError:
                continue
        else:  # pragma: no cover
            resp = None
    if resp is None:
        resp = json.loads(buf or b"{}")
    if isinstance(resp, list):
        resp = resp[0] if resp else {}
    return resp


def unbound_control(sock_path: str, command: str, data: list[str] | None = None, timeout: float = 5.0) -> str:
    """One unbound-control command over the unix control socket (control-use-cert: no).
    ``data`` lines are sent after the command (for local_datas / local_datas_remove)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sock_path)
        payload = f"UBCT1 {command}\n"
        if data is not None:
            payload += "".join(line + "\n" for line in data) + "\x04\x0a"
        s.sendall(payload.encode())
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    return out.decode(errors="replace")


def _write_atomic(path: Path, text: str | bytes, mode: int = 0o644) -> None:
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


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, ValueError):
        return None


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


class Journal:
    """What every file an apply touches held before (bytes and mode, or absent), so a failed
    commit can put the rendered folder back byte for byte; and which daemons were reloaded."""

    def __init__(self) -> None:
        self.saved: dict[Path, tuple[str, bytes | None, int]] = {}  # path -> (service, bytes, mode)
        self.reloaded: dict[str, None] = {}  # ordered set of services reloaded with new files

    def remember(self, svc: str, path: Path) -> None:
        if path in self.saved:
            return
        try:
            st = os.lstat(path)
            data = path.read_bytes() if stat.S_ISREG(st.st_mode) else None
            mode = stat.S_IMODE(st.st_mode)
        except OSError:
            data, mode = None, 0o644
        self.saved[path] = (svc, data, mode)

    def services(self) -> set[str]:
        return {svc for svc, _, _ in self.saved.values()} | set(self.reloaded)


def bump_generation(d: Path, journal: Journal | None = None, svc: str = "") -> int:
    g = d / ".generation"
    if journal is not None:
        journal.remember(svc, g)
    try:
        n = int(g.read_text().strip() or "0") + 1
    except (OSError, ValueError):
        n = 1
    _write_atomic(g, f"{n}\n")
    return n


# ---- the applier ---------------------------------------------------------------------------


class ServiceApplier:
    def __init__(self, rendered_dir: str | Path | None, paths: ServicePaths | None = None):
        self.rendered_dir = Path(rendered_dir) if rendered_dir else None
        self.last_reload: dict[str, dict] = {}
        self._sync: LeaseSync | None = None
        self._cfg: RouterConfig | None = None
        self.journal = Journal()  # what the running transaction changed (begin/undo/end)
        self.warnings: list[str] = []  # services kept on their previous config by a tolerant apply
        self.last_good: dict[str, str] = {}  # the last config text applied per service
        self._expected: tuple[RouterConfig, dict[str, str | None]] | None = None
        self._seen: dict[str, tuple] = {}  # service -> stat of its file when last known good
        self.fault = None  # fault injection for tests: called with a stage name (see the pipeline)
        self._before: tuple | None = None  # (_cfg, last_good) when the transaction began
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

    # -- host-side views of the daemons' paths ---------------------------------------------

    def host_run(self, svc: str) -> Path:
        """RUN/<svc> as the agent sees it (Kea's two servers share run/kea on Talos)."""
        if isinstance(self.paths, PodPaths) and svc.startswith("kea"):
            return self.run_dir / "kea"
        return self.run_dir / svc

    def host_path(self, daemon_path: str) -> Path:
        """Map a path the daemon sees to the agent's view."""
        if not isinstance(self.paths, PodPaths):
            return Path(daemon_path)
        for pod, host in (("/etc/talgate", self.rendered_dir), ("/var/lib/kea", self.state_dir / "kea"),
                          ("/var/lib/chrony", self.state_dir / "chrony"), ("/run", self.run_dir)):
            if daemon_path == pod or daemon_path.startswith(pod + "/"):
                return Path(str(host) + daemon_path[len(pod):])
        return Path(daemon_path)

    @property
    def lease_dir(self) -> Path | None:
        return None if self.rendered_dir is None else self.state_dir / "kea"

    def _dirs(self) -> None:
        for svc in SERVICES:
            self.host_run(svc).mkdir(parents=True, exist_ok=True)
        os.chmod(self.host_run("chrony"), 0o750)  # chronyd refuses a command socket dir others can read
        for d in ("kea", "chrony", "ca"):
            (self.state_dir / d).mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir / "ca", 0o700)

    # -- rendering ---------------------------------------------------------------------------

    def blocklists(self, cfg: RouterConfig, files: bool = True) -> tuple[dict[str, str], list[Problem]]:
        """{name: text} of the enabled blocklists. files=False (requests on the read-only socket)
        reads none and says so in a warning per list: the agent never opens a path for them."""
        texts, problems = {}, []
        if cfg.dns is None:
            return texts, problems
        for i, b in enumerate(cfg.dns.blocklists):
            if not b.enabled:
                continue
            if not files:
                problems.append(Problem(f"dns.blocklists[{i}].file", "not read on the read-only socket "
                                        "(checked when committed)", "warning"))
                continue
            try:
                texts[b.name] = read_bounded_file(b.file, MAX_BLOCKLIST_BYTES)
            except (OSError, ValueError) as e:
                why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
                problems.append(Problem(f"dns.blocklists[{i}].file", f"cannot read {b.file}: {why}"))
        return texts, problems

    def render_all(self, cfg: RouterConfig, files: bool = True) -> tuple[dict[str, str | None], list[Problem]]:
        """{service: config text or None when off}, problems (unreadable blocklists)."""
        assert self.paths is not None
        texts, problems = self.blocklists(cfg, files)
        out = {
            "kea-dhcp4": r_kea.render_dhcp4(cfg, self.paths),
            "kea-dhcp6": r_kea.render_dhcp6(cfg, self.paths),
            "unbound": r_unbound.render_unbound(cfg, self.paths, texts),
            "radvd": r_radvd.render_radvd(cfg),
            "chrony": r_chrony.render_chrony(cfg, self.paths),
            "avahi": r_avahi.render_avahi(cfg),
        }
        return out, problems

    # -- check -------------------------------------------------------------------------------

    def check(self, cfg: RouterConfig, files: bool = True) -> list[Problem]:
        """Problems the daemons' own checkers find in the rendered configs (errors refuse the commit).
        files=False: no file named in the document is opened (the read-only socket)."""
        if self.rendered_dir is None:
            return []
        out, problems = self.render_all(cfg, files)
        if any(p.severity == "error" for p in problems):
            return problems
        self._dirs()
        tmp = Path(tempfile.mkdtemp(prefix=".check-", dir=self.rendered_dir.parent))
        try:
            for svc, text in out.items():
                if text is None:
                    continue
                f = tmp / SERVICES[svc][0]
                f.write_text(text)
                err = self._checker(svc, f)
                if err:
                    problems.append(Problem(SERVICES[svc][1], f"{svc} refuses the rendered config: {err}"))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return problems

    def _checker(self, svc: str, f: Path) -> str | None:
        """None when the daemon's checker accepts f (or is not installed here)."""
        if svc == "avahi":
            try:
                configparser.ConfigParser(strict=True).read_string(f.read_text())
                return None
            except configparser.Error as e:
                return str(e)
        cmd = {
            "kea-dhcp4": ["kea-dhcp4", "-t", str(f)],
            "kea-dhcp6": ["kea-dhcp6", "-t", str(f)],
            "unbound": ["unbound-checkconf", str(f)],
            "radvd": ["radvd", "-c", "-C", str(f)],
            "chrony": ["chronyd", "-p", "-f", str(f)],
        }[svc]
        if shutil.which(cmd[0]) is None:
            return None
        env = dict(os.environ)
        if svc.startswith("kea"):
            env["KEA_PIDFILE_DIR"] = env["KEA_LOCKFILE_DIR"] = str(f.parent)
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=env)
        except subprocess.TimeoutExpired:
            return f"{cmd[0]} did not answer within 30 s"
        if r.returncode == 0:
            return None
        lines = [ln for ln in (r.stderr + r.stdout).splitlines() if ln.strip()]
        errs = [ln for ln in lines if "ERROR" in ln or "error" in ln.lower() or "fatal" in ln.lower()]
        return (errs or lines or [f"exit status {r.returncode}"])[-1].strip()

    # -- apply -------------------------------------------------------------------------------

    def begin(self) -> None:
        """Start a transaction: undo() puts back everything apply() changes from here on."""
        self.journal = Journal()
        self.warnings = []
        self._before = (self._cfg, dict(self.last_good))

    def end(self) -> None:
        """The transaction landed: forget how to undo it."""
        self.journal = Journal()

    def undo(self) -> list[str]:
        """Put every file the transaction changed back byte for byte (configs, generations, NTS
        key/certificate) and reload the daemons that had been reloaded; returns what failed."""
        j, self.journal = self.journal, Journal()
        if self._before is not None:
            self._cfg, self.last_good = self._before[0], dict(self._before[1])
        errors = []
        for path, (svc, data, mode) in reversed(list(j.saved.items())):
            try:
                if data is None:
                    if os.path.isfile(path) or os.path.islink(path):
                        path.unlink()
                elif _read_bytes(path) != data:
                    _write_atomic(path, data, mode)
            except OSError as e:
                errors.append(f"{svc}: cannot restore {path}: {e.strerror or e}")
        for svc in j.reloaded:
            try:
                self._reload(svc)
            except (OSError, ServiceError) as e:
                errors.append(f"{svc}: reload of the restored config failed: {e}")
        self._expected = None
        self._seen.clear()
        return errors

    def apply(self, cfg: RouterConfig, tolerant: bool = False) -> int:
        """Write changed configs and reload their daemons; returns the number of changes.

        Raises on the first failure (a file that cannot be written, the NTS certificate, a daemon
        refusing its reload); the caller undoes the transaction. With ``tolerant`` (the confirm
        timer's rollback) a service that fails is put back to its previous config and named in
        ``warnings`` instead, so the other appliers still go back to the previous revision."""
        if self.rendered_dir is None:
            return 0
        out, problems = self.render_all(cfg)
        if problems:
            # check() refuses such a commit; when HEAD's blocklist vanished later (or a rollback
            # targets a revision whose blocklist is gone), keep serving the last good config
            # rather than an empty blocklist.
            if "unbound" in self.last_good and out.get("unbound") is not None:
                out["unbound"] = self.last_good["unbound"]
            else:
                out.pop("unbound", None)
            self.warnings += [f"unbound: {p}; kept its last good config" for p in problems]
        self._dirs()
        changes = 0
        for svc, text in out.items():
            mark = len(self.journal.saved)
            try:
                changes += self._apply_one(cfg, svc, text)
            except Exception as e:  # noqa: BLE001 - any failure: the caller restores (or, tolerant, this service)
                if not tolerant:
                    raise ServiceError(f"{svc}: {e}") from e
                self._undo_service(svc, mark)
                self.warnings.append(f"{svc}: {e}; kept its previous config")
                out[svc] = _read(self.rendered_dir / svc / SERVICES[svc][0])
        self._cfg = cfg
        self._expected = (cfg, out)
        self._seen.clear()
        self._start_sync(cfg)
        return changes

    def _apply_one(self, cfg: RouterConfig, svc: str, text: str | None) -> int:
        name = SERVICES[svc][0]
        d = self.rendered_dir / svc
        path = d / name
        cur = _read(path)
        if text is None:
            if cur is None:
                return 0
            self._fault(f"{svc}.write")
            self.journal.remember(svc, path)
            path.unlink()
            bump_generation(d, self.journal, svc)
            self.last_good.pop(svc, None)
            return 1
        changed = cur != text
        if svc == "chrony" and self._nts_files(cfg):
            changed = True
        if not changed:
            self.last_good[svc] = text
            return 0
        self._fault(f"{svc}.write")
        self.journal.remember(svc, path)
        _write_atomic(path, text)
        bump_generation(d, self.journal, svc)
        self.journal.reloaded[svc] = None
        self._fault(f"{svc}.reload")
        self._reload(svc, strict=True)
        self.last_good[svc] = text
        return 1

    def _undo_service(self, svc: str, mark: int) -> None:
        """Put back the files of one service changed since journal entry ``mark`` (tolerant apply)."""
        keep = Journal()
        items = list(self.journal.saved.items())
        keep.saved = dict(items[:mark])
        keep.reloaded = {s: None for s in self.journal.reloaded if s != svc}
        undo = Journal()
        undo.saved = dict(items[mark:])
        undo.reloaded = {svc: None} if svc in self.journal.reloaded else {}
        self.journal, before, self._before = undo, self._before, None  # only the files
        self.undo()
        self.journal, self._before = keep, before

    def _fault(self, stage: str) -> None:
        if self.fault is not None:
            self.fault(stage)

    # -- drift -------------------------------------------------------------------------------

    def drift(self, cfg: RouterConfig) -> list[str]:
        """Rendered configs that differ from what cfg renders (changed, removed, or present for a
        service that is off), without changing anything. A file whose size, mtime and inode are as
        last seen is not read again."""
        if self.rendered_dir is None:
            return []
        if self._expected is not None and self._expected[0] is cfg:
            want = self._expected[1]
        else:
            want, problems = self.render_all(cfg)
            if problems:  # a vanished blocklist: the last good config is what should be there
                want["unbound"] = self.last_good.get("unbound", _read(self.rendered_dir / "unbound" / "unbound.conf"))
            self._expected = (cfg, want)
            self._seen.clear()
        items = []
        for svc, text in want.items():
            path = self.rendered_dir / svc / SERVICES[svc][0]
            try:
                st = os.stat(path)
                sig = (st.st_size, st.st_mtime_ns, st.st_ino)
            except OSError:
                sig = None
            if sig is not None and self._seen.get(svc) == sig:
                continue
            cur = _read(path)
            if text is None and cur is not None:
                items.append(f"service {svc}: {path.name} exists but the service is off")
            elif text is not None and cur is None:
                items.append(f"service {svc}: {path.name} is missing")
            elif cur != text:
                items.append(f"service {svc}: {path.name} was changed")
            elif sig is not None:
                self._seen[svc] = sig
        return items

    def _nts_files(self, cfg: RouterConfig) -> bool:
        """Issue the NTS server key/certificate from the box CA when needed; True when new."""
        if cfg.ntp is None or not cfg.ntp.enabled or not cfg.ntp.nts_server:
            return False
        key, crt = (self.host_path(p) for p in r_chrony.nts_files(self.paths))
        names = sorted({cfg.system.hostname} | ({f"{cfg.system.hostname}.{cfg.system.domain}"}
                                                 if cfg.system.domain else set()))
        # Clients that name the router by address (the DHCP/RA-announced NTP server) verify an IP SAN.
        names += sorted({str(a.ip) for i in zone_interfaces(cfg, ntp_zones(cfg))
                         for a in [*cfg.interfaces[i].ipv4, *cfg.interfaces[i].ipv6]})
        stamp = key.with_name("nts.names")
        if key.exists() and crt.exists() and _read(stamp) == " ".join(names):
            return False
        self._fault("chrony.cert")
        ca = self.state_dir / "ca"
        for f in (key, crt, stamp, ca / "ca.key", ca / "ca.crt", ca / "ca.srl"):
            self.journal.remember("chrony", f)
        issue_nts_cert(ca, key, crt, names, cfg.system.hostname)
        _write_atomic(stamp, " ".join(names))
        return True

    def _reload(self, svc: str, strict: bool = False) -> None:
        """Tell a daemon to re-read its config. A daemon that is not running reads it when it
        starts; with ``strict``, one that answers with an error raises ServiceError."""
        res: dict = {"time": time.time()}
        try:
            if svc.startswith("kea"):
                v = 4 if svc == "kea-dhcp4" else 6
                sock = self.host_path(r_kea.control_socket(self.paths, v))
                if not sock.exists():
                    res.update(ok=None, detail="not running; it reads the new config when it starts")
                else:
                    resp = kea_command(str(sock), "config-reload")
                    res.update(ok=resp.get("result") == 0, detail=resp.get("text"))
            elif svc == "unbound":
                sock = self.host_path(r_unbound.control_socket(self.paths))
                if not sock.exists():
                    res.update(ok=None, detail="not running; it reads the new config when it starts")
                else:
                    txt = unbound_control(str(sock), "reload", timeout=15)
                    res.update(ok=txt.strip().startswith("ok"), detail=txt.strip()[:200])
                    if self._sync:
                        self._sync.pushed.clear()
            else:
                res.update(ok=None, detail="reloaded by its runner on .generation")
        except (ConnectionRefusedError, FileNotFoundError) as e:
            # A socket left by a daemon that died: its runner restarts it with the new file.
            res.update(ok=None, detail=f"not answering ({e.strerror}); it reads the new config when it starts")
        except OSError as e:
            res.update(ok=False, detail=f"control socket: {e}")
        self.last_reload[svc] = res
        if strict and res["ok"] is False:
            raise ServiceError(f"the daemon refused the reload: {res['detail']}")

    # -- live lease names ------------------------------------------------------------------

    def _start_sync(self, cfg: RouterConfig) -> None:
        want = (cfg.dns is not None and cfg.dns.enabled and cfg.dns.lease_names and bool(dhcp_interfaces(cfg, 4)
                                                                                         or dhcp_interfaces(cfg, 6)))
        if want and self._sync is None:
            self._sync = LeaseSync(self)
            self._sync.start()
        if self._sync is not None:
            self._sync.wake()

    def subnet_interfaces(self, cfg: RouterConfig | None = None) -> dict[int, str]:
        cfg = cfg or self._cfg
        out: dict[int, str] = {}
        if cfg is None:
            return out
        for ifname, itf in cfg.interfaces.items():
            for a in [*itf.ipv4, *itf.ipv6]:
                out[r_kea.subnet_id(ifname, str(a.network))] = ifname
        return out

    def leases(self) -> list[dict]:
        from ..observe.leases import read_leases

        if self.lease_dir is None:
            return []
        return read_leases(self.lease_dir, self.subnet_interfaces())

    # -- status ------------------------------------------------------------------------------

    def status(self) -> dict:
        if self.rendered_dir is None:
            return {}
        sup = {}
        try:
            sup = json.loads((self.run_dir / "supervisor.json").read_text()).get("services", {})
        except (OSError, ValueError):
            pass
        out = {}
        for svc, (name, _section) in SERVICES.items():
            d = self.rendered_dir / svc
            configured = (d / name).exists()
            gen = _read(d / ".generation")
            st: dict = {"configured": configured, "generation": int(gen) if gen and gen.strip().isdigit() else 0}
            s = sup.get(svc)
            if s:
                st.update(state=s.get("state"), pid=s.get("pid"), restarts=s.get("restarts", 0))
            else:
                st["state"] = "off" if not configured else self._probe(svc)
            if svc in self.last_reload:
                st["last_reload"] = self.last_reload[svc]
            if svc == "unbound" and self._sync is not None:
                st["lease_names"] = len(self._sync.pushed)
            out[svc] = st
        return out

    def _probe(self, svc: str) -> str:
        """Without a supervisor (Kubernetes): is the control socket answering?"""
        try:
            if svc.startswith("kea"):
                v = 4 if svc == "kea-dhcp4" else 6
                r = kea_command(str(self.host_path(r_kea.control_socket(self.paths, v))), "version-get", timeout=1)
                return "running" if r.get("result") == 0 else "unknown"
            if svc == "unbound":
                txt = unbound_control(str(self.host_path(r_unbound.control_socket(self.paths))), "status", timeout=1)
                return "running" if "is running" in txt else "unknown"
        except OSError:
            return "not answering"
        return "configured"


class LeaseSync(threading.Thread):
    """Publishes live lease names in Unbound's LAN zone through its control socket."""

    def __init__(self, applier: ServiceApplier, interval: float = 1.0):
        super().__init__(daemon=True, name="lease-names")
        self.a = applier
        self.interval = interval
        self.pushed: set[str] = set()
        self._wake = threading.Event()

    def wake(self) -> None:
        self.pushed.clear()
        self._wake.set()

    def run(self) -> None:  # pragma: no cover - exercised by the lab tests
        while True:
            try:
                self.sync()
            except Exception:  # noqa: BLE001 - keep syncing
                pass
            self._wake.wait(self.interval)
            self._wake.clear()

    def desired(self) -> set[str]:
        cfg = self.a._cfg
        if cfg is None or cfg.dns is None or not cfg.dns.enabled or not cfg.dns.lease_names:
            return set()
        leases = [r_unbound.LeaseName(x["hostname"], x["address"], x.get("interface")) for x in self.a.leases()
                  if x["hostname"] and x.get("type", "address") == "address"]
        static = set(r_unbound.host_records(cfg, []))
        rrs = set()
        for fqdn, addr in r_unbound.host_records(cfg, leases):
            if (fqdn, addr) not in static:
                rrs.update(r_unbound.record_lines(fqdn, addr, ttl=60))
        return rrs

    def sync(self) -> None:
        sock = self.a.host_path(r_unbound.control_socket(self.a.paths))
        if not sock.exists():
            self.pushed.clear()
            return
        want = self.desired()
        have = unbound_control(str(sock), "list_local_data", timeout=5)
        present = {" ".join(line.split()) for line in have.splitlines()}
        missing = [rr for rr in want if " ".join(rr.split()) not in present]
        stale = self.pushed - want
        for rr in stale:
            name = rr.split()[0]
            if not any(w.split()[0] == name for w in want):
                unbound_control(str(sock), f"local_data_remove {name}")
        for rr in missing:
            unbound_control(str(sock), f"local_data {rr}")
        self.pushed = want


def issue_nts_cert(ca_dir: Path, key: Path, crt: Path, names: list[str], cn: str) -> None:
    """A server key + certificate for NTS-KE, signed by the box CA (created on first use)."""
    if shutil.which("openssl") is None:
        raise ServiceError("openssl is needed to issue the NTS certificate")
    ca_dir.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = ca_dir / "ca.key", ca_dir / "ca.crt"

    def run(*args):
        r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise ServiceError(f"openssl {args[0]}: {r.stderr.strip()[-300:]}")

    if not (ca_key.exists() and ca_crt.exists()):
        run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(ca_key), "-out", str(ca_crt), "-days", "3650", "-subj", f"/CN=talgate CA {cn}",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        os.chmod(ca_key, 0o600)
    key.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ca_dir) as t:
        csr, ext = Path(t) / "nts.csr", Path(t) / "ext.cnf"
        san = ",".join(f"IP:{n}" if ":" in n or n.replace(".", "").isdigit() else f"DNS:{n}" for n in names)
        ext.write_text(f"subjectAltName={san}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key),
            "-out", str(csr), "-subj", f"/CN={names[0]}")
        run("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
            "-out", str(crt), "-days", "825", "-extfile", str(ext))
    os.chmod(key, 0o600)
