"""Seeds the export benchmark's database straight through PyMongo (not the API): built from the record
models, so the documents have the stored shape. A marker document lets later runs reuse the data."""

import logging
import random
import time
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, MongoClient
from pymongo.database import Database

from shared.records import COLLECTIONS, EventRecord, Kind, QueryRecord, Source

logger = logging.getLogger(__name__)

SEED_VERSION = 1
_META = "bench_meta"
_BATCH = 5000
_T0 = datetime(2025, 1, 1)
_EVENT_TYPES = ("click", "scroll", "hover", "view", "copy")


def ensure_seeded(mongo_uri: str, db_name: str, records: int, query_share: float = 0.05) -> float:
    """Returns the seconds spent seeding (0 when the data was already there)."""
    with MongoClient(mongo_uri) as client:
        db = client[db_name]
        marker = db[_META].find_one({"_id": "seed"})
        if marker and marker.get("records") == records and marker.get("version") == SEED_VERSION:
            logger.info("reusing seeded export data", extra={"records": records})
            return 0.0
        started = time.monotonic()
        _reset(db)
        _insert_all(db, records, query_share)
        # Built after the load: SecantusDB inserts about twice as fast without the index to maintain.
        for name in COLLECTIONS.values():
            db[name].create_index([("timestamp", ASCENDING), ("_id", ASCENDING)])
        db[_META].replace_one({"_id": "seed"}, {"records": records, "version": SEED_VERSION}, upsert=True)
        return time.monotonic() - started


def _reset(db: Database) -> None:
    for name in (*COLLECTIONS.values(), _META):
        db.drop_collection(name)


def _insert_all(db: Database, records: int, query_share: float) -> None:
    rng = random.Random(6)
    batches: dict[Kind, list[dict[str, Any]]] = {Kind.EVENT: [], Kind.QUERY: []}
    ms = 0
    started = time.monotonic()
    for i in range(records):
        ms += 0 if rng.random() < 0.1 else 1  # about one record in ten shares its neighbour's timestamp
        kind = Kind.QUERY if rng.random() < query_share else Kind.EVENT
        batches[kind].append(_document(kind, i, _T0 + timedelta(milliseconds=ms), rng))
        if len(batches[kind]) >= _BATCH:
            db[COLLECTIONS[kind]].insert_many(batches[kind], ordered=False)
            batches[kind] = []
        if i and i % 100_000 == 0:
            logger.info("seeding export data", extra={"done": i, "per_s": round(i / (time.monotonic() - started))})
    for kind, batch in batches.items():
        if batch:
            db[COLLECTIONS[kind]].insert_many(batch, ordered=False)


def _document(kind: Kind, i: int, timestamp: datetime, rng: random.Random) -> dict[str, Any]:
    user, session = f"user-{i % 997}", f"session-{i % 4999}"
    if kind is Kind.QUERY:
        return QueryRecord(
            id=f"q{i:09d}", timestamp=timestamp, user_id=user, session_id=session,
            query="which hiking boots are waterproof, light and good for wide feet?",
            response="Here are three options. " * 12, model_used="mock/gpt-4o-mini", latency_ms=812.5,
            prompt_tokens=42, completion_tokens=180, cost_usd=0.00021,
            source=[Source(title="Boots", url="https://example.com/boots", content="Waterproof boots")],
        ).to_document()
    return EventRecord(
        id=f"e{i:09d}", timestamp=timestamp, user_id=user, session_id=session,
        event_type=_EVENT_TYPES[i % len(_EVENT_TYPES)], query_id=f"q{i - 3:09d}",
        target_url=f"https://example.com/item/{i % 500}", page_url="https://app.example.com/chat",
        extra_data={"position": i % 10, "viewport": {"w": 1280, "h": 800}, "label": "result, \"top\""},
    ).to_document()
