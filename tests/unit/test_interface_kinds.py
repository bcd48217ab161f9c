"""interfaces.NAME.kind: a discriminated union built from a registry, so a new kind is one model."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, Field, ValidationError

from backend.lab.lab import example_config
from backend.model import config as m
from backend.model import validate_text
from backend.model.load import _pydantic_problems


def test_ethernet_is_the_default_kind():
    cfg, probs = validate_text(example_config())
    assert probs == [] and {i.kind for i in cfg.interfaces.values()} == {"ethernet"}
    assert isinstance(cfg.interfaces["wan0"], m.EthernetInterface)


def test_unknown_kind_names_its_path():
    _, probs = validate_text("interfaces: {x0: {kind: teleport}}")
    assert [p.path for p in probs] == ["interfaces.x0.kind"]
    assert "ethernet" in probs[0].message


class _Tunnel(m.Interface):  # what the next issue adds: one model class + one registration
    kind: Literal["tunnel"]
    peer: str = Field(pattern=r"^[a-z]+$")


def test_a_registered_kind_joins_the_union(monkeypatch):
    monkeypatch.setitem(m.INTERFACE_KINDS, "tunnel", _Tunnel)

    class Doc(BaseModel):
        interfaces: dict[str, m._interface_union()]

    d = Doc.model_validate({"interfaces": {"a": {}, "b": {"kind": "tunnel", "peer": "x", "mtu": 1400}}})
    assert type(d.interfaces["a"]) is m.EthernetInterface and type(d.interfaces["b"]) is _Tunnel
    with pytest.raises(ValidationError) as e:
        Doc.model_validate({"interfaces": {"b": {"kind": "tunnel", "peer": "X1"}, "c": {"kind": "nope"}}})
    paths = sorted(p.path for p in _pydantic_problems(e.value))
    assert paths == ["interfaces.b.peer", "interfaces.c.kind"], paths  # the union's tag is not in the path
    with pytest.raises(ValidationError) as e:
        Doc.model_validate({"interfaces": {"a": {"peer": "x"}}})  # ethernet has no peer
    assert [p.path for p in _pydantic_problems(e.value)] == ["interfaces.a.peer"]
