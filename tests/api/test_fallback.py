"""While Redis is down, one request at a time tries it; the others go to MongoDB at once."""

import asyncio
import logging

import pytest
from redis.exceptions import TimeoutError as RedisTimeoutError

from api.fallback import RedisFallback


def fail(fallback: RedisFallback) -> None:
    with pytest.raises(RedisTimeoutError), fallback.attempt():
        raise RedisTimeoutError("hung")


def test_while_up_every_request_tries_redis() -> None:
    fallback = RedisFallback()

    with fallback.attempt():
        assert fallback.worth_trying  # another request, concurrently
    assert fallback.worth_trying and not fallback.is_active


def test_while_down_one_probe_at_a_time_then_up_again(caplog: pytest.LogCaptureFixture) -> None:
    fallback = RedisFallback()
    with caplog.at_level(logging.WARNING, logger="api.fallback"):
        fail(fallback)
        assert fallback.is_active and fallback.worth_trying  # nobody is probing yet

        with fallback.attempt():  # the probe
            assert not fallback.worth_trying  # everyone else: straight to MongoDB
        assert not fallback.is_active and fallback.worth_trying

    assert [r.getMessage() for r in caplog.records] == [
        "redis unavailable; writing records to MongoDB directly until it returns", "redis available again; queueing resumed"]


def test_a_failed_or_cancelled_probe_lets_the_next_request_probe() -> None:
    fallback = RedisFallback()
    fail(fallback)

    fail(fallback)  # the probe failed: still down
    assert fallback.is_active and fallback.worth_trying

    async def cancelled_probe() -> None:
        with fallback.attempt():
            await asyncio.sleep(10)

    async def run() -> None:
        probe = asyncio.create_task(cancelled_probe())
        await asyncio.sleep(0.01)
        assert not fallback.worth_trying
        probe.cancel()  # its client left
        with pytest.raises(asyncio.CancelledError):
            await probe

    asyncio.run(run())
    assert fallback.is_active and fallback.worth_trying
