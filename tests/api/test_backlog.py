"""The backlog monitor: ingest refuses past the high watermark, and says so once per episode, not per request."""

import asyncio
import logging

import pytest
from redis.asyncio import Redis

from api.backlog import BacklogMonitor
from shared.settings import Settings
from tests.helpers import names_for


def test_crossing_the_watermark_is_logged_once_each_way(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    names = names_for(settings)

    async def scenario() -> list[bool]:
        redis = Redis.from_url(settings.REDIS_URL)
        monitor = BacklogMonitor(redis, names, high_watermark=3)
        full = []
        try:
            for _ in range(3):
                await redis.xadd(names.records, {"kind": b"event", "data": b"{}"})
            for _ in range(3):  # many polls while full: one line
                await monitor.refresh()
                full.append(monitor.is_full)
            await redis.xtrim(names.records, maxlen=0, approximate=False)
            await monitor.refresh()
            full.append(monitor.is_full)
        finally:
            await redis.aclose()
        return full

    with caplog.at_level(logging.WARNING, logger="api.backlog"):
        full = asyncio.run(scenario())

    assert full == [True, True, True, False]
    assert [r.getMessage() for r in caplog.records] == [
        "backlog over high watermark; refusing ingest", "backlog below high watermark again"]
