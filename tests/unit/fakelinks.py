"""A kernel's links in memory, with the kernel's rules that matter to the links applier: a VLAN
needs its parent and dies with it, deleting a master releases its members, a bond enslaves only a
member that is down, a bridge cannot be a port of a bridge, names are unique."""

from __future__ import annotations

import copy

from pyroute2.netlink.exceptions import NetlinkError

from backend.host.links import BOND_MODES


class FakeLinkKernel:
    def __init__(self, links: dict[str, dict] | None = None):
        self.links: dict[str, dict] = copy.deepcopy(links or {})
        self.ops: list[tuple] = []
        self.fail_on: str | None = None  # an op kind ("create", "master" …) the kernel refuses

    def add(self, name: str, kind: str = "veth", **kw) -> None:
        self.links[name] = {"kind": kind, "master": None, "up": True, **kw}

    def observe(self) -> dict[str, dict]:
        return copy.deepcopy(self.links)

    def snapshot(self) -> dict:
        return copy.deepcopy(self.links)

    def run(self, op: tuple) -> None:
        self.ops.append(op)
        if self.fail_on == op[0]:
            raise NetlinkError(95, "Operation not supported")
        what = op[0]
        if what == "create":
            name, s = op[1], op[2]
            if name in self.links:
                raise NetlinkError(17, "File exists")
            d = {"kind": s["kind"], "master": None, "up": False}
            if s["kind"] == "vlan":
                if s["link"] not in self.links:
                    raise LookupError(f"no such link {s['link']!r}")
                d.update(link=s["link"], id=s["id"])
            elif s["kind"] == "bridge":
                d.update(vlan_filtering=s["vlan_filtering"], stp=s["stp"], vlans={})
            elif s["kind"] == "bond":
                assert s["mode"] in BOND_MODES
                d.update(mode=s["mode"], miimon=s["miimon"], primary=None, lacp_rate=s["lacp_rate"])
            self.links[name] = d
        elif what == "delete":
            name = op[1]
            self.links.pop(name, None)
            for n in [n for n, d in self.links.items() if d.get("link") == name and d["kind"] == "vlan"]:
                self.run(("delete", n))
            for d in self.links.values():
                if d.get("master") == name:
                    d["master"] = None
                    d.pop("vlans", None)
        elif what == "set":
            name, key, value = op[1], op[2], op[3]
            if key == "primary" and value and self.links[value].get("master") != name:
                raise NetlinkError(22, "Invalid argument")
            self.links[name][key] = value
        elif what == "master":
            m, master, bond = op[1], op[2], op[3]
            if m not in self.links or (master and master not in self.links):
                raise LookupError("no such link")
            if master and self.links[master]["kind"] == "bridge" and self.links[m]["kind"] == "bridge":
                raise NetlinkError(40, "Too many levels of symbolic links")
            if master and self.links[master]["kind"] == "bond" and not bond:
                raise NetlinkError(1, "Device can not be enslaved while up")
            self.links[m]["master"] = master
            self.links[m].pop("vlans", None)
            if master and self.links[master]["kind"] == "bridge":
                self.links[m]["vlans"] = {}
        elif what in ("vlan-add", "vlan-del"):
            name, vid, flags = op[1], op[2], op[3]
            v = self.links[name].setdefault("vlans", {})
            if what == "vlan-add":
                if flags & 2:  # one pvid per port
                    for k in list(v):
                        v[k] &= ~2
                v[vid] = flags
            else:
                v.pop(vid, None)
        else:
            raise ValueError(what)
