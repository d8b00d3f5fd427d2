"""Helpers shared by tests: drain the stream like arq's burst mode, and read what MongoDB holds."""

import asyncio
from typing import Any

from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from shared.records import entry_lines
from shared.settings import Settings
from shared.stream import StreamNames, ensure_group
from worker.drain import Drainer


def names_for(settings: Settings) -> StreamNames:
    return StreamNames.for_prefix(settings.STREAM_PREFIX)


async def drain_until_empty(settings: Settings, consumer: str = "test-worker", max_rounds: int = 200) -> int:
    """Run the real drain until a read finds nothing; returns how many entries it settled."""
    redis = Redis.from_url(settings.REDIS_URL)
    mongo = AsyncMongoClient(settings.MONGODB_URI)
    try:
        await ensure_group(redis, names_for(settings))
        drainer = Drainer(redis, mongo[settings.MONGO_DB], names_for(settings), settings, consumer, read_block_ms=50)
        total = 0
        for _ in range(max_rounds):
            settled = await drainer.drain_once()
            if settled == 0:
                return total
            total += settled
        raise AssertionError(f"stream not empty after {max_rounds} batches")
    finally:
        await redis.aclose()
        await mongo.close()


def drain(settings: Settings, **kwargs: Any) -> int:
    return asyncio.run(drain_until_empty(settings, **kwargs))


def read_and_die(settings: Settings, consumer: str, count: int = 10) -> None:
    """A worker named `consumer` reads entries and dies before acking them: they stay pending for it."""

    async def read() -> None:
        redis = Redis.from_url(settings.REDIS_URL)
        names = names_for(settings)
        try:
            await redis.xreadgroup(names.group, consumer, {names.records: ">"}, count=count)
        finally:
            await redis.aclose()

    asyncio.run(read())


async def _find_all(settings: Settings, collection: str) -> list[dict[str, Any]]:
    mongo = AsyncMongoClient(settings.MONGODB_URI)
    try:
        return await mongo[settings.MONGO_DB][collection].find({}).to_list()
    finally:
        await mongo.close()


def stored(settings: Settings, collection: str) -> list[dict[str, Any]]:
    return asyncio.run(_find_all(settings, collection))


async def _stream_length(settings: Settings) -> int:
    redis = Redis.from_url(settings.REDIS_URL)
    try:
        return await redis.xlen(names_for(settings).records)
    finally:
        await redis.aclose()


def stream_length(settings: Settings) -> int:
    return asyncio.run(_stream_length(settings))


async def _queued_records(settings: Settings) -> int:
    redis = Redis.from_url(settings.REDIS_URL)
    try:
        entries = await redis.xrange(names_for(settings).records)
        return sum(len(entry_lines(fields)[1]) for _, fields in entries)
    finally:
        await redis.aclose()


def queued_records(settings: Settings) -> int:
    """Records in the stream: an entry holds one request's records, a batch's in one."""
    return asyncio.run(_queued_records(settings))
