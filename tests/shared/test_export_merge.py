import random

import pytest
from fastapi.testclient import TestClient
from pymongo import AsyncMongoClient

from shared.export import ExportPlan, iter_record_batches
from shared.export_params import ExportParams
from shared.records import Kind
from shared.settings import Settings
from tests.export_helpers import at, event, ids, insert, query


def test_equal_timestamps_are_ordered_by_id_then_type(client: TestClient, settings: Settings,
                                                      admin_headers: dict) -> None:
    insert(settings, event("b", 5), query("a", 5), event("a", 5), query("c", 5), event("c", 4), query("0", 6))

    records = client.get("/export_data", headers=admin_headers).json()

    assert [(r["id"], r["type"]) for r in records] == [
        ("c", "event"), ("a", "event"), ("a", "query"), ("b", "event"), ("c", "query"), ("0", "query")]


@pytest.mark.parametrize("batch_size", [1, 3, 500])
async def test_merge_matches_a_full_sort_across_batch_boundaries(settings: Settings, batch_size: int) -> None:
    rng = random.Random(batch_size)
    records = [event(f"e{i:03d}", rng.randrange(40)) for i in range(120)]
    records += [query(f"q{i:03d}", rng.randrange(40)) for i in range(60)]
    insert(settings, *records)
    expected = sorted(records, key=lambda r: (r.timestamp, r.id, r.kind.value))
    mongo = AsyncMongoClient(settings.MONGODB_URI)
    try:
        batches = iter_record_batches(mongo[settings.MONGO_DB], ExportPlan(ExportParams()), batch_size)
        got = [record async for batch in batches for record in batch]
    finally:
        await mongo.close()

    assert [(r["timestamp"], r["id"], r["type"]) for r in got] == \
        [(r.timestamp.replace(tzinfo=None), r.id, r.kind.value) for r in expected]


def test_one_collection_alone_streams_in_order(client: TestClient, settings: Settings, admin_headers: dict) -> None:
    insert(settings, *[event(f"e{i}", 10 - i) for i in range(5)])

    records = client.get("/export_data", headers=admin_headers, params={"type": Kind.EVENT.value}).json()

    assert ids(records) == ["e4", "e3", "e2", "e1", "e0"]
    assert records[0]["timestamp"] == at(6).isoformat(timespec="milliseconds") + "Z"
