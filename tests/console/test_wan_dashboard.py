"""Multi-WAN in the console: each WAN's state, whether it is active, RTT and loss on the dashboard,
from the agent's status (`wans`, backend/agent/wan.py), through the real service layer."""

from __future__ import annotations

from console.fake import FakeAgent

from .conftest import make_app, run_async, settle


class Monitor:
    """What backend/agent/wan.py WanMonitor.status() answers during a failover."""

    def status(self) -> dict:
        return {"isp": {"interface": "wan0", "state": "down", "healthy": False, "active": False,
                        "rtt_ms": None, "loss_pct": 100.0, "checked": True},
                "isp2": {"interface": "wan1", "state": "up", "healthy": True, "active": True,
                         "rtt_ms": 1.25, "loss_pct": 0.0, "checked": True}}


@run_async
async def test_dashboard_shows_each_wan_state_rtt_and_loss():
    agent = FakeAgent()
    agent.pipeline.wans = Monitor()
    assert agent.client.status()["wans"]["isp2"]["active"] is True  # through the API
    app = make_app(agent=agent)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        summary = str(app.screen.query_one("#summary").render())
        assert "isp (wan0) down rtt - loss 100%" in summary
        assert "isp2 (wan1) up active rtt 1.2ms loss 0%" in summary or \
            "isp2 (wan1) up active rtt 1.3ms loss 0%" in summary
