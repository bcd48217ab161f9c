"""What the document's model (backend/model/config.py) knows at a section: its keys and their choices.

The section forms (sections.py) list the keys they know by heart first; every other field of the
model at that place follows, so a field added to the model (an interface kind's own fields, from the
INTERFACE_KINDS registry) is editable without a console change. Fields that are lists of items with a
section of their own (``system.access``, ``dns.forwarders`` …) are edited there, not as one value.
"""

from __future__ import annotations

import typing

from pydantic import BaseModel

from backend.model.config import INTERFACE_KINDS, RouterConfig


def _models(ann) -> list[type[BaseModel]]:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return [ann]
    out: list[type[BaseModel]] = []
    for a in typing.get_args(ann):
        out += [m for m in _models(a) if m not in out]
    return out


def _fields(model: type[BaseModel]) -> dict[str, object]:
    """Key in the document (the alias: ``from``, ``in``) → its pydantic FieldInfo."""
    return {f.alias or name: f for name, f in model.model_fields.items()}


def models_at(template: str, item: dict | None = None) -> list[type[BaseModel]]:
    """The model(s) of one entry at ``template`` (``*`` steps over a named entry). Interfaces: the model of
    the item's kind (ethernet when it names none)."""
    parts = template.split(".")
    models: list[type[BaseModel]] = [RouterConfig]
    for i, p in enumerate(parts):
        nxt: list[type[BaseModel]] = []
        for m in models:
            if p == "*":
                nxt.append(m)
                continue
            f = _fields(m).get(p)
            if f is not None:
                nxt += [x for x in _models(f.annotation) if x not in nxt]
        models = nxt
        if parts[: i + 1] == ["interfaces"]:
            kind = (item or {}).get("kind", "ethernet") if isinstance(item, dict) else "ethernet"
            models = [INTERFACE_KINDS[kind]] if kind in INTERFACE_KINDS else models
    return models


def model_keys(template: str, shape: str, item: dict | None, sections: dict) -> list[str]:
    """Every key the model has for an entry at ``template``, but those with a section of their own."""
    out: list[str] = []
    for m in models_at(template, item):
        for k in _fields(m):
            sub = f"{template}.*.{k}" if shape == "dict" else f"{template}.{k}"
            if k not in out and sub not in sections:
                out.append(k)
    return out


def _choices(ann) -> list[str]:
    if typing.get_origin(ann) is typing.Literal:
        return [str(a) for a in typing.get_args(ann)]
    out: list[str] = []
    for a in typing.get_args(ann):
        out += [c for c in _choices(a) if c not in out]
    return out


def model_hint(template: str, key: str, item: dict | None = None) -> str | None:
    """A placeholder from the model: the choices of a Literal field (``strict | loose | off``)."""
    for m in models_at(template, item):
        f = _fields(m).get(key)
        if f is not None:
            choices = _choices(f.annotation)
            if choices:
                return " | ".join(choices)
    return None
