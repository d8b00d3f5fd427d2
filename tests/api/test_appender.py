"""StreamAppender against a real redis-server: concurrent requests share Redis calls, each request's
records stay together and in order, and a failure or a cancellation reaches exactly the requests it concerns."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from api.appender import StreamAppender
from scripts.devstack import Service, free_port
from shared.records import EventRecord, decode_entry, utc_now_ms
from tests.conftest import redis_url


def event(record_id: str) -> EventRecord:
    return EventRecord(id=record_id, timestamp=utc_now_ms(), user_id="u", event_type="click")


class CountingRedis(Redis):
    """The real client, counting the commands it sends (XADD, EVALSHA, ...)."""

    calls: list[str]

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.calls.append(str(args[0]))
        return await super().execute_command(*args, **options)


@pytest.fixture
async def redis(redis_server: Service) -> AsyncIterator[CountingRedis]:
    client = CountingRedis.from_url(redis_url(redis_server))
    client.calls = []
    yield client
    await client.aclose()


async def stored_ids(redis: Redis, stream: str) -> list[str]:
    return [record.id for entry in await stored_entries(redis, stream) for record in entry]


async def stored_entries(redis: Redis, stream: str) -> list[list[EventRecord]]:
    return [decode_entry(fields) for _, fields in await redis.xrange(stream)]


async def test_concurrent_requests_share_calls_and_keep_their_records_together(redis: CountingRedis) -> None:
    stream = f"appender-{free_port()}"
    appender = StreamAppender(redis, stream)
    groups = [[event(f"r{request}-{i}") for i in range(request % 4 + 1)] for request in range(60)]

    await asyncio.wait_for(asyncio.gather(*(appender.append(group) for group in groups)), timeout=5)

    entries = await stored_entries(redis, stream)
    ids = [record.id for entry in entries for record in entry]
    assert sorted(ids) == sorted(record.id for group in groups for record in group)  # all, once
    # One entry per request, holding its records in its order.
    assert sorted([record.id for record in entry] for entry in entries) == sorted(
        [record.id for record in group] for group in groups)
    assert 1 < len(redis.calls) < len(groups) / 4  # coalesced: the first call goes alone, the rest share


async def test_a_lone_request_goes_out_at_once_as_one_xadd(redis: CountingRedis) -> None:
    stream = f"appender-{free_port()}"

    await asyncio.wait_for(StreamAppender(redis, stream).append([event("only")]), timeout=2)

    assert redis.calls == ["XADD"]
    assert await stored_ids(redis, stream) == ["only"]


async def test_calls_are_capped_but_a_request_is_never_split(redis: CountingRedis) -> None:
    stream = f"appender-{free_port()}"
    appender = StreamAppender(redis, stream, max_records_per_call=500)
    first, second, third = ([event(f"{name}-{i}") for i in range(300)] for name in "abc")

    await asyncio.wait_for(asyncio.gather(*(appender.append(group) for group in (first, second, third))), timeout=5)

    assert len(redis.calls) == 3  # 300 + 300 > 500: each request in its own call, none split
    assert len(await stored_ids(redis, stream)) == 900


async def test_a_cancelled_request_does_not_disturb_the_others(redis: CountingRedis) -> None:
    stream = f"appender-{free_port()}"
    appender = StreamAppender(redis, stream)
    first = asyncio.create_task(appender.append([event("first")]))  # in flight while the others wait
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(appender.append([event(f"w{i}")])) for i in range(5)]
    await asyncio.sleep(0)
    waiting[2].cancel()  # its client left while it waited

    results = await asyncio.wait_for(asyncio.gather(first, *waiting, return_exceptions=True), timeout=5)

    assert [type(result) for result in results] == [type(None)] * 3 + [asyncio.CancelledError] + [type(None)] * 2
    assert set(await stored_ids(redis, stream)) >= {"first", "w0", "w1", "w3", "w4"}


async def test_redis_down_fails_every_waiting_request_and_none_hangs() -> None:
    down = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    appender = StreamAppender(down, "appender-down")
    try:
        results = await asyncio.wait_for(
            asyncio.gather(*(appender.append([event(f"x{i}")]) for i in range(10)), return_exceptions=True), timeout=10)
    finally:
        await down.aclose()

    assert all(isinstance(result, RedisConnectionError) for result in results)


async def test_the_appender_serves_again_after_a_failure(redis: CountingRedis) -> None:
    stream = f"appender-{free_port()}"
    appender = StreamAppender(redis, stream)
    await redis.set(stream, "not a stream")  # XADD fails: WRONGTYPE

    failed = await asyncio.gather(appender.append([event("a")]), appender.append([event("b")]), return_exceptions=True)
    await redis.delete(stream)
    await appender.append([event("c")])

    assert all(isinstance(result, Exception) for result in failed)
    assert await stored_ids(redis, stream) == ["c"]


async def test_a_hung_redis_times_out_every_waiting_request_and_skips_them_later() -> None:
    """A Redis that accepts connections and never answers (as when it is stopped with SIGSTOP)."""
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # keep the connection open, answer nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    hung = Redis.from_url(f"redis://127.0.0.1:{port}/0", socket_timeout=30, socket_connect_timeout=30)
    appender = StreamAppender(hung, "appender-hung", timeout_s=0.3)
    try:
        started = asyncio.get_running_loop().time()
        results = await asyncio.wait_for(
            asyncio.gather(*(appender.append([event(f"h{i}")]) for i in range(10)), return_exceptions=True), timeout=5)
        waited = asyncio.get_running_loop().time() - started
        later = await asyncio.gather(appender.append([event("late")]), return_exceptions=True)
    finally:
        await hung.aclose()
        for writer in accepted:
            writer.close()
        server.close()

    assert all(isinstance(result, RedisTimeoutError) for result in [*results, *later]), results
    assert waited < 3  # the deadline, not the client's 30 s socket timeout
    assert len(accepted) == 1  # one call in flight for everyone, not one connection per request
