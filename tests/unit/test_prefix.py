"""backend/model/prefix.py: disjoint() keeps exactly the prefixes not nested in another one."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from backend.model.prefix import RangeSet, disjoint, parse


@st.composite
def prefixes(draw):
    v6 = draw(st.booleans())
    bits = 128 if v6 else 32
    plen = draw(st.integers(min_value=bits - 8, max_value=bits))  # small space: many nest or repeat
    host = draw(st.integers(min_value=0, max_value=255))
    base = int(ipaddress.ip_address("2001:db8::" if v6 else "10.0.0.0"))
    return str(ipaddress.ip_network((base + host, plen), strict=False))


def reference(items):
    """Quadratic: keep an entry unless another distinct one contains it; one of each duplicate."""
    keep = set()
    for it in items:
        if not any(o[0] == it[0] and o[1] <= it[1] and it[2] <= o[2] and (o[1], o[2]) != (it[1], it[2])
                   for o in items):
            keep.add(it)
    return sorted(keep)


@given(st.lists(prefixes(), max_size=40))
def test_disjoint_keeps_the_outermost_prefixes(nets):
    items = [parse(n) for n in nets]
    got = disjoint(items)
    assert got == reference(items)
    for a, b in zip(got, got[1:], strict=False):  # sorted, non-overlapping within a version
        assert a[0] < b[0] or a[2] < b[1]


def test_disjoint_replaces_a_smaller_prefix_with_a_larger_one_at_the_same_start():
    items = [parse(n) for n in ("10.0.0.0/24", "10.0.0.0/16", "10.0.1.0/24", "10.0.0.0/8", "11.0.0.0/8")]
    assert [t[3] for t in disjoint(items)] == ["10.0.0.0/8", "11.0.0.0/8"]
    rs = RangeSet(items)
    assert ipaddress.ip_address("10.200.0.1") in rs and ipaddress.ip_address("12.0.0.1") not in rs


def test_yaml_scalars_with_a_slash_are_strings_and_other_types_still_resolve():
    import yaml

    from backend.model.load import parse_yaml

    text = ("a: [10.0.0.0/8, 2001:db8::/32, 1/2, 2024-01-01/x]\nb: 10\nc: yes\nd: null\ne: 1.5\n"
            "f: 2024-01-01\ng: '3/4'\nh: 0x1f\ni: 1:30\n")
    assert parse_yaml(text) == yaml.safe_load(text)
    assert parse_yaml(text)["a"] == ["10.0.0.0/8", "2001:db8::/32", "1/2", "2024-01-01/x"]
