import asyncio

from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from shared.records import EventRecord, utc_now_ms
from shared.settings import Settings
from shared.stream import append_records, ensure_group
from tests.helpers import drain, names_for, stored, stream_length
from worker.dead_letters import list_dead_letters, replay_dead_letters
from worker.drain import Drainer


def event(record_id: str, **fields: object) -> EventRecord:
    return EventRecord(id=record_id, timestamp=utc_now_ms(), user_id="u", event_type="click", **fields)


async def _append(settings: Settings, records: list, raw: list[dict] | None = None) -> None:
    redis = Redis.from_url(settings.REDIS_URL)
    try:
        await ensure_group(redis, names_for(settings))
        await append_records(redis, names_for(settings).records, records)
        for fields in raw or []:
            await redis.xadd(names_for(settings).records, fields)
    finally:
        await redis.aclose()


def append(settings: Settings, records: list, raw: list[dict] | None = None) -> None:
    asyncio.run(_append(settings, records, raw))


def test_batches_are_stored_acked_and_deleted(settings: Settings) -> None:
    settings = settings.model_copy(update={"BATCH_SIZE": 7})
    append(settings, [event(f"id-{i}") for i in range(50)])

    assert drain(settings) == 50

    assert sorted(d["_id"] for d in stored(settings, "events")) == sorted(f"id-{i}" for i in range(50))
    assert stream_length(settings) == 0


def test_redelivered_record_is_stored_once(settings: Settings) -> None:
    append(settings, [event("same"), event("same"), event("other")])

    assert drain(settings) == 3

    assert sorted(d["_id"] for d in stored(settings, "events")) == ["other", "same"]


def test_undecodable_entry_goes_to_dead_letters_and_the_rest_is_stored(settings: Settings) -> None:
    append(settings, [event("good-1"), event("good-2")], raw=[{"kind": "event", "data": b"{not json"}])

    assert drain(settings) == 3

    assert sorted(d["_id"] for d in stored(settings, "events")) == ["good-1", "good-2"]
    [letter] = stored(settings, "dead_letters")
    assert letter["data"] == "{not json"
    assert "undecodable" in letter["reason"]
    assert stream_length(settings) == 0


def test_entries_of_a_crashed_consumer_are_reclaimed(settings: Settings) -> None:
    append(settings, [event(f"crash-{i}") for i in range(5)])

    async def read_without_ack() -> None:
        redis = Redis.from_url(settings.REDIS_URL)
        names = names_for(settings)
        await redis.xreadgroup(names.group, "crashed", {names.records: ">"}, count=10)
        await redis.aclose()

    asyncio.run(read_without_ack())
    assert drain(settings) == 0  # not idle long enough yet: nothing is stolen from a live worker
    asyncio.run(asyncio.sleep(settings.RECLAIM_IDLE_MS / 1000 + 0.1))

    assert drain(settings, consumer="survivor") == 5

    assert sorted(d["_id"] for d in stored(settings, "events")) == [f"crash-{i}" for i in range(5)]
    assert stream_length(settings) == 0


def test_entry_delivered_too_often_is_dead_lettered_then_replayed(settings: Settings) -> None:
    settings = settings.model_copy(update={"MAX_DELIVERIES": 2, "RECLAIM_IDLE_MS": 100})
    append(settings, [event("stuck")])
    names = names_for(settings)

    async def deliver_without_ack(times: int) -> None:
        redis = Redis.from_url(settings.REDIS_URL)
        await redis.xreadgroup(names.group, "c0", {names.records: ">"}, count=10)
        for i in range(times - 1):
            await asyncio.sleep(0.15)
            await redis.xautoclaim(names.records, names.group, f"c{i + 1}", min_idle_time=100)
        await redis.aclose()

    asyncio.run(deliver_without_ack(2))
    asyncio.run(asyncio.sleep(0.15))

    assert drain(settings) == 0  # the third delivery is one too many: dead-lettered, not stored
    assert stored(settings, "events") == []
    [letter] = stored(settings, "dead_letters")
    assert "delivered more than 2 times" in letter["reason"]

    async def replay() -> tuple[int, int]:
        mongo = AsyncMongoClient(settings.MONGODB_URI)
        result = await replay_dead_letters(mongo[settings.MONGO_DB])
        left = await list_dead_letters(mongo[settings.MONGO_DB])
        await mongo.close()
        return result, len(left)

    assert asyncio.run(replay()) == ((1, 0), 0)
    assert [d["_id"] for d in stored(settings, "events")] == ["stuck"]


def test_mongodb_down_keeps_entries_pending_until_it_returns(settings: Settings) -> None:
    append(settings, [event("wait-1"), event("wait-2")])
    names = names_for(settings)

    async def run_against_dead_mongo() -> int:
        redis = Redis.from_url(settings.REDIS_URL)
        dead = AsyncMongoClient("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200&connectTimeoutMS=200")
        await ensure_group(redis, names)
        drainer = Drainer(redis, dead["x"], names, settings, "blocked", read_block_ms=50)
        task = asyncio.create_task(drainer.run())
        await asyncio.sleep(1.5)
        drainer.stop.set()
        await asyncio.wait_for(task, 5)
        pending = (await redis.xpending(names.records, names.group))["pending"]
        await redis.aclose()
        await dead.close()
        return pending

    assert asyncio.run(run_against_dead_mongo()) == 2
    assert stream_length(settings) == 2
    asyncio.run(asyncio.sleep(settings.RECLAIM_IDLE_MS / 1000 + 0.1))

    assert drain(settings, consumer="recovered") == 2
    assert sorted(d["_id"] for d in stored(settings, "events")) == ["wait-1", "wait-2"]
