import asyncio
import functools
import os
import time

import pytest

from console.app import TalgateApp
from console.fake import FakeAgent


@pytest.fixture(autouse=True)
def _utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    time.tzset()


def make_app(read_only: bool = False, plain: bool = False, start: str = "dashboard", agent=None, **kw) -> TalgateApp:
    agent = agent or FakeAgent(read_only=read_only, **kw)
    # poll slowly in tests: the first poll fills the screen, later ones would only repeat the fixed state.
    return TalgateApp(agent, read_only=read_only, poll_interval=3600, plain=plain, start=start)


async def settle(pilot) -> None:
    """Wait until the first poll landed and every worker finished."""
    await pilot.app.first_data.wait()
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def run_async(fn):
    """Run an async test with asyncio.run (no pytest-asyncio needed); a hang fails after 60 s."""

    @functools.wraps(fn)
    def wrapper(*a, **kw):
        return asyncio.run(asyncio.wait_for(fn(*a, **kw), 60))

    return wrapper


__all__ = ["make_app", "settle", "run_async", "os"]
