"""Big documents are parsed a section at a time and unchanged big sections are remembered; the
result must always equal a whole-document parse, and anything unusual falls back to one."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.lab.lab import example_config
from backend.model import load as L

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from large_config import large_config  # noqa: E402

BIG = "sets:\n  many:\n    addresses:\n" + "".join(f"    - 10.{i // 256}.{i % 256}.0/24\n" for i in range(6000))


def whole(text):
    return yaml.load(text, Loader=L._UniqueKeyLoader)


def outcome(fn, text):
    try:
        return fn(text)
    except (yaml.YAMLError, L.ConfigError):
        return "error"


def test_sections_equal_the_whole_parse_and_are_reused(monkeypatch):
    text = large_config(50, 5, 20000)
    assert L.split_sections(text) is not None
    L._sections_cache.clear()
    assert L.parse_yaml(text) == whole(text)
    assert L._sections_cache, "the big set section is remembered"
    edited = text.replace("rules:\n", "rules:\n- {name: extra, from: z1, to: z2, action: accept}\n", 1)
    want = whole(edited)
    calls = []
    real_load = yaml.load
    monkeypatch.setattr(L.yaml, "load", lambda t, Loader: calls.append(len(t)) or real_load(t, Loader=Loader))
    assert L.parse_yaml(edited) == want
    assert calls and max(calls) < 50_000, "only the small, edited sections were parsed again"


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(["zones", "sets", "rules", "nat", "x_y", "routes"]),
                       st.recursive(st.one_of(st.integers(), st.text(max_size=20), st.booleans(), st.none()),
                                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(min_size=1, max_size=8), c,
                                                                                        max_size=4),
                                    max_leaves=20),
                       min_size=1),
       st.booleans())
def test_any_dumped_document_parses_the_same(doc, flow):
    text = yaml.safe_dump(doc, default_flow_style=flow, sort_keys=False) + BIG
    assert outcome(L.parse_yaml, text) == outcome(whole, text)


def test_unusual_documents_are_parsed_whole():
    for text in (BIG + "other: &a {x: 1}\nmore: *a\n",    # anchors
                 "---\n" + BIG,                           # document marker
                 "- 1\n" + BIG,                           # a sequence, not a mapping
                 BIG + "zones: {a: {},\nb: {}}\n",          # a flow mapping continued at column 0
                 BIG + 'description: "two\nlines: here"\n'):  # a quoted scalar continued at column 0
        assert outcome(L.parse_yaml, text) == outcome(whole, text), text[-60:]


def test_a_key_twice_across_sections_is_named_with_its_line():
    text = BIG + "zones: {}\nsets: {}\n"
    try:
        L.parse_yaml(text)
    except L.ConfigError as e:
        line = text.count("\n")  # the second `sets:` is the last line
        assert str(e).startswith(f"router.yaml:{line}:1: YAML syntax:") and "duplicate key 'sets'" in str(e), str(e)
    else:
        raise AssertionError("a duplicate section must be refused")


def test_the_example_still_validates():
    cfg, probs = L.validate_text(example_config())
    assert cfg is not None and probs == []
