"""Parse ``router.yaml`` text into a RouterConfig, or a list of Problems naming paths."""

from __future__ import annotations

import json
import os
import re
import stat

import yaml
from pydantic import ValidationError

from .config import RouterConfig
from .problem import MAX_MESSAGE, MAX_PATH, ConfigError, Problem, shorten  # noqa: F401 - re-exported

__all__ = ["ConfigError", "Problem", "load_config", "validate_text", "dump_config", "json_schema", "parse_yaml",
           "read_document", "decode_document", "shorten"]

# Input bounds (issue 11). A document is parsed by the agent for anyone who can reach a socket, so
# its cost must be bounded by these, not by what the sender chose:
# - 16 MiB: ~4x the biggest real configs we measured (a 400,000-prefix address set is 9 MB and
#   validates in ~6 s using ~250 MB); the agent's request body cap is derived from it.
# - 1,000,000 nodes, counted with aliases expanded: the YAML graph is shared, but pydantic and the
#   checks walk it as a tree, so an alias bomb (561 bytes -> billions of nodes) is refused while
#   parsing events, before anything is built. 1 M is 2.5x the 400k-prefix document.
# - 64 levels: the schema needs about 6; deep nesting only feeds recursion in the libraries.
# Problem messages and paths are capped in .problem (MAX_MESSAGE, MAX_PATH).
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
MAX_NODES = 1_000_000
MAX_DEPTH = 64
MAX_PROBLEMS = 200     # problems reported for one document; the rest are counted


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml when available
    """SafeLoader that refuses duplicate mapping keys (PyYAML silently keeps the last)."""

    def resolve(self, kind, value, implicit):
        # A plain scalar holding "/" (an address prefix) matches none of YAML 1.1's implicit types
        # (bool, int, float, null, timestamp, merge, value): a string, without trying their
        # regexes. A 100,000-prefix set spends most of its parse time there otherwise.
        if kind is yaml.ScalarNode and implicit[0] and "/" in value:
            return self.DEFAULT_SCALAR_TAG
        return super().resolve(kind, value, implicit)


# YAML 1.1 reads digits joined by colons as base-60 numbers: an unquoted IPv6 address such as
# 2001:10:20:30:40:50:0:1 became the integer 5602001869620001, which the model took as the address
# ::13:e6fd:b378:4321, and `dport: 1:30` became port 90. YAML 1.2 dropped them; so do we (they stay text).
_NO_COLON = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
_UniqueKeyLoader.yaml_implicit_resolvers = {
    first: [(tag, re.compile("(?!.*:)" + rx.pattern, rx.flags) if tag in _NO_COLON else rx) for tag, rx in items]
    for first, items in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
}


def _construct_mapping(loader, node, deep=False):
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value, not a list or a mapping", key_node.start_mark
            ) from None
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {seen[key] + 1})", mark
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def loc_to_path(loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(document)"


def _where(source: str, mark) -> str:
    return f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source


def check_size(text: str, source: str = "router.yaml") -> None:
    """Refuse text that is not UTF-8-encodable or is over MAX_DOCUMENT_BYTES (raises ConfigError)."""
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as e:
        raise ConfigError([Problem(source, f"not UTF-8 text: an unpaired surrogate at character {e.start}")]) from None
    if size > MAX_DOCUMENT_BYTES:
        raise ConfigError([Problem(source, f"document is {size} bytes, the limit is {MAX_DOCUMENT_BYTES} bytes "
                                           f"({MAX_DOCUMENT_BYTES >> 20} MiB)")])


def decode_document(data: bytes, source: str = "router.yaml") -> str:
    """UTF-8 text from bytes (a file, a git blob), or ConfigError naming where the first bad byte is."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ConfigError([Problem(source, f"document is {len(data)} bytes, the limit is {MAX_DOCUMENT_BYTES} "
                                           f"bytes ({MAX_DOCUMENT_BYTES >> 20} MiB)")])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ConfigError([Problem(source, f"not UTF-8 text: byte 0x{data[e.start]:02x} at line {line}, "
                                           f"column {col}")]) from None


def read_document(path: str, source: str | None = None) -> str:
    """Read a document file the user named (the CLI): at most MAX_DOCUMENT_BYTES (a regular file is
    refused by its size before reading; a pipe or /dev/stdin is read up to the limit), UTF-8.
    ``-`` is stdin. Raises ConfigError. (The agent never reads paths from requests.)"""
    import sys

    source = source or path
    if path == "-":
        return decode_document(sys.stdin.buffer.read(MAX_DOCUMENT_BYTES + 1), source)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode) and st.st_size > MAX_DOCUMENT_BYTES:
                raise ConfigError([Problem(source, f"document is {st.st_size} bytes, the limit is "
                                                   f"{MAX_DOCUMENT_BYTES} bytes ({MAX_DOCUMENT_BYTES >> 20} MiB)")])
            data = f.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as e:
        raise ConfigError([Problem(source, f"cannot read: {e.strerror or e}")]) from None
    return decode_document(data, source)


_OPEN = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSE = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


# An IPv6 literal with a zone index (fe80::1%lan0, [2001:db8::5%x]:443, ...%x/64): Python's ipaddress
# takes it (since 3.9) and it reached the nft sets, interface addresses and routes as text no kernel takes.
_SCOPED_V6 = re.compile(r"\[?[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*%[^\s/\]]*\]?(/\d+|:\d+)?")


def check_shape(text: str, source: str = "router.yaml", loader=None) -> int:
    """Walk the YAML event stream (libyaml's or PyYAML's parser: iterative, nothing is built) and
    refuse documents deeper than MAX_DEPTH or with more than MAX_NODES nodes once aliases are
    expanded. Syntax errors are left to the loader, which reports them with a position."""
    closed: dict[str, tuple[int, int]] = {}    # anchor -> (expanded nodes, depth below it)
    stack: list[list] = []                     # [anchor, nodes, depth below]
    total = 0

    def too_many(mark):
        return ConfigError([Problem(_where(source, mark), f"the document has more than {MAX_NODES} nodes once "
                                                          "aliases are expanded (an alias bomb?)")])

    try:
        for ev in yaml.parse(text, Loader=loader or _UniqueKeyLoader):
            if isinstance(ev, _OPEN):
                stack.append([ev.anchor, 1, 0])
                total += 1
                if len(stack) > MAX_DEPTH:
                    raise ConfigError([Problem(_where(source, ev.start_mark),
                                               f"nested more than {MAX_DEPTH} levels deep")])
                continue
            if isinstance(ev, _CLOSE):
                anchor, n, d = stack.pop()
                if anchor is not None:
                    closed[anchor] = (n, d + 1)
                if stack:
                    stack[-1][1] += n
                    stack[-1][2] = max(stack[-1][2], d + 1)
                continue
            if isinstance(ev, yaml.ScalarEvent):
                n, d = 1, 0
                if "%" in ev.value and _SCOPED_V6.fullmatch(ev.value):
                    raise ConfigError([Problem(_where(source, ev.start_mark), f"{shorten(ev.value, 80)}: an IPv6 zone "
                                               "index (%LINK) is not allowed; the link is named by the interface")])
                if ev.anchor is not None:
                    closed[ev.anchor] = (1, 0)
            elif isinstance(ev, yaml.AliasEvent):
                if ev.anchor not in closed:
                    if any(f[0] == ev.anchor for f in stack):
                        raise ConfigError([Problem(_where(source, ev.start_mark),
                                                   f"alias *{shorten(ev.anchor, 50)} refers to a node that "
                                                   "contains it (a recursive document)")])
                    continue  # undefined: the loader reports it with its position
                n, d = closed[ev.anchor]
                if len(stack) + d > MAX_DEPTH:
                    raise ConfigError([Problem(_where(source, ev.start_mark),
                                               f"nested more than {MAX_DEPTH} levels deep (through an alias)")])
            else:
                continue
            total += n
            if total > MAX_NODES:
                raise too_many(ev.start_mark)
            if stack:
                stack[-1][1] += n
                stack[-1][2] = max(stack[-1][2], d)
    except yaml.YAMLError:
        return total  # the loader reports it
    return total


# -- sections parsed once -------------------------------------------------------------------------
# A commit usually changes one section of a big document; re-parsing an unchanged 100,000-prefix
# set costs ~1 s of pure-Python YAML construction. Plain block documents (top-level keys at column 0,
# no anchors, aliases, tags or directives) are parsed a section at a time and big sections are
# remembered by their text. Anything else -- or any doubt: a section that does not parse alone, a
# key twice -- is parsed whole, exactly as before, so errors keep their positions.

SECTION_CACHE_MIN = 64 * 1024   # smaller sections parse in milliseconds: not worth remembering
SECTION_CACHE_BYTES = 8 * 1024 * 1024  # of section text remembered (~10x that in parsed objects)
_sections_cache: dict[str, tuple[int, object, int]] = {}
_TOP_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*[ \t]*:(?:[ \t]|$)")


def split_sections(text: str) -> list[str] | None:
    """The document's top-level sections as texts (comments and blank lines before a key go with
    it), or None when the document is not plain enough to be cut this way."""
    if any(c in text for c in "&*!\t") or re.search(r"^(---|\.\.\.|%)", text, re.M):
        return None
    chunks: list[list[str]] = [[]]
    started = False
    for line in text.splitlines(keepends=True):
        head = line[:1]
        if head in ("", " ", "\n", "\r", "#") or (started and line[:2] in ("- ", "-\n")):
            chunks[-1].append(line)  # blank, comment, indented, or an item of an indentless sequence
            continue
        if not _TOP_KEY.match(line):
            return None  # a top-level flow mapping, a sequence, a continuation at column 0 ...
        if started:
            chunks.append([])
        started = True
        chunks[-1].append(line)
    return ["".join(c) for c in chunks] if started else None


def _parse_section(chunk: str, source: str) -> tuple[int, dict]:
    import hashlib

    size = len(chunk)
    key = hashlib.sha256(chunk.encode()).hexdigest() if SECTION_CACHE_MIN <= size <= SECTION_CACHE_BYTES else None
    hit = _sections_cache.get(key) if key else None
    if hit is not None:
        return hit[0], hit[1]
    nodes = check_shape(chunk, source)
    data = yaml.load(chunk, Loader=_UniqueKeyLoader)
    if not isinstance(data, dict) or len(data) != 1:
        raise ValueError("not one section")
    if key:
        while _sections_cache and sum(e[2] for e in _sections_cache.values()) + size > SECTION_CACHE_BYTES:
            _sections_cache.pop(next(iter(_sections_cache)))
        _sections_cache[key] = (nodes, data, size)
    return nodes, data


def _parse_by_sections(text: str, source: str):
    """The parsed document when every section parses alone, else None (parse it whole).
    Cached sections are shared: the models built from them copy what they keep (nothing mutates
    the parsed data)."""
    chunks = split_sections(text)
    if not chunks or not any(len(c) >= SECTION_CACHE_MIN for c in chunks):
        return None
    out: dict = {}
    total = 0
    try:
        for c in chunks:
            nodes, data = _parse_section(c, source)
            total += nodes
            (k, v), = data.items()
            if k in out:
                return None  # the whole-document parse names the duplicate with its line
            out[k] = v
    except (ValueError, ConfigError, yaml.YAMLError, RecursionError):
        return None
    if total > MAX_NODES:
        return None  # check_shape on the whole text reports it with a position
    return out


def parse_yaml(text: str, source: str = "router.yaml"):
    check_size(text, source)
    fast = _parse_by_sections(text, source)
    if fast is not None:
        return fast
    check_shape(text, source)
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        msg = " ".join(str(x) for x in (e.context, e.problem) if x)
        raise ConfigError([Problem(where, f"YAML syntax: {msg}")]) from None
    except yaml.YAMLError as e:
        raise ConfigError([Problem(source, f"YAML: {e}")]) from None
    except RecursionError:  # check_shape bounds depth; kept as a last guard
        raise ConfigError([Problem(source, "nested too deeply")]) from None


def _clean_msg(err: dict) -> str:
    msg = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    if err["type"] == "extra_forbidden":
        return "unknown key"
    got = err.get("input")
    if isinstance(got, str) and len(got) > 100:
        got = shorten(got, 100)
    if isinstance(got, (str, int, float, bool)) and str(got) not in msg:
        msg += f" (got {json.dumps(got)})"
    return msg


def _pydantic_problems(e: ValidationError) -> list[Problem]:
    problems = []
    for err in e.errors():
        loc = list(err["loc"])
        # Drop union-branch tags pydantic adds (e.g. 'IPv4Address', 'function-after[...]').
        loc = [p for p in loc if not (isinstance(p, str) and ("[" in p or p[:1].isupper()))]
        if err["type"] == "interface_kind":  # the interface union's tag: the error is its `kind`
            loc.append("kind")
        problems.append(Problem(loc_to_path(loc), _clean_msg(err)))
    # pydantic reports one error per union branch; keep one per path.
    seen, unique = set(), []
    for p in problems:
        if p.path not in seen:
            seen.add(p.path)
            unique.append(p)
    return cap_problems(unique)


def cap_problems(problems: list[Problem]) -> list[Problem]:
    """At most MAX_PROBLEMS problems, the rest counted in a last one."""
    if len(problems) <= MAX_PROBLEMS:
        return problems
    rest = problems[MAX_PROBLEMS - 1:]
    errors = sum(p.severity == "error" for p in rest)
    return problems[:MAX_PROBLEMS - 1] + [Problem("(document)", f"… and {len(rest)} more problems "
                                                                f"({errors} errors) not shown",
                                                  "error" if errors else "warning")]


def load_config(text: str, source: str = "router.yaml") -> RouterConfig:
    """Parse and structurally validate; raises ConfigError. Semantic checks are separate."""
    data = parse_yaml(text, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([Problem("(document)", "the document must be a mapping of sections")])
    try:
        return RouterConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_pydantic_problems(e)) from None


def validate_text(text: str, source: str = "router.yaml") -> tuple[RouterConfig | None, list[Problem]]:
    """Full validation: structure + semantic checks. Returns (config or None, problems)."""
    from .checks import check

    try:
        cfg = load_config(text, source)
    except ConfigError as e:
        return None, e.problems
    problems = cap_problems(check(cfg))
    if any(p.severity == "error" for p in problems):
        return None, problems
    return cfg, problems


def dump_config(cfg: RouterConfig) -> str:
    data = cfg.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)


def json_schema() -> dict:
    return RouterConfig.model_json_schema(by_alias=True)
