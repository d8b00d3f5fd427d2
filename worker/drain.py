"""Drains the record stream into MongoDB: read a batch, insert it idempotently, then ack and delete.

At-least-once: an entry is acked only after MongoDB has it, and deterministic `_id`s make a
redelivery a harmless duplicate-key error. Entries a crashed worker read but never acked are
reclaimed after `RECLAIM_IDLE_MS` by any live worker (XAUTOCLAIM).
"""

import asyncio
import logging
import time
from dataclasses import dataclass, field

from pydantic import ValidationError
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.records import Record, decode_entry
from shared.settings import Settings
from shared.store import insert_idempotent
from shared.stream import StreamNames, ensure_group
from worker.backoff import Backoff
from worker.dead_letters import dead_letter, save_dead_letters

logger = logging.getLogger(__name__)

Entry = tuple[bytes, dict[bytes, bytes]]


@dataclass
class Drainer:
    redis: Redis
    db: AsyncDatabase
    names: StreamNames
    settings: Settings
    consumer: str
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    read_block_ms: int = 1000  # how long an idle read waits; bounds how fast `stop` is noticed
    stored_total: int = 0
    _held: list[Entry] = field(default_factory=list)  # read but not yet acked: retried first
    _next_reclaim: float = 0.0

    async def run(self) -> None:
        """Until `stop` is set; a batch in hand is stored and acked before returning."""
        backoff = Backoff("storage pipeline", self.settings.BACKOFF_MAX_S)
        await self._ensure_group_when_ready(backoff)
        while not self.stop.is_set() or self._held:
            try:
                await self.drain_once()
                backoff.reset()
            except (RedisError, OSError, PyMongoError) as exc:
                if "NOGROUP" in str(exc):  # Redis came back without its data: recreate the group
                    await self._ensure_group_when_ready(backoff)
                    continue
                if self.stop.is_set():
                    logger.warning("stopping with an unacked batch; it will be reclaimed",
                                   extra={"count": len(self._held)})
                    return
                await backoff.wait(exc, self.stop)
                await self._keep_claim()

    async def drain_once(self) -> int:
        """Store one batch (held, reclaimed or new); returns how many entries were settled."""
        if not self._held:
            self._held = await self._reclaim_if_due() or await self._read_new()
        if not self._held:
            return 0
        started = time.perf_counter()
        count = len(self._held)
        await self._store(self._held)
        await self._ack([entry_id for entry_id, _ in self._held])
        self._held = []
        self.stored_total += count
        logger.info("drained batch", extra={"count": count, "ms": round((time.perf_counter() - started) * 1000, 1)})
        return count

    async def _read_new(self) -> list[Entry]:
        """Up to BATCH_SIZE entries, waiting at most FLUSH_INTERVAL_MS after the first one arrives."""
        entries = await self._xreadgroup(self.settings.BATCH_SIZE, self.read_block_ms)
        deadline = time.monotonic() + self.settings.FLUSH_INTERVAL_MS / 1000
        while entries and len(entries) < self.settings.BATCH_SIZE and not self.stop.is_set():
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                break
            more = await self._xreadgroup(self.settings.BATCH_SIZE - len(entries), remaining_ms)
            if not more:
                break
            entries.extend(more)
        return entries

    async def _xreadgroup(self, count: int, block_ms: int) -> list[Entry]:
        reply = await self.redis.xreadgroup(
            self.names.group, self.consumer, {self.names.records: ">"}, count=count, block=max(block_ms, 1)
        )
        return list(reply[0][1]) if reply else []

    async def _store(self, entries: list[Entry]) -> None:
        """Insert every decodable record; dead-letter the rest with their reason."""
        records: list[tuple[Entry, Record]] = []
        letters = []
        for entry in entries:
            try:
                records.append((entry, decode_entry(entry[1])))
            except (KeyError, ValueError, ValidationError) as exc:
                letters.append(dead_letter(entry[0], entry[1], f"undecodable entry: {exc}"[:1000]))
        for collection, group in _group_by_collection(records).items():
            rejected = await insert_idempotent(self.db[collection], [record.to_document() for _, record in group])
            letters.extend(dead_letter(*group[r.index][0], reason=r.message, code=r.code) for r in rejected)
        await save_dead_letters(self.db, self.redis, self.names, letters)

    async def _ack(self, entry_ids: list[bytes]) -> None:
        # Delete as well as ack, so Redis memory tracks the backlog, not the history.
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.names.records, self.names.group, *entry_ids)
            pipe.xdel(self.names.records, *entry_ids)
            await pipe.execute()

    async def _reclaim_if_due(self) -> list[Entry]:
        """Take over entries idle past RECLAIM_IDLE_MS; dead-letter those delivered too often."""
        if time.monotonic() < self._next_reclaim:
            return []
        self._next_reclaim = time.monotonic() + self.settings.RECLAIM_IDLE_MS / 2000
        _, claimed, _ = await self.redis.xautoclaim(
            self.names.records, self.names.group, self.consumer,
            min_idle_time=self.settings.RECLAIM_IDLE_MS, start_id="0-0", count=self.settings.BATCH_SIZE,
        )
        if not claimed:
            return []
        logger.warning("reclaimed idle entries", extra={"count": len(claimed), "first": claimed[0][0].decode()})
        return await self._drop_over_delivered(claimed)

    async def _drop_over_delivered(self, claimed: list[Entry]) -> list[Entry]:
        pending = await self.redis.xpending_range(
            self.names.records, self.names.group, min=claimed[0][0], max=claimed[-1][0],
            count=len(claimed) * 2, consumername=self.consumer,
        )
        deliveries = {p["message_id"]: p["times_delivered"] for p in pending}
        over = [e for e in claimed if deliveries.get(e[0], 0) > self.settings.MAX_DELIVERIES]
        if over:
            reason = f"delivered more than {self.settings.MAX_DELIVERIES} times"
            await save_dead_letters(self.db, self.redis, self.names, [dead_letter(*e, reason=reason) for e in over])
            await self._ack([entry_id for entry_id, _ in over])
        return [e for e in claimed if deliveries.get(e[0], 0) <= self.settings.MAX_DELIVERIES]

    async def _keep_claim(self) -> None:
        """While retrying a held batch, reset its idle time so other workers do not take it over."""
        if not self._held:
            return
        try:
            await self.redis.xclaim(self.names.records, self.names.group, self.consumer, 0,
                                    [entry_id for entry_id, _ in self._held], justid=True)
        except (RedisError, OSError):
            pass  # Redis down too; the entries stay pending and nothing is lost

    async def _ensure_group_when_ready(self, backoff: Backoff) -> None:
        while not self.stop.is_set():
            try:
                await ensure_group(self.redis, self.names)
                backoff.reset()
                return
            except (RedisError, OSError) as exc:
                await backoff.wait(exc, self.stop)


def _group_by_collection(records: list[tuple[Entry, Record]]) -> dict[str, list[tuple[Entry, Record]]]:
    groups: dict[str, list[tuple[Entry, Record]]] = {}
    for entry, record in records:
        groups.setdefault(record.collection, []).append((entry, record))
    return groups
