"""What the document's schema knows at a section: its keys and their choices.

The section forms (sections.py) list the keys they know by heart first; every other key the schema of
router.yaml has at that place follows, so a field added to the model (an interface kind's own fields)
is editable without a console change. Keys that are lists of items with a section of their own
(``system.access``, ``dns.forwarders`` …) are edited there, not as one value.

The console does not import the backend's model (the import contract in pyproject.toml): it reads
``router_keys.json`` beside this file, the model's JSON Schema reduced to its structure. Regenerate it
after a model change (tests/console/test_dialogs_fit.py fails until then):

    talgate config schema | python -m console.screens.section_model > console/screens/router_keys.json
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

KEYS_FILE = Path(__file__).with_name("router_keys.json")
_KEEP = ("$defs", "properties", "$ref", "items", "patternProperties", "additionalProperties", "anyOf", "oneOf",
         "enum", "const")


def reduce(schema):
    """A JSON Schema without its prose (descriptions, titles, defaults, patterns): structure and choices."""
    if isinstance(schema, list):
        return [reduce(x) for x in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for k, v in schema.items():
        if k not in _KEEP or (k == "additionalProperties" and not isinstance(v, dict)):
            continue
        if k in ("properties", "$defs", "patternProperties"):
            out[k] = {name: reduce(x) for name, x in v.items()}
        elif k in ("enum", "const", "$ref"):
            out[k] = v
        else:
            out[k] = reduce(v)
    return out


@functools.cache
def schema() -> dict:
    try:
        return json.loads(KEYS_FILE.read_text())
    except (OSError, ValueError):
        return {}


def _resolve(node: dict) -> dict:
    ref = node.get("$ref", "")
    if ref.startswith("#/$defs/"):
        return schema().get("$defs", {}).get(ref.removeprefix("#/$defs/"), {})
    return node


def _objects(node: dict) -> list[dict]:
    """The mappings with named keys a value at ``node`` can be (through lists, dicts and unions)."""
    node = _resolve(node)
    if "properties" in node:
        return [node]
    out: list[dict] = []
    for sub in [*node.get("anyOf", []), *node.get("oneOf", []), *([node["items"]] if "items" in node else []),
                *node.get("patternProperties", {}).values(),
                *([node["additionalProperties"]] if isinstance(node.get("additionalProperties"), dict) else [])]:
        out += [o for o in _objects(sub) if o not in out]
    return out


def objects_at(template: str, item: dict | None = None) -> list[dict]:
    """The schema object(s) of one entry at ``template`` (``*`` steps over a named entry). An entry of a
    union tagged by ``kind`` (interfaces): the member of the item's kind (``ethernet`` when it names none)."""
    objs = _objects(schema()) if schema() else []
    for p in template.split("."):
        if p == "*":
            continue
        objs = [o for obj in objs for o in _objects(obj["properties"][p]) if p in obj.get("properties", {})]
    kinds = [o for o in objs if "const" in _resolve(o.get("properties", {}).get("kind", {}))]
    if len(kinds) > 1:
        want = (item or {}).get("kind", "ethernet") if isinstance(item, dict) else "ethernet"
        objs = [o for o in kinds if _resolve(o["properties"]["kind"]).get("const") == want] or objs
    return objs


def model_keys(template: str, shape: str, item: dict | None, sections: dict) -> list[str]:
    """Every key the schema has for an entry at ``template``, but those with a section of their own."""
    out: list[str] = []
    for obj in objects_at(template, item):
        for k in obj.get("properties", {}):
            sub = f"{template}.*.{k}" if shape == "dict" else f"{template}.{k}"
            if k not in out and sub not in sections:
                out.append(k)
    return out


def _choices(node: dict) -> list[str]:
    node = _resolve(node)
    out = [str(v) for v in node.get("enum", [])] + ([str(node["const"])] if "const" in node else [])
    for sub in [*node.get("anyOf", []), *node.get("oneOf", [])]:
        out += [c for c in _choices(sub) if c not in out]
    return out


def model_hint(template: str, key: str, item: dict | None = None) -> str | None:
    """A placeholder from the schema: the choices of a field (``strict | loose | off``)."""
    for obj in objects_at(template, item):
        if key in obj.get("properties", {}):
            choices = _choices(obj["properties"][key])
            if choices:
                return " | ".join(choices)
    return None


if __name__ == "__main__":  # the JSON Schema (talgate config schema) on stdin → router_keys.json on stdout
    json.dump(reduce(json.load(sys.stdin)), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
