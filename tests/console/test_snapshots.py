"""Snapshots of every screen and dialog at 80x24, 120x40, 60x20 and 200x50, and under TERM=linux and
TERM=vt100 (where the test also asserts that every character drawn is plain ASCII), from a fixed
(fake) agent state.

The scenes are the ones `make screenshots` (python -m console.screenshots) writes to screenshots/.
Update after an intended change with ``pytest tests/console --snapshot-update`` and look at the SVGs.
"""

from __future__ import annotations

import pytest

from console.screenshots import jobs, make_app, scene

JOBS = {name: spec for name, *spec in jobs()}


@pytest.mark.parametrize("name", list(JOBS))
def test_scene(snap_compare, name):
    app_kw, scene_kw, size = JOBS[name]
    assert snap_compare(make_app(**app_kw), terminal_size=size, run_before=scene(**scene_kw))
