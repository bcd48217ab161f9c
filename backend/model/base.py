"""Shared pieces of the config models (config.py and services.py)."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# Names in the document (one definition for config.py and services.py).
NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
IFNAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$"  # IFNAMSIZ - 1
LABEL_RE = r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"  # one DNS label
HOSTNAME_RE = r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
DOMAIN_RE = HOSTNAME_RE[:-1] + r"\.?$"  # a host name, optionally fully qualified

Name = Annotated[str, Field(pattern=NAME_RE)]
IfName = Annotated[str, Field(pattern=IFNAME_RE)]


class Strict(BaseModel):
    """Unknown keys are errors, everywhere in the document."""

    model_config = ConfigDict(extra="forbid", frozen=False, populate_by_name=True)


def listify(v):
    """A scalar where a list is expected becomes a one-item list; None an empty one."""
    if v is None:
        return []
    if isinstance(v, list):
        return v
    return [v]  # a scalar (or a float or mapping: refused by the item's own validator, not a TypeError)


def route_gateway(route):
    """A route (``to``, ``via``, ``interface``) needs a gateway or a link; ``default`` (0.0.0.0/0)
    follows the gateway's family. Shared by the main table's routes and the policy tables'."""
    if route.via is None and route.interface is None:
        raise ValueError("a route needs via or interface")
    net = ipaddress.ip_network(route.to)
    if route.via is not None and route.via.version != net.version:
        if net.prefixlen == 0:
            route.to = "::/0" if route.via.version == 6 else "0.0.0.0/0"
        else:
            raise ValueError(f"gateway {route.via} is not in the family of {route.to}")
    return route
