"""Records that cannot be stored: kept with their reason, listed, and replayed after a fix."""

import logging
from datetime import UTC, datetime
from typing import Any

import orjson
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError
from redis.asyncio import Redis

from shared.mongo import DEAD_LETTERS
from shared.records import decode_entry
from shared.store import insert_idempotent
from shared.stream import StreamNames

logger = logging.getLogger(__name__)


def dead_letter(entry_id: bytes, fields: dict[bytes, bytes], reason: str, code: int | None = None) -> dict[str, Any]:
    """The stored form: the raw stream entry, so even an undecodable one can be inspected and replayed.

    One record of a batch entry is its own letter: `<entry id>/<line>`, with that record's line as `data`.
    """
    return {
        "_id": entry_id.decode(),
        "kind": fields.get(b"kind", b"").decode(errors="replace"),
        "data": fields.get(b"data", b"").decode(errors="replace"),
        "reason": reason,
        "code": code,
        "failed_at": datetime.now(UTC),
    }


async def save_dead_letters(db: AsyncDatabase, redis: Redis, names: StreamNames, letters: list[dict[str, Any]]) -> None:
    """Into MongoDB; if MongoDB is down, into the dead-letter stream. Raises only if both fail."""
    if not letters:
        return
    try:
        await insert_idempotent(db[DEAD_LETTERS], letters)
    except PyMongoError:
        async with redis.pipeline(transaction=True) as pipe:
            for letter in letters:
                pipe.xadd(names.dead_letters, {"letter": orjson.dumps(letter)})
            await pipe.execute()
    logger.error("dead-lettered records", extra={"count": len(letters), "ids": [d["_id"] for d in letters][:10],
                                                 "reason": letters[0]["reason"][:200]})


async def move_dead_letter_stream(db: AsyncDatabase, redis: Redis, names: StreamNames, count: int = 500) -> int:
    """Copy letters parked in Redis (while MongoDB was down) into the collection."""
    entries = await redis.xrange(names.dead_letters, count=count)
    if not entries:
        return 0
    letters = [orjson.loads(fields[b"letter"]) for _, fields in entries]
    for letter in letters:
        letter["failed_at"] = datetime.fromisoformat(letter["failed_at"])
    await insert_idempotent(db[DEAD_LETTERS], letters)
    await redis.xdel(names.dead_letters, *[entry_id for entry_id, _ in entries])
    return len(letters)


async def list_dead_letters(db: AsyncDatabase, limit: int = 100) -> list[dict[str, Any]]:
    return await db[DEAD_LETTERS].find({}, sort=[("failed_at", 1)], limit=limit).to_list()


async def replay_dead_letters(db: AsyncDatabase, limit: int = 1000) -> tuple[int, int]:
    """Try each letter again; stored ones are removed. Returns (stored, still failing)."""
    stored = failing = 0
    for letter in await list_dead_letters(db, limit):
        try:
            # A letter is one record, or a whole entry (a suspect: possibly a batch).
            records = decode_entry({b"kind": letter["kind"].encode(), b"data": letter["data"].encode()})
            rejected = await insert_idempotent(db[records[0].collection], [record.to_document() for record in records])
            reason = rejected[0].message if rejected else None
        except ValueError as exc:
            reason = f"undecodable: {exc}"
        if reason:
            failing += 1
            await db[DEAD_LETTERS].update_one({"_id": letter["_id"]}, {"$set": {"reason": reason}})
        else:
            stored += 1
            await db[DEAD_LETTERS].delete_one({"_id": letter["_id"]})
    return stored, failing
