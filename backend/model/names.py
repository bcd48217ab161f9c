"""Every document name that reaches the kernel or a daemon, mapped in one place (step 1: the
renderer's mapping, moved here unchanged)."""

from __future__ import annotations

import re

NFT_NAME_MAX = 255
NFT_COMMENT_MAX = 253
LOG_PREFIX_MAX = 127


def _id(*parts: str) -> str:
    return "_".join(re.sub(r"[^A-Za-z0-9_]", "_", p) for p in parts)


def zone_in_chain(zone: str) -> str:
    return _id("zone", zone, "in")


def zone_pair_chain(a: str, b: str) -> str:
    return _id("zone", a, "to", b)


def set_ident(name: str, fam: int) -> str:
    return _id("set", name, f"v{fam}")
