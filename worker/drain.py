"""Drains the record stream into MongoDB: read a batch, insert it idempotently, then ack and delete.

At-least-once: an entry is acked only after MongoDB has it, and deterministic `_id`s make a
redelivery a harmless duplicate-key error. Entries a crashed worker read but never acked are
resumed by the same WORKER_NAME when it restarts, or reclaimed after RECLAIM_IDLE_MS by any live
worker (XAUTOCLAIM). An entry delivered more than MAX_DELIVERIES times is a suspect: it is stored
alone, and dead-lettered only if MongoDB refuses it or a worker died while storing it alone.
"""

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.records import Record, decode_record, entry_lines, entry_record_count
from shared.settings import Settings
from shared.store import insert_idempotent
from shared.stream import StreamNames, ensure_group
from worker.backoff import Backoff
from worker.claims import Claims, Entry
from worker.dead_letters import dead_letter, save_dead_letters
from worker.reading import BatchReader

logger = logging.getLogger(__name__)

_TRANSIENT = (RedisError, OSError, PyMongoError)
_LONE_ATTEMPT_TTL_S = 7 * 24 * 3600


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
    _held_alone: bool = False
    _suspects: list[Entry] = field(default_factory=list)  # over-delivered, waiting to be stored one by one
    _token: str = field(default_factory=lambda: uuid.uuid4().hex)  # tells this process from a dead one

    def __post_init__(self) -> None:
        self.claims = Claims(self.redis, self.names, self.settings, self.consumer)
        self.reader = BatchReader(self.redis, self.names, self.settings, self.consumer, self.stop, self.read_block_ms)

    async def run(self) -> None:
        """Until `stop` is set; a batch in hand is stored and acked before returning."""
        backoff = Backoff("storage pipeline", self.settings.BACKOFF_MAX_S)
        await self._ensure_group_when_ready(backoff)
        keeper = asyncio.create_task(self._keep_claims(), name="keep-claims")
        try:
            while not self.stop.is_set() or self._held or self.reader.has_ahead:
                try:
                    await self.drain_once()
                    backoff.reset()
                except Exception as exc:  # anything else too: a bug must not silently end the drain
                    if "NOGROUP" in str(exc):  # Redis came back without its data: recreate the group
                        await self._ensure_group_when_ready(backoff)
                        continue
                    if not isinstance(exc, _TRANSIENT) and not backoff.is_degraded:
                        logger.exception("unexpected drain error; retrying the batch", extra={"count": len(self._held)})
                    if self.stop.is_set():
                        logger.warning("stopping with an unacked batch; it will be reclaimed",
                                       extra={"count": len(self._held)})
                        return
                    self._resume_after_lost_read(exc)
                    await backoff.wait(exc, self.stop)
        finally:
            await self.reader.cancel_ahead()
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

    async def drain_once(self) -> int:
        """Store one batch (held, resumed, reclaimed or new); returns how many records were settled
        (stored, already stored or dead-lettered)."""
        if not self._held:
            self._held, self._held_alone = await self._next_batch()
        if not self._held:
            return 0
        started = time.perf_counter()
        entries = len(self._held)
        if self._held_alone:
            records = await self._store_alone(self._held[0])
        else:
            # The next batch arrives while MongoDB stores this one; not while resuming, whose walk of
            # this consumer's pending entries would meet the read-ahead ones again.
            if not self.claims.resuming:
                self.reader.read_ahead()
            records = await self._store(self._held)
        await self._ack([entry_id for entry_id, _ in self._held])
        self._held = []
        self.stored_total += records
        logger.info("drained batch", extra={"count": records, "entries": entries,
                                            "ms": round((time.perf_counter() - started) * 1000, 1)})
        return records

    def _resume_after_lost_read(self, error: Exception) -> None:
        """A read Redis carried out but whose answer never came back (a timeout, a dropped connection)
        left entries delivered to this consumer that no one holds: walk its pending entries again
        before reading new ones, rather than leave them to be reclaimed after RECLAIM_IDLE_MS.

        Only with nothing in hand: the walk would meet held, read-ahead or suspect entries too.
        """
        if isinstance(error, (RedisError, OSError)) and not (self._held or self.reader.has_ahead or self._suspects):
            self.claims.resume_own_pending()

    async def _next_batch(self) -> tuple[list[Entry], bool]:
        """(entries, alone): leftovers and reclaimed entries first, suspects one at a time, then new ones."""
        if self.stop.is_set():  # only what is already in hand: no new claims while stopping
            return await self.reader.take_ahead(), False
        if self.reader.carried and not self.reader.has_ahead_task:  # what earlier reads took past their batch
            return self.reader.take_carried(), False
        if not self._suspects:
            size = self.reader.entries_for(self.settings.BATCH_SIZE)
            taken = await self.claims.read_own_pending(size) or await self.claims.reclaim_if_due(size)
            fresh, suspects = await self.claims.split_over_delivered(taken)
            self._suspects.extend(suspects)
            if fresh:
                return self.reader.take_claimed(fresh), False
        if self._suspects:
            return [self._suspects.pop(0)], True
        return await self.reader.next_batch(), False

    async def _store(self, entries: list[Entry]) -> int:
        """Insert every decodable record; dead-letter the rest with their reason. Returns the records settled."""
        groups, letters = _decode(entries)
        settled = len(letters) + sum(len(group) for group in groups.values())
        for collection, group in groups.items():
            rejected = await insert_idempotent(self.db[collection], [record.to_document() for _, record in group])
            letters.extend(dead_letter(*group[r.index][0], reason=r.message, code=r.code) for r in rejected)
        await save_dead_letters(self.db, self.redis, self.names, letters)
        return settled

    async def _store_alone(self, entry: Entry) -> int:
        """Store a suspect by itself, under a marker that only a worker dying mid-attempt leaves behind.

        Deliveries also pile up when workers are killed or MongoDB is down, so the count alone
        does not prove the entry is poison; dying while storing it alone does.
        """
        await self.db.command("ping")  # MongoDB down: retry later without a marker, so an outage is no "crash"
        key = self.names.lone_attempt_key(entry[0])
        previous = await self.redis.set(key, self._token, nx=True, get=True, ex=_LONE_ATTEMPT_TTL_S)
        try:
            if previous is not None and previous.decode() != self._token:
                reason = f"delivered more than {self.settings.MAX_DELIVERIES} times; a worker died storing it alone"
                await save_dead_letters(self.db, self.redis, self.names, [dead_letter(*entry, reason=reason)])
                return entry_record_count(entry[1])  # its records, dead-lettered as one letter
            return await self._store([entry])
        finally:
            with contextlib.suppress(*_TRANSIENT):
                await self.redis.delete(key)

    async def _ack(self, entry_ids: list[bytes]) -> None:
        # Delete as well as ack, so Redis memory tracks the backlog, not the history.
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.names.records, self.names.group, *entry_ids)
            pipe.xdel(self.names.records, *entry_ids)
            await pipe.execute()

    async def _keep_claims(self) -> None:
        """While a batch waits on a slow or absent MongoDB, keep it ours so no live work is reclaimed."""
        while True:
            await asyncio.sleep(self.settings.RECLAIM_IDLE_MS / 3000)
            with contextlib.suppress(*_TRANSIENT):  # Redis down too: the entries stay pending, nothing is lost
                in_hand = [*self._held, *self._suspects, *self.reader.in_hand]
                await self.claims.keep([entry_id for entry_id, _ in in_hand])

    async def _ensure_group_when_ready(self, backoff: Backoff) -> None:
        while not self.stop.is_set():
            try:
                await ensure_group(self.redis, self.names)
                backoff.reset()
                return
            except (RedisError, OSError) as exc:
                await backoff.wait(exc, self.stop)


def _decode(entries: list[Entry]) -> tuple[dict[str, list[tuple[Entry, Record]]], list[dict[str, Any]]]:
    """The records by collection, each with the entry it is dead-lettered as if MongoDB refuses it,
    and the letters of what does not decode."""
    groups: dict[str, list[tuple[Entry, Record]]] = {}
    letters = []
    for entry_id, fields in entries:
        try:
            kind, lines = entry_lines(fields)
        except (KeyError, ValueError) as exc:
            letters.append(dead_letter(entry_id, fields, f"undecodable entry: {exc}"[:1000]))
            continue
        for position, line in enumerate(lines):
            # A record of a batch entry is a letter of its own: its line, under "<entry id>/<line>".
            letter = (entry_id, fields) if len(lines) == 1 else (
                b"%s/%d" % (entry_id, position), {b"kind": fields[b"kind"], b"data": line})
            try:
                record = decode_record(kind, line)
            except ValueError as exc:  # pydantic's ValidationError is one
                letters.append(dead_letter(*letter, reason=f"undecodable record: {exc}"[:1000]))
                continue
            groups.setdefault(record.collection, []).append((letter, record))
    return groups, letters
