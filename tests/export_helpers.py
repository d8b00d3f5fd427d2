"""Stored records with chosen timestamps, inserted straight into MongoDB, for export tests."""

from datetime import datetime, timedelta
from typing import Any

from pymongo import MongoClient

from shared.records import EventRecord, QueryRecord, Record
from shared.settings import Settings

T0 = datetime(2025, 3, 1, 12, 0, 0)


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def event(record_id: str, ms: int, **fields: Any) -> EventRecord:
    values = {"user_id": "u1", "event_type": "click", "session_id": "s1"} | fields
    return EventRecord(id=record_id, timestamp=at(ms), **values)


def query(record_id: str, ms: int, **fields: Any) -> QueryRecord:
    values = {"user_id": "u1", "session_id": "s1", "query": "q", "response": "a", "model_used": "mock",
              "latency_ms": 1.5} | fields
    return QueryRecord(id=record_id, timestamp=at(ms), **values)


def insert(settings: Settings, *records: Record) -> None:
    with MongoClient(settings.MONGODB_URI) as client:
        db = client[settings.MONGO_DB]
        for record in records:
            db[record.collection].insert_one(record.to_document())


def ids(records: list[dict[str, Any]]) -> list[str]:
    return [record["id"] for record in records]
