"""Queues records: Redis first, MongoDB directly if Redis is down, 503 if neither can take them."""

import logging

from pymongo.errors import PyMongoError
from redis.exceptions import RedisError

from api.deps import AppState
from api.errors import ApiError
from shared.records import Queueable
from shared.store import Rejection, insert_idempotent

logger = logging.getLogger(__name__)


async def queue_records(state: AppState, records: list[Queueable]) -> str:
    """Return "queued" or "stored" once the records are durable; raise ApiError(503) otherwise."""
    if state.backlog.is_full:  # logged by the monitor when it fills and when it empties
        raise _unavailable(state, "the ingest queue is full; retry later")
    if state.fallback.worth_trying:  # while Redis is down, one request at a time tries it
        try:
            with state.fallback.attempt():
                await state.appender.append(records)
            return "queued"
        except (RedisError, OSError) as exc:
            logger.debug("redis unavailable; writing to MongoDB directly", extra={"error": type(exc).__name__})
    # Same ids as the stream entries, so a record that did reach Redis is not stored twice.
    try:
        for collection, group in _by_collection(records).items():
            rejected = await insert_idempotent(state.db[collection], [r.to_document() for r in group])
            if rejected:
                raise _refused(group, rejected)
    except PyMongoError as exc:
        logger.error("redis and mongodb both unavailable", extra={"error": type(exc).__name__})
        raise _unavailable(state, "storage is temporarily unavailable; retry later") from None
    return "stored"


def _by_collection(records: list[Queueable]) -> dict[str, list[Queueable]]:
    groups: dict[str, list[Queueable]] = {}
    for record in records:
        groups.setdefault(record.collection, []).append(record)
    return groups


def _refused(group: list[Queueable], rejected: list[Rejection]) -> ApiError:
    # MongoDB's message can name internals (collections, validators, index keys): operators get it, clients do not.
    first = rejected[0]
    logger.error("mongodb refused a record written directly (redis down)",
                 extra={"record_id": group[first.index].id, "code": first.code, "error": first.message[:300],
                        "count": len(rejected)})
    return ApiError(422, "the database refused the record; it was not stored")


def _unavailable(state: AppState, message: str) -> ApiError:
    return ApiError(503, message, headers={"Retry-After": str(state.settings.RETRY_AFTER_S)})
