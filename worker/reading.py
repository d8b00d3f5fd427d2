"""Reads new stream entries in batches, and can read the next batch while the current one is being stored.

Reading ahead keeps MongoDB busy: without it, every batch waited for the previous insert, then for
XREADGROUP, then for up to FLUSH_INTERVAL_MS to fill. At a steady 1000 events/s that wait came on
top of each insert (lag p99 ~1.3 s in `make bench`); read ahead, it overlaps the insert.
Entries read ahead are delivered to this consumer (pending) like a held batch: a crash leaves
them to be resumed or reclaimed, never lost. So are entries carried: a batch counts records, and
an entry may hold a whole `/log_events` batch, so what a read takes past BATCH_SIZE records waits
for the next insert.
"""

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from redis.asyncio import Redis

from shared.records import entry_record_count
from shared.settings import Settings
from shared.stream import StreamNames
from worker.claims import Entry

# An entry can be a whole batch (up to MAX_BATCH_BYTES): a read of at most this many keeps a worker's
# memory bounded when traffic turns from single events to big batches between two reads.
MAX_ENTRIES_PER_READ = 100


@dataclass
class BatchReader:
    redis: Redis
    names: StreamNames
    settings: Settings
    consumer: str
    stop: asyncio.Event
    read_block_ms: int  # how long an idle read waits; bounds how fast `stop` is noticed
    early: list[Entry] = field(default_factory=list)  # read ahead, not yet handed out: keep them claimed
    carried: list[Entry] = field(default_factory=list)  # read past a batch's BATCH_SIZE records: the next batch's
    records_per_entry: int = 1  # the most records in one entry lately (halved by each read of smaller ones)
    _ahead: asyncio.Task[None] | None = None

    @property
    def has_ahead(self) -> bool:
        return self._ahead is not None or bool(self.early) or bool(self.carried)

    @property
    def has_ahead_task(self) -> bool:
        return self._ahead is not None

    @property
    def in_hand(self) -> list[Entry]:
        """Read and pending for this consumer, not handed out yet: to be kept claimed."""
        return [*self.early, *self.carried]

    def read_ahead(self) -> None:
        """Start reading the next batch now, unless a read-ahead is already waiting to be taken."""
        if self._ahead is None and not self.early and not self.stop.is_set():
            self._ahead = asyncio.create_task(self._read_early(), name="read-ahead")

    async def next_batch(self) -> list[Entry]:
        """The batch read ahead (maybe empty: nothing came meanwhile), else new entries read now."""
        if not self.has_ahead:
            return await self.read()
        return await self.take_ahead()

    async def take_ahead(self) -> list[Entry]:
        """What was read ahead, once that read is done; raises if it failed (nothing was taken then)."""
        if self._ahead is not None:
            task, self._ahead = self._ahead, None
            await task
        batch, self.early = self.early, []
        return batch or self.take_carried()

    def take_carried(self) -> list[Entry]:
        """A batch of the entries carried from earlier reads (empty if none)."""
        entries, self.carried = self.carried, []
        return self.split_off(entries)

    def take_claimed(self, entries: list[Entry]) -> list[Entry]:
        """A batch of entries resumed or reclaimed (see `Claims`); the rest are carried."""
        self._count(entries)
        return self.split_off(entries)

    async def cancel_ahead(self) -> None:
        """On the way out: a read cut off here leaves its entries pending, to be resumed or reclaimed."""
        if self._ahead is not None:
            self._ahead.cancel()
            with contextlib.suppress(BaseException):
                await self._ahead
            self._ahead = None

    async def read(self) -> list[Entry]:
        """Entries of BATCH_SIZE records (or one entry of more), waiting at most FLUSH_INTERVAL_MS after
        the first one arrives. Entries read past that are carried to the next batch."""
        size = self.settings.BATCH_SIZE
        entries, self.carried = self.carried, []
        records = sum(entry_record_count(fields) for _, fields in entries)
        if not entries:
            entries = await self._xreadgroup(self.entries_for(size), self.read_block_ms)
            records = self._count(entries)
        deadline = time.monotonic() + self.settings.FLUSH_INTERVAL_MS / 1000
        while entries and records < size and not self.stop.is_set():
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                break
            more = await self._xreadgroup(self.entries_for(size - records), remaining_ms)
            if not more:
                break
            entries.extend(more)
            records += self._count(more)
        return self.split_off(entries)

    def split_off(self, entries: list[Entry]) -> list[Entry]:
        """The first entries that hold BATCH_SIZE records (at least one entry); the rest are carried.

        A read sized for single events may meet batches: their records wait for the next insert
        instead of making this one many times BATCH_SIZE.
        """
        records = taken = 0
        while taken < len(entries) and records < self.settings.BATCH_SIZE:
            records += entry_record_count(entries[taken][1])
            taken += 1
        self.carried = entries[taken:] + self.carried
        return entries[:taken]

    def entries_for(self, records: int) -> int:
        """How many entries to ask for to get about `records` records.

        XREADGROUP counts entries, and an entry holds one request's records: one event, or a whole
        batch. Sized by the largest entries seen lately, a read takes little more than it needs
        (what it takes past a batch is carried, `split_off`), and never more than MAX_ENTRIES_PER_READ.
        """
        return max(1, min(records // self.records_per_entry, MAX_ENTRIES_PER_READ))

    def _count(self, entries: list[Entry]) -> int:
        counts = [entry_record_count(fields) for _, fields in entries]
        if counts:  # slow to forget big entries: a read that meets single events may be followed by batches
            self.records_per_entry = max(*counts, self.records_per_entry // 2, 1)
        return sum(counts)

    async def _read_early(self) -> None:
        self.early = await self.read()

    async def _xreadgroup(self, count: int, block_ms: int) -> list[Entry]:
        reply = await self.redis.xreadgroup(
            self.names.group, self.consumer, {self.names.records: ">"}, count=count, block=max(block_ms, 1)
        )
        return list(reply[0][1]) if reply else []
