import asyncio
import functools
import os
import time

import pytest

from console.app import TalgateApp
from console.fake import FakeAgent, fixed_clock
from console.screenshots import settle


@pytest.fixture(autouse=True)
def _utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    time.tzset()


def run_async(fn):
    """Run an async test with asyncio.run (no pytest-asyncio needed); a hang fails after 60 s."""

    @functools.wraps(fn)
    def wrapper(*a, **kw):
        return asyncio.run(asyncio.wait_for(fn(*a, **kw), 60))

    return wrapper


def make_app(read_only: bool = False, plain: bool = False, start: str = "dashboard", agent=None, **kw) -> TalgateApp:
    agent = agent or FakeAgent(read_only=read_only, **kw)
    app = TalgateApp(agent.console_client, read_only=read_only, poll_interval=3600, plain=plain, start=start)
    app.store.clock = fixed_clock
    return app


__all__ = ["make_app", "settle", "run_async", "os"]
