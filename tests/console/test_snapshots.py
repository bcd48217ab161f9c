"""Snapshots of every screen at 80×24 and 120×40 from a fixed (fake) agent state.

The scenes are the ones `make screenshots` (python -m console.screenshots) writes to screenshots/.
Update after an intended change with ``pytest tests/console --snapshot-update`` and look at the SVGs.
"""

from __future__ import annotations

import pytest

from console.screenshots import EXTRAS, SCREENS, SIZES, make_app, scene


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("view", SCREENS)
def test_screen(snap_compare, view, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=scene(view, staged=view == "changes"))


@pytest.mark.parametrize("name", list(EXTRAS))
def test_scene(snap_compare, name):
    app_kw, scene_kw, size = EXTRAS[name]
    assert snap_compare(make_app(**app_kw), terminal_size=size, run_before=scene(**scene_kw))
