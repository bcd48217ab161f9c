"""Issue 13, key → redraw at 1,000 rules: LiveTable renders body cells without the general Rich
pipeline and replaces rows in one pass. These tests hold the fast paths to the DataTable's own
results: the same segments for every kind of cell, and the same rows/cursor as the public API."""

from __future__ import annotations

from rich.text import Text
from textual.app import App
from textual.strip import Strip
from textual.widgets import DataTable

from console import widgets
from console.widgets import LiveTable

from .conftest import run_async

COLS = [("name", 10), ("state", 7, "key"), ("value", None)]
ROWS = [
    ("a", ("plain", Text("up", style="green"), "")),
    ("b", (Text("dim strike", style="dim strike"), "down", "[bold]not markup?[/]")),
    ("c", (Text.assemble(("x", "bold red"), "y", ("z", "underline")), Text("1400*", style="bold yellow"), "ünïcødé 日本")),
    ("d", ("a very long value that is cut", "-", Text("tail", style="reverse"))),
    ("e", ("tab\there", "two\nlines", Text("right", justify="right"))),
]


class One(App):
    def __init__(self, rows):
        super().__init__()
        self.rows = rows

    def compose(self):
        yield LiveTable(COLS, id="t")

    def on_mount(self):
        self.query_one(LiveTable).sync(self.rows)


def _strip(lines) -> Strip:
    return Strip(lines[0]).simplify()


@run_async
async def test_fast_cells_render_as_the_data_tables():
    app = One(ROWS)
    async with app.run_test(size=(60, 12)) as pilot:
        t = app.query_one(LiveTable)
        t.focus()
        await pilot.pause()
        checked = 0
        for cursor in (False, True):
            for hover in (False, True):
                for r in range(t.row_count):
                    for c in range(len(COLS)):
                        width = t.ordered_columns[c].get_render_width(t)
                        t._cell_render_cache.clear()
                        fast = LiveTable._render_cell(t, r, c, t.rich_style, width, cursor, hover)
                        t._cell_render_cache.clear()
                        slow = DataTable._render_cell(t, r, c, t.rich_style, width, cursor, hover)
                        assert _strip(fast) == _strip(slow), (r, c, cursor, hover)
                        assert _strip(fast).cell_length == width
                        checked += 1
        assert checked == 4 * len(ROWS) * len(COLS)
        # whole lines (cells, the filler to the right edge, cursor and hover rows)
        from textual.coordinate import Coordinate

        for cur in range(t.row_count):
            for hov in range(t.row_count):
                for r in range(t.row_count):
                    key = t._row_locations.get_key(r)
                    args = (key, 0, t.rich_style, Coordinate(cur, 0), Coordinate(hov, 0))
                    t._row_render_cache.clear()
                    fast = LiveTable._render_line_in_row(t, *args)
                    t._row_render_cache.clear()
                    slow = DataTable._render_line_in_row(t, *args)
                    assert fast[0] == slow[0] == []
                    assert Strip([s for c in fast[1] for s in c]).simplify() == \
                        Strip([s for c in slow[1] for s in c]).simplify(), (cur, hov, r)


@run_async
async def test_bulk_row_replacement_matches_the_public_api(monkeypatch):
    """Filtering, clearing the filter, reordering and a grown table: the same rows, cells and cursor
    with the fast path as with DataTable's add_row/remove_row."""
    big = [(f"k{i}", (f"r{i:04d}", Text("up" if i % 2 else "down"), f"v{i}")) for i in range(300)]
    results = []
    for fast in (True, False):
        monkeypatch.setattr(widgets, "_FAST", fast)
        app = One(big)
        async with app.run_test(size=(60, 20)) as pilot:
            t = app.query_one(LiveTable)
            t.focus()
            await pilot.pause()
            t.select_key("k150")
            seen = []
            for step in ("r01", "r015", "", "r0", "zzz", ""):
                t.set_filter(step)
                await pilot.pause()
                seen.append((step, t.row_count, t.current_key, [t.get_row_at(i) for i in range(min(5, t.row_count))]))
            t.sync(list(reversed(big)) + [("new", ("new", "up", "x"))])
            await pilot.pause()
            seen.append(("rev", t.row_count, t.current_key, [t.get_row_at(i) for i in range(3)]))
            await pilot.press("G")
            seen.append(("G", t.cursor_row, t.current_key))
            await pilot.press("g", "j", "j")
            seen.append(("gjj", t.cursor_row, t.current_key))
            results.append(seen)
    assert results[0] == results[1]
    assert results[0][2][1] == 300 and results[0][2][2] == "k150"  # cleared filter: all rows, same row selected
    assert results[0][4][1] == 0 and results[0][5][1] == 300


@run_async
async def test_the_state_file_is_written_off_the_ui_thread_once_keys_are_quiet(tmp_path):
    """Writing the staged candidate's text takes seconds at 1,000 rules: it must neither run after
    every key nor hold keys up. Here the write is held open until the test lets it go: keys typed
    meanwhile are handled; the file is written afterwards, and at exit in any case."""
    import asyncio
    import threading

    from console.app import TalgateApp
    from console.fake import FakeAgent, fixed_clock

    from .test_input import RULE

    agent = FakeAgent()
    path = tmp_path / "candidate.yaml"
    app = TalgateApp(agent.console_client, poll_interval=3600, plain=False, state_path=path, start="firewall")
    app.store.clock = fixed_clock
    app.QUIET = 0.5
    gate, started = threading.Event(), threading.Event()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await app.first_data.wait()
        cand = app.store.candidate
        real = cand.text_job

        def held_job():
            job = real()

            def run():
                started.set()
                assert gate.wait(20)
                return job()
            return run

        cand.text_job = held_job
        cand.put("rules", None, dict(RULE))
        app.screen.refresh_view({"edit"})
        await pilot.press("j")
        assert not started.is_set() and not path.exists()  # not after a key: when keys are quiet
        for _ in range(100):
            if started.is_set():
                break
            await asyncio.sleep(0.05)
        assert started.is_set() and app._persisting
        table = app.screen.query_one("#rules", LiveTable)
        before = table.cursor_row
        await pilot.press("k", "G")  # handled while the write is held
        assert table.cursor_row == table.row_count - 1 != before and not path.exists()
        gate.set()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "block-guest-http" in path.read_text() and not app._persisting
        cand.put("rules", None, dict(RULE, name="second"))
    assert "second" in path.read_text()  # the exit wrote the newest candidate itself


@run_async
async def test_graphs_of_200_links_are_made_only_when_in_view():
    from console.fake import FakeAgent, big_config
    from console.screenshots import screen_text
    from console.widgets import LineView

    from .conftest import make_app, settle

    agent = FakeAgent(big_config(0, 200), extra_ifaces=200)
    app = make_app(agent=agent, start="traffic")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        graphs = app.screen.query_one("#graph", LineView)
        assert graphs._count == 1 + 2 * 204  # a header, rx and tx of each link
        assert 0 < len(graphs._lines) < 40 and "guest0 rx" in screen_text(app)
        app.screen.query_one("#graphs").scroll_end(animate=False)
        await settle(pilot)
        last = sorted(agent.ifnames)[-1]
        assert f"{last} rx" in screen_text(app) and len(graphs._lines) < 80
        assert f"{last} rx" in graphs.text()  # every line when asked for all
