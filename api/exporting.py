"""Plans a `GET /export_data` response: every check that can fail runs before the first byte is sent."""

import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from pydantic import Field
from pymongo.errors import PyMongoError
from redis.exceptions import RedisError

from api.deps import AppState
from api.errors import ApiError, invalid_fields
from api.streaming import DownloadResponse, attachment
from shared.export import ExportCounter, ExportPlan
from shared.export_csv import TooManyColumns
from shared.export_formats import MEDIA_TYPES, export_chunks, export_filename, plan_columns
from shared.export_paging import Page, plan_page, settled_watermark
from shared.export_params import ExportFormat, ExportParams
from shared.export_position import Position, decode_cursor, encode_cursor

logger = logging.getLogger(__name__)

MAX_LIMIT = 10_000_000


class ExportQuery(ExportParams):
    """Query parameters of GET /export_data. `limit` or `cursor` turns on paging."""

    limit: int | None = Field(default=None, ge=1, le=MAX_LIMIT, description="Records per page")
    cursor: str | None = Field(default=None, min_length=1, max_length=512,
                               description="X-Next-Cursor of the previous page")
    settle_s: float | None = Field(default=None, ge=0, le=86_400,
                                   description="Paging only: skip records younger than this (default EXPORT_SETTLE_S)")

    @property
    def is_paged(self) -> bool:
        return self.limit is not None or self.cursor is not None


async def start_export(state: AppState, query: ExportQuery) -> DownloadResponse:
    params = ExportParams.model_validate(query.model_dump(include=set(ExportParams.model_fields)))
    plan = ExportPlan(params, after=_decode(query.cursor))
    headers = {"Content-Disposition": attachment(export_filename(params.format, datetime.now(UTC))),
               "Cache-Control": "no-store"}
    counter = ExportCounter()
    try:
        await state.db.command("ping")
        if query.is_paged:
            page = await _plan_page(state, query, plan)
            plan = page.plan
            headers.update(_paging_headers(page))
        plan = await plan_columns(state.db, plan, state.settings.EXPORT_MAX_COLUMNS)
        # Read the first chunk now: a failure here can still be a JSON 503, later it can only cut the stream.
        chunks = export_chunks(state.db, plan, counter)
        first = await anext(chunks, b"")
    except PyMongoError:
        raise _unavailable(state, "MongoDB is unavailable; retry later") from None
    except TooManyColumns as exc:
        raise ApiError(422, f"{exc}; export without flatten, or with narrower filters",
                       fields=[{"field": "query.flatten", "message": str(exc)}]) from None
    return DownloadResponse(_logged(first, chunks, counter, params.format),
                            media_type=MEDIA_TYPES[params.format], headers=headers)


async def _logged(first: bytes, chunks: AsyncIterator[bytes], counter: ExportCounter,
                  fmt: ExportFormat) -> AsyncIterator[bytes]:
    """Once the stream started, a failure can only cut it short (the client sees no final chunk): log it."""
    started, size = time.monotonic(), len(first)
    if first:
        yield first
    try:
        async for chunk in chunks:
            size += len(chunk)
            yield chunk
    except Exception:
        logger.exception("export stream failed", extra={"format": fmt.value, "count": counter.records})
        raise
    logger.info("export streamed", extra={"format": fmt.value, "count": counter.records, "bytes": size,
                                          "ms": round((time.monotonic() - started) * 1000)})


async def _plan_page(state: AppState, query: ExportQuery, plan: ExportPlan) -> Page:
    settle_s = state.settings.export_settle_s if query.settle_s is None else query.settle_s
    try:
        watermark = await settled_watermark(state.redis, state.names, settle_s)
    except (RedisError, OSError):
        raise _unavailable(state, "Redis is unavailable, so it is unknown which records are settled; retry later") from None
    return await plan_page(state.db, dataclasses.replace(plan, before=watermark), query.limit)


def _paging_headers(page: Page) -> dict[str, str]:
    headers = {"X-Has-More": "true" if page.has_more else "false"}
    if page.plan.before is not None:
        headers["X-Settled-Before"] = page.plan.before.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if page.next_position is not None:
        headers["X-Next-Cursor"] = encode_cursor(page.next_position)
    return headers


def _decode(cursor: str | None) -> Position | None:
    if cursor is None:
        return None
    try:
        return decode_cursor(cursor)
    except ValueError as exc:
        raise invalid_fields([{"field": "query.cursor", "message": str(exc)}]) from None


def _unavailable(state: AppState, message: str) -> ApiError:
    return ApiError(503, message, headers={"Retry-After": str(state.settings.RETRY_AFTER_S)})
