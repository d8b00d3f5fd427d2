import asyncio
import json

import orjson
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from shared.records import EventRecord, utc_now_ms
from shared.settings import Settings
from shared.records import encode_entries
from shared.stream import append_entries, ensure_group
from tests.helpers import drain, names_for, read_and_die, stored, stream_length
from worker.dead_letters import list_dead_letters, replay_dead_letters
from worker.drain import Drainer


def event(record_id: str, **fields: object) -> EventRecord:
    return EventRecord(id=record_id, timestamp=utc_now_ms(), user_id="u", event_type="click", **fields)


async def _append(settings: Settings, records: list, raw: list[dict] | None = None) -> None:
    redis = Redis.from_url(settings.REDIS_URL)
    try:
        await ensure_group(redis, names_for(settings))
        # One entry per record, as single events are queued.
        await append_entries(redis, names_for(settings).records, [e for r in records for e in encode_entries([r])])
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
    read_and_die(settings, "crashed")
    assert drain(settings) == 0  # not idle long enough yet: nothing is stolen from a live worker
    asyncio.run(asyncio.sleep(settings.RECLAIM_IDLE_MS / 1000 + 0.1))

    assert drain(settings, consumer="survivor") == 5

    assert sorted(d["_id"] for d in stored(settings, "events")) == [f"crash-{i}" for i in range(5)]
    assert stream_length(settings) == 0


def _deliver_without_ack(settings: Settings, times: int) -> None:
    """Read the stream `times` times (c0, then XAUTOCLAIM by c1...) without acking, as crashed workers would."""
    names = names_for(settings)

    async def deliver() -> None:
        redis = Redis.from_url(settings.REDIS_URL)
        await redis.xreadgroup(names.group, "c0", {names.records: ">"}, count=10)
        for i in range(times - 1):
            await asyncio.sleep(0.15)
            await redis.xautoclaim(names.records, names.group, f"c{i + 1}", min_idle_time=100)
        await redis.aclose()

    asyncio.run(deliver())
    asyncio.run(asyncio.sleep(0.15))


def test_entry_delivered_too_often_but_storable_is_stored_alone(settings: Settings) -> None:
    settings = settings.model_copy(update={"MAX_DELIVERIES": 2, "RECLAIM_IDLE_MS": 100})
    append(settings, [event("killed-thrice"), event("killed-thrice-2")])
    _deliver_without_ack(settings, 3)  # e.g. three workers killed mid-batch

    assert drain(settings) == 2  # the third delivery is one too many: each is tried on its own, and fits

    assert sorted(d["_id"] for d in stored(settings, "events")) == ["killed-thrice", "killed-thrice-2"]
    assert stored(settings, "dead_letters") == []
    assert stream_length(settings) == 0


def test_entry_that_killed_a_worker_storing_it_alone_is_dead_lettered_then_replayed(settings: Settings) -> None:
    settings = settings.model_copy(update={"MAX_DELIVERIES": 2, "RECLAIM_IDLE_MS": 100})
    append(settings, [event("stuck")])
    _deliver_without_ack(settings, 2)
    names = names_for(settings)

    async def mark_lone_attempt_of_a_dead_worker() -> None:
        redis = Redis.from_url(settings.REDIS_URL)
        [(entry_id, _)] = await redis.xrange(names.records)
        await redis.set(names.lone_attempt_key(entry_id), "a-worker-that-died")
        await redis.aclose()

    asyncio.run(mark_lone_attempt_of_a_dead_worker())

    assert drain(settings) == 1
    assert stored(settings, "events") == []
    [letter] = stored(settings, "dead_letters")
    assert "delivered more than 2 times; a worker died storing it alone" in letter["reason"]

    async def replay() -> tuple[tuple[int, int], int]:
        mongo = AsyncMongoClient(settings.MONGODB_URI)
        result = await replay_dead_letters(mongo[settings.MONGO_DB])
        left = await list_dead_letters(mongo[settings.MONGO_DB])
        await mongo.close()
        return result, len(left)

    assert asyncio.run(replay()) == ((1, 0), 0)
    assert [d["_id"] for d in stored(settings, "events")] == ["stuck"]


def test_records_bson_cannot_encode_are_dead_lettered_and_the_rest_stored(settings: Settings) -> None:
    # Only a writer other than the API (which refuses these at the door) can queue them.
    def raw(record: EventRecord) -> dict:  # json, not orjson: orjson refuses integers past 64 bits
        return {"kind": "event", "data": json.dumps(record.model_dump(mode="json", exclude_unset=True))}

    append(settings, [event("fine-1"), event("fine-2")],
           raw=[raw(event("big-int", extra_data={"n": 2**70})), raw(event("nul-key", extra_data={"a\x00b": 1}))])

    assert drain(settings) == 4

    assert sorted(d["_id"] for d in stored(settings, "events")) == ["fine-1", "fine-2"]
    letters = {letter["_id"]: letter for letter in stored(settings, "dead_letters")}
    assert sorted(orjson.loads(letter["data"])["id"] for letter in letters.values()) == ["big-int", "nul-key"]
    assert all(letter["reason"].startswith("cannot be encoded as BSON") for letter in letters.values())
    assert stream_length(settings) == 0


def test_restarted_worker_resumes_its_own_unacked_entries_at_once(settings: Settings) -> None:
    settings = settings.model_copy(update={"RECLAIM_IDLE_MS": 60_000})  # no reclaim: only resuming can do it
    append(settings, [event(f"own-{i}") for i in range(3)])
    read_and_die(settings, "stable-name")

    assert drain(settings, consumer="someone-else") == 0
    assert drain(settings, consumer="stable-name") == 3
    assert sorted(d["_id"] for d in stored(settings, "events")) == ["own-0", "own-1", "own-2"]
    assert stream_length(settings) == 0


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
