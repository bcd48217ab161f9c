"""Shared pieces of the config models (config.py and services.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Unknown keys are errors, everywhere in the document."""

    model_config = ConfigDict(extra="forbid", frozen=False, populate_by_name=True)


def listify(v):
    """A scalar where a list is expected becomes a one-item list; None an empty one."""
    if v is None:
        return []
    if isinstance(v, (str, int)):
        return [v]
    return v
