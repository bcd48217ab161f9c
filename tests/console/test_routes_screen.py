"""The routes screen (key 9): every route the agent reports, per table, with its kind; `/` filters,
j/k/g/G move, rows follow the agent live (a withdrawn route leaves, the cursor stays on its row),
and the read-only socket serves it."""

from __future__ import annotations

from console.fake import FakeAgent, fake_routes
from console.screenshots import assert_plain, screen_text
from console.widgets import LiveTable

from .conftest import make_app, run_async, settle


@run_async
async def test_key_9_shows_routes_filter_and_vi_keys():
    app = make_app(start="dashboard")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("9")
        await settle(pilot)
        assert app.current_mode == "routes"
        table = app.screen.query_one("#routes", LiveTable)
        assert table.row_count == len(fake_routes()["routes"]) == 12
        text = screen_text(app)
        assert "12 routes: 4 connected, 3 static, 3 bgp, 1 ospf, 1 ospfv3" in text
        line = next(x for x in text.splitlines() if "203.0.113.128/26" in x)
        assert line.split()[:6] == ["main", "bgp", "203.0.113.128/26", "198.51.100.1", "wan0", "20"]
        assert "inactive" in next(x for x in text.splitlines() if "192.168.10.0/24" in x and "bgp" in x)
        assert any(x.split()[:2] == ["100", "static"] for x in text.splitlines())  # another table
        await pilot.press("G")
        await pilot.pause()
        assert table.cursor_row == table.row_count - 1
        await pilot.press("g", "j", "j")
        await pilot.pause()
        assert table.cursor_row == 2
        await pilot.press("k")
        await pilot.pause()
        assert table.cursor_row == 1
        await pilot.press("slash", *"bgp", "enter")
        await pilot.pause()
        assert table.row_count == 3  # two installed BGP routes and the inactive one
        await pilot.press("slash", "ctrl+u", *"ospf", "enter")
        await pilot.pause()
        assert table.row_count == 2


@run_async
async def test_routes_follow_the_agent_and_keep_the_cursor():
    agent = FakeAgent()
    app = make_app(agent=agent, start="routes")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#routes", LiveTable)
        keys = list(table._shown)
        ospf = next(k for k in keys if "192.168.77.0/24" in k)
        table.select_key(ospf)
        doc = fake_routes()
        agent.readers._routes = lambda t: {**doc, "routes": [r for r in doc["routes"]
                                                                if r["dst"] != "203.0.113.128/26"]}
        app.poll_soon()
        await settle(pilot)
        assert table.row_count == 11 and "203.0.113.128/26" not in screen_text(app)
        assert table.current_key == ospf


@run_async
async def test_routes_read_only_and_plain_terminal():
    app = make_app(read_only=True, plain=True, start="routes")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.screen.query_one("#routes", LiveTable).row_count == 12
        assert_plain(app)
        assert "READ-ONLY" in screen_text(app)


@run_async
async def test_the_summary_line_shows_bgp_peers_and_ospf_neighbors(tmp_path):
    """status.routing (the agent's cache of FRR's sessions, backend/observe/routing_state.py) on the
    routes screen: a peer that is not Established stands out."""
    from backend.observe.routing_state import RoutingState

    sessions = [{"protocol": "bgp", "peer": "198.51.100.1", "state": "Established", "uptime": "00:01:02",
                 "received": None, "accepted": 3, "sent": 1, "interface": None, "remote_as": 65002},
                {"protocol": "bgp", "peer": "2001:db8:100::1", "state": "Active", "uptime": None, "received": None,
                 "accepted": None, "sent": None, "interface": None, "remote_as": 65002},
                {"protocol": "ospf", "peer": "192.168.10.10", "state": "Full/DR", "uptime": "3s", "received": None,
                 "accepted": None, "sent": None, "interface": "lan0", "remote_as": None}]
    agent = FakeAgent()
    rs = RoutingState(lambda: tmp_path, reader=lambda vty: (sessions, []))
    rs.poll()
    agent.pipeline.routing_state = rs
    app = make_app(start="routes", agent=agent)
    async with app.run_test(size=(200, 40)) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert "bgp 198.51.100.1 Established 3 accepted   bgp 2001:db8:100::1 Active   ospf 192.168.10.10 Full/DR" \
            in text, text
