"""Idempotent batch writes into MongoDB, used by the worker and by the API's Redis-down fallback."""

from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

DUPLICATE_KEY = 11000


@dataclass(frozen=True)
class Rejection:
    """A document MongoDB refused for a reason other than already having it."""

    index: int
    code: int
    message: str


async def insert_idempotent(collection: AsyncCollection, documents: list[dict[str, Any]]) -> list[Rejection]:
    """Insert what is new; a duplicate `_id` counts as stored. Returns the rejected documents.

    Connection and write-concern failures raise, so the caller keeps the batch for a retry.
    """
    if not documents:
        return []
    try:
        await collection.insert_many(documents, ordered=False)
    except BulkWriteError as exc:
        if exc.details.get("writeConcernErrors"):
            raise
        return [
            Rejection(index=err["index"], code=err["code"], message=err.get("errmsg", ""))
            for err in exc.details.get("writeErrors", [])
            if err["code"] != DUPLICATE_KEY
        ]
    return []
