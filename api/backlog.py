"""Keeps an eye on the stream length so ingest can push back before Redis runs out of memory."""

import asyncio
import contextlib
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.stream import StreamNames, backlog_size

logger = logging.getLogger(__name__)


class BacklogMonitor:
    """Polls XLEN in the background: one cheap call per interval instead of one per request."""

    def __init__(self, redis: Redis, names: StreamNames, high_watermark: int, interval_s: float = 0.25) -> None:
        self._redis = redis
        self._names = names
        self._high_watermark = high_watermark
        self._interval_s = interval_s
        self.size = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def is_full(self) -> bool:
        return self.size >= self._high_watermark

    async def refresh(self) -> None:
        was_full = self.is_full
        self.size = await backlog_size(self._redis, self._names)
        # Once per episode, not per refused request: under overload that would be thousands a second.
        if self.is_full != was_full:
            message = "backlog over high watermark; refusing ingest" if self.is_full else "backlog below high watermark again"
            logger.warning(message, extra={"backlog": self.size, "high_watermark": self._high_watermark})

    def start(self) -> None:
        self._task = asyncio.create_task(self._poll(), name="backlog-monitor")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _poll(self) -> None:
        while True:
            # Redis being down is handled on the request path; keep the last known size.
            with contextlib.suppress(RedisError, OSError):
                await self.refresh()
            await asyncio.sleep(self._interval_s)
