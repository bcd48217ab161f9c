"""Issue 13, the console's looks (defects 7, 8, 9, 13 and the events screen): staged values are
marked, columns size to content and window, hard terminals get plain characters, traffic graphs
follow the width with stable columns, and the events screen shows the audit log live."""

from __future__ import annotations

from console.fake import T0, FakeAgent
from console.screenshots import screen_text
from console.widgets import LiveTable, aligned_buckets, fit_widths

from .conftest import make_app, run_async, settle


async def _goto(pilot, view: str) -> None:
    await settle(pilot)
    await pilot.app.switch_mode(view)
    await settle(pilot)


@run_async
async def test_a_staged_mtu_is_marked_and_not_shown_as_the_kernels():
    app = make_app(start="interfaces")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        cand = app.store.candidate
        cand.replace(cand.interface_data("lan0", ["192.168.10.1/24"], None, 1400, "lan"))
        app.screen.refresh_view({"edit"})
        await pilot.pause()
        table = app.screen.query_one("#ifaces", LiveTable)
        assert table.raw_row("lan0")[3].plain == "1400*"  # the kernel still has 1500
        assert table.raw_row("wan0")[3] == "1500"  # live, nothing staged
        text = screen_text(app)
        assert "1400*" in text and "* staged in the candidate, not live yet" in text
        table.select_key("lan0")
        await pilot.press("enter")
        await settle(pilot)
        assert "staged: mtu 1400 (live 1500)" in screen_text(app)


@run_async
async def test_columns_show_whole_values_when_wide_and_keep_key_columns_when_narrow():
    app = make_app(start="firewall")
    async with app.run_test(size=(200, 50)) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert "wan, lan, guest, mgmt" in text and "echo-request" in text and "…" not in text
    app = make_app(start="firewall")
    async with app.run_test(size=(60, 20)) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert "ssh-from-mgmt" in text and "ping-router" in text  # the key column is whole
        assert "accept" in text and "6200" in text  # every column still on screen
        assert " wan… " in text and " echo… " in text  # cut values end in …
        assert all(len(line.rstrip()) <= 60 for line in text.splitlines())
        assert "? help" in text and "q quit" in text and "/ filter" in text  # the footer keeps every key


def test_fit_widths_shrinks_the_widest_non_key_column_first():
    assert fit_widths([3, 20, 30, 10], [3, 4, 4, 4], [True, True, False, False], 63) == [3, 20, 30, 10]
    assert fit_widths([3, 20, 30, 10], [3, 4, 4, 4], [True, True, False, False], 50) == [3, 20, 17, 10]
    # nothing left to take from the others: key columns give way last
    assert fit_widths([3, 20, 30, 10], [3, 4, 4, 4], [True, True, False, False], 20) == [3, 9, 4, 4]


def _vt100_app(start: str):
    import os

    old = os.environ.get("TERM")
    os.environ["TERM"] = "vt100"
    try:
        return make_app(plain=None, start=start)  # plain follows TERM
    finally:
        if old is None:
            del os.environ["TERM"]
        else:
            os.environ["TERM"] = old


@run_async
async def test_vt100_draws_every_state_in_plain_characters():
    app = _vt100_app("changes")
    assert app.plain
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.store.candidate.put("rules", None, {"name": "x", "from": "guest", "to": "wan", "action": "drop"})
        await pilot.press("c")  # the commit dialog: placeholders, an unticked checkbox
        await settle(pilot)
        text = screen_text(app)
        assert text.isascii(), sorted({c for c in text if not c.isascii()})
        assert "[ ] force" in text  # not an X
        line = next(x for x in text.splitlines() if "message" in x)
        assert "<" in line and ">" in line  # the placeholder does not read as a value
        await pilot.press("tab", "tab", "space")  # tick it
        await pilot.pause()
        assert "[x] force" in screen_text(app)
    app = _vt100_app("firewall")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("t")  # the tracer: two selects
        await settle(pilot)
        text = screen_text(app)
        assert text.isascii() and text.count(" v ") >= 2 and "+----" in text


def test_graph_columns_are_fixed_to_the_clock():
    times = [T0 + i for i in range(300)]
    vals = [float(i % 17) for i in range(300)]
    a, step = aligned_buckets(times, vals, 54)
    assert step == 6 and len(a) <= 54
    # one second later: every column but the newest holds what it held (no shifting bars)
    b, _ = aligned_buckets(times[1:] + [T0 + 300], vals[1:] + [0.0], 54)
    assert len(b) == len(a) + 1 and a[1:] == b[1:len(a)]  # b[0] lost a sample, b[-1] is new
    wide, step = aligned_buckets(times, vals, 400)
    assert step == 1 and wide == vals  # the window holds every second


@run_async
async def test_traffic_labels_units_and_follows_the_width():
    widths = {}
    for w, h in ((80, 24), (200, 50)):
        app = make_app(start="traffic")
        async with app.run_test(size=(w, h)) as pilot:
            await settle(pilot)
            text = screen_text(app)
            assert "bit/s" in text and "4.1MB" in text
            line = next(x for x in text.splitlines() if x.startswith("guest0 rx"))
            widths[w] = line.index(" / ")  # the graph ends where the rates begin
            assert all(len(x.rstrip()) <= w for x in text.splitlines())
    assert widths[200] - widths[80] >= 100


@run_async
async def test_events_screen_is_live_and_keeps_the_cursor():
    agent = FakeAgent(events=True)
    app = make_app(agent=agent, start="events")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#events", LiveTable)
        kinds = [table.raw_row(k)[1].plain for k in table._shown]
        assert kinds == ["drift-repair", "refused", "auto-rollback", "commit", "confirm", "commit"]
        assert "auto-rollback" in screen_text(app) and "ssh from 192.168.99.2" in screen_text(app)
        table.move_cursor(row=2)
        key = table.current_key
        agent.client.commit(agent.text() + "# a new commit\n", "a new commit", base=agent.head)
        app.poll_soon()
        await settle(pilot)
        assert table.row_count == 7 and table.raw_row(table._shown[0])[5] == "a new commit"
        assert table.current_key == key  # the cursor stays on its entry
