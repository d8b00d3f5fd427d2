"""(g) End-to-end lag at a steady rate: from the 202 to the record being stored in MongoDB.

"Stored" is read from Redis, not by querying MongoDB: the worker deletes a stream entry only after
MongoDB acknowledged its `insert_many`, so once every entry up to a record's has left the stream,
the record is readable in MongoDB. Polling Redis every few ms costs nothing; polling MongoDB
(SecantusDB serves one query at a time) would slow the very inserts being timed. At the end,
MongoDB itself is asked whether every accepted record is there.
"""

import asyncio
import time

from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from bench.openloop import run_open_loop

_POLL_INTERVAL_S = 0.01


async def measure_lag(api_url: str, redis_url: str, stream: str, mongo_uri: str, db_name: str,
                      rate_per_s: int = 1000, seconds: int = 10) -> dict:
    acked_ms: list[float] = []  # wall time of each 202, in ms
    lags_ms: list[float] = []
    sending = True

    async def watch(redis: Redis) -> None:
        """Each poll: every record acked before the oldest entry still queued is stored by now."""
        seen = 0
        pending: list[float] = []
        while sending or seen < len(acked_ms) or pending:
            pending.extend(acked_ms[seen:])
            seen = len(acked_ms)
            oldest = await redis.xrange(stream, count=1)
            now_ms = time.time() * 1000
            # No entry left: everything acked so far is stored. Else: whatever was acked before the
            # oldest entry was added (a 202 comes after its XADD, so this errs on the late side).
            horizon = now_ms if not oldest else int(oldest[0][0].split(b"-")[0])
            lags_ms.extend(now_ms - t for t in pending if t < horizon)
            pending = [t for t in pending if t >= horizon]
            await asyncio.sleep(_POLL_INTERVAL_S)

    def body_for(i: int) -> bytes:
        return b'{"user_id":"lag-user","session_id":"lag","event_type":"scroll","extra_data":{"i":%d}}' % i

    redis = Redis.from_url(redis_url)
    mongo = AsyncMongoClient(mongo_uri)
    try:
        watcher = asyncio.create_task(watch(redis))
        sent = await run_open_loop(f"{api_url}/log_event", body_for, rate_per_s, seconds,
                                   on_ok=lambda _: acked_ms.append(time.time() * 1000))
        sending = False
        await asyncio.wait_for(watcher, timeout=120)
        stored = await _wait_all_stored(mongo[db_name]["events"], sent.ok)
    finally:
        await redis.aclose()
        await mongo.close()
    lags_ms.sort()
    return {
        "target_per_s": rate_per_s, **sent.as_dict(), "stored": stored,
        "p50_ms": round(lags_ms[len(lags_ms) // 2], 1) if lags_ms else None,
        "p99_ms": round(lags_ms[max(int(len(lags_ms) * 0.99) - 1, 0)], 1) if lags_ms else None,
        "max_ms": round(lags_ms[-1], 1) if lags_ms else None,
    }


async def _wait_all_stored(events, accepted: int, timeout_s: float = 60) -> int:
    deadline = time.monotonic() + timeout_s
    while (stored := await events.count_documents({"user_id": "lag-user"})) < accepted:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    return stored
