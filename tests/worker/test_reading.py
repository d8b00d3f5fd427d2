"""Reading ahead: the next batch is read while the current one is stored, and is never lost or read twice."""

import asyncio

from pymongo import AsyncMongoClient
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from shared.settings import Settings
from shared.stream import append_record, ensure_group
from tests.helpers import drain, names_for, read_and_die, stored, stream_length
from tests.worker.test_drain import append, event
from worker import drain as drain_module
from worker.drain import Drainer


def test_batches_read_ahead_are_each_stored_once(settings: Settings) -> None:
    settings = settings.model_copy(update={"BATCH_SIZE": 5})
    append(settings, [event(f"ahead-{i}") for i in range(53)])

    assert drain(settings) == 53  # settled entries: one read ahead and also resumed would count twice

    assert sorted(d["_id"] for d in stored(settings, "events")) == sorted(f"ahead-{i}" for i in range(53))
    assert stream_length(settings) == 0


def test_resuming_own_pending_entries_does_not_read_ahead_into_them(settings: Settings) -> None:
    settings = settings.model_copy(update={"BATCH_SIZE": 4, "RECLAIM_IDLE_MS": 60_000})
    append(settings, [event(f"left-{i}") for i in range(10)])
    read_and_die(settings, "stable-name")
    append(settings, [event(f"new-{i}") for i in range(10)])

    # Each entry settled exactly once: the resume walk never meets entries the reader took meanwhile.
    assert drain(settings, consumer="stable-name") == 20
    assert len(stored(settings, "events")) == 20
    assert stream_length(settings) == 0


def test_stopping_stores_the_batch_read_ahead_and_leaves_nothing_pending(settings: Settings, monkeypatch) -> None:
    settings = settings.model_copy(update={"BATCH_SIZE": 5})
    append(settings, [event(f"stop-{i}") for i in range(40)])
    names = names_for(settings)
    real_insert = drain_module.insert_idempotent

    async def run_and_stop_during_first_insert() -> tuple[int, int]:
        redis = Redis.from_url(settings.REDIS_URL)
        mongo = AsyncMongoClient(settings.MONGODB_URI)
        drainer = Drainer(redis, mongo[settings.MONGO_DB], names, settings, "stopping", read_block_ms=50)

        async def slow_first_insert(collection, documents):
            if not drainer.stop.is_set():
                await asyncio.sleep(0.3)  # the read-ahead takes the next batch meanwhile
                drainer.stop.set()
            return await real_insert(collection, documents)

        monkeypatch.setattr(drain_module, "insert_idempotent", slow_first_insert)
        await asyncio.wait_for(drainer.run(), 10)
        pending = (await redis.xpending(names.records, names.group))["pending"]
        await redis.aclose()
        await mongo.close()
        return drainer.stored_total, pending

    stored_total, pending = asyncio.run(run_and_stop_during_first_insert())

    assert (stored_total, pending) == (10, 0)  # the batch in hand and the one read ahead, both acked
    assert len(stored(settings, "events")) == 10
    assert stream_length(settings) == 30


def test_entries_of_a_read_whose_answer_was_lost_are_resumed_at_once(settings: Settings) -> None:
    """Redis carried out the XREADGROUP but the answer never arrived (a timeout while it hung): the
    entry is delivered to this consumer, held by no one. It is stored after the next retry, not
    RECLAIM_IDLE_MS later."""
    settings = settings.model_copy(update={"RECLAIM_IDLE_MS": 60_000, "FLUSH_INTERVAL_MS": 20})
    names = names_for(settings)

    async def run() -> int:
        redis = Redis.from_url(settings.REDIS_URL)
        mongo = AsyncMongoClient(settings.MONGODB_URI)
        await ensure_group(redis, names)
        drainer = Drainer(redis, mongo[settings.MONGO_DB], names, settings, "lossy", read_block_ms=50)
        real_read = drainer.reader._xreadgroup
        lost = False

        async def read_whose_answer_is_lost(count: int, block_ms: int) -> list:
            nonlocal lost
            entries = await real_read(count, block_ms)  # delivered to "lossy" in Redis...
            if entries and not lost:
                lost = True
                raise RedisConnectionError("read timed out")  # ...but never seen by the worker
            return entries

        drainer.reader._xreadgroup = read_whose_answer_is_lost
        task = asyncio.create_task(drainer.run())
        try:
            await append_record(redis, names.records, event("lost"))
            for _ in range(100):  # bounded: 5 s, far below RECLAIM_IDLE_MS
                if drainer.stored_total:
                    break
                await asyncio.sleep(0.05)
        finally:
            drainer.stop.set()
            await asyncio.wait_for(task, 10)
            await redis.aclose()
            await mongo.close()
        return drainer.stored_total

    assert asyncio.run(run()) == 1
    assert [d["_id"] for d in stored(settings, "events")] == ["lost"]
    assert stream_length(settings) == 0
