"""Reads every stored record in (timestamp, id) order across both collections, in constant memory."""

from collections.abc import AsyncIterator
from typing import Any

import orjson
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from shared.records import COLLECTIONS, Kind

_SORT = [("timestamp", ASCENDING), ("_id", ASCENDING)]
_ORJSON_OPTIONS = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z


def _sort_key(document: dict[str, Any]) -> tuple:
    return document["timestamp"], document["_id"]


async def iter_export_records(db: AsyncDatabase, batch_size: int = 1000) -> AsyncIterator[dict[str, Any]]:
    """Merge the two index-ordered cursors; nothing is sorted in memory."""
    streams = {kind: db[name].find({}, sort=_SORT, batch_size=batch_size) for kind, name in COLLECTIONS.items()}
    heads = {kind: await anext(stream, None) for kind, stream in streams.items()}
    while True:
        live = [(kind, doc) for kind, doc in heads.items() if doc is not None]
        if not live:
            return
        kind, document = min(live, key=lambda item: _sort_key(item[1]))
        yield export_shape(kind, document)
        heads[kind] = await anext(streams[kind], None)


def export_shape(kind: Kind, document: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind.value, "id": document.pop("_id"), **document}


def dumps_record(record: dict[str, Any]) -> bytes:
    """JSON with UTC timestamps ending in Z; unusual BSON values become strings."""
    return orjson.dumps(record, default=str, option=_ORJSON_OPTIONS)


async def json_array_chunks(
    records: AsyncIterator[dict[str, Any]], chunk_bytes: int = 64 * 1024
) -> AsyncIterator[bytes]:
    """A JSON array, sent in chunks of about `chunk_bytes` rather than one write per record."""
    buffer = bytearray(b"[")
    separator = b""
    async for record in records:
        buffer += separator + dumps_record(record)
        separator = b",\n"
        if len(buffer) >= chunk_bytes:
            yield bytes(buffer)
            buffer.clear()
    buffer += b"]\n"
    yield bytes(buffer)
