"""The candidate: edits accumulate here, as plain YAML data, until they are committed (lazygit's stage).

Nothing in this module talks to the agent or the kernel. The candidate is kept as the document's
data (dicts and lists, in file order) so an edit that does not validate yet can still be held,
shown and fixed; the agent validates it by path (``rules[3].dport``).
"""

from __future__ import annotations

import copy
import re

import yaml


def _load(text: str) -> dict:
    data = yaml.safe_load(text) if text else {}
    return data if isinstance(data, dict) else {}


class _Dumper(yaml.SafeDumper):
    """Indents list items under their key, as people write router.yaml."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def dump(data: dict) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=None, width=100, allow_unicode=True)


_TOP = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*):")


def _blocks(text: str) -> tuple[str, dict[str, str]]:
    """HEAD text → (header, {top-level key: its text}); comments just above a key belong to it."""
    header, blocks, cur, pending = [], {}, None, []
    for line in text.splitlines(keepends=True):
        m = _TOP.match(line)
        if m:
            cur = m.group(1)
            blocks[cur] = "".join(pending) + line
            pending = []
        elif cur is None and not pending and not line.strip().startswith("#") and line.strip():
            header.append(line)
        elif line.strip() == "" or line.lstrip().startswith("#") and not line.startswith((" ", "\t")):
            pending.append(line)
        elif cur is None:
            header += pending + [line]
            pending = []
        else:
            blocks[cur] += "".join(pending) + line
            pending = []
    if cur is None:
        header += pending
    elif pending:
        blocks[cur] += "".join(pending)
    return "".join(header), blocks


def splice(head_text: str, head: dict, data: dict) -> str:
    """The candidate as text that keeps HEAD's unchanged sections verbatim (comments, layout)."""
    try:
        header, blocks = _blocks(head_text)
        if set(blocks) != set(head):
            return dump(data)
        out = [header]
        for key, val in data.items():
            if key in head and head[key] == val:
                part = blocks[key]
            else:
                old = blocks.get(key, "")
                m = re.search(rf"^{re.escape(key)}:", old, re.M)
                part = (old[: m.start()] if m else "") + dump({key: val})
                if old.endswith("\n\n"):
                    part += "\n"
            out.append(part if part.endswith("\n") else part + "\n")
        text = "".join(out)
        return text if yaml.safe_load(text) == data else dump(data)
    except yaml.YAMLError:
        return dump(data)


class Candidate:
    def __init__(self, head_text: str = "", head_rev: str | None = None):
        self.reset(head_text, head_rev)

    def reset(self, head_text: str, head_rev: str | None) -> None:
        self.head_text, self.head_rev = head_text, head_rev
        self.head_rev_latest: str | None = None
        self.head = _load(head_text)
        self.data = copy.deepcopy(self.head)
        self.generation = getattr(self, "generation", 0) + 1

    # -- state ---------------------------------------------------------------------------

    @property
    def dirty(self) -> bool:
        return self.data != self.head

    def text(self) -> str:
        return self.head_text if not self.dirty else splice(self.head_text, self.head, self.data)

    def changes(self) -> list[tuple[str, str, object, object]]:
        """The config diff by path (cached per generation: every edit goes through a method that bumps it)."""
        if getattr(self, "_changes", (None,))[0] != self.generation:
            self._changes = (self.generation, diff_paths(self.head, self.data))
        return self._changes[1]

    def _touch(self) -> None:
        self.generation += 1

    # -- sections ------------------------------------------------------------------------

    def section(self, name: str, kind=list):
        v = self.data.get(name)
        if v is None:
            v = self.data[name] = kind()
        return v

    @property
    def rules(self) -> list[dict]:
        return self.data.get("rules") or []

    @property
    def forwards(self) -> list[dict]:
        return (self.data.get("nat") or {}).get("forwards") or []

    # -- list edits (rules, nat.forwards, policies) ----------------------------------------

    def _list(self, path: str | tuple[str, ...]) -> list:
        """The list at ``path`` ('rules', 'nat.forwards', or a tuple such as ('dhcp', 'lan0', 'reservations')
        when a key may hold a dot); missing mappings and the list are created."""
        parts = path.split(".") if isinstance(path, str) else list(path)
        if len(parts) == 1:
            return self.section(parts[0])
        cur = self.section(parts[0], dict)
        for part in parts[1:-1]:
            nxt = cur.get(part)
            if not isinstance(nxt, dict):
                nxt = cur[part] = {}
            cur = nxt
        lst = cur.get(parts[-1])
        if not isinstance(lst, list):
            lst = cur[parts[-1]] = []
        return lst

    def with_item(self, path: str | tuple[str, ...], index: int | None, item: dict) -> dict:
        """A copy of the data with ``item`` put at ``path[index]`` (appended when index is None)."""
        saved = self.data
        self.data = copy.deepcopy(saved)
        try:
            lst = self._list(path)
            if index is None:
                lst.append(item)
            else:
                lst[index] = item
            return self.data
        finally:
            self.data = saved

    def put(self, path: str | tuple[str, ...], index: int | None, item: dict) -> int:
        lst = self._list(path)
        if index is None:
            lst.append(item)
            index = len(lst) - 1
        else:
            lst[index] = item
        self._touch()
        return index

    def delete(self, path: str, index: int) -> dict:
        item = self._list(path).pop(index)
        self._cleanup(path)
        self._touch()
        return item

    def move(self, path: str, index: int, delta: int) -> int:
        lst = self._list(path)
        j = index + delta
        if not (0 <= index < len(lst) and 0 <= j < len(lst)):
            return index
        lst[index], lst[j] = lst[j], lst[index]
        self._touch()
        return j

    def _cleanup(self, path: str) -> None:
        if path == "nat.forwards" and not self.data.get("nat", {}).get("forwards"):
            self.data["nat"].pop("forwards", None)
            if not self.data["nat"] and "nat" not in self.head:
                self.data.pop("nat")
        elif not self.data.get(path) and path not in self.head:
            self.data.pop(path, None)

    # -- interfaces ----------------------------------------------------------------------

    def zone_of(self, ifname: str) -> str | None:
        for z, zd in (self.data.get("zones") or {}).items():
            if ifname in ((zd or {}).get("interfaces") or []):
                return z
        return None

    def interface_data(self, ifname: str, ipv4, ipv6, mtu, zone: str | None) -> dict:
        """A copy of the data with the interface's addresses, MTU and zone set."""
        data = copy.deepcopy(self.data)
        ifs = data.setdefault("interfaces", {})
        d = dict(ifs.get(ifname) or {})
        for key, val in (("ipv4", ipv4), ("ipv6", ipv6), ("mtu", mtu)):
            if val in (None, [], ""):
                d.pop(key, None)
            else:
                d[key] = val
        ifs[ifname] = d
        zones = data.setdefault("zones", {})
        for zd in zones.values():
            if zd and ifname in (zd.get("interfaces") or []) :
                zd["interfaces"] = [i for i in zd["interfaces"] if i != ifname]
        if zone:
            zd = zones.get(zone)
            if zd is None:
                zd = zones[zone] = {"interfaces": []}
            zd.setdefault("interfaces", []).append(ifname)
        return data

    def replace(self, data: dict) -> None:
        self.data = data
        self._touch()

    def discard(self) -> None:
        self.data = copy.deepcopy(self.head)
        self._touch()


# -- helpers for forms ---------------------------------------------------------------------


def split_list(s: str) -> list:
    """'a, b c' → ['a', 'b', 'c']; numbers become ints (ports stay readable in YAML)."""
    out = []
    for tok in re.split(r"[,\s]+", s.strip()):
        if tok:
            out.append(int(tok) if tok.isdigit() else tok)
    return out


def join_list(v) -> str:
    if v is None:
        return ""
    if isinstance(v, list):
        return ", ".join(str(x) for x in v)
    return str(v)


def scalar_or_list(items: list):
    if not items:
        return None
    return items[0] if len(items) == 1 else items


# -- config diff by path -------------------------------------------------------------------


def _keyed(lst: list) -> dict | None:
    if lst and all(isinstance(x, dict) and x.get("name") for x in lst):
        keys = [x["name"] for x in lst]
        if len(set(keys)) == len(keys):
            return {k: x for k, x in zip(keys, lst, strict=True)}
    return None


def diff_paths(a, b, path: str = "") -> list[tuple[str, str, object, object]]:
    """Structural diff: [(op, path, old, new)] with op '+', '-', '~' (changed) or '↕' (reordered)."""
    out: list[tuple[str, str, object, object]] = []
    if isinstance(a, dict) and isinstance(b, dict):
        for k in a:
            p = f"{path}.{k}" if path else str(k)
            if k not in b:
                out.append(("-", p, a[k], None))
            else:
                out += diff_paths(a[k], b[k], p)
        for k in b:
            if k not in a:
                out.append(("+", f"{path}.{k}" if path else str(k), None, b[k]))
        return out
    if isinstance(a, list) and isinstance(b, list):
        ka, kb = _keyed(a), _keyed(b)
        if ka is not None and kb is not None:
            for k, v in ka.items():
                p = f"{path}[{k}]"
                out += [("-", p, v, None)] if k not in kb else diff_paths(v, kb[k], p)
            out += [("+", f"{path}[{k}]", None, v) for k, v in kb.items() if k not in ka]
            common_a = [k for k in ka if k in kb]
            common_b = [k for k in kb if k in ka]
            if common_a != common_b:
                out.append(("↕", path, common_a, common_b))
            return out
        if a != b:
            if len(a) == len(b):
                for i, (x, y) in enumerate(zip(a, b, strict=True)):
                    out += diff_paths(x, y, f"{path}[{i}]")
            else:
                out.append(("~", path, a, b))
        return out
    if a != b:
        out.append(("~", path, a, b))
    return out


def short(v, width: int = 60) -> str:
    if v is None:
        return ""
    s = yaml.safe_dump(v, default_flow_style=True, width=10_000, sort_keys=False).strip() if isinstance(v, (dict, list)) else str(v)
    if s.endswith("\n...") or s.endswith(" ..."):
        s = s[:-4]
    return s if len(s) <= width else s[: width - 1] + "…"
