"""(e) The worker's drain rate into the DB against a raw `insert_many` of the same documents, same DB."""

import asyncio
import time

from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from api.build import build_event_record
from api.schemas import EventIn
from bench.stack import BenchStack, cpu_seconds
from shared.mongo import ensure_indexes
from shared.records import EventRecord, utc_now_ms
from shared.settings import Settings
from shared.store import insert_idempotent
from shared.stream import append_records, backlog_size

_SAMPLE = {"user_id": "bench-user", "session_id": "bench-session", "event_type": "click",
           "page_url": "https://app.example.com/chat", "target_url": "https://example.com/boots"}


def make_record(body: dict) -> EventRecord:
    """Exactly what the API would queue for this body."""
    return build_event_record(EventIn.model_validate(body), body, utc_now_ms())


def make_records(count: int) -> list[EventRecord]:
    return [make_record({**_SAMPLE, "extra_data": {"i": i}}) for i in range(count)]


async def wait_worker_draining(redis: Redis, stack: BenchStack, timeout_s: float = 120) -> None:
    """Queue one probe record and wait until the worker has stored it: then it is up and reading."""
    probe = make_record({**_SAMPLE, "user_id": "bench-probe"})
    await append_records(redis, stack.names.records, [probe])
    deadline = time.monotonic() + timeout_s
    while await backlog_size(redis, stack.names) > 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the worker stored nothing in {timeout_s} s")
        await asyncio.sleep(0.05)


async def measure_drain(stack: BenchStack, worker_pid: int, db_name: str, count: int, settings: Settings) -> dict:
    """Queue `count` records at once while the (idle, ready) worker runs; time until the stream is empty."""
    redis = Redis.from_url(stack.redis_url)
    mongo = AsyncMongoClient(stack.mongo_uri)
    try:
        records = make_records(count)
        await wait_worker_draining(redis, stack)
        cpu_before = cpu_seconds(worker_pid)
        started = time.perf_counter()
        for start in range(0, count, 1000):
            await append_records(redis, stack.names.records, records[start:start + 1000])
        while await backlog_size(redis, stack.names) > 0:
            if time.perf_counter() - started > 300:
                raise TimeoutError("drain did not finish in 300 s")
            await asyncio.sleep(0.02)
        drain_s = time.perf_counter() - started
        worker_cpu_s = cpu_seconds(worker_pid) - cpu_before
        stored = await mongo[db_name]["events"].count_documents({"user_id": "bench-user"})

        raw_db = mongo[f"{db_name}_raw"]  # as fresh as the worker's, with the same indexes
        await ensure_indexes(raw_db)
        documents = [record.to_document() for record in records]
        started = time.perf_counter()
        for start in range(0, count, settings.BATCH_SIZE):
            await insert_idempotent(raw_db["events"], documents[start:start + settings.BATCH_SIZE])
        raw_s = time.perf_counter() - started
    finally:
        await redis.aclose()
        await mongo.close()
    return {
        "records": count, "stored": stored,
        "drain_per_s": round(count / drain_s, 1), "raw_insert_many_per_s": round(count / raw_s, 1),
        "ratio": round(raw_s / drain_s, 3), "worker_cpu_us_per_record": round(worker_cpu_s / count * 1e6, 1),
    }
