"""A request's records share one stream entry: the worker stores each record of it, dead-letters a
bad one alone, and sizes its reads in records, not entries."""

import asyncio
import json

import orjson
import pytest
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from shared.records import EventRecord, QueryRecord, decode_entry, encode_entries, utc_now_ms
from shared.settings import Settings
from shared.stream import append_entries, append_records, ensure_group
from tests.helpers import drain, names_for, stored, stream_length
from worker.dead_letters import replay_dead_letters
from worker import drain as drain_module
from worker.drain import Drainer
from worker.reading import MAX_ENTRIES_PER_READ


def event(record_id: str, **fields: object) -> EventRecord:
    return EventRecord(id=record_id, timestamp=utc_now_ms(), user_id="u", event_type="click", **fields)


def queue(settings: Settings, entries: list[dict]) -> None:
    async def run() -> None:
        redis = Redis.from_url(settings.REDIS_URL)
        try:
            await ensure_group(redis, names_for(settings))
            await append_entries(redis, names_for(settings).records, entries)
        finally:
            await redis.aclose()

    asyncio.run(run())


def test_records_of_a_kind_share_an_entry_and_split_back_exactly() -> None:
    query = QueryRecord(id="q", timestamp=utc_now_ms(), user_id="u", query="?", model_used="m", latency_ms=1.0)
    records = [event("a", extra_data={"text": "two\nlines", "sep": "\r\n"}), event("b"), query, event("c")]

    entries = encode_entries(records)

    assert [entry["kind"] for entry in entries] == [b"event", b"query", b"event"]
    decoded = [decode_entry({k.encode(): v for k, v in entry.items()}) for entry in entries]
    assert [[r.id for r in entry] for entry in decoded] == [["a", "b"], ["q"], ["c"]]
    assert decoded[0][0].extra_data == {"text": "two\nlines", "sep": "\r\n"}  # escaped inside the line


def test_a_batch_entry_is_stored_whole_and_acked(settings: Settings) -> None:
    queue(settings, encode_entries([event(f"b-{i}") for i in range(30)]))

    assert stream_length(settings) == 1
    assert drain(settings) == 30

    assert sorted(d["_id"] for d in stored(settings, "events")) == sorted(f"b-{i}" for i in range(30))
    assert stream_length(settings) == 0


def test_a_bad_record_in_a_batch_entry_is_dead_lettered_alone(settings: Settings) -> None:
    # Only a writer other than the API (which refuses these at the door) can queue them.
    big_int = json.dumps(event("big-int", extra_data={"n": 2**70}).model_dump(mode="json", exclude_unset=True))
    lines = [event("good-1").to_json(), b"{not json", big_int.encode(), event("good-2").to_json()]
    queue(settings, [{"kind": b"event", "data": b"\n".join(lines)}])

    assert drain(settings) == 4

    assert sorted(d["_id"] for d in stored(settings, "events")) == ["good-1", "good-2"]
    letters = {letter["_id"].split("/")[1]: letter for letter in stored(settings, "dead_letters")}
    assert sorted(letters) == ["1", "2"]  # the line of each within its entry
    assert letters["1"]["data"] == "{not json" and "undecodable record" in letters["1"]["reason"]
    assert orjson.loads(letters["2"]["data"])["id"] == "big-int"
    assert letters["2"]["reason"].startswith("cannot be encoded as BSON")
    assert stream_length(settings) == 0


def test_a_whole_batch_entry_dead_lettered_is_replayed_whole(settings: Settings) -> None:
    async def run() -> tuple[int, int]:
        mongo = AsyncMongoClient(settings.MONGODB_URI)
        try:
            db = mongo[settings.MONGO_DB]
            [entry] = encode_entries([event("r-1"), event("r-2"), event("r-3")])
            # As a suspect entry is dead-lettered when a worker died storing it alone.
            await db["dead_letters"].insert_one({"_id": "1-0", "kind": "event", "data": entry["data"].decode(),
                                                 "reason": "a worker died storing it alone"})
            return await replay_dead_letters(db)
        finally:
            await mongo.close()

    assert asyncio.run(run()) == (1, 0)
    assert sorted(d["_id"] for d in stored(settings, "events")) == ["r-1", "r-2", "r-3"]
    assert stored(settings, "dead_letters") == []


def _drain_recording(settings: Settings, entries: list[dict], monkeypatch: pytest.MonkeyPatch,
                     rounds: int = 40) -> tuple[list[int], list[int]]:
    """Queue `entries`, drain them with one Drainer; the size of every insert_many and every XREADGROUP count."""
    names = names_for(settings)
    inserts: list[int] = []
    read_counts: list[int] = []
    real_insert = drain_module.insert_idempotent

    async def recording_insert(collection, documents):  # noqa: ANN001, ANN202
        inserts.append(len(documents))
        return await real_insert(collection, documents)

    monkeypatch.setattr(drain_module, "insert_idempotent", recording_insert)

    async def run() -> None:
        redis = Redis.from_url(settings.REDIS_URL)
        mongo = AsyncMongoClient(settings.MONGODB_URI)
        try:
            await ensure_group(redis, names)
            await append_entries(redis, names.records, entries)
            drainer = Drainer(redis, mongo[settings.MONGO_DB], names, settings, "sizing", read_block_ms=50)
            real_read = drainer.reader._xreadgroup

            async def recording_read(count: int, block_ms: int) -> list:
                read_counts.append(count)
                return await real_read(count, block_ms)

            drainer.reader._xreadgroup = recording_read
            for _ in range(rounds):  # bounded; a read ahead may come back empty
                await drainer.drain_once()
                if not await redis.xlen(names.records):
                    break
            await drainer.reader.cancel_ahead()
        finally:
            await redis.aclose()
            await mongo.close()

    asyncio.run(run())
    return inserts, read_counts


def test_each_insert_holds_batch_size_records_whatever_the_mix(settings: Settings, monkeypatch) -> None:
    settings = settings.model_copy(update={"BATCH_SIZE": 10, "FLUSH_INTERVAL_MS": 50})
    # Batches of 25 and single events in turn: a read sized by a single event meets batches.
    records = [[event(f"m-{i}-{j}") for j in range(25 if i % 2 else 1)] for i in range(16)]
    entries = [entry for group in records for entry in encode_entries(group)]

    inserts, _ = _drain_recording(settings, entries, monkeypatch)

    assert sum(inserts) == 8 * 25 + 8 == len(stored(settings, "events"))
    # BATCH_SIZE records, or one entry of more (a batch is stored whole): never 10 plus several batches.
    assert all(size < 10 + 25 for size in inserts), inserts
    assert stream_length(settings) == 0


def test_a_read_takes_at_most_max_entries_per_read(settings: Settings, monkeypatch) -> None:
    """Traffic that turns from single events to batches: a read sized for single events still
    takes at most MAX_ENTRIES_PER_READ entries, and each insert BATCH_SIZE records."""
    settings = settings.model_copy(update={"BATCH_SIZE": 500, "FLUSH_INTERVAL_MS": 50})
    entries = [entry for i in range(MAX_ENTRIES_PER_READ + 50)
               for entry in encode_entries([event(f"c-{i}-{j}") for j in range(10)])]

    inserts, read_counts = _drain_recording(settings, entries, monkeypatch)

    assert max(read_counts) == MAX_ENTRIES_PER_READ  # the first read, sized for single events
    assert inserts == [500, 500, 500]
    assert len(stored(settings, "events")) == 1500


def test_the_api_queues_one_entry_per_call_of_append_records(settings: Settings) -> None:
    async def run() -> list[int]:
        redis = Redis.from_url(settings.REDIS_URL)
        try:
            await ensure_group(redis, names_for(settings))
            await append_records(redis, names_for(settings).records, [event(f"x-{i}") for i in range(3)])
            return [len(decode_entry(fields)) for _, fields in await redis.xrange(names_for(settings).records)]
        finally:
            await redis.aclose()

    assert asyncio.run(run()) == [3]

