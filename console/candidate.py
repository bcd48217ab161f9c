"""The candidate: edits accumulate here, as plain YAML data, until they are committed (lazygit's stage).

Nothing in this module talks to the agent or the kernel. The candidate is kept as the document's
data (dicts and lists, in file order) so an edit that does not validate yet can still be held,
shown and fixed; the agent validates it by path (``rules[3].dport``).

Its text is HEAD's text (or the text last written in $EDITOR) with only the edited items changed:
the edits are applied as minimal changes to a round-trip tree (ruamel.yaml: insert, replace or
delete one key or item), and the lines the library writes differently from the file (alignment)
are kept from the file byte for byte. Comments, quoting, flow style and order of the rest survive.
"""

from __future__ import annotations

import copy
import difflib
import io
import json
import re
import threading

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError as RuamelError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

_SAFE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available (what the agent reads with)


def _safe_load(text: str):
    return yaml.load(text, Loader=_SAFE)  # noqa: S506 - a safe loader


def _load(text: str) -> dict:
    data = _safe_load(text) if text else {}
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


_INDENTS = ((2, 4, 2), (2, 2, 0), (4, 4, 2), (4, 6, 4), (4, 4, 0))


def _yaml(indent=(2, 4, 2)) -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=indent[0], sequence=indent[1], offset=indent[2])
    return y


def _rt_dump(doc, indent) -> str:
    buf = io.StringIO()
    _yaml(indent).dump(doc, buf)
    return buf.getvalue()


def _key(v) -> str:
    return json.dumps(v, sort_keys=True, default=str)


def _is_leaf(v) -> bool:
    vals = v.values() if isinstance(v, dict) else v
    return all(not isinstance(x, (dict, list)) for x in vals)


def _scalar(v, like=None):
    """A new scalar; a string keeps the quoting of the value it replaces, and is quoted where PyYAML
    (YAML 1.1, what the agent reads) would read it as something else."""
    if isinstance(v, str):
        if isinstance(like, SingleQuotedScalarString) and "'" not in v and "\n" not in v:
            return SingleQuotedScalarString(v)
        if isinstance(like, DoubleQuotedScalarString):
            return DoubleQuotedScalarString(v)
        try:
            plain_ok = yaml.safe_load(v) == v
        except yaml.YAMLError:
            plain_ok = False
        return v if plain_ok else DoubleQuotedScalarString(v)
    return v


def _node(v, flow: bool | None = None):
    """Plain data → ruamel nodes; leaf collections flow (``[a, b]``), others block, unless ``flow`` says."""
    if isinstance(v, dict):
        m = CommentedMap((k, _node(x, True if flow else None)) for k, x in v.items())
        m.fa.set_flow_style() if (flow if flow is not None else _is_leaf(v) and v) else m.fa.set_block_style()
        return m
    if isinstance(v, list):
        s = CommentedSeq(_node(x, True if flow else None) for x in v)
        s.fa.set_flow_style() if (flow if flow is not None else _is_leaf(v)) else s.fa.set_block_style()
        return s
    return _scalar(v)


def _flow_of(node):
    fa = getattr(node, "fa", None)
    return None if fa is None else fa.flow_style()


def _new(v, siblings) -> object:
    """A new node styled like its siblings (a forward added among flow maps is a flow map)."""
    for s in siblings:
        if isinstance(s, (dict, list)) and isinstance(v, type(s) if isinstance(s, list) else dict):
            node = _node(v, bool(_flow_of(s)))
            if isinstance(s, dict):  # a value quoted in the sibling is quoted in the new item too
                for k, x in node.items():
                    if isinstance(x, str) and type(s.get(k)) in (DoubleQuotedScalarString, SingleQuotedScalarString):
                        node[k] = _scalar(x, s[k])
            return node
    return _node(v)


def patch(node, old, new):
    """Change the round-trip ``node`` (which reads as ``old``) so it reads as ``new``, touching only what
    differs: keys and items are inserted, replaced or deleted one by one; everything else is kept."""
    if isinstance(node, dict) and isinstance(old, dict) and isinstance(new, dict):
        for k in [k for k in old if k not in new]:
            del node[k]
        for k, v in new.items():
            if k not in old:
                pos = list(new).index(k)
                after = [x for x in list(new)[:pos] if x in node]
                idx = list(node).index(after[-1]) + 1 if after else 0
                val = _new(v, list(node.values()))
                if isinstance(node, CommentedMap):
                    node.insert(idx, k, val)
                else:
                    node[k] = val
            elif old[k] != v:
                cur = node[k]
                if isinstance(cur, (dict, list)) and type(old[k]) is type(v):
                    patch(cur, old[k], v)
                else:
                    node[k] = _new(v, [cur]) if isinstance(v, (dict, list)) else _scalar(v, cur)
        return node
    if isinstance(node, list) and isinstance(old, list) and isinstance(new, list):
        ka, kb = [_key(x) for x in old], [_key(x) for x in new]
        ops = difflib.SequenceMatcher(None, ka, kb, autojunk=False).get_opcodes()
        removed: dict[str, list[int]] = {}
        for tag, i1, i2, _j1, _j2 in ops:
            if tag in ("delete", "replace"):
                for i in range(i1, i2):
                    removed.setdefault(ka[i], []).append(i)
        out: list[tuple[object, int | None]] = []  # (node, the index it had: its comments go with it)
        taken: set[int] = set()
        for tag, i1, i2, j1, j2 in ops:
            if tag == "equal":
                out += [(node[i], i) for i in range(i1, i2)]
                continue
            for n, j in enumerate(range(j1, j2)):
                reuse = [i for i in removed.get(kb[j], []) if i not in taken]
                if reuse:  # a moved item keeps its node (style, comments)
                    taken.add(reuse[0])
                    out.append((node[reuse[0]], reuse[0]))
                elif tag == "replace" and i1 + n < i2 and i1 + n not in taken \
                        and isinstance(node[i1 + n], (dict, list)) and type(old[i1 + n]) is type(new[j]):
                    taken.add(i1 + n)
                    out.append((patch(node[i1 + n], old[i1 + n], new[j]), i1 + n))
                elif isinstance(new[j], (dict, list)):
                    out.append((_new(new[j], list(node)), None))
                else:
                    like = node[i1 + n] if tag == "replace" and i1 + n < i2 else None
                    out.append((_scalar(new[j], like), i1 + n if like is not None and i1 + n not in taken else None))
        if len(out) != len(node) or any(src != i or item is not node[i] for i, (item, src) in enumerate(out)):
            _set_items(node, out)
        return node
    return _new(new, [node]) if isinstance(new, (dict, list)) else _scalar(new, node)


def _set_items(seq, items: list[tuple[object, int | None]]) -> None:
    """Replace the items of a sequence; each kept item takes its comments (``ca.items``) along."""
    ca = getattr(seq, "ca", None)
    comments = dict(ca.items) if ca is not None else {}
    if ca is not None:
        ca.items.clear()
    del seq[:]
    for i, (item, src) in enumerate(items):
        seq.append(item)
        if ca is not None and src is not None and src in comments:
            ca.items[i] = comments[src]


def _opcodes(a: list[str], b: list[str], in_place: bool = False) -> list[tuple[str, int, int, int, int]]:
    """difflib opcodes, fast for the texts compared here: the common head and tail are cut off first;
    with ``in_place`` (the file against the library's rendering of it, which rewrites lines where they
    are) a middle of the same length pairs line for line when most lines agree."""
    n = 0
    while n < len(a) and n < len(b) and a[n] == b[n]:
        n += 1
    m = 0
    while m < len(a) - n and m < len(b) - n and a[-1 - m] == b[-1 - m]:
        m += 1
    mid_a, mid_b = a[n:len(a) - m], b[n:len(b) - m]
    if in_place and len(mid_a) == len(mid_b) and \
            sum(x != y for x, y in zip(mid_a, mid_b, strict=True)) <= max(3, len(mid_a) // 10):
        ops, k = [], 0
        while k < len(mid_a):
            same = mid_a[k] == mid_b[k]
            j = k
            while j < len(mid_a) and (mid_a[j] == mid_b[j]) == same:
                j += 1
            ops.append(("equal" if same else "replace", k, j, k, j))
            k = j
    else:
        ops = difflib.SequenceMatcher(None, mid_a, mid_b, autojunk=False).get_opcodes()
    out = [("equal", 0, n, 0, n)] if n else []
    out += [(t, i1 + n, i2 + n, j1 + n, j2 + n) for t, i1, i2, j1, j2 in ops]
    if m:
        out.append(("equal", len(a) - m, len(a), len(b) - m, len(b)))
    return out


def _spans(a: list[str], b: list[str]) -> list[tuple[int, int]]:
    """For each line of b (and one past the end), the lines of a it stands for: itself when equal, its
    counterpart in a block rewritten line for line, the whole block otherwise."""
    span: list[tuple[int, int]] = []
    for tag, i1, i2, j1, j2 in _opcodes(a, b, in_place=True):
        if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
            span += [(i1 + n, i1 + n + 1) for n in range(j2 - j1)]
        elif tag == "replace":
            span += [(i1, i2)] * (j2 - j1)
        elif tag == "insert":
            span += [(i1, i1)] * (j2 - j1)
    return span + [(len(a), len(a))]


def _unmatched(a: list[str], b: list[str]) -> int:
    return sum(i2 - i1 for tag, i1, i2, _j1, _j2 in _opcodes(a, b, in_place=True) if tag != "equal")


_KEY_LINE = re.compile(r"^( *)[^\s#-][^#]*:\s*(#.*)?$")
_DASH_LINE = re.compile(r"^( *)- ")


def _indent_guess(text: str) -> tuple[int, int, int]:
    """The indentation the file uses (mapping, sequence, dash offset), from its first nested key and list."""
    mapping = offset = None
    prev_key = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        d = _DASH_LINE.match(line)
        if d and prev_key is not None and offset is None:
            offset = len(d.group(1)) - prev_key
        k = _KEY_LINE.match(line)
        if mapping is None and prev_key == 0 and not d and line.startswith(" "):
            mapping = len(line) - len(line.lstrip(" "))
        prev_key = len(k.group(1)) if k and not d else None
        if mapping is not None and offset is not None:
            break
    mapping = mapping or 2
    offset = max(offset or 0, 0)
    return mapping, offset + 2, offset


def _is_trivia(line: str) -> bool:
    s = line.strip()
    return not s or s.startswith("#")


def merge_lines(orig: str, base: str, edited: str) -> str:
    """Three-way merge by lines: ``base`` is ``orig`` as the YAML library writes it (spacing may differ),
    ``edited`` is ``base`` with the edits. The hunks base→edited are applied to ``orig``; every other
    line of ``orig`` is kept byte for byte. Comment and blank lines that the library drops with a
    deleted item (it files a comment under the item before it) are kept."""
    A, B, E = orig.splitlines(keepends=True), base.splitlines(keepends=True), edited.splitlines(keepends=True)
    span = _spans(A, B)
    out, pos = [], 0  # pos: next line of A not yet copied
    for tag, i1, i2, j1, j2 in _opcodes(B, E):
        if tag == "equal":
            continue
        start = max(span[i1][0], pos)
        end = max([span[j][1] for j in range(i1, i2)] + [start])
        out += A[pos:start]
        new = E[j1:j2]
        out += new + [ln for ln in A[start:end] if _is_trivia(ln) and ln not in new]
        pos = end
    out += A[pos:]
    return "".join(out)


class RoundTrip:
    """A YAML text and its round-trip tree; ``text_for(data)`` writes data back with minimal changes.

    The tree is parsed on the first edit, and then patched in place edit by edit (``cur`` is what it
    reads as); the library's rendering of the unedited text (``base``) maps its lines to the file's."""

    def __init__(self, text: str):
        self.orig = text
        self.plain = _safe_load(text) if text else {}
        self.doc = None
        self._loaded = False

    def _load(self) -> None:
        self._loaded, self.doc = True, None
        if not self.orig or not isinstance(self.plain, dict):
            return
        try:
            doc = _yaml().load(self.orig)
        except RuamelError:
            return
        if not isinstance(doc, CommentedMap):
            return
        lines = self.orig.splitlines()
        guess = _indent_guess(self.orig)
        best = None
        for ind in [guess] + [i for i in _INDENTS if i != guess]:
            base = _rt_dump(doc, ind)
            miss = _unmatched(lines, base.splitlines())
            if best is None or miss < best[0]:
                best = (miss, ind, base)
            if miss <= max(3, len(lines) // 20):  # the rest (a wrapped flow list …) is mapped as blocks
                break
        self.doc, self.cur = doc, copy.deepcopy(self.plain)
        self.indent, self.base = best[1], best[2]

    def text_for(self, data) -> str | None:
        """The text that reads as ``data``, or None when it cannot be written as minimal changes."""
        if not self._loaded:
            self._load()
        if self.doc is None:
            return None
        try:
            patch(self.doc, self.cur, data)
            self.cur = copy.deepcopy(data)
            edited = _rt_dump(self.doc, self.indent)
        except Exception:  # noqa: BLE001 - the tree is rebuilt next time; the caller falls back
            self._loaded = False
            return None
        out = merge_lines(self.orig, self.base, edited)
        try:
            if _safe_load(out) == data:
                return out
            if _safe_load(edited) == data:
                return edited
        except yaml.YAMLError:
            pass
        return None


_WRITE_LOCK = threading.Lock()  # one writer of a round-trip tree at a time (the UI thread or a worker)


class Candidate:
    def __init__(self, head_text: str = "", head_rev: str | None = None):
        self.fallbacks = 0  # texts that could not be written as minimal changes (see text_job)
        self.reset(head_text, head_rev)

    def reset(self, head_text: str, head_rev: str | None) -> None:
        self.head_text, self.head_rev = head_text, head_rev
        self.head_rev_latest: str | None = None
        self.head = _load(head_text)
        self.data = copy.deepcopy(self.head)
        self._rt = RoundTrip(head_text)
        self.generation = getattr(self, "generation", 0) + 1

    def set_text(self, text: str) -> None:
        """The candidate becomes ``text`` as written (from $EDITOR; the caller has had it validated)."""
        self._rt = RoundTrip(text)
        self.data = copy.deepcopy(_load(text))
        self._touch()

    # -- state ---------------------------------------------------------------------------

    @property
    def dirty(self) -> bool:
        return self.data != self.head or self._rt.orig != self.head_text

    def text(self) -> str:
        """The candidate's text (cached per generation)."""
        return self.text_job()()

    def text_job(self):
        """``text`` as a function that may run in a worker thread: it writes the candidate as it is now
        (a big document takes a while: ruamel.yaml's emitter is pure Python)."""
        gen = self.generation
        cached = getattr(self, "_text", (None,))
        if cached[0] == gen:
            return lambda: cached[1]
        if not self.dirty:
            return lambda: self.head_text
        rt, head_text, head = self._rt, self.head_text, self.head
        if self.data == rt.plain:
            return lambda: rt.orig
        data = copy.deepcopy(self.data)

        def job() -> str:
            with _WRITE_LOCK:
                text = rt.text_for(data)
                # not expected: then the edited sections are written whole (still valid, not minimal)
                self.fallbacks += text is None
                text = text or splice(head_text, head, data)
            if self.generation == gen:
                self._text = (gen, text)
            return text

        return job

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
        if self._rt.orig != self.head_text:
            self._rt = RoundTrip(self.head_text)
        self._touch()


# -- helpers for forms ---------------------------------------------------------------------


def split_list(s: str) -> list:
    """'a, b c' → ['a', 'b', 'c']; numbers become ints (ports stay readable in YAML)."""
    out = []
    for tok in re.split(r"[,\s]+", s.strip()):
        if tok:
            out.append(int(tok) if tok.isdigit() else tok)
    return out


def addr_words(v) -> list[str]:
    """An interface's ipv4/ipv6 value as words: its addresses, or 'dhcp', or what a WAN learns
    (slaac, dhcpv6, pd/56), or WAN[0xSUBNET]HOST for an address from a delegated prefix."""
    if v is None:
        return []
    if isinstance(v, dict):
        pd = v.get("prefix_delegation")
        return [k for k in ("slaac", "dhcpv6") if v.get(k) is True] + (
            [f"pd/{(pd if isinstance(pd, dict) else {}).get('length', 56)}"] if pd else [])
    out = []
    for x in v if isinstance(v, list) else [v]:
        if isinstance(x, dict):
            sub = x.get("subnet", 0)
            out.append(f"{x.get('from_delegated')}[{sub:#x}]{x.get('host') or ''}" if isinstance(sub, int)
                       else f"{x.get('from_delegated')}[{sub}]")
        else:
            out.append(str(x))
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
