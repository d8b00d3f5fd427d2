"""Reading ahead: the next batch is read while the current one is stored, and is never lost or read twice."""

import asyncio

from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from shared.settings import Settings
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
