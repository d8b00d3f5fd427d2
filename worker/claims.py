"""Which stream entries this worker holds: its own leftovers, entries reclaimed from dead workers,
delivery counts, and keeping a slow batch claimed so live work is never taken over.
"""

import logging
import time
from dataclasses import dataclass

from redis.asyncio import Redis

from shared.settings import Settings
from shared.stream import StreamNames

logger = logging.getLogger(__name__)

Entry = tuple[bytes, dict[bytes, bytes]]


@dataclass
class Claims:
    redis: Redis
    names: StreamNames
    settings: Settings
    consumer: str
    _own_cursor: bytes | None = b"0-0"  # None once this consumer's old pending entries are all handled
    _reclaim_cursor: bytes = b"0-0"
    _next_reclaim: float = 0.0

    @property
    def resuming(self) -> bool:
        """Still walking this consumer's old pending entries (new reads would be walked again)."""
        return self._own_cursor is not None

    def resume_own_pending(self) -> None:
        """Walk this consumer's pending entries again from the oldest (see `read_own_pending`)."""
        self._own_cursor = b"0-0"

    async def read_own_pending(self, count: int) -> list[Entry]:
        """Entries this consumer name read before a crash and never acked, oldest first.

        A restarted worker with a stable WORKER_NAME resumes them at once instead of waiting
        RECLAIM_IDLE_MS for another worker to take them over.
        """
        if self._own_cursor is None:
            return []
        reply = await self.redis.xreadgroup(self.names.group, self.consumer,
                                            {self.names.records: self._own_cursor}, count=count)
        entries = list(reply[0][1]) if reply else []
        if not entries:
            self._own_cursor = None
            return []
        self._own_cursor = entries[-1][0]
        gone = [entry_id for entry_id, fields in entries if not fields]  # deleted from the stream already
        if gone:
            await self.redis.xack(self.names.records, self.names.group, *gone)
        live = [(entry_id, fields) for entry_id, fields in entries if fields]
        if live:
            logger.warning("resuming own unacked entries", extra={"count": len(live), "consumer": self.consumer})
        return live

    async def reclaim_if_due(self, count: int) -> list[Entry]:
        """Take over entries idle past RECLAIM_IDLE_MS, walking the whole pending list over successive calls."""
        if time.monotonic() < self._next_reclaim:
            return []
        cursor, claimed, _deleted = await self.redis.xautoclaim(
            self.names.records, self.names.group, self.consumer,
            min_idle_time=self.settings.RECLAIM_IDLE_MS, start_id=self._reclaim_cursor, count=count,
        )
        self._reclaim_cursor = cursor
        if cursor in (b"0-0", "0-0"):  # a full pass is done: pause before the next one
            self._next_reclaim = time.monotonic() + self.settings.RECLAIM_IDLE_MS / 2000
        if claimed:
            logger.warning("reclaimed idle entries", extra={"count": len(claimed), "first": claimed[0][0].decode()})
        return list(claimed)

    async def split_over_delivered(self, entries: list[Entry]) -> tuple[list[Entry], list[Entry]]:
        """(fresh, suspects): suspects were delivered more than MAX_DELIVERIES times."""
        if not entries:
            return [], []
        pending = await self.redis.xpending_range(
            self.names.records, self.names.group, min=entries[0][0], max=entries[-1][0],
            count=len(entries) * 2, consumername=self.consumer,
        )
        deliveries = {p["message_id"]: p["times_delivered"] for p in pending}
        limit = self.settings.MAX_DELIVERIES
        return ([e for e in entries if deliveries.get(e[0], 0) <= limit],
                [e for e in entries if deliveries.get(e[0], 0) > limit])

    async def keep(self, entry_ids: list[bytes]) -> None:
        """Reset the idle time of entries we are still working on; JUSTID leaves delivery counts alone."""
        if entry_ids:
            await self.redis.xclaim(self.names.records, self.names.group, self.consumer, 0, entry_ids, justid=True)
