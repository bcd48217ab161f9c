"""Hostile inputs shared by the security tests."""

from __future__ import annotations


def alias_bomb(levels: int, width: int = 9, where: str = "system: {hostname: *a%d}") -> str:
    """A 'billion laughs' document: width**levels scalars from a few hundred bytes."""
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * width) + "]")
    lines.append(where % (levels - 1))
    return "\n".join(lines) + "\n"


def bomb_420() -> str:
    b = alias_bomb(7)
    assert len(b) <= 420, len(b)
    return b


def bomb_561() -> str:
    b = alias_bomb(9)
    assert len(b) <= 561, len(b)
    return b
