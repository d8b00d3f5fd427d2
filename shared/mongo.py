"""MongoDB client factory and index set-up, shared by both processes."""

import logging

from pymongo import ASCENDING, AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared import export_jobs
from shared.records import COLLECTIONS
from shared.settings import Settings

logger = logging.getLogger(__name__)

DEAD_LETTERS = "dead_letters"

# Export reads in (timestamp, _id) order, with or without a user/session filter; ending each index
# with _id lets it serve that order without an in-memory sort. Each also serves its prefix, e.g.
# (user_id, timestamp) and plain timestamp ranges.
_INDEXES = (
    [("user_id", ASCENDING), ("timestamp", ASCENDING), ("_id", ASCENDING)],
    [("session_id", ASCENDING), ("timestamp", ASCENDING), ("_id", ASCENDING)],
    [("timestamp", ASCENDING), ("_id", ASCENDING)],
)


def create_mongo_client(settings: Settings) -> AsyncMongoClient:
    """The client connects lazily, so a process can start while MongoDB is still down.

    Writes wait for the journal (j:true): the worker deletes a stream entry as soon as its insert
    is acknowledged, so an acknowledgement must survive a mongod crash.
    """
    return AsyncMongoClient(
        settings.MONGODB_URI,
        serverSelectionTimeoutMS=settings.MONGO_TIMEOUT_MS,
        connectTimeoutMS=settings.MONGO_TIMEOUT_MS,
        journal=True,
        appname="fastapi-llm-logger",
    )


async def ensure_indexes(db: AsyncDatabase) -> None:
    for collection in COLLECTIONS.values():
        for keys in _INDEXES:
            await db[collection].create_index(keys)
    await db[DEAD_LETTERS].create_index([("failed_at", ASCENDING)])
    await db[export_jobs.JOBS].create_index([("expires_at", ASCENDING)])
    logger.info("indexes ready", extra={"collections": sorted(COLLECTIONS.values())})
