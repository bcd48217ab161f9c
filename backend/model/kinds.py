"""Links the agent makes (interfaces of kind vlan, bridge, bond, dummy): whole-document checks and
the order they are created in.

A VLAN's parent and every bridge port and bond member must be an interface of the document (so the
agent owns every link it changes); a port is in one master; members carry no addresses and are in no
zone (their traffic is the master's); no loops (a bridge in itself, bridges in each other, a bridge
port that is a VLAN of that bridge); one VLAN per (parent, id). The applier (backend/host/links.py)
relies on these: it creates parents before their VLANs and masters before it enslaves their members,
and deletes in the reverse order.
"""

from __future__ import annotations

from .problem import Problem

# The kinds backend/host/links.py creates and deletes (ethernet links exist on their own).
AGENT_KINDS = ("vlan", "bridge", "bond", "dummy")


def agent_made(itf) -> bool:
    return getattr(itf, "kind", "ethernet") in AGENT_KINDS


def agent_made_links(cfg) -> set[str]:
    """Interfaces the links applier creates (network.check does not miss them before it ran)."""
    return {n for n, itf in cfg.interfaces.items() if agent_made(itf)}


def members(itf) -> list[str]:
    """The links a bridge or bond enslaves (in document order)."""
    kind = getattr(itf, "kind", "ethernet")
    if kind == "bridge":
        return list(itf.ports)
    if kind == "bond":
        return list(itf.members)
    return []


def member_path(master: str, itf, member: str) -> str:
    if itf.kind == "bridge":
        return f"interfaces.{master}.ports.{member}"
    return f"interfaces.{master}.members[{itf.members.index(member)}]"


def masters(cfg) -> dict[str, str]:
    """member -> its master (the first one that names it)."""
    out: dict[str, str] = {}
    for name, itf in cfg.interfaces.items():
        for m in members(itf):
            out.setdefault(m, name)
    return out


def _edges(cfg) -> dict[str, list[str]]:
    """name -> links it sits on or contains (a VLAN: its parent; a master: its members)."""
    out: dict[str, list[str]] = {}
    for name, itf in cfg.interfaces.items():
        e = list(members(itf))
        if itf.kind == "vlan":
            e.append(itf.link)
        out[name] = [x for x in e if x in cfg.interfaces]
    return out


def _loops(cfg) -> list[list[str]]:
    """Each cycle once (as the path that closes it), in document order."""
    edges = _edges(cfg)
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    found: list[list[str]] = []

    def visit(n: str, stack: list[str]) -> None:
        state[n] = 1
        stack.append(n)
        for m in edges.get(n, ()):
            if state.get(m) == 1:
                found.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m, stack)
        stack.pop()
        state[n] = 2

    for n in cfg.interfaces:
        if n not in state:
            visit(n, [])
    return found


def kind_problems(cfg) -> list[Problem]:
    p: list[Problem] = []
    ifaces = cfg.interfaces
    vlans: dict[tuple[str, int], str] = {}
    owner: dict[str, str] = {}
    for name, itf in ifaces.items():
        if itf.kind == "vlan":
            if itf.link == name:
                p.append(Problem(f"interfaces.{name}.link", f"VLAN {name!r} cannot sit on itself (a loop)"))
            elif itf.link not in ifaces:
                p.append(Problem(f"interfaces.{name}.link", f"unknown interface {itf.link!r}: a VLAN's parent must be "
                                                            "an interface of this document"))
            parent = ifaces.get(itf.link)
            if parent is not None and itf.mtu and parent.mtu and itf.mtu > parent.mtu:
                p.append(Problem(f"interfaces.{name}.mtu", f"mtu {itf.mtu} is above its parent {itf.link!r}'s "
                                                           f"{parent.mtu}: the kernel refuses it"))
            key = (itf.link, itf.id)
            if key in vlans:
                p.append(Problem(f"interfaces.{name}.id", f"VLAN {itf.id} on {itf.link!r} is already "
                                                          f"interfaces.{vlans[key]}"))
            vlans.setdefault(key, name)
        for m in members(itf):
            path = member_path(name, itf, m)
            what = "port" if itf.kind == "bridge" else "member"
            if m == name:
                p.append(Problem(path, f"{itf.kind} {name!r} cannot be a {what} of itself (a loop)"))
                continue
            if m not in ifaces:
                p.append(Problem(path, f"unknown interface {m!r}: a {itf.kind}'s {what}s must be interfaces of "
                                       "this document"))
                continue
            if m in owner:
                p.append(Problem(path, f"{m!r} is already a member of {owner[m]!r}: a link has one master"))
                continue
            owner[m] = name
            mk = ifaces[m].kind
            if itf.kind == "bond" and mk != "ethernet":
                p.append(Problem(path, f"{m!r} is a {mk}: bond members are ethernet links"))
            elif itf.kind == "bridge" and mk == "bridge":
                p.append(Problem(path, f"{m!r} is a bridge: a bridge cannot be a port of another bridge (a loop)"))
            mi = ifaces[m]
            for fam in ("ipv4", "ipv6"):
                if getattr(mi, fam):
                    p.append(Problem(f"interfaces.{m}.{fam}", f"{m!r} is a {what} of {itf.kind} {name!r}: a "
                                                              f"{what} carries no addresses (put them on {name!r})"))
    for name, itf in ifaces.items():
        if itf.kind == "vlan" and itf.link in owner:
            p.append(Problem(f"interfaces.{name}.link", f"{itf.link!r} is a member of {owner[itf.link]!r}, which "
                                                        f"takes its frames: put the VLAN on {owner[itf.link]!r}"))
    reported: set[frozenset] = set()
    for cycle in _loops(cfg):
        key = frozenset(cycle)
        if len(cycle) > 2 and key not in reported:  # a link in itself is reported above
            reported.add(key)
            p.append(Problem(f"interfaces.{cycle[0]}", "a loop of links: " + " → ".join(cycle)))
    for zname, z in cfg.zones.items():
        for j, n in enumerate(z.interfaces):
            if n in owner:
                p.append(Problem(f"zones.{zname}.interfaces[{j}]", f"{n!r} is a member of {owner[n]!r}: its traffic "
                                                                   f"is {owner[n]!r}'s, put {owner[n]!r} in the zone"))
    mgmt = cfg.system.management_interface
    if mgmt in ifaces and (agent_made(ifaces[mgmt]) or mgmt in owner):
        what = f"a {ifaces[mgmt].kind}" if agent_made(ifaces[mgmt]) else f"a member of {owner[mgmt]!r}"
        p.append(Problem("system.management_interface", f"{mgmt!r} is {what}: the management link is Talos's own "
                                                         "(an existing ethernet link the agent never makes or enslaves)"))
    for i, r in enumerate(cfg.routes):
        if r.interface in owner:
            p.append(Problem(f"routes[{i}].interface", f"{r.interface!r} is a member of {owner[r.interface]!r}: "
                                                       f"route over {owner[r.interface]!r}"))
    return p


def creation_order(cfg) -> list[str]:
    """Agent-made links, each after the agent-made link it sits on (a VLAN after its parent, so a
    VLAN on a bond or bridge comes after it); deletion is the reverse. Loops are refused by
    kind_problems; here a loop just ends the walk."""
    out: list[str] = []
    seen: set[str] = set()

    def visit(n: str) -> None:
        if n in seen or n not in cfg.interfaces:
            return
        seen.add(n)
        itf = cfg.interfaces[n]
        if itf.kind == "vlan":
            visit(itf.link)
        if agent_made(itf):
            out.append(n)

    for n in cfg.interfaces:
        visit(n)
    return out
