"""Reads the stored records in (timestamp, id, type) order across both collections, in constant memory.

Each collection is read through its (timestamp, _id) index and the two cursors are merged batch by
batch; nothing is sorted in memory and no `$unionWith` + `$sort` runs over the whole dataset.
"""

import asyncio
import bisect
import contextlib
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.cursor import AsyncCursor
from pymongo.asynchronous.database import AsyncDatabase

from shared.export_params import ExportFilters, ExportParams
from shared.export_position import Position, after_clause
from shared.records import COLLECTIONS, Kind

SORT = [("timestamp", ASCENDING), ("_id", ASCENDING)]
BATCH_SIZE = 500
_ORJSON_OPTIONS = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z


@dataclass(frozen=True)
class ExportPlan:
    """One export: what to read, where to resume, where to stop, and the CSV columns if planned."""

    params: ExportParams = field(default_factory=ExportParams)
    after: Position | None = None  # resume strictly after this record
    before: datetime | None = None  # exclusive timestamp bound: the settled watermark, when paging
    end: Position | None = None  # inclusive last record of a page
    columns: tuple[str, ...] | None = None


@dataclass
class ExportCounter:
    """Records written so far, for progress bars and job status."""

    records: int = 0


def mongo_filter(kind: Kind, filters: ExportFilters, plan: ExportPlan) -> dict[str, Any]:
    """Equality and range clauses only; every value is a plain string or datetime, never a document."""
    clauses: list[dict[str, Any]] = []
    for bound, operator in ((filters.since, "$gte"), (filters.until, "$lt"), (plan.before, "$lt")):
        if bound is not None:
            clauses.append({"timestamp": {operator: bound}})
    if plan.end is not None:
        clauses.append({"timestamp": {"$lte": plan.end.timestamp}})
    if plan.after is not None:
        clauses.append(after_clause(plan.after, kind))
    for name in ("user_id", "session_id"):
        value = getattr(filters, name)
        if value is not None:
            clauses.append({name: {"$eq": value}})
    if filters.query_id is not None:
        # A query's own id is its query_id; events carry the id of the query that showed the link.
        clauses.append({"_id" if kind is Kind.QUERY else "query_id": {"$eq": filters.query_id}})
    if filters.event_type:
        clauses.append({"event_type": {"$in": list(filters.event_type)}})
    return {"$and": clauses} if clauses else {}


def open_cursors(db: AsyncDatabase, plan: ExportPlan, batch_size: int = BATCH_SIZE,
                 projection: dict[str, int] | None = None, limit: int = 0) -> dict[Kind, AsyncCursor]:
    return {
        kind: db[COLLECTIONS[kind]].find(mongo_filter(kind, plan.params, plan), projection, sort=SORT,
                                         batch_size=batch_size, limit=limit)
        for kind in plan.params.kinds
    }


async def iter_positions(db: AsyncDatabase, plan: ExportPlan, limit: int) -> AsyncIterator[Position]:
    """The first `limit` order keys, for planning a page without moving whole documents."""
    batch_size = min(limit, BATCH_SIZE * 10)
    cursors = open_cursors(db, plan, batch_size, {"timestamp": 1}, limit=limit)
    count = 0
    async with aclosing(merge_cursors(cursors, batch_size)) as batches:
        async for kind, batch in batches:
            for document in batch:
                yield Position.of(kind, document)
                count += 1
                if count == limit:
                    return


async def last_position(db: AsyncDatabase, plan: ExportPlan) -> Position | None:
    """The last record the plan selects, found from the top of each index."""
    last = None
    for kind in plan.params.kinds:
        document = await db[COLLECTIONS[kind]].find_one(
            mongo_filter(kind, plan.params, plan), {"timestamp": 1},
            sort=[(name, DESCENDING) for name, _ in SORT])
        if document is not None:
            last = max(last or Position.of(kind, document), Position.of(kind, document))
    return last


async def iter_record_batches(db: AsyncDatabase, plan: ExportPlan,
                              batch_size: int = BATCH_SIZE) -> AsyncIterator[list[dict[str, Any]]]:
    """Export-shaped records, a batch at a time, in order; stops after `plan.end` when paging."""
    async for kind, batch in merge_cursors(open_cursors(db, plan, batch_size), batch_size):
        kind_value = kind.value
        if plan.end is not None:
            batch = [doc for doc in batch if (doc["timestamp"], doc["_id"], kind_value) <= plan.end]
        if batch:
            yield [export_shape(kind_value, doc) for doc in batch]


async def merge_cursors(cursors: dict[Kind, AsyncCursor],
                        batch_size: int) -> AsyncIterator[tuple[Kind, list[dict[str, Any]]]]:
    """Merge index-ordered cursors: emit runs from the lowest head up to the next head's key."""
    heads = [_Head(kind, cursor, batch_size) for kind, cursor in cursors.items()]
    try:
        # Open both cursors at once: the first batch of each is the slowest wait.
        live = [head for head, has_batch in zip(heads, await asyncio.gather(*(h.ensure_batch() for h in heads)),
                                                strict=True) if has_batch]
        while live:
            live.sort(key=_Head.key)
            first = live[0]
            limit = live[1].key() if len(live) > 1 else None
            yield first.kind, first.take_until(limit)
            if not await first.ensure_batch():
                live.pop(0)
    finally:
        for head in heads:
            await head.close()


class _Head:
    """A cursor with its current batch; `index` points at the first document not yet emitted.

    The next batch is fetched while the current one is encoded, so MongoDB and this process work
    at the same time instead of taking turns.
    """

    def __init__(self, kind: Kind, cursor: AsyncCursor, batch_size: int) -> None:
        self.kind, self.cursor, self.batch_size = kind, cursor, batch_size
        self.kind_value = kind.value  # Enum.value is a slow descriptor; this runs per document
        self.batch: list[dict[str, Any]] = []
        self.index = 0
        self._next: asyncio.Future[list[dict[str, Any]]] | None = None

    async def ensure_batch(self) -> bool:
        if self.index >= len(self.batch):
            pending = self._next or asyncio.ensure_future(self.cursor.to_list(self.batch_size))
            self.batch, self.index, self._next = await pending, 0, None
            if self.batch and self.cursor.alive:
                self._next = asyncio.ensure_future(self.cursor.to_list(self.batch_size))
        return bool(self.batch)

    async def close(self) -> None:
        if self._next is not None:  # let an in-flight getMore finish rather than cut its connection
            with contextlib.suppress(Exception):
                await self._next
        await self.cursor.close()

    def key(self) -> Position:
        document = self.batch[self.index]
        return Position(document["timestamp"], document["_id"], self.kind_value)

    def take_until(self, limit: Position | None) -> list[dict[str, Any]]:
        """Documents of the current batch that sort before `limit` (all of them if None or if they all do)."""
        start, batch, kind = self.index, self.batch, self.kind_value
        if limit is None or (batch[-1]["timestamp"], batch[-1]["_id"], kind) < limit:
            self.index = len(batch)
        else:  # the head itself sorts first, or it would not be first
            self.index = bisect.bisect_left(batch, limit, lo=start + 1,
                                            key=lambda doc: (doc["timestamp"], doc["_id"], kind))
        return batch[start:self.index]


def export_shape(kind: str, document: dict[str, Any]) -> dict[str, Any]:
    """`{"type", "id", ...stored fields}`: what every format writes. `kind` is a Kind's value."""
    return {"type": kind, "id": document.pop("_id"), **document}


_SERVER_TIMES = ("timestamp", "event_time")


def iso_ms(value: datetime) -> str:
    """Always `YYYY-MM-DDTHH:MM:SS.mmmZ`, so exported times sort as text too (orjson drops a zero fraction)."""
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}Z"


def dumps_record(record: dict[str, Any]) -> bytes:
    """JSON with UTC timestamps ending in Z; unusual BSON values become strings."""
    for name in _SERVER_TIMES:
        if isinstance(value := record.get(name), datetime):
            record[name] = iso_ms(value)
    return orjson.dumps(record, default=str, option=_ORJSON_OPTIONS)


def dumps_value(value: Any) -> bytes:
    return orjson.dumps(value, default=str, option=_ORJSON_OPTIONS)
