"""Paging with `limit` and an opaque cursor, without skipping or repeating a record while writes go on.

Records reach MongoDB out of timestamp order: the API stamps a record when the request arrives,
the worker stores it after the queue. A page therefore only reads records older than a *settled*
watermark: older than the oldest entry still in the Redis stream and than `settle_s` ago (which
covers requests still being answered, e.g. a /query waiting on the LLM). Nothing new can appear
below the watermark, so the page's last record is a safe place to resume.
"""

import dataclasses
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from shared.export import ExportPlan, iter_positions, last_position
from shared.export_params import from_epoch_ms
from shared.export_position import Position
from shared.stream import StreamNames


@dataclass(frozen=True)
class Page:
    plan: ExportPlan  # bounded to end at the page's last record
    next_position: Position | None  # where the next page starts; None: nothing read yet
    has_more: bool  # settled records exist beyond this page


async def settled_watermark(redis: Redis, names: StreamNames, settle_s: float,
                            now: datetime | None = None) -> datetime:
    """Records stamped before this time are all in MongoDB (assuming no request outlives `settle_s`)."""
    bound = now or datetime.now(UTC)
    oldest = await redis.xrange(names.records, count=1)
    if oldest:
        entry_id = oldest[0][0]
        entry_ms = int((entry_id.decode() if isinstance(entry_id, bytes) else entry_id).split("-")[0])
        bound = min(bound, from_epoch_ms(entry_ms))
    bound -= timedelta(seconds=settle_s)
    return bound.replace(microsecond=bound.microsecond // 1000 * 1000)


async def plan_page(db: AsyncDatabase, plan: ExportPlan, limit: int | None) -> Page:
    """Find the page's last record with a keys-only read, so the next cursor is known up front.

    The range is settled, so the full read that follows sees exactly the same records.
    """
    if limit is None:
        end = await last_position(db, plan)
        return Page(dataclasses.replace(plan, end=end or plan.after), end or plan.after, False)
    last, count = None, 0
    async with aclosing(iter_positions(db, plan, limit + 1)) as positions:
        async for position in positions:
            if count == limit:
                return Page(dataclasses.replace(plan, end=last), last, True)
            last, count = position, count + 1
    return Page(dataclasses.replace(plan, end=last or plan.after), last or plan.after, False)
