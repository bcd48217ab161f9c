"""A fake agent with a fixed state, for snapshot tests, screenshots and benchmarks (no sockets, no kernel).

It answers the same calls as ``ObserveClient``; validation and rendering use the real pure model and
renderer, so forms show the same problems the real agent would.
"""

from __future__ import annotations

import difflib
import hashlib
import math

from backend.client import AgentError

# The fixed document the snapshots show: the lab example as of issue 3, copied so that later edits
# to backend/lab/example.yaml do not move the console's snapshots.
FIXTURE = """\
# talgate lab example — the router of `talgate lab up`.
# Edit this file in the config repo's working tree, then `talgate diff` and `talgate commit -m MSG`.
version: 1
system:
  hostname: gw
  domain: lan.example
  management_interface: mgmt0

interfaces:
  wan0:
    description: uplink to the isp
    ipv4: [198.51.100.2/24]
    ipv6: [2001:db8:100::2/64]
  lan0:
    ipv4: [192.168.10.1/24]
    ipv6: [2001:db8:10:10::1/64]
  guest0:
    ipv4: [192.168.20.1/24]
    ipv6: [2001:db8:10:20::1/64]
  mgmt0:
    ipv4: [192.168.99.1/24]
    ipv6: [2001:db8:10:99::1/64]

zones:
  wan:   {interfaces: [wan0], input: drop, forward: drop}
  lan:   {interfaces: [lan0], input: drop, forward: drop}
  guest: {interfaces: [guest0], input: drop, forward: drop}
  mgmt:  {interfaces: [mgmt0], input: drop, forward: drop}

# Zone to zone defaults. Anything not listed falls back to the source zone's `forward`.
policies:
  - {from: lan, to: wan, action: accept}
  - {from: guest, to: wan, action: accept}
  - {from: mgmt, to: wan, action: accept}
  - {from: mgmt, to: lan, action: accept}
  - {from: guest, to: lan, action: drop}
  - {from: guest, to: mgmt, action: drop}

rules:
  - {name: ssh-from-mgmt, from: mgmt, to: self, proto: tcp, dport: 22, action: accept}
  - name: ping-router
    from: [wan, lan, guest, mgmt]
    to: self
    proto: icmp
    icmp_types: [echo-request]
    action: accept

nat:
  masquerade:
    - {out: wan}            # IPv4 only; IPv6 is routed (2001:db8:10::/56 is ours)
  forwards:
    - {name: web, in: wan, proto: tcp, dport: 8443, to: "192.168.10.10:443"}

routes:
  - {name: default-v4, to: 0.0.0.0/0, via: 198.51.100.1}
  - {name: default-v6, to: "::/0", via: "2001:db8:100::1"}
"""


# DHCP for the leases screen (FakeAgent(dhcp=True)): lan0 serves v4 and v6, guest0 v4; one reservation.
DHCP_SECTION = """
dhcp:
  lan0:
    ipv4: {pools: [192.168.10.100-192.168.10.199]}
    ipv6: {pools: ["2001:db8:10:10::1000-2001:db8:10:10::1fff"]}
    reservations:
      - {name: printer, mac: "02:00:00:00:10:50", ipv4: 192.168.10.50}
  guest0:
    ipv4: {pools: [192.168.20.100-192.168.20.199]}
"""


def example_config() -> str:
    return FIXTURE


T0 = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC: fixed so snapshots do not move
NOW = T0 + 300.0  # the console's clock in snapshots and tests (Store.clock)


def fixed_clock() -> float:
    return NOW


def fake_leases() -> list[dict]:
    """Deterministic Kea leases (expiry relative to NOW)."""
    v4 = [("192.168.10.50", "printer", "02:00:00:00:10:50", "lan0", 3000),
          ("192.168.10.101", "laptop", "02:00:00:00:10:65", "lan0", 3540),
          ("192.168.10.102", "phone-anna", "02:00:00:00:10:66", "lan0", 1210),
          ("192.168.10.117", None, "02:00:00:00:10:75", "lan0", 95),
          ("192.168.20.100", "tv", "02:00:00:00:20:64", "guest0", 2400),
          ("192.168.20.131", "guest-phone", "02:00:00:00:20:83", "guest0", 600)]
    v6 = [("2001:db8:10:10::1000", "laptop", "00:01:00:01:2c:5a:11:22:02:00:00:00:10:65", "lan0", 3300),
          ("2001:db8:10:10::1001", "nas", "00:04:d2:3f:41:9e:7e:52:44:1b:95:ad:52:0c:a7:2f", "lan0", 1800)]
    out = []
    for i, (a, h, mac, ifname, ttl) in enumerate(v4):
        out.append({"family": 4, "address": a, "hostname": h, "hwaddr": mac, "client_id": None,
                    "expires": int(NOW + ttl), "interface": ifname, "state": "active",
                    "subnet_id": 1 if ifname == "lan0" else 2})
        if i == 3:
            out[-1]["state"] = "declined"
    for a, h, duid, ifname, ttl in v6:
        out.append({"family": 6, "address": a, "hostname": h, "duid": duid, "hwaddr": None, "type": "address",
                    "expires": int(NOW + ttl), "interface": ifname, "state": "active", "subnet_id": 1})
    return out


def _rev(text: str, n: int) -> str:
    return hashlib.sha1(f"{n}:{text}".encode()).hexdigest()


def wave(n: int, seed: int, scale: float) -> list[float]:
    return [max(0.0, scale * (0.55 + 0.4 * math.sin((i + seed * 7) / 9.0) + 0.2 * math.sin(i / 2.3 + seed)))
            for i in range(n)]


def big_config(rules: int = 1000, interfaces: int = 0) -> str:
    """The lab example plus ``rules`` extra rules (and extra interfaces in the lan zone): bench input."""
    import yaml

    data = yaml.safe_load(example_config())
    for i in range(interfaces):
        data["interfaces"][f"vx{i}"] = {"ipv4": [f"10.{i // 250}.{i % 250}.1/24"]}
        data["zones"]["lan"]["interfaces"].append(f"vx{i}")
    for i in range(rules):
        data["rules"].append({"name": f"r{i:04d}", "from": "lan", "to": "wan", "proto": "tcp",
                              "dport": 1024 + i, "action": "drop" if i % 3 else "accept"})
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)


class FakeAgent:
    def __init__(self, text: str | None = None, read_only: bool = False, extra_ifaces: int = 0,
                 socket_path: str = "/run/talgate-lab/agent.sock", dhcp: bool = False,
                 confirm_pending: bool = False, drift: bool = False):
        self.socket_path = socket_path
        self.read_only = read_only
        text = text or example_config() + (DHCP_SECTION if dhcp else "")
        self.commits = [{"rev": _rev(text, 0), "text": text, "time": T0, "author": "talgate",
                         "message": "initial configuration"}]
        self.extra_ifaces = extra_ifaces
        self.calls: list[str] = []
        self.pending = None
        self.last_drift = None
        self.commit_calls: list[dict] = []
        self._counters: tuple[str | None, dict] = (None, {})
        if confirm_pending:
            self.read_only = False
            self.commit(text + "# staged with a confirm\n", "risky change", confirm=120)
            self.read_only = read_only
            self.pending["remaining"] = 47.0
        if drift:
            self.last_drift = {"time": NOW - 90, "items": ["nft: table inet talgate was changed",
                                                          "address del: lan0 192.168.10.1/24"], "repaired": 2}

    # -- reads ---------------------------------------------------------------------------

    @property
    def head(self) -> dict:
        return self.commits[-1]

    def status(self) -> dict:
        self.calls.append("status")
        st = {"repo": "/var/lib/talgate/repo", "head": self.head["rev"], "applied": self.head["rev"], "in_sync": True,
              "worktree_dirty": False, "last_error": None, "last_apply": None, "hostname": "gw", "pid": 4242,
              "sockets": {"rw": "/run/talgate/agent.sock", "ro": "/run/talgate/agent-ro.sock"},
              "read_only": self.read_only, "last_drift": self.last_drift, "confirm": None}
        if self.pending:
            st["confirm"] = dict(self.pending)
        return st

    def leases(self) -> list[dict]:
        return fake_leases()

    def trace(self, packet: dict, candidate: str | None = None) -> dict:
        """As the agent's POST /v1/trace: the real (pure) tracer, the agent's argument errors."""
        from backend.model import validate_text
        from backend.trace.evaluator import Packet, Tracer

        self.calls.append("trace")
        cfg, problems = validate_text(candidate or self.head["text"])
        if cfg is None:
            raise AgentError(422, {"error": "the configuration does not validate",
                                   "problems": [p.to_dict() for p in problems]})
        try:
            pkt = Packet(**{k: v for k, v in packet.items() if v is not None})
        except (TypeError, ValueError) as e:
            raise AgentError(400, {"error": f"bad packet: {e}"}) from None
        if pkt.iif not in cfg.interfaces and pkt.iif != "lo":
            raise AgentError(400, {"error": f"--in {pkt.iif}: no such interface in the configuration "
                                            f"({', '.join(cfg.interfaces)})"})
        res = Tracer(cfg).trace(pkt).to_dict()
        res["config"] = "candidate" if candidate else "running"
        return res

    def _find(self, rev: str | None) -> dict:
        if rev in (None, "HEAD"):
            return self.head
        base, _, back = rev.partition("~")
        for i, c in enumerate(self.commits):
            if c["rev"].startswith(base):
                j = i - int(back or 0) if back or "~" in rev else i
                if j < 0:
                    break
                return self.commits[j]
        raise AgentError(400, {"error": f"unknown revision {rev!r}"})

    def config(self, rev=None) -> dict:
        c = self._find(rev)
        return {"rev": c["rev"], "text": c["text"]}

    def log(self, n=50) -> list[dict]:
        return [{k: c[k] for k in ("rev", "time", "author", "message")} for c in reversed(self.commits)][:n]

    def diff(self, a=None, b=None) -> dict:
        ca, cb = self._find(a or "HEAD~1"), self._find(b)
        d = "".join(difflib.unified_diff(ca["text"].splitlines(True), cb["text"].splitlines(True), "a/router.yaml",
                                         "b/router.yaml"))
        return {"a": ca["rev"], "b": cb["rev"], "diff": d}

    def validate(self, text: str) -> dict:
        from backend.model import validate_text

        cfg, problems = validate_text(text)
        return {"ok": cfg is not None, "problems": [p.to_dict() for p in problems]}

    def diff_candidate(self, text: str, base=None) -> dict:
        from backend.model import validate_text
        from backend.render.nft import render

        b = self._find(base)
        out = {"base": b["rev"], "diff": "".join(difflib.unified_diff(b["text"].splitlines(True),
                                                                      text.splitlines(True)))}
        cfg, problems = validate_text(text)
        out["problems"] = [p.to_dict() for p in problems]
        if cfg is not None:
            old, _ = validate_text(b["text"])
            out["nft_diff"] = "".join(difflib.unified_diff(render(old).text().splitlines(True),
                                                           render(cfg).text().splitlines(True), "HEAD.nft",
                                                           "candidate.nft"))
        return out

    def counters(self) -> dict:
        if self._counters[0] != self.head["rev"]:
            self._counters = (self.head["rev"], self._count())
        return self._counters[1]

    def _count(self) -> dict:
        import yaml

        d = yaml.safe_load(self.head["text"]) or {}
        out = {}
        for i, r in enumerate(d.get("rules") or []):
            out[f"rule {r['name']}"] = {"packets": (i * 37) % 500, "bytes": (i * 37) % 500 * 84}
        for p in d.get("policies") or []:
            out[f"policy {p.get('name') or p['from'] + '-' + p['to']}"] = {"packets": 1200, "bytes": 96_000}
        for z in d.get("zones") or {}:
            out[f"zone {z} input"] = {"packets": 17, "bytes": 1400}
            out[f"zone {z} forward"] = {"packets": 3, "bytes": 180}
        nat = d.get("nat") or {}
        for f in nat.get("forwards") or []:
            out[f"forward {f['name']}"] = {"packets": 5, "bytes": 300}
        for m in nat.get("masquerade") or []:
            out[f"masquerade {m.get('name') or 'masquerade-' + m['out']}"] = {"packets": 880, "bytes": 61_000}
        return out

    def _ifnames(self) -> list[str]:
        return ["wan0", "lan0", "guest0", "mgmt0"] + [f"vx{i}" for i in range(self.extra_ifaces)]

    def interfaces(self) -> list[dict]:
        addrs = {"wan0": (["198.51.100.2/24"], ["2001:db8:100::2/64"]), "lan0": (["192.168.10.1/24"], []),
                 "guest0": (["192.168.20.1/24"], []), "mgmt0": (["192.168.99.1/24"], [])}
        out = []
        for k, n in enumerate(self._ifnames()):
            v4, v6 = addrs.get(n, ([], []))
            out.append({"name": n, "state": "up", "mtu": 1500, "mac": f"02:00:00:00:00:{k % 256:02x}", "ipv4": v4,
                        "ipv6": v6, "rx_rate": 1000.0 * (k + 1), "tx_rate": 500.0 * (k + 1),
                        "counters": {"rx_bytes": 123456 * (k + 1), "rx_packets": 1000 * (k + 1), "rx_errors": 0,
                                     "rx_dropped": 0, "tx_bytes": 654321 * (k + 1), "tx_packets": 900 * (k + 1),
                                     "tx_errors": 0, "tx_dropped": 0}})
        return out

    def neighbours(self) -> list[dict]:
        return [{"dst": "198.51.100.1", "dev": "wan0", "lladdr": "02:00:00:00:01:01", "state": "reachable"},
                {"dst": "192.168.10.10", "dev": "lan0", "lladdr": "02:00:00:00:01:02", "state": "stale"}]

    def history(self, seconds=None) -> dict:
        n = 300
        return {"interval": 1.0, "times": [T0 + i for i in range(n)],
                "interfaces": {name: {"rx": wave(n, k, 1e5 * (k + 1)), "tx": wave(n, k + 3, 4e4 * (k + 1))}
                               for k, name in enumerate(self._ifnames())}}

    def conntrack_top(self, n=10) -> dict:
        top = [{"src": "192.168.10.10", "flows": 12, "peers": 4, "packets": 5400, "bytes": 4_100_000},
               {"src": "192.168.20.10", "flows": 5, "peers": 2, "packets": 800, "bytes": 96_000},
               {"src": "2001:db8:10:10::10", "flows": 2, "peers": 1, "packets": 40, "bytes": 5_200}]
        return {"total": 19, "accounting": True, "top": top[:n]}

    # -- writes --------------------------------------------------------------------------

    def _refuse_ro(self) -> None:
        if self.read_only:
            raise AgentError(403, {"error": "read-only connection: the agent refuses writes on this socket"})

    @staticmethod
    def _lockout(text: str) -> list[str]:
        """The agent's lockout check, simplified: a rule dropping mgmt → self tcp/22 cuts the SSH path."""
        import yaml

        cut = []
        for r in (yaml.safe_load(text) or {}).get("rules") or []:
            frm = r.get("from") if isinstance(r.get("from"), list) else [r.get("from")]
            dports = r.get("dport") if isinstance(r.get("dport"), list) else [r.get("dport")]
            if r.get("action") in ("drop", "reject") and "mgmt" in frm and r.get("to") == "self" \
                    and r.get("proto") in ("tcp", None) and (22 in dports or None in dports) \
                    and r.get("enabled", True):
                cut.append(f"access 'ssh' (192.168.99.2 -> 192.168.99.1 tcp/22): {r['action']} by rule {r['name']}")
        return cut

    def commit(self, text: str, message: str, base="HEAD", confirm: int | None = None, force: bool = False) -> dict:
        self._refuse_ro()
        self.commit_calls.append({"message": message, "base": base, "confirm": confirm, "force": force})
        if base not in (None, "HEAD") and self._find(base)["rev"] != self.head["rev"]:
            raise AgentError(409, {"error": "HEAD moved", "head": self.head["rev"]})
        if confirm is not None and (not isinstance(confirm, int) or not 1 <= confirm <= 86400):
            raise AgentError(400, {"error": "--confirm: seconds must be a whole number from 1 to 86400"})
        if force and not confirm:
            raise AgentError(400, {"error": "refused: nothing was changed", "problems": [
                {"path": "(commit)", "message": "--force needs --confirm SECONDS: a forced change must roll itself "
                                                "back unless you confirm it", "severity": "error"}]})
        if self.pending:
            raise AgentError(409, {"error": "refused: nothing was changed", "problems": [
                {"path": "(commit)", "message": "a commit is waiting for confirmation: run `talgate confirm` or "
                                                "`talgate rollback` first", "severity": "error"}]})
        v = self.validate(text)
        if not v["ok"]:
            raise AgentError(422, {"error": "refused: nothing was changed", "problems": v["problems"]})
        cut = self._lockout(text)
        if cut and not force:
            raise AgentError(409, {"error": "refused: nothing was changed", "problems": [
                {"path": "(lockout)", "message": f"would cut {c}", "severity": "error"} for c in cut] + [
                {"path": "(lockout)", "message": "nothing was changed; fix the rule, or apply anyway with --force "
                                                 "--confirm SECONDS (rolled back unless confirmed)",
                 "severity": "error"}]})
        n = len(self.commits)
        self.commits.append({"rev": _rev(text, n), "text": text, "time": T0 + 60 * n, "author": "admin",
                             "message": message})
        out = {"rev": self.head["rev"], "changes": 1, "seconds": 0.01}
        if confirm:
            self.pending = {"rev": self.head["rev"], "deadline": NOW + confirm, "seconds": confirm,
                            "remaining": float(confirm)}
            out["confirm"] = dict(self.pending)
        return out

    def confirm(self) -> dict:
        self._refuse_ro()
        if not self.pending:
            raise AgentError(400, {"error": "nothing to confirm: no commit is waiting for confirmation"})
        rev, self.pending = self.pending["rev"], None
        return {"rev": rev, "confirmed": True}

    def apply(self, rev=None) -> dict:
        self._refuse_ro()
        return {"rev": self.head["rev"], "changes": 0}

    def rollback(self, rev=None) -> dict:
        self._refuse_ro()
        target = self._find(rev)
        return self.commit(target["text"], f"rollback to {target['rev'][:12]}")
