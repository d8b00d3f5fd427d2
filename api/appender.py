"""Appends records to the stream, coalescing concurrent requests into one Redis call.

Requests that arrive while a call is in flight go out together in the next one, so under load one
round trip answers many requests. A lone request goes out at once, with no timer to wait for. Each
request still returns only once Redis has all of its records, which share one stream entry.

Measured under `make bench` (py-spy and /proc): one XADD per request cost a fifth of each API
process's time in redis-py and socket calls, plus 15 µs of Redis CPU per event. Coalesced, the
same machine takes 1.75x the single events per second, with a lower p99.
"""

import asyncio
import logging

from redis.asyncio import Redis
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.records import Queueable, encode_entries
from shared.stream import append_entries

logger = logging.getLogger(__name__)

_Waiting = tuple[list[Queueable], asyncio.Future[None]]


class StreamAppender:
    def __init__(self, redis: Redis, stream: str, timeout_s: float = 2.0, max_records_per_call: int = 1000) -> None:
        self._redis = redis
        self._stream = stream
        self._timeout_s = timeout_s
        self._max_records = max_records_per_call
        self._waiting: list[_Waiting] = []
        self._sender: asyncio.Task[None] | None = None

    async def append(self, records: list[Queueable]) -> None:
        """Return once Redis has every record; raise what the Redis call raised if it failed, or
        RedisTimeoutError after `timeout_s` in all (waiting included: a hung Redis must not hang ingest).

        After a timeout the records may still reach Redis; the caller stores them with the same ids.
        """
        appended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((records, appended))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_waiting())
        try:
            async with asyncio.timeout(self._timeout_s):
                await appended
        except TimeoutError:
            raise RedisTimeoutError(f"redis did not take the records within {self._timeout_s} s") from None

    async def _send_waiting(self) -> None:
        try:
            while self._waiting:
                if taken := self._take():
                    await self._send(taken)
        finally:
            self._sender = None
            for _, appended in self._waiting:  # left only if this task was cancelled (shutdown)
                appended.cancel()
            self._waiting = []

    def _take(self) -> list[_Waiting]:
        """The oldest requests still waiting, whole, up to the record cap (at least one request)."""
        self._waiting = [waiting for waiting in self._waiting if not waiting[1].done()]  # timed out or left
        count = size = 0
        for records, _ in self._waiting:
            if count and size + len(records) > self._max_records:
                break
            count += 1
            size += len(records)
        taken, self._waiting = self._waiting[:count], self._waiting[count:]
        return taken

    async def _send(self, taken: list[_Waiting]) -> None:
        entries = [entry for records, _ in taken for entry in encode_entries(records)]  # one per request
        try:
            await append_entries(self._redis, self._stream, entries)
        except asyncio.CancelledError:
            for _, appended in taken:
                appended.cancel()
            raise
        except Exception as exc:  # each request decides what to do: RedisError falls back to MongoDB
            for _, appended in taken:
                if not appended.done():
                    appended.set_exception(exc)
            return
        for _, appended in taken:
            if not appended.done():  # done: that request was cancelled (its client left)
                appended.set_result(None)
        if len(taken) > 1:
            logger.debug("coalesced appends", extra={"requests": len(taken), "entries": len(entries)})
