"""Idempotent batch writes into MongoDB, used by the worker and by the API's Redis-down fallback."""

from dataclasses import dataclass
from typing import Any

import bson
from bson.errors import BSONError
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

DUPLICATE_KEY = 11000

# Per-document write errors that say "not now" rather than "never": the batch is retried, not dead-lettered.
# (NetworkTimeout, ShutdownInProgress, PrimarySteppedDown, ExceededTimeLimit, SocketException,
# NotWritablePrimary, InterruptedAtShutdown, InterruptedDueToReplStateChange, NotPrimary*, WriteConflict,
# LockTimeout, MaxTimeMSExpired, HostUnreachable, HostNotFound.)
TRANSIENT_CODES = frozenset({6, 7, 24, 50, 89, 91, 112, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436})

# Raised by the driver while encoding, before anything is sent: the document itself is the problem.
_ENCODE_ERRORS = (BSONError, OverflowError, UnicodeEncodeError)
_MAX_DOCUMENT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Rejection:
    """A document MongoDB (or the driver, for `code=None`) refused for a reason other than already having it."""

    index: int
    code: int | None
    message: str


async def insert_idempotent(collection: AsyncCollection, documents: list[dict[str, Any]]) -> list[Rejection]:
    """Insert what is new; a duplicate `_id` counts as stored. Returns the rejected documents.

    Connection, write-concern and transient per-document failures raise, so the caller keeps
    the batch for a retry.
    """
    if not documents:
        return []
    try:
        await collection.insert_many(documents, ordered=False)
    except _ENCODE_ERRORS:
        rejected = _unencodable(collection, documents)
        if not rejected:
            raise  # not a document's fault after all: let the caller retry
        return await _insert_the_rest(collection, documents, rejected)
    except BulkWriteError as exc:
        write_errors = exc.details.get("writeErrors", [])
        if exc.details.get("writeConcernErrors") or any(e["code"] in TRANSIENT_CODES for e in write_errors):
            raise
        return [
            Rejection(index=err["index"], code=err["code"], message=err.get("errmsg", ""))
            for err in write_errors
            if err["code"] != DUPLICATE_KEY
        ]
    return []


def _unencodable(collection: AsyncCollection, documents: list[dict[str, Any]]) -> list[Rejection]:
    """The slow path after an encoding error: find the documents BSON cannot hold."""
    rejected = []
    for index, document in enumerate(documents):
        if problem := _encoding_problem(document, collection):
            rejected.append(Rejection(index=index, code=None, message=problem))
    return rejected


async def _insert_the_rest(
    collection: AsyncCollection, documents: list[dict[str, Any]], rejected: list[Rejection]
) -> list[Rejection]:
    bad = {r.index for r in rejected}
    keep = [i for i in range(len(documents)) if i not in bad]
    inner = await insert_idempotent(collection, [documents[i] for i in keep])
    rejected = rejected + [Rejection(index=keep[r.index], code=r.code, message=r.message) for r in inner]
    return sorted(rejected, key=lambda r: r.index)


def _encoding_problem(document: dict[str, Any], collection: AsyncCollection) -> str | None:
    try:
        size = len(bson.encode(document, codec_options=collection.codec_options))
    except _ENCODE_ERRORS as exc:
        return f"cannot be encoded as BSON: {type(exc).__name__}: {exc}"[:1000]
    if size > _MAX_DOCUMENT_BYTES:
        return f"document is {size} bytes; BSON documents are limited to {_MAX_DOCUMENT_BYTES}"
    return None
