"""Parse ``router.yaml`` text into a RouterConfig, or a list of Problems naming paths."""

from __future__ import annotations

import json

import yaml
from pydantic import ValidationError

from .config import RouterConfig
from .problem import ConfigError, Problem

__all__ = ["ConfigError", "Problem", "load_config", "validate_text", "dump_config", "json_schema", "parse_yaml"]


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml when available
    """SafeLoader that refuses duplicate mapping keys (PyYAML silently keeps the last)."""


def _construct_mapping(loader, node, deep=False):
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
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


def parse_yaml(text: str, source: str = "router.yaml"):
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        msg = " ".join(str(x) for x in (e.context, e.problem) if x)
        raise ConfigError([Problem(where, f"YAML syntax: {msg}")]) from None
    except yaml.YAMLError as e:
        raise ConfigError([Problem(source, f"YAML: {e}")]) from None


def _clean_msg(err: dict) -> str:
    msg = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    if err["type"] == "extra_forbidden":
        return "unknown key"
    got = err.get("input")
    if isinstance(got, (str, int, float, bool)) and str(got) not in msg:
        msg += f" (got {json.dumps(got)})"
    return msg


def _pydantic_problems(e: ValidationError) -> list[Problem]:
    problems = []
    for err in e.errors():
        loc = list(err["loc"])
        # Drop union-branch tags pydantic adds (e.g. 'IPv4Address', 'function-after[...]').
        loc = [p for p in loc if not (isinstance(p, str) and ("[" in p or p[:1].isupper()))]
        problems.append(Problem(loc_to_path(loc), _clean_msg(err)))
    # pydantic reports one error per union branch; keep one per path.
    seen, unique = set(), []
    for p in problems:
        if p.path not in seen:
            seen.add(p.path)
            unique.append(p)
    return unique


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
    problems = check(cfg)
    if any(p.severity == "error" for p in problems):
        return None, problems
    return cfg, problems


def dump_config(cfg: RouterConfig) -> str:
    data = cfg.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)


def json_schema() -> dict:
    return RouterConfig.model_json_schema(by_alias=True)
