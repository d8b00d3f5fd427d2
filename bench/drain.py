"""(e) The worker's drain rate into the DB against a raw `insert_many` of the same documents, same DB."""

import asyncio
import time

from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from api.build import build_event_record
from api.schemas import EventIn
from bench.stack import BenchStack, cpu_seconds
from shared.mongo import ensure_indexes
from shared.records import EncodedEvent, encode_entries, utc_now_ms
from shared.settings import Settings
from shared.store import insert_idempotent
from shared.stream import append_entries, append_record, backlog_size

_SAMPLE = {"user_id": "bench-user", "session_id": "bench-session", "event_type": "click",
           "page_url": "https://app.example.com/chat", "target_url": "https://example.com/boots"}


def make_record(body: dict) -> EncodedEvent:
    """Exactly what the API would queue for this body."""
    return build_event_record(EventIn.model_validate(body), body, utc_now_ms())


def make_records(count: int) -> list[EncodedEvent]:
    return [make_record({**_SAMPLE, "extra_data": {"i": i}}) for i in range(count)]


async def wait_worker_draining(stack: BenchStack, timeout_s: float = 120) -> None:
    """Queue one probe record and wait until the worker has stored it: then it is up and reading."""
    redis = Redis.from_url(stack.redis_url)
    try:
        await append_record(redis, stack.names.records, make_record({**_SAMPLE, "user_id": "bench-probe"}))
        deadline = time.monotonic() + timeout_s
        while await backlog_size(redis, stack.names) > 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the worker stored nothing in {timeout_s} s")
            await asyncio.sleep(0.05)
    finally:
        await redis.aclose()


async def measure_drain(stack: BenchStack, worker_pid: int, db_name: str, count: int, settings: Settings,
                        rounds: int = 2) -> dict:
    """Alternate rounds of: `count` records queued at once for the (ready) worker, timed until the
    stream is empty; then the same documents through a raw `insert_many`. Best round of each."""
    redis = Redis.from_url(stack.redis_url)
    mongo = AsyncMongoClient(stack.mongo_uri)
    drain_s, raw_s, cpu_s = [], [], []
    try:
        raw_db = mongo[f"{db_name}_raw"]  # as fresh as the worker's, with the same indexes
        await ensure_indexes(raw_db)
        for _ in range(rounds):
            records = make_records(count)
            cpu_before = cpu_seconds(worker_pid)
            drain_s.append(await _time_drain(redis, stack, records))
            cpu_s.append(cpu_seconds(worker_pid) - cpu_before)
            raw_s.append(await _time_insert_many(raw_db, [r.to_document() for r in records], settings.BATCH_SIZE))
        stored = await mongo[db_name]["events"].count_documents({"user_id": "bench-user"})
    finally:
        await redis.aclose()
        await mongo.close()
    best_drain_s, best_raw_s = min(drain_s), min(raw_s)
    return {
        "records": count * rounds, "stored": stored, "rounds": rounds,
        "drain_per_s": round(count / best_drain_s, 1), "raw_insert_many_per_s": round(count / best_raw_s, 1),
        "ratio": round(best_raw_s / best_drain_s, 3),
        "worker_cpu_us_per_record": round(min(cpu_s) / count * 1e6, 1),
    }


async def _time_drain(redis: Redis, stack: BenchStack, records: list[EncodedEvent]) -> float:
    started = time.perf_counter()
    # One entry per record, as single events queue: the worker's hardest case (batches share an entry).
    for start in range(0, len(records), 1000):
        entries = [entry for record in records[start:start + 1000] for entry in encode_entries([record])]
        await append_entries(redis, stack.names.records, entries)
    while await backlog_size(redis, stack.names) > 0:
        if time.perf_counter() - started > 300:
            raise TimeoutError("drain did not finish in 300 s")
        await asyncio.sleep(0.02)
    return time.perf_counter() - started


async def _time_insert_many(db, documents: list[dict], batch_size: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(documents), batch_size):
        await insert_idempotent(db["events"], documents[start:start + batch_size])
    return time.perf_counter() - started
