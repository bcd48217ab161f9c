"""The uplink manager: runs and supervises a DHCP/DHCPv6 client per WAN and turns what it learns
into runtime facts (``Pipeline.set_facts``), so addresses, default routes, delegated prefixes and
everything rendered from them follow the ISP without a commit (HEAD does not move; the change is
audited as ``fact-change``).

The client is ISC ``dhclient`` (Debian's isc-dhcp-client): ``dhclient -4`` for ``ipv4: dhcp`` and
one ``dhclient -6 [-N] [-P --prefix-len-hint L]`` for DHCPv6 addresses and prefix delegation. It
is a real, widely deployed client that does the protocol (solicit/request/renew/rebind, lease
file, DUID) and leaves every change of the box to a script: its ``-sf`` hook only writes the
answers into a spool folder; the agent checks and bounds them (``uplink_lease.parse``) and
installs them through the same pipeline/applier path as a commit. The address, gateway and
prefix are installed only by the appliers, never by the client. Each client runs in the
foreground as the agent's child: one that exits is started again (1 s back-off, doubling up to
30 s) and the restart is an event.

SLAAC (``ipv6: {slaac: true}``): the network applier sets ``accept_ra=2`` on the WAN; the kernel
learns the address and the default route; they are read back here for ``talgate status``.

Facts produced (per WAN): ``addresses`` (DHCPv4 address, DHCPv6 IA_NA /128), ``gateways``
(DHCPv4 router), ``delegated`` (IA_PD prefixes), ``deprecated`` (the prefixes a delegation
replaced, advertised on the LANs with preferred lifetime 0 for :data:`DEPRECATE_SECONDS`) and
``uplinks`` (what status shows: addresses, gateways, DNS, domains, lease expiry, clients, events).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

from ..model.load import validate_text
from ..model.uplink import resolve
from .uplink_lease import MAX_REPORT, Update, hook_text, parse

log = logging.getLogger("talgate.uplink")

POLL = 0.2                # seconds between looks at the spool and the clients
MAX_REPORTS = 64          # reports handled per poll (a flood waits for the next one)
MAX_PREFIXES = 4          # delegated prefixes kept per WAN
MAX_ADDRS = 4             # DHCPv6 addresses kept per WAN
DEPRECATE_SECONDS = 600   # a replaced prefix stays advertised (deprecated) this long at most
BACKOFF = (1.0, 30.0)     # restart back-off of a client that exited
EVENTS = 50               # events kept per WAN

CLIENT_CONF = """# rendered by talgate (uplink manager); do not edit
request subnet-mask, broadcast-address, routers, domain-name, domain-name-servers, domain-search,
        dhcp6.name-servers, dhcp6.domain-search;
timeout 30;
retry 10;
initial-interval 1;
"""


@dataclasses.dataclass
class Client:
    link: str
    family: int
    argv: list[str]
    proc: subprocess.Popen | None = None
    restarts: int = 0
    next_start: float = 0.0
    backoff: float = BACKOFF[0]
    started: float = 0.0
    last_exit: int | None = None

    def status(self) -> dict:
        alive = self.proc is not None and self.proc.poll() is None
        return {"family": self.family, "pid": self.proc.pid if alive else None, "running": alive,
                "restarts": self.restarts, "last_exit": self.last_exit}


@dataclasses.dataclass
class Learned:
    v4: Update | None = None
    v6_addrs: dict[str, Update] = dataclasses.field(default_factory=dict)
    prefixes: dict[str, Update] = dataclasses.field(default_factory=dict)
    deprecated: dict[str, float] = dataclasses.field(default_factory=dict)   # prefix -> until
    v6_dns: list[str] = dataclasses.field(default_factory=list)
    v6_domains: list[str] = dataclasses.field(default_factory=list)
    slaac: dict = dataclasses.field(default_factory=dict)
    events: deque = dataclasses.field(default_factory=lambda: deque(maxlen=EVENTS))
    seen: dict[str, float] = dataclasses.field(default_factory=dict)  # message -> last time (dedupe)


class Uplinks:
    def __init__(self, pipeline, state_dir: str | os.PathLike, dhclient: str = "dhclient",
                 python: str = sys.executable, deprecate_seconds: float = DEPRECATE_SECONDS):
        self.p = pipeline
        self.dir = Path(state_dir) / "uplink"
        self.spool = self.dir / "spool"
        self.spool.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        self.dhclient = dhclient
        self.python = python
        self.deprecate_seconds = deprecate_seconds
        self.clients: dict[tuple[str, int], Client] = {}
        self.learned: dict[str, Learned] = {}
        self.cfg = None
        self._rev = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_slaac = 0.0
        self._published = {"addresses": {}, "gateways": {}, "delegated": {}, "deprecated": {}, "lifetimes": {}}
        self.problems: dict[str, list[str]] = {}
        self._kill_stale()

    # -- what was learned, across agent restarts --------------------------------------------

    def _save(self) -> None:
        data = {link: {"v4": dataclasses.asdict(ln.v4) if ln.v4 else None,
                       "v6_addrs": [dataclasses.asdict(u) for u in ln.v6_addrs.values()],
                       "prefixes": [dataclasses.asdict(u) for u in ln.prefixes.values()],
                       "deprecated": ln.deprecated, "v6_dns": ln.v6_dns, "v6_domains": ln.v6_domains}
                for link, ln in self.learned.items()}
        try:
            tmp = self.dir / ".learned.json.tmp"
            tmp.write_text(json.dumps(data))
            os.replace(tmp, self.dir / "learned.json")
        except OSError as e:
            log.warning("uplink: cannot save what was learned: %s", e)

    def restore(self, now: float | None = None) -> None:
        """Leases still valid from before a restart become facts again at once (set, not applied:
        the start-up apply converges to them), so a restarting agent does not drop the WAN address
        or the LAN's delegated addresses while its clients rebind."""
        now = time.time() if now is None else now
        try:
            data = json.loads((self.dir / "learned.json").read_text())
            for link, d in data.items():
                ln = self.learned.setdefault(str(link)[:16], Learned())
                ln.v4 = Update(**d["v4"]) if d.get("v4") else None
                ln.v6_addrs = {u["address"]: Update(**u) for u in d.get("v6_addrs", [])[:MAX_ADDRS]}
                ln.prefixes = {u["prefix"]: Update(**u) for u in d.get("prefixes", [])[:MAX_PREFIXES]}
                ln.deprecated = {str(k): float(v) for k, v in list(d.get("deprecated", {}).items())[:MAX_PREFIXES]}
                ln.v6_dns, ln.v6_domains = list(d.get("v6_dns", []))[:8], list(d.get("v6_domains", []))[:6]
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            self.learned.clear()
            return
        self._follow_config()
        self._expire(now)
        new = self.facts_of(now)
        kernel = {k: new[k] for k in ("addresses", "gateways", "delegated", "deprecated", "lifetimes")}
        with self.p.lock:
            self.p.facts = dataclasses.replace(self.p.facts, **kernel, uplinks=new["uplinks"])
        self._published = kernel

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Uplinks:
        self._thread = threading.Thread(target=self._run, daemon=True, name="uplinks")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        for c in list(self.clients.values()):
            self._terminate(c)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the manager must keep running whatever one round did
                log.exception("uplink manager round failed")
            self._stop.wait(POLL)

    def tick(self, now: float | None = None) -> bool:
        """One round: follow the config, supervise the clients, read reports, expire leases,
        publish facts when they changed. Returns whether facts were published."""
        now = time.time() if now is None else now
        self._follow_config()
        self._supervise()
        self._read_reports(now)
        self._expire(now)
        if time.monotonic() - self._last_slaac > 1.0:
            self._last_slaac = time.monotonic()
            self._observe_slaac()
        return self._publish(now)

    # -- config -------------------------------------------------------------------------------

    def _follow_config(self) -> None:
        rev = self.p.applied.rev
        if rev == self._rev:
            return
        self._rev = rev
        cfg = validate_text(self.p.repo.read(rev))[0] if rev else None
        self.cfg = cfg
        want: dict[tuple[str, int], list[str]] = {}
        if cfg is not None:
            for name, itf in cfg.interfaces.items():
                if not itf.enabled:
                    continue
                if itf.dhcp4:
                    want[(name, 4)] = self._argv(name, 4, None)
                auto = itf.v6auto
                if auto is not None and (auto.dhcpv6 or auto.prefix_delegation):
                    want[(name, 6)] = self._argv(name, 6, auto)
        for key, c in list(self.clients.items()):
            if want.get(key) != c.argv:
                self._terminate(c)
                del self.clients[key]
                self._forget(*key)
        for key, argv in want.items():
            if key not in self.clients:
                self.clients[key] = Client(key[0], key[1], argv)
        for name in list(self.learned):
            if cfg is None or name not in cfg.interfaces:
                self.learned.pop(name, None)

    def _argv(self, link: str, family: int, auto) -> list[str]:
        hook = self.dir / f"hook{family}"
        text = hook_text(self.python, str(self.spool), family)
        if not hook.exists() or hook.read_text() != text:
            tmp = hook.with_name(f".{hook.name}.tmp")
            tmp.write_text(text)
            os.chmod(tmp, 0o700)
            os.replace(tmp, hook)
        conf = self.dir / "dhclient.conf"
        if not conf.exists() or conf.read_text() != CLIENT_CONF:
            conf.write_text(CLIENT_CONF)
        argv = [self.dhclient, f"-{family}", "-d", "-cf", str(conf), "-sf", str(hook),
                "-lf", str(self.dir / f"dhclient{family}-{link}.leases"),
                "-pf", str(self.dir / f"dhclient{family}-{link}.pid")]
        if family == 6:
            if auto.dhcpv6:
                argv.append("-N")
            if auto.prefix_delegation:
                argv += ["-P", "--prefix-len-hint", str(auto.prefix_delegation.length)]
        return [*argv, link]

    # -- clients ------------------------------------------------------------------------------

    def _kill_stale(self) -> None:
        """A client of a previous agent (its pid file in our folder) is stopped first."""
        for pf in self.dir.glob("dhclient*.pid"):
            try:
                pid = int(pf.read_text().strip())
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                if b"dhclient" in cmd and str(self.dir).encode() in cmd:
                    os.kill(pid, signal.SIGTERM)
            except (OSError, ValueError):
                pass
            pf.unlink(missing_ok=True)

    def _supervise(self) -> None:
        now = time.monotonic()
        for c in self.clients.values():
            if c.proc is not None and c.proc.poll() is not None:
                c.last_exit = c.proc.returncode
                c.proc = None
                c.restarts += 1
                c.next_start = now + c.backoff
                self._event(c.link, "warning", f"dhclient -{c.family} on {c.link} exited ({c.last_exit}); "
                                               f"restarting in {c.backoff:.0f} s")
                self._audit("uplink-client-restart", link=c.link, family=c.family, exit=c.last_exit,
                            restarts=c.restarts)
                c.backoff = min(BACKOFF[1], c.backoff * 2)
            if c.proc is None and now >= c.next_start:
                self._launch(c)
            elif c.proc is not None and now - c.started > 60:
                c.backoff = BACKOFF[0]  # ran for a minute: the next failure starts from 1 s again

    def _launch(self, c: Client) -> None:
        logf_path = self.dir / f"dhclient{c.family}-{c.link}.log"
        try:
            if logf_path.exists() and logf_path.stat().st_size > 1 << 20:
                logf_path.unlink()
            with open(logf_path, "ab") as logf:
                c.proc = subprocess.Popen(c.argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          start_new_session=True, cwd=str(self.dir))
            c.started = time.monotonic()
        except OSError as e:
            c.proc = None
            c.next_start = time.monotonic() + c.backoff
            c.backoff = min(BACKOFF[1], c.backoff * 2)
            self._event(c.link, "error", f"cannot start {c.argv[0]} -{c.family} on {c.link}: {e.strerror or e}")

    def _terminate(self, c: Client) -> None:
        if c.proc is None or c.proc.poll() is not None:
            return
        try:
            os.killpg(c.proc.pid, signal.SIGTERM)
            c.proc.wait(3)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(c.proc.pid, signal.SIGKILL)
                c.proc.wait(3)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass

    # -- reports ------------------------------------------------------------------------------

    def _own_networks(self, link: str) -> list:
        """[(interface, network)] the router uses on other links: a lease overlapping one is refused."""
        out = []
        cfg = self.cfg
        if cfg is None:
            return out
        for name, itf in cfg.interfaces.items():
            if name != link:
                out += [(name, a.network) for a in [*itf.ipv4, *itf.ipv6]]
        for name, ln in self.learned.items():
            if name != link:
                if ln.v4:
                    out.append((name, ipaddress.ip_interface(ln.v4.address).network))
                out += [(name, ipaddress.ip_network(p)) for p in ln.prefixes]
        return out

    def _read_reports(self, now: float) -> None:
        try:
            names = sorted(f for f in os.listdir(self.spool) if f.endswith(".json"))[:MAX_REPORTS]
        except OSError:
            return
        for n in names:
            f = self.spool / n
            try:
                fd = os.open(f, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                with os.fdopen(fd, "rb") as fh:
                    data = fh.read(MAX_REPORT + 1)
                rep = json.loads(data) if len(data) <= MAX_REPORT else None
            except (OSError, ValueError):
                rep = None
            finally:
                try:
                    f.unlink()
                except OSError:
                    pass
            if not isinstance(rep, dict) or not isinstance(rep.get("env"), dict) or rep.get("family") not in (4, 6):
                log.warning("uplink: unreadable client report %s dropped", n)
                continue
            self.handle(rep["env"], rep["family"], now)

    def handle(self, env: dict, family: int, now: float) -> None:
        """One client report (the hook's environment): check it and update what is learned."""
        link = str(env.get("interface", ""))[:16]
        if (link, family) not in self.clients and not (self.cfg and link in self.cfg.interfaces):
            return
        upd, msgs = parse(env, link, family, self._own_networks(link), now)
        for m in msgs:
            self._event(link, "warning", m)
        if upd is None:
            return
        self._apply_update(link, upd, now)
        self._save()

    def _apply_update(self, link: str, upd: Update, now: float) -> None:
        ln = self.learned.setdefault(link, Learned())
        if upd.kind == "v4":
            ln.v4 = upd
        elif upd.kind == "v4-gone":
            ln.v4 = None
        elif upd.kind == "v6-addr":
            if upd.address in ln.v6_addrs or len(ln.v6_addrs) < MAX_ADDRS:
                ln.v6_addrs[upd.address] = upd
            ln.v6_dns, ln.v6_domains = upd.dns or ln.v6_dns, upd.domains or ln.v6_domains
        elif upd.kind == "v6-prefix":
            if upd.prefix not in ln.prefixes and len(ln.prefixes) >= MAX_PREFIXES:
                self._event(link, "warning", f"delegated prefix {upd.prefix} ignored: {MAX_PREFIXES} already held")
                return
            if upd.prefix not in ln.prefixes:
                self._event(link, "info", f"delegated prefix {upd.prefix} learned")
            ln.prefixes[upd.prefix] = upd
            ln.deprecated.pop(upd.prefix, None)
            ln.v6_dns, ln.v6_domains = upd.dns or ln.v6_dns, upd.domains or ln.v6_domains
        elif upd.kind == "v6-gone":
            if upd.prefix and ln.prefixes.pop(upd.prefix, None) is not None:
                ln.deprecated[upd.prefix] = now + self.deprecate_seconds
                self._event(link, "info", f"delegated prefix {upd.prefix} withdrawn: deprecated on the LANs")
            if upd.address:
                ln.v6_addrs.pop(upd.address, None)

    def _expire(self, now: float) -> None:
        for link, ln in self.learned.items():
            if ln.v4 is not None and ln.v4.expires is not None and ln.v4.expires <= now:
                self._event(link, "warning", f"DHCPv4 lease {ln.v4.address} expired")
                ln.v4 = None
            for a, u in list(ln.v6_addrs.items()):
                if u.expires <= now:
                    del ln.v6_addrs[a]
                    self._event(link, "warning", f"DHCPv6 address {a} expired")
            for p, u in list(ln.prefixes.items()):
                if u.expires <= now:
                    del ln.prefixes[p]
                    ln.deprecated[p] = now + self.deprecate_seconds  # hosts told to stop using it
                    self._event(link, "warning", f"delegated prefix {p} expired: deprecated on the LANs")
            for p, until in list(ln.deprecated.items()):
                if until <= now:
                    del ln.deprecated[p]

    def _forget(self, link: str, family: int) -> None:
        ln = self.learned.get(link)
        if ln is None:
            return
        if family == 4:
            ln.v4 = None
        else:
            ln.v6_addrs.clear()
            ln.prefixes.clear()
            ln.deprecated.clear()

    def _observe_slaac(self) -> None:
        """SLAAC addresses and RA default routes the kernel learned on WANs with ipv6: {...}."""
        cfg = self.cfg
        links = [n for n, itf in cfg.interfaces.items() if itf.v6auto is not None] if cfg else []
        if not links:
            return
        try:
            from pyroute2 import IPRoute

            with IPRoute() as ipr:
                for name in links:
                    idx = ipr.link_lookup(ifname=name)
                    if not idx:
                        continue
                    addrs = sorted(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}"
                                   for a in ipr.get_addr(family=10, index=idx[0])
                                   if a["scope"] == 0 and not (a.get_attr("IFA_FLAGS") or a["flags"]) & 0x80)
                    gws = sorted({r.get_attr("RTA_GATEWAY") for r in ipr.get_routes(family=10, oif=idx[0])
                                  if r["dst_len"] == 0 and r["proto"] == 9 and r.get_attr("RTA_GATEWAY")})
                    self.learned.setdefault(name, Learned()).slaac = {"addresses": addrs[:8], "gateways": gws[:4]}
        except Exception as e:  # noqa: BLE001 - status only
            log.debug("uplink: SLAAC observation failed: %s", e)

    # -- facts --------------------------------------------------------------------------------

    def _event(self, link: str, level: str, message: str) -> None:
        ln = self.learned.setdefault(link, Learned())
        now = time.time()
        if now - ln.seen.get(message, 0.0) < 60:
            return  # the same complaint at every renewal (or round): once a minute
        if len(ln.seen) > 4 * EVENTS:
            ln.seen = {m: t for m, t in ln.seen.items() if now - t < 60}
        ln.seen[message] = now
        ln.events.append({"time": round(now, 3), "level": level, "message": message[:300]})
        getattr(log, "warning" if level != "info" else "info")("uplink %s: %s", link, message[:300])

    def _audit(self, action: str, **detail) -> None:
        try:
            self.p.audit.record(action, {"user": "agent", "via": "uplink"}, **detail)
        except OSError:
            pass

    def facts_of(self, now: float) -> dict:
        addresses, gateways, delegated, deprecated, info, lifetimes = {}, {}, {}, {}, {}, {}
        for link, ln in self.learned.items():
            if ln.prefixes:
                delegated[link] = tuple(sorted(ln.prefixes))
            lifetimes.update({p: tuple(u.lifetimes) for p, u in ln.prefixes.items() if u.lifetimes})
        # delegated prefixes that cannot hold the configured subnet ids: said in status and events
        problems = resolve(self.cfg, delegated)[1] if self.cfg is not None else []
        for msg in problems:
            wan = next((w for w, ps in delegated.items() if any(p in msg for p in ps)), "?")
            self._event(wan, "error", f"not applied: {msg} (the ISP delegated less than the configured hint)")
        for link, ln in sorted(self.learned.items()):
            addrs = ([ln.v4.address] if ln.v4 else []) + sorted(ln.v6_addrs)
            if addrs:
                addresses[link] = tuple(addrs)
            if ln.v4 and ln.v4.gateway:
                gateways[link] = (ln.v4.gateway,)
            if ln.deprecated:
                deprecated[link] = tuple(sorted(ln.deprecated))
            info[link] = {
                "ipv4": None if ln.v4 is None else {
                    "address": ln.v4.address, "gateway": ln.v4.gateway, "dns": ln.v4.dns, "domains": ln.v4.domains,
                    "server": ln.v4.server, "expires": round(ln.v4.expires)},
                "ipv6": {"addresses": [{"address": a, "expires": round(u.expires)} for a, u in sorted(ln.v6_addrs.items())],
                         "delegated": [{"prefix": p, "expires": round(u.expires), "preferred": round(u.preferred)}
                                       for p, u in sorted(ln.prefixes.items())],
                         "deprecated": sorted(ln.deprecated), "dns": ln.v6_dns, "domains": ln.v6_domains,
                         "slaac": ln.slaac},
                "clients": [c.status() for (lk, _), c in sorted(self.clients.items()) if lk == link],
                "events": list(ln.events)[-10:],
                "problems": [m for m in problems if any(p in m for p in delegated.get(link, ()))],
            }
        return {"addresses": addresses, "gateways": gateways, "delegated": delegated,
                "deprecated": deprecated, "lifetimes": lifetimes, "uplinks": info}

    def _publish(self, now: float) -> bool:
        new = self.facts_of(now)
        kernel = {k: new[k] for k in ("addresses", "gateways", "delegated", "deprecated", "lifetimes")}
        cur = self.p.facts
        changed = kernel != self._published
        facts = dataclasses.replace(cur, **{k: v for k, v in kernel.items()}, uplinks=new["uplinks"])
        if not changed:
            if _plain(cur.uplinks) != _plain(facts.uplinks):
                with self.p.lock:
                    self.p.facts = dataclasses.replace(self.p.facts, uplinks=new["uplinks"])
            return False
        t0 = time.monotonic()
        try:
            result = self.p.set_facts(facts)
        except Exception as e:  # noqa: BLE001 - refused or failed: the previous state stays, said why
            with self.p.lock:
                self.p.facts = cur  # the pipeline put the kernel back to cur; the drift loop must agree
            self._published = kernel  # do not retry the same facts every 0.2 s; the next change retries
            for link in new["uplinks"] or ["?"]:
                self._event(link, "error", f"learned facts not applied: {e}")
            return False
        self._published = kernel
        self._save()
        self._audit("fact-change", rev=self.p.repo.head(), seconds=round(time.monotonic() - t0, 3),
                    changes=(result or {}).get("changes"), **kernel)
        log.info("uplink facts applied: %s", json.dumps(kernel))
        return True


def _plain(m) -> dict:
    return json.loads(json.dumps(dict(m), default=list))
