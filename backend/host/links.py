"""The links applier: creates, changes and deletes the links the agent makes (interfaces of kind
vlan, bridge, bond, dummy), through pyroute2. It runs before the network applier (stage LINKS), so
the addresses, MTU and state of these links are the network applier's like any other link's.

Ownership: ``STATE/links.json`` records every link this applier created (written *before* it
creates one, so a crash or a failed apply can still clean up) and every member it enslaved. Only
those are ever deleted or released: removing an interface from the document deletes the link it
created; a link of the right kind that existed before is adopted (configured, never deleted); a
link of another kind under a desired name is refused by ``check`` (nothing changes). Links the
document may never own (backend/model/links.py) are refused here too, whatever a state says.

Order: deletions first, deepest first (a VLAN before its parent); then members leaving a master;
then creations, parents first (masters before their members are enslaved, a VLAN after its
parent); then attributes, masters, bridge VLANs. All or nothing: the pipeline puts this applier
back by applying the previous desired state (idempotent), which deletes what this apply created;
on the very first commit (no previous state) ``undo_first`` deletes the links this transaction
created and releases the members it enslaved, from the links.json record taken at its start.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

from pyroute2.netlink.exceptions import NetlinkError

from ..model import Problem
from ..model.kinds import AGENT_KINDS, agent_made, creation_order, members
from ..model.links import foreign_link
from .applier import Desired, HostContext, load_state, save_state
from .net import ApplyError

BOND_MODES = {"active-backup": 1, "802.3ad": 4}
LACP_RATES = {"slow": 0, "fast": 1}
VLAN_PVID, VLAN_UNTAGGED = 0x2, 0x4
BRIDGE_FLAGS_SELF = 2

# Attributes that can change on a live link; any other difference recreates it.
MUTABLE = {"bridge": ("vlan_filtering", "stp"), "bond": ("miimon", "primary")}


def spec(cfg, name: str) -> dict:
    """What the kernel link NAME must be (kind + the attributes we set)."""
    itf = cfg.interfaces[name]
    if itf.kind == "vlan":
        return {"kind": "vlan", "link": itf.link, "id": itf.id}
    if itf.kind == "bridge":
        return {"kind": "bridge", "vlan_filtering": itf.vlan_filtering, "stp": itf.stp}
    if itf.kind == "bond":
        return {"kind": "bond", "mode": itf.mode, "miimon": itf.miimon, "primary": itf.primary,
                "lacp_rate": itf.lacp_rate}
    return {"kind": itf.kind}


def bridge_vlans(cfg) -> dict[str, dict[int, int]]:
    """Bridge VLAN entries wanted, for the ports and the bridge itself of every vlan-filtering
    bridge: link -> {vid: flags (PVID|UNTAGGED)}. The bridge's own entry (key: the bridge) has its
    pvid untagged and every VLAN subinterface on it tagged."""
    out: dict[str, dict[int, int]] = {}
    for name, itf in cfg.interfaces.items():
        if itf.kind != "bridge" or not itf.vlan_filtering:
            continue
        own: dict[int, int] = {}
        if itf.pvid is not None:
            own[itf.pvid] = VLAN_PVID | VLAN_UNTAGGED
        for v in cfg.interfaces.values():
            if v.kind == "vlan" and v.link == name:
                own.setdefault(v.id, 0)
        out[name] = own
        for port, pc in itf.ports.items():
            e = dict.fromkeys(pc.vids, 0)
            if pc.pvid is not None:
                e[pc.pvid] = VLAN_PVID | (VLAN_UNTAGGED if pc.untagged else 0)
            out[port] = e
    return out


class Want:
    """The links part of a desired state."""

    def __init__(self, cfg):
        self.order = creation_order(cfg)
        self.links = {n: spec(cfg, n) for n in self.order}
        self.master = {m: n for n in self.order for m in members(cfg.interfaces[n])}
        self.enabled = {n: itf.enabled for n, itf in cfg.interfaces.items()}
        self.vlans = bridge_vlans(cfg)


class LinkKernel:
    """pyroute2 for the applier: ``observe`` reads every link; ``run`` does one operation."""

    def observe(self) -> dict[str, dict]:
        from pyroute2 import IPRoute

        out: dict[str, dict] = {}
        with IPRoute() as ipr:
            links = list(ipr.get_links())
            names = {lk["index"]: lk.get_attr("IFLA_IFNAME") for lk in links}
            for lk in links:
                name = names[lk["index"]]
                info = lk.get_attr("IFLA_LINKINFO")
                kind = (info.get_attr("IFLA_INFO_KIND") if info else None) or "ethernet"
                data = info.get_attr("IFLA_INFO_DATA") if info else None
                d = {"kind": kind, "master": names.get(lk.get_attr("IFLA_MASTER")), "up": bool(lk["flags"] & 1)}
                if kind == "vlan" and data is not None:
                    d.update(link=names.get(lk.get_attr("IFLA_LINK")), id=data.get_attr("IFLA_VLAN_ID"))
                elif kind == "bridge" and data is not None:
                    d.update(vlan_filtering=bool(data.get_attr("IFLA_BR_VLAN_FILTERING")),
                             stp=bool(data.get_attr("IFLA_BR_STP_STATE")))
                elif kind == "bond" and data is not None:
                    mode = {v: k for k, v in BOND_MODES.items()}.get(data.get_attr("IFLA_BOND_MODE"), "other")
                    rate = {v: k for k, v in LACP_RATES.items()}.get(data.get_attr("IFLA_BOND_AD_LACP_RATE"), "slow")
                    d.update(mode=mode, miimon=data.get_attr("IFLA_BOND_MIIMON"),
                             primary=names.get(data.get_attr("IFLA_BOND_PRIMARY")), lacp_rate=rate)
                out[name] = d
            try:  # bridge VLAN entries: absent from kernels without CONFIG_BRIDGE_VLAN_FILTERING
                vlans = list(ipr.get_vlans()) if any(d["kind"] == "bridge" for d in out.values()) else []
            except NetlinkError:
                vlans = []
            if vlans:
                for lk in vlans:
                    name = names.get(lk["index"])
                    spec_ = lk.get_attr("IFLA_AF_SPEC")
                    if name not in out or spec_ is None:
                        continue
                    out[name]["vlans"] = {v["vid"]: v["flags"] & (VLAN_PVID | VLAN_UNTAGGED)
                                          for v in spec_.get_attrs("IFLA_BRIDGE_VLAN_INFO")}
        return out

    def __init__(self):
        self._ipr = None

    @contextlib.contextmanager
    def session(self):
        """One netlink socket for a batch of ``run`` calls (opening one per operation is slow)."""
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            self._ipr = ipr
            try:
                yield self
            finally:
                self._ipr = None

    def run(self, op: tuple) -> None:
        if self._ipr is None:
            with self.session():
                return self._run(self._ipr, op)
        return self._run(self._ipr, op)

    def _run(self, ipr, op: tuple) -> None:
        def idx(name: str) -> int:
            found = ipr.link_lookup(ifname=name)
            if not found:
                raise LookupError(f"no such link {name!r}")
            return found[0]

        what = op[0]
        if what == "create":
            name, s = op[1], op[2]
            kw: dict = {"ifname": name, "kind": s["kind"]}
            if s["kind"] == "vlan":
                kw.update(link=idx(s["link"]), vlan_id=s["id"])
            elif s["kind"] == "bridge":
                kw.update(br_stp_state=int(s["stp"]))
                if s["vlan_filtering"]:
                    kw.update(br_vlan_filtering=1, br_vlan_default_pvid=0)
            elif s["kind"] == "bond":
                kw.update(bond_mode=BOND_MODES[s["mode"]], bond_miimon=s["miimon"])
                if s["mode"] == "802.3ad":
                    kw.update(bond_ad_lacp_rate=LACP_RATES[s["lacp_rate"]])
            ipr.link("add", **kw)
        elif what == "delete":
            found = ipr.link_lookup(ifname=op[1])
            if found:
                ipr.link("del", index=found[0])
        elif what == "set":
            name, key, value, kind = op[1], op[2], op[3], op[4]
            if key == "vlan_filtering":
                kw = {"br_vlan_filtering": int(value)}
                if value:
                    kw["br_vlan_default_pvid"] = 0
            elif key == "stp":
                kw = {"br_stp_state": int(value)}
            elif key == "miimon":
                kw = {"bond_miimon": value}
            else:  # primary
                kw = {"bond_primary": idx(value) if value else 0}
            ipr.link("set", index=idx(name), kind=kind, **kw)
        elif what == "master":
            member, master, bond = op[1], op[2], op[3]
            i = idx(member)
            up = bool(ipr.get_links(i)[0]["flags"] & 1)
            if bond and up:
                ipr.link("set", index=i, state="down")  # the kernel enslaves a bond member only when down
            ipr.link("set", index=i, master=idx(master) if master else 0)
            if bond and up:
                ipr.link("set", index=i, state="up")
        elif what in ("vlan-add", "vlan-del"):
            name, vid, flags, self_ = op[1], op[2], op[3], op[4]
            kw = {"index": idx(name), "vlan_info": {"vid": vid, "flags": flags}}
            if self_:
                kw["vlan_flags"] = "self"
            try:
                ipr.vlan_filter("add" if what == "vlan-add" else "del", **kw)
            except NetlinkError as e:
                if what == "vlan-add" or e.code != 2:  # ENOENT: gone already (a new default pvid)
                    raise
        else:
            raise ValueError(f"unknown links operation {what!r}")


def describe(op: tuple) -> str:
    what = op[0]
    if what == "create":
        s = op[2]
        extra = {"vlan": lambda: f" (on {s['link']}, id {s['id']})",
                 "bond": lambda: f" (mode {s['mode']})"}.get(s["kind"], lambda: "")()
        return f"create {s['kind']}: {op[1]}{extra}"
    if what == "delete":
        return f"delete {op[2]}: {op[1]}"
    if what == "set":
        return f"set {op[1]} {op[2]}: {op[3]}"
    if what == "master":
        return f"enslave {op[1]} to {op[2]}" if op[2] else f"release {op[1]}"
    tag = ",".join(f for f, b in (("pvid", VLAN_PVID), ("untagged", VLAN_UNTAGGED)) if op[3] & b)
    return f"bridge vlan {'add' if what == 'vlan-add' else 'del'}: {op[1]} vid {op[2]}" + (f" {tag}" if tag else "")


def _path(op: tuple) -> str:
    if op[0] in ("vlan-add", "vlan-del"):
        return f"interfaces.{op[1]}"
    if op[0] == "master" and op[2]:
        return f"interfaces.{op[2]}"
    return f"interfaces.{op[1]}"


class LinksApplier:
    name = "links"
    group = "net"

    def __init__(self, ctx: HostContext, kernel: LinkKernel | None = None):
        self.kernel = kernel or LinkKernel()
        self._dir = Path(ctx.state_dir)
        self._lock = threading.Lock()
        st = load_state(self._dir, "links")
        # name -> spec of every link we created (in creation order); members we enslaved -> master.
        self.created: dict[str, dict] = {k: v for k, v in (st.get("created") or {}).items()
                                         if isinstance(v, dict) and v.get("kind") in AGENT_KINDS}
        self.enslaved: dict[str, str] = dict(st.get("enslaved") or {})
        # whatever a state file says, a link the document may never own is never ours to delete
        self.created = {n: s for n, s in self.created.items() if not foreign_link(n)}
        self.enslaved = {m: n for m, n in self.enslaved.items() if not foreign_link(m) and not foreign_link(n)}
        self._first: tuple[dict, dict] | None = None

    def _save(self) -> None:
        save_state(self._dir, "links", {"created": self.created, "enslaved": self.enslaved})

    # -- planning ------------------------------------------------------------------------

    def _plan(self, want: Want, have: dict[str, dict]) -> list[tuple]:
        ops: list[tuple] = []
        gone: set[str] = set()
        # 1. delete what we created and the document no longer wants (or wants otherwise), deepest first
        for name in reversed(list(self.created)):
            h = have.get(name)
            if h is None:
                continue
            w = want.links.get(name)
            if w is None or self._recreate(w, h):
                ops.append(("delete", name, h["kind"]))
                gone.add(name)
                # the kernel deletes a parent's VLANs with it and releases a master's members
                gone |= {n for n, d in have.items() if d.get("link") == name and d["kind"] == "vlan"}
        # 2. members we enslaved that leave their master (or move to another)
        for m, master in sorted(self.enslaved.items()):
            h = have.get(m)
            if h is None or m in gone or h.get("master") != master or master in gone:
                continue
            if want.master.get(m) != master:
                ops.append(("master", m, None, have.get(master, {}).get("kind") == "bond"))
        # 3. create what is missing, parents first
        for name in want.order:
            if name in gone or name not in have:
                ops.append(("create", name, want.links[name]))
        # 4. attributes of the links that stay
        for name in want.order:
            h, w = have.get(name), want.links[name]
            if h is None or name in gone:
                continue
            for key in MUTABLE.get(w["kind"], ()):
                if key != "primary" and h.get(key) != w[key]:
                    ops.append(("set", name, key, w[key], w["kind"]))
        # 5. masters
        for m, master in want.master.items():
            h = have.get(m)
            current = None if h is None or m in gone or h.get("master") in gone else h.get("master")
            if current != master:
                ops.append(("master", m, master, want.links[master]["kind"] == "bond"))
        # a bond's primary names a member: after the members
        for name in want.order:
            w, h = want.links[name], have.get(name)
            if w["kind"] == "bond" and (h.get("primary") if h and name not in gone else None) != w["primary"]:
                ops.append(("set", name, "primary", w["primary"], "bond"))
        # 6. bridge VLANs (ports and the bridge itself of vlan-filtering bridges)
        for name, vids in want.vlans.items():
            fresh = name in gone or name not in have or (have[name].get("master") != want.master.get(name))
            hv = {} if fresh else dict(have[name].get("vlans") or {})
            is_self = want.links.get(name, {}).get("kind") == "bridge"
            for vid in sorted(set(hv) - set(vids)):
                ops.append(("vlan-del", name, vid, hv[vid], is_self))
            for vid in sorted(vids):
                if hv.get(vid) != vids[vid]:
                    ops.append(("vlan-add", name, vid, vids[vid], is_self))
        return ops

    @staticmethod
    def _recreate(w: dict, h: dict) -> bool:
        if h["kind"] != w["kind"]:
            return True
        fixed = [k for k in w if k != "kind" and k not in MUTABLE.get(w["kind"], ())]
        return any(h.get(k) != w[k] for k in fixed)

    def _conflicts(self, want: Want, have: dict[str, dict]) -> list[Problem]:
        """Desired names held by a link we did not create and cannot adopt (another kind)."""
        out = []
        for name, w in want.links.items():
            h = have.get(name)
            if foreign_link(name):
                out.append(Problem(f"interfaces.{name}", f"refusing to create {name!r}: {foreign_link(name)}"))
            elif h is not None and name not in self.created and h["kind"] != w["kind"]:
                out.append(Problem(f"interfaces.{name}.kind",
                                   f"a link named {name!r} exists and is a {h['kind']}, not a {w['kind']}: the agent "
                                   "replaces only links it created (rename the interface or remove that link)"))
            elif h is not None and name not in self.created and self._recreate(w, h):
                diff = ", ".join(f"{k} {h.get(k)!r}" for k in w if k != "kind" and h.get(k) != w[k]
                                 and k not in MUTABLE.get(w["kind"], ()))
                out.append(Problem(f"interfaces.{name}", f"a {w['kind']} named {name!r} exists with {diff}: the agent "
                                                         "replaces only links it created (remove that link)"))
        return out

    def _observe(self) -> dict[str, dict]:
        try:
            return self.kernel.observe()
        except (OSError, ValueError) as e:
            raise ApplyError("interfaces", f"could not read the kernel's links: {e}") from None

    # -- the protocol ----------------------------------------------------------------------

    def check(self, d: Desired) -> list[Problem]:
        want = Want(d.cfg)
        if not want.links:
            return []  # nothing to create (and no kernel read on a box without such links)
        try:
            return self._conflicts(want, self._observe())
        except ApplyError as e:
            return [Problem(e.path, str(e).split(": ", 1)[-1])]

    def plan(self, d: Desired) -> list[str]:
        with self._lock:
            want = Want(d.cfg)
            if not want.links and not self.created and not self.enslaved:
                return []
            return [describe(op) for op in self._plan(want, self._observe())]

    drift = plan

    def apply(self, d: Desired) -> list[str]:
        with self._lock:
            want = Want(d.cfg)
            if not want.links and not self.created and not self.enslaved:
                return []
            have = self._observe()
            bad = self._conflicts(want, have)
            if bad:
                raise ApplyError(bad[0].path, bad[0].message)
            ops = self._plan(want, have)
            if not ops:
                return []
            # Remember what we are about to create or enslave before doing it.
            for op in ops:
                if op[0] == "create" and op[1] not in have:
                    self.created[op[1]] = op[2]
                elif op[0] == "create":
                    self.created.pop(op[1], None)
                    self.created[op[1]] = op[2]
                elif op[0] == "master" and op[2]:
                    self.enslaved[op[1]] = op[2]
            self._save()
            try:
                with getattr(self.kernel, "session", contextlib.nullcontext)():
                    for op in ops:
                        self._run(op)
            finally:
                self._settle(want)
            return [describe(op) for op in ops]

    def _run(self, op: tuple) -> None:
        for n in (op[1], op[2] if op[0] == "master" and op[2] else None):
            if n and foreign_link(n):
                raise ApplyError(_path(op), f"refusing to change {n!r}: {foreign_link(n)}")
        try:
            self.kernel.run(op)
        except ApplyError:
            raise
        except Exception as e:  # noqa: BLE001 - NetlinkError, OSError, LookupError: one typed error
            msg = e.args[1] if len(getattr(e, "args", ())) > 1 else e
            raise ApplyError(_path(op), f"kernel refused {describe(op)}: {msg}") from None

    def _settle(self, want: Want | None) -> None:
        """After an apply (also a failed one): forget what no longer exists, keep the rest."""
        try:
            have = self.kernel.observe()
        except (OSError, ValueError):
            return
        self.created = {n: s for n, s in self.created.items() if n in have and have[n]["kind"] == s["kind"]}
        self.enslaved = {m: master for m, master in self.enslaved.items() if have.get(m, {}).get("master") == master}
        self._save()

    # -- the first commit: no previous revision to apply ------------------------------------------

    def begin_first(self, d: Desired) -> None:
        """Before a transaction without a previous revision: what we own now (links.json)."""
        self._first = (dict(self.created), dict(self.enslaved))

    def end(self) -> None:
        self._first = None

    def undo_first(self) -> list[str]:
        """Put back the links as they were before this first transaction: release the members it
        enslaved, delete the links it created (deepest first). Links recorded before it stay."""
        first = self._first
        if first is None:
            return []
        created0, enslaved0 = first
        with self._lock:
            have = self._observe()
            ops: list[tuple] = []
            for m, master in sorted(self.enslaved.items()):
                if enslaved0.get(m) != master and have.get(m, {}).get("master") == master:
                    ops.append(("master", m, None, have.get(master, {}).get("kind") == "bond"))
            gone: set[str] = set()
            for name in reversed(list(self.created)):
                if name in created0 or name not in have or name in gone:
                    continue
                ops.append(("delete", name, have[name]["kind"]))
                gone |= {n for n, h in have.items() if h.get("link") == name and h["kind"] == "vlan"}
            errors = []
            try:
                with getattr(self.kernel, "session", contextlib.nullcontext)():
                    for op in ops:
                        try:
                            self._run(op)
                        except ApplyError as e:
                            errors.append(f"links: {e}")
            finally:
                self._settle(None)  # what could not be removed stays recorded (ours to delete later)
            return errors

    def status(self) -> dict:
        return {"created": {n: s["kind"] for n, s in self.created.items()}} if self.created else {}


def kinds_of(cfg) -> dict[str, str]:
    """interface -> kind, for the agent-made ones (status and console)."""
    return {n: itf.kind for n, itf in cfg.interfaces.items() if agent_made(itf)}
